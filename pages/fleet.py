"""Fleet trends: MOS distribution and trend, finding rates, the worst agents/servers/carriers with a
drill-down to their calls; every table can be downloaded as CSV."""

from __future__ import annotations

import streamlit as st

from ui import access, cached, charts, dates, errors, fleet, formatting, sides, state, widgets

st.title("Fleet trends")
access.require("view_calls", action="fleet trends")
target = errors.call_or_stop(cached.store_target)
status = errors.call_or_stop(cached.store_status, target.url)
if status["calls"] == 0:
    widgets.empty_state("No calls analysed yet — run `callqa scan FOLDER` to fill the store, then come back.")
    st.stop()

c1, c2, c3 = st.columns([2, 1, 2])
default_days = dates.fleet_range_default(status)
days = c1.date_input("Call dates", value=default_days, key=state.FLEET_DAYS)
bucket = c2.segmented_control("Per", ["day", "hour"], default=dates.default_bucket(default_days),
                              format_func=lambda b: b.capitalize(), key=state.FLEET_BUCKET, required=True)
group = c3.segmented_control("Split by", list(fleet.GROUP_OPTIONS), format_func=lambda g: fleet.GROUP_OPTIONS[g],
                             key=state.FLEET_GROUP, help="Leave empty for the whole fleet")
since, until = dates.date_bounds(days)

calls = errors.call_or_stop(cached.list_calls, target.url, since=since, until=until, order="oldest", limit=50_000)
if calls.empty:
    widgets.empty_state("No calls in this date range.", icon=":material/event_busy:")
    st.stop()
scored = calls["mos_min"].dropna()
problem = calls["worst_severity"].isin(["warning", "critical"]).mean()
widgets.metrics_row([
    widgets.Metric("Calls", f"{len(calls):,}"),
    widgets.Metric("Call minutes", f"{calls['duration_s'].sum() / 60:,.0f}"),
    widgets.Metric("Mean MOS", formatting.fmt_mos(scored.mean() if len(scored) else None), "Worst leg of each call"),
    widgets.Metric("Problem rate", f"{problem:.0%}", "Share of calls with a warning or critical finding"),
])

# --- MOS -----------------------------------------------------------------------------------------------------
trend = errors.call_or_stop(cached.fleet_trend, target.url, since=since, until=until, bucket=bucket, group_by=group)
left, right = st.columns(2, gap="large")
with left:
    st.subheader("MOS distribution")
    hist = charts.mos_histogram(scored)
    st.altair_chart(charts.mos_distribution_chart(hist), width="stretch")
    widgets.csv_download(hist, name="mos_distribution", key=state.FLEET_DOWNLOADS["hist"])
with right:
    st.subheader("Trend")
    metric = st.segmented_control("Metric", list(fleet.TREND_METRICS), default="mean_mos", key=state.FLEET_METRIC,
                                  format_func=lambda m: fleet.TREND_METRICS[m][0], required=True,
                                  label_visibility="collapsed")
    title, percent = fleet.TREND_METRICS[metric]
    shown, hidden = fleet.top_groups(trend, group) if group else (trend, 0)
    st.altair_chart(charts.trend_chart(shown, metric=metric, title=title, group=group, percent=percent,
                                       bucket=bucket), width="stretch")
    if hidden:
        st.caption(f"The {fleet.MAX_GROUP_LINES} {fleet.GROUP_OPTIONS[str(group)].lower()}s with most calls; "
                   f"{hidden} more in the CSV.")
    widgets.csv_download(trend, name=f"trend_per_{bucket}", key=state.FLEET_DOWNLOADS["trend"])

# --- finding rates ----------------------------------------------------------------------------------------
st.subheader("Finding rates")
rates = charts.finding_rates_frame(calls, group=fleet.GROUP_CALL_COLUMN[group] if group else None)
if group:
    column = fleet.GROUP_CALL_COLUMN[group]
    keep = calls[column].fillna("(unknown)").value_counts().index[:fleet.MAX_GROUP_LINES]
    rates = rates[rates[column].isin(keep)].rename(columns={column: group})
st.altair_chart(charts.finding_rate_chart(rates, group=group), width="stretch")
widgets.csv_download(rates, name="finding_rates", key=state.FLEET_DOWNLOADS["rates"])

# --- caller and agent (every layout, mixed calls split by voice) ------------------------------------------
side_frame = sides.side_section(target.url, since=since, until=until, group=group)
if side_frame is not None and not side_frame.empty:
    widgets.csv_download(side_frame, name="caller_and_agent", key=state.FLEET_DOWNLOADS["sides"])

# --- worst groups and drill-down ------------------------------------------------------------------------
st.subheader("Worst performers")
c1, c2 = st.columns([3, 2])
by = c1.segmented_control("Worst", ["agent", "server", "carrier", "campaign"], default="agent",
                          format_func=lambda g: fleet.GROUP_OPTIONS[g] + "s", key=state.FLEET_WORST_BY, required=True)
sort = c2.selectbox("Ranked by", list(fleet.SORT_OPTIONS), format_func=lambda s: fleet.SORT_OPTIONS[s],
                    key=state.FLEET_SORT)
groups = errors.call_or_stop(cached.fleet_groups, target.url, by=by, since=since, until=until, sort=sort, limit=20)
st.caption("Click a row to list its calls.")
groups_key = f"{state.FLEET_GROUPS_TABLE}.{by}"  # a selection belongs to one ranking
widgets.selectable_table(fleet.groups_display(groups, by), key=groups_key,
                         column_config={by: fleet.GROUP_OPTIONS[by], **fleet.GROUP_COLUMNS})
widgets.csv_download(groups, name=f"worst_{by}s", key=state.FLEET_DOWNLOADS["groups"])

picked = state.selected_row(groups_key)
if picked is not None and picked < len(groups):
    value = str(groups.iloc[picked][by])
    st.subheader(f"Calls of {fleet.GROUP_OPTIONS[by].lower()} {value}")
    drill = errors.call_or_stop(fleet.drill_down_calls, target.url, by=by, value=value, since=since, until=until)
    st.caption("Worst MOS first. Click a call to open its deep dive.")
    widgets.selectable_table(access.shown_frame(widgets.calls_display(drill)), key=state.FLEET_CALLS_TABLE)
    widgets.csv_download(access.shown_frame(drill), name=f"calls_{by}_{value}", key=state.FLEET_DOWNLOADS["calls"])
    widgets.open_selected_call(state.FLEET_CALLS_TABLE, access.call_links(drill["call_id"]))
