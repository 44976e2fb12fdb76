"""Stats match real `sox stat` (±0.05 dB) and silence gaps match real `ffmpeg silencedetect` (±20 ms)
on every WAV track of the corpus, and on synthetic files in every 8 kHz telephone encoding."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from core.audio.io import AudioClip, load_audio
from core.audio.silence import detect_silence
from core.audio.stats import compute_stats
from tests.support.shared import SHARED_DIR
from tests.support.signals import place, speechlike, tone, write

NOISE_DB, MIN_S = -50.0, 0.5

pytestmark = pytest.mark.skipif(not (shutil.which("sox") and shutil.which("ffmpeg")),
                                reason="sox/ffmpeg missing: run `make setup`")


def sox_stat(path: Path, channel: int | None) -> dict[str, float]:
    args = ["sox", str(path), "-n"] + ([] if channel is None else ["remix", str(channel + 1)]) + ["stat"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stderr
    return {k.strip(): float(v) for k, v in re.findall(r"^([A-Za-z ()]+):\s+(-?[\d.]+)\s*$", out, re.M)}


def ffmpeg_silences(path: Path, channel: int | None, noise_db: float, min_s: float) -> list[tuple[float, float]]:
    af = f"silencedetect=noise={noise_db}dB:d={min_s}"
    if channel is not None:
        af = f"pan=mono|c0=c{channel}," + af
    err = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af", af, "-f", "null", "-"],
                         capture_output=True, text=True, check=True).stderr
    starts = [float(x) for x in re.findall(r"silence_start: (-?[\d.e+-]+)", err)]
    ends = [float(x) for x in re.findall(r"silence_end: (-?[\d.e+-]+)", err)]
    return list(zip(starts, ends + [math.nan] * (len(starts) - len(ends)), strict=True))


def _tracks() -> list[tuple[Path, int | None]]:
    corpus = SHARED_DIR / "corpus"
    out = []
    for p in sorted(corpus.glob("*.wav")):
        channels = 2 if p.stem.endswith("-stereo") else 1
        out += [(p, None)] if channels == 1 else [(p, 0), (p, 1)]
    return out


def _check(clip: AudioClip, path: Path, channel: int | None) -> None:
    ref = sox_stat(path, channel)
    st = compute_stats(clip)
    assert st.duration_s == pytest.approx(ref["Length (seconds)"], abs=1e-5)
    assert st.dc_offset == pytest.approx(ref["Mean    amplitude"], abs=2e-6)
    if ref["RMS     amplitude"] > 0:
        assert abs(st.rms_db - 20 * math.log10(ref["RMS     amplitude"])) <= 0.05
        peak = max(ref["Maximum amplitude"], -ref["Minimum amplitude"])
        assert abs(st.peak_db - 20 * math.log10(peak)) <= 0.05
    else:
        assert st.clipped_samples == 0 and st.rms_db < -140
    ours = detect_silence(clip, noise_db=NOISE_DB, min_silence_s=MIN_S).silences
    theirs = ffmpeg_silences(path, channel, NOISE_DB, MIN_S)
    assert len(ours) == len(theirs), (path.name, channel)
    for gap, (s, e) in zip(ours, theirs, strict=True):
        assert abs(gap.start_s - s) <= 0.02
        assert abs(gap.end_s - (clip.duration_s if math.isnan(e) else e)) <= 0.02


@pytest.mark.parametrize(("path", "channel"), _tracks(),
                         ids=lambda v: v.name if isinstance(v, Path) else f"ch{v}" if v is not None else "mono")
def test_corpus_track_matches_sox_and_ffmpeg(corpus_dir: Path, path: Path, channel: int | None):
    clips = load_audio(path)
    clip = clips[0] if channel is None else clips[channel]
    _check(clip, path, channel)


def test_corpus_has_tracks(corpus_dir: Path):
    assert len(_tracks()) >= 36  # the parametrisation above is not empty


@pytest.mark.parametrize("subtype", ["PCM_16", "ULAW", "ALAW", "GSM610", "FLOAT"])
def test_synthetic_tracks_match_reference_tools(tmp_path: Path, rng: np.random.Generator, subtype: str):
    sr = 8000
    x = place(20.0, [(0.5, speechlike(rng, duration_s=3.0)), (6.2, tone(700, rms_dbfs=-12, duration_s=2.0)),
                     (11.0, speechlike(rng, duration_s=4.0, rms_dbfs=-30)), (17.3, speechlike(rng, duration_s=1.0))],
              floor_dbfs=-70, rng=rng)
    path = write(tmp_path / f"synthetic-{subtype}.wav", np.clip(x, -1, 1), sample_rate=sr, subtype=subtype)
    (clip,) = load_audio(path)
    _check(clip, path, None)
