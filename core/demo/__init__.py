"""The demo that ``make run`` opens on: a month of a small ViciDial contact centre, with stories.

A fresh machine has no recordings and no ViciDial database, so the project makes its own:
``callqa demo build`` plans the 30 days ending today (:mod:`core.demo.month`: eight agents,
three campaigns and an in-group, three carriers, two dialers, about 160 calls), voices each call
with real recorded speech (:mod:`core.demo.speech`; espeak-ng only when the speech folder is
missing), sends it through a telephone chain with the planted impairments and writes it with
ViciDial naming in every recording layout (:mod:`core.demo.render`), next to a
``demo_manifest.json`` holding the ViciDial-like metadata, the planted stories and ground truth.
It then analyses the calls into the demo store.

Dates are relative to the day of the build and everything is seeded by it, so a build is the
same all day; on a later day (or with ``force``) the month moves and is rebuilt.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.demo.chain import BAND_HZ, NOISE_FLOOR_DBFS, SAMPLE_RATE_HZ, SPEECH_LEVEL_DBFS, active_level_dbfs
from core.demo.month import AGENTS, CAMPAIGNS, CARRIERS, DAYS, SERVERS, STORIES, plan_month
from core.demo.render import VICIDIAL_FIELDS, render_call
from core.demo.speech import load_speech_bank, speech_dir
from core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from core.config import Settings
    from core.progress import ProgressReporter

__all__ = [
    "DEMO_VERSION", "MANIFEST_NAME", "NOISE_FLOOR_DBFS", "SPEECH_LEVEL_DBFS", "STORIES", "VICIDIAL_FIELDS",
    "DemoCall", "DemoSet", "active_level_dbfs", "build_demo", "build_demo_recordings", "demo_metadata",
    "demo_recordings_dir", "demo_store_url", "read_demo_manifest",
]

DEMO_VERSION = 2
"""Bump whenever the generated audio or manifest changes; older demo sets are then rebuilt."""

MANIFEST_NAME = "demo_manifest.json"
SCAN_WORKERS = 2


@dataclass(frozen=True)
class DemoCall:
    """One generated call.

    Attributes
    ----------
    call_id : str
        ViciDial recording name, ``FULLDATE_CUSTPHONE`` (``20261121-093012_3125550101``).
    layout : str
        ``channel``, ``stereo``, ``conference`` or ``mixed``.
    duration_s : float
        Length of the call.
    files : Mapping[str, Path]
        Role (``in``, ``out``, ``stereo``, ``all``) -> file.
    stories : tuple of str
        The planted stories (:data:`STORIES` keys) this call belongs to; empty for a clean call.
    metadata : Mapping[str, Any]
        The :data:`VICIDIAL_FIELDS` of the call.
    """

    call_id: str
    layout: str
    duration_s: float
    files: Mapping[str, Path] = field(hash=False, compare=False)
    stories: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def path(self) -> Path:
        """One file of the call (the others are found beside it)."""
        return next(iter(self.files.values()))


@dataclass(frozen=True)
class DemoSet:
    """The demo recordings in one folder.

    Attributes
    ----------
    root : Path
        Folder holding the recordings and the manifest.
    manifest_path : Path
        ``root / "demo_manifest.json"``.
    calls : tuple of DemoCall
        Oldest first.
    generated : bool
        True when this build wrote the files, False when they were already current.
    reference_date : date
        The last day of the demo month (the day it was built).
    speech_source : str
        ``recorded`` (real speech) or ``espeak`` (the fallback).
    """

    root: Path
    manifest_path: Path
    calls: tuple[DemoCall, ...]
    generated: bool
    reference_date: date
    speech_source: str


# --- public API --------------------------------------------------------------------------------
def demo_recordings_dir(settings: Settings) -> Path:
    """Where ``make run`` keeps the demo recordings: ``data_dir / "demo" / "recordings"``."""
    return settings.data_dir / "demo" / "recordings"


def demo_store_url(settings: Settings) -> str:
    """The demo's own result store: ``<data_dir>/demo/callqa.db``."""
    return str(settings.data_dir / "demo" / "callqa.db")


