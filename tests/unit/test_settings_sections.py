"""Every settings section is read by the one reader, the same way from the CLI, the API and the dashboard.

The CLI and ``callqa serve`` (the API) build their settings with ``settings_from`` (``--config``);
the dashboard with ``ui.cached.get_settings`` (the file, then ``.streamlit/secrets.toml`` laid
over it). For every section: the file's value is used, its ``CALLQA_<SECTION>_<KEY>`` variable
(and the older alias, where there is one) wins over the file and the secrets, a bad environment
value is a one-line error naming the variable, and an unknown key is refused with a suggestion.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click
import pytest

from core.access.settings import AccessSettings
from core.alerts.settings import AlertSettings
from core.api import ApiSettings
from core.commands.common import settings_from
from core.config import (
    AnalysisConfig,
    PathSettings,
    ScanSettings,
    Settings,
    SettingsSection,
    StoreSettings,
    load_settings,
)
from core.dashboard import DashboardSettings
from core.errors import ConfigError
from core.llm.settings import ClaudeSettings
from core.privacy.settings import PrivacySettings
from core.quality.manager import QualitySettings
from core.queue.settings import QueueSettings
from core.retention import RetentionSettings
from core.vicidial.settings import RecordingAccess, ViciDialSettings

#: (section class, key, value in the file, value in the environment, what the environment gives)
CASES: list[tuple[type[SettingsSection], str, Any, str, Any]] = [
    (AnalysisConfig, "dead_air_min_s", 7.0, "9.5", 9.5),
    (PathSettings, "tmp_dir", "/srv/a/tmp", "/srv/b/tmp", "/srv/b/tmp"),
    (StoreSettings, "url", "/srv/a/callqa.db", "/srv/b/callqa.db", "/srv/b/callqa.db"),
    (ScanSettings, "remote_ttl_s", 100.0, "5", 5.0),
    (ViciDialSettings, "port", 3307, "3308", 3308),
    (RecordingAccess, "download_timeout_s", 60.0, "30", 30.0),
    (ApiSettings, "max_queue", 10, "20", 20),
    (ClaudeSettings, "daily_budget_usd", 2.0, "1.5", 1.5),
    (QueueSettings, "retry_max", 3, "4", 4),
    (QualitySettings, "threads", 3, "4", 4),
    (AlertSettings, "retry_attempts", 3, "4", 4),
    (DashboardSettings, "folders", ["/srv/a"], os.pathsep.join(["/srv/b", "/srv/c"]), ("/srv/b", "/srv/c")),
    (AccessSettings, "idle_minutes", 30.0, "45", 45.0),
    (PrivacySettings, "visible_digits", 3, "1", 1),
    (RetentionSettings, "chat_days", 30, "60", 60),
]
IDS = [case[0].SECTION for case in CASES]
NUMERIC = [case for case in CASES if not isinstance(case[4], (str, tuple))]  # text accepts anything
#: Other keys a section needs to be valid with the tested one.
EXTRA = {"vicidial": {"host": "10.0.0.5", "user": "callqa_ro"}}


@pytest.fixture(autouse=True)
def no_callqa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CALLQA_") or name == "ANTHROPIC_API_KEY":
            monkeypatch.delenv(name)


def toml(section: str, values: dict[str, Any]) -> str:
    """A one-section TOML file (numbers, strings and lists of strings as JSON spells them)."""
    return f"[{section}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def cli_settings(tmp_path: Path, section: str, values: dict[str, Any]) -> Settings:
    """What ``callqa <command>`` and ``callqa serve`` read: ``--config FILE``."""
    path = tmp_path / "callqa.toml"
    path.write_text(toml(section, values))
    ctx = click.Context(click.Command("x"), obj={"config_path": str(path)})
    return settings_from(ctx)


def dashboard_settings(tmp_path: Path, section: str, values: dict[str, Any],
                       monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What the dashboard reads: the configuration file, with the secrets' sections laid over it."""
    from ui import cached

    path = tmp_path / "callqa.toml"
    path.write_text("")
    monkeypatch.setenv("CALLQA_CONFIG", str(path))
    if section in cached.SECRET_SECTIONS:
        monkeypatch.setattr(cached, "secret_sections", lambda: {section: values})
    else:  # sections the secrets file does not carry come from the file
        path.write_text(toml(section, values))
    cached.get_settings.clear()
    try:
        return cached.get_settings()
    finally:
        cached.get_settings.clear()


