"""Amplitude statistics of a track, defined as ``sox FILE -n stat`` defines them."""

from __future__ import annotations

import numpy as np

from core.audio.io import AudioClip
from core.results import TrackStats

DB_FLOOR = -150.0  # what a track of digital zeros reports instead of -inf
_BLOCK = 1 << 20


def amplitude_to_db(value: float) -> float:
    """20·log10(value) for an amplitude relative to full scale, floored at ``DB_FLOOR``."""
    return float(20 * np.log10(value)) if value > 10 ** (DB_FLOOR / 20) else DB_FLOOR


def count_clipped(x: np.ndarray, *, full_scale: float, clip_level_db: float) -> int:
    """Samples at the rail: within ``clip_level_db`` of the encoding's full scale, or, when the
    track was clipped before a gain change or format conversion (a G.711 call saved as PCM
    peaks at 32124/32768), in flat tops of at least 2 samples at the track's own peak
    (when that peak is within 1 dB of full scale)."""
    peak = float(max(x.max(), -x.min())) if x.size else 0.0
    rail = full_scale * 10 ** (clip_level_db / 20)
    flat_level = peak * 0.9999 if peak >= full_scale * 10 ** (-1 / 20) else None
    count = 0
    for a in range(0, x.size, _BLOCK):  # blockwise: no whole-track temporaries
        mag = np.abs(x[max(0, a - 1): a + _BLOCK + 1])  # one sample of overlap for the neighbours
        lo = 1 if a > 0 else 0
        hi = lo + min(_BLOCK, x.size - a)
        at_rail = mag >= rail
        if flat_level is not None:
            top = mag >= flat_level
            flat = top[1:] & top[:-1]  # neighbours both at the peak level
            run = np.zeros_like(top)
            run[1:] |= flat
            run[:-1] |= flat
            at_rail |= run
        count += int(np.count_nonzero(at_rail[lo:hi]))
    return count


def compute_stats(clip: AudioClip, *, clip_level_db: float = -0.1) -> TrackStats:
    """Measure RMS, peak, duration, DC offset and clipping of one track.

    Parameters
    ----------
    clip : AudioClip
        Samples scaled to [-1, 1] as sox scales them.
    clip_level_db : float
        A sample counts as clipped when its magnitude is at or above the encoding's full scale
        (``clip.full_scale``: 1.0 for PCM, 32124/32768 for mu-law) times this level, or sits
        in a flat top at the track's peak (:func:`count_clipped`).

    Returns
    -------
    TrackStats
        ``rms_db`` = 20·log10 of sox's "RMS amplitude"; ``peak_db`` = 20·log10 of the larger of
        sox's "Maximum amplitude" and -"Minimum amplitude"; ``dc_offset`` = sox's
        "Mean amplitude"; ``duration_s`` = sox's "Length (seconds)".
    """
    x = clip.samples
    total = squares = 0.0
    for a in range(0, x.size, _BLOCK):  # float64 sums without a float64 copy of the whole track
        b = x[a: a + _BLOCK].astype(np.float64)
        total += float(b.sum())
        squares += float(np.dot(b, b))
    rms = float(np.sqrt(squares / x.size))
    peak = float(max(x.max(), -x.min()))
    clipped = count_clipped(x, full_scale=clip.full_scale, clip_level_db=clip_level_db)
    return TrackStats(
        rms_db=amplitude_to_db(rms),
        peak_db=amplitude_to_db(peak),
        duration_s=x.size / clip.sample_rate,
        dc_offset=total / x.size,
        clipped_samples=clipped,
        clip_ratio=clipped / x.size,
    )
