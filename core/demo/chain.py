"""The telephone chain of the demo calls: band limit, levels, line noise, G.711 mu-law, packet loss.

Values follow ``../shared/corpus/README.md``: a 300-3400 Hz band (2nd-order Butterworth edges),
speech at an active level near -20 dBFS and a G.711 mu-law round trip; the line noise floor sits
at -74 dBFS rather than the corpus' -66 dBFS, because NISQA scores real speech over a -66 dBFS
hiss about 0.5 MOS lower (measured on the demo talkers: per-leg median 3.01 at -66, 3.21 at -72),
while clean VoIP legs are that quiet. Also the interval
helpers of the ground truth (speech marked as ``labels.json`` does: 20 ms frames within 35 dB of
the clip's peak, pauses shorter than 250 ms bridged).
"""

from __future__ import annotations

from itertools import pairwise
from typing import TYPE_CHECKING

import numpy as np
from scipy import signal

if TYPE_CHECKING:
    from collections.abc import Sequence

SAMPLE_RATE_HZ = 8000
BAND_HZ = (300.0, 3400.0)
SPEECH_LEVEL_DBFS = -20.0
NOISE_FLOOR_DBFS = -74.0  # quieter than the corpus: NISQA hears a -66 dBFS hiss (-0.5 MOS)
PEAK_KNEE_DBFS = -6.0  # a soft limiter keeps peaks (crest ~20 dB) off full scale
PEAK_CEILING_DBFS = -3.0
PACKET_MS = 20
INT16_SCALE = 32768.0

_FRAME_S = 0.020
_SPEECH_RANGE_DB = 35.0
_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635


