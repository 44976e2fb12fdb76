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

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.fft
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
# (batch x longest) per attention/pooling call.
_CNN_CHUNK_SEGMENTS = 256
_MAX_PADDED_SEGMENTS = 16384
# Frames per block of the STFT -> mel product (a 2049 x block float32 magnitude at a time).
_STFT_BLOCK_FRAMES = 4096


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
    hann, fbank = _hann(win), mel_filterbank(sample_rate)
    out = np.empty((N_MELS, len(frames)), dtype=np.float32)
    for lo in range(0, len(frames), _STFT_BLOCK_FRAMES):
        idx = frames[lo : lo + _STFT_BLOCK_FRAMES]
        block = windows[idx * hop] * hann
        magnitude = np.abs(scipy.fft.rfft(block, n=N_FFT, axis=1, workers=torch.get_num_threads()))
        out[:, lo : lo + len(idx)] = fbank @ magnitude.T
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

    def _block(self, x: Tensor, i: int) -> Tensor:
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
        span. Other spans get their own STFT. All spans are scored in one batched pass.

        Parameters
        ----------
        signals : sequence of (samples, sample_rate, spans)
            ``spans`` are (start, end) sample indices; each must hold 0.14-52.14 s.

        Returns
        -------
        list of list of QualityScores
            ``out[i][j]`` scores span j of signal i.
        """
        specs: list[np.ndarray] = []
        counts: list[int] = []
        for i, (samples, rate, spans) in enumerate(signals):
            for start, end in spans:
                if not 0 <= start < end <= len(samples):
                    raise InvalidAudioError(f"signal {i}: span [{start}, {end}) is outside its {len(samples)} samples")
                check_length(end - start, rate, source=f"signal {i} span [{start}, {end})")
            specs.extend(_span_spectrograms(np.asarray(samples, dtype=np.float32), rate, spans))
            counts.append(len(spans))
        return regroup(self.score_spectrograms(specs), counts)

    def score_spectrograms(self, specs: Sequence[np.ndarray]) -> list[QualityScores]:
        """Score 48 x T dB spectrograms (already clamped) in as few batched passes as memory allows.

        Items are grouped by length so that padding stays small; padded segments are masked
        in attention keys and pooling, so grouping does not change the scores.
        """
        segments = [segment_spectrogram(spec) for spec in specs]
        for seg in segments:
            if len(seg) > MAX_SEGMENTS:
                raise InvalidAudioError(f"spectrogram gives {len(seg)} segments, over NISQA's {MAX_SEGMENTS}")
        results: list[QualityScores | None] = [None] * len(specs)
        order = sorted(range(len(segments)), key=lambda i: len(segments[i]))
        with torch.inference_mode():
            for group in _length_groups(order, [len(s) for s in segments]):
                lengths = [len(segments[i]) for i in group]
                stacked = torch.from_numpy(np.concatenate([segments[i] for i in group]))
                values = self.net(stacked, lengths).double().numpy()
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
    if len(on_grid) > 1:
        needed = np.zeros(n_frames(len(samples), sample_rate), dtype=bool)
        for s, e in on_grid:
            needed[s // hop : s // hop + n_frames(e - s, sample_rate)] = True
        shared = np.empty((N_MELS, len(needed)), dtype=np.float32)
        frames = np.flatnonzero(needed)
        shared[:, frames] = _log_mel_frames(reflect_pad(samples), sample_rate, frames)
    out = []
    for s, e in spans:
        piece = samples[s:e]
        if shared is None or s % hop:
            out.append(melspectrogram_db(piece, sample_rate))
            continue
        count = n_frames(e - s, sample_rate)
        spec = shared[:, s // hop : s // hop + count].copy()
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
