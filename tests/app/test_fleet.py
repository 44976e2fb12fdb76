"""Fleet trends: charts and tables over the corpus, grouping, drill-down, CSV downloads."""

from __future__ import annotations

from datetime import date


def _groups_key(by: str = "agent") -> str:
    return f"fleet.groups_table.{by}"


def test_fleet_page_shows_distribution_trend_rates_and_worst_agents(open_page):
    at = open_page("pages/fleet.py")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Calls"] == "12" and metrics["Mean MOS"] != "–"
    assert len(at.get("vega_lite_chart")) == 4  # distribution, trend, finding rates, caller and agent MOS
    groups = at.dataframe(key=_groups_key()).value
    assert set(groups["agent"]) == {"1001", "1002", "1003"}
    assert groups["problem_rate"].is_monotonic_decreasing
    names = [d.proto.label for d in at.get("download_button")]
    assert names == ["Download CSV"] * 5  # histogram, trend, rates, caller and agent, worst agents


def test_group_by_and_per_hour(open_page):
    at = open_page("pages/fleet.py")
    at.segmented_control(key="fleet.group").set_value("carrier").run()
    at.segmented_control(key="fleet.bucket").set_value("hour").run()
    assert not at.exception
    spec = at.get("vega_lite_chart")[1].proto.spec
    assert '"carrier"' in spec and "%H:00" in spec


def test_drill_down_from_worst_server_to_a_call(open_page, select_row):
    at = open_page("pages/fleet.py")
    at.segmented_control(key="fleet.worst_by").set_value("server").run()
    servers = at.dataframe(key=_groups_key("server")).value
    select_row(at, _groups_key("server"), 0)
    server = servers.iloc[0]["server"]
    assert any(s.value == f"Calls of server {server}" for s in at.subheader)
    calls = at.dataframe(key="fleet.calls_table").value
    assert len(calls) == 6
    first = calls.iloc[0]["call_id"]
    select_row(at, "fleet.calls_table", 0)
    assert at.title[0].value == first


def test_date_range_without_calls(open_page):
    at = open_page("pages/fleet.py")
    at.date_input(key="fleet.days").set_value((date(2020, 1, 1), date(2020, 1, 31))).run()
    assert any("No calls in this date range" in i.value for i in at.info)


def test_empty_store(open_page, empty_store):
    at = open_page("pages/fleet.py")
    assert any("No calls analysed yet" in i.value for i in at.info)


def test_caller_and_agent_statistics_count_mixed_calls_by_attribution_confidence(open_page, corpus_store):
    from core.store import open_store
    from core.store.side_stats import side_stats

    at = open_page("pages/fleet.py")
    shown = next(d.value for d in at.dataframe if "agent_talk_share" in d.value.columns)
    with open_store(str(corpus_store), read_only=True) as store:
        expected = side_stats(store, min_confidence=0.8)
        everything = side_stats(store, min_confidence=0.0)
    assert int(shown["calls"].iloc[0]) == int(expected["calls"].iloc[0])
    assert abs(float(shown["agent_talk_share"].iloc[0]) - float(expected["agent_talk_share"].iloc[0])) < 1e-9
    at.slider(key="fleet.side_confidence").set_value(0.0).run()
    shown = next(d.value for d in at.dataframe if "agent_talk_share" in d.value.columns)
    assert int(shown["calls"].iloc[0]) == int(everything["calls"].iloc[0]) >= int(expected["calls"].iloc[0])
