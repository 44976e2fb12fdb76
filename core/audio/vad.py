"""Speech segments per track with Silero VAD (ONNX model shipped inside the silero-vad package).

The model works on 32 ms frames (512 samples at 16 kHz plus 64 samples of context from the
previous frame) and carries an LSTM state from frame to frame. We run the package's "sequence"
ONNX export with onnxruntime directly (one call per block of frames instead of one per frame),
skip long near-silent stretches where nobody can be speaking, and never import the
``silero_vad`` Python package, whose import sets torch's global thread count as a side effect. Probabilities become segments with the same hysteresis Silero uses
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
from core.audio.silence import detect_silence
from core.errors import ModelUnavailableError
from core.parallel import default_threads, parallel_map
from core.results import Interval

SEQUENCE_MODEL_FILE = "silero_vad_16k_sequence.onnx"
# gating: stretches quieter than this for at least GATE_MIN_S hold no speech and are skipped
GATE_NOISE_DB = -50.0
GATE_MIN_S = 0.3
GATE_MARGIN_S = 0.1
# silence fed before each stretch of a whole-track pass (0.5 s): the model settles as it does
# over the quiet audio the gate skips, and the stretches still run independently (in parallel)
FULL_WARM_FRAMES = 16
FULL_GATE_NOISE_DB = -60.0  # and it skips only stretches quieter than this (quiet talkers stay in)


@dataclass(frozen=True)
class SpeechResult:
    """Speech segments of one track."""

    segments: tuple[Interval, ...]
    speech_ratio: float
    frame_s: float
    probs: np.ndarray = field(repr=False, compare=False)
    full_probs: np.ndarray | None = field(default=None, repr=False, compare=False)
    """Whole-track probabilities (stretches warmed up on silence), when asked for."""

    @property
    def speech_s(self) -> float:
        return float(sum(s.duration_s for s in self.segments))


def model_path(name: str = SEQUENCE_MODEL_FILE) -> Path:
    """Locate an ONNX model inside the installed silero-vad package without importing it."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError("Silero VAD is not installed (pip package silero-vad); run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise ModelUnavailableError(f"Silero VAD model missing at {path}; reinstall silero-vad (`make setup`)")
    return path


