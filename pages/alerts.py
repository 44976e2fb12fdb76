"""Alerts: what fires now, the rules, the history; ``?event=<id>`` opens one alert with its calls."""

from __future__ import annotations

import streamlit as st

from ui import access, alerts, cached, errors, formatting, state, widgets

access.require("view_calls", action="the alerts")
target = errors.call_or_stop(cached.store_target)
if target.demo:
    widgets.demo_banner()
st.title("Alerts")

event_id = st.query_params.get(state.PARAM_EVENT)
if event_id:
    if not str(event_id).isdigit():
        st.error(f"`event={event_id}` is not an alert number.")
        st.stop()
    e = errors.call_or_stop(alerts.event, target.url, int(event_id))
    if e is None:
        widgets.empty_state(f"Alert {event_id} is not in this store.")
        st.stop()
    st.page_link(state.PAGE_ALERTS, label="All alerts", icon=":material/arrow_back:")
    kind = "Fired" if e.kind == "firing" else "Resolved"
    (st.error if e.kind == "firing" else st.success)(f"**{kind}: {e.rule}** — {e.message}",
                                                     icon=":material/notifications_active:")
    hours = (e.window_end - e.window_start).total_seconds() / 3600
    widgets.metrics_row([
        widgets.Metric(e.group_by.capitalize() if e.group_by != "fleet" else "Group",
                       e.group_key if e.group_by != "fleet" else "all calls"),
        widgets.Metric("Value", alerts.format_value(alerts.rule_of(e), e.value), f"{e.metric} {e.op} "
                       f"{alerts.format_value(alerts.rule_of(e), e.threshold)} fires"),
        widgets.Metric("Calls counted", f"{e.calls:,}"),
        widgets.Metric("Window", f"{hours:g} h", f"Call time (local) {e.window_start:%d %b %H:%M} – "
                       f"{e.window_end:%d %b %H:%M}"),
    ])
    calls = errors.call_or_stop(alerts.event_calls, target.url, e)
    if calls is None:
        st.caption("This alert counts analyses, not calls: see *Failed analyses* on the Overview.")
        st.stop()
    st.subheader("The calls it counted")
    st.caption("Worst first. Click a row to open its deep dive.")
    widgets.selectable_table(access.shown_frame(widgets.calls_display(calls)), key=state.ALERTS_CALLS_TABLE)
    widgets.open_selected_call(state.ALERTS_CALLS_TABLE, access.call_links(calls["call_id"]))
    st.stop()

data = errors.call_or_stop(alerts.overview, target.url)
firing, firing_ids = alerts.firing_frame(data)
outbox = data["outbox"]
widgets.metrics_row([
    widgets.Metric("Firing now", f"{len(firing)}", "Rule and group pairs whose condition holds"),
    widgets.Metric("Rules", f"{len(data['rules'])}", "[[alerts.rules]] in callqa.toml, else the default rules"),
    widgets.Metric("Last check", formatting.fmt_age(alerts.parse_utc(data["last_check"])),
                   "callqa alerts check runs after every scan, in callqa watch and from callqa-alerts.timer"),
    widgets.Metric("Outbox: waiting · failed", f"{outbox['pending']} · {outbox['failed']}",
                   f"Messages waiting for their next attempt · given up after [alerts] retry_attempts. "
                   f"Channels: {', '.join(data['channels']) or 'none configured'}"),
])
if access.can("analyze") and st.button("Evaluate the rules now", icon=":material/refresh:",
                                      key=state.ALERTS_CHECK_BUTTON,
                                      help="The same check as `callqa alerts check`: new alerts are stored and sent."):
    access.require("analyze", action="evaluating the alert rules")
    result = errors.call_or_stop(alerts.check_now)
    st.toast(f"{len(result.events)} change(s)" if result.events else "Nothing changed")
    st.rerun()

st.subheader("Firing now")
if firing.empty:
    st.success("No alert is firing.", icon=":material/check_circle:")
else:
    st.caption("Click a row to see the calls behind it.")
    widgets.selectable_table(firing, key=state.ALERTS_FIRING_TABLE, column_config={
        "since": st.column_config.DatetimeColumn("Since (UTC)", format="YYYY-MM-DD HH:mm")})
    alerts.open_selected_event(state.ALERTS_FIRING_TABLE, firing_ids)

st.subheader("Rules")
st.dataframe(alerts.rules_frame(data), hide_index=True, width="stretch")

st.subheader("History")
history = errors.call_or_stop(alerts.events, target.url)
if not history:
    st.caption("No alert has fired yet.")
else:
    sent = errors.call_or_stop(alerts.deliveries, target.url, tuple(e.id for e in history))
    widgets.selectable_table(alerts.history_frame(history, sent), key=state.ALERTS_HISTORY_TABLE, column_config={
        "when": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm")})
    alerts.open_selected_event(state.ALERTS_HISTORY_TABLE, [e.id for e in history])
