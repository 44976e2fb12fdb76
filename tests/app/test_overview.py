"""Overview page against the scanned corpus, an empty store and the demo store."""

from __future__ import annotations

import shutil
from pathlib import Path

WORST = "overview.worst_table"


def test_overview_shows_status_worst_calls_and_findings(open_page):
    at = open_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["In the store"] == "12"
    assert metrics["Newest call"].endswith("ago")  # 2026-11-07 11:02, as an age (the date is in its help)
    assert metrics["Calls today"] == "0"  # the corpus is from 2026-11-07
    # no call today or this week: the period widens rather than showing an empty page
    assert at.session_state["overview.period"] in ("Last 30 days", "All time")
    worst = at.dataframe(key=WORST).value
    assert len(worst) == 10
    assert list(worst.iloc[0]["severity"]) == ["Critical"]  # a coloured pill
    assert "Packet loss" in {f for row in worst["findings"] for f in row}
    assert at.get("vega_lite_chart"), "findings-by-code chart"
    assert not any("Demo data" in i.value for i in at.info)


def test_worst_call_row_opens_its_deep_dive(open_page, select_row):
    at = open_page()
    first = at.dataframe(key=WORST).value.iloc[0]["call_id"]
    select_row(at, WORST, 0)
    assert at.title[0].value == first
    assert at.query_params["call"] == first


def test_period_without_calls_says_so(open_page):
    at = open_page()
    at.segmented_control(key="overview.period").set_value("Today").run()
    assert not at.exception
    assert any("No calls in this period" in i.value for i in at.info)


def test_empty_store_explains_how_to_fill_it(open_page, empty_store):
    at = open_page()
    assert any("No calls analysed yet" in i.value and "callqa scan" in i.value for i in at.info)
    assert not at.metric


def test_demo_store_shows_the_banner(open_page, monkeypatch, tmp_path: Path, corpus_store: Path):
    monkeypatch.delenv("CALLQA_STORE")
    monkeypatch.setenv("CALLQA_DATA", str(tmp_path))
    (tmp_path / "demo").mkdir()
    shutil.copy(corpus_store, tmp_path / "demo" / "callqa.db")
    at = open_page()
    assert any(i.value.startswith("**Demo data**") for i in at.info)
    assert "Demo data" in at.sidebar.markdown[0].value  # the badge, on every page


def test_missing_demo_store_is_a_message_not_a_crash(open_page, monkeypatch, tmp_path: Path):
    monkeypatch.delenv("CALLQA_STORE")
    monkeypatch.setenv("CALLQA_DATA", str(tmp_path))
    at = open_page()
    assert any("has not been built yet" in e.value and "make run" in e.value for e in at.error)


PAGES = ["pages/overview.py", "pages/lookup.py", "pages/deep_dive.py", "pages/fleet.py", "pages/chat.py",
         "pages/settings.py"]


def test_every_page_survives_an_empty_store(open_page, empty_store):
    at = open_page()
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
