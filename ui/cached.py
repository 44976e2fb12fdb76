"""Streamlit caches over ``core``: resources once per process, queries per arguments with a TTL.

- ``st.cache_resource``: the settings (configuration file + ``.streamlit/secrets.toml``), the
  result store, the quality model and the VAD. Shared by every session; never mutated.
- ``st.cache_data``: store queries, ViciDial searches, folder listings, waveform envelopes and
  playable audio, keyed by their arguments (the store URL is always one of them, so pointing
  the app at another store never serves stale rows).

Nothing here renders; pages turn the ``CallQAError`` these raise into messages through
:mod:`ui.components`.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import streamlit as st

from core.config import Settings, load_settings
from core.errors import ConfigError, StoreError
from core.store import ResultStore, open_store, queries

QUERY_TTL_S = 60
VICIDIAL_TTL_S = 120
ENVELOPE_WIDTH = 1000
#: The sections of ``.streamlit/secrets.toml`` merged into the configuration file's.
SECRET_SECTIONS = ("store", "paths", "vicidial", "recordings", "claude", "analysis", "quality", "dashboard")
FOLDERS_ENV = "CALLQA_DASHBOARD_FOLDERS"


# --- configuration ---------------------------------------------------------------------------------
def _secret_sections() -> dict[str, dict[str, Any]]:
    """The known sections of ``st.secrets`` (none when there is no secrets file)."""
    try:
        data = st.secrets.to_dict()
    except (FileNotFoundError, st.errors.StreamlitAPIException):
        return {}
    return {k: dict(v) for k, v in data.items() if k in SECRET_SECTIONS and isinstance(v, dict)}


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """``callqa.toml`` (``CALLQA_CONFIG``) with the sections of ``st.secrets`` laid over it.

    Reading ``st.secrets`` also exports its root-level keys (``ANTHROPIC_API_KEY``...) to the
    environment, where ``core`` looks for them.
    """
    base = load_settings()
    secrets = _secret_sections()
    if not secrets:
        return base
    raw = dict(base.raw)
    for name, values in secrets.items():
        section = raw.get(name, {})
        raw[name] = {**(section if isinstance(section, dict) else {}), **values}
    return Settings(path=base.path, raw=raw)


@dataclass(frozen=True)
class StoreTarget:
    """Which store the app reads, and why."""

    url: str
    demo: bool
    origin: str  # CALLQA_STORE, [store] url, default, demo


def demo_store_path(settings: Settings) -> Path:
    from core.demo import demo_store_url

    return Path(demo_store_url(settings))


def vicidial_configured(settings: Settings) -> bool:
    return bool(os.environ.get("CALLQA_VICIDIAL_HOST") or settings.section("vicidial").get("host"))


def store_target(settings: Settings | None = None) -> StoreTarget:
    """The configured store; the demo store when neither a store nor ViciDial is configured."""
    settings = settings or get_settings()
    if os.environ.get("CALLQA_STORE"):
        return StoreTarget(settings.store_url(), demo=False, origin="CALLQA_STORE")
    if settings.section("store").get("url"):
        return StoreTarget(settings.store_url(), demo=False, origin="[store] url")
    if vicidial_configured(settings):
        return StoreTarget(settings.store_url(), demo=False, origin="default")
    return StoreTarget(str(demo_store_path(settings)), demo=True, origin="demo")


def _close_store(store: ResultStore) -> None:
    store.close()


@st.cache_resource(show_spinner=False, on_release=_close_store)
def _open(url: str) -> ResultStore:
    return open_store(url)


def get_store(target: StoreTarget | None = None) -> ResultStore:
    """The store of ``target`` (the configured one by default), opened and migrated once.

    Raises
    ------
    StoreError
        The store cannot be opened, or the demo store has not been built yet.
    """
    target = target or store_target()
    if target.demo and not Path(target.url).is_file():
        raise StoreError(
            f"the demo store {target.url} has not been built yet: run `make run` "
            "(or `callqa demo build`), or point CALLQA_STORE at a store"
        )
    return _open(target.url)


def store_url() -> str:
    return store_target().url


@st.cache_resource(show_spinner="Loading the NISQA quality model…")
def get_quality_model():
    """The NISQA model (torch), loaded once per process.

    Raises
    ------
    ModelUnavailableError
        The weights are missing or corrupt.
    """
    from core.quality.manager import get_quality_model as load

    return load(get_settings())


@st.cache_resource(show_spinner="Loading the voice activity detector…")
def get_vad():
    from core.audio.vad import get_vad as load

    return load()


def clear_store_queries() -> None:
    """Forget every cached store query (after the dashboard itself wrote an analysis)."""
    for fn in (store_status, list_calls, count_calls, call_analysis, call_metadata, headlines, fleet_trend,
               fleet_groups, finding_counts, list_errors, ai_summary):
        fn.clear()


# --- store queries ---------------------------------------------------------------------------------
@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def store_status(url: str) -> dict[str, Any]:
    return queries.store_status(get_store())


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def list_calls(url: str, **filters: Any) -> pd.DataFrame:
    return queries.list_calls(get_store(), **filters)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def count_calls(url: str, **filters: Any) -> int:
    return queries.count_calls(get_store(), **filters)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def fleet_trend(url: str, **kwargs: Any) -> pd.DataFrame:
    return queries.fleet_trend(get_store(), **kwargs)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def fleet_groups(url: str, **kwargs: Any) -> pd.DataFrame:
    return queries.fleet_groups(get_store(), **kwargs)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def finding_counts(url: str, **kwargs: Any) -> pd.DataFrame:
    return queries.finding_counts(get_store(), **kwargs)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def list_errors(url: str, limit: int = 50) -> pd.DataFrame:
    return queries.list_errors(get_store(), limit=limit)


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def call_analysis(url: str, call_id: str) -> dict[str, Any]:
    """The stored analysis JSON of one call (raises ``CallNotFoundError``)."""
    return queries.call_analysis(get_store(), call_id)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def call_metadata(url: str, call_id: str) -> dict[str, Any]:
    """The ViciDial metadata stored beside a call (agent, campaign, server, carrier, SIP cause...); {} if absent."""
    from core.errors import CallNotFoundError

    try:
        return queries.call_metadata(get_store(), call_id)
    except CallNotFoundError:
        return {}


HEADLINE_COLUMNS = ("call_id", "layout", "mos_caller", "mos_agent", "mos_mixed", "mos_min", "n_findings",
                    "worst_severity", "finding_codes")


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def headlines(url: str, call_ids: tuple[str, ...]) -> pd.DataFrame:
    """Stored analysis headlines (MOS per leg, findings) of the given calls; absent calls are absent."""
    if not call_ids:
        return pd.DataFrame(columns=list(HEADLINE_COLUMNS))
    frames = [queries.list_calls(get_store(), call_ids=call_ids[i:i + 500], limit=None)
              for i in range(0, len(call_ids), 500)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for c in HEADLINE_COLUMNS:
        if c not in df:
            df[c] = None
    df = df[list(HEADLINE_COLUMNS)]
    for c in ("mos_caller", "mos_agent", "mos_mixed", "mos_min"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=32)
def ai_summary(url: str, call_id: str) -> dict[str, Any] | None:
    """The newest stored Claude summary of a call, or None."""
    return get_store().get_ai_summary(call_id)


# --- recording folders -----------------------------------------------------------------------------
def allowed_folders(settings: Settings | None = None) -> list[Path]:
    """Folders the dashboard may list and analyse recordings from (and their sub-folders).

    The demo recordings, ``[dashboard] folders``, ``CALLQA_DASHBOARD_FOLDERS`` (separated by
    ``os.pathsep``) and the ``[recordings] local_roots`` without a ``{server_ip}`` placeholder.
    A deep link naming any other folder is refused: it would let a URL read arbitrary files.
    """
    settings = settings or get_settings()
    from core.demo import demo_recordings_dir

    candidates: list[str] = [str(demo_recordings_dir(settings))]
    configured = settings.section("dashboard").get("folders", [])
    candidates += [configured] if isinstance(configured, str) else [str(f) for f in configured]
    candidates += [p for p in os.environ.get(FOLDERS_ENV, "").split(os.pathsep) if p]
    roots = settings.section("recordings").get("local_roots", [])
    candidates += [r for r in ([roots] if isinstance(roots, str) else roots) if "{" not in str(r)]
    out: list[Path] = []
    for c in candidates:
        p = Path(c).expanduser().resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def check_folder(folder: str) -> Path:
    """``folder`` resolved, if it is an allowed folder or below one.

    Raises
    ------
    ConfigError
        The folder is not allowed, or does not exist.
    """
    p = Path(folder).expanduser().resolve()
    allowed = allowed_folders()
    if not any(p == root or root in p.parents for root in allowed):
        listed = ", ".join(str(a) for a in allowed) or "none"
        raise ConfigError(
            f"{p} is not one of the dashboard's recording folders (allowed: {listed}); add it to "
            f"[dashboard] folders in callqa.toml or to {FOLDERS_ENV}"
        )
    if not p.is_dir():
        raise ConfigError(f"{p} is not a folder")
    return p


@st.cache_data(ttl=30, show_spinner=False, max_entries=16)
def folder_calls(folder: str) -> pd.DataFrame:
    """The calls in an allowed folder (ViciDial naming), newest first, with their files."""
    from core.audio.layout import discover_calls
    from core.work import call_time_of

    root = check_folder(folder)
    rows = []
    for call in discover_calls(root):
        size = 0
        for p in call.paths:
            try:
                size += p.stat().st_size
            except OSError:
                pass
        rows.append({
            "call_id": call.call_id,
            "call_time": call_time_of(call),
            "files": ", ".join(sorted(call.files)),
            "size_kb": round(size / 1024, 1),
            "path": str(call.paths[0]),
        })
    df = pd.DataFrame(rows, columns=["call_id", "call_time", "files", "size_kb", "path"])
    if not df.empty:
        df["call_time"] = pd.to_datetime(df["call_time"])
        df = df.sort_values("call_time", ascending=False, kind="stable").reset_index(drop=True)
    return df


def find_in_folder(folder: str, call_id: str) -> Path:
    """One recording of ``call_id`` in an allowed folder (for analysing it on the spot).

    Raises
    ------
    ConfigError, CallNotFoundError
    """
    from core.errors import CallNotFoundError

    frame = folder_calls(folder)
    match = frame[frame["call_id"] == call_id]
    if match.empty:
        raise CallNotFoundError(f"call {call_id} has no recording in {check_folder(folder)}")
    return Path(match.iloc[0]["path"])


# --- ViciDial -----------------------------------------------------------------------------------------
@st.cache_data(ttl=VICIDIAL_TTL_S, show_spinner=False, max_entries=32)
def vicidial_search(filters: Any, limit: int = 100) -> pd.DataFrame:
    """:func:`core.vicidial.search_recordings` with the app's settings (raises ``ViciDialError``)."""
    from core.vicidial import search_recordings

    return search_recordings(get_settings(), filters, limit=limit)