class SileroVAD:
    """A loaded Silero VAD session (the sequence export: one ONNX call per block of frames).

    The sequence model runs at 16 kHz and returns the same per-frame probabilities as the
    streaming model fed frame by frame, without a Python loop per 32 ms frame. Thread-safe:
    each call keeps its own LSTM state.

    ``parallel`` is how many stretches of audio (each from a fresh state, so independent) are
    run at once, in threads sharing the session (onnxruntime releases the GIL): the gated
    stretches of both legs of a call spread over the cores. Results do not depend on it.
    """

    rate = 16000
    frame = 512
    context = 64

    def __init__(self, *, threads: int = 1, block_frames: int = 1024, parallel: int | None = None) -> None:
        import onnxruntime as ort

        self.parallel = max(1, parallel if parallel is not None else default_threads())
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.block_frames = block_frames
        try:
            self._session = ort.InferenceSession(
                str(model_path(SEQUENCE_MODEL_FILE)), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelUnavailableError(f"Silero VAD model cannot be loaded: {exc}") from None

    @property
    def frame_s(self) -> float:
        return self.frame / self.rate

    def probabilities(self, signal: np.ndarray) -> np.ndarray:
        """Speech probability of each 32 ms frame of a 16 kHz signal, from a fresh state."""
        n = (len(signal) + self.frame - 1) // self.frame
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        frames = np.zeros((n, self.frame), dtype=np.float32)
        frames.reshape(-1)[: len(signal)] = signal
        ctx = np.zeros((n, self.context), dtype=np.float32)
        ctx[1:] = frames[:-1, -self.context:]
        blocks = np.concatenate((ctx, frames), axis=1)
        h = np.zeros((1, 1, 128), dtype=np.float32)
        c = np.zeros((1, 1, 128), dtype=np.float32)
        out = []
        for i in range(0, n, self.block_frames):
            p, h, c = self._session.run(["speech_probs", "hn", "cn"], {"input": blocks[i: i + self.block_frames], "h": h, "c": c})
            out.append(p)
        return np.concatenate(out).reshape(-1).astype(np.float32)

    def tracks_probabilities(
        self, tracks: Sequence[tuple[AudioClip, Sequence[tuple[int, int]] | None]],
        *, warm_frames: Sequence[int] | None = None,
    ) -> list[np.ndarray]:
        """Per-frame probabilities of whole tracks, running the model only on each track's
        ``active`` frame ranges (all of it for None): frames outside them (long stretches of
        near-digital silence, where nobody speaks) get 0. Each range is resampled to 16 kHz on
        its own (no 16 kHz copy of a whole track). Ranges of all tracks run ``parallel`` at a
        time, longest first, so a call's legs share the cores.

        ``warm_frames[i]``: frames of digital silence fed before each stretch of track ``i``
        (their probabilities dropped), so the model has settled into its silence state when the
        stretch starts, as it has after the quiet audio the gate skipped; 0 (the default) starts
        each stretch from a fresh state.
        """
        outs: list[np.ndarray] = []
        jobs: list[tuple[int, int, int]] = []  # (track, first frame, end frame)
        for clip, active in tracks:
            n = int(np.ceil(clip.duration_s / self.frame_s))
            outs.append(np.zeros(n, dtype=np.float32))
            for a, b in active if active is not None else [(0, n)]:
                jobs.append((len(outs) - 1, a, b))
        clips = [clip for clip, _ in tracks]
        warm = list(warm_frames) if warm_frames is not None else [0] * len(tracks)

        def run(job: tuple[int, int, int]) -> np.ndarray:
            k, a, b = job
            clip = clips[k]
            sr = clip.sample_rate
            seg = clip.samples[int(round(a * self.frame_s * sr)): int(round(b * self.frame_s * sr))]
            if sr != self.rate:
                seg = np.asarray(soxr.resample(seg, sr, self.rate), dtype=np.float32)
            if warm[k]:
                return self.probabilities(np.concatenate((np.zeros(warm[k] * self.frame, np.float32), seg)))[warm[k]:]
            return self.probabilities(seg)

        jobs.sort(key=lambda j: j[1] - j[2])  # longest first: the threads finish together
        for (k, a, _), probs in zip(jobs, parallel_map(run, jobs, self.parallel), strict=True):
            out = outs[k]
            probs = probs[: len(out) - a]
            out[a: a + len(probs)] = probs
        return outs


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


def active_frames(clip: AudioClip, *, frame_s: float, noise_db: float = GATE_NOISE_DB) -> list[tuple[int, int]]:
    """Frame ranges (of ``frame_s``) that are not long near-silent stretches (below ``noise_db``
    for :data:`GATE_MIN_S`), with a margin."""
    gaps = detect_silence(clip, noise_db=noise_db, min_silence_s=GATE_MIN_S).silences
    n = int(np.ceil(clip.duration_s / frame_s))
    ranges: list[tuple[int, int]] = []
    start = 0.0
    for gap in [*gaps, Interval(clip.duration_s, clip.duration_s)]:
        if gap.start_s > start:
            a = max(0, int(np.floor((start - GATE_MARGIN_S) / frame_s)))
            b = min(n, int(np.ceil((gap.start_s + GATE_MARGIN_S) / frame_s)))
            if ranges and a <= ranges[-1][1]:
                ranges[-1] = (ranges[-1][0], b)
            elif b > a:
                ranges.append((a, b))
        start = gap.end_s
    return ranges


def whole_track_job(clip: AudioClip, vad: SileroVAD) -> tuple[AudioClip, list[tuple[int, int]]]:
    """The stretches of a whole-track pass: all but what stays below :data:`FULL_GATE_NOISE_DB`
    (run with ``warm_frames`` :data:`FULL_WARM_FRAMES`, see :func:`whole_track_probabilities`)."""
    return clip, active_frames(clip, frame_s=vad.frame_s, noise_db=FULL_GATE_NOISE_DB)


def whole_track_probabilities(clip: AudioClip, vad: SileroVAD) -> np.ndarray:
    """Probabilities over a whole track for splitting a mix into sides: only near-digital silence
    (below :data:`FULL_GATE_NOISE_DB`) is skipped, and every stretch starts after
    :data:`FULL_WARM_FRAMES` of silence, not from a cold state (what
    :func:`detect_speech` ``full=`` computes alongside the gated pass)."""
    return vad.tracks_probabilities([whole_track_job(clip, vad)], warm_frames=[FULL_WARM_FRAMES])[0]


def detect_speech(
    clips: Mapping[str, AudioClip],
    *,
    vad: SileroVAD | None = None,
    threshold: float = 0.5,
    min_speech_ms: int = 250,
    min_silence_ms: int = 100,
    speech_pad_ms: int = 30,
    gate: bool = True,
    full: Sequence[str] = (),
) -> dict[str, SpeechResult]:
    """Speech segments for every track of a call.

    Parameters
    ----------
    clips : mapping of leg name to AudioClip
        Any sample rate; the model sees a 16 kHz copy.
    gate : bool
        Skip long near-silent stretches (below -50 dBFS for 0.3 s), where nobody speaks.
    full : sequence of str
        Tracks that also get whole-track probabilities (``SpeechResult.full_probs``, as
        :func:`whole_track_probabilities` computes them: only audio below
        :data:`FULL_GATE_NOISE_DB` skipped, each stretch after :data:`FULL_WARM_FRAMES` of
        silence), run alongside the gated ones (the side split of a mixed track reads them).

    Returns
    -------
    dict of leg name to SpeechResult
        Segments in seconds on each track's own time axis; ``speech_ratio`` = speech s / track s.
    """
    vad = vad or get_vad()
    names = list(clips)
    wanted = [name for name in full if name in clips]
    all_probs = vad.tracks_probabilities(
        [(clips[name], active_frames(clips[name], frame_s=vad.frame_s) if gate else None) for name in names]
        + [whole_track_job(clips[name], vad) for name in wanted],
        warm_frames=[0] * len(names) + [FULL_WARM_FRAMES] * len(wanted),
    )
    full_probs = dict(zip(wanted, all_probs[len(names):], strict=True))
    out: dict[str, SpeechResult] = {}
    for name, probs in zip(names, all_probs[: len(names)], strict=True):
        clip = clips[name]
        duration = clip.duration_s
        segs = segments_from_probs(
            probs, frame_s=vad.frame_s, duration_s=duration, threshold=threshold,
            min_speech_ms=min_speech_ms, min_silence_ms=min_silence_ms, speech_pad_ms=speech_pad_ms,
        )
        speech_s = sum(s.duration_s for s in segs)
        out[name] = SpeechResult(segs, speech_s / duration if duration else 0.0, vad.frame_s, probs,
                                 full_probs.get(name))
    return out
