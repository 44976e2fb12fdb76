"""Speech level, noise floor and speech-to-noise ratio of a track, on 20 ms frames."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.audio.io import AudioClip
from core.results import Interval

FRAME_S = 0.02
_EPS = 1e-12


@dataclass(frozen=True)
class LevelResult:
    """Active speech level and background level of one track (dBFS).

    ``speech_db`` is the RMS over the VAD's speech segments (None without speech);
    ``noise_db`` the median energy of 20 ms frames outside speech (None when the track is all
    speech); ``snr_db`` their difference.
    """

    speech_db: float | None
    noise_db: float | None

    @property
    def snr_db(self) -> float | None:
        if self.speech_db is None or self.noise_db is None:
            return None
        return self.speech_db - self.noise_db


def frame_energy_db(samples: np.ndarray, sample_rate: int, *, frame_s: float = FRAME_S) -> np.ndarray:
    """Energy in dBFS of consecutive non-overlapping frames (the last partial frame is dropped)."""
    n = int(round(frame_s * sample_rate))
    count = len(samples) // n
    if count == 0:
        return np.zeros(0)
    out = np.empty(count)
    step = max(1, (1 << 20) // n)  # frames per block: float64 copies of ~8 MB, not of the track
    for a in range(0, count, step):
        b = min(count, a + step)
        frames = samples[a * n: b * n].astype(np.float64).reshape(b - a, n)
        out[a:b] = np.einsum("ij,ij->i", frames, frames)
    return 10 * np.log10(out / n + _EPS)


def interval_mask(intervals: Sequence[Interval], count: int, frame_s: float) -> np.ndarray:
    """Frames (of ``frame_s``) whose centre lies inside one of ``intervals``."""
    mask = np.zeros(count, dtype=bool)
    for iv in intervals:
        a = max(0, int(np.ceil(iv.start_s / frame_s - 0.5)))
        b = min(count, int(np.ceil(iv.end_s / frame_s - 0.5)))
        if b > a:
            mask[a:b] = True
    return mask


def measure_levels(clip: AudioClip, speech: Sequence[Interval]) -> LevelResult:
    """Active speech level (power mean over speech) and noise floor (median over the rest)."""
    energy = frame_energy_db(clip.samples, clip.sample_rate)
    if energy.size == 0:
        return LevelResult(None, None)
    mask = interval_mask(speech, energy.size, FRAME_S)
    speech_db = float(10 * np.log10(np.mean(10 ** (energy[mask] / 10)))) if mask.any() else None
    rest = energy[~mask]
    noise_db = float(np.median(rest)) if rest.size >= 25 else None  # at least 0.5 s of non-speech
    return LevelResult(speech_db, noise_db)
