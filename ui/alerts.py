"""Helpers of the Alerts and Report pages (:mod:`pages.alerts`, :mod:`pages.report`) and the
Overview's alert badge: cached reads of the alert tables, display frames, the report as HTML.

The rules are evaluated by ``callqa alerts check`` (after scans, in ``callqa watch``, by the
timer); here only the page's button does (:func:`check_now`, the same service)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import streamlit as st

from core.alerts import AlertSettings, check_alerts
from core.alerts.metrics import LAST_CHECK_WATERMARK
from core.alerts.rules import format_value, group_label  # noqa: F401  (pages use them through this module)
from core.alerts.state import (
    AlertEvent,
    delivery_counts,
    event_call_filters,
    event_deliveries,
    get_event,
    list_events,
    rule_of,
    stored_states,
)
from ui import cached, state

QUERY_TTL_S = 30


def alert_settings() -> AlertSettings:
    return AlertSettings.from_settings(cached.get_settings())


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False)
def overview(url: str) -> dict[str, Any]:
    """Rules, stored states, the outbox and when the rules were last checked."""
    store = cached.get_store()
    settings = alert_settings()
    rules = settings.active_rules
    states = stored_states(store, [r.name for r in rules])
    return {"rules": rules, "states": states, "outbox": delivery_counts(store),
            "last_check": store.get_watermark(LAST_CHECK_WATERMARK), "channels": settings.channels}


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=16)
def events(url: str, limit: int = 200) -> list[AlertEvent]:
    return list_events(cached.get_store(), limit=limit)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=64)
def event(url: str, event_id: int) -> AlertEvent | None:
    return get_event(cached.get_store(), event_id)


@st.cache_data(ttl=QUERY_TTL_S, show_spinner=False, max_entries=16)
def deliveries(url: str, event_ids: tuple[int, ...]) -> dict[int, list[dict[str, Any]]]:
    return event_deliveries(cached.get_store(), list(event_ids))


def check_now() -> Any:
    """Evaluate the rules now (and deliver what is due); the page's button."""
    result = check_alerts(cached.get_store(), alert_settings())
    for fn in (overview, events, event, deliveries):
        fn.clear()
    return result


def firing_count(url: str) -> int:
    data = overview(url)
    return sum(1 for s in data["states"].values() if s["state"] == "firing")


def firing_frame(data: dict[str, Any]) -> tuple[pd.DataFrame, list[int | None]]:
    """Alerts firing now (rule, group, value, threshold, calls, since) and their event ids."""
    rules = {r.name: r for r in data["rules"]}
    rows, ids = [], []
    for (name, group), s in sorted(data["states"].items()):
        if s["state"] != "firing" or name not in rules:
            continue
        rule = rules[name]
        rows.append({"severity": rule.severity, "rule": name, "group": group_label(rule.group_by, group),
                     "value": f"{rule.metric} = {format_value(rule, s['value'])}",
                     "threshold": f"{rule.op} {format_value(rule, rule.threshold)}", "calls": int(s["calls"]),
                     "since": s["since"]})
        ids.append(s["event_id"])
    return pd.DataFrame(rows, columns=["severity", "rule", "group", "value", "threshold", "calls", "since"]), ids


def rules_frame(data: dict[str, Any]) -> pd.DataFrame:
    """Every rule: its condition, severity, the groups measured and how many fire."""
    rows = []
    for rule in data["rules"]:
        mine = [s for (name, _), s in data["states"].items() if name == rule.name]
        rows.append({"rule": rule.name, "condition": rule.describe(), "severity": rule.severity,
                     "groups": len(mine), "firing": sum(1 for s in mine if s["state"] == "firing")})
    return pd.DataFrame(rows, columns=["rule", "condition", "severity", "groups", "firing"])


def history_frame(items: list[AlertEvent], sent: dict[int, list[dict[str, Any]]]) -> pd.DataFrame:
    """The alert history, newest first, with each event's deliveries."""
    rows = []
    for e in items:
        out = sent.get(e.id, [])
        rows.append({"when": e.created_at, "kind": e.kind, "severity": e.severity, "rule": e.rule,
                     "group": group_label(e.group_by, e.group_key),
                     "value": f"{e.metric} = {format_value(rule_of(e), e.value)}", "calls": e.calls,
                     "delivered": ", ".join(f"{d['channel']}: {d['status']}" for d in out) or "–"})
    return pd.DataFrame(rows, columns=["when", "kind", "severity", "rule", "group", "value", "calls", "delivered"])


def event_calls(url: str, e: AlertEvent) -> pd.DataFrame | None:
    """The calls the alert counted (its group in its window), worst first; None when not listable."""
    filters = event_call_filters(e)
    if filters is None:
        return None
    return cached.list_calls(url, order="most_findings", limit=500, **filters)


def parse_utc(value: str | None) -> datetime | None:
    """A stored ISO time (UTC) as local naive time, for ``fmt_age``; None stays None."""
    if not value:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone().replace(tzinfo=None)


def open_selected_event(key: str, event_ids: list[int | None]) -> None:
    """Open the alert of the selected row of table ``key`` (``?event=<id>``)."""
    index = state.selected_row(key)
    if index is not None and 0 <= index < len(event_ids) and event_ids[index] is not None:
        st.query_params[state.PARAM_EVENT] = str(event_ids[index])
        st.rerun()


def overview_badge(url: str) -> None:
    """The Overview's alert badge: how many alerts fire now, linking to the Alerts page."""
    try:
        n = firing_count(url)
    except Exception:  # noqa: BLE001 - a badge never breaks the Overview (the Alerts page shows the error)
        return
    if n:
        st.page_link(state.PAGE_ALERTS, label=f"{n} alert{'s' if n != 1 else ''} firing — open Alerts",
                     icon=":material/notifications_active:")
    else:
        st.page_link(state.PAGE_ALERTS, label="No alert firing", icon=":material/notifications:")


@st.cache_data(ttl=300, show_spinner="Building the report…", max_entries=8)
def report_html(url: str, period: str, end: date, narrative: bool) -> tuple[str, str | None]:
    """The managers' report as one HTML document (charts as data: images) and a narrative error."""
    from core.report import build_report, render_report

    report = build_report(cached.get_store(), period=period, end=end, settings=cached.get_settings(),
                          narrative=narrative)
    return render_report(report, settings=alert_settings(), inline="data").html, report.narrative_error