@st.cache_data(ttl=VICIDIAL_TTL_S, show_spinner=False)
def vicidial_ping() -> str:
    """Connect to ViciDial once; return the address (raises ``ViciDialError``/``ConfigError``)."""
    from core.vicidial import ViciDialSettings, connect

    vs = ViciDialSettings.from_settings(get_settings())
    with connect(vs) as session:
        session.query("SELECT 1 AS ok")
    return vs.address


# --- audio for the deep dive ------------------------------------------------------------------------
def split_source(source: str) -> tuple[Path, int | None]:
    """A leg's ``source`` (``path`` or ``path#chN``) as the file and the channel index."""
    path, sep, channel = source.rpartition("#ch")
    if sep and channel.isdigit():
        return Path(path), int(channel) - 1
    return Path(source), None


def file_stamp(source: str) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a leg's file, or None when it is gone (part of the cache keys)."""
    try:
        st_ = split_source(source)[0].stat()
    except OSError:
        return None
    return st_.st_mtime_ns, st_.st_size


def _leg_samples(source: str) -> tuple[np.ndarray, int]:
    from core.audio.io import load_audio

    path, channel = split_source(source)
    clips = load_audio(path)
    if channel is not None and channel < len(clips):
        return clips[channel].samples, clips[channel].sample_rate
    if len(clips) == 1:
        return clips[0].samples, clips[0].sample_rate
    mix = (clips[0].samples.astype(np.float64) + clips[1].samples) / 2
    return mix.astype(np.float32), clips[0].sample_rate


