"""core.fft gives scipy.fft's results bit for bit, without importing scipy.fft."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft

from core import fft


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [None, 4096, 300])
def test_rfft_matches_scipy(dtype, n):
    x = np.random.default_rng(1).standard_normal((37, 1000)).astype(dtype)
    ours, ref = fft.rfft(x, n, axis=1), scipy.fft.rfft(x, n, axis=1)
    assert ours.dtype == ref.dtype
    assert np.array_equal(ours, ref)
    assert np.array_equal(fft.rfft(x[0], n), scipy.fft.rfft(x[0], n))


def test_irfft_and_fast_lengths_match_scipy():
    rng = np.random.default_rng(2)
    spec = rng.standard_normal(513) + 1j * rng.standard_normal(513)
    for n in (1024, 1000, 2048):
        assert np.array_equal(fft.irfft(spec, n), scipy.fft.irfft(spec, n))
    for target in (1, 7, 16385, 20000, 99991):
        assert fft.next_fast_len(target) == scipy.fft.next_fast_len(target, real=True)


def test_the_fft_loads_without_importing_scipy_fft():
    code = ("import sys, numpy as np\nfrom core import fft\nfft.rfft(np.ones(8))\n"
            "print(fft._backend is not None, 'scipy.fft' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["True", "False"]