def frame_db(x: np.ndarray) -> np.ndarray:
    """RMS level in dB of consecutive 20 ms frames (a last partial frame is dropped)."""
    hop = round(_FRAME_S * SAMPLE_RATE_HZ)
    frames = x[: len(x) // hop * hop].reshape(-1, hop)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(np.mean(frames**2, axis=1))


def speech_intervals(clip: np.ndarray, *, offset_s: float) -> list[list[float]]:
    """True speech of one clean utterance: 20 ms frames within 35 dB of its peak frame."""
    level = frame_db(clip)
    active = level >= level.max() - _SPEECH_RANGE_DB
    edges = np.flatnonzero(np.diff(np.concatenate(([0], active.astype(np.int8), [0]))))
    return [[offset_s + s * _FRAME_S, offset_s + e * _FRAME_S] for s, e in edges.reshape(-1, 2)]


def bandpass(x: np.ndarray) -> np.ndarray:
    sos = signal.butter(2, BAND_HZ, btype="bandpass", fs=SAMPLE_RATE_HZ, output="sos")
    return signal.sosfilt(sos, x)


def _mask(intervals: Sequence[Sequence[float]], n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for start_s, end_s in intervals:
        mask[round(start_s * SAMPLE_RATE_HZ): round(end_s * SAMPLE_RATE_HZ)] = True
    return mask


def active_level_dbfs(samples: np.ndarray, intervals: Sequence[Sequence[float]]) -> float:
    """RMS level in dBFS of ``samples`` (8 kHz, full scale 1.0) inside the speech ``intervals``.

    Returns ``-inf`` when the intervals hold no samples or only zeros.
    """
    inside = np.asarray(samples, dtype=np.float64)[_mask(intervals, len(samples))]
    if inside.size == 0:
        return float("-inf")
    with np.errstate(divide="ignore"):
        return float(10 * np.log10(np.mean(inside**2)))


def set_level(x: np.ndarray, intervals: Sequence[Sequence[float]], *, target_dbfs: float) -> np.ndarray:
    """Scale to ``target_dbfs`` active level, then soft-limit peaks as a handset AGC would."""
    level = active_level_dbfs(x, intervals)
    if not np.isfinite(level):
        return x
    return soft_limit(x * 10 ** ((target_dbfs - level) / 20))


def soft_limit(x: np.ndarray) -> np.ndarray:
    """Leave samples below :data:`PEAK_KNEE_DBFS`; bend louder ones under :data:`PEAK_CEILING_DBFS`."""
    knee, ceiling = 10 ** (PEAK_KNEE_DBFS / 20), 10 ** (PEAK_CEILING_DBFS / 20)
    magnitude = np.abs(x)
    over = magnitude > knee
    bent = knee + (ceiling - knee) * np.tanh((magnitude[over] - knee) / (ceiling - knee))
    out = x.copy()
    out[over] = np.sign(x[over]) * bent
    return out


def line_noise(n: int, *, rng: np.random.Generator) -> np.ndarray:
    """Band-limited Gaussian hiss at exactly :data:`NOISE_FLOOR_DBFS` RMS."""
    noise = bandpass(rng.standard_normal(n))
    return noise * (10 ** (NOISE_FLOOR_DBFS / 20) / np.sqrt(np.mean(noise**2)))


def lost_packets(n: int, rate: float, *, rng: np.random.Generator, start_s: float = 0.0) -> np.ndarray:
    """Sample mask (True = kept) losing bursts of 1-6 packets of 20 ms until ``rate`` of them are gone.

    Loss starts at ``start_s`` (packets before it all arrive).
    """
    step = round(PACKET_MS * SAMPLE_RATE_HZ / 1000)
    packets = -(-n // step)
    first = min(int(start_s * SAMPLE_RATE_HZ) // step, packets - 1)
    lost = np.zeros(packets, dtype=bool)
    target = round(rate * (packets - first))
    while lost.sum() < target:
        start = int(rng.integers(first, packets))
        lost[start: start + int(rng.integers(1, 7))] = True
    return np.repeat(~lost, step)[:n]


def quantize(x: np.ndarray, *, encoding: str) -> np.ndarray:
    """Float in [-1, 1] to int16; for ``ULAW`` through a G.711 mu-law encode/decode."""
    pcm = np.clip(np.round(np.asarray(x) * INT16_SCALE), -32768, 32767).astype(np.int16)
    return _mulaw_decode(_mulaw_encode(pcm)) if encoding == "ULAW" else pcm


def _mulaw_encode(pcm: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law codes (uint8) of 16-bit linear samples."""
    value = pcm.astype(np.int32)
    sign = np.where(value < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(value), _MULAW_CLIP) + _MULAW_BIAS
    exponent = np.frexp(magnitude.astype(np.float64))[1] - 8  # floor(log2(magnitude)) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _mulaw_decode(code: np.ndarray) -> np.ndarray:
    """16-bit linear samples (int16) of G.711 mu-law codes."""
    c = ~code.astype(np.int32) & 0xFF
    exponent = (c >> 4) & 0x07
    magnitude = ((((c & 0x0F) << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(c & 0x80, -magnitude, magnitude).astype(np.int16)


# --- intervals ------------------------------------------------------------------------------------
def bridge(intervals: list[list[float]], *, max_gap_s: float) -> list[list[float]]:
    """Sort, merge and bridge pauses shorter than ``max_gap_s``; round to milliseconds."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start - merged[-1][1] < max_gap_s:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [[round(s, 3), round(e, 3)] for s, e in merged]


def union(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    return bridge([*a, *b], max_gap_s=0.0)


def intersect(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    out = []
    for s1, e1 in a:
        for s2, e2 in b:
            start, end = max(s1, s2), min(e1, e2)
            if end > start:
                out.append([round(start, 3), round(end, 3)])
    return sorted(out)


def long_gaps(speech: list[list[float]], *, min_s: float) -> list[list[float]]:
    """Gaps of at least ``min_s`` between speech (leading and trailing silence excluded)."""
    return [[e, s] for (_, e), (s, _) in pairwise(speech) if s - e >= min_s]
