"""The dashboard's rules, kept out of the Streamlit layer: which store it reads and which
recording folders it may open.

- **The store** (:func:`store_target`): the configured one (``CALLQA_STORE``, ``[store] url``),
  the default ``data/callqa.db`` when only ViciDial is configured, else the demo store.
- **Recording folders** (:func:`allowed_folders`): the demo recordings, ``[dashboard] folders``
  (``CALLQA_DASHBOARD_FOLDERS``, separated by ``os.pathsep``) and the ``[recordings]
  local_roots`` without a ``{server_ip}`` placeholder, with their sub-folders. A deep link
  naming any other folder is refused (:func:`check_folder`): it would let a URL read arbitrary
  files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd

from core.config import Settings, SettingsSection, StoreSettings
from core.errors import CallNotFoundError, ConfigError

FOLDERS_ENV = "CALLQA_DASHBOARD_FOLDERS"
FOLDER_COLUMNS = ("call_id", "call_time", "files", "size_kb", "path")


@dataclass(frozen=True)
class DashboardSettings(SettingsSection):
    """``[dashboard]``: extra recording folders the "Recording folder" lookup may open."""

    folders: tuple[str, ...] = ()

    SECTION: ClassVar[str] = "dashboard"
    ENV_SEPARATORS: ClassVar[dict[str, str]] = {"folders": os.pathsep}


@dataclass(frozen=True)
class StoreTarget:
    """Which store the dashboard reads, and why (``origin``: the variable or setting that chose
    it, ``default`` or ``demo``)."""

    url: str
    demo: bool
    origin: str


def store_target(settings: Settings) -> StoreTarget:
    """The configured store; the demo store when neither a store nor ViciDial is configured.

    Raises
    ------
    ConfigError
        ``[store]`` is invalid.
    """
    from core.vicidial.settings import vicidial_configured

    if StoreSettings.from_settings(settings).url:
        return StoreTarget(settings.store_url(), demo=False, origin=StoreSettings.origin(settings, "url") or "")
    if vicidial_configured(settings):
        return StoreTarget(settings.store_url(), demo=False, origin="default")
    from core.demo import demo_store_url

    return StoreTarget(demo_store_url(settings), demo=True, origin="demo")


def allowed_folders(settings: Settings) -> list[Path]:
    """Folders the dashboard may list and analyse recordings from (and their sub-folders), resolved.

    An invalid ``[recordings]`` section adds no roots (the health checks say what is wrong).

    Raises
    ------
    ConfigError
        ``[dashboard]`` is invalid.
    """
    from core.demo import demo_recordings_dir
    from core.vicidial.settings import RecordingAccess

    candidates = [str(demo_recordings_dir(settings)), *DashboardSettings.from_settings(settings).folders]
    try:
        candidates += [r for r in RecordingAccess.from_settings(settings).local_roots if "{" not in r]
    except ConfigError:
        pass
    out: list[Path] = []
    for c in candidates:
        p = Path(c).expanduser().resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def check_folder(settings: Settings, folder: str | Path) -> Path:
    """``folder`` resolved, if it is an allowed folder or below one.

    Raises
    ------
    ConfigError
        The folder is not allowed, or does not exist.
    """
    from core.audio.layout import resolve_inside

    p = Path(folder).expanduser().resolve()
    allowed = allowed_folders(settings)
    if resolve_inside(p, allowed) is None:
        listed = ", ".join(str(a) for a in allowed) or "none"
        raise ConfigError(
            f"{p} is not one of the dashboard's recording folders (allowed: {listed}); add it to "
            f"[dashboard] folders in callqa.toml or to {FOLDERS_ENV}"
        )
    if not p.is_dir():
        raise ConfigError(f"{p} is not a folder")
    return p


def folder_calls(settings: Settings, folder: str | Path) -> pd.DataFrame:
    """The calls in an allowed folder (ViciDial naming), newest first: ``call_id``, ``call_time``,
    ``files`` (roles), ``size_kb`` and ``path`` (one of its recordings).

    Raises
    ------
    ConfigError
        The folder is not allowed.
    """
    from core.audio.layout import discover_calls
    from core.work import call_time_of

    rows = []
    for call in discover_calls(check_folder(settings, folder)):
        size = 0
        for p in call.paths:
            try:
                size += p.stat().st_size
            except OSError:
                pass
        rows.append({"call_id": call.call_id, "call_time": call_time_of(call), "files": ", ".join(sorted(call.files)),
                     "size_kb": round(size / 1024, 1), "path": str(call.paths[0])})
    df = pd.DataFrame(rows, columns=list(FOLDER_COLUMNS))
    if not df.empty:
        df["call_time"] = pd.to_datetime(df["call_time"])
        df = df.sort_values("call_time", ascending=False, kind="stable").reset_index(drop=True)
    return df


def find_in_folder(calls: pd.DataFrame, folder: Path, call_id: str) -> Path:
    """One recording of ``call_id`` among :func:`folder_calls` rows of ``folder``.

    Raises
    ------
    CallNotFoundError
        The folder holds no recording of that call.
    """
    match = calls[calls["call_id"] == call_id]
    if match.empty:
        raise CallNotFoundError(f"call {call_id} has no recording in {folder}")
    return Path(match.iloc[0]["path"])
