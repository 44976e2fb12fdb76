"""Overview: how full and fresh the store is, the worst calls and the findings by code."""

from __future__ import annotations

import streamlit as st

from ui import access, alerts, cached, charts, dates, errors, formatting, overview, state, widgets

access.require("view_calls", action="the overview")
target = errors.call_or_stop(cached.store_target)
if target.demo:
    widgets.demo_banner()
st.title("Overview")
alerts.overview_badge(target.url)

status = errors.call_or_stop(cached.store_status, target.url)
if status["calls"] == 0:
    widgets.empty_state("No calls analysed yet — run `callqa scan FOLDER` (or `callqa scan vicidial`) to fill the "
                        f"store `{status['store']}`, then reload this page.")
    st.stop()

counts = errors.call_or_stop(overview.recent_counts, target.url)
widgets.metrics_row([
    widgets.Metric("Calls today", f"{counts['Today']:,}", "Calls whose call time is today"),
    widgets.Metric("Last 7 days", f"{counts['Last 7 days']:,}", "Calls in the last 7 days, today included"),
    widgets.Metric("In the store", f"{status['calls']:,}", f"{status['call_minutes']:,.0f} call-minutes analysed"),
    widgets.Metric("Newest call", formatting.fmt_age(status["last_call_time"]),
                   f"Call time of the newest stored call: {formatting.fmt_time(status['last_call_time'])}"),
])
if status["errors"]:
    st.warning(f"**{status['errors']} recording(s) could not be analysed** — see *Failed analyses* at the bottom.",
               icon=":material/error:")

period = st.segmented_control("Period", list(dates.PERIODS), default=dates.default_period(counts),
                              key=state.OVERVIEW_PERIOD, required=True)
since = dates.period_since(period)
if period != "All time" and counts.get(period, 1) == 0 and since is not None:
    widgets.empty_state(f"No calls in this period — the newest call in the store is from "
                        f"{formatting.fmt_time(status['last_call_time'])}. Choose **All time** to see it.")
    st.stop()

st.subheader("Worst calls")
worst = errors.call_or_stop(cached.list_calls, target.url, since=since, order="most_findings", limit=10)
st.caption("Most severe findings first, then most findings. Click a row to open its deep dive.")
widgets.selectable_table(access.shown_frame(widgets.calls_display(worst).drop(columns=["layout"])),
                         key=state.OVERVIEW_WORST)
widgets.open_selected_call(state.OVERVIEW_WORST, access.call_links(worst["call_id"]))

st.subheader("Findings by code")
found = errors.call_or_stop(cached.finding_counts, target.url, since=since)
if found.empty:
    st.success("No findings in this period.", icon=":material/check_circle:")
else:
    left, right = st.columns([3, 2], gap="large")
    left.altair_chart(charts.findings_by_code_chart(found), width="stretch")
    right.dataframe(overview.finding_counts_display(found), hide_index=True, width="stretch",
                    column_config=overview.FINDING_COUNT_COLUMNS)

if status["errors"]:
    with st.expander(f"Failed analyses ({status['errors']})", icon=":material/error:"):
        failures = errors.call_or_stop(cached.list_errors, target.url)
        st.dataframe(access.shown_frame(failures[["created_at", "call_id", "reason", "source_ref"]]), hide_index=True,
                     column_config={
            "created_at": st.column_config.DatetimeColumn("When (UTC)", format="YYYY-MM-DD HH:mm"),
            "call_id": "Call", "reason": st.column_config.TextColumn("Why", width="large"), "source_ref": "Source"})
