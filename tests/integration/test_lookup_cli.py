"""``callqa lookup`` end to end against the ViciDial fixture database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.cli import main
from tests.support import vicidial_fixture as fx
from tests.support.mariadb import free_port
from tests.support.shared import PROJECT_ROOT
from tests.support.vicidial_fixture import ViciDialFixture, vicidial_database

ENV_NAMES = ("CALLQA_CONFIG",) + tuple(f"CALLQA_VICIDIAL_{k}" for k in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"))


@pytest.fixture(scope="module")
def vicidial() -> Iterator[ViciDialFixture]:
    with vicidial_database() as fixture:
        yield fixture


@pytest.fixture
def config(vicidial: ViciDialFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A callqa.toml for the fixture database; no stray environment or ./callqa.toml."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    s = vicidial.settings
    path = tmp_path / "callqa-test.toml"
    path.write_text(
        "[vicidial]\n"
        f'host = "{s.host}"\nport = {s.port}\nuser = "{s.user}"\npassword = "{s.password}"\n'
        f'database = "{s.database}"\nconnect_timeout_s = 3\n'
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def json_ids(out: str) -> set[int]:
    return {row["recording_id"] for row in json.loads(out)}


@pytest.mark.parametrize(("args", "expected"), [
    (["--campaign", "SALESOUT"], {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.CORPUS_CHANNEL, fx.CORPUS_NOISY}),
    (["--ingroup", "SUPPORT_IN"], {fx.INBOUND_SUPPORT, fx.ARCHIVE_INBOUND, fx.CORPUS_CONFERENCE}),
    (["--since", "2025-08-29", "--until", "2025-08-29"], {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.INBOUND_SUPPORT}),
    (["--since", "2025-08-29 14:00", "--until", "2025-08-29 14:02:33"], {fx.INBOUND_SUPPORT}),
    (["--since", "2025-08-29 14:00", "--until", "2025-08-29 14:02:32"], set()),
    (["--phone", "+1 (773) 555-0142"], {fx.INBOUND_SUPPORT}),
    (["--agent", "6001", "--until", "2024-12-31"], {fx.ARCHIVE_OUTBOUND}),
    (["--lead-id", "1048573"], {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.GATEWAY_UNLINKED}),
    (["--recording-id", str(fx.ARCHIVE_INBOUND)], {fx.ARCHIVE_INBOUND}),
    (["--uniqueid", "1756490551.50321"], {fx.INBOUND_SUPPORT}),
    (["--status", "RENEWD"], {fx.ARCHIVE_OUTBOUND}),
])
def test_json_output_per_option(config: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                 expected: set[int]) -> None:
    code, out, err = run(capsys, "--config", str(config), "lookup", "--json", *args)
    assert (code, err) == (0, "")
    assert json_ids(out) == expected


def test_json_rows_carry_the_metadata(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(config), "lookup", "--json", "--recording-id", str(fx.OUTBOUND_SALE))
    assert code == 0
    (row,) = json.loads(out)
    assert row["filename"] == "20250829-101512_3125551212"
    assert (row["call_date"], row["full_name"], row["campaign_name"]) == ("2025-08-29 10:15:12", "Maria Lopez",
                                                                          "Outbound Sales Q3")
    assert (row["hangup_cause"], row["sip_hangup_reason"], row["dialstatus"]) == (16, "OK", "ANSWER")


def test_table_output_and_limit(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--config", str(config), "lookup", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["RECORDING", "CALL", "TIME"]
    assert lines[1].startswith(str(fx.CORPUS_CONFERENCE)) and "SUPPORT_IN" in lines[1]
    assert lines[2].startswith(str(fx.CORPUS_NOISY)) and "16/200 ANSWER" in lines[2]
    assert lines[-1] == "2 recordings (limit reached: narrow the search or raise --limit)"
    code, out, _ = run(capsys, "--config", str(config), "lookup", "--phone", "0000000")
    assert (code, out) == (0, "no recordings found\n")


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "5001"], ["--since", "2025-13-01"],
                                  ["--until", "yesterday"], ["--lead-id", "abc"]])
def test_bad_options_are_usage_errors(config: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(capsys, "--config", str(config), "lookup", *args)
    assert code == 2
    assert f"Invalid value for '{args[0]}'" in err


def test_since_after_until_is_refused(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--config", str(config), "lookup", "--since", "2025-08-30", "--until", "2025-08-29")
    assert code == 2 and err.startswith("callqa: error: until (2025-08-30 00:00:00) must be later than since")


def test_environment_overrides_the_file(config: Path, vicidial: ViciDialFixture, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    config.write_text(config.read_text().replace(vicidial.database, "not_the_database"))
    monkeypatch.setenv("CALLQA_CONFIG", str(config))
    monkeypatch.setenv("CALLQA_VICIDIAL_DATABASE", vicidial.database)
    code, out, _ = run(capsys, "lookup", "--json", "--recording-id", str(fx.GATEWAY_UNLINKED))
    assert code == 0 and json_ids(out) == {fx.GATEWAY_UNLINKED}


def test_not_configured_is_a_configuration_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "lookup")
    assert (code, out) == (2, "")
    assert err == ("callqa: error: ViciDial is not configured: set [vicidial] host in callqa.toml "
                   "(see callqa.toml.example) or CALLQA_VICIDIAL_HOST\n")


def test_unreachable_and_refused_logins_are_one_line_errors(config: Path, capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("CALLQA_VICIDIAL_PORT", str(port))
    code, _, err = run(capsys, "--config", str(config), "lookup")
    assert (code, err) == (1, f"callqa: error: ViciDial 127.0.0.1:{port}: unreachable (connection refused)\n")
    monkeypatch.delenv("CALLQA_VICIDIAL_PORT")
    monkeypatch.setenv("CALLQA_VICIDIAL_USER", "callqa_ro")
    monkeypatch.setenv("CALLQA_VICIDIAL_PASSWORD", "Wrong-Pass-42")
    code, _, err = run(capsys, "--config", str(config), "lookup")
    assert code == 1 and err.endswith(": access denied for user 'callqa_ro'\n")
    assert "Wrong-Pass-42" not in err


def test_installed_console_script(config: Path) -> None:
    script = Path(sys.executable).with_name("callqa")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "core.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    done = subprocess.run([*command, "--config", str(config), "lookup", "--json", "--recording-id",
                           str(fx.CORPUS_CHANNEL)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert row["filename"] == fx.CORPUS_FILENAMES[fx.CORPUS_CHANNEL]


def test_cli_limits_match_the_lookup_limits():
    from core.commands import vicidial as cmd
    from core.vicidial import lookup

    assert (cmd.DEFAULT_LIMIT, cmd.MAX_LIMIT) == (lookup.DEFAULT_LIMIT, lookup.MAX_LIMIT)
