"""NISQA v2.0 front end and batched scoring, shared by the PyTorch and ONNX Runtime backends.

Everything here is numpy/scipy: importing this module does not import torch. The network
itself is run by a backend (:mod:`core.quality.nisqa` on PyTorch, :mod:`core.quality.nisqa_onnx`
on ONNX Runtime), which subclasses :class:`NisqaScorer` and implements :meth:`NisqaScorer._run`.
Section numbers refer to ``../shared/docs/nisqa.md``.

Front end (per file, section 3)
    STFT with n_fft 4096, hop ``int(sr * 0.01)``, periodic Hann window of ``int(sr * 0.02)``
    samples, ``center=True`` with numpy-style reflect padding; magnitude; 48 Slaney mel bands
    from 0 to 20 kHz whatever the rate (upper bands empty below 40 kHz); ``20 log10`` with a
    1e-4 floor and a top-80 dB clamp relative to the file's own maximum.
Segmentation (section 4)
    15-frame segments every 4 frames: ``ceil((T - 14) / 4)`` segments of 48 x 15.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from core import fft
from core.errors import InvalidAudioError
from core.quality.base import regroup
from core.results import QualityScores

# --- constants of the checkpoint's ``args`` (section 2) ----------------------------------------
N_FFT = 4096
N_BINS = N_FFT // 2 + 1
HOP_S = 0.01
WIN_S = 0.02
N_MELS = 48
FMAX_HZ = 20000.0
AMIN = 1e-4
TOP_DB = 80.0
SEG_FRAMES = 15
SEG_HOP_FRAMES = 4
MAX_SEGMENTS = 1300
OUTPUTS = ("mos", "noisiness", "discontinuity", "coloration", "loudness")

# Work bound (it changes nothing numerically): padded segments (batch x longest) per network
# pass. A group's segments (2.9 KB each), CNN features and attention are in memory at once, so
# 8192 (33 windows of 10 s, ~50 MB with the PyTorch backend, which runs its CNN in chunks)
# bounds a call's peak memory whatever its length; bigger groups were no faster. A backend
# may set a smaller bound (:attr:`NisqaScorer.max_padded_segments`).
_MAX_PADDED_SEGMENTS = 8192
# Spans (call windows) whose spectrograms are made and scored together by score_spans: 32
# windows of 10 s are 7904 segments, one group of the bound above.
_SPANS_PER_PASS = 32
# Frames per block of the STFT -> mel product: 256 frames keep the zero-padded FFT input
# (256 x 4096 float32, 4 MB) and its spectrum near the caches; 4096 was ~25 % slower.
_STFT_BLOCK_FRAMES = 256
DEFAULT_THREADS = 2
_threads = DEFAULT_THREADS


def set_threads(threads: int) -> None:
    """Threads the front end splits long spans between (``[quality] threads``; process-wide).

    :func:`core.quality.manager.get_quality_model` sets it to the model's thread count, so the
    front end uses the cores the network will use.
    """
    global _threads
    if threads < 1:
        raise ValueError(f"threads={threads} must be positive")
    _threads = threads


# --- front end ---------------------------------------------------------------------------------
def frame_params(sample_rate: int) -> tuple[int, int]:
    """Hop and window length in samples: ``int(sr * 0.01)``, ``int(sr * 0.02)`` (Python truncation).

    >>> frame_params(22050)
    (220, 441)
    """
    return int(sample_rate * HOP_S), int(sample_rate * WIN_S)


def n_frames(n_samples: int, sample_rate: int) -> int:
    """Number of STFT frames of a signal with ``center=True``: ``1 + n // hop``."""
    return 1 + n_samples // frame_params(sample_rate)[0]


