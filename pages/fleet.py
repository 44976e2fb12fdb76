"""Fleet trends: MOS distribution and trend, finding rates, the worst agents/servers/carriers with a
drill-down to their calls; every table can be downloaded as CSV."""

from __future__ import annotations

import streamlit as st

from ui import cached, charts, state
from ui import components as ui

st.title("Fleet trends")
target = ui.call_or_stop(cached.store_target)
status = ui.call_or_stop(cached.store_status, target.url)
if status["calls"] == 0:
    ui.empty_state("No calls analysed yet — run `callqa scan FOLDER` to fill the store, then come back.")
    st.stop()

c1, c2, c3 = st.columns([2, 1, 2])
default_days = ui.fleet_range_default(status)
days = c1.date_input("Call dates", value=default_days, key="fleet.days")
bucket = c2.segmented_control("Per", ["day", "hour"], default=ui.default_bucket(default_days),
                              format_func=lambda b: b.capitalize(), key="fleet.bucket", required=True)
group = c3.segmented_control("Split by", list(ui.GROUP_OPTIONS), format_func=lambda g: ui.GROUP_OPTIONS[g],
                             key="fleet.group", help="Leave empty for the whole fleet")
since, until = ui.date_bounds(days)

calls = ui.call_or_stop(cached.list_calls, target.url, since=since, until=until, order="oldest", limit=50_000)
if calls.empty:
    ui.empty_state("No calls in this date range.", icon=":material/event_busy:")
    st.stop()
scored = calls["mos_min"].dropna()
problem = calls["worst_severity"].isin(["warning", "critical"]).mean()
ui.metrics_row([
    ui.Metric("Calls", f"{len(calls):,}"),
    ui.Metric("Call minutes", f"{calls['duration_s'].sum() / 60:,.0f}"),
    ui.Metric("Mean MOS", ui.fmt_mos(scored.mean() if len(scored) else None), "Worst leg of each call"),
    ui.Metric("Problem rate", f"{problem:.0%}", "Share of calls with a warning or critical finding"),
])

# --- MOS -----------------------------------------------------------------------------------------------------
trend = ui.call_or_stop(cached.fleet_trend, target.url, since=since, until=until, bucket=bucket, group_by=group)
left, right = st.columns(2, gap="large")
with left:
    st.subheader("MOS distribution")
    hist = charts.mos_histogram(scored)
    st.altair_chart(charts.mos_distribution_chart(hist), width="stretch")
    ui.csv_download(hist, name="mos_distribution", key="fleet.dl.hist")
with right:
    st.subheader("Trend")
    metric = st.segmented_control("Metric", list(ui.TREND_METRICS), default="mean_mos", key="fleet.metric",
                                  format_func=lambda m: ui.TREND_METRICS[m][0], required=True,
                                  label_visibility="collapsed")
    title, percent = ui.TREND_METRICS[metric]
    shown, hidden = ui.top_groups(trend, group) if group else (trend, 0)
    st.altair_chart(charts.trend_chart(shown, metric=metric, title=title, group=group, percent=percent,
                                       bucket=bucket), width="stretch")
    if hidden:
        st.caption(f"The {ui.MAX_GROUP_LINES} {ui.GROUP_OPTIONS[str(group)].lower()}s with most calls; "
                   f"{hidden} more in the CSV.")
    ui.csv_download(trend, name=f"trend_per_{bucket}", key="fleet.dl.trend")

# --- finding rates ----------------------------------------------------------------------------------------
st.subheader("Finding rates")
rates = charts.finding_rates_frame(calls, group=ui.GROUP_CALL_COLUMN[group] if group else None)
if group:
    column = ui.GROUP_CALL_COLUMN[group]
    keep = calls[column].fillna("(unknown)").value_counts().index[:ui.MAX_GROUP_LINES]
    rates = rates[rates[column].isin(keep)].rename(columns={column: group})
st.altair_chart(charts.finding_rate_chart(rates, group=group), width="stretch")
ui.csv_download(rates, name="finding_rates", key="fleet.dl.rates")

# --- worst groups and drill-down ------------------------------------------------------------------------
st.subheader("Worst performers")
c1, c2 = st.columns([3, 2])
by = c1.segmented_control("Worst", ["agent", "server", "carrier", "campaign"], default="agent",
                          format_func=lambda g: ui.GROUP_OPTIONS[g] + "s", key=state.FLEET_WORST_BY, required=True)
sort = c2.selectbox("Ranked by", list(ui.SORT_OPTIONS), format_func=lambda s: ui.SORT_OPTIONS[s], key="fleet.sort")
groups = ui.call_or_stop(cached.fleet_groups, target.url, by=by, since=since, until=until, sort=sort, limit=20)
st.caption("Click a row to list its calls.")
groups_key = f"{state.FLEET_GROUPS_TABLE}.{by}"  # a selection belongs to one ranking
ui.selectable_table(ui.groups_display(groups, by), key=groups_key,
                    column_config={by: ui.GROUP_OPTIONS[by], **ui.GROUP_COLUMNS})
ui.csv_download(groups, name=f"worst_{by}s", key="fleet.dl.groups")

picked = state.selected_row(groups_key)
if picked is not None and picked < len(groups):
    value = str(groups.iloc[picked][by])
    st.subheader(f"Calls of {ui.GROUP_OPTIONS[by].lower()} {value}")
    drill = ui.call_or_stop(ui.drill_down_calls, target.url, by=by, value=value, since=since, until=until)
    st.caption("Worst MOS first. Click a call to open its deep dive.")
    ui.selectable_table(ui.calls_display(drill), key=state.FLEET_CALLS_TABLE)
    ui.csv_download(drill, name=f"calls_{by}_{value}", key="fleet.dl.calls")
    ui.open_selected_call(state.FLEET_CALLS_TABLE, [{state.PARAM_CALL: c} for c in drill["call_id"]])
