"""``callqa quality`` end to end, and the weights manager (install, verification, loading)."""

from __future__ import annotations

import csv
import functools
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.cli import main
from core.config import Settings
from core.errors import ModelUnavailableError, ParameterError
from core.quality import manager
from tests.support.shared import PROJECT_ROOT, in_ci

CLIPS = ("speech.wav", "u_am1s01b1c1.wav", "20261107-081637_2496561430_out_15.24_6s.wav")


@pytest.fixture(scope="module")
def reference(golden_dir: Path) -> dict[str, dict[str, str]]:
    with (golden_dir / "nisqa_reference.csv").open(newline="") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["quality", *args])
    out, err = capsys.readouterr()
    return code, out, err


# --- callqa quality --------------------------------------------------------------------------
def test_json_output_reproduces_the_official_scores(capsys, golden_dir: Path, reference) -> None:
    paths = [str(golden_dir / "clips" / name) for name in CLIPS]
    code, out, err = run_cli(capsys, *paths, "--json")
    assert (code, err) == (0, "")
    rows = json.loads(out)
    assert [r["file"] for r in rows] == paths
    for row in rows:
        ref = reference[Path(row["file"]).name]
        assert set(row) == {"file", "mos", "noisiness", "discontinuity", "coloration", "loudness"}
        assert row["mos"] == pytest.approx(float(ref["mos_pred"]), abs=1e-3)
        assert row["noisiness"] == pytest.approx(float(ref["noi_pred"]), abs=1e-3)
        assert row["discontinuity"] == pytest.approx(float(ref["dis_pred"]), abs=1e-3)
        assert row["coloration"] == pytest.approx(float(ref["col_pred"]), abs=1e-3)
        assert row["loudness"] == pytest.approx(float(ref["loud_pred"]), abs=1e-3)


def test_table_output(capsys, golden_dir: Path, reference) -> None:
    path = str(golden_dir / "clips" / "speech.wav")
    code, out, _ = run_cli(capsys, path)
    header, line = out.strip().splitlines()
    assert code == 0
    assert header.split() == ["file", "mos", "noisiness", "discontinuity", "coloration", "loudness"]
    assert line.split()[0] == path
    assert float(line.split()[1]) == pytest.approx(float(reference["speech.wav"]["mos_pred"]), abs=1e-3)


def test_stereo_is_scored_as_the_mean_of_its_channels(capsys, golden_dir: Path, tmp_path: Path) -> None:
    mono, rate = sf.read(golden_dir / "clips" / "speech.wav", dtype="float32")
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([mono, 0.5 * mono], axis=1), rate, subtype="FLOAT")
    mean = tmp_path / "mean.wav"
    sf.write(mean, 0.75 * mono, rate, subtype="FLOAT")
    code, out, _ = run_cli(capsys, str(stereo), str(mean), "--json")
    assert code == 0
    first, second = json.loads(out)
    assert first["mos"] == pytest.approx(second["mos"], abs=1e-4)


def write_wav(path: Path, seconds: float, rate: int = 8000) -> Path:
    rng = np.random.default_rng(7)
    sf.write(path, 0.1 * rng.standard_normal(round(seconds * rate)), rate, subtype="PCM_16")
    return path


def write_text(path: Path) -> Path:
    path.write_text("not audio")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: write_wav(d / "blip.wav", 0.1), r"blip\.wav: 0\.100 s is too short for NISQA.*0\.14 s"),
        (lambda d: write_wav(d / "long.wav", 53.0), r"long\.wav: 53\.00 s is longer than the 52\.14 s NISQA v2\.0"),
        (lambda d: write_text(d / "notes.wav"), r"notes\.wav: not a readable audio file"),
        (lambda d: d / "missing.wav", r"missing\.wav: no such file"),
    ],
    ids=["too-short", "too-long", "not-audio", "missing"],
)
def test_bad_files_give_one_line_and_a_non_zero_exit(capsys, tmp_path: Path, make, message: str) -> None:
    code, out, err = run_cli(capsys, str(make(tmp_path)))
    assert code != 0 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("callqa: error: ")
    assert re.search(message, err), err