def envelope(samples: np.ndarray, sample_rate: int, width: int = ENVELOPE_WIDTH) -> pd.DataFrame:
    """Min/max of ``samples`` per pixel column: what a waveform plot needs, never the samples.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        One track, floats in [-1, 1].
    sample_rate : int
        In Hz.
    width : int
        Number of columns (at most ``n``).

    Returns
    -------
    pandas.DataFrame
        ``t_s`` (start of each column, seconds), ``lo`` and ``hi`` (min and max amplitude);
        ``min(width, n)`` rows.
    """
    n = int(samples.shape[0])
    if n == 0 or width < 1:
        return pd.DataFrame({"t_s": [], "lo": [], "hi": []})
    cols = min(int(width), n)
    starts = np.linspace(0, n, cols + 1).astype(np.int64)[:-1]
    lo = np.minimum.reduceat(samples, starts)
    hi = np.maximum.reduceat(samples, starts)
    return pd.DataFrame({"t_s": (starts / sample_rate).round(4), "lo": lo.astype("float64").round(4),
                         "hi": hi.astype("float64").round(4)})


@st.cache_data(show_spinner=False, max_entries=32)
def waveform_envelope(source: str, width: int, stamp: tuple[int, int] | None) -> pd.DataFrame:
    """The envelope of one leg, keyed by its file (path, channel, mtime, size) and the width."""
    samples, sr = _leg_samples(source)
    return envelope(samples, sr, width)


