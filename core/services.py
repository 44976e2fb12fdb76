"""Use cases shared by the CLI, the dashboard, the API and the workers.

Each function takes settings and primitives, builds what it needs, calls the core and returns
plain results. Entry points stay thin: parse input, call one service, render.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from core.config import Settings
from core.pipeline import analyze_path
from core.results import CallAnalysis


def analyze_source(settings: Settings, path: str | Path, *, layout: str | None = None,
                   quality_model=None, progress=None, voices=None) -> CallAnalysis:
    """Analyse the call that the local recording ``path`` belongs to."""
    return analyze_path(path, cfg=settings.analysis, layout=layout, quality_model=quality_model,
                        progress=progress, voices=voices)


def analyze_recording_id(settings: Settings, recording_id: int, *, layout: str | None = None,
                         quality_model=None, progress=None, voices=None) -> CallAnalysis:
    """Fetch a ViciDial recording by ``recording_log.recording_id`` and analyse it.

    The fetched files live in a temporary folder removed afterwards (the fetch cache keeps a
    copy, so a repeat view does not download again). The ViciDial metadata travels with the
    result under ``vicidial``; fetch warnings (e.g. "fell back to the mix") join the warnings.
    """
    from core.fetch.service import fetch_vicidial_recording

    with run_tmp_dir(settings, "fetch") as tmp:
        if progress:
            progress("fetch")
        fetched = fetch_vicidial_recording(settings, recording_id, tmp)
        result = analyze_path(fetched.primary, cfg=settings.analysis, layout=layout,
                              quality_model=quality_model, progress=progress, voices=voices)
    result.warnings[:0] = list(fetched.warnings)
    result.extra["vicidial"] = dict(fetched.metadata)
    return result


@contextmanager
def run_tmp_dir(settings: Settings, purpose: str) -> Iterator[Path]:
    """A private temporary folder under ``Settings.tmp_dir``, removed on exit (also on failure)."""
    base = settings.tmp_dir
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"callqa-{purpose}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _quality_id(quality_model) -> str | None:
    return None if quality_model is None else f"{quality_model.name}-{quality_model.version}"


def ensure_analysis(settings: Settings, store, *, path: str | Path | None = None, recording_id: int | None = None,
                    layout: str | None = None, quality_model=None, progress=None,
                    force: bool = False, source_kind: str = "folder",
                    source_ref: str | None = None, roots=None) -> tuple[dict, bool]:
    """The analysis of one call from the store, or analysed now and stored.

    Exactly one of ``path`` (a local recording; its siblings are found by ViciDial naming) or
    ``recording_id`` (a ViciDial recording, fetched) names the call. A stored analysis is used
    when its cache key still matches (same bytes, thresholds, versions); for ViciDial recordings,
    also without refetching while it is younger than ``[scan] remote_ttl_s``. ``source_kind`` and
    ``source_ref`` say where a ``path`` came from when it is a temporary copy (e.g. a URL).
    ``roots`` (resolved folders) confines every file of a ``path``'s call, symlinks followed
    (:func:`core.audio.layout.call_files_for`): the API's and the dashboard's allowed folders.

    Returns
    -------
    (dict, bool)
        The ``callqa analyze --json`` object and whether it came from the store.
    """
    from core.audio.layout import call_files_for
    from core.errors import ConfigError
    from core.pipeline import analyze_call
    from core.store.cachekey import cache_key

    if (path is None) == (recording_id is None):
        raise ConfigError("give either a recording path or a ViciDial recording_id")
    cfg = settings.analysis
    qid = _quality_id(quality_model)
    if path is not None:
        call = call_files_for(path, roots=roots)
        key = cache_key(call, cfg, qid, layout=layout)
        if not force and store.cached(call.call_id, key):
            return store.get_analysis(call.call_id), True
        result = analyze_call(call, cfg=cfg, layout=layout, quality_model=quality_model, progress=progress)
        from core.scan import call_time_of

        store.save_analysis(result, cache_key=key, source_kind=source_kind,
                            source_ref=source_ref or str(Path(path).resolve()),
                            metadata={"call_time": call_time_of(call)})
        return result.as_dict(), False

    from core.fetch.service import fetch_recording, store_metadata
    from core.vicidial import get_recording

    assert recording_id is not None
    row = get_recording(settings, int(recording_id))
    call_id = str(row["filename"])
    ttl = float(settings.section("scan").get("remote_ttl_s", 86400))
    if not force and store.has_call(call_id) and store.fresh(call_id, max_age_s=ttl):
        stored = store.get_analysis(call_id)
        if stored.get("quality_model") == qid:
            return stored, True
    with run_tmp_dir(settings, "fetch") as tmp:
        if progress:
            progress("fetch")
        fetched = fetch_recording(settings, row, tmp)
        call = call_files_for(fetched.primary)
        key = cache_key(call, cfg, qid, layout=layout)
        if not force and store.cached(call_id, key):
            store.touch_fetched(call_id)
            return store.get_analysis(call_id), True
        result = analyze_call(call, cfg=cfg, layout=layout, quality_model=quality_model, progress=progress)
    result.warnings[:0] = list(fetched.warnings)
    result.extra["vicidial"] = dict(fetched.metadata)
    store.save_analysis(result, cache_key=key, source_kind="vicidial", source_ref=str(recording_id),
                        metadata=store_metadata(row), fetched_at=datetime.now(UTC).replace(tzinfo=None))
    return result.as_dict(), False
