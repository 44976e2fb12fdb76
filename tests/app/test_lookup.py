"""Call lookup: the three sources, their forms, and a row opening the deep dive."""

from __future__ import annotations

import socket

TABLE = "lookup.table"


def _submit(at, label: str):
    next(b for b in at.button if b.label == label).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_store_search_filters_and_opens_the_deep_dive(open_page, select_row):
    at = open_page("pages/lookup.py")
    assert at.segmented_control(key="lookup.source").value == "Result store"  # ViciDial not configured
    at.text_input[1].input("1002")  # agent
    _submit(at, "Search")
    table = at.dataframe(key=TABLE).value
    assert len(table) == 4 and set(table["agent"]) == {"1002"}
    assert {"mos_caller", "mos_agent", "findings"} <= set(table.columns)
    chosen = table.iloc[2]["call_id"]
    select_row(at, TABLE, 2)
    assert at.title[0].value == chosen
    assert at.query_params["call"] == chosen


def test_store_search_by_finding_and_phone(open_page):
    at = open_page("pages/lookup.py")
    at.multiselect[0].select("dead_air")
    _submit(at, "Search")
    table = at.dataframe(key=TABLE).value
    assert [list(f) for f in table["findings"]] == [["Dead air"]]
    at.multiselect[0].unselect("dead_air")
    at.text_input[0].input("9828963560")  # phone part of the recording name
    _submit(at, "Search")
    assert list(at.dataframe(key=TABLE).value["call_id"]) == ["20261107-080000_9828963560"]


def test_folder_source_lists_calls_with_stored_headlines(open_page, select_row, corpus_dir):
    at = open_page("pages/lookup.py")
    at.segmented_control(key="lookup.source").set_value("Recording folder").run()
    assert str(corpus_dir.resolve()) in at.selectbox[0].options
    at.selectbox[0].set_value(str(corpus_dir.resolve()))
    _submit(at, "List calls")
    table = at.dataframe(key=TABLE).value
    assert len(table) == 12 and table["analysed"].all()
    assert table["files"].str.contains("in").all()
    select_row(at, TABLE, 0)
    assert at.title[0].value == table.iloc[0]["call"]
    assert at.query_params["folder"] == str(corpus_dir.resolve())


def test_folder_outside_the_allowed_ones_is_refused(open_page, corpus_dir):
    at = open_page("pages/lookup.py")
    at.segmented_control(key="lookup.source").set_value("Recording folder").run()
    at.selectbox[0].set_value(str(corpus_dir.resolve()))
    at.text_input[0].input("../../..")
    _submit(at, "List calls")
    assert any("not one of the dashboard's recording folders" in e.value for e in at.error)


def test_vicidial_not_configured_explains_how(open_page):
    at = open_page("pages/lookup.py")
    at.segmented_control(key="lookup.source").set_value("ViciDial").run()
    assert any("ViciDial is not configured" in i.value for i in at.info)


def test_unreachable_vicidial_is_a_message(open_page, monkeypatch):
    monkeypatch.setenv("CALLQA_VICIDIAL_HOST", "127.0.0.1")
    monkeypatch.setenv("CALLQA_VICIDIAL_PORT", str(_free_port()))  # nothing listens there
    monkeypatch.setenv("CALLQA_VICIDIAL_USER", "callqa_ro")
    at = open_page("pages/lookup.py")
    assert at.segmented_control(key="lookup.source").value == "ViciDial"
    _submit(at, "Search ViciDial")
    assert any(e.value.startswith("**ViciDial lookup failed**") for e in at.error)
    # the rest of the page and the app still work
    at.segmented_control(key="lookup.source").set_value("Result store").run()
    _submit(at, "Search")
    assert len(at.dataframe(key=TABLE).value) == 12


def test_invalid_vicidial_input_is_a_warning(open_page, monkeypatch):
    monkeypatch.setenv("CALLQA_VICIDIAL_HOST", "127.0.0.1")
    monkeypatch.setenv("CALLQA_VICIDIAL_USER", "callqa_ro")
    at = open_page("pages/lookup.py")
    at.text_input[2].input("abc")  # lead id
    _submit(at, "Search ViciDial")
    assert any("Lead id 'abc' must be a number" in w.value for w in at.warning)


def test_lookup_on_an_empty_store(open_page, empty_store):
    at = open_page("pages/lookup.py")
    _submit(at, "Search")
    assert any("No calls match" in i.value for i in at.info)


def _vicidial_rows():
    """Two ViciDial search results: one call already analysed, one not."""
    import pandas as pd

    from core.vicidial.lookup import _frame

    known = {"direction": "outbound", "recording_id": 501, "filename": "20261107-083314_2985954634",
             "server_ip": "10.10.10.11", "user": "1003", "full_name": "Ann Agent", "campaign_id": "SALES",
             "phone_number": "2985954634", "status": "SALE", "call_date": "2026-11-07 08:33:14",
             "call_length_in_sec": 72, "hangup_cause": 16, "sip_hangup_cause": 200, "sip_hangup_reason": "OK"}
    unknown = {**known, "recording_id": 502, "filename": "20261108-100000_5550009999", "direction": "inbound",
               "campaign_id": None, "ingroup": "BILLING", "phone_number": "5550009999",
               "call_date": "2026-11-08 10:00:00"}
    frame = _frame([known, unknown])
    assert isinstance(frame, pd.DataFrame)
    return frame


def test_vicidial_results_show_stored_headlines(open_page, select_row, monkeypatch):
    monkeypatch.setenv("CALLQA_VICIDIAL_HOST", "127.0.0.1")
    monkeypatch.setenv("CALLQA_VICIDIAL_USER", "callqa_ro")
    calls = []

    def fake_search(settings, filters, *, limit):
        calls.append((filters, limit))
        return _vicidial_rows()

    monkeypatch.setattr("core.vicidial.search_recordings", fake_search)
    at = open_page("pages/lookup.py")
    at.text_input[0].input("+1 (298) 595-4634")
    _submit(at, "Search ViciDial")
    assert calls[0][0].phone == "+1 (298) 595-4634" and calls[0][1] == 100
    table = at.dataframe(key=TABLE).value
    assert list(table["analysed"]) == [True, False]
    assert table.iloc[0]["agent"] == "1003 (Ann Agent)" and table.iloc[1]["campaign"] == "BILLING"
    assert table.iloc[0]["hangup"] == "16 / 200 OK"
    assert table.iloc[0]["mos_caller"] > 0 and table.iloc[1]["mos_caller"] != table.iloc[1]["mos_caller"]  # NaN
    # the unanalysed recording opens the deep dive, which fetches it: ViciDial is unreachable here
    select_row(at, TABLE, 1)
    assert at.query_params["recording_id"] == "502"
    assert any(e.value.startswith("**ViciDial lookup failed**") for e in at.error)
