"""Speaker embeddings: the GE2E voice encoder whose weights ship inside the Resemblyzer wheel.

The model (Wan et al., "Generalized End-to-End Loss for Speaker Verification", ICASSP 2018, as
trained and released by Resemble AI under the Apache-2.0 licence in the ``resemblyzer`` package)
maps a stretch of speech to a unit vector of 256 values; two stretches of the same voice point
the same way. It is used to split a mixed recording into its two talkers and to recognise an
enrolled agent.

* **Front end** (here, numpy): 16 kHz audio, 40-band mel *power* spectrogram (not log), 25 ms
  Hann windows every 10 ms, centred with zero padding, Slaney mel scale and normalisation: what
  ``librosa.feature.melspectrogram`` computes with Resemblyzer's parameters. Each window is
  scaled to an RMS of -30 dBFS before the network sees it (Resemblyzer normalises utterances to
  that level), so the loudness of a talker does not move the embedding.
* **Network**: a 3-layer LSTM (256 units) over the frames of a window, a linear layer and a ReLU
  on the last hidden state, L2-normalised.
* **Weights** are read from the installed ``resemblyzer`` package (``pip install --no-deps
  resemblyzer==0.1.4``, done by ``make setup``) without importing it: its import pulls librosa
  and webrtcvad, which callqa does not need. ``python -m core.audio.speakers install`` exports
  them to ONNX (``models/ge2e.onnx``), checks the export against PyTorch, and from then on
  embeddings run on onnxruntime without importing torch. Nothing downloads at run time.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soxr

from core.errors import ModelUnavailableError
from core.parallel import default_threads, parallel_map

RATE = 16000
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
FRAMES_PER_S = RATE // HOP
EMBED_DIM = 256
WINDOW_TARGET_DB = -30.0
PACKAGE = "resemblyzer"
PACKAGE_VERSION = "0.1.4"
WEIGHTS_NAME = "pretrained.pt"
ONNX_FILE = "ge2e.onnx"
MODEL_ID = f"ge2e-resemblyzer-{PACKAGE_VERSION}"
_FIX = "run `make setup` (it installs resemblyzer==0.1.4 without its dependencies)"


# --- front end --------------------------------------------------------------------------------------
def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (as librosa's default)."""
    f = np.asarray(freq, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    m = np.asarray(mel, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


def mel_filterbank(*, rate: int = RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular mel filters with Slaney area normalisation, shape ``(n_mels, n_fft // 2 + 1)``."""
    fft_hz = np.linspace(0, rate / 2, 1 + n_fft // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return bank.astype(np.float32)


_BANK = mel_filterbank()
_HANN = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def to_model_rate(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """The signal at 16 kHz, float32 (telephone audio leaves the upper band empty)."""
    if sample_rate == RATE:
        return np.asarray(samples, dtype=np.float32)
    return np.asarray(soxr.resample(samples, sample_rate, RATE), dtype=np.float32)


def mel_power(signal16: np.ndarray, *, block: int = 6000) -> np.ndarray:
    """Mel power spectrogram of a 16 kHz signal, shape ``(frames, 40)``, one frame per 10 ms.

    Frame ``i`` is centred on sample ``160 * i`` (zero padding at both ends), so a signal of
    ``n`` samples gives ``1 + n // 160`` frames. Computed in blocks to bound memory.
    """
    pad = N_FFT // 2
    y = np.pad(np.asarray(signal16, dtype=np.float32), (pad, pad))
    count = 1 + (len(y) - N_FFT) // HOP if len(y) >= N_FFT else 0
    out = np.empty((count, N_MELS), dtype=np.float32)
    offsets = np.arange(N_FFT)[None, :]
    for a in range(0, count, block):
        b = min(count, a + block)
        frames = y[offsets + HOP * np.arange(a, b)[:, None]] * _HANN
        spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
        out[a:b] = spec.astype(np.float32) @ _BANK.T
    return out


def window_gains(signal16: np.ndarray, starts: Sequence[int], width: int) -> np.ndarray:
    """Power gain per window (frames ``start .. start+width``) that brings its RMS to -30 dBFS."""
    n = len(signal16) // HOP
    power = np.zeros(n + 1)
    frames = signal16[: n * HOP].astype(np.float64).reshape(n, HOP)
    np.cumsum(np.einsum("ij,ij->i", frames, frames), out=power[1:])
    s = np.clip(np.asarray(starts, dtype=np.int64), 0, n)
    e = np.clip(s + width, 0, n)
    mean = (power[e] - power[s]) / np.maximum(1, (e - s) * HOP)
    return (10 ** (WINDOW_TARGET_DB / 10) / np.maximum(mean, 1e-12)).astype(np.float32)


def window_mels(mel: np.ndarray, signal16: np.ndarray, starts: Sequence[int], width: int) -> np.ndarray:
    """The level-normalised mel windows ``mel[start : start + width]``, shape ``(len(starts), width, 40)``:
    what :meth:`VoiceEncoder.embed_mels` embeds. ``mel`` is :func:`mel_power` of the 16 kHz
    ``signal16``; every window must fit inside it; each window is brought to -30 dBFS."""
    idx = np.asarray(starts, dtype=np.int64)[:, None] + np.arange(width)[None, :]
    gains = window_gains(signal16, starts, width)
    return (mel[idx] * gains[:, None, None]).astype(np.float32, copy=False)


# --- the network ----------------------------------------------------------------------------------------
def weights_file() -> Path:
    """The GE2E weights inside the installed ``resemblyzer`` package (not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(f"the speaker model is not installed (pip package {PACKAGE}); {_FIX}")
    path = Path(next(iter(spec.submodule_search_locations))) / WEIGHTS_NAME
    if not path.is_file():
        raise ModelUnavailableError(f"speaker model weights missing at {path}; {_FIX}")
    return path


def _torch_module():  # noqa: ANN202 - torch types stay out of the module's import path
    import torch

    class GE2E(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(N_MELS, 256, 3, batch_first=True)
            self.linear = torch.nn.Linear(256, EMBED_DIM)

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            _, (hidden, _) = self.lstm(mels)
            raw = torch.relu(self.linear(hidden[-1]))
            return raw / torch.norm(raw, dim=1, keepdim=True).clamp_min(1e-8)

    model = GE2E()
    try:
        state = torch.load(str(weights_file()), map_location="cpu", weights_only=True)["model_state"]
        model.load_state_dict({k: v for k, v in state.items() if k.startswith(("lstm.", "linear."))})
    except ModelUnavailableError:
        raise
    except Exception as exc:  # a damaged file: torch/pickle raise many types
        raise ModelUnavailableError(f"speaker model weights cannot be loaded ({exc}); {_FIX}") from None
    return model.eval()


class VoiceEncoder:
    """A loaded GE2E encoder: ONNX Runtime when the export exists, PyTorch otherwise.

    Thread-safe for concurrent :meth:`embed_mels` calls (onnxruntime sessions and torch
    inference both are).
    """

    model_id = MODEL_ID

    def __init__(self, *, onnx_path: Path | None = None, threads: int = 1, batch: int = 16,
                 parallel: int = 1) -> None:
        self.batch = batch
        self.parallel = max(1, parallel)
        self.backend = "torch"
        if onnx_path is not None and onnx_path.is_file():
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            try:
                self._session = ort.InferenceSession(str(onnx_path), sess_options=options,
                                                     providers=["CPUExecutionProvider"])
                self.backend = "onnx"
                return
            except Exception:  # a damaged export: fall back to the PyTorch source of truth
                pass
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self._model = _torch_module()

    def embed_mels(self, mels: np.ndarray) -> np.ndarray:
        """Embeddings of equal-length mel windows ``(n, frames, 40)`` (:func:`window_mels`), shape
        ``(n, 256)``, float32, unit rows.

        Batches run on :attr:`parallel` threads of the shared pool (not to be called from one of
        them: a pool thread must not wait for its own pool).
        """
        if len(mels) == 0:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)

        def run(i: int) -> np.ndarray:
            chunk = np.ascontiguousarray(mels[i: i + self.batch], dtype=np.float32)
            if self.backend == "onnx":
                return self._session.run(None, {"mels": chunk})[0]
            with self._torch.inference_mode():
                return self._model(self._torch.from_numpy(chunk)).numpy()

        # batches on ``parallel`` threads (single-threaded session each); torch uses its own threads
        threads = self.parallel if self.backend == "onnx" else 1
        return np.concatenate(list(parallel_map(run, range(0, len(mels), self.batch), threads))).astype(np.float32)


_ENCODER: VoiceEncoder | None = None
_LOCK = threading.Lock()


def onnx_path(models_dir: Path | None = None) -> Path:
    from core.config import load_settings

    return (models_dir or load_settings().models_dir) / ONNX_FILE


_PARALLEL = default_threads()


def set_threads(threads: int) -> None:
    """How many batches of windows the process-wide encoder embeds at once (threads; a scan
    with a worker per core sets 1). Results do not depend on it."""
    global _PARALLEL
    with _LOCK:
        _PARALLEL = max(1, int(threads))
        if _ENCODER is not None:
            _ENCODER.parallel = _PARALLEL


def get_encoder(models_dir: Path | None = None) -> VoiceEncoder:
    """The process-wide encoder, loaded on first use (ONNX export when present)."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            _ENCODER = VoiceEncoder(onnx_path=onnx_path(models_dir), parallel=_PARALLEL)
        return _ENCODER


def export_onnx(path: Path, *, tolerance: float = 1e-4) -> float:
    """Export the PyTorch encoder to ONNX at ``path`` and check both agree; returns the max difference.

    Raises
    ------
    ModelUnavailableError
        The weights are missing, or the export disagrees with PyTorch beyond ``tolerance``.
    """
    import warnings

    import onnxruntime as ort
    import torch

    model = _torch_module()
    rng = np.random.default_rng(20261206)
    probe = (rng.random((6, 100, N_MELS)) * 1e-3).astype(np.float32)
    tmp = path.with_suffix(".tmp.onnx")
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # the exporter's notices about itself, not about this model
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.from_numpy(probe),), str(tmp), input_names=["mels"],
                          output_names=["embeds"], dynamic_axes={"mels": {0: "batch", 1: "frames"}, "embeds": {0: "batch"}},
                          opset_version=17, dynamo=False)
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        want = model(torch.from_numpy(probe)).numpy()
    got = session.run(None, {"mels": probe})[0]
    diff = float(np.abs(got - want).max())
    if diff > tolerance:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailableError(f"ONNX export of the speaker model differs from PyTorch by {diff:.2e}")
    tmp.replace(path)
    return diff


def main(argv: list[str] | None = None) -> int:
    """``python -m core.audio.speakers install``: export the encoder to ONNX (idempotent)."""
    parser = argparse.ArgumentParser(prog="python -m core.audio.speakers")
    parser.add_argument("command", choices=["install"])
    parser.add_argument("--force", action="store_true", help="export again even when the file exists")
    args = parser.parse_args(argv)
    path = onnx_path()
    if path.is_file() and not args.force:
        print(f"speaker model: {path} present")
        return 0
    try:
        diff = export_onnx(path)
    except ModelUnavailableError as exc:
        print(f"callqa: error: {exc}", file=sys.stderr)
        return 1
    print(f"speaker model: exported {MODEL_ID} to {path} (max difference to PyTorch {diff:.1e}); Apache-2.0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