@st.cache_data(show_spinner=False, max_entries=8)
def leg_audio(source: str, stamp: tuple[int, int] | None) -> bytes:
    """One leg as 16-bit PCM WAV bytes: browsers do not play GSM or (reliably) mu-law WAV, and a
    stereo file's channel must be split out."""
    samples, sr = _leg_samples(source)
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


# --- analysing a call on the spot -------------------------------------------------------------------
def analyze_or_reuse(*, path: Path | None = None, recording_id: int | None = None,
                     progress=None) -> tuple[dict, bool]:
    """The analysis of a call from the store, or analysed now (and stored) when it is not there yet.

    Uses :func:`core.analysis_service.analyze_or_reuse`; clears the cached store queries after writing.

    Returns
    -------
    tuple of (dict, bool)
        The analysis JSON and whether it was already stored.
    """
    from core.analysis_service import Models, analyze_or_reuse

    settings = get_settings()
    if recording_id is not None:
        from core.fetch.service import recording_item

        item = recording_item(settings, recording_id)
    else:
        from core.work import path_item

        assert path is not None
        item = path_item(path, roots=tuple(allowed_folders()))  # every file of the call, symlinks followed
    models = Models(quality=_quality_model_or_none(), vad=get_vad())  # loaded once per process
    result = analyze_or_reuse(item, get_store(), models, settings, progress=progress)
    if not result.reused:
        clear_store_queries()
    return result.document, result.reused


def _quality_model_or_none():
    """The quality model; None (quality skipped, with the reason in the analysis) when unavailable."""
    from core.errors import ModelUnavailableError

    try:
        return get_quality_model()
    except ModelUnavailableError:
        return None


def today() -> datetime:
    """Now, local wall-clock time without a zone (how call times are stored)."""
    return datetime.now()



# --- Claude -------------------------------------------------------------------------------------------
def claude_configured() -> bool:
    """True when an API key is present (never says which)."""
    from core.llm.settings import ClaudeSettings

    try:
        return ClaudeSettings.from_settings(get_settings()).configured
    except ConfigError:
        return False


def _close_services(services) -> None:
    services.close()


@st.cache_resource(show_spinner=False, on_release=_close_services)
def get_llm_services(url: str):
    """The Claude adapters over the store at ``url`` (client built on first use)."""
    from core.llm.adapters import build_services

    return build_services(get_settings(), store_url=url)


def summarize_call(call_id: str, *, force: bool = False) -> dict[str, Any]:
    """Ask Claude (the summary model) for the summary of one stored call; store and return it."""
    from core.llm.summary import summarize_call as summarize

    services = get_llm_services(store_url())
    result = summarize(call_id, client=services.client(), settings=services.claude, calls=services.calls,
                       repo=services.repo, force=force)
    return result.as_dict()
