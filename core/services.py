"""Use cases shared by the CLI, the dashboard, the API and the workers.

Each function takes settings and primitives, builds what it needs, calls the core and returns
plain results. Entry points stay thin: parse input, call one service, render.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.config import Settings
from core.pipeline import analyze_path
from core.results import CallAnalysis


def analyze_source(settings: Settings, path: str | Path, *, layout: str | None = None,
                   quality_model=None, progress=None) -> CallAnalysis:
    """Analyse the call that the local recording ``path`` belongs to."""
    return analyze_path(path, cfg=settings.analysis, layout=layout, quality_model=quality_model,
                        progress=progress)


def analyze_recording_id(settings: Settings, recording_id: int, *, layout: str | None = None,
                         quality_model=None, progress=None) -> CallAnalysis:
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
                              quality_model=quality_model, progress=progress)
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
