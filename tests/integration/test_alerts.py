"""Alerts end to end: a real SMTP server (aiosmtpd, STARTTLS + AUTH) and a local webhook receiver on
127.0.0.1, real SQLite (and PostgreSQL) stores filled with calls, the real CLI.

The story of the issue: one carrier's calls turn bad -> exactly one alert for that carrier on
every channel; a second check sends nothing; a later good period sends "resolved"; a dead
webhook is retried with backoff and never stops the check.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.alerts import AlertSettings, check_alerts
from core.alerts.state import delivery_counts, list_events, stored_states
from core.cli import main
from core.store import open_store
from tests.support.alert_calls import store_call
from tests.support.postgres import pg_url  # noqa: F401  (fixture)
from tests.support.smtp_server import PASSWORD, USER, smtp_server
from tests.support.webhook_server import webhook_receiver

RULE = {"name": "carrier one-way audio", "metric": "one_way_rate", "op": ">", "threshold": 0.05,
        "group_by": "carrier", "window_hours": 24, "min_calls": 20, "severity": "critical"}


@pytest.fixture
def clean_env(monkeypatch):
    import os

    for var in list(os.environ):
        if var.startswith(("CALLQA_", "ANTHROPIC_")):
            monkeypatch.delenv(var)
    return monkeypatch


def _toml_value(value) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def write_config(path: Path, alerts: dict, rules: list[dict]) -> Path:
    lines = ["[alerts]", *(f"{k} = {_toml_value(v)}" for k, v in alerts.items())]
    for rule in rules:
        lines += ["[[alerts.rules]]", *(f"{k} = {_toml_value(v)}" for k, v in rule.items())]
    path.write_text("\n".join(lines) + "\n")
    return path


def fill(store, now: datetime, *, carrier: str, n: int, one_way: int, start_h: float = 1.0) -> None:
    """``n`` calls of ``carrier`` spread over the hours before ``now``, the first ``one_way`` one-way."""
    for i in range(n):
        when = now - timedelta(hours=start_h, minutes=7 * i + 1)
        store_call(store, when.replace(microsecond=0), carrier=carrier, agent=f"60{i % 8:02d}", campaign="SALESOUT",
                   codes=("one_way_audio",) if i < one_way else (), mos=3.4)


def run_cli(*args: str, capsys) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_carrier_turning_bad_fires_once_and_resolves_once(tmp_path, clean_env, capsys):
    db = tmp_path / "callqa.db"
    now = datetime.now().replace(microsecond=0)
    with open_store(str(db)) as store:
        fill(store, now, carrier="GOODCO", n=30, one_way=0)
        fill(store, now, carrier="BADCO", n=30, one_way=6)  # 20 % one-way audio
    with smtp_server(tmp_path) as smtp, webhook_receiver() as hook:
        config = write_config(tmp_path / "callqa.toml", {
            "dashboard_url": "https://callqa.example.com/", "webhook_url": hook.url, "webhook_format": "generic",
            "smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_user": USER, "smtp_ca_file": str(smtp.ca_file),
            "email_from": "callqa@example.com", "email_to": ["noc@example.com"]}, [RULE])
        clean_env.setenv("CALLQA_ALERTS_SMTP_PASSWORD", PASSWORD)
        code, out, err = run_cli("--config", str(config), "--store", str(db), "alerts", "check", capsys=capsys)
        assert code == 0, err
        assert "FIRING  carrier one-way audio: carrier BADCO one_way_rate = 20.0 % (> 5.0 %) over 30 calls" in out

        (body,) = hook.bodies()
        assert body["status"] == "firing" and body["rule"] == RULE["name"] and body["severity"] == "critical"
        assert body["group_by"] == "carrier" and body["group"] == "BADCO"
        assert body["value"] == pytest.approx(6 / 30) and body["threshold"] == 0.05 and body["calls"] == 30
        assert body["link"] == f"https://callqa.example.com/alerts?event={body['event_id']}"
        (mail,) = smtp.received()
        assert mail.login == USER and mail.rcpt_tos == ["noc@example.com"]  # logged in, after STARTTLS
        assert "BADCO" in mail.message["Subject"] and "FIRING critical" in mail.message["Subject"]
        text = mail.message.get_body(("plain",)).get_content()
        assert "20.0 %" in text and "Calls counted: 30" in text and body["link"] in text
        html = mail.message.get_body(("html",)).get_content()
        assert body["link"] in html

        # the condition holds: nothing is sent again
        code, out, _ = run_cli("--config", str(config), "--store", str(db), "alerts", "check", capsys=capsys)
        assert code == 0 and "FIRING" not in out
        assert len(hook.bodies()) == 1 and len(smtp.received()) == 1

        # a later good period: BADCO's recent calls are clean, 6 of 130 (4.6 %) -> resolved
        with open_store(str(db)) as store:
            fill(store, now, carrier="BADCO", n=100, one_way=0, start_h=0.0)
        code, out, _ = run_cli("--config", str(config), "--store", str(db), "alerts", "check", capsys=capsys)
        assert "RESOLVED carrier one-way audio resolved: carrier BADCO one_way_rate = 4.6 %" in out
        bodies = hook.bodies()
        assert [b["status"] for b in bodies] == ["firing", "resolved"]
        assert bodies[1]["group"] == "BADCO" and bodies[1]["calls"] == 130
        assert len(smtp.received()) == 2 and "RESOLVED" in smtp.received()[1].message["Subject"]

        code, out, _ = run_cli("--config", str(config), "--store", str(db), "alerts", "check", capsys=capsys)
        assert len(hook.bodies()) == 2 and len(smtp.received()) == 2

    with open_store(str(db)) as store:
        events = list_events(store)
        assert [(e.kind, e.group_key) for e in events] == [("resolved", "BADCO"), ("firing", "BADCO")]
        assert delivery_counts(store) == {"pending": 0, "sent": 4, "failed": 0}
        states = stored_states(store)
        assert states[(RULE["name"], "BADCO")]["state"] == "ok"
        assert states[(RULE["name"], "GOODCO")]["value"] == 0.0


def test_dry_run_and_json_store_and_send_nothing(tmp_path, clean_env, capsys):
    db = tmp_path / "callqa.db"
    now = datetime.now().replace(microsecond=0)
    with open_store(str(db)) as store:
        fill(store, now, carrier="BADCO", n=25, one_way=5)
    with webhook_receiver() as hook:
        config = write_config(tmp_path / "callqa.toml", {"webhook_url": hook.url}, [RULE])
        code, out, _ = run_cli("--config", str(config), "--store", str(db), "alerts", "check", "--dry-run", "--json",
                               capsys=capsys)
        assert code == 0
        doc = json.loads(out)
        assert doc["dry_run"] and doc["events"] == [] and doc["deliveries"] is None
        (rule,) = doc["rules"]
        (group,) = rule["groups"]
        assert group == {"group": "BADCO", "value": pytest.approx(0.2), "calls": 25, "state": "firing",
                         "previous": None, "change": "firing", "decided": True, "note": ""}
        assert hook.hits() == 0
    with open_store(str(db)) as store:
        assert stored_states(store) == {} and list_events(store) == []


def test_too_few_calls_neither_fire_nor_resolve(tmp_path):
    now = datetime(2026, 11, 20, 12, 0)
    settings = AlertSettings.from_mapping({"rules": [RULE]})
    with open_store(str(tmp_path / "s.db")) as store:
        fill(store, now, carrier="SMALL", n=19, one_way=19)  # 100 % one-way, but 19 < min_calls
        result = check_alerts(store, settings, when=now)
        (t,) = result.transitions
        assert t.after == "ok" and t.change is None and t.reason == "19 of 20 calls needed"
        fill(store, now, carrier="SMALL", n=1, one_way=1, start_h=0.01)
        assert [t.change for t in check_alerts(store, settings, when=now).transitions] == ["firing"]
        # a day later only 5 clean calls: too few to resolve, the alert holds
        later = now + timedelta(hours=30)
        fill(store, later, carrier="SMALL", n=5, one_way=0)
        (t,) = check_alerts(store, settings, when=later).transitions
        assert t.after == "firing" and t.change is None
        # two days later no calls at all: resolved, saying why
        result = check_alerts(store, settings, when=now + timedelta(hours=60))
        (event,) = result.events
        assert event.kind == "resolved" and event.message.endswith("(no calls in the window)")


def test_a_dead_webhook_is_retried_with_backoff_then_given_up(tmp_path):
    now = datetime.now().replace(microsecond=0)
    with webhook_receiver(statuses=(503, 502)) as hook, open_store(str(tmp_path / "s.db")) as store:
        fill(store, now, carrier="BADCO", n=20, one_way=20)
        settings = AlertSettings.from_mapping({"rules": [RULE], "webhook_url": hook.url, "retry_backoff_s": 0.0,
                                               "retry_attempts": 5})
        first = check_alerts(store, settings)
        assert first.delivery.retrying == 1 and "HTTP 503" in first.delivery.errors[0]
        assert "secret-token" not in first.delivery.errors[0]  # the URL's token is never shown
        second = check_alerts(store, settings)
        assert second.events == [] and second.delivery.retrying == 1 and "HTTP 502" in second.delivery.errors[0]
        third = check_alerts(store, settings)
        assert third.delivery.sent == 1
        assert [r["status"] for r in hook.requests] == [503, 502, 200]  # one alert, tried three times
        assert {json.dumps(r["body"], sort_keys=True) for r in hook.requests} == {json.dumps(hook.bodies()[0],
                                                                                            sort_keys=True)}
        assert delivery_counts(store) == {"pending": 0, "sent": 1, "failed": 0}

        # nothing listens any more: attempts until retry_attempts, then failed for good
        dead = AlertSettings.from_mapping({"rules": [RULE], "webhook_url": "http://127.0.0.1:9/hook",
                                           "retry_backoff_s": 0.0, "retry_attempts": 2, "default_rules": False})
        with open_store(str(tmp_path / "s2.db")) as other:
            fill(other, now, carrier="BADCO", n=20, one_way=20)
            a = check_alerts(other, dead)
            assert a.delivery.retrying == 1 and "ConnectError" in a.delivery.errors[0]
            b = check_alerts(other, dead)
            assert b.delivery.failed == 1 and "given up after 2 attempts" in b.delivery.errors[0]
            assert check_alerts(other, dead).delivery.as_dict()["errors"] == []  # not tried again
            assert delivery_counts(other) == {"pending": 0, "sent": 0, "failed": 1}


def test_backoff_keeps_a_failed_message_until_it_is_due(tmp_path):
    now = datetime.now().replace(microsecond=0)
    with webhook_receiver(statuses=(500,)) as hook, open_store(str(tmp_path / "s.db")) as store:
        fill(store, now, carrier="BADCO", n=20, one_way=20)
        settings = AlertSettings.from_mapping({"rules": [RULE], "webhook_url": hook.url, "retry_backoff_s": 3600})
        assert check_alerts(store, settings).delivery.retrying == 1
        assert check_alerts(store, settings).delivery.as_dict() == {"sent": 0, "retrying": 0, "failed": 0, "left": 0,
                                                                    "errors": []}  # not due for an hour
        assert hook.hits() == 1


def test_a_webhook_that_never_answers_costs_one_timeout(tmp_path):
    now = datetime.now().replace(microsecond=0)
    with webhook_receiver(hang_s=3.0) as hook, open_store(str(tmp_path / "s.db")) as store:
        fill(store, now, carrier="BADCO", n=20, one_way=20)
        settings = AlertSettings.from_mapping({"rules": [RULE], "webhook_url": hook.url, "timeout_s": 0.5,
                                               "retry_backoff_s": 0.0})
        result = check_alerts(store, settings)
        assert result.delivery.retrying == 1 and "no answer within 0.5 s" in result.delivery.errors[0]
        assert len(result.events) == 1  # the alert itself is stored whatever the channel does


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_checks_fire_once(tmp_path, backend, request):
    url = str(tmp_path / "s.db") if backend == "sqlite" else request.getfixturevalue("pg_url")
    now = datetime.now().replace(microsecond=0)
    with open_store(url) as store:
        fill(store, now, carrier="BADCO", n=20, one_way=20)
        settings = AlertSettings.from_mapping({"rules": [RULE]})
        barrier, results = threading.Barrier(4), []

        def run() -> None:
            with open_store(url) as own:
                barrier.wait()
                results.append(check_alerts(own, settings, when=now))

        threads = [threading.Thread(target=run) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(results) == 4
        assert sum(len(r.events) for r in results) == 1
        events = list_events(store)
        assert [(e.kind, e.group_key, e.calls) for e in events] == [("firing", "BADCO", 20)]


# --- after a scan ----------------------------------------------------------------------------------
def _write_call(folder: Path, when: datetime, phone: str, rng) -> None:
    """A two-leg call of noise bursts (speech-like on/off), as ViciDial names its files."""
    import numpy as np
    import soundfile as sf

    rate, seconds = 8000, 6
    t = np.arange(rate * seconds) / rate
    for leg, phase in (("in", 0.0), ("out", 0.5)):
        gate = (np.sin(2 * np.pi * 0.5 * t + phase * np.pi) > 0).astype("float64")
        audio = 0.1 * rng.standard_normal(t.size) * gate
        sf.write(folder / f"{when:%Y%m%d-%H%M%S}_{phone}-{leg}.wav", audio, rate, subtype="PCM_16")


def test_a_dead_webhook_never_stops_the_scan_and_is_retried(tmp_path, rng):
    import os
    import subprocess
    import sys

    from tests.support.shared import PROJECT_ROOT

    folder = tmp_path / "recordings"
    folder.mkdir()
    now = datetime.now().replace(microsecond=0)
    for i in range(3):
        _write_call(folder, now - timedelta(minutes=10 * (i + 1)), f"41555500{i:02d}", rng)
    db = tmp_path / "callqa.db"
    with webhook_receiver(statuses=(503, 503, 503)) as hook:
        config = write_config(tmp_path / "callqa.toml", {"webhook_url": hook.url, "retry_backoff_s": 0.0,
                                                         "timeout_s": 5.0},
                              [{"name": "traffic", "metric": "calls", "op": ">=", "threshold": 1,
                                "severity": "info"}])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLQA_", "ANTHROPIC_"))}
        env.update(CALLQA_CONFIG=str(config), CALLQA_DATA=str(tmp_path / "data"), CALLQA_TMP=str(tmp_path / "tmp"))

        def callqa(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "core.cli", "--store", str(db), *args], cwd=PROJECT_ROOT,
                                  env=env, text=True, capture_output=True, timeout=300)

        scan = callqa("scan", str(folder), "--no-quality")
        assert scan.returncode == 0, scan.stderr  # the webhook answered 503: the scan still succeeds
        assert "3 analysed" in scan.stdout
        assert "alerts: FIRING  traffic: all calls calls = 3 (>= 1) over 3 calls" in scan.stderr
        assert "alerts: delivery: webhook" in scan.stderr and "HTTP 503" in scan.stderr
        assert hook.hits() == 1

        again = callqa("alerts", "check")  # the next check retries (backoff 0 here), the webhook fails again
        assert again.returncode == 0 and "FIRING" not in again.stdout and "attempt 2 of 6" in again.stderr
        callqa("alerts", "check")
        final = callqa("alerts", "check")  # the fourth attempt is answered 200
        assert final.returncode == 0 and "delivered 1 message(s)" in final.stdout
        assert [r["status"] for r in hook.requests] == [503, 503, 503, 200]
        assert hook.bodies()[0]["rule"] == "traffic" and hook.bodies()[0]["value"] == 3

        status = callqa("alerts", "status", "--json")
        doc = json.loads(status.stdout)
        assert doc["deliveries"] == {"pending": 0, "sent": 1, "failed": 0}
        assert doc["rules"][0]["states"][0]["state"] == "firing"


def test_the_watch_hook_checks_after_new_recordings_and_now_and_then(tmp_path, capsys):
    from core.commands.queue import _alert_hook
    from core.config import Settings
    from core.queue.watch import Poll

    now = datetime.now().replace(microsecond=0)
    settings = Settings(raw={"alerts": {"rules": [RULE], "default_rules": False}})
    with open_store(str(tmp_path / "s.db")) as store:
        hook = _alert_hook(settings, store, every_s=3600)
        hook(Poll(0, 0, 0, False, "no new recordings"))  # the first poll always checks
        assert list_events(store) == []
        fill(store, now, carrier="BADCO", n=20, one_way=20)
        hook(Poll(0, 0, 0, False, "no new recordings"))  # nothing new and checked a moment ago: no check
        assert list_events(store) == []
        hook(Poll(0, 20, 20, False, "20 analysed"))  # new recordings: check
        assert [e.group_key for e in list_events(store)] == ["BADCO"]
        assert "alerts: FIRING  carrier one-way audio: carrier BADCO" in capsys.readouterr().err


def test_prometheus_exposes_rule_values_and_states(tmp_path):
    from prometheus_client import CollectorRegistry, generate_latest

    from core.alerts.metrics import AlertCollector

    now = datetime.now().replace(microsecond=0)
    settings = AlertSettings.from_mapping({"rules": [RULE], "webhook_url": "http://127.0.0.1:9/x",
                                           "retry_attempts": 1})
    with open_store(str(tmp_path / "s.db")) as store:
        registry = CollectorRegistry()
        registry.register(AlertCollector(settings, store))
        before = generate_latest(registry).decode()
        assert "callqa_alert_last_check_timestamp_seconds 0.0" in before
        fill(store, now, carrier="BADCO", n=20, one_way=5)
        fill(store, now, carrier="GOODCO", n=20, one_way=0)
        check_alerts(store, settings)
        text = generate_latest(registry).decode()
    labels = 'group="BADCO",group_by="carrier",rule="carrier one-way audio"'
    assert f'callqa_alert_firing{{{labels},severity="critical"}} 1.0' in text
    assert ('callqa_alert_value{group="BADCO",group_by="carrier",metric="one_way_rate",'
            'rule="carrier one-way audio"} 0.25') in text
    assert 'callqa_alert_firing{group="GOODCO",group_by="carrier",rule="carrier one-way audio",severity="critical"} 0.0' in text
    assert f"callqa_alert_calls{{{labels}}} 20.0" in text
    assert 'callqa_alert_threshold{metric="one_way_rate",op=">",rule="carrier one-way audio",severity="critical"} 0.05' in text
    assert 'callqa_alert_deliveries{status="failed"} 1.0' in text and "callqa_alert_store_up 1.0" in text
    stamp = float(re.search(r"^callqa_alert_last_check_timestamp_seconds (\S+)$", text, re.M).group(1))
    assert abs(stamp - datetime.now().timestamp()) < 600
