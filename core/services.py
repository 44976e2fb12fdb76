"""Use cases shared by the CLI, the dashboard, the API and the workers.

Each function takes settings and primitives, builds what it needs, calls the core and returns
plain results. Entry points stay thin: parse input, call one service, render.
"""

from __future__ import annotations

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
    """Fetch a ViciDial recording by ``recording_log.recording_id`` and analyse it."""
    from core.errors import ConfigError

    raise ConfigError("ViciDial access is not available yet in this build")
