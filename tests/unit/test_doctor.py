"""``callqa doctor`` on a healthy temporary setup, and each broken part failing with a clear line."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from core.cli import main
from core.config import Settings
from core.doctor import FAIL, PASS, WARN, run_doctor
from tests.support.shared import PROJECT_ROOT, require_shared

API_KEY = "doctor-test-key-0123456789abcdef"


def _weights() -> Path:
    installed = PROJECT_ROOT / "models" / "nisqa.tar"
    return installed if installed.is_file() else require_shared("models", "nisqa.tar")


@pytest.fixture
def healthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Environment of a healthy install in ``tmp_path``: data, store, weights, key, secrets file."""
    for name in list(os.environ):
        if name.startswith(("CALLQA_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    for tool in ("sox", "ffmpeg"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (`make setup` installs it)")
    data = tmp_path / "data"
    data.mkdir()
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"CALLQA_API_KEY={API_KEY}\n")
    secrets.chmod(0o600)
    monkeypatch.setenv("CALLQA_DATA", str(data))
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(_weights()))
    monkeypatch.setenv("CALLQA_API_KEY", API_KEY)
    monkeypatch.setenv("CALLQA_SECRETS_FILE", str(secrets))
    monkeypatch.chdir(tmp_path)  # no ./callqa.toml
    from core.store import open_store

    open_store(str(data / "callqa.db")).close()  # a migrated store
    return tmp_path


def _by_name(report) -> dict:
    return {c.name: c for c in report.checks}


def test_healthy_setup_passes(healthy: Path) -> None:
    report = run_doctor(Settings())
    checks = _by_name(report)
    assert report.ok, report.lines()
    for name in ("sox", "ffmpeg", "weights", "data_dir", "store", "temp_space", "api_key", "secrets_file"):
        assert checks[name].status == PASS, (name, checks[name].detail)
    assert "ok)" in checks["weights"].detail and "ONNX export nisqa.onnx matches" in checks["weights"].detail
    assert "schema" in checks["store"].detail and "writable" in checks["store"].detail
    assert "mode 0600" in checks["secrets_file"].detail
    # optional parts are warnings, not failures
    assert checks["vicidial"].status == WARN and "not configured" in checks["vicidial"].detail
    assert checks["claude"].status == WARN
    assert API_KEY not in "\n".join(report.lines())


def test_cli_exit_status_and_json(healthy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].endswith("0 failed")
    assert any(line.startswith("PASS  sox") for line in out.splitlines())
    assert API_KEY not in out
    assert main(["doctor", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and {c["status"] for c in data["checks"]} <= {PASS, WARN}
    assert all(set(c) == {"name", "status", "detail"} for c in data["checks"])


def _fails(name: str, fragment: str, capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``callqa doctor``: exit 1, and the check's line is FAIL and contains ``fragment``."""
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    (line,) = [line for line in lines if line.split()[1:2] == [name]]
    assert line.startswith("FAIL"), line
    assert fragment in line, line
    assert not [x for x in lines if x.startswith("FAIL") and x != line], lines  # only this one fails
    return line


def test_corrupt_weights_fail(healthy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    corrupt = healthy / "nisqa.tar"
    data = bytearray(_weights().read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the checkpoint
    corrupt.write_bytes(bytes(data))
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(corrupt))
    line = _fails("weights", "is corrupt: sha256", capsys)
    assert "core.quality.manager install" in line


def test_missing_weights_fail(healthy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(healthy / "nowhere.tar"))
    _fails("weights", "missing", capsys)


def test_store_that_is_not_writable_fails(healthy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    if os.geteuid() == 0:
        # root writes through mode bits; sysfs refuses new files even to root
        folder = Path("/sys")
    else:
        folder = healthy / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
    monkeypatch.setenv("CALLQA_STORE", str(folder / "callqa.db"))
    line = _fails("store", "is not writable", capsys)
    assert str(folder) in line


def test_store_under_a_file_fails(healthy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    (healthy / "afile").write_text("")
    monkeypatch.setenv("CALLQA_STORE", str(healthy / "afile" / "callqa.db"))
    _fails("store", "is not a folder", capsys)


def test_secrets_file_readable_by_others_fails(healthy: Path, capsys) -> None:
    secrets = healthy / "secrets.env"
    secrets.chmod(0o644)
    line = _fails("secrets_file", "mode 0644", capsys)
    assert f"chmod 600 {secrets}" in line and API_KEY not in line


def test_missing_sox_fails(healthy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    bin_dir = healthy / "bin"
    bin_dir.mkdir()
    (bin_dir / "ffmpeg").symlink_to(shutil.which("ffmpeg"))
    monkeypatch.setenv("PATH", str(bin_dir))
    line = _fails("sox", "sox is not on PATH", capsys)
    assert "apt-get install sox" in line


def test_missing_or_short_api_key_fails(healthy: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("CALLQA_API_KEY")
    _fails("api_key", "no API key", capsys)
    monkeypatch.setenv("CALLQA_API_KEY", "tiny-k3y")
    line = _fails("api_key", "shorter than 16", capsys)
    assert "tiny-k3y" not in line


def test_broken_config_is_one_failing_line(healthy: Path, capsys) -> None:
    (healthy / "callqa.toml").write_text("[api\n")
    assert main(["doctor"]) == 1
    (line,) = capsys.readouterr().out.splitlines()[:1]
    assert line.startswith("FAIL  config") and "not valid TOML" in line


def test_speaker_model_check_says_when_the_onnx_export_is_missing(tmp_path, monkeypatch):
    from core.config import Settings
    from core.doctor import FAIL, PASS, WARN, check_speakers

    monkeypatch.setenv("CALLQA_MODELS", str(tmp_path))
    status, detail = check_speakers(Settings())
    assert status == WARN and "python -m core.audio.speakers install" in detail
    (tmp_path / "ge2e.onnx").write_bytes(b"placeholder")
    assert check_speakers(Settings())[0] == PASS
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    from core.doctor import _run

    assert _run("speakers", lambda: check_speakers(Settings())).status == FAIL


def test_weights_without_their_onnx_export_warn_and_name_the_fix(healthy: Path, monkeypatch) -> None:
    lone = healthy / "lone" / "nisqa.tar"
    lone.parent.mkdir()
    shutil.copyfile(_weights(), lone)
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(lone))
    check = _by_name(run_doctor(Settings()))["weights"]
    assert check.status == WARN
    assert "falls back to PyTorch" in check.detail and "core.quality.manager install" in check.detail
    monkeypatch.setenv("CALLQA_QUALITY_BACKEND", "onnx")
    assert _by_name(run_doctor(Settings()))["weights"].status == FAIL
    monkeypatch.setenv("CALLQA_QUALITY_BACKEND", "torch")
    assert _by_name(run_doctor(Settings()))["weights"].status == PASS
