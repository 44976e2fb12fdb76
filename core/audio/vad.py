"""Speech segments per track with Silero VAD (ONNX model shipped inside the silero-vad package).

The model runs natively at 8 and 16 kHz on 32 ms chunks (256 / 512 samples plus 32 / 64 samples
of context from the previous chunk) and carries an LSTM state from chunk to chunk. We drive
its ONNX export with onnxruntime directly: the tracks of one call run side by side as one batch,
and we never import the ``silero_vad`` Python package, whose import sets torch's global thread
count as a side effect. Probabilities become segments with the same hysteresis Silero uses
(speech starts at ``threshold``, ends after ``min_silence_ms`` below ``threshold - 0.15``).
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr

from core.audio.io import AudioClip
from core.errors import ModelUnavailableError
from core.results import Interval

_CHUNK = {8000: 256, 16000: 512}
_CONTEXT = {8000: 32, 16000: 64}
MODEL_FILE = "silero_vad.onnx"


@dataclass(frozen=True)
class SpeechResult:
    """Speech segments of one track."""

    segments: tuple[Interval, ...]
    speech_ratio: float
    frame_s: float
    probs: np.ndarray = field(repr=False, compare=False)

    @property
    def speech_s(self) -> float:
        return float(sum(s.duration_s for s in self.segments))


def model_path() -> Path:
    """Locate the ONNX model inside the installed silero-vad package without importing it."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("Silero VAD is not installed (pip package silero-vad); run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / MODEL_FILE
    if not path.is_file():
        raise ModelUnavailableError(f"Silero VAD model missing at {path}; reinstall silero-vad (`make setup`)")
    return path


class SileroVAD:
    """A loaded Silero VAD session. Thread-safe: each call keeps its own state."""

    def __init__(self, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelUnavailableError(f"Silero VAD model cannot be loaded: {exc}") from None

    @staticmethod
    def model_rate(sample_rate: int) -> int:
        return 8000 if sample_rate < 16000 else 16000

    def probabilities(self, signals: Sequence[np.ndarray], sample_rate: int) -> list[np.ndarray]:
        """Speech probability per 32 ms chunk for each signal (all at ``sample_rate``, 8 or 16 kHz).

        The signals run as one batch; shorter ones are zero-padded and their extra chunks dropped.
        """
        chunk, context = _CHUNK[sample_rate], _CONTEXT[sample_rate]
        counts = [(len(s) + chunk - 1) // chunk for s in signals]
        n = max(counts)
        batch = len(signals)
        frames = np.zeros((batch, n * chunk), dtype=np.float32)
        for i, s in enumerate(signals):
            frames[i, : len(s)] = s
        frames = frames.reshape(batch, n, chunk)
        state = np.zeros((2, batch, 128), dtype=np.float32)
        ctx = np.zeros((batch, context), dtype=np.float32)
        sr = np.array(sample_rate, dtype=np.int64)
        out = np.empty((batch, n), dtype=np.float32)
        run = self._session.run
        for i in range(n):
            x = np.concatenate((ctx, frames[:, i]), axis=1)
            prob, state = run(None, {"input": x, "state": state, "sr": sr})
            out[:, i] = prob[:, 0]
            ctx = x[:, -context:]
        return [out[i, : counts[i]] for i in range(batch)]


_VAD: SileroVAD | None = None
_VAD_LOCK = threading.Lock()


def get_vad() -> SileroVAD:
    """The process-wide VAD session, loaded on first use."""
    global _VAD
    with _VAD_LOCK:
        if _VAD is None:
            _VAD = SileroVAD()
        return _VAD


def segments_from_probs(
    probs: np.ndarray,
    *,
    frame_s: float,
    duration_s: float,
    threshold: float = 0.5,
    min_speech_ms: int = 250,
    min_silence_ms: int = 100,
    speech_pad_ms: int = 30,
) -> tuple[Interval, ...]:
    """Turn per-chunk probabilities into speech intervals (Silero's hysteresis rules).

    Speech starts at the first chunk with ``p >= threshold``; it ends at the first chunk of a run
    of ``p < threshold - 0.15`` lasting at least ``min_silence_ms``. Segments shorter than
    ``min_speech_ms`` are dropped; the rest are padded by ``speech_pad_ms`` and merged.
    """
    neg = max(threshold - 0.15, 0.01)
    min_silence = min_silence_ms / 1000
    raw: list[tuple[float, float]] = []
    start: int | None = None
    quiet_from: int | None = None
    for i, p in enumerate(probs):
        if p >= threshold:
            quiet_from = None
            if start is None:
                start = i
        elif start is not None and p < neg:
            if quiet_from is None:
                quiet_from = i
            if (i + 1 - quiet_from) * frame_s >= min_silence:
                raw.append((start * frame_s, quiet_from * frame_s))
                start, quiet_from = None, None
    if start is not None:
        raw.append((start * frame_s, len(probs) * frame_s if quiet_from is None else quiet_from * frame_s))
    pad = speech_pad_ms / 1000
    merged: list[list[float]] = []
    for s, e in raw:
        if e - s < min_speech_ms / 1000:
            continue
        s, e = max(0.0, s - pad), min(duration_s, e + pad)
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return tuple(Interval(s, e) for s, e in merged)


def detect_speech(
    clips: Mapping[str, AudioClip],
    *,
    vad: SileroVAD | None = None,
    threshold: float = 0.5,
    min_speech_ms: int = 250,
    min_silence_ms: int = 100,
    speech_pad_ms: int = 30,
) -> dict[str, SpeechResult]:
    """Speech segments for every track of a call (tracks at the same rate share one batch).

    Parameters
    ----------
    clips : mapping of leg name to AudioClip
        Any sample rate; rates other than 8/16 kHz are resampled for the model only.

    Returns
    -------
    dict of leg name to SpeechResult
        Segments in seconds on each track's own time axis; ``speech_ratio`` = speech s / track s.
    """
    vad = vad or get_vad()
    groups: dict[int, list[tuple[str, np.ndarray]]] = {}
    for name, clip in clips.items():
        rate = vad.model_rate(clip.sample_rate)
        x = clip.samples if clip.sample_rate == rate else soxr.resample(clip.samples, clip.sample_rate, rate)
        groups.setdefault(rate, []).append((name, np.asarray(x, dtype=np.float32)))
    out: dict[str, SpeechResult] = {}
    for rate, members in groups.items():
        probs = vad.probabilities([x for _, x in members], rate)
        frame_s = _CHUNK[rate] / rate
        for (name, _), p in zip(members, probs, strict=True):
            duration = clips[name].duration_s
            segs = segments_from_probs(
                p, frame_s=frame_s, duration_s=duration, threshold=threshold,
                min_speech_ms=min_speech_ms, min_silence_ms=min_silence_ms, speech_pad_ms=speech_pad_ms,
            )
            speech_s = sum(s.duration_s for s in segs)
            out[name] = SpeechResult(segs, speech_s / duration if duration else 0.0, frame_s, p)
    return {name: out[name] for name in clips}