@pytest.fixture(params=["cli", "dashboard"])
def read(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``read(section, values)``: the settings an entry point builds from a section with ``values``."""
    if request.param == "cli":
        return lambda section, values: cli_settings(tmp_path, section, values)
    return lambda section, values: dashboard_settings(tmp_path, section, values, monkeypatch)


@pytest.mark.parametrize(("cls", "key", "file_value", "env_value", "expected"), CASES, ids=IDS)
def test_the_environment_wins_over_the_file(cls, key, file_value, env_value, expected, read, monkeypatch):
    values = {**EXTRA.get(cls.SECTION, {}), key: file_value}
    from_file = getattr(cls.from_settings(read(cls.SECTION, values)), key)
    assert from_file == (tuple(file_value) if isinstance(file_value, list) else file_value)
    for var in cls.env_names(key):  # CALLQA_<SECTION>_<KEY>, then the older name where there is one
        monkeypatch.setenv(var, env_value)
        assert getattr(cls.from_settings(read(cls.SECTION, values)), key) == expected, var
        assert cls.origin(read(cls.SECTION, values), key) == var
        monkeypatch.delenv(var)


@pytest.mark.parametrize(("cls", "key"), [(c[0], c[1]) for c in NUMERIC], ids=[c[0].SECTION for c in NUMERIC])
def test_a_bad_environment_value_names_the_variable(cls, key, monkeypatch):
    var = cls.env_names(key)[0]
    monkeypatch.setenv(var, "not-a-number")
    with pytest.raises(ConfigError) as err:
        cls.from_settings(Settings(raw={cls.SECTION: EXTRA.get(cls.SECTION, {})}))
    assert str(err.value).startswith(f"{var}='not-a-number' must be a ") and "\n" not in str(err.value)


@pytest.mark.parametrize(("cls", "key"), [(case[0], case[1]) for case in CASES], ids=IDS)
def test_an_unknown_key_is_refused_with_a_suggestion(cls, key):
    typo = key[:-1] + ("x" if key[-1] != "x" else "y")
    with pytest.raises(ConfigError, match=rf"unknown \[{cls.SECTION}\] setting\(s\): {typo} \(did you mean {key}\?\)"):
        cls.from_settings(Settings(raw={cls.SECTION: {typo: 1}}))


def test_secrets_are_never_quoted_from_the_environment(monkeypatch):
    monkeypatch.setenv("CALLQA_VICIDIAL_PASSWORD", "db-very-secret")
    monkeypatch.setenv("CALLQA_API_KEY", "short-secret")
    with pytest.raises(ConfigError) as err:
        ApiSettings.from_settings(Settings())
    assert "short-secret" not in str(err.value)
    assert "db-very-secret" not in repr(ViciDialSettings.from_settings(Settings()))


def test_lists_and_tables_from_the_environment(monkeypatch):
    monkeypatch.setenv("CALLQA_RECORDINGS_ALLOWED_HOSTS", "10.0.0.11, 10.0.0.12")
    monkeypatch.setenv("CALLQA_RECORDINGS_HOST_MAP", '{"10.0.0.11": "dialer1:8080"}')
    access = RecordingAccess.from_settings(Settings())
    assert access.allowed_hosts == ("10.0.0.11", "10.0.0.12")
    assert access.mapped_host("10.0.0.11") == "dialer1:8080"
    monkeypatch.setenv("CALLQA_RECORDINGS_HOST_MAP", "{not json")
    with pytest.raises(ConfigError, match="CALLQA_RECORDINGS_HOST_MAP is not valid JSON"):
        RecordingAccess.from_settings(Settings())


def test_paths_and_store_follow_the_environment(tmp_path, monkeypatch):
    settings = load_settings(None)
    monkeypatch.setenv("CALLQA_DATA", str(tmp_path / "data"))
    assert settings.data_dir == tmp_path / "data" and settings.tmp_dir == tmp_path / "data" / "tmp"
    assert settings.store_url() == str(tmp_path / "data" / "callqa.db")
    monkeypatch.setenv("CALLQA_PATHS_TMP_DIR", str(tmp_path / "t"))
    monkeypatch.setenv("CALLQA_STORE", str(tmp_path / "s.db"))
    assert settings.tmp_dir == tmp_path / "t" and settings.store_url() == str(tmp_path / "s.db")
    assert settings.store_url("override.db") == "override.db"


def test_other_variables_with_a_section_prefix_are_not_settings(monkeypatch):
    """systemd's scan unit sets CALLQA_SCAN_SOURCE/_SINCE for its command line: not [scan] keys."""
    monkeypatch.setenv("CALLQA_SCAN_SOURCE", "/var/spool/asterisk/monitorDONE")
    monkeypatch.setenv("CALLQA_SCAN_SINCE", "2d")
    assert ScanSettings.from_settings(Settings()) == ScanSettings()
