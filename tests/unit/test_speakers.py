"""The speaker-embedding front end and encoder: known answers on synthetic signals and voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio import speakers
from core.audio.diarize import speaker_embedding
from core.audio.io import AudioClip
from core.audio.vad import detect_speech, get_vad
from tests.support import synth_calls as sc

pytestmark = sc.requires_espeak()


def _tone(freq: float, seconds: float = 1.0, level: float = 0.1) -> np.ndarray:
    t = np.arange(int(seconds * speakers.RATE)) / speakers.RATE
    return (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_filterbank_covers_the_band_with_triangles_of_unit_area_in_hz():
    bank = speakers.mel_filterbank()
    assert bank.shape == (40, 201)
    hz = np.linspace(0, speakers.RATE / 2, 201)
    peaks = hz[np.argmax(bank, axis=1)]
    assert np.all(np.diff(peaks) > 0)  # centres rise with the band index
    # Slaney normalisation: each triangle's area over frequency is the same (2 / width * width / 2 = 1)
    areas = bank.sum(axis=1) * (hz[1] - hz[0])
    assert np.allclose(areas[5:35], 1.0, rtol=0.1)


@pytest.mark.parametrize("freq", [300.0, 1000.0, 2500.0])
def test_a_tone_lands_in_the_band_around_its_frequency(freq: float):
    mel = speakers.mel_power(_tone(freq))
    bank = speakers.mel_filterbank()
    hz = np.linspace(0, speakers.RATE / 2, 201)
    band = int(np.argmax(mel[10:-10].mean(axis=0)))
    lo, hi = hz[bank[band] > 0][[0, -1]]
    assert lo <= freq <= hi


def test_frame_count_and_power_scale_with_the_signal():
    x = _tone(1000.0, 2.0)
    mel = speakers.mel_power(x)
    assert mel.shape == (1 + len(x) // speakers.HOP, 40)
    louder = speakers.mel_power(2 * x)
    assert np.allclose(louder, 4 * mel, rtol=1e-4, atol=1e-9)  # power spectrogram: 6 dB = x4


def test_window_gains_bring_every_window_to_the_target_level():
    x = np.concatenate((_tone(500, 1.0, 0.01), _tone(500, 1.0, 0.3)))
    gains = speakers.window_gains(x, [0, 100], 100)
    for start, g in zip((0, 100), gains, strict=True):
        seg = x[start * speakers.HOP:(start + 100) * speakers.HOP].astype(np.float64)
        level = 10 * np.log10(np.mean(seg ** 2) * g)
        assert abs(level - speakers.WINDOW_TARGET_DB) < 0.01


def _embedding(voice: str, lines) -> np.ndarray:
    x = np.concatenate([sc.say(line, voice) for line in lines])
    clip = AudioClip(x, sc.RATE, Path("voice.wav"))
    vector, seconds = speaker_embedding(clip, detect_speech({"a": clip}, vad=get_vad())["a"].segments,
                                        speakers.get_encoder())
    assert vector is not None and seconds > 3
    return vector


def test_the_same_voice_is_closer_than_another_voice():
    a1 = _embedding(sc.AGENT_VOICE, sc.ENROLL_LINES)
    a2 = _embedding(sc.AGENT_VOICE, sc.AGENT_LINES[:3])
    b = _embedding(sc.CALLER_VOICE, sc.CALLER_LINES[:3])
    assert abs(np.linalg.norm(a1) - 1) < 1e-4
    assert a1 @ a2 > 0.95 and a1 @ b < 0.85 and a1 @ a2 - a1 @ b > 0.15


def test_onnx_export_agrees_with_pytorch(tmp_path: Path):
    path = tmp_path / "ge2e.onnx"
    diff = speakers.export_onnx(path)
    assert path.is_file() and diff < 1e-4
    rng = np.random.default_rng(5)
    mels = (rng.random((3, 120, 40)) * 1e-2).astype(np.float32)
    via_onnx = speakers.VoiceEncoder(onnx_path=path).embed_mels(mels)
    via_torch = speakers.VoiceEncoder(onnx_path=None).embed_mels(mels)
    assert via_onnx.shape == (3, 256) and np.abs(via_onnx - via_torch).max() < 1e-4