def n_segments(frames: int) -> int:
    """Number of 15-frame segments taken every 4 frames: ``ceil((T - 14) / 4)`` (0 if T < 15)."""
    if frames < SEG_FRAMES:
        return 0
    return -(-(frames - SEG_FRAMES + 1) // SEG_HOP_FRAMES)


def min_samples(sample_rate: int) -> int:
    """Fewest samples NISQA accepts: 15 frames, i.e. ``14 * hop`` (0.14 s at round rates)."""
    return (SEG_FRAMES - 1) * frame_params(sample_rate)[0]


def max_samples(sample_rate: int) -> int:
    """Most samples NISQA accepts in one pass: 1300 segments, i.e. ``5214 * hop - 1`` (52.14 s)."""
    max_frames = SEG_FRAMES - 1 + SEG_HOP_FRAMES * MAX_SEGMENTS  # 5214 frames give 1300 segments
    return max_frames * frame_params(sample_rate)[0] - 1


def check_length(n_samples: int, sample_rate: int, *, source: str) -> None:
    """Raise :class:`InvalidAudioError` when the official model would refuse this length (section 5)."""
    duration_s = n_samples / sample_rate
    if n_samples < min_samples(sample_rate):
        raise InvalidAudioError(
            f"{source}: {duration_s:.3f} s is too short for NISQA, which needs at least "
            f"{min_samples(sample_rate) / sample_rate:.2f} s (15 frames of 10 ms)"
        )
    if n_samples > max_samples(sample_rate):
        limit_s = (max_samples(sample_rate) + 1) / sample_rate
        raise InvalidAudioError(
            f"{source}: {duration_s:.2f} s is longer than the {limit_s:.2f} s NISQA v2.0 scores in one "
            f"pass ({MAX_SEGMENTS} segments); cut the file, or score the call in windows (callqa analyze)"
        )


def _hz_to_mel(freq_hz: ArrayLike) -> np.ndarray:
    """Slaney mel scale: linear (200/3 Hz per mel) below 1 kHz, logarithmic above."""
    f = np.asarray(freq_hz, dtype=np.float64)
    linear = f / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, linear)


def _mel_to_hz(mel: ArrayLike) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    linear = m * (200.0 / 3.0)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, linear)


def mel_band_edges_hz() -> np.ndarray:
    """The 50 band edges (Hz) of the 48 triangles: equally spaced on the Slaney mel scale, 0-20 kHz."""
    return _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(FMAX_HZ), N_MELS + 2))


@lru_cache(maxsize=16)
def mel_filterbank(sample_rate: int) -> np.ndarray:
    """The 48 x 2049 mel matrix for ``sample_rate`` (cached per rate, read-only).

    Triangles between consecutive band edges, each scaled by ``2 / (upper - lower)`` (Slaney
    area normalisation). Bands above the Nyquist frequency are all zero (section 3.3).

    Returns
    -------
    np.ndarray, shape (48, 2049), float32
    """
    edges = mel_band_edges_hz()
    bins_hz = np.linspace(0.0, sample_rate / 2.0, N_BINS)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bins_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    out = weights.astype(np.float32)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=16)
