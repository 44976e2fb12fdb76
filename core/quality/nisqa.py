"""NISQA v2.0 speech-quality model: front end, network and batched scoring.

A clean re-implementation of the inference path of NISQA v2.0 (Mittag et al., Interspeech
2021) from ``../shared/docs/nisqa.md``; section numbers below refer to that note. It loads the
official ``nisqa.tar`` checkpoint unchanged (the module tree mirrors its key names, so
``load_state_dict(strict=True)`` works) and reproduces the official scores: audio at its own
sample rate, no resampling, no normalisation, raw linear outputs.

The weights are licensed CC BY-NC-SA 4.0 (non-commercial); see :mod:`core.quality.manager`.

Front end (per file, section 3)
    STFT with n_fft 4096, hop ``int(sr * 0.01)``, periodic Hann window of ``int(sr * 0.02)``
    samples, ``center=True`` with numpy-style reflect padding; magnitude; 48 Slaney mel bands
    from 0 to 20 kHz whatever the rate (upper bands empty below 40 kHz); ``20 log10`` with a
    1e-4 floor and a top-80 dB clamp relative to the file's own maximum.
Segmentation (section 4)
    15-frame segments every 4 frames: ``ceil((T - 14) / 4)`` segments of 48 x 15.
Network (section 6)
    AdaptCNN per segment (384 values), a 2-layer single-head post-norm self-attention encoder
    without positional encoding, five attention-pooling heads (mos, noi, dis, col, loud).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.fft

# OpenMP threads that spin while waiting steal the CPU from other processes on a busy 2-core
# machine (a scan's other worker, the dashboard): measured 2.9 s -> 2.2 s for a 3-minute call
# under load, no cost when idle (bench/README.md). Read once, when torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike
from torch import Tensor, nn

from core.errors import InvalidAudioError, ModelUnavailableError
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

# Work bounds (they change nothing numerically): segments per CNN call (256 measured fastest
# on a 2-core CPU, ~3x faster than 2048, which overflows the caches), and padded segments
# (batch x longest) per group: a group's segments (2.9 KB each), CNN features and attention
# are in memory at once, so 8192 (33 windows of 10 s, ~50 MB) bounds a call's peak memory
# whatever its length; bigger groups were no faster.
_CNN_CHUNK_SEGMENTS = 256
_MAX_PADDED_SEGMENTS = 8192
# Spans (call windows) whose spectrograms are made and scored together by score_spans: 32
# windows of 10 s are 7904 segments, one group of the bound above.
_SPANS_PER_PASS = 32
# Frames per block of the STFT -> mel product: 256 frames keep the zero-padded FFT input
# (256 x 4096 float32, 4 MB) and its spectrum near the caches; 4096 was ~25 % slower.
_STFT_BLOCK_FRAMES = 256


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
def _nonempty_bands(sample_rate: int) -> tuple[np.ndarray, Tensor]:
    """Indices of the mel bands with any weight at ``sample_rate`` and their weights, transposed.

    Returns
    -------
    (np.ndarray of int, Tensor of shape (2049, k) float32)
        At 8 kHz only 30 of the 48 bands lie below Nyquist; skipping the rest saves their products.
        Shared between calls: do not modify.
    """
    fbank = mel_filterbank(sample_rate)
    bands = np.flatnonzero(fbank.any(axis=1))
    bands.flags.writeable = False
    return bands, torch.from_numpy(np.ascontiguousarray(fbank[bands].T))


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
    bands, weights = _nonempty_bands(sample_rate)
    # empty bands (above Nyquist) are exactly 0 before the floor, i.e. the floor itself
    out = np.full((N_MELS, len(frames)), AMIN, dtype=np.float32)

    def fill(lo_frame: int, hi_frame: int) -> None:
        # one zero-padded FFT buffer per worker: only its first ``win`` columns change
        buf = np.zeros((min(_STFT_BLOCK_FRAMES, hi_frame - lo_frame), N_FFT), dtype=np.float32)
        for lo in range(lo_frame, hi_frame, _STFT_BLOCK_FRAMES):
            idx = frames[lo : min(lo + _STFT_BLOCK_FRAMES, hi_frame)]
            n = len(idx)
            np.multiply(windows[idx * hop], hann, out=buf[:n, :win])
            magnitude = np.abs(scipy.fft.rfft(buf[:n], axis=1))
            out[bands, lo : lo + n] = (torch.from_numpy(magnitude) @ weights).numpy().T

    # Long spans are split between threads (numpy, scipy and torch release the GIL). The
    # product runs in torch: numpy's OpenBLAS starts threads of its own that fight these.
    # One thread per torch thread: the front end then uses the cores the model will use.
    parts = min(torch.get_num_threads(), len(frames) // (2 * _STFT_BLOCK_FRAMES))
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


# --- network (section 6) ----------------------------------------------------------------------
class AdaptCNN(nn.Module):
    """Six conv/BatchNorm/ReLU layers with adaptive max pooling: 1 x 48 x 15 -> 384 per segment."""

    def __init__(self) -> None:
        super().__init__()
        channels = [(1, 16), (16, 32), (32, 64), (64, 64), (64, 64)]
        for i, (c_in, c_out) in enumerate(channels, start=1):
            setattr(self, f"conv{i}", nn.Conv2d(c_in, c_out, kernel_size=3, padding=1))
            setattr(self, f"bn{i}", nn.BatchNorm2d(c_out))
        # the last kernel spans the 3 remaining time steps: no time padding, width 3 -> 1
        self.conv6 = nn.Conv2d(64, 64, kernel_size=3, padding=(1, 0))
        self.bn6 = nn.BatchNorm2d(64)
        # (weight, bias) of each conv with its BatchNorm folded in, set by :meth:`fold_batchnorm`
        self.folded: tuple[tuple[Tensor, Tensor], ...] | None = None

    def fold_batchnorm(self) -> None:
        """Fold every eval-mode BatchNorm into the convolution before it, for inference.

        ``bn(conv(x)) = conv'(x)`` with ``w' = w * s`` and ``b' = (b - mean) * s + beta``, where
        ``s = gamma / sqrt(var + eps)`` (computed in float64, stored in float32, NHWC weights).
        This removes six full passes over the activations (about 10 % of the CNN's time on a
        2-core CPU); outputs change by float rounding only (< 1e-5). Call after the weights are
        loaded; :meth:`forward` then uses the folded weights unless the module is training.
        Plain attributes, not parameters or buffers: ``state_dict()`` is unchanged.
        """
        folded = []
        for i in range(1, 7):
            conv, bn = getattr(self, f"conv{i}"), getattr(self, f"bn{i}")
            scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
            weight = conv.weight.double() * scale[:, None, None, None]
            bias = (conv.bias.double() - bn.running_mean.double()) * scale + bn.bias.double()
            folded.append((weight.float().contiguous(memory_format=torch.channels_last), bias.float()))
        self.folded = tuple(folded)

    def _block(self, x: Tensor, i: int) -> Tensor:
        if self.folded is not None and not self.training:
            weight, bias = self.folded[i - 1]
            conv = getattr(self, f"conv{i}")
            return F.relu_(F.conv2d(x, weight, bias, padding=conv.padding))
        return F.relu(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))

    def forward(self, x: Tensor) -> Tensor:
        x = F.adaptive_max_pool2d(self._block(x, 1), (24, 7))
        x = F.adaptive_max_pool2d(self._block(x, 2), (12, 5))
        x = F.adaptive_max_pool2d(self._block(self._block(x, 3), 4), (6, 3))
        x = self._block(self._block(x, 5), 6)  # n x 64 x 6 x 1
        return x.flatten(1)  # channel-major: index = channel * 6 + mel row


class Framewise(nn.Module):
    """Runs the CNN on every real segment (in bounded chunks) and pads the results per item."""

    def __init__(self) -> None:
        super().__init__()
        self.model = AdaptCNN()

    def forward(self, segments: Tensor, lengths: Sequence[int]) -> Tensor:
        """``segments`` (sum(lengths), 1, 48, 15) -> (batch, max(lengths), 384), zero padded."""
        chunks = segments.split(_CNN_CHUNK_SEGMENTS)
        features = torch.cat([self.model(c.contiguous(memory_format=torch.channels_last)) for c in chunks])
        return nn.utils.rnn.pad_sequence(list(features.split(list(lengths))), batch_first=True)


class SelfAttention(nn.Module):
    """Single-head scaled dot-product attention with PyTorch's packed q/k/v projection."""

    def __init__(self, d_model: int = 64) -> None:
        super().__init__()
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        """``x`` (B, S, d); ``key_mask`` (B, S) True for real segments; padded keys are ignored."""
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, :])
        return self.out_proj(attended)


