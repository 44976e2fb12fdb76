"""Windowed quality over a call: window layout, speech gating, weighting, batching.

Layout and weighting use a fake model whose scores are known functions of the window; the
equality checks (shared STFT vs cut window, batched vs one by one) use the real NISQA weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from core.audio.io import AudioClip
from core.errors import ParameterError
from core.quality.base import score_spans_by_cutting
from core.quality.manager import get_quality_model
from core.quality.windows import plan_windows, required_speech_s, score_tracks, speech_seconds
from core.results import Interval, QualityScores, TrackQuality

RATE = 8000


def quality_of(result: tuple[TrackQuality | None, str | None]) -> TrackQuality:
    """The TrackQuality of a ``score_tracks`` entry that must have been scored."""
    quality, reason = result
    assert quality is not None and reason is None, reason
    return quality


def clip(samples: np.ndarray, rate: int = RATE, name: str = "leg.wav") -> AudioClip:
    return AudioClip(samples=np.asarray(samples, dtype=np.float32), sample_rate=rate, path=Path(name))


class FakeModel:
    """Scores a span with ``mos`` = its start time in seconds + 1 and the other outputs fixed."""

    name = "fake"
    version = "v1"

    def __init__(self) -> None:
        self.span_calls = 0

    def min_samples(self, sample_rate: int) -> int:
        return int(0.14 * sample_rate)

    def max_samples(self, sample_rate: int) -> int:
        return 20 * sample_rate

    def score_batch(self, clips: Sequence[tuple[np.ndarray, int]]) -> list[QualityScores]:
        # the test signals are a ramp of sample indices, so samples[0] / rate is the span start
        return [QualityScores(float(s[0]) / r + 1.0, 2.0, 3.0, 4.0, 5.0) for s, r in clips]

    def score_spans(self, signals):
        self.span_calls += 1
        return score_spans_by_cutting(self, signals)


def ramp(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.arange(round(seconds * rate), dtype=np.float64)


def speechlike(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Harmonic bursts with pauses and a level that changes from second to second."""
    t = np.arange(round(seconds * rate)) / rate
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for f0 in (140.0,) for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2
    level = np.repeat(rng.uniform(0.05, 0.5, size=int(seconds) + 1), rate)[: len(t)]
    noise = 0.003 * rng.standard_normal(len(t))
    return (level * syllables * voice * 0.2 + noise).astype(np.float32)


# --- window layout ------------------------------------------------------------------------------
def test_windows_every_hop_and_the_last_one_aligned_to_the_end() -> None:
    spans = plan_windows(32 * RATE, RATE, window_s=10.0, hop_s=5.0)
    starts_s = [s / RATE for s, _ in spans]
    assert starts_s == [0.0, 5.0, 10.0, 15.0, 20.0, 22.0]
    assert all(e - s == 10 * RATE for s, e in spans)
    assert spans[-1][1] == 32 * RATE


def test_no_extra_window_when_the_hops_end_exactly_at_the_end() -> None:
    spans = plan_windows(30 * RATE, RATE, window_s=10.0, hop_s=5.0)
    assert [s / RATE for s, _ in spans] == [0.0, 5.0, 10.0, 15.0, 20.0]


@pytest.mark.parametrize("seconds", [0.5, 7.0, 10.0])
def test_a_track_no_longer_than_a_window_is_one_window(seconds: float) -> None:
    assert plan_windows(round(seconds * RATE), RATE, window_s=10.0, hop_s=5.0) == [(0, round(seconds * RATE))]


def test_empty_track_has_no_window() -> None:
    assert plan_windows(0, RATE, window_s=10.0, hop_s=5.0) == []


@pytest.mark.parametrize(("window_s", "hop_s"), [(0.0, 5.0), (10.0, 0.0), (-1.0, 5.0)])
def test_non_positive_window_or_hop_is_refused(window_s: float, hop_s: float) -> None:
    with pytest.raises(ParameterError, match="must both be positive"):
        plan_windows(RATE, RATE, window_s=window_s, hop_s=hop_s)


def test_speech_seconds_counts_only_the_overlap() -> None:
    intervals = [Interval(1.0, 4.0), Interval(9.0, 12.0), Interval(20.0, 21.0)]
    assert speech_seconds(intervals, start_s=2.0, end_s=10.0) == pytest.approx(3.0)
    assert speech_seconds(intervals, start_s=12.0, end_s=20.0) == 0.0


def test_required_speech_is_halved_only_for_short_windows() -> None:
    assert required_speech_s(10.0, min_speech_s=3.0) == 3.0
    assert required_speech_s(6.0, min_speech_s=3.0) == 3.0
    assert required_speech_s(4.0, min_speech_s=3.0) == 2.0


# --- gating and weighting (fake model) -----------------------------------------------------------
def test_only_windows_with_enough_speech_are_scored_and_weighted_by_speech() -> None:
    model = FakeModel()
    # 30 s track: windows start at 0, 5, 10, 15, 20 s; speech 0-4 s and 12-20 s
    speech = [Interval(0.0, 4.0), Interval(12.0, 20.0)]
    quality = quality_of(score_tracks(model, {"caller": clip(ramp(30))}, {"caller": speech})["caller"])
    got = [(w.start_s, w.end_s, w.speech_s) for w in quality.windows]
    # 0-10: 4 s, 5-15: 3 s, 10-20: 8 s, 15-25: 5 s kept; 20-30: 0 s dropped
    assert got == [(0.0, 10.0, 4.0), (5.0, 15.0, 3.0), (10.0, 20.0, 8.0), (15.0, 25.0, 5.0)]
    assert [w.scores.mos for w in quality.windows] == [1.0, 6.0, 11.0, 16.0]
    expected = (4 * 1.0 + 3 * 6.0 + 8 * 11.0 + 5 * 16.0) / 20
    assert quality.scores.mos == pytest.approx(expected)
    assert quality.scores.loudness == pytest.approx(5.0)
    assert quality.model == "fake-v1"
    assert quality.worst_window == quality.windows[0]


