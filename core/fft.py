"""Real FFTs for the analysis stages, without the cost of importing ``scipy.fft``.

``scipy.fft``'s pocketfft runs the NISQA front end's batches of 4096-point transforms about 5x
faster than ``numpy.fft``, but importing the package takes ~0.16 s (its array-API layer), a
tenth of a whole ``callqa analyze`` process. Its compiled core, ``pypocketfft``, loads in a few
milliseconds on its own: this module loads it directly and calls it as ``scipy.fft`` does
(same transforms, same normalisation, bit-identical results). Should the extension not be
found or load (another scipy build), the functions fall back to ``scipy.fft`` itself.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

_MODULE = "scipy.fft._pocketfft.pypocketfft"
_lock = threading.Lock()
_backend: ModuleType | None = None
_fallback = False


def _pocketfft() -> ModuleType | None:
    """The ``pypocketfft`` extension (loaded once), or None when only ``scipy.fft`` will do."""
    global _backend, _fallback
    if _backend is not None or _fallback:
        return _backend
    with _lock:
        if _backend is None and not _fallback:
            try:
                spec = importlib.util.find_spec("scipy")
                if spec is None or spec.origin is None:
                    raise ImportError("scipy not found")
                folder = Path(spec.origin).parent / "fft" / "_pocketfft"
                path = next(p for p in folder.iterdir() if p.name.startswith("pypocketfft.")
                            and p.suffix in (".so", ".pyd"))
                loader = importlib.machinery.ExtensionFileLoader(_MODULE, str(path))
                module_spec = importlib.util.spec_from_file_location(_MODULE, path, loader=loader)
                if module_spec is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(module_spec)
                loader.exec_module(module)
                if not all(hasattr(module, f) for f in ("r2c", "c2r", "good_size")):
                    raise ImportError("unexpected pypocketfft")
                _backend = module
            except (ImportError, OSError, StopIteration):
                _fallback = True
    return _backend


def _fit(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` points along ``axis`` (as scipy.fft does for ``n``)."""
    size = x.shape[axis]
    if size == n:
        return x
    if size > n:
        index: list[Any] = [slice(None)] * x.ndim
        index[axis] = slice(0, n)
        return x[tuple(index)]
    shape = list(x.shape)
    shape[axis] = n
    out = np.zeros(shape, dtype=x.dtype)
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, size)
    out[tuple(index)] = x
    return out


def _real(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    return x


def rfft(x: np.ndarray, n: int | None = None, axis: int = -1) -> np.ndarray:
    """``scipy.fft.rfft(x, n, axis)``: float32 in, complex64 out; float64 in, complex128 out."""
    pocket = _pocketfft()
    if pocket is None:
        import scipy.fft

        return scipy.fft.rfft(x, n, axis=axis)
    x = _real(x)
    axis = axis % x.ndim
    if n is not None:
        x = _fit(x, n, axis)
    return pocket.r2c(x, (axis,), True, 0, None, 1)


def irfft(x: np.ndarray, n: int, axis: int = -1) -> np.ndarray:
    """``scipy.fft.irfft(x, n, axis)`` (``1/n`` normalisation)."""
    pocket = _pocketfft()
    if pocket is None:
        import scipy.fft

        return scipy.fft.irfft(x, n, axis=axis)
    x = np.asarray(x)
    if not np.iscomplexobj(x):
        x = x + 0j
    axis = axis % x.ndim
    x = _fit(x, n // 2 + 1, axis)
    return pocket.c2r(x, (axis,), n, False, 2, None, 1)


def next_fast_len(target: int) -> int:
    """``scipy.fft.next_fast_len(target, real=True)``."""
    pocket = _pocketfft()
    if pocket is None:
        import scipy.fft

        return int(scipy.fft.next_fast_len(target, real=True))
    return int(pocket.good_size(target, True))
