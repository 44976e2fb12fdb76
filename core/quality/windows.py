"""Speech quality over a whole call: score windows with speech, then average per track.

NISQA scores at most 52 s in one pass and a call is minutes long, so each track is cut into
windows of about ``window_s`` seconds every ``hop_s`` seconds, at the track's native rate:

* windows start at ``0, hop, 2*hop, ...`` as long as they fit; when the last of them stops
  short of the track's end, one more window ending exactly at the end is added;
* a track no longer than one window is a single window of its whole length, provided it is
  at least as long as the model's minimum (0.14 s for NISQA).

A window is kept when the VAD speech inside it lasts at least
``min(min_speech_s, window duration / 2)`` seconds. For full-length windows this is simply
``min_speech_s``; the halved rule only matters for a track shorter than ``2 * min_speech_s``,
whose single window is kept when at least half of it is speech. Windows without enough
speech (silence, hold music, one-way legs) would otherwise score the line noise.

All kept windows of all tracks go through the model in one batched pass. A track's call-level
scores are the mean of its window scores weighted by each window's speech seconds (equal
weights if every kept window has zero speech, which only ``min_speech_s=0`` allows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from core.audio.io import AudioClip
from core.errors import ParameterError
from core.quality.base import QualityModel, model_identity
from core.results import Interval, QualityScores, QualityWindow, TrackQuality


def plan_windows(n_samples: int, sample_rate: int, *, window_s: float, hop_s: float) -> list[tuple[int, int]]:
    """Sample spans ``[start, end)`` of the windows over a track (see the module docstring).

    Parameters
    ----------
    n_samples : int
        Track length in samples.
    sample_rate : int
        Hz.
    window_s, hop_s : float
        Window length and distance between window starts, in seconds (both > 0).

    Returns
    -------
    list of (int, int)
        Ordered spans; empty for an empty track. The length filter of the model is not applied.
    """
    if window_s <= 0 or hop_s <= 0:
        raise ParameterError(f"window_s={window_s} and hop_s={hop_s} must both be positive")
    if n_samples <= 0:
        return []
    window = max(1, round(window_s * sample_rate))
    hop = max(1, round(hop_s * sample_rate))
    if n_samples <= window:
        return [(0, n_samples)]
    spans = [(start, start + window) for start in range(0, n_samples - window + 1, hop)]
    if spans[-1][1] < n_samples:
        spans.append((n_samples - window, n_samples))
    return spans


def speech_seconds(intervals: Sequence[Interval], *, start_s: float, end_s: float) -> float:
    """Seconds of ``intervals`` that fall inside ``[start_s, end_s]`` (intervals assumed disjoint)."""
    return sum(max(0.0, min(iv.end_s, end_s) - max(iv.start_s, start_s)) for iv in intervals)


def required_speech_s(window_duration_s: float, *, min_speech_s: float) -> float:
    """Speech a window needs to be scored: ``min(min_speech_s, window_duration_s / 2)``."""
    return min(min_speech_s, window_duration_s / 2.0)


def weighted_scores(scores: Sequence[QualityScores], weights: Sequence[float]) -> QualityScores:
    """Weighted mean of each output; equal weights when the weights sum to zero."""
    table = np.array([[s.mos, s.noisiness, s.discontinuity, s.coloration, s.loudness] for s in scores])
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(len(table))
    return QualityScores(*(float(v) for v in w @ table / w.sum()))


def score_tracks(
    model: QualityModel,
    tracks: Mapping[str, AudioClip],
    speech: Mapping[str, Sequence[Interval]],
    *,
    window_s: float = 10.0,
    hop_s: float = 5.0,
    min_speech_s: float = 3.0,
) -> dict[str, tuple[TrackQuality | None, str | None]]:
    """Windowed, speech-gated quality of every track of a call, scored in one batch.

    Parameters
    ----------
    model : QualityModel
        Usually :func:`core.quality.manager.get_quality_model` ``()``.
    tracks : mapping of str to AudioClip
        Leg name (``caller``, ``agent``, ``mixed`` ...) to its mono clip at its native rate.
    speech : mapping of str to sequence of Interval
        VAD speech intervals of each track, in seconds; every track needs an entry.
    window_s, hop_s : float
        Window length and hop in seconds (``[analysis] quality_window_s`` / ``quality_hop_s``).
        ``window_s`` may not exceed what the model scores in one pass (52.14 s for NISQA).
    min_speech_s : float
        Speech a window needs to be scored (``[analysis] quality_min_speech_s``), see above.

    Returns
    -------
    dict of str to (TrackQuality or None, str or None)
        Per track, in the order of ``tracks``: the quality and ``None``, or ``None`` and the
        reason no score was produced (e.g. ``"no window with at least 3.0 s of speech"``).

    Raises
    ------
    ParameterError
        Non-positive ``window_s``/``hop_s``, negative ``min_speech_s``, a window longer than the
        model accepts, or a track without speech intervals.
    """
    if min_speech_s < 0:
        raise ParameterError(f"min_speech_s={min_speech_s} must not be negative")
    missing = [name for name in tracks if name not in speech]
    if missing:
        raise ParameterError(f"no speech intervals given for track(s) {', '.join(missing)}")
    label = model_identity(model)
    results: dict[str, tuple[TrackQuality | None, str | None]] = {}
    kept: dict[str, list[tuple[int, int, float]]] = {}
    for name, clip in tracks.items():
        rate = clip.sample_rate
        if round(window_s * rate) > model.max_samples(rate):
            limit_s = model.max_samples(rate) / rate
            raise ParameterError(f"window_s={window_s} is longer than the {limit_s:.2f} s {label} scores at {rate} Hz")
        if len(clip.samples) < model.min_samples(rate):
            need_s = model.min_samples(rate) / rate
            results[name] = (None, f"track is {clip.duration_s:.2f} s long; {label} needs at least {need_s:.2f} s")
            continue
        windows = []
        needed_s = min_speech_s
        for start, end in plan_windows(len(clip.samples), rate, window_s=window_s, hop_s=hop_s):
            start_s, end_s = start / rate, end / rate
            needed_s = required_speech_s(end_s - start_s, min_speech_s=min_speech_s)
            talk_s = speech_seconds(speech[name], start_s=start_s, end_s=end_s)
            if talk_s >= needed_s:
                windows.append((start, end, talk_s))
        if windows:
            kept[name] = windows
            results[name] = (None, None)  # placeholder keeps the order of ``tracks``
        else:
            results[name] = (None, f"no window with at least {round(needed_s, 2)} s of speech")
    if not kept:
        return results
    scored = model.score_spans(
        [(tracks[name].samples, tracks[name].sample_rate, [(s, e) for s, e, _ in spans]) for name, spans in kept.items()]
    )
    for (name, spans), scores in zip(kept.items(), scored, strict=True):
        rate = tracks[name].sample_rate
        scored_windows = tuple(
            QualityWindow(start_s=s / rate, end_s=e / rate, scores=sc, speech_s=talk_s)
            for (s, e, talk_s), sc in zip(spans, scores, strict=True)
        )
        overall = weighted_scores([w.scores for w in scored_windows], [w.speech_s for w in scored_windows])
        results[name] = (TrackQuality(scores=overall, windows=scored_windows, model=label), None)
    return results
