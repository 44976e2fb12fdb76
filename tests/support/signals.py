"""Synthetic signals with known answers (tones at known dBFS, silences at known seconds)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(freq_hz: float, *, rms_dbfs: float, duration_s: float, sample_rate: int = 8000,
         phase: float = 0.0) -> np.ndarray:
    """A sine whose RMS is ``rms_dbfs`` (peak is 3.01 dB higher), float64."""
    t = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    amplitude = np.sqrt(2) * 10 ** (rms_dbfs / 20)
    return amplitude * np.sin(2 * np.pi * freq_hz * t + phase)


def speechlike(rng: np.random.Generator, *, duration_s: float, rms_dbfs: float = -20.0,
               sample_rate: int = 8000) -> np.ndarray:
    """Band-limited noise modulated at syllable rate (4 Hz): energy like speech, not speech."""
    n = int(round(duration_s * sample_rate))
    noise = rng.standard_normal(n)
    spec = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    spec[(freqs < 300) | (freqs > 3400)] = 0
    band = np.fft.irfft(spec, n)
    t = np.arange(n) / sample_rate
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t)
    x = band * env
    return x * (10 ** (rms_dbfs / 20) / np.sqrt(np.mean(x**2)))


def place(total_s: float, parts: Sequence[tuple[float, np.ndarray]], *, sample_rate: int = 8000,
          floor_dbfs: float | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    """Put signals at given start times into a track of ``total_s`` seconds (optional noise floor)."""
    out = np.zeros(int(round(total_s * sample_rate)))
    if floor_dbfs is not None:
        gen = rng or np.random.default_rng(0)
        out += gen.standard_normal(out.size) * 10 ** (floor_dbfs / 20)
    for start_s, sig in parts:
        a = int(round(start_s * sample_rate))
        out[a: a + len(sig)] += sig[: max(0, out.size - a)]
    return out


def write(path: Path, samples: np.ndarray, *, sample_rate: int = 8000, subtype: str = "PCM_16",
          fmt: str | None = None) -> Path:
    """Write samples (mono 1-D or (n, channels)) with libsndfile; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype, format=fmt)
    return path
