"""NISQA v2.0 on ONNX Runtime: the exported network, its metadata, and the model that runs it.

``python -m core.quality.manager install`` exports the PyTorch network (the source of truth,
:mod:`core.quality.nisqa`) to ``nisqa.onnx`` next to the weights and writes ``nisqa.onnx.json``
beside it (:mod:`core.quality.nisqa_export`). :func:`core.quality.manager.get_quality_model`
then loads :class:`NisqaOnnxModel`, which scores exactly as :class:`~core.quality.nisqa.NisqaModel`
(same front end, spans and grouping, :class:`~core.quality.nisqa_frontend.NisqaScorer`) but
never imports torch: a process that analyses calls saves torch's import (~1 s) and memory.

The graph
    inputs ``segments`` float32 (n, 1, 48, 15): the segments of every item of the batch,
    concatenated; ``index`` int64 (batch, longest): row b lists the positions in ``segments`` of
    item b's segments, in order, then -1 for padding. Outputs ``mos``, ``noi``, ``dis``, ``col``,
    ``loud``, float32 (batch,). The CNN runs on real segments only; padded positions are masked
    out of the attention keys and the pooling, so an item scores the same alone or in any batch.

The metadata (``nisqa.onnx.json``)
    ``format`` (:data:`EXPORT_FORMAT`) and ``opset`` (:data:`OPSET`) of the export, the sha256 of
    the weights it was exported from and of the ONNX file itself, and what the export was checked
    against. An export whose metadata names other weights, another format or opset is *stale*
    (``auto`` falls back to PyTorch; install exports again); a file whose own sha256 differs, or
    that ONNX Runtime cannot load, is *corrupt* (:class:`ModelUnavailableError`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelUnavailableError
from core.quality.nisqa_frontend import NisqaScorer

#: bump when the exported graph changes (inputs, outputs, numerics): older exports become stale
EXPORT_FORMAT = 1
#: ONNX opset of the export (LayerNormalization needs 17)
OPSET = 17
INPUTS = ("segments", "index")
OUTPUTS = ("mos", "noi", "dis", "col", "loud")
METADATA_SUFFIX = ".json"
_FIX = "run `python -m core.quality.manager install`"

# Padded segments per ONNX Runtime pass (two 10 s windows). The graph runs its CNN over all of
# a pass's segments at once (46 KB of first-layer activations per segment) and ONNX Runtime's
# arena keeps its peak, so this bounds memory: a warm 3-minute call's process peaked at 296 MB
# with 512, 379 MB with 1024, 525 MB with 2048 (PyTorch: 436 MB), at the same speed. Without
# the arena it was ~20 % slower. A single item (up to 1300 segments) is always one pass.
_ONNX_MAX_PADDED_SEGMENTS = 512


def onnx_path_for(weights: Path) -> Path:
    """Where the export of ``weights`` lives: same folder and stem, ``.onnx`` (``models/nisqa.onnx``)."""
    return weights.with_suffix(".onnx")


def metadata_path(onnx_path: Path) -> Path:
    """The metadata file of an export: ``nisqa.onnx.json``."""
    return onnx_path.with_name(onnx_path.name + METADATA_SUFFIX)


@dataclass(frozen=True)
class ExportMetadata:
    """What ``nisqa.onnx.json`` records about an export (see the module docstring)."""

    format: int
    opset: int
    weights_sha256: str
    onnx_sha256: str
    checked_on: str = ""
    max_abs_diff: float = 0.0

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2) + "\n"

    @classmethod
    def read(cls, path: Path) -> ExportMetadata | None:
        """The metadata in ``path``, or None when it is missing or unreadable."""
        try:
            data: Any = json.loads(path.read_text())
            return cls(
                format=int(data["format"]),
                opset=int(data["opset"]),
                weights_sha256=str(data["weights_sha256"]),
                onnx_sha256=str(data["onnx_sha256"]),
                checked_on=str(data.get("checked_on", "")),
                max_abs_diff=float(data.get("max_abs_diff", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


def stale_reason(onnx_path: Path, weights_sha256: str) -> str | None:
    """Why the export at ``onnx_path`` cannot stand for the weights with ``weights_sha256``, or None
    when its metadata matches them (the file's own integrity is checked on load)."""
    if not onnx_path.is_file():
        return f"no ONNX export at {onnx_path}"
    meta = ExportMetadata.read(metadata_path(onnx_path))
    if meta is None:
        return f"{onnx_path}: its metadata {metadata_path(onnx_path).name} is missing or unreadable"
    if meta.format != EXPORT_FORMAT or meta.opset != OPSET:
        return (f"{onnx_path}: exported as format {meta.format} opset {meta.opset}, "
                f"this callqa uses format {EXPORT_FORMAT} opset {OPSET}")
    if meta.weights_sha256 != weights_sha256:
        return f"{onnx_path}: exported from other weights (sha256 {meta.weights_sha256[:12]}...)"
    return None


def padded_index(lengths: list[int]) -> np.ndarray:
    """The ``index`` input for items of ``lengths`` segments concatenated in order: (batch, longest),
    row b is ``offset_b, offset_b + 1, ...`` then -1."""
    index = np.full((len(lengths), max(lengths, default=0)), -1, dtype=np.int64)
    pos = 0
    for row, count in enumerate(lengths):
        index[row, :count] = np.arange(pos, pos + count)
        pos += count
    return index


class NisqaOnnxModel(NisqaScorer):
    """NISQA v2.0 on ONNX Runtime behind the :class:`core.quality.base.QualityModel` protocol.

    Same name, version, scores (to float rounding) and front end as the PyTorch model. Safe to
    share between threads (``InferenceSession.run`` is). Build it with
    :func:`core.quality.manager.get_quality_model`, which checks the export's metadata first.

    Parameters
    ----------
    path : Path
        The exported ``nisqa.onnx``.
    threads : int
        Passes (groups of windows) run at once in threads (``[quality] threads``), each on a
        single-threaded session (sequential execution): about 3 % faster than one pass on an
        intra-op pool of that many threads, and steadier on a busy machine.

    Raises
    ------
    ModelUnavailableError
        ONNX Runtime cannot load the file, or it is not a NISQA export (other inputs/outputs).
    """

    backend = "onnx"
    max_padded_segments = _ONNX_MAX_PADDED_SEGMENTS

    def __init__(self, path: Path, *, threads: int = 2) -> None:
        import onnxruntime as ort

        # ``threads`` passes run at once, each single-threaded (a pass is one group of windows):
        # better use of the cores than one pass on an intra-op pool, whose threads wait for the
        # slowest at every operator (the scores do not depend on it)
        self.parallel = max(1, threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: no warnings about the CPU on stderr
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelUnavailableError(
                f"{path}: ONNX Runtime cannot load the NISQA export ({first[:200]}); "
                f"delete it and {_FIX}"
            ) from None
        inputs = tuple(i.name for i in self.session.get_inputs())
        outputs = tuple(o.name for o in self.session.get_outputs())
        if inputs != INPUTS or outputs != OUTPUTS:
            raise ModelUnavailableError(
                f"{path}: not a NISQA export (inputs {inputs}, outputs {outputs}); delete it and {_FIX}"
            )
        self.path = path
        self.threads = threads

    def _map_groups(self, fn: Callable[[list[int]], np.ndarray], groups: list[list[int]]) -> Iterable[np.ndarray]:
        from core.parallel import parallel_map

        return parallel_map(fn, groups, self.parallel)

    def _run(self, segments: np.ndarray, lengths: list[int]) -> np.ndarray:
        feeds = {"segments": np.ascontiguousarray(segments, dtype=np.float32), "index": padded_index(lengths)}
        return np.stack(self.session.run(list(OUTPUTS), feeds), axis=1).astype(np.float64)
