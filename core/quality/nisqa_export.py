"""Export the PyTorch NISQA network to ONNX and check the export before it is used.

Run by ``python -m core.quality.manager install`` (after the weights are installed); imports
torch, so nothing on the analysis path imports this module. The graph is described in
:mod:`core.quality.nisqa_onnx`. It is traced from the loaded :class:`~core.quality.nisqa.NisqaNet`
with two rewrites the ONNX exporter needs, both exact:

* adaptive max pooling (15 -> 7, 7 -> 5 and 5 -> 3 time steps have uneven windows) becomes
  max pooling where the windows are even and explicit slices where they are not;
* the attention's boolean key mask is applied as ``-inf`` before an explicit softmax, instead of
  ``scaled_dot_product_attention``.

The export is written to a temporary file, scored against PyTorch (the golden clips of
``<shared>/golden/nisqa`` when present, and always a deterministic synthetic batch of mixed
lengths, batched and one item at a time) and only then moved into place with its metadata.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.errors import ModelUnavailableError
from core.quality import nisqa_onnx
from core.quality.nisqa import EncoderLayer, NisqaModel, NisqaNet, SelfAttentionEncoder
from core.quality.nisqa_frontend import melspectrogram_db
from core.quality.nisqa_onnx import EXPORT_FORMAT, INPUTS, OPSET, OUTPUTS, ExportMetadata, NisqaOnnxModel

#: largest difference allowed between any ONNX and PyTorch output
TOLERANCE = 1e-4


def _pool_windows(size_in: int, size_out: int) -> list[tuple[int, int]]:
    """The ``[start, end)`` windows of adaptive pooling from ``size_in`` to ``size_out`` steps."""
    return [((i * size_in) // size_out, -((-(i + 1) * size_in) // size_out)) for i in range(size_out)]


def _adaptive_max_axis(x: Tensor, axis: int, size_out: int) -> Tensor:
    """Adaptive max pooling along one spatial axis (2 = mel, 3 = time) with static windows.

    Even windows (same length, same step) are one max pool. Uneven ones (7 -> 5: lengths
    2, 2, 3, 2, 2) are a stride-1 max pool per distinct window length, concatenated, and one
    gather of each window's column: 4 graph nodes instead of a slice and a max per window
    (which took a fifth of the graph's time).
    """
    # a Python int, not the traced size: the mel and time sizes are fixed, and the windows must be
    # constants of the graph (a traced size turns them into dynamic slices)
    size_in = int(x.shape[axis])
    if size_in == size_out:
        return x
    windows = _pool_windows(size_in, size_out)
    kernels = sorted({end - start for start, end in windows})
    strides = {b[0] - a[0] for a, b in zip(windows, windows[1:], strict=False)}

    def pool(kernel: int, stride: int) -> Tensor:
        return F.max_pool2d(x, (kernel, 1) if axis == 2 else (1, kernel), (stride, 1) if axis == 2 else (1, stride))

    if len(kernels) == 1 and len(strides) <= 1:  # even windows: one MaxPool
        return pool(kernels[0], strides.pop() if strides else 1)
    offsets, pooled, pos = {}, [], 0
    for kernel in kernels:  # every window of this length, at every start
        offsets[kernel] = pos
        pooled.append(pool(kernel, 1))
        pos += size_in - kernel + 1
    columns = torch.tensor([offsets[end - start] + start for start, end in windows], dtype=torch.long)
    return torch.cat(pooled, dim=axis).index_select(axis, columns)


def _adaptive_max_pool(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``F.adaptive_max_pool2d(x, size)`` for static input sizes: the max over a rectangle is the
    max over its rows of the max over its columns."""
    return _adaptive_max_axis(_adaptive_max_axis(x, 2, size[0]), 3, size[1])


class ExportGraph(nn.Module):
    """The exported computation: ``(segments, index) -> mos, noi, dis, col, loud`` (see nisqa_onnx).

    Shares the loaded network's weights (the CNN's BatchNorm folded into its convolutions,
    as the PyTorch model runs it).
    """

    def __init__(self, net: NisqaNet) -> None:
        super().__init__()
        self.net = net.eval()
        cnn = net.cnn.model
        if cnn.folded is None:
            cnn.fold_batchnorm()
        assert cnn.folded is not None
        self.convs = [(w.contiguous(), b.contiguous(), getattr(cnn, f"conv{i}").padding)
                      for i, (w, b) in enumerate(cnn.folded, start=1)]
        # in eval mode itself: the exporter restores the graph's mode on every submodule after
        # tracing, and a graph left in training mode would switch the shared network to training
        # (unfolded BatchNorm on batch statistics)
        self.eval()

    def _block(self, x: Tensor, i: int) -> Tensor:
        weight, bias, padding = self.convs[i - 1]
        return F.relu(F.conv2d(x, weight, bias, padding=padding))

    def cnn(self, x: Tensor) -> Tensor:
        x = _adaptive_max_pool(self._block(x, 1), (24, 7))
        x = _adaptive_max_pool(self._block(x, 2), (12, 5))
        x = _adaptive_max_pool(self._block(self._block(x, 3), 4), (6, 3))
        x = self._block(self._block(x, 5), 6)  # n x 64 x 6 x 1
        return x.flatten(1)

    @staticmethod
    def _attention(layer: EncoderLayer, x: Tensor, key_mask: Tensor) -> Tensor:
        attn = layer.self_attn
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        scale = 1.0 / math.sqrt(int(attn.in_proj_weight.shape[1]))  # as scaled_dot_product_attention
        scores = torch.matmul(q, k.transpose(1, 2)) * scale
        scores = scores.masked_fill(~key_mask[:, None, :], float("-inf"))
        return attn.out_proj(torch.matmul(torch.softmax(scores, dim=-1), v))

    def forward(self, segments: Tensor, index: Tensor) -> tuple[Tensor, ...]:
        features = self.cnn(segments)  # (n, 384), real segments only
        mask = index >= 0
        x = features[index.clamp(min=0)]  # (batch, longest, 384); padded rows repeat segment 0, masked
        encoder: SelfAttentionEncoder = self.net.time_dependency.model
        x = encoder.norm1(encoder.linear(x))
        layer: EncoderLayer
        for layer in encoder.layers:  # type: ignore[assignment]
            x = layer.norm1(x + self._attention(layer, x, mask))
            x = layer.norm2(x + layer.linear2(F.relu(layer.linear1(x))))
        return tuple(head(x, mask) for head in self.net.pool_layers)


@dataclass(frozen=True)
class ExportCheck:
    """How the export compared with PyTorch: the largest output difference and what was scored."""

    max_abs_diff: float
    checked_on: str


def _synthetic_specs() -> list[np.ndarray]:
    """Spectrograms of a deterministic batch of noisy tones of mixed lengths and rates (0.14-52 s)."""
    rng = np.random.default_rng(20261206)
    specs = []
    for seconds, rate in ((0.14, 8000), (1.3, 16000), (3.0, 8000), (7.7, 48000), (10.0, 8000), (52.1, 8000)):
        t = np.arange(int(seconds * rate)) / rate
        tone = 0.2 * np.sin(2 * np.pi * 440 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        samples = (tone + 0.02 * rng.standard_normal(len(t))).astype(np.float32)
        specs.append(melspectrogram_db(samples, rate))
    return specs


def _golden_specs(golden_dir: Path | None) -> list[np.ndarray]:
    if golden_dir is None or not (golden_dir / "clips").is_dir():
        return []
    from core.audio.io import load_mono

    clips = [load_mono(path) for path in sorted((golden_dir / "clips").glob("*.wav"))]
    return [melspectrogram_db(c.samples, c.sample_rate) for c in clips]


def _table(scores: Sequence) -> np.ndarray:
    return np.array([[s.mos, s.noisiness, s.discontinuity, s.coloration, s.loudness] for s in scores])


def check_export(torch_model: NisqaModel, onnx_model: NisqaOnnxModel, *, golden_dir: Path | None) -> ExportCheck:
    """Score the golden clips (when ``golden_dir`` has them) and a synthetic mixed-length batch with
    both backends, batched and one by one with ONNX; the largest absolute output difference."""
    golden = _golden_specs(golden_dir)
    synthetic = _synthetic_specs()
    specs = golden + synthetic
    want = _table(torch_model.score_spectrograms(specs))
    batched = _table(onnx_model.score_spectrograms(specs))
    alone = _table([onnx_model.score_spectrograms([spec])[0] for spec in synthetic])
    diff = max(float(np.abs(batched - want).max()), float(np.abs(alone - want[len(golden):]).max()))
    if not np.isfinite(batched).all() or not np.isfinite(alone).all():
        diff = float("inf")
    what = f"{len(golden)} golden clips and " if golden else ""
    return ExportCheck(diff, f"{what}{len(synthetic)} synthetic clips of mixed lengths")


def export_onnx(torch_model: NisqaModel, path: Path, *, weights_sha256: str,
                golden_dir: Path | None = None, threads: int = 2) -> ExportCheck:
    """Export ``torch_model`` to ``path`` (atomically) with its metadata, after checking it.

    Parameters
    ----------
    torch_model : NisqaModel
        The loaded PyTorch model (the weights whose sha256 is ``weights_sha256``).
    path : Path
        Target ``nisqa.onnx``; its metadata goes to ``nisqa.onnx.json``.
    golden_dir : Path, optional
        ``<shared>/golden/nisqa``: its clips are scored by both backends when present.

    Raises
    ------
    ModelUnavailableError
        The export failed or differs from PyTorch by more than :data:`TOLERANCE`; nothing is
        left at ``path`` (a previous export there is removed with its metadata).
    """
    meta_path = nisqa_onnx.metadata_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".nisqa-", suffix=".onnx.part", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise ModelUnavailableError(f"{path.parent}: cannot write the ONNX export ({exc.strerror})") from None
    tmp = Path(tmp_name)
    try:
        graph = ExportGraph(torch_model.net)
        probe_lengths = [3, 1, 5]
        probe = torch.zeros(sum(probe_lengths), 1, 48, 15)
        index = torch.from_numpy(nisqa_onnx.padded_index(probe_lengths))
        with warnings.catch_warnings(), torch.inference_mode():  # the exporter's notices about itself
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph, (probe, index), str(tmp), input_names=list(INPUTS), output_names=list(OUTPUTS),
                dynamic_axes={"segments": {0: "segments"}, "index": {0: "batch", 1: "longest"},
                              **{name: {0: "batch"} for name in OUTPUTS}},
                opset_version=OPSET, dynamo=False,
            )
        torch_model.net.eval()  # whatever the exporter did to the modules' modes
        check = check_export(torch_model, NisqaOnnxModel(tmp, threads=threads), golden_dir=golden_dir)
        if not check.max_abs_diff <= TOLERANCE:
            raise ModelUnavailableError(
                f"the ONNX export of NISQA differs from PyTorch by {check.max_abs_diff:.2e} "
                f"(over {check.checked_on}; allowed {TOLERANCE:.0e}); it was not installed, "
                "the PyTorch model stays in use"
            )
        from core.quality.manager import sha256_of

        meta = ExportMetadata(EXPORT_FORMAT, OPSET, weights_sha256, sha256_of(tmp), check.checked_on,
                              check.max_abs_diff)
        os.chmod(tmp, 0o644)
        meta_path.unlink(missing_ok=True)  # never a new file next to old metadata
        os.replace(tmp, path)
        meta_tmp = meta_path.with_name(f".{meta_path.name}.{os.getpid()}")
        meta_tmp.write_text(meta.to_json())
        os.replace(meta_tmp, meta_path)
    except ModelUnavailableError:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
        raise
    except Exception as exc:  # the exporter and onnxruntime raise many types
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
        raise ModelUnavailableError(f"{path}: exporting NISQA to ONNX failed ({type(exc).__name__}: {exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return check
