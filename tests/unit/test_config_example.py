"""The committed callqa.toml.example is valid for every section reader (it documents real keys)."""

from __future__ import annotations

from pathlib import Path

from core.config import AnalysisConfig, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "callqa.toml.example"


def test_every_section_of_the_example_is_accepted(monkeypatch):
    for var in ("ANTHROPIC_API_KEY", "CALLQA_API_KEY", "CALLQA_VICIDIAL_PASSWORD"):
        monkeypatch.delenv(var, raising=False)
    settings = load_settings(EXAMPLE)
    assert settings.analysis == AnalysisConfig()  # the example only comments thresholds
    from core.api import ApiSettings
    from core.llm.settings import ClaudeSettings
    from core.vicidial.settings import RecordingAccess, ViciDialSettings

    vici = ViciDialSettings.from_settings(settings)
    assert vici.configured and vici.host == "10.0.0.5"
    assert "10.0.0.11" in RecordingAccess.from_settings(settings).allowed_hosts
    api = ApiSettings.from_settings(settings)
    assert api.port == 8084 and api.root_path == "/api"
    claude = ClaudeSettings.from_settings(settings)
    assert claude.summary_model.startswith("claude-haiku") and not claude.configured


def test_the_queue_section_of_the_example():
    from core.queue.settings import QueueSettings

    qs = QueueSettings.from_settings(load_settings(EXAMPLE))
    assert qs.analysis_queue == "callqa-analysis" and not qs.enabled


def test_the_alerts_section_of_the_example_and_its_commented_default_rules(monkeypatch):
    import tomllib

    from core.alerts import DEFAULT_RULES, AlertSettings
    from core.alerts.rules import parse_rules

    monkeypatch.delenv("CALLQA_ALERTS_WEBHOOK_URL", raising=False)
    alerts = AlertSettings.from_settings(load_settings(EXAMPLE))
    assert alerts.active_rules == DEFAULT_RULES and alerts.channels == ()
    # the commented rules, uncommented, are exactly the defaults the code applies
    text = "# [[alerts.rules]]" + EXAMPLE.read_text().split("# [[alerts.rules]]", 1)[1]
    block = "\n".join(line[2:] for line in text.splitlines() if line.startswith("# "))
    rules = tomllib.loads(block).get("alerts", {}).get("rules")
    assert parse_rules(rules) == DEFAULT_RULES


def test_the_access_privacy_and_retention_sections_of_the_example():
    from core.access.settings import AccessSettings
    from core.privacy.settings import PrivacySettings
    from core.retention import RetentionSettings

    settings = load_settings(EXAMPLE)
    access = AccessSettings.from_settings(settings)
    assert access.mode == "auto" and access.users == () and access.trusted_proxies == ("127.0.0.1", "::1")
    assert PrivacySettings.from_settings(settings) == PrivacySettings()  # the example keeps the safe defaults
    assert RetentionSettings.from_settings(settings) == RetentionSettings()