def demo_metadata(call: DemoCall) -> dict[str, Any]:
    """The store metadata of a demo call (ViciDial-like fields, call time, campaign or in-group)."""
    meta = {k: call.metadata.get(k) for k in VICIDIAL_FIELDS}
    meta["call_time"] = call.metadata.get("call_date")
    meta["campaign"] = call.metadata.get("campaign_id") or call.metadata.get("ingroup")
    meta.pop("campaign_id", None)
    return meta


def build_demo(settings: Settings, *, force: bool = False, recordings_dir: Path | None = None,
               scan: bool = True, quality: bool = True, store_url: str | None = None,
               progress: ProgressReporter | None = None, build_progress: ProgressReporter | None = None,
               today: date | None = None) -> DemoSet:
    """Prepare everything the dashboard's demo mode needs; the single entry point of ``demo build``.

    Generates the recordings (when missing, from an earlier day, or ``force``) and scans them,
    with their ViciDial-like metadata, into the demo store; both steps do nothing when done.

    Parameters
    ----------
    settings : Settings
        The loaded configuration (``data_dir``, analysis thresholds, quality model).
    force : bool
        Regenerate even when the recordings are current.
    recordings_dir : Path, optional
        Overrides :func:`demo_recordings_dir`.
    scan, quality : bool
        Scan into the store; score NISQA while doing so.
    store_url : str, optional
        Overrides :func:`demo_store_url`. When the recordings are regenerated and the store is a
        SQLite file in the folder that holds the recordings folder (the demo layout), it is
        deleted first, so the previous month's calls do not linger.
    progress, build_progress : ProgressReporter, optional
        Progress of the scan and of the generation.
    today : date, optional
        The last day of the demo month (default: today).

    Returns
    -------
    DemoSet
        The demo recordings.
    """
    dest = recordings_dir if recordings_dir is not None else demo_recordings_dir(settings)
    demo = build_demo_recordings(dest, force=force, today=today, progress=build_progress)
    if scan:
        from core.audio.layout import call_files_for
        from core.scan import run_scan
        from core.work import WorkItem

        store = store_url or demo_store_url(settings)
        if demo.generated:
            _drop_demo_store(store, dest)
        # calls with separate legs first: their agent legs teach the agents' voiceprints, which the
        # mix-only and conference calls scanned after them use to name their sides
        ordered = sorted(demo.calls, key=lambda c: c.layout in ("mixed", "conference"))
        items = [WorkItem.from_call_files(call_files_for(c.path), metadata=demo_metadata(c)) for c in ordered]
        report = run_scan(settings, items, store_url=store, quality=quality, workers=SCAN_WORKERS,
                          progress=progress, source=str(dest))
        report.check()
    return demo


def build_demo_recordings(dest: Path, *, force: bool = False, today: date | None = None,
                          progress: ProgressReporter | None = None) -> DemoSet:
    """Generate the demo month and ``demo_manifest.json`` into ``dest``.

    Parameters
    ----------
    dest : Path
        Output folder, created when missing.
    force : bool
        Regenerate even when ``dest`` already holds a complete set of this :data:`DEMO_VERSION`
        built on ``today`` from the same kind of speech.
    today : date, optional
        The last day of the month (default: today).
    progress : ProgressReporter, optional
        Advanced once per call written.

    Returns
    -------
    DemoSet
        ``generated`` is False when nothing had to be written.

    Raises
    ------
    ConfigError
        The speech folder is unreadable, espeak-ng is needed but missing, ffmpeg fails, or
        ``dest`` cannot be written.

    Notes
    -----
    Deterministic for a given day and speech folder. Files are written to temporary names and
    renamed; the manifest is written last, so an interrupted build is redone on the next call.
    """
    dest = Path(dest)
    today = today or date.today()
    if not force:
        current = _current_set(dest, today)
        if current is not None:
            return current
    plans = plan_month(today)
    bank = load_speech_bank(talker_ids={t for p in plans for t in (p.agent.talker, p.caller)})
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"demo folder {dest} cannot be created ({exc.strerror})") from None
    previous = _read_manifest_quietly(dest / MANIFEST_NAME)
    if progress is not None:
        progress.start(len(plans))
    entries = []
    for plan in plans:
        entries.append(render_call(plan, bank, dest))
        if progress is not None:
            progress.advance()
    if progress is not None:
        progress.finish()
    manifest = _manifest(today, bank.source, entries)
    _remove_stale(dest, previous, keep={f for e in entries for f in e["files"].values()})
    _write_atomic(dest / MANIFEST_NAME, (json.dumps(manifest, indent=1) + "\n").encode())
    return _demo_set(dest, manifest, generated=True)