def test_console_script_end_to_end(golden_dir: Path) -> None:
    exe = PROJECT_ROOT / ".venv" / "bin" / "callqa"
    if not exe.exists():
        message = f"{exe} not installed (make setup)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    clip = golden_dir / "clips" / "speech_bab_0dB.wav"
    done = subprocess.run([str(exe), "quality", str(clip), "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["file"] == str(clip)
    bad = subprocess.run([str(exe), "quality", str(clip.with_name("nope.wav"))], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.strip().endswith("nope.wav: no such file")


# --- weights manager -------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CALLQA_NISQA_WEIGHTS", "CALLQA_MODELS", "CALLQA_CONFIG", "CALLQA_QUALITY_THREADS",
                 "CALLQA_QUALITY_BACKEND"):
        monkeypatch.delenv(name, raising=False)


def settings_for(models_dir: Path, **quality: object) -> Settings:
    return Settings(raw={"paths": {"models_dir": str(models_dir)}, "quality": dict(quality)})


def test_weights_path_precedence(clean_env, monkeypatch, tmp_path: Path) -> None:
    assert manager.weights_path(settings_for(tmp_path)) == tmp_path / "nisqa.tar"
    configured = Settings(path=tmp_path / "callqa.toml", raw={"quality": {"weights": "w/n.tar"}})
    assert manager.weights_path(configured) == tmp_path / "w" / "n.tar"
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(tmp_path / "env.tar"))
    assert manager.weights_path(configured) == tmp_path / "env.tar"


def test_install_copies_from_shared_and_is_idempotent(clean_env, shared_models_dir: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "models")
    first = manager.install_weights(settings, source=shared_models_dir / "nisqa.tar")
    assert first.action == "copied" and manager.sha256_of(first.path) == manager.WEIGHTS_SHA256
    mtime = first.path.stat().st_mtime_ns
    again = manager.install_weights(settings, source=shared_models_dir / "nisqa.tar")
    assert again.action == "present" and first.path.stat().st_mtime_ns == mtime
    assert [p.name for p in first.path.parent.iterdir()] == ["nisqa.tar"]  # no temporary left over


def test_install_replaces_a_corrupt_file(clean_env, shared_models_dir: Path, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (tmp_path / "nisqa.tar").write_bytes(b"truncated")
    result = manager.install_weights(settings, source=shared_models_dir / "nisqa.tar")
    assert result.action == "copied" and manager.sha256_of(result.path) == manager.WEIGHTS_SHA256


def test_install_refuses_a_source_with_the_wrong_hash(clean_env, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"x" * 1000)
    with pytest.raises(ModelUnavailableError, match=r"bad\.tar: sha256 .* does not match"):
        manager.install_weights(settings_for(tmp_path / "models"), source=bad)
    assert list((tmp_path / "models").iterdir()) == []


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (signature of the base)
        pass


def test_install_downloads_when_there_is_no_local_copy(clean_env, shared_models_dir: Path, tmp_path: Path) -> None:
    handler = functools.partial(QuietHandler, directory=str(shared_models_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/nisqa.tar"
        result = manager.install_weights(settings_for(tmp_path), source=tmp_path / "absent.tar", url=url)
        assert (result.action, result.source) == ("downloaded", url)
        assert manager.sha256_of(result.path) == manager.WEIGHTS_SHA256
        with pytest.raises(ModelUnavailableError, match=r"/missing\.tar: download failed"):
            manager.install_weights(settings_for(tmp_path / "other"), source=tmp_path / "absent.tar",
                                    url=url.replace("nisqa.tar", "missing.tar"))
    finally:
        server.shutdown()
        server.server_close()


def test_install_command_line(clean_env, tmp_path: Path, shared_models_dir: Path) -> None:
    env = {**os.environ, "CALLQA_MODELS": str(tmp_path), "CALLQA_SHARED": str(shared_models_dir.parent)}
    cmd = [sys.executable, "-W", "error", "-m", "core.quality.manager", "install"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "copied" in first.stdout and "CC BY-NC-SA 4.0" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=60)
    assert second.returncode == 0 and "present" in second.stdout


@pytest.mark.parametrize("content", [None, b"garbage"], ids=["missing", "corrupt"])
def test_loading_missing_or_corrupt_weights_names_the_path_and_the_fix(clean_env, tmp_path: Path, content) -> None:
    if content is not None:
        (tmp_path / "nisqa.tar").write_bytes(content)
    with pytest.raises(ModelUnavailableError) as info:
        manager.get_quality_model(settings_for(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "nisqa.tar") in message
    assert "make setup" in message and "python -m core.quality.manager install" in message


def test_cli_reports_missing_weights(capsys, clean_env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(tmp_path / "none.tar"))
    code, _, err = run_cli(capsys, str(write_wav(tmp_path / "a.wav", 1.0)))
    assert code == 1 and "NISQA weights not found at" in err and "none.tar" in err


def test_model_is_loaded_once_and_threads_are_applied(clean_env) -> None:
    import torch

    first = manager.get_quality_model(threads=1, backend="torch")
    assert torch.get_num_threads() == 1
    second = manager.get_quality_model(settings_for(manager.weights_path().parent, threads=2), backend="torch")
    assert second is first and torch.get_num_threads() == 2
    with pytest.raises(ParameterError, match=r"\[quality\] threads=0"):
        manager.get_quality_model(threads=0)
