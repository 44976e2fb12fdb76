"""Alert rules, ``[alerts]`` settings, fire/resolve decisions and message bodies (no I/O)."""

from __future__ import annotations

from datetime import datetime

import pytest

from core.alerts.channels import generic_body, slack_body, teams_body
from core.alerts.delivery import backoff_s
from core.alerts.evaluate import Measurement, decide
from core.alerts.rules import DEFAULT_RULES, AlertRule, format_value, parse_rule, parse_rules
from core.alerts.settings import AlertSettings
from core.alerts.state import AlertEvent
from core.config import Settings
from core.errors import ConfigError
from core.report.narrative import mask_phones

BASE = {"name": "r", "metric": "one_way_rate", "op": ">", "threshold": 0.05}
T0, T1 = datetime(2026, 11, 1, 10, 0), datetime(2026, 11, 2, 10, 0)


def test_a_full_rule_and_its_defaults():
    rule = parse_rule({**BASE, "group_by": "carrier", "window_hours": 12, "min_calls": 5, "severity": "critical"})
    assert rule == AlertRule("r", "one_way_rate", ">", 0.05, group_by="carrier", window_hours=12.0, min_calls=5,
                             severity="critical")
    assert parse_rule(BASE) == AlertRule("r", "one_way_rate", ">", 0.05, group_by="fleet", window_hours=24.0,
                                         min_calls=20, severity="warning")
    assert parse_rule({**BASE, "metric": "finding_rate:echo"}).finding_code == "echo"
    assert rule.describe() == "one_way_rate > 5.0 % by carrier over 12 h (min 5 calls)"


@pytest.mark.parametrize("change, message", [
    ({"metric": "mos"}, "metric 'mos'; choose one of"),
    ({"metric": "finding_rate:hiss"}, "names no finding code"),
    ({"op": "=="}, "op '=='"),
    ({"group_by": "queue"}, "group_by 'queue'"),
    ({"severity": "page"}, "severity 'page'"),
    ({"threshold": 5}, "of a rate must lie in 0..1"),
    ({"metric": "mos_mean", "threshold": 0.5}, "of a MOS must lie in 1..5"),
    ({"metric": "failed_rate", "group_by": "agent"}, "failed_rate is fleet-wide"),
    ({"window_hours": 0}, "window_hours=0 must be > 0"),
    ({"min_calls": 0}, "min_calls=0 must be at least 1"),
    ({"threshold": "high"}, "threshold='high' must be a float"),
    ({"treshold": 0.1}, "unknown key(s) treshold"),
    ({"name": ""}, "name must be 1-120 printable characters"),
])
def test_bad_rules_are_refused_in_one_line(change, message):
    with pytest.raises(ConfigError, match=None) as info:
        parse_rule({**BASE, **change})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_rules_need_unique_names_and_the_required_keys():
    with pytest.raises(ConfigError, match="two rules are named 'r'"):
        parse_rules([BASE, BASE])
    with pytest.raises(ConfigError, match="missing op, threshold"):
        parse_rules([{"name": "x", "metric": "calls"}])
    with pytest.raises(ConfigError, match="array of tables"):
        parse_rules({"name": "x"})


def test_default_rules_are_valid_and_uniquely_named():
    names = [r.name for r in DEFAULT_RULES]
    assert len(names) == len(set(names)) >= 6
    for rule in DEFAULT_RULES:
        assert parse_rule(rule.as_dict()) == rule


def test_settings_read_the_file_and_the_environment(monkeypatch):
    settings = Settings(raw={"alerts": {"webhook_format": "slack", "email_to": ["a@example.com"],
                                        "smtp_host": "smtp.example.com", "email_from": "callqa@example.com",
                                        "rules": [BASE]}})
    monkeypatch.setenv("CALLQA_ALERTS_WEBHOOK_URL", "https://hooks.example.com/services/T/B/token123")
    monkeypatch.setenv("CALLQA_ALERTS_SMTP_PASSWORD", "pw")
    monkeypatch.setenv("CALLQA_ALERTS_REPORT_TO", "boss@example.com, cfo@example.com")
    s = AlertSettings.from_settings(settings)
    assert s.channels == ("webhook", "email") and s.smtp_password == "pw"
    assert s.report_to == ("boss@example.com", "cfo@example.com")
    assert s.active_rules == (parse_rule(BASE),)
    assert "token123" not in repr(s) and "token123" not in s.describe_webhook() and "pw" not in repr(s)
    assert AlertSettings.from_settings(Settings()).active_rules == DEFAULT_RULES
    assert AlertSettings.from_mapping({"default_rules": False}).active_rules == ()


