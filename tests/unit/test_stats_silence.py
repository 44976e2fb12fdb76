"""Stats and silence gaps on synthetic signals with known answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio.io import AudioClip, load_audio
from core.audio.silence import detect_silence, silent_mask
from core.audio.stats import DB_FLOOR, compute_stats
from tests.support.signals import place, tone, write


def _clip(x: np.ndarray, sr: int = 8000, encoding: str = "FLOAT", full_scale: float = 1.0) -> AudioClip:
    return AudioClip(np.asarray(x, dtype=np.float32), sr, Path("synthetic.wav"), encoding, full_scale)


@pytest.mark.parametrize("rms_dbfs", [-40.0, -20.0, -6.0])
def test_tone_rms_and_peak(rms_dbfs: float):
    st = compute_stats(_clip(tone(1000, rms_dbfs=rms_dbfs, duration_s=1.0)))
    assert st.rms_db == pytest.approx(rms_dbfs, abs=0.01)
    assert st.peak_db == pytest.approx(rms_dbfs + 3.0103, abs=0.02)
    assert st.duration_s == pytest.approx(1.0)
    assert abs(st.dc_offset) < 1e-4
    assert st.clipped_samples == 0


def test_dc_offset_is_the_mean():
    st = compute_stats(_clip(tone(1000, rms_dbfs=-30, duration_s=1.0) + 0.05))
    assert st.dc_offset == pytest.approx(0.05, abs=1e-5)


def test_clipping_counts_samples_at_the_encodings_full_scale():
    x = np.clip(tone(300, rms_dbfs=0, duration_s=1.0), -1, 1)  # peak +3 dBFS, hard-clipped
    st = compute_stats(_clip(x))
    expected = int(np.count_nonzero(np.abs(x) >= 10 ** (-0.1 / 20)))
    assert st.clipped_samples == expected and st.clip_ratio > 0.2
    # mu-law tops out at 32124/32768: a flat top there is clipping too
    mu = np.clip(x, -32124 / 32768, 32124 / 32768)
    st_mu = compute_stats(_clip(mu, encoding="ULAW", full_scale=32124 / 32768))
    assert st_mu.clipped_samples >= expected


def test_digital_silence_reports_the_floor_not_infinity():
    st = compute_stats(_clip(np.zeros(8000)))
    assert st.rms_db == DB_FLOOR and st.peak_db == DB_FLOOR


def test_silence_gaps_at_known_seconds():
    sr = 8000
    loud = tone(500, rms_dbfs=-20, duration_s=1.0, sample_rate=sr)
    x = place(6.0, [(0.0, loud), (2.5, loud), (4.0, loud)], sample_rate=sr)
    res = detect_silence(_clip(x), noise_db=-50, min_silence_s=0.5)
    # gaps: 1.0-2.5 and 3.5-4.0 (0.5 s exactly: counted, ffmpeg uses >=) and 5.0-6.0 (to the end)
    got = [(round(g.start_s, 3), round(g.end_s, 3)) for g in res.silences]
    assert got == [(1.0, 2.5), (3.5, 4.0), (5.0, 6.0)]
    assert res.total_s == pytest.approx(3.0, abs=1e-3)  # sine zero crossings add a sample


def test_minimum_duration_excludes_short_pauses():
    loud = tone(500, rms_dbfs=-20, duration_s=1.0)
    x = place(3.2, [(0.0, loud), (1.4, loud)])
    res = detect_silence(_clip(x), noise_db=-50, min_silence_s=0.5)
    assert [(round(g.start_s, 3), round(g.end_s, 3)) for g in res.silences] == [(2.4, 3.2)]


def test_sixteen_bit_threshold_is_truncated_like_ffmpeg(tmp_path: Path):
    """ffmpeg compares int16 samples against int16(noise*32767): at -50 dB that is 103, not 103.6."""
    x = np.full(8000, 103 / 32768)
    path = write(tmp_path / "dc.wav", x, subtype="PCM_16")
    (clip,) = load_audio(path)
    assert not silent_mask(clip, noise_db=-50).any()  # 103 is not < 103
    y = np.full(8000, 102 / 32768)
    (clip2,) = load_audio(write(tmp_path / "dc2.wav", y, subtype="PCM_16"))
    assert silent_mask(clip2, noise_db=-50).all()


def test_all_silent_track_is_one_gap():
    res = detect_silence(_clip(np.zeros(16000)), noise_db=-50, min_silence_s=0.5)
    assert [(g.start_s, g.end_s) for g in res.silences] == [(0.0, 2.0)]


def test_flat_tops_below_full_scale_count_as_clipping():
    """A G.711 call saved as 16-bit PCM peaks at 32124/32768; its flat tops are still clipping."""
    rail = 32124 / 32768
    x = np.clip(tone(300, rms_dbfs=0, duration_s=1.0), -rail, rail)
    st = compute_stats(_clip(x, encoding="PCM_16", full_scale=1.0))
    assert st.clip_ratio > 0.2
    clean = tone(300, rms_dbfs=-6, duration_s=1.0, phase=0.3)  # peak -3 dBFS: no flat tops
    assert compute_stats(_clip(clean)).clipped_samples == 0


@pytest.mark.parametrize("n", [0, 1, 2, 7, 1000])
def test_runs_of_true_on_random_masks(n: int, rng: np.random.Generator):
    from core.audio.silence import runs_of_true

    for _ in range(20):
        mask = rng.random(n) < 0.5
        starts, ends = runs_of_true(mask)
        rebuilt = np.zeros(n, dtype=bool)
        for a, b in zip(starts, ends, strict=True):
            assert b > a and mask[a:b].all()
            assert (a == 0 or not mask[a - 1]) and (b == n or not mask[b])
            rebuilt[a:b] = True
        assert np.array_equal(rebuilt, mask)