def read_demo_manifest(dest: Path) -> dict[str, Any]:
    """Return the parsed ``demo_manifest.json`` of ``dest``.

    Raises
    ------
    ConfigError
        The manifest is missing or unreadable (run ``callqa demo build``).
    """
    path = Path(dest) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist; run `callqa demo build`") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); run `callqa demo build --force`") from None


# --- build steps ---------------------------------------------------------------------------------
def _manifest(today: date, source: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {s: sum(s in e["stories"] for e in entries) for s in STORIES}
    return {
        "demo_version": DEMO_VERSION,
        "reference_date": today.isoformat(),
        "days": DAYS,
        "sample_rate": SAMPLE_RATE_HZ,
        "speech_source": source,
        "server_utc_offset": "-05:00",
        "chain": {"band_hz": list(BAND_HZ), "speech_level_dbfs": [-24.0, -19.0],
                  "noise_floor_dbfs": NOISE_FLOOR_DBFS, "codec": "G.711 mu-law; mixes as 16 kbit/s MP3"},
        "agents": [{"user": a.user, "full_name": a.full_name, "voice": a.talker, "campaign": a.campaign}
                   for a in AGENTS],
        "campaigns": [{"campaign_id": c.campaign_id, "inbound": c.inbound, "ingroup": c.ingroup,
                       "layouts": c.layouts} for c in CAMPAIGNS.values()],
        "carriers": list(CARRIERS),
        "servers": list(SERVERS),
        "stories": {k: {**v, "calls": counts[k]} for k, v in STORIES.items()},
        "calls": entries,
    }


def _current_set(dest: Path, today: date) -> DemoSet | None:
    """The existing set when it is of this version, built today from the same kind of speech and complete."""
    manifest = _read_manifest_quietly(dest / MANIFEST_NAME)
    if not manifest or manifest.get("demo_version") != DEMO_VERSION or manifest.get("reference_date") != today.isoformat():
        return None
    if manifest.get("speech_source") == "espeak" and speech_dir() is not None:
        return None  # the recorded speech has arrived since: rebuild with it
    try:
        names = [name for call in manifest["calls"] for name in call["files"].values()]
        if not all((dest / n).is_file() for n in names):
            return None
        return _demo_set(dest, manifest, generated=False)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _read_manifest_quietly(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _demo_set(dest: Path, manifest: dict[str, Any], *, generated: bool) -> DemoSet:
    calls = tuple(
        DemoCall(
            call_id=c["call_id"],
            layout=c["layout"],
            duration_s=float(c["duration_s"]),
            files={role: dest / name for role, name in c["files"].items()},
            stories=tuple(c["stories"]),
            metadata={k: c.get(k) for k in VICIDIAL_FIELDS},
        )
        for c in manifest["calls"]
    )
    return DemoSet(root=dest, manifest_path=dest / MANIFEST_NAME, calls=calls, generated=generated,
                   reference_date=date.fromisoformat(manifest["reference_date"]),
                   speech_source=str(manifest["speech_source"]))


def _remove_stale(dest: Path, previous: dict[str, Any] | None, *, keep: set[str]) -> None:
    """Delete files an older manifest listed that this build no longer writes."""
    for call in (previous or {}).get("calls", []):
        for name in (call.get("files") or {}).values():
            if isinstance(name, str) and name not in keep and "/" not in name and (dest / name).is_file():
                (dest / name).unlink()


def _drop_demo_store(store_url: str, recordings: Path) -> None:
    """Delete a SQLite demo store that sits beside the recordings folder (the previous month's)."""
    if "://" in store_url:
        return
    path = Path(store_url)
    if path.resolve().parent != Path(recordings).resolve().parent:
        return
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"{path} cannot be written ({exc.strerror})") from None