def test_all_tracks_go_through_the_model_in_one_call_and_keep_their_order() -> None:
    model = FakeModel()
    tracks = {"agent": clip(ramp(12)), "silent": clip(np.zeros(12 * RATE)), "caller": clip(ramp(25))}
    speech = {"agent": [Interval(0.0, 12.0)], "silent": [], "caller": [Interval(5.0, 25.0)]}
    results = score_tracks(model, tracks, speech)
    assert list(results) == ["agent", "silent", "caller"]
    assert model.span_calls == 1
    assert results["silent"] == (None, "no window with at least 3.0 s of speech")
    assert [w.start_s for w in quality_of(results["agent"]).windows] == [0.0, 2.0]
    assert [w.start_s for w in quality_of(results["caller"]).windows] == [0.0, 5.0, 10.0, 15.0]


def test_a_short_track_needs_half_of_it_to_be_speech() -> None:
    model = FakeModel()
    tracks = {"a": clip(ramp(4)), "b": clip(ramp(4))}
    speech = {"a": [Interval(1.0, 3.1)], "b": [Interval(1.0, 2.9)]}
    results = score_tracks(model, tracks, speech)
    assert quality_of(results["a"]).windows[0].end_s == 4.0
    assert results["b"] == (None, "no window with at least 2.0 s of speech")


def test_a_track_below_the_models_minimum_gets_a_reason() -> None:
    results = score_tracks(FakeModel(), {"a": clip(ramp(0.1))}, {"a": [Interval(0.0, 0.1)]})
    assert results["a"] == (None, "track is 0.10 s long; fake-v1 needs at least 0.14 s")


def test_min_speech_zero_keeps_silent_windows_without_nan() -> None:
    quality = quality_of(score_tracks(FakeModel(), {"a": clip(ramp(20))}, {"a": []}, min_speech_s=0.0)["a"])
    assert len(quality.windows) == 3
    assert quality.scores.mos == pytest.approx((1.0 + 6.0 + 11.0) / 3)


def test_parameter_errors() -> None:
    tracks = {"a": clip(ramp(5))}
    with pytest.raises(ParameterError, match="no speech intervals given for track"):
        score_tracks(FakeModel(), tracks, {})
    with pytest.raises(ParameterError, match="min_speech_s=-1"):
        score_tracks(FakeModel(), tracks, {"a": []}, min_speech_s=-1.0)
    with pytest.raises(ParameterError, match=r"window_s=30.0 is longer than the 20.00 s fake-v1 scores"):
        score_tracks(FakeModel(), tracks, {"a": []}, window_s=30.0)


# --- the real model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    return get_quality_model()


def as_tuple(scores: QualityScores) -> tuple[float, ...]:
    return dataclasses.astuple(scores)


# 4.4 s = 441 hops of 220 samples: on the STFT grid at 22.05 kHz, whose odd 441-sample window
# reaches one sample further back than forward
@pytest.mark.parametrize(("rate", "hop_s"), [(8000, 5.0), (22050, 4.4)])
def test_spans_from_a_shared_stft_equal_the_cut_windows(model, rate: int, hop_s: float, rng) -> None:
    samples = speechlike(27.0, rate, rng)
    spans = plan_windows(len(samples), rate, window_s=10.0, hop_s=hop_s)
    assert len(spans) == 5  # four on the frame grid share one STFT, the last (17-27 s) is off it
    (shared,) = model.score_spans([(samples, rate, spans)])
    for (start, end), fast in zip(spans, shared, strict=True):
        (cut,) = model.score_batch([(samples[start:end].copy(), rate)])
        assert as_tuple(fast) == pytest.approx(as_tuple(cut), abs=1e-4)


def test_batched_windows_equal_windows_scored_one_by_one(model, rng: np.random.Generator) -> None:
    tracks = {"caller": clip(speechlike(22.0, RATE, rng)), "agent": clip(speechlike(7.5, 16000, rng), rate=16000)}
    speech = {name: [Interval(0.0, c.duration_s)] for name, c in tracks.items()}
    results = score_tracks(model, tracks, speech)
    for name, result in results.items():
        quality, c = quality_of(result), tracks[name]
        for window in quality.windows:
            start, end = round(window.start_s * c.sample_rate), round(window.end_s * c.sample_rate)
            (alone,) = model.score_batch([(c.samples[start:end], c.sample_rate)])
            assert as_tuple(window.scores) == pytest.approx(as_tuple(alone), abs=1e-5)
    assert len(quality_of(results["caller"]).windows) == 4 and len(quality_of(results["agent"]).windows) == 1
    assert quality_of(results["agent"]).model == "nisqa-v2.0"


def test_digital_silence_scores_are_finite(model) -> None:
    quality = quality_of(score_tracks(model, {"out": clip(np.zeros(12 * RATE))}, {"out": [Interval(0.0, 12.0)]})["out"])
    assert np.isfinite(as_tuple(quality.scores)).all()
