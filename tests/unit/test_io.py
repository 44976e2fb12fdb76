"""Loading recordings: every supported format decodes; every kind of bad input is a clear error."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.io import load_audio, load_mono
from core.errors import AudioNotFoundError, InvalidAudioError
from tests.support.signals import tone, write


@pytest.mark.parametrize(
    ("subtype", "fmt", "suffix", "tol_db"),
    [
        ("PCM_16", "WAV", ".wav", 0.01),
        ("PCM_24", "WAV", ".wav", 0.01),
        ("PCM_32", "WAV", ".wav", 0.01),
        ("FLOAT", "WAV", ".wav", 0.01),
        ("ULAW", "WAV", ".wav", 0.1),
        ("ALAW", "WAV", ".wav", 0.1),
        ("GSM610", "WAV", ".wav", 1.5),
        ("MPEG_LAYER_III", "MP3", ".mp3", 1.5),
        ("VORBIS", "OGG", ".ogg", 1.5),
    ],
    ids=["pcm16", "pcm24", "pcm32", "float", "ulaw", "alaw", "gsm", "mp3", "ogg"],
)
def test_formats_decode_to_the_written_level(tmp_path: Path, subtype: str, fmt: str, suffix: str, tol_db: float):
    sr = 8000 if subtype in ("GSM610", "ULAW", "ALAW") else 16000
    x = tone(440, rms_dbfs=-20, duration_s=2.0, sample_rate=sr)
    path = write(tmp_path / f"t{suffix}", x, sample_rate=sr, subtype=subtype, fmt=fmt)
    (clip,) = load_audio(path)
    assert clip.sample_rate == sr
    assert clip.samples.dtype == np.float32
    assert abs(clip.duration_s - 2.0) < 0.1
    mid = clip.samples[len(clip.samples) // 4: 3 * len(clip.samples) // 4].astype(float)
    level = 10 * np.log10(np.mean(mid**2))
    assert abs(level - -20) < tol_db
    if subtype == "ULAW":
        assert clip.full_scale == pytest.approx(32124 / 32768)


def test_stereo_gives_two_channels_and_load_mono_averages(tmp_path: Path):
    left = tone(300, rms_dbfs=-20, duration_s=1, sample_rate=8000)
    right = np.zeros_like(left)
    path = write(tmp_path / "s.wav", np.stack([left, right], axis=1))
    clips = load_audio(path)
    assert [c.channel for c in clips] == [0, 1]
    assert np.max(np.abs(clips[1].samples)) == 0
    mono = load_mono(path)
    np.testing.assert_allclose(mono.samples, clips[0].samples / 2, atol=1e-6)


def _raise_message(path: Path, **kwargs) -> str:
    with pytest.raises((InvalidAudioError, AudioNotFoundError)) as info:
        load_audio(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_empty_file(tmp_path: Path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    assert "empty (0 bytes)" in _raise_message(p)


def test_non_audio_file(tmp_path: Path):
    p = tmp_path / "notes.wav"
    p.write_text("this is not a recording\n" * 50)
    assert "not a readable audio file" in _raise_message(p)


def test_zero_length_wav(tmp_path: Path):
    p = tmp_path / "zero.wav"
    sf.write(str(p), np.zeros(0), 8000, subtype="PCM_16")
    assert "no audio samples" in _raise_message(p)


def test_truncated_wav(tmp_path: Path):
    p = write(tmp_path / "cut.wav", tone(440, rms_dbfs=-20, duration_s=3.0), sample_rate=8000)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    assert "truncated" in _raise_message(p)


def test_growing_recording_placeholder_size_is_accepted(tmp_path: Path):
    """Recorders still running write 0 as the data size; such files are read as they are."""
    p = write(tmp_path / "live.wav", tone(440, rms_dbfs=-20, duration_s=1.0), sample_rate=8000)
    data = bytearray(p.read_bytes())
    idx = data.index(b"data")
    data[idx + 4: idx + 8] = struct.pack("<I", 0xFFFFFFFF)
    p.write_bytes(bytes(data))
    (clip,) = load_audio(p)
    assert clip.duration_s == pytest.approx(1.0, abs=0.01)


def _wav_header(frames: int, sample_rate: int, channels: int = 1) -> bytes:
    data_bytes = frames * 2 * channels
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * 2 * channels, 2 * channels, 16) +
            b"data" + struct.pack("<I", data_bytes))


def test_six_hour_recording_is_refused_before_decoding(tmp_path: Path):
    frames = 6 * 3600 * 8000
    p = tmp_path / "six-hours.wav"
    with p.open("wb") as fh:  # a sparse file: the header promises 6 h, the disk holds almost nothing
        fh.write(_wav_header(frames, 8000))
        fh.truncate(44 + frames * 2)
    message = _raise_message(p)
    assert "6.0 h" in message and "limit" in message


def test_96k_recording_is_refused(tmp_path: Path):
    p = write(tmp_path / "hifi.wav", tone(440, rms_dbfs=-20, duration_s=0.5, sample_rate=96000), sample_rate=96000)
    assert "96000 Hz" in _raise_message(p)


def test_non_finite_samples_are_rejected(tmp_path: Path):
    x = tone(440, rms_dbfs=-20, duration_s=0.5).astype(np.float32)
    x[100] = np.nan
    p = write(tmp_path / "nan.wav", x, subtype="FLOAT")
    assert "non-finite" in _raise_message(p)


def test_missing_and_directory_paths(tmp_path: Path):
    assert "no such file" in _raise_message(tmp_path / "nope.wav")
    assert "is a directory" in _raise_message(tmp_path)


def test_unreadable_path(tmp_path: Path):
    """A file without read permission: as root, the check runs without the DAC-override capability."""
    import os
    import subprocess
    import sys

    p = write(tmp_path / "locked.wav", tone(440, rms_dbfs=-20, duration_s=0.5))
    p.chmod(0)
    try:
        if os.geteuid() != 0:
            assert "permission denied" in _raise_message(p)
            return
        code = ("from core.audio.io import load_audio\n"
                f"try:\n    load_audio({str(p)!r})\nexcept Exception as e:\n    print(type(e).__name__, e)")
        drop = "-dac_override,-dac_read_search"
        out = subprocess.run(
            ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable, "-c", code],
            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
        ).stdout
        assert out.startswith("AudioNotFoundError") and "permission denied" in out and str(p) in out
    finally:
        p.chmod(0o644)
