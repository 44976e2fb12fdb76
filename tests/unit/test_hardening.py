"""Regression tests of issue #18: the defects a hostile or unlucky day found in the core.

Each test fails on the code before the fix: FIFOs and devices beside a call, siblings linking
out of the allowed roots, truncated MP3s analysed silently, libmpg123's noise on stderr, the
misleading "does not exist" message, out-of-range float samples, and file names that break the
one-line error.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.io import load_audio
from core.audio.layout import CallFiles, call_files_for
from core.audio.stats import compute_stats
from core.config import AnalysisConfig
from core.errors import AudioNotFoundError, InvalidAudioError, PathNotAllowedError, escape_text
from core.store.cachekey import cache_key
from tests.support.mutations import mp3_damage_frames
from tests.support.signals import tone, write

SR = 8000


def _bounded(fn, timeout_s: float = 10.0):
    """``fn()``'s result or exception, or AssertionError when it has not returned in time (blocked)."""
    box: list = []

    def run() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # handed to the test
            box.append(exc)

    worker = threading.Thread(target=run, daemon=True)  # a blocked open() must not hold the process
    worker.start()
    worker.join(timeout_s)
    assert box, f"still blocked after {timeout_s} s"
    return box[0]


@pytest.fixture
def leg(tmp_path: Path) -> Path:
    return write(tmp_path / "F-out.wav", tone(300, rms_dbfs=-20, duration_s=1.0, sample_rate=SR), sample_rate=SR)


# --- 1. FIFOs and devices beside a call --------------------------------------------------------
def test_fifo_beside_a_call_is_refused_before_anything_reads_it(tmp_path: Path, leg: Path) -> None:
    fifo = tmp_path / "F-in.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioNotFoundError, match=r"F-in\.wav: is a FIFO \(named pipe\), not a regular file"):
        call_files_for(leg)
    # the cache key (hashed before any analysis) must not wait for a writer either
    result = _bounded(lambda: cache_key(CallFiles("F", {"in": fifo, "out": leg}), AnalysisConfig(), None,
                                        analysis_version="t"))
    assert isinstance(result, AudioNotFoundError) and "not a regular file" in str(result)


@pytest.mark.parametrize("device", ["/dev/urandom", "/dev/zero"])
def test_device_linked_beside_a_call_is_refused(tmp_path: Path, leg: Path, device: str) -> None:
    (tmp_path / "F-in.wav").symlink_to(device)
    with pytest.raises(AudioNotFoundError, match=r"F-in\.wav: is a character device"):
        call_files_for(leg)
    result = _bounded(lambda: cache_key(CallFiles("F", {"in": tmp_path / "F-in.wav", "out": leg}), AnalysisConfig(),
                                        None, analysis_version="t"))
    assert isinstance(result, AudioNotFoundError)


def test_the_named_file_itself_as_fifo_gets_a_true_message(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "G.wav")
    with pytest.raises(AudioNotFoundError, match="is a FIFO"):
        load_audio(tmp_path / "G.wav")  # used to say "is empty (0 bytes)"


# --- 3. every file of the call inside the allowed roots ---------------------------------------
@pytest.mark.parametrize("target", ["existing", "missing", "passwd"])
def test_sibling_linking_outside_the_roots_is_refused_alike(tmp_path: Path, target: str) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    given = write(root / "C-in.wav", tone(300, rms_dbfs=-20, duration_s=1.0, sample_rate=SR), sample_rate=SR)
    real = write(outside / "secret.wav", tone(500, rms_dbfs=-20, duration_s=1.0, sample_rate=SR), sample_rate=SR)
    link_to = {"existing": real, "missing": outside / "missing.wav", "passwd": Path("/etc/passwd")}[target]
    (root / "C-out.wav").symlink_to(link_to)
    if target != "missing":
        call_files_for(given)  # without roots (the CLI), the link is followed as before
    with pytest.raises(PathNotAllowedError) as refused:
        call_files_for(given, roots=(root.resolve(),))
    message = str(refused.value)
    # the same words whether the target exists or not, and the target is never named
    assert message == f"{root / 'C-out.wav'} lies outside the folders recordings may be read from (symlinks " \
                      "followed; [api] allowed_roots, [dashboard] folders)"
    assert str(link_to) not in message


# --- 7. truncated MP3s ------------------------------------------------------------------------
def _mp3(path: Path, seconds: float) -> Path:
    x = tone(440, rms_dbfs=-20, duration_s=seconds, sample_rate=SR)
    sf.write(path, x, SR, format="MP3", subtype="MPEG_LAYER_III")
    return path


