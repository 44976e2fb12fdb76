"""Speech quality: the model interface, NISQA v2.0, its weights and windowed scoring over a call.

Public API::

    from core.quality import get_quality_model, score_tracks

    model = get_quality_model()                       # loads the weights once per process
    model.score_batch([(samples, sample_rate)])       # whole clips, official NISQA scores
    score_tracks(model, {"caller": clip}, {"caller": speech_intervals})   # windowed, per call

Importing this package does not import torch; :func:`get_quality_model` does, when called.
The NISQA weights are CC BY-NC-SA 4.0 (non-commercial): see :mod:`core.quality.manager`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.quality.base import QualityModel, score_spans_by_cutting
from core.quality.windows import plan_windows, score_tracks

if TYPE_CHECKING:
    from core.quality.manager import get_quality_model, install_weights, weights_path

__all__ = [
    "QualityModel",
    "get_quality_model",
    "install_weights",
    "plan_windows",
    "score_spans_by_cutting",
    "score_tracks",
    "weights_path",
]

_FROM_MANAGER = ("get_quality_model", "install_weights", "weights_path")


def __getattr__(name: str) -> Any:
    # Imported on first use so that ``python -m core.quality.manager`` does not find the
    # manager already imported by its own package (runpy warns about that).
    if name in _FROM_MANAGER:
        from core.quality import manager

        return getattr(manager, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