@pytest.mark.parametrize("section, message", [
    ({"smtp_password": "x"}, "set CALLQA_ALERTS_SMTP_PASSWORD in the environment"),
    ({"webhook_url": "ftp://x/y"}, "webhook_url must be an http"),
    ({"webhook_format": "discord"}, "webhook_format='discord'"),
    ({"email_to": ["noc@example.com"]}, "email_to needs smtp_host and email_from"),
    ({"email_to": ["not an address"], "smtp_host": "h", "email_from": "a@b"}, "is not an e-mail address"),
    ({"retry_attempts": 0}, "retry_attempts=0 must be at least 1"),
    ({"webhok_url": "x"}, "unknown [alerts] setting(s): webhok_url"),
])
def test_bad_settings_are_refused(section, message):
    with pytest.raises(ConfigError) as info:
        AlertSettings.from_settings(Settings(raw={"alerts": section}))
    assert message in str(info.value)
    assert "token" not in str(info.value)


def test_rules_and_secrets_from_the_environment(monkeypatch):
    """Every key goes through the common reader: ``rules`` as a JSON array, the webhook URL and the
    password never quoted, a bad rule from the environment one line naming the rule."""
    import json

    monkeypatch.setenv("CALLQA_ALERTS_RULES", json.dumps([{**BASE, "name": "from env", "group_by": "carrier"}]))
    s = AlertSettings.from_settings(Settings(raw={"alerts": {"rules": [BASE]}}))
    assert s.active_rules == (parse_rule({**BASE, "name": "from env", "group_by": "carrier"}),)
    assert AlertSettings.origin(Settings(), "rules") == "CALLQA_ALERTS_RULES"
    monkeypatch.setenv("CALLQA_ALERTS_RULES", json.dumps([{**BASE, "op": "=="}]))
    with pytest.raises(ConfigError, match=r"^\[\[alerts.rules\]\] 'r': op '=='; choose one of") as err:
        AlertSettings.from_settings(Settings())
    assert "\n" not in str(err.value)
    monkeypatch.delenv("CALLQA_ALERTS_RULES")
    monkeypatch.setenv("CALLQA_ALERTS_WEBHOOK_URL", "gopher://hooks.example.com/services/T/B/token123")
    monkeypatch.setenv("CALLQA_ALERTS_SMTP_PASSWORD", "hunter2-secret")
    with pytest.raises(ConfigError) as err:
        AlertSettings.from_settings(Settings())
    assert "token123" not in str(err.value) and "webhook_url" in str(err.value)
    monkeypatch.setenv("CALLQA_ALERTS_WEBHOOK_URL", "https://hooks.example.com/services/T/B/token123")
    monkeypatch.setenv("CALLQA_ALERTS_SMTP_PORT", "smtp")
    with pytest.raises(ConfigError, match=r"^CALLQA_ALERTS_SMTP_PORT='smtp' must be a int$"):
        AlertSettings.from_settings(Settings())
    monkeypatch.delenv("CALLQA_ALERTS_SMTP_PORT")
    s = AlertSettings.from_settings(Settings())
    assert s.smtp_password == "hunter2-secret" and "hunter2" not in repr(s) and "token123" not in repr(s)


def _m(value, calls, *, metric="one_way_rate", op=">", threshold=0.05, min_calls=20):
    rule = AlertRule("r", metric, op, threshold, group_by="carrier", min_calls=min_calls)
    return Measurement(rule, "X", value, calls, T0, T1)


