"""NISQA v2.0 speech-quality model on PyTorch: the network, its checkpoint, batched scoring.

A clean re-implementation of the inference path of NISQA v2.0 (Mittag et al., Interspeech
2021) from ``../shared/docs/nisqa.md``; section numbers below refer to that note. It loads the
official ``nisqa.tar`` checkpoint unchanged (the module tree mirrors its key names, so
``load_state_dict(strict=True)`` works) and reproduces the official scores: audio at its own
sample rate, no resampling, no normalisation, raw linear outputs.

This is the source of truth for the network. ``python -m core.quality.manager install`` exports
it to ONNX (:mod:`core.quality.nisqa_export`) and analysis then runs on ONNX Runtime
(:mod:`core.quality.nisqa_onnx`) without importing torch. The numpy front end (sections 3-4)
lives in :mod:`core.quality.nisqa_frontend`; its names are re-exported here.

The weights are licensed CC BY-NC-SA 4.0 (non-commercial); see :mod:`core.quality.manager`.

Network (section 6)
    AdaptCNN per segment (384 values), a 2-layer single-head post-norm self-attention encoder
    without positional encoding, five attention-pooling heads (mos, noi, dis, col, loud).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

# OpenMP threads that spin while waiting steal the CPU from other processes on a busy 2-core
# machine (a scan's other worker, the dashboard): measured 2.9 s -> 2.2 s for a 3-minute call
# under load, no cost when idle (bench/README.md). Read once, when torch loads libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ModelUnavailableError
from core.quality.nisqa_frontend import (  # noqa: F401  (re-exported: the front end's old home)
    AMIN,
    FMAX_HZ,
    HOP_S,
    MAX_SEGMENTS,
    N_BINS,
    N_FFT,
    N_MELS,
    OUTPUTS,
    SEG_FRAMES,
    SEG_HOP_FRAMES,
    TOP_DB,
    WIN_S,
    NisqaScorer,
    check_length,
    frame_params,
    max_samples,
    mel_band_edges_hz,
    mel_filterbank,
    melspectrogram_db,
    min_samples,
    n_frames,
    n_segments,
    padded_slice,
    reflect_pad,
    segment_spectrogram,
)

# Segments per CNN call: 256 measured fastest on a 2-core CPU, ~3x faster than 2048, which
# overflows the caches. It changes nothing numerically.
_CNN_CHUNK_SEGMENTS = 256


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
class NisqaModel(NisqaScorer):
    """NISQA v2.0 on PyTorch behind the :class:`core.quality.base.QualityModel` protocol.

    Stateless after construction and safe to share between threads. Build it with
    :func:`load_nisqa` (or :func:`core.quality.manager.get_quality_model`, which caches it).
    Scoring (front end, spans, grouping) is :class:`~core.quality.nisqa_frontend.NisqaScorer`'s.
    """

    backend = "torch"

    def __init__(self, net: NisqaNet) -> None:
        self.net = net.eval().requires_grad_(False)
        # NHWC weights and inputs: the convolutions and pools run ~1.6x faster on CPU
        self.net.cnn.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.net.cnn.model.fold_batchnorm()

    def _run(self, segments: np.ndarray, lengths: list[int]) -> np.ndarray:
        with torch.inference_mode():
            return self.net(torch.from_numpy(segments), lengths).double().numpy()


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
