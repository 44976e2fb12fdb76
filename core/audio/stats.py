"""Amplitude statistics of a track, defined as ``sox FILE -n stat`` defines them."""

from __future__ import annotations

import numpy as np

from core.audio.io import AudioClip
from core.results import TrackStats

DB_FLOOR = -150.0  # what a track of digital zeros reports instead of -inf


def amplitude_to_db(value: float) -> float:
    """20·log10(value) for an amplitude relative to full scale, floored at ``DB_FLOOR``."""
    return float(20 * np.log10(value)) if value > 10 ** (DB_FLOOR / 20) else DB_FLOOR


def compute_stats(clip: AudioClip, *, clip_level_db: float = -0.1) -> TrackStats:
    """Measure RMS, peak, duration, DC offset and clipping of one track.

    Parameters
    ----------
    clip : AudioClip
        Samples scaled to [-1, 1] as sox scales them.
    clip_level_db : float
        A sample counts as clipped when its magnitude is at or above the encoding's full scale
        (``clip.full_scale``: 1.0 for PCM, 32124/32768 for mu-law) times this level.

    Returns
    -------
    TrackStats
        ``rms_db`` = 20·log10 of sox's "RMS amplitude"; ``peak_db`` = 20·log10 of the larger of
        sox's "Maximum amplitude" and -"Minimum amplitude"; ``dc_offset`` = sox's
        "Mean amplitude"; ``duration_s`` = sox's "Length (seconds)".
    """
    x = clip.samples
    x64 = x.astype(np.float64)
    rms = float(np.sqrt(np.dot(x64, x64) / x.size))
    peak = float(max(x.max(), -x.min()))
    level = clip.full_scale * 10 ** (clip_level_db / 20)
    clipped = int(np.count_nonzero(np.abs(x) >= level))
    return TrackStats(
        rms_db=amplitude_to_db(rms),
        peak_db=amplitude_to_db(peak),
        duration_s=x.size / clip.sample_rate,
        dc_offset=float(x64.mean()),
        clipped_samples=clipped,
        clip_ratio=clipped / x.size,
    )
