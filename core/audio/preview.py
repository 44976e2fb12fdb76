"""What people see and hear of one leg: its samples, a waveform envelope and playable audio.

A leg's ``source`` in the analysis JSON is a file path, or ``path#chN`` for channel N of a
stereo file (:func:`split_source`). Browsers do not play GSM or (reliably) mu-law WAV, so
:func:`wav_bytes` gives 16-bit PCM; a waveform needs only min/max per pixel column
(:func:`envelope`), never the samples themselves.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from core.audio.io import downmix, load_audio

#: Columns of a waveform envelope: about the pixel width of a chart.
ENVELOPE_WIDTH = 1000


def split_source(source: str) -> tuple[Path, int | None]:
    """A leg's ``source`` (``path`` or ``path#chN``) as the file and the 0-based channel index."""
    path, sep, channel = source.rpartition("#ch")
    if sep and channel.isdigit():
        return Path(path), int(channel) - 1
    return Path(source), None


def file_stamp(source: str) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a leg's file, or None when it is gone (for cache keys)."""
    try:
        stat = split_source(source)[0].stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


def leg_samples(source: str) -> tuple[np.ndarray, int]:
    """The samples of one leg: its channel of a stereo file, else the file as one track.

    Returns
    -------
    (np.ndarray, int)
        float32 samples in [-1, 1], shape (n,), and the sample rate in Hz.

    Raises
    ------
    AudioError
        The file is missing or cannot be decoded.
    """
    path, channel = split_source(source)
    clips = load_audio(path)
    clip = clips[channel] if channel is not None and channel < len(clips) else downmix(clips)
    return clip.samples, clip.sample_rate


def envelope(samples: np.ndarray, sample_rate: int, width: int = ENVELOPE_WIDTH) -> pd.DataFrame:
    """Min/max of ``samples`` per pixel column: what a waveform plot needs, never the samples.

    Parameters
    ----------
    samples : np.ndarray, shape (n,)
        One track, floats in [-1, 1].
    sample_rate : int
        In Hz.
    width : int
        Number of columns (at most ``n``).

    Returns
    -------
    pandas.DataFrame
        ``t_s`` (start of each column, seconds), ``lo`` and ``hi`` (min and max amplitude);
        ``min(width, n)`` rows.
    """
    n = int(samples.shape[0])
    if n == 0 or width < 1:
        return pd.DataFrame({"t_s": [], "lo": [], "hi": []})
    cols = min(int(width), n)
    starts = np.linspace(0, n, cols + 1).astype(np.int64)[:-1]
    lo = np.minimum.reduceat(samples, starts)
    hi = np.maximum.reduceat(samples, starts)
    return pd.DataFrame({"t_s": (starts / sample_rate).round(4), "lo": lo.astype("float64").round(4),
                         "hi": hi.astype("float64").round(4)})


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """``samples`` as a 16-bit PCM WAV file in memory (what every browser plays)."""
    buf = io.BytesIO()
    sf.write(buf, samples, sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
