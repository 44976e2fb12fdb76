"""The interface every speech-quality model implements, so another model can replace NISQA.

NISQA's weights are CC BY-NC-SA 4.0 (non-commercial). A commercial deployment needs a
different model; it only has to satisfy :class:`QualityModel` for the windowed scorer
(:mod:`core.quality.windows`) and the CLI to use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from core.results import QualityScores

#: Mono float32 samples in [-1, 1] and their sample rate in Hz.
Signal = tuple[np.ndarray, int]
#: A signal and the ``[start, end)`` sample spans of it to score.
SpanRequest = tuple[np.ndarray, int, Sequence[tuple[int, int]]]


class QualityModel(Protocol):
    """A speech-quality model scoring mono clips into :class:`~core.results.QualityScores`.

    Implementations are loaded once per process and shared between threads, so they must not
    keep per-call state.
    """

    #: Short model name, e.g. ``"nisqa"``.
    name: str
    #: Version of the weights, e.g. ``"v2.0"``; ``f"{name}-{version}"`` labels stored results.
    version: str

    def min_samples(self, sample_rate: int) -> int:
        """Fewest samples the model accepts at ``sample_rate``."""
        ...

    def max_samples(self, sample_rate: int) -> int:
        """Most samples the model scores in one pass at ``sample_rate``."""
        ...

    def score_batch(self, clips: Sequence[Signal]) -> list[QualityScores]:
        """Score whole clips (one result per clip, in order); raise ``InvalidAudioError`` on bad lengths."""
        ...

    def score_spans(self, signals: Sequence[SpanRequest]) -> list[list[QualityScores]]:
        """Score spans of signals, each as if it were a clip of its own; ``out[i][j]`` is span j of signal i.

        A model without a faster path can return :func:`score_spans_by_cutting` ``(self, signals)``.
        """
        ...


def score_spans_by_cutting(model: QualityModel, signals: Sequence[SpanRequest]) -> list[list[QualityScores]]:
    """Reference implementation of :meth:`QualityModel.score_spans`: cut every span and score the batch."""
    cuts = [(samples[start:end], rate) for samples, rate, spans in signals for start, end in spans]
    return regroup(model.score_batch(cuts), [len(spans) for _, _, spans in signals])


def model_identity(model: QualityModel | None) -> str | None:
    """The identity of a quality model as stored results and cache keys name it: ``"nisqa-v2.0"``;
    None when there is no model (quality scoring off)."""
    if model is None:
        return None
    return f"{getattr(model, 'name', 'quality')}-{model.version}"


def regroup(flat: Sequence[QualityScores], counts: Sequence[int]) -> list[list[QualityScores]]:
    """Split a flat list of span scores back into one list per signal (``counts[i]`` spans each)."""
    out, pos = [], 0
    for count in counts:
        out.append(list(flat[pos : pos + count]))
        pos += count
    return out
