"""The ViciDial lookup against a real MariaDB loaded with a ViciDial schema and realistic rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime

import pandas as pd
import pytest

from core.errors import CallNotFoundError, ParameterError, ViciDialError
from core.vicidial import (
    RESULT_COLUMNS,
    LookupFilters,
    call_context,
    connect,
    get_recording,
    recordings_since,
    search_recordings,
)
from core.vicidial.sql import SchemaInfo, carrier_query, search_query
from tests.support import vicidial_fixture as fx
from tests.support.vicidial_fixture import ViciDialFixture, vicidial_database


@pytest.fixture(scope="module")
def vicidial() -> Iterator[ViciDialFixture]:
    with vicidial_database() as fixture:
        yield fixture


def ids(frame: pd.DataFrame) -> set[int]:
    return {int(x) for x in frame["recording_id"]}


def row_of(frame: pd.DataFrame, recording_id: int) -> pd.Series:
    rows = frame[frame["recording_id"] == recording_id]
    assert len(rows) == 1, f"expected one row for {recording_id}, got {len(rows)}"
    return rows.iloc[0]


def test_default_search_lists_call_recordings_newest_first_once_each(vicidial: ViciDialFixture) -> None:
    frame = search_recordings(vicidial.settings, LookupFilters(), limit=100)
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert ids(frame) == set(fx.CALL_LINKED_RECORDINGS)
    assert len(frame) == len(fx.CALL_LINKED_RECORDINGS)  # 9123456 is also in recording_log_archive
    assert frame["call_date"].is_monotonic_decreasing
    # one call, two recordings (agent stop/restart): two rows
    same_call = frame[frame["uniqueid"] == "1756476900.48213"]
    assert set(same_call["recording_id"]) == {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART}
    assert str(frame["recording_id"].dtype) == "Int64"
    assert str(frame["call_date"].dtype).startswith("datetime64")


def test_outbound_row_has_agent_campaign_carrier_and_server(vicidial: ViciDialFixture) -> None:
    row = row_of(search_recordings(vicidial.settings, LookupFilters(lead_id=1048573)), fx.OUTBOUND_SALE)
    assert row["direction"] == "outbound"
    assert (row["user"], row["full_name"]) == ("6001", "Maria Lopez")
    assert (row["campaign_id"], row["campaign_name"]) == ("SALESOUT", "Outbound Sales Q3")
    assert (row["status"], row["status_name"], row["term_reason"]) == ("SALE", "Sale Made", "CALLER")
    assert (row["hangup_cause"], row["dialstatus"]) == (16, "ANSWER")
    assert (row["sip_hangup_cause"], row["sip_hangup_reason"]) == (200, "OK")
    assert (row["dial_time"], row["answered_time"]) == (287, 277)
    assert (row["server_ip"], row["server_id"]) == ("10.10.10.11", "DIALER1")
    assert (row["length_in_sec"], row["call_length_in_sec"]) == (110, 275)
    assert row["phone_number"] == "3125551212"
    assert row["location"] == "http://10.10.10.11/RECORDINGS/MP3/20250829-101512_3125551212-all.mp3"
    assert row["start_time"] == pd.Timestamp("2025-08-29 10:15:12")
    assert (row["call_table"], row["recording_table"]) == ("vicidial_log", "recording_log")


def test_inbound_row_joins_on_closecallid_with_ingroup_names(vicidial: ViciDialFixture) -> None:
    row = row_of(search_recordings(vicidial.settings, LookupFilters(recording_id=fx.INBOUND_SUPPORT)),
                 fx.INBOUND_SUPPORT)
    assert row["direction"] == "inbound"
    assert (row["vicidial_id"], row["closecallid"]) == ("3481923", 3481923)
    assert (row["ingroup"], row["group_name"]) == ("SUPPORT_IN", "Customer Support")
    assert pd.isna(row["campaign_id"])
    assert (row["user"], row["full_name"], row["queue_seconds"]) == ("6007", "Kevin Osei", 25.0)
    assert row["uniqueid"] == "1756490551.50321"
    assert row["stereo_options"] == "CUSTOMER SUPPORT_IN"
    assert pd.isna(row["hangup_cause"])  # carrier logging covers outbound dials only
    assert row["server_id"] == "DIALER2"


def test_archive_rows_and_the_carrier_leg_matched_by_second(vicidial: ViciDialFixture) -> None:
    frame = search_recordings(vicidial.settings, LookupFilters(until=datetime(2025, 1, 1)))
    assert ids(frame) == {fx.ARCHIVE_OUTBOUND, fx.ARCHIVE_INBOUND}
    out = row_of(frame, fx.ARCHIVE_OUTBOUND)
    assert (out["call_table"], out["recording_table"]) == ("vicidial_log_archive", "recording_log_archive")
    assert (out["status"], out["status_name"]) == ("RENEWD", "Renewal done")  # campaign status name
    assert (out["campaign_name"], out["hangup_cause"], out["answered_time"]) == ("Renewals 2024", 16, 229)
    inbound = row_of(frame, fx.ARCHIVE_INBOUND)
    assert (inbound["call_table"], inbound["ingroup"]) == ("vicidial_closer_log_archive", "SUPPORT_IN")
    live_only = search_recordings(vicidial.with_settings(include_archive=False), LookupFilters())
    assert fx.ARCHIVE_OUTBOUND not in ids(live_only) and fx.ARCHIVE_INBOUND not in ids(live_only)


SALESOUT = {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.CORPUS_CHANNEL, fx.CORPUS_NOISY}
SUPPORT_IN = {fx.INBOUND_SUPPORT, fx.ARCHIVE_INBOUND, fx.CORPUS_CONFERENCE}


@pytest.mark.parametrize(("filters", "expected"), [
    (LookupFilters(since=datetime(2025, 8, 29), until=datetime(2025, 8, 30)),
     {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.INBOUND_SUPPORT}),
    (LookupFilters(since=datetime(2026, 11, 7, 10, 0)), {fx.CORPUS_CONFERENCE}),
    (LookupFilters(phone="+1 (312) 555-1212"), {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART}),
    (LookupFilters(phone="312.555.1212"), {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART}),
    (LookupFilters(phone="17735550142"), {fx.INBOUND_SUPPORT}),
    (LookupFilters(phone="001 630 555 0187"), {fx.ARCHIVE_OUTBOUND}),
    (LookupFilters(phone="3125558844"), set()),  # answered by nobody, never recorded
    (LookupFilters(agent="6007"), SUPPORT_IN),
    (LookupFilters(agent="GATEWAY"), {fx.GATEWAY_UNLINKED}),
    (LookupFilters(campaign="SALESOUT"), SALESOUT),
    (LookupFilters(campaign="RENEW01"), {fx.ARCHIVE_OUTBOUND}),
    (LookupFilters(ingroup="SUPPORT_IN"), SUPPORT_IN),
    (LookupFilters(campaign="SALESOUT", ingroup="SUPPORT_IN"), SALESOUT | SUPPORT_IN),
    (LookupFilters(lead_id=1048573), {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.GATEWAY_UNLINKED}),
    (LookupFilters(uniqueid="1756490551.50321"), {fx.INBOUND_SUPPORT}),
    (LookupFilters(uniqueid="1756476900.48213"), {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART}),
    (LookupFilters(recording_id=fx.GATEWAY_UNLINKED), {fx.GATEWAY_UNLINKED}),
    (LookupFilters(recording_id=fx.ARCHIVE_INBOUND), {fx.ARCHIVE_INBOUND}),
    (LookupFilters(status="SALE"), {fx.OUTBOUND_SALE, fx.OUTBOUND_SALE_RESTART, fx.CORPUS_CHANNEL}),
    (LookupFilters(status="RENEWD"), {fx.ARCHIVE_OUTBOUND}),
    (LookupFilters(direction="inbound"), SUPPORT_IN),
    (LookupFilters(campaign="SALESOUT", agent="6001", since=datetime(2026, 1, 1)), {fx.CORPUS_CHANNEL}),
    (LookupFilters(ingroup="SUPPORT_IN", status="SALE"), set()),
], ids=lambda v: "" if isinstance(v, set) else ",".join(
    f"{k}={v}" for k, v in vars(v).items() if v is not None) if isinstance(v, LookupFilters) else None)
def test_each_filter(vicidial: ViciDialFixture, filters: LookupFilters, expected: set[int]) -> None:
    assert ids(search_recordings(vicidial.settings, filters)) == expected


def test_unlinked_gateway_recording_is_found_by_its_keys(vicidial: ViciDialFixture) -> None:
    row = get_recording(vicidial.settings, fx.GATEWAY_UNLINKED)
    assert (row["direction"], row["user"], row["vicidial_id"]) == ("unlinked", "GATEWAY", "G52211")
    assert row["call_date"] == "2025-08-29 10:15:00"  # its own start time
    assert row["uniqueid"] is None and row["server_id"] == "GATEWAY1"


def test_limit_is_enforced(vicidial: ViciDialFixture) -> None:
    frame = search_recordings(vicidial.settings, LookupFilters(), limit=2)
    assert list(frame["recording_id"]) == [fx.CORPUS_CONFERENCE, fx.CORPUS_NOISY]
    for bad in (0, 5001, -1):
        with pytest.raises(ParameterError, match="limit"):
            search_recordings(vicidial.settings, LookupFilters(), limit=bad)


def test_bad_filters_are_refused() -> None:
    with pytest.raises(ParameterError, match="until"):
        LookupFilters(since=datetime(2025, 8, 30), until=datetime(2025, 8, 29))
    with pytest.raises(ParameterError, match="phone"):
        LookupFilters(phone="--")
    with pytest.raises(ParameterError, match="direction"):
        LookupFilters(direction="sideways")


def test_collation_pitfall_is_handled(vicidial: ViciDialFixture) -> None:
    """utf8 (general_ci) connection, utf8_unicode_ci tables: a bare CAST fails, the lookup does not."""
    with connect(vicidial.with_settings(charset="utf8")) as session:
        with pytest.raises(ViciDialError, match="Illegal mix of collations"):
            session.query(
                "SELECT r.recording_id FROM vicidial_closer_log c "
                "JOIN recording_log r ON r.vicidial_id = CAST(c.closecallid AS CHAR) LIMIT 5"
            )
        frame = search_recordings(session, LookupFilters(ingroup="SUPPORT_IN"))
        assert ids(frame) == SUPPORT_IN
        assert session.schema.vicidial_id_collations[0][1:] == ("utf8mb3", "utf8mb3_unicode_ci")


def test_get_recording_returns_json_ready_metadata(vicidial: ViciDialFixture) -> None:
    row = get_recording(vicidial.settings, fx.CORPUS_NOISY)
    json.dumps(row)  # plain JSON values only
    assert row["filename"] == fx.CORPUS_FILENAMES[fx.CORPUS_NOISY]
    assert row["full_name"] == fx.INJECTION_FULL_NAME
    assert "ignore your previous instructions" in row["comments"]
    assert (row["call_date"], row["recording_id"], row["lead_id"]) == ("2026-11-07 08:16:37", fx.CORPUS_NOISY, 3000002)
    assert row["hangup_cause"] == 16 and row["sip_hangup_reason"] == "OK"  # carrier row on the ;2 leg
    with pytest.raises(CallNotFoundError, match="recording_id 1 not found"):
        get_recording(vicidial.settings, 1)


def test_recordings_since_stops_before_an_unprocessed_recording(vicidial: ViciDialFixture) -> None:
    frame = recordings_since(vicidial.settings, after_recording_id=fx.INBOUND_SUPPORT, limit=10)
    assert list(frame["recording_id"]) == [fx.GATEWAY_UNLINKED, fx.CORPUS_CHANNEL, fx.CORPUS_NOISY, fx.CORPUS_CONFERENCE]
    admin = vicidial.admin()
    try:
        with admin.cursor() as cur:
            cur.execute(
                "INSERT INTO recording_log (recording_id, channel, server_ip, extension, start_time, start_epoch, "
                "filename, location, lead_id, user, vicidial_id) VALUES "
                "(9300001, 'Local/58600051@default', '10.10.10.11', '8309', NOW(), UNIX_TIMESTAMP(), "
                "'recording-now_3125551212', NULL, 1048573, '6001', ''),"
                "(9300002, 'Local/58600052@default', '10.10.10.11', '8309', NOW(), UNIX_TIMESTAMP(), "
                "'processed_3125551213', 'http://10.10.10.11/RECORDINGS/processed_3125551213-all.wav', 1048574, '6001', '')"
            )
        assert recordings_since(vicidial.settings, after_recording_id=fx.CORPUS_CONFERENCE).empty
        with admin.cursor() as cur:
            cur.execute("UPDATE recording_log SET start_epoch = UNIX_TIMESTAMP() - 7200 WHERE recording_id = 9300001")
        stale = recordings_since(vicidial.settings, after_recording_id=fx.CORPUS_CONFERENCE, pending_grace_s=3600)
        assert list(stale["recording_id"]) == [9300001, 9300002]
        assert stale["location"].isna().iloc[0]
    finally:
        with admin.cursor() as cur:
            cur.execute("DELETE FROM recording_log WHERE recording_id IN (9300001, 9300002)")
        admin.close()


def test_call_context_of_an_outbound_recording(vicidial: ViciDialFixture) -> None:
    ctx = call_context(vicidial.settings, fx.OUTBOUND_SALE)
    json.dumps(ctx)
    assert [r["uniqueid"] for r in ctx["vicidial_log"]] == ["1756476900.48213"]
    assert [r["caller_code"] for r in ctx["vicidial_log_extended"]] == ["V8291015000001048573"]
    assert [(r["hangup_cause"], r["sip_hangup_cause"]) for r in ctx["vicidial_carrier_log"]] == [(16, 200)]
    assert [r["channel"] for r in ctx["vicidial_dial_log"]] == ["Local/913125551212@default"]
    assert [r["channel_group"] for r in ctx["call_log"]] == ["Local Channel Line"]
    assert [(r["talk_sec"], r["status"]) for r in ctx["vicidial_agent_log"]] == [(275, "SALE")]
    assert [r["recording_id"] for r in ctx["routing_initiated_recordings"]] == [fx.OUTBOUND_SALE]
    assert {r["_table"] for r in ctx["recording_log"]} == {"recording_log", "recording_log_archive"}
    assert ctx["vicidial_users"] == [{"user": "6001", "full_name": "Maria Lopez", "user_level": 1,
                                      "user_group": "AGENTS", "active": "Y", "_table": "vicidial_users"}]
    assert "ASTmgrSECRET" not in ctx["servers"][0] and ctx["servers"][0]["server_id"] == "DIALER1"


def test_call_context_of_an_inbound_recording(vicidial: ViciDialFixture) -> None:
    ctx = call_context(vicidial.settings, fx.INBOUND_SUPPORT)
    assert [r["closecallid"] for r in ctx["vicidial_closer_log"]] == [3481923]
    assert [r["channel"] for r in ctx["vicidial_did_log"]] == ["SIP/carrierB-0000c3d4"]
    assert [r["channel_group"] for r in ctx["call_log"]] == ["DID_INBOUND"]
    assert [r["options"] for r in ctx["recording_log_stereo"]] == ["CUSTOMER SUPPORT_IN"]
    assert [r["comments"] for r in ctx["vicidial_agent_log"]] == ["INBOUND"]
    assert ctx["vicidial_log"] == [] and ctx["vicidial_carrier_log"] == []
    unlinked = call_context(vicidial.settings, fx.GATEWAY_UNLINKED)
    assert unlinked["recording_log"][0]["vicidial_id"] == "G52211"
    assert unlinked["vicidial_log"] == [] and unlinked["vicidial_closer_log"] == []
    with pytest.raises(CallNotFoundError):
        call_context(vicidial.settings, 42)


def test_every_statement_carries_a_limit() -> None:
    tables = frozenset({"recording_log", "recording_log_archive", "vicidial_log", "vicidial_log_archive",
                        "vicidial_closer_log", "vicidial_closer_log_archive", "vicidial_carrier_log",
                        "vicidial_carrier_log_archive", "recording_log_stereo"})
    schema = SchemaInfo(tables=tables, vicidial_id_collations=(("recording_log", "utf8mb3", "utf8mb3_unicode_ci"),))
    for filters in (LookupFilters(), LookupFilters(lead_id=5), LookupFilters(recording_id=7, agent="6001")):
        query = search_query(schema, filters, limit=10)
        assert query is not None
        selects = query.sql.count("(SELECT\n")
        assert len(re.findall(r"\bLIMIT %s", query.sql)) == selects + 1
        assert query.args[-1] == 10
    carrier = carrier_query(schema, [("1756476900.48213", 1048573)], limit=8)
    assert carrier is not None and len(re.findall(r"\bLIMIT %s", carrier.sql)) == 3