def test_truncated_mp3_is_analysed_with_a_warning_and_both_durations(tmp_path: Path) -> None:
    from core.pipeline import analyze_path

    whole = _mp3(tmp_path / "whole.mp3", 12.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 4])
    (clip,) = load_audio(cut)
    assert clip.duration_s < 4.0
    assert clip.declared_duration_s == pytest.approx(12.0, abs=0.2)
    assert any("cut.mp3: truncated" in w and "12.0 s" in w for w in clip.warnings)
    doc = analyze_path(cut, cfg=AnalysisConfig()).as_dict()
    assert doc["legs"]["mixed"]["declared_duration_s"] == pytest.approx(12.0, abs=0.2)
    assert doc["legs"]["mixed"]["stats"]["duration_s"] < 4.0
    assert any("truncated" in w for w in doc["warnings"])
    (intact,) = load_audio(whole)
    assert intact.declared_duration_s is None and intact.warnings == ()


# --- 8. native decoder noise ------------------------------------------------------------------
def test_decoder_noise_becomes_one_warning_and_nothing_on_stderr(tmp_path: Path,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    whole = _mp3(tmp_path / "ok.mp3", 6.0)
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(mp3_damage_frames(whole.read_bytes(), np.random.default_rng(7)))
    # libsndfile alone prints libmpg123's complaints on descriptor 2 (what the fix captures)
    raw = subprocess.run([sys.executable, "-c", f"import soundfile as sf; sf.read({str(damaged)!r})"],
                         capture_output=True, text=True, timeout=60)
    assert raw.stderr.strip(), "the damaged file should make libmpg123 print"
    capfd.readouterr()
    (clip,) = load_audio(damaged)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert any("damaged.mp3" in w and "from the decoder" in w for w in clip.warnings)


# --- 9. what is wrong with an unreadable MP3 ---------------------------------------------------
def test_unreadable_mp3_says_it_is_damaged_not_missing(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + bytes(np.random.default_rng(3).integers(0, 256, 4000,
                                                                                                 dtype=np.uint8)))
    with pytest.raises(InvalidAudioError) as refused:
        load_audio(bad)
    message = str(refused.value)
    assert "does not exist" not in message and "possibly a pipe" not in message
    assert message.startswith(f"{bad}: ") and "damaged MP3" in message
    assert capfd.readouterr().err == ""


# --- 10. float samples beyond full scale -------------------------------------------------------
@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE"])
def test_out_of_range_float_samples_are_clipped_with_a_warning(tmp_path: Path, subtype: str) -> None:
    x = tone(300, rms_dbfs=-20, duration_s=1.0, sample_rate=SR).astype(np.float64)
    x[100] = 1e30
    path = tmp_path / "loud.wav"
    sf.write(path, x, SR, subtype=subtype)
    (clip,) = load_audio(path)
    assert float(np.max(np.abs(clip.samples))) == 1.0
    assert any("loud.wav: 1 sample beyond full scale (largest magnitude 1e+30) clipped" in w for w in clip.warnings)
    stats = compute_stats(clip, clip_level_db=-0.1)
    assert stats.peak_db <= 0.0  # was 600 dB


# --- 11. file names in messages -----------------------------------------------------------------
def test_escape_text_makes_names_one_printable_line() -> None:
    assert escape_text("a\nb\x1b[31mc\x07\u202ed\tx") == "a\\nb\\x1b[31mc\\x07\\u202ed\\tx"
    assert escape_text("20261107-080000_9828963560-in.wav") == "20261107-080000_9828963560-in.wav"
    assert escape_text("café ü") == "café ü"


@pytest.mark.parametrize("name", ["new\nline-in.wav", "ansi\x1b[2J\x1b[31mred.wav", "rtl\u202evaw.exe.wav"])
def test_cli_error_line_escapes_the_file_name(tmp_path: Path, name: str, capfd: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from core.cli import main

    (tmp_path / "callqa.toml").write_text("")
    monkeypatch.setenv("CALLQA_CONFIG", str(tmp_path / "callqa.toml"))
    path = tmp_path / name
    path.write_bytes(b"not audio at all " * 40)
    capfd.readouterr()
    code = main(["analyze", "--json", "--no-quality", str(path)])
    out, err = capfd.readouterr()
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("callqa: error: ")
    assert err[:-1].isprintable() and "\x1b" not in err and "\u202e" not in err
    assert escape_text(str(path)) in err