@pytest.mark.parametrize("value, calls, before, after, change", [
    (0.10, 30, None, "firing", "firing"),      # bad and enough calls: fire
    (0.10, 30, "ok", "firing", "firing"),
    (0.10, 30, "firing", "firing", None),      # still bad: no repeat
    (0.05, 30, "firing", "ok", "resolved"),    # not > 0.05 any more: resolve
    (0.02, 30, None, "ok", None),
    (0.90, 19, None, "ok", None),              # too few calls: no alert
    (0.00, 19, "firing", "firing", None),      # ... and no resolution either
    (None, 0, "firing", "ok", "resolved"),     # no calls at all any more: resolve
    (None, 0, None, "ok", None),
])
def test_decisions(value, calls, before, after, change):
    t = decide(_m(value, calls), before)
    assert (t.after, t.change) == (after, change)


def test_call_count_rules_fire_on_silence_whatever_min_calls():
    t = decide(_m(0.0, 0, metric="calls", op="<", threshold=10, min_calls=50), None)
    assert t.change == "firing"
    assert decide(_m(12.0, 12, metric="calls", op="<", threshold=10), "firing").change == "resolved"


def test_mos_rules_compare_the_other_way():
    assert decide(_m(2.1, 40, metric="mos_mean", op="<", threshold=2.5), None).change == "firing"
    assert decide(_m(2.5, 40, metric="mos_mean", op="<", threshold=2.5), "firing").change == "resolved"
    assert decide(_m(2.5, 40, metric="mos_mean", op="<=", threshold=2.5), None).change == "firing"


def test_values_read_as_people_read_them():
    assert format_value(AlertRule("r", "one_way_rate", ">", 0.05), 0.0833) == "8.3 %"
    assert format_value(AlertRule("r", "finding_rate:echo", ">", 0.05), 0.5) == "50.0 %"
    assert format_value(AlertRule("r", "mos_p10", "<", 2.0), 1.876) == "1.88"
    assert format_value(AlertRule("r", "calls", "<", 2.0), 7.0) == "7"
    assert format_value(AlertRule("r", "calls", "<", 2.0), None) == "-"


def test_backoff_doubles_and_is_capped():
    s = AlertSettings.from_mapping({"retry_backoff_s": 30, "retry_backoff_max_s": 200})
    assert [backoff_s(s, n) for n in (1, 2, 3, 4, 5)] == [30, 60, 120, 200, 200]


EVENT = AlertEvent(id=7, rule="carrier one-way audio", group_by="carrier", group_key="FLOWROUTE", kind="firing",
                   severity="critical", metric="one_way_rate", op=">", threshold=0.05, value=0.125, calls=40,
                   window_start=T0, window_end=T1, message="carrier one-way audio: carrier FLOWROUTE ...",
                   created_at=T1)
LINK = "https://callqa.example.com/alerts?event=7"


def test_slack_body_has_text_blocks_and_the_link():
    body = slack_body(EVENT, LINK)
    assert body["text"].startswith("[FIRING critical] carrier one-way audio: carrier FLOWROUTE")
    kinds = [b["type"] for b in body["blocks"]]
    assert kinds == ["header", "section", "section", "actions"]
    facts = " ".join(f["text"] for f in body["blocks"][2]["fields"])
    assert "12.5 %" in facts and "> 5.0 %" in facts and "*Calls counted*\n40" in facts
    assert body["blocks"][3]["elements"][0]["url"] == LINK


def test_teams_body_is_an_adaptive_card_message():
    body = teams_body(EVENT, LINK)
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["actions"][0]["url"] == LINK
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Group"] == "carrier FLOWROUTE" and facts["Value"] == "one_way_rate = 12.5 %"


def test_generic_body_has_every_field():
    body = generic_body(EVENT, LINK)
    assert {k: body[k] for k in ("status", "group", "value", "threshold", "calls", "event_id", "link")} == {
        "status": "firing", "group": "FLOWROUTE", "value": 0.125, "threshold": 0.05, "calls": 40, "event_id": 7,
        "link": LINK}


@pytest.mark.parametrize("text, masked", [
    ("+1 312 555 0101", "[number]"), ("3125550101", "[number]"), ("(312) 555-0101", "[number]"),
    ("20261107-083314_2985954634", "[number]_[number]"), ("agent 6003", "agent 6003"),
    ("10.10.10.12", "10.10.10.12"), ("FLOWROUTE", "FLOWROUTE"),
])
def test_phone_numbers_are_masked_but_agents_and_servers_kept(text, masked):
    assert mask_phones(text) == masked
