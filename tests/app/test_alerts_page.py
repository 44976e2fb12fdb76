"""Alerts and Report pages, and the Overview's badge, on a store with a carrier gone bad."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from core.alerts import AlertSettings, check_alerts
from core.store import open_store
from tests.app.conftest import new_app
from tests.support.alert_calls import store_call
from ui import state

RULE = {"name": "carrier one-way audio", "metric": "one_way_rate", "op": ">", "threshold": 0.05,
        "group_by": "carrier", "window_hours": 24, "min_calls": 5, "severity": "critical"}


@pytest.fixture
def alert_store(tmp_path, monkeypatch):
    """A store where BADCO's calls are one-way, evaluated once; the app configured with the rule."""
    db = tmp_path / "alerts.db"
    config = tmp_path / "callqa.toml"
    config.write_text('[alerts]\ndashboard_url = "https://callqa.example.com"\n[[alerts.rules]]\n'
                      + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in RULE.items()))
    monkeypatch.setenv("CALLQA_STORE", str(db))
    monkeypatch.setenv("CALLQA_CONFIG", str(config))
    now = datetime.now().replace(microsecond=0)
    with open_store(str(db)) as store:
        ids = [store_call(store, now - timedelta(minutes=10 * i + 5), carrier="BADCO", codes=("one_way_audio",))
               for i in range(6)]
        ids += [store_call(store, now - timedelta(minutes=10 * i + 7), carrier="GOODCO") for i in range(6)]
        result = check_alerts(store, AlertSettings.from_mapping({"rules": [RULE]}))
    (event,) = result.events
    return {"db": db, "event": event, "bad_calls": ids[:6]}


def _open(page: str | None = None, **query: str):
    at = new_app()
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_badge_links_to_alerts(alert_store):
    at = _open()
    links = [p for p in at.get("page_link")]
    labels = [p.proto.label for p in links]
    assert "1 alert firing — open Alerts" in labels


def test_alerts_page_lists_firing_rules_and_history(alert_store):
    at = _open(state.PAGE_ALERTS)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Firing now"] == "1" and metrics["Rules"] == "1" and metrics["Last check"] == "just now"
    assert metrics["Outbox: waiting · failed"] == "0 · 0"  # no channel configured: nothing queued
    firing = at.dataframe(key=state.ALERTS_FIRING_TABLE).value
    assert list(firing["group"]) == ["carrier BADCO"] and list(firing["calls"]) == [6]
    assert list(firing["value"]) == ["one_way_rate = 100.0 %"]
    history = at.dataframe(key=state.ALERTS_HISTORY_TABLE).value
    assert list(history["kind"]) == ["firing"] and list(history["delivered"]) == ["–"]


def test_an_alert_link_lists_the_calls_it_counted(alert_store):
    at = _open(state.PAGE_ALERTS, **{state.PARAM_EVENT: str(alert_store["event"].id)})
    assert any("Fired: carrier one-way audio" in e.value for e in at.error)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Carrier"] == "BADCO" and metrics["Calls counted"] == "6" and metrics["Window"] == "24 h"
    calls = at.dataframe(key=state.ALERTS_CALLS_TABLE).value
    assert sorted(calls["call_id"]) == sorted(alert_store["bad_calls"])


def test_check_now_resolves_when_the_calls_turn_good(alert_store):
    now = datetime.now().replace(microsecond=0)
    with open_store(str(alert_store["db"])) as store:
        for i in range(150):
            store_call(store, now - timedelta(minutes=i % 50, seconds=i), carrier="BADCO")
    at = _open(state.PAGE_ALERTS)
    at.button(key=state.ALERTS_CHECK_BUTTON).click().run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["Firing now"] == "0"
    history = at.dataframe(key=state.ALERTS_HISTORY_TABLE).value
    assert list(history["kind"]) == ["resolved", "firing"]


def test_report_page_shows_the_report(alert_store):
    at = _open(state.PAGE_REPORT)
    assert "Calls analysed" in at.get("html")[0].proto.body  # the last 7 full days: no call yet
    at.date_input(key=state.REPORT_END).set_value(date.today() + timedelta(days=1)).run()  # today included
    (html,) = at.get("html")
    body = html.proto.body
    assert "Calls analysed" in body and "BADCO" in body and body.count("data:image/png;base64,") >= 3
    at.segmented_control(key=state.REPORT_PERIOD).set_value("day").run()
    assert not at.exception