class EncoderLayer(nn.Module):
    """Post-norm transformer layer: ``x = LN1(x + SA(x)); x = LN2(x + FF(x))``."""

    def __init__(self, d_model: int = 64, d_hidden: int = 64) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d_model)
        self.linear1 = nn.Linear(d_model, d_hidden)
        self.linear2 = nn.Linear(d_hidden, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        x = self.norm1(x + self.self_attn(x, key_mask))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class SelfAttentionEncoder(nn.Module):
    """Linear 384 -> 64, LayerNorm, two encoder layers; no positional encoding."""

    def __init__(self, d_in: int = 384, d_model: int = 64, n_layers: int = 2) -> None:
        super().__init__()
        self.linear = nn.Linear(d_in, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.layers = nn.ModuleList(EncoderLayer(d_model) for _ in range(n_layers))

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        x = self.norm1(self.linear(x))
        for layer in self.layers:
            x = layer(x, key_mask)
        return x


class TimeDependency(nn.Module):
    """Holder named as in the checkpoint (``time_dependency.model.*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = SelfAttentionEncoder()

    def forward(self, x: Tensor, key_mask: Tensor) -> Tensor:
        return self.model(x, key_mask)


class AttentionPool(nn.Module):
    """Softmax-over-time pooling scored by a 64-128-1 feed-forward net, then Linear 64 -> 1."""

    def __init__(self, d_model: int = 64, d_hidden: int = 128) -> None:
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_hidden)
        self.linear2 = nn.Linear(d_hidden, 1)
        self.linear3 = nn.Linear(d_model, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """``x`` (B, S, d), ``mask`` (B, S) -> (B,); padded steps get zero weight."""
        scores = self.linear2(F.relu(self.linear1(x))).squeeze(-1)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        pooled = torch.bmm(weights.unsqueeze(1), x).squeeze(1)
        return self.linear3(pooled).squeeze(-1)


class PoolingHead(nn.Module):
    """Holder named as in the checkpoint (``pool_layers.k.model.*``)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = AttentionPool()

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return self.model(x, mask)


class NisqaNet(nn.Module):
    """NISQA_DIM in eval mode: segments -> (mos, noi, dis, col, loud) per item."""

    def __init__(self) -> None:
        super().__init__()
        self.cnn = Framewise()
        self.time_dependency = TimeDependency()
        self.pool_layers = nn.ModuleList(PoolingHead() for _ in OUTPUTS)

    def forward(self, segments: Tensor, lengths: Sequence[int]) -> Tensor:
        """``segments`` (sum(lengths), 1, 48, 15), items concatenated -> (len(lengths), 5)."""
        x = self.cnn(segments, lengths)
        mask = torch.arange(x.shape[1])[None, :] < torch.as_tensor(list(lengths))[:, None]
        x = self.time_dependency(x, mask)
        return torch.stack([head(x, mask) for head in self.pool_layers], dim=1)


# --- the quality model ------------------------------------------------------------------------
class NisqaModel:
    """NISQA v2.0 behind the :class:`core.quality.base.QualityModel` protocol.

    Stateless after construction and safe to share between threads. Build it with
    :func:`load_nisqa` (or :func:`core.quality.manager.get_quality_model`, which caches it).
    """

    name = "nisqa"
    version = "v2.0"

    def __init__(self, net: NisqaNet) -> None:
        self.net = net.eval().requires_grad_(False)
        # NHWC weights and inputs: the convolutions and pools run ~1.6x faster on CPU
        self.net.cnn.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net.cnn.model.fold_batchnorm()

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
        with torch.inference_mode():
            # segments are cut one group at a time, so memory stays bounded however long the call
            for group in _length_groups(order, counts):
                lengths = [counts[i] for i in group]
                stacked = np.empty((sum(lengths), 1, N_MELS, SEG_FRAMES), dtype=np.float32)
                pos = 0
                for i, count in zip(group, lengths, strict=True):
                    stacked[pos : pos + count] = segment_spectrogram(specs[i])
                    pos += count
                values = self.net(torch.from_numpy(stacked), lengths).double().numpy()
                for i, row in zip(group, values, strict=True):
                    results[i] = QualityScores(*(float(v) for v in row))
        return [r for r in results if r is not None]


def _length_groups(order: list[int], lengths: list[int]) -> list[list[int]]:
    """Split indices sorted by length into groups whose padded size stays under the bound."""
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # sorted ascending, so the newest item is the longest of its group
        if current and (len(current) + 1) * lengths[i] > _MAX_PADDED_SEGMENTS:
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


def load_nisqa(path: Path) -> NisqaModel:
    """Build the model from an official ``nisqa.tar`` checkpoint (no hash check; see the manager).

    Raises
    ------
    ModelUnavailableError
        The file cannot be read as a NISQA v2.0 checkpoint.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, pickle errors, zipfile errors...
        raise ModelUnavailableError(
            f"{path}: cannot be read as a PyTorch checkpoint ({type(exc).__name__}); "
            "reinstall it with `python -m core.quality.manager install`"
        ) from None
    state = checkpoint.get("model_state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ModelUnavailableError(f"{path}: is not the NISQA v2.0 checkpoint (no model_state_dict)")
    net = NisqaNet()
    try:
        net.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelUnavailableError(f"{path}: is not the NISQA v2.0 checkpoint ({first_line})") from None
    return NisqaModel(net)
