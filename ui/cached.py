"""Streamlit caches over ``core``: resources once per process, queries per arguments with a TTL.

- ``st.cache_resource``: the settings (configuration file + ``.streamlit/secrets.toml``), the
  result store, the quality model and the VAD. Shared by every session; never mutated.
- ``st.cache_data``: store queries, ViciDial searches, folder listings, waveform envelopes and
  playable audio, keyed by their arguments (the store URL is always one of them, so pointing
  the app at another store never serves stale rows).

Nothing here renders and no rule lives here: which store, which folders, envelopes and downmix
are in ``core`` (:mod:`core.dashboard`, :mod:`core.audio.preview`). Pages turn the
``CallQAError`` these raise into messages through :mod:`ui.errors`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import dashboard
from core.audio import preview
from core.config import Settings, load_settings
from core.dashboard import StoreTarget
from core.errors import ConfigError, StoreError
from core.store import ResultStore, open_store, queries

QUERY_TTL_S = 60
VICIDIAL_TTL_S = 120
#: The sections of ``.streamlit/secrets.toml`` merged into the configuration file's.
SECRET_SECTIONS = ("store", "paths", "vicidial", "recordings", "claude", "analysis", "quality", "dashboard")


# --- configuration ---------------------------------------------------------------------------------
def secret_sections() -> dict[str, dict[str, Any]]:
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
    secrets = secret_sections()
    if not secrets:
        return base
    raw = dict(base.raw)
    for name, values in secrets.items():
        section = raw.get(name, {})
        raw[name] = {**(section if isinstance(section, dict) else {}), **values}
    return Settings(path=base.path, raw=raw)


def store_target(settings: Settings | None = None) -> StoreTarget:
    """The store the app reads (:func:`core.dashboard.store_target`)."""
    return dashboard.store_target(settings or get_settings())


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


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def headlines(url: str, call_ids: tuple[str, ...]) -> pd.DataFrame:
    """:func:`core.store.queries.call_headlines` of the given calls."""
    return queries.call_headlines(get_store(), call_ids)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=32)
def ai_summary(url: str, call_id: str) -> dict[str, Any] | None:
    """The newest stored Claude summary of a call, or None."""
    return get_store().get_ai_summary(call_id)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def call_refs(url: str, call_ids: tuple[str, ...]) -> dict[str, str]:
    """``{call_id: reference}`` of stored calls (deep links without the number, for viewers)."""
    from core.llm.adapters import StoreCallReader

    return StoreCallReader(get_store()).refs_for(list(call_ids)) if call_ids else {}


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def call_for_ref(url: str, ref: str) -> str | None:
    """The call id behind a reference, or None."""
    from core.errors import CallNotFoundError
    from core.llm.adapters import StoreCallReader

    try:
        return StoreCallReader(get_store()).get_call(ref).call_id
    except CallNotFoundError:
        return None


def purged_on(url: str, call_id: str):
    """When the retention deleted ``call_id`` (UTC), or None (:func:`core.retention.purged_on`)."""
    from core.retention import purged_on as when

    return when(get_store(), call_id)


# --- recording folders -----------------------------------------------------------------------------
def allowed_folders(settings: Settings | None = None) -> list[Path]:
    """:func:`core.dashboard.allowed_folders` with the app's settings."""
    return dashboard.allowed_folders(settings or get_settings())


def check_folder(folder: str) -> Path:
    """:func:`core.dashboard.check_folder` with the app's settings (raises ``ConfigError``)."""
    return dashboard.check_folder(get_settings(), folder)


@st.cache_data(ttl=30, show_spinner=False, max_entries=16)
def folder_calls(folder: str) -> pd.DataFrame:
    """:func:`core.dashboard.folder_calls` of an allowed folder, newest first."""
    return dashboard.folder_calls(get_settings(), folder)


def find_in_folder(folder: str, call_id: str) -> Path:
    """One recording of ``call_id`` in an allowed folder (raises ``ConfigError``, ``CallNotFoundError``)."""
    return dashboard.find_in_folder(folder_calls(folder), check_folder(folder), call_id)


# --- ViciDial -----------------------------------------------------------------------------------------
@st.cache_data(ttl=VICIDIAL_TTL_S, show_spinner=False, max_entries=32)
def vicidial_search(filters: Any, limit: int = 100) -> pd.DataFrame:
    """:func:`core.vicidial.search_recordings` with the app's settings (raises ``ViciDialError``)."""
    from core.vicidial import search_recordings

    return search_recordings(get_settings(), filters, limit=limit)


# --- audio for the deep dive ------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=32)
def waveform_envelope(source: str, width: int, stamp: tuple[int, int] | None) -> pd.DataFrame:
    """The envelope of one leg, keyed by its file (path, channel, mtime, size) and the width."""
    return preview.envelope(*preview.leg_samples(source), width)


@st.cache_data(show_spinner=False, max_entries=8)
def leg_audio(source: str, stamp: tuple[int, int] | None) -> bytes:
    """One leg as 16-bit PCM WAV bytes (a stereo file's channel split out)."""
    return preview.wav_bytes(*preview.leg_samples(source))


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
    from core.analysis_service import Models, analyze_or_reuse, call_item

    settings = get_settings()
    roots = tuple(allowed_folders()) if path is not None else None  # every file of the call, symlinks followed
    item = call_item(settings, path=path, recording_id=recording_id, roots=roots)
    models = Models(quality=_quality_model_or_none(), vad=get_vad())  # loaded once per process
    result = analyze_or_reuse(item, get_store(), models, settings, progress=progress)
    if not result.reused:
        clear_store_queries()
    return result.document, result.reused


def mark_agent_side(call_id: str, side: str, *, set_by: str | None = None) -> dict[str, Any]:
    """An analyst's "this side is the agent": remembered (with who marked it), the call analysed again
    (clears the caches)."""
    from core.analysis_service import Models, mark_agent_side

    settings = get_settings()
    models = Models(quality=_quality_model_or_none(), vad=get_vad())
    result = mark_agent_side(get_store(), settings, models, call_id, side, roots=tuple(allowed_folders()),
                             set_by=set_by)
    clear_store_queries()
    return result.document


@st.cache_data(ttl=60, max_entries=64, show_spinner=False)
def side_stats(url: str, **kwargs: Any) -> pd.DataFrame:
    from core.store.side_stats import side_stats

    return side_stats(get_store(), **kwargs)


def _quality_model_or_none():
    """The quality model; None (quality skipped, with the reason in the analysis) when unavailable."""
    from core.errors import ModelUnavailableError

    try:
        return get_quality_model()
    except ModelUnavailableError:
        return None


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


def summarize_call(call_id: str, *, force: bool = False, audit: Any = None) -> dict[str, Any]:
    """Ask Claude (the summary model) for the summary of one stored call; store and return it.

    What is sent follows ``[privacy] send_to_claude``; ``audit`` (the user's trail) records it.
    """
    from core.llm.summary import summarize_call as summarize

    services = get_llm_services(store_url())
    result = summarize(call_id, client=services.client(), settings=services.claude, calls=services.calls,
                       repo=services.repo, force=force, policy=services.policy, audit=audit)
    return result.as_dict()
