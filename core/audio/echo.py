"""Echo: one leg carries a delayed, attenuated copy of the other leg's speech.

While the talker on leg ``x`` speaks, an echo path returns ``g·x(t-d)`` on leg ``y``. We
correlate ``y`` with ``x`` over the talker's speech only, for delays between ``min_delay_ms`` and
``max_delay_ms``, normalised like a correlation coefficient. Independent talkers give |r| < 0.1;
a linear echo path gives a clear peak at its delay. The echo return loss (ERL) follows from the
peak: the echo's level relative to the talker's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.audio.io import AudioClip
from core.fft import irfft, next_fast_len, rfft
from core.results import Interval


@dataclass(frozen=True)
class EchoResult:
    """Strongest echo of ``source`` found on the other leg."""

    correlation: float
    delay_ms: float
    erl_db: float | None


def _spans(n: int, sample_rate: int, speech: Sequence[Interval], *, extend_s: float = 0.0) -> list[tuple[int, int]]:
    """Merged sample ranges ``[a, b)`` of ``speech`` (each extended by ``extend_s``), within ``[0, n)``."""
    out: list[tuple[int, int]] = []
    for iv in sorted(speech, key=lambda i: i.start_s):
        a = max(0, int(iv.start_s * sample_rate))
        b = min(n, int((iv.end_s + extend_s) * sample_rate))
        if b <= a:
            continue
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _energy(x: np.ndarray, spans: Sequence[tuple[int, int]]) -> float:
    return float(sum(np.dot(x[a:b].astype(np.float64), x[a:b].astype(np.float64)) for a, b in spans))


def _lagged_correlation(y: np.ndarray, x: np.ndarray, max_lag: int, spans: Sequence[tuple[int, int]], *,
                        block: int = 16384) -> np.ndarray:
    """``c[k] = sum_t w[t]·y[t]·x[t-k]`` for k = 0..max_lag, where ``w`` is 1 inside ``spans``.

    By FFT over blocks of ``y``; blocks outside every span (the talker is silent) are skipped,
    so the cost follows the talker's speech, not the call's length, and nothing call-long is
    allocated.
    """
    n = len(y)
    nfft = next_fast_len(block + max_lag)
    out = np.zeros(max_lag + 1)
    for a in range(0, n, block):
        b = min(n, a + block)
        yb = np.zeros(b - a)
        for s0, s1 in spans:
            lo, hi = max(s0, a), min(s1, b)
            if hi > lo:
                yb[lo - a: hi - a] = y[lo:hi]
        if not yb.any():
            continue
        xs = np.zeros(len(yb) + max_lag)
        src = x[max(a - max_lag, 0): b]
        xs[len(xs) - len(src):] = src
        # y_block[i] · xs[i + max_lag - k] summed over i, for each k
        spec = rfft(xs, nfft) * np.conj(rfft(yb, nfft))
        corr = irfft(spec, nfft)  # corr[m] = sum_i yb[i] · xs[i + m]
        out += corr[max_lag::-1][: max_lag + 1]
    return out


def measure_echo(
    source: AudioClip,
    target: AudioClip,
    source_speech: Sequence[Interval],
    *,
    min_delay_ms: float = 20.0,
    max_delay_ms: float = 600.0,
) -> EchoResult | None:
    """Correlate ``target`` with delayed ``source`` during the source talker's speech.

    Returns ``None`` when the legs cannot be compared (different rates, no source speech).
    """
    if source.sample_rate != target.sample_rate or not source_speech:
        return None
    sr = source.sample_rate
    n = min(len(source.samples), len(target.samples))
    max_lag = int(max_delay_ms * sr / 1000)
    min_lag = max(1, int(min_delay_ms * sr / 1000))
    if n <= max_lag * 2:
        return None
    x = source.samples[:n]  # float32 views: only blocks are widened to float64
    y = target.samples[:n]
    # the echo of speech at t appears up to max_delay later: keep the target only during the
    # source's speech extended by that much, so the whole echo of every segment is in the sums
    tail = _spans(n, sr, source_speech, extend_s=max_delay_ms / 1000)
    x_energy = _energy(x, _spans(n, sr, source_speech))
    y_energy = _energy(y, tail)
    if x_energy <= 0 or y_energy <= 0:
        return None
    cc = _lagged_correlation(y, x, max_lag, tail)  # cc[k] = sum over the tail spans of y[t] · x[t - k]
    lags = np.arange(min_lag, max_lag + 1)
    r = cc[lags] / np.sqrt(x_energy * y_energy)
    k = int(np.argmax(r))
    corr = float(r[k])
    gain = cc[lags[k]] / x_energy  # least-squares echo path gain at that delay
    erl = float(-20 * np.log10(abs(gain))) if gain != 0 else None
    return EchoResult(correlation=corr, delay_ms=float(lags[k] * 1000 / sr), erl_db=erl)