def _nonempty_bands(sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the mel bands with any weight at ``sample_rate`` and their weights, transposed.

    Returns
    -------
    (np.ndarray of int, np.ndarray of shape (2049, k) float32)
        At 8 kHz only 30 of the 48 bands lie below Nyquist; skipping the rest saves their products.
        Shared between calls: do not modify (both are read-only).
    """
    fbank = mel_filterbank(sample_rate)
    bands = np.flatnonzero(fbank.any(axis=1))
    weights = np.ascontiguousarray(fbank[bands].T)
    bands.flags.writeable = False
    weights.flags.writeable = False
    return bands, weights


@lru_cache(maxsize=16)
def _mel_layers(sample_rate: int) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
    """The non-empty mel triangles as two layers (even and odd bands) of disjoint bin ranges.

    A triangle is positive only strictly between its outer edges, and band ``b + 2`` starts
    where band ``b`` ends, so the even bands never share a bin, nor do the odd ones. Each layer
    is ``(bands, weights, starts)``: the band indices, one weight per FFT bin (that of the
    layer's band covering it, else 0) and the ``np.add.reduceat`` offsets ``lo0, hi0, lo1, ...``
    of the bands' ``[lo, hi)`` bin ranges; the band sums are the even entries of the reduction.
    This is the mel product without BLAS (whose own threads would compete with the front end's
    and the network's) and with about 15x fewer multiplications than the dense 2049 x k matrix.
    Shared between calls: read-only.
    """
    fbank = mel_filterbank(sample_rate)
    layers = []
    for parity in (0, 1):
        bands = np.array([b for b in range(parity, N_MELS, 2) if fbank[b].any()], dtype=np.intp)
        weights = np.zeros(N_BINS, dtype=np.float32)
        starts: list[int] = []
        for b in bands:
            support = np.flatnonzero(fbank[b])
            lo, hi = int(support[0]), int(support[-1]) + 1
            if weights[lo:hi].any() or not fbank[b, lo:hi].all():
                raise AssertionError(f"mel band {b} at {sample_rate} Hz is not a disjoint contiguous triangle")
            weights[lo:hi] = fbank[b, lo:hi]
            starts += [lo, hi]
        offsets = np.array([i for i in starts if i < N_BINS], dtype=np.intp)  # the last hi may be the end
        for arr in (bands, weights, offsets):
            arr.flags.writeable = False
        layers.append((bands, weights, offsets))
    return tuple(layers)


def _mel_product(magnitude: np.ndarray, sample_rate: int, out: np.ndarray) -> None:
    """``out[band, t] = sum_k fbank[band, k] * magnitude[t, k]`` for the non-empty bands (float32)."""
    for bands, weights, offsets in _mel_layers(sample_rate):
        if len(bands):
            sums = np.add.reduceat(magnitude * weights, offsets, axis=1)
            out[bands] = sums[:, 0 : 2 * len(bands) : 2].T


@lru_cache(maxsize=16)
def _hann(win: int) -> np.ndarray:
    """Periodic Hann window of ``win`` samples, float32 (read-only)."""
    w = (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)).astype(np.float32)
    w.flags.writeable = False
    return w


def reflect_pad(samples: np.ndarray, pad: int = N_FFT // 2) -> np.ndarray:
    """Pad both ends by mirroring without repeating the edge sample (numpy ``reflect``).

    Works for signals shorter than ``pad`` (the reflection repeats), unlike torch's reflect mode.
    """
    return np.pad(samples, pad, mode="reflect")


def padded_slice(samples: np.ndarray, lo: int, hi: int, pad: int = N_FFT // 2) -> np.ndarray:
    """``reflect_pad(samples, pad)[lo:hi]`` without padding (copying) the whole signal.

    A view when ``[lo, hi)`` lies inside the signal, else a copy of ``hi - lo`` samples; a windowed
    call of an hour no longer copies each whole leg to read a few windows of it.
    """
    n = len(samples)
    if n <= pad:  # reflections repeat: let numpy handle it
        return reflect_pad(samples, pad)[lo:hi]
    a, b = lo - pad, hi - pad
    if 0 <= a and b <= n:
        return samples[a:b]
    idx = np.abs(np.arange(a, b))  # left edge: -j mirrors to j (the edge sample is not repeated)
    idx = np.where(idx > n - 1, 2 * (n - 1) - idx, idx)  # right edge: n mirrors to n - 2
    return samples[idx]


def _log_mel_frames(padded: np.ndarray, sample_rate: int, frames: np.ndarray) -> np.ndarray:
    """Unclamped dB mel spectrum of the given STFT frames of an already padded signal.

    Frame ``t`` covers ``padded[t*hop : t*hop + 4096]``; the Hann window is centred in those
    4096 samples, so only its ``win`` non-zero samples are transformed. Moving them to the
    start of the FFT buffer changes only the phase, not the magnitude.

    Returns
    -------
    np.ndarray, shape (48, len(frames)), float32
    """
    hop, win = frame_params(sample_rate)
    offset = (N_FFT - win) // 2
    windows = sliding_window_view(padded[offset:], win)
    hann = _hann(win)
    # empty bands (above Nyquist) are exactly 0 before the floor, i.e. the floor itself
    out = np.full((N_MELS, len(frames)), AMIN, dtype=np.float32)

    def fill(lo_frame: int, hi_frame: int) -> None:
        # one zero-padded FFT buffer per worker: only its first ``win`` columns change
        buf = np.zeros((min(_STFT_BLOCK_FRAMES, hi_frame - lo_frame), N_FFT), dtype=np.float32)
        for lo in range(lo_frame, hi_frame, _STFT_BLOCK_FRAMES):
            idx = frames[lo : min(lo + _STFT_BLOCK_FRAMES, hi_frame)]
            n = len(idx)
            np.multiply(windows[idx * hop], hann, out=buf[:n, :win])
            magnitude = np.abs(fft.rfft(buf[:n], axis=1))
            _mel_product(magnitude, sample_rate, out[:, lo : lo + n])

    # Long spans are split between threads (numpy and scipy release the GIL), as many as the
    # network's threads (:func:`set_threads`). The mel product avoids BLAS: numpy's OpenBLAS
    # starts threads of its own that would fight these.
    parts = min(_threads, len(frames) // (2 * _STFT_BLOCK_FRAMES))
    if parts <= 1:
        fill(0, len(frames))
    else:
        cuts = [len(frames) * i // parts // _STFT_BLOCK_FRAMES * _STFT_BLOCK_FRAMES for i in range(parts)]
        cuts.append(len(frames))
        with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="nisqa-stft") as pool:
            list(pool.map(fill, cuts[:-1], cuts[1:]))
    np.maximum(out, AMIN, out=out)
    np.log10(out, out=out)
    out *= 20.0
    return out


def _clamp_top_db(spec_db: np.ndarray) -> np.ndarray:
    """Raise every value to at least ``max - 80 dB`` (in place; returns the array)."""
    np.maximum(spec_db, spec_db.max() - TOP_DB, out=spec_db)
    return spec_db


def melspectrogram_db(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """NISQA's input spectrogram of one file (section 3).

    Parameters
    ----------
    samples : np.ndarray, shape (n,), float32
        Mono samples in [-1, 1] at their native rate (absolute level matters).
    sample_rate : int
        Hz; sets hop and window length. Nothing is resampled.

    Returns
    -------
    np.ndarray, shape (48, 1 + n // hop), float32
        dB (ref 1.0, floor -80 dB), clamped to the file's maximum minus 80 dB.
    """
    x = np.asarray(samples, dtype=np.float32)
    padded = reflect_pad(x)
    frames = np.arange(n_frames(len(x), sample_rate))
    return _clamp_top_db(_log_mel_frames(padded, sample_rate, frames))


def segment_spectrogram(spec_db: np.ndarray) -> np.ndarray:
    """Cut a 48 x T spectrogram into 15-frame segments every 4 frames (section 4).

    Returns
    -------
    np.ndarray, shape (n_segments, 1, 48, 15), float32
        Mel on the height axis, time on the width axis.
    """
    count = n_segments(spec_db.shape[1])
    if count == 0:
        raise InvalidAudioError(
            f"spectrogram has {spec_db.shape[1]} frames; NISQA needs at least {SEG_FRAMES}"
        )
    views = sliding_window_view(spec_db, SEG_FRAMES, axis=1)[:, : SEG_HOP_FRAMES * count : SEG_HOP_FRAMES]
    return np.ascontiguousarray(views.transpose(1, 0, 2))[:, None]



# --- batched scoring ---------------------------------------------------------------------------
class NisqaScorer:
    """NISQA v2.0 behind the :class:`core.quality.base.QualityModel` protocol, minus the network.

    The front end, length checks, span spectrograms and length grouping live here; a backend
    implements :meth:`_run` (one batched network pass). Both backends share the name and
    version, hence :func:`core.quality.base.model_identity` (``nisqa-v2.0``): they give the same
    scores to float rounding (< 1e-5), so stored results and cache keys stay valid either way.
    Subclasses must stay stateless after construction and safe to share between threads.
    """

    name = "nisqa"
    version = "v2.0"
    #: ``"torch"`` or ``"onnx"``: which runtime runs the network
    backend = ""
    #: padded segments (batch x longest item) per network pass; see ``_MAX_PADDED_SEGMENTS``
    max_padded_segments = _MAX_PADDED_SEGMENTS

    def _run(self, segments: np.ndarray, lengths: list[int]) -> np.ndarray:
        """One network pass: ``segments`` (sum(lengths), 1, 48, 15) float32, the items' segments
        concatenated in order -> (len(lengths), 5) outputs (mos, noi, dis, col, loud)."""
        raise NotImplementedError

    def min_samples(self, sample_rate: int) -> int:
        return min_samples(sample_rate)

    def max_samples(self, sample_rate: int) -> int:
        return max_samples(sample_rate)

    def score_batch(
        self, clips: Sequence[tuple[np.ndarray, int]], *, names: Sequence[str] | None = None
    ) -> list[QualityScores]:
        """Score whole clips exactly as the official ``predict_dim`` scores files.

        Parameters
        ----------
        clips : sequence of (np.ndarray of shape (n,) float32, int)
            Mono samples in [-1, 1] and their sample rate in Hz.
        names : sequence of str, optional
            Used in error messages (file names); defaults to ``clip <i>``.

        Returns
        -------
        list of QualityScores
            One per clip, in order; raw model outputs (no clipping to 1-5).

        Raises
        ------
        InvalidAudioError
            A clip shorter than 0.14 s or longer than 52.14 s (checked before any scoring).
        """
        labels = list(names) if names is not None else [f"clip {i}" for i in range(len(clips))]
        for (samples, rate), label in zip(clips, labels, strict=True):
            check_length(len(samples), rate, source=label)
        return self.score_spectrograms([melspectrogram_db(s, r) for s, r in clips])

    def score_spans(
        self, signals: Sequence[tuple[np.ndarray, int, Sequence[tuple[int, int]]]]
    ) -> list[list[QualityScores]]:
        """Score sample spans ``[start, end)`` of signals, each as if it were a file of its own.

        Spans whose start falls on the signal's STFT grid (a multiple of the hop) reuse one
        STFT of the signal: their inner frames are shared, the frames that reach past a span
        edge are recomputed from the span's own reflect padding, and the top-80 dB clamp is
        applied relative to the span's own maximum, so the spectrogram is that of the cut
        span. Other spans get their own STFT.

        Spans are taken in order, all signals together, ``_SPANS_PER_PASS`` at a time: their
        spectrograms are computed and scored in one batched pass (the windows of both legs of
        a call of a few minutes go through the network together), then dropped, so memory does
        not grow with the length of the call.

        Parameters
        ----------
        signals : sequence of (samples, sample_rate, spans)
            ``spans`` are (start, end) sample indices; each must hold 0.14-52.14 s.

        Returns
        -------
        list of list of QualityScores
            ``out[i][j]`` scores span j of signal i.
        """
        items: list[tuple[int, tuple[int, int]]] = []
        for i, (samples, rate, spans) in enumerate(signals):
            for start, end in spans:
                if not 0 <= start < end <= len(samples):
                    raise InvalidAudioError(f"signal {i}: span [{start}, {end}) is outside its {len(samples)} samples")
                check_length(end - start, rate, source=f"signal {i} span [{start}, {end})")
                items.append((i, (start, end)))
        flat: list[QualityScores] = []
        for lo in range(0, len(items), _SPANS_PER_PASS):
            chunk = items[lo : lo + _SPANS_PER_PASS]
            specs: list[np.ndarray] = []
            for i in sorted({i for i, _ in chunk}):
                samples, rate, _ = signals[i]
                spans = [span for j, span in chunk if j == i]
                specs.extend(_span_spectrograms(np.asarray(samples, dtype=np.float32), rate, spans))
            flat.extend(self.score_spectrograms(specs))
        return regroup(flat, [len(spans) for _, _, spans in signals])

    def score_spectrograms(self, specs: Sequence[np.ndarray]) -> list[QualityScores]:
        """Score 48 x T dB spectrograms (already clamped) in as few batched passes as memory allows.

        Items are grouped by length so that padding stays small; padded segments are masked
        in attention keys and pooling, so grouping does not change the scores.
        """
        counts = [n_segments(spec.shape[1]) for spec in specs]
        for spec, count in zip(specs, counts, strict=True):
            if count == 0:
                segment_spectrogram(spec)  # raises the too-short error
            if count > MAX_SEGMENTS:
                raise InvalidAudioError(f"spectrogram gives {count} segments, over NISQA's {MAX_SEGMENTS}")
        results: list[QualityScores | None] = [None] * len(specs)
        order = sorted(range(len(specs)), key=lambda i: counts[i])
        # segments are cut one group at a time (or one per thread), so memory stays bounded
        # however long the call
        def run(group: list[int]) -> np.ndarray:
            lengths = [counts[i] for i in group]
            stacked = np.empty((sum(lengths), 1, N_MELS, SEG_FRAMES), dtype=np.float32)
            pos = 0
            for i, count in zip(group, lengths, strict=True):
                stacked[pos : pos + count] = segment_spectrogram(specs[i])
                pos += count
            return np.asarray(self._run(stacked, lengths), dtype=np.float64)

        groups = _length_groups(order, counts, self.max_padded_segments)
        for group, values in zip(groups, self._map_groups(run, groups), strict=True):
            for i, row in zip(group, values, strict=True):
                results[i] = QualityScores(*(float(v) for v in row))
        return [r for r in results if r is not None]

    def _map_groups(self, fn: Callable[[list[int]], np.ndarray], groups: list[list[int]]) -> Iterable[np.ndarray]:
        """Run the network on each group, in order (a backend may spread them over threads)."""
        return map(fn, groups)


def _length_groups(order: list[int], lengths: list[int], limit: int = _MAX_PADDED_SEGMENTS) -> list[list[int]]:
    """Split indices sorted by length into groups whose padded size stays under ``limit``
    (a group always holds at least one item)."""
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted ascending, so the newest item is the longest of its group
        if current and (len(current) + 1) * lengths[i] > limit:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def _span_spectrograms(samples: np.ndarray, sample_rate: int, spans: Sequence[tuple[int, int]]) -> list[np.ndarray]:
    """Clamped spectrograms of ``samples[start:end]`` for each span, sharing one STFT where possible."""
    hop, win = frame_params(sample_rate)
    # frame t of a span reaches samples [t*hop - reach, t*hop - reach + win) of that span
    reach = N_FFT // 2 - (N_FFT - win) // 2
    on_grid = [(s, e) for s, e in spans if s % hop == 0]
    shared: np.ndarray | None = None
    first = 0  # the signal frame of shared[:, 0]
    if len(on_grid) > 1:
        # the frames of the spans, and one STFT covering just them (not the whole signal)
        first = min(s for s, _ in on_grid) // hop
        last = max(s // hop + n_frames(e - s, sample_rate) for s, e in on_grid)
        needed = np.zeros(last - first, dtype=bool)
        for s, e in on_grid:
            needed[s // hop - first : s // hop - first + n_frames(e - s, sample_rate)] = True
        shared = np.empty((N_MELS, last - first), dtype=np.float32)
        frames = np.flatnonzero(needed)
        region = padded_slice(samples, first * hop, (first + int(frames[-1])) * hop + N_FFT)
        shared[:, frames] = _log_mel_frames(region, sample_rate, frames)
    out = []
    for s, e in spans:
        piece = samples[s:e]
        if shared is None or s % hop:
            out.append(melspectrogram_db(piece, sample_rate))
            continue
        count = n_frames(e - s, sample_rate)
        spec = shared[:, s // hop - first : s // hop - first + count].copy()
        t = np.arange(count)
        edge = np.flatnonzero((t * hop < reach) | (t * hop - reach + win > e - s))
        spec[:, edge] = _log_mel_frames(reflect_pad(piece), sample_rate, edge)
        out.append(_clamp_top_db(spec))
    return out


