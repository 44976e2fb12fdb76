"""Silence gaps with ``ffmpeg -af silencedetect`` semantics, computed in-process.

ffmpeg's filter (libavfilter/af_silencedetect.c) marks a sample silent when
``-noise < sample < noise`` and reports a gap once ``d`` seconds of consecutive silent samples
have been seen: ``silence_start`` is the first silent sample, ``silence_end`` the first loud one
(or the end of the stream). For 16-bit input the threshold is converted to an integer first,
``int16(noise · 32767)``, so e.g. -50 dB compares samples against 103 (not 103.6); this module
reproduces that for integer-coded tracks so results match ffmpeg to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.audio.io import AudioClip
from core.results import Interval

_BLOCK = 1 << 20
# Encodings ffmpeg decodes to signed 16-bit samples (what silencedetect then sees).
_S16_ENCODINGS = {"PCM_16", "ULAW", "ALAW", "GSM610", "PCM_U8", "PCM_S8", "IMA_ADPCM", "MS_ADPCM"}


@dataclass(frozen=True)
class SilenceResult:
    """Silence gaps of one track."""

    silences: tuple[Interval, ...]
    noise_db: float
    min_silence_s: float

    @property
    def total_s(self) -> float:
        return float(sum(s.duration_s for s in self.silences))


def silent_mask(clip: AudioClip, *, noise_db: float) -> np.ndarray:
    """Boolean mask of samples below the threshold, exactly as ffmpeg compares them."""
    noise = 10 ** (noise_db / 20)
    if clip.encoding in _S16_ENCODINGS:
        limit = int(noise * 32767)  # C truncation to int16, as the filter does
        # the samples are whole multiples of 1/32768: |s| < limit  <=>  |x| < (limit - 0.5) / 32768
        threshold = np.float32((limit - 0.5) / 32768.0)
    else:
        threshold = np.float32(noise)
    x = clip.samples
    mask = np.empty(x.size, dtype=bool)
    for a in range(0, x.size, _BLOCK):  # no call-long |x| temporary
        np.less(np.abs(x[a: a + _BLOCK]), threshold, out=mask[a: a + _BLOCK])
    return mask


def runs_of_true(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) indices of each run of True values."""
    if mask.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(mask[1:] != mask[:-1]) + 1  # first index of each new run
    edges = np.concatenate(([0] if mask[0] else [], change, [mask.size] if mask[-1] else [])).astype(np.int64)
    return edges[0::2], edges[1::2]


def detect_silence(clip: AudioClip, *, noise_db: float = -50.0, min_silence_s: float = 0.5) -> SilenceResult:
    """Find runs of at least ``min_silence_s`` seconds below ``noise_db`` dBFS.

    Parameters
    ----------
    clip : AudioClip
    noise_db : float
        ffmpeg's ``noise`` option in dB.
    min_silence_s : float
        ffmpeg's ``d`` option; the run length is rounded to samples as ffmpeg does.

    Returns
    -------
    SilenceResult
        Gaps in seconds; a gap running to the end of the track ends at the track's duration.
    """
    sr = clip.sample_rate
    min_samples = max(1, int(round(min_silence_s * sr)))
    starts, ends = runs_of_true(silent_mask(clip, noise_db=noise_db))
    keep = (ends - starts) >= min_samples
    gaps = tuple(Interval(s / sr, e / sr) for s, e in zip(starts[keep], ends[keep], strict=True))
    return SilenceResult(silences=gaps, noise_db=noise_db, min_silence_s=min_silence_s)
