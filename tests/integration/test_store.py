"""The result store on real SQLite files and a real PostgreSQL: migrations, round trips, queries.

Every test runs twice (``sqlite``, ``postgresql``). Fleet aggregates are checked against values
computed here, independently, from the analyses' JSON documents.
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections import defaultdict
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import func, select

from core.audio.layout import discover_calls
from core.cli import cli
from core.config import AnalysisConfig
from core.errors import CallNotFoundError, StoreError
from core.pipeline import analyze_call
from core.results import FINDING_CODES, QualityScores, QualityWindow, TrackQuality
from core.store import open_store
from core.store import queries as q
from core.store.engine import normalize_url
from core.store.migrations import HEAD_REVISION, head_revision, script_head
from core.store.schema import call_warnings, calls, findings, metadata, silences, speech_segments, tracks
from core.store.store import migrate_store

AGENTS = ("6001", "6002", "6003")
CAMPAIGNS = ("SALES", "SUPPORT")
SERVERS = ("10.0.0.11", "10.0.0.12")
CARRIERS = (None, "carrier-a", "carrier-b")


# --- data: the corpus analysed once, with quality scores and metadata added --------------------------
def _with_quality(analysis, i: int):
    """A copy of ``analysis`` with deterministic NISQA-like scores (the real model is too slow here)."""
    out = copy.deepcopy(analysis)
    for j, (_leg, result) in enumerate(sorted(out.legs.items())):
        mos = round(1.2 + ((i * 7 + j * 5) % 17) * 0.2, 4)
        scores = QualityScores(mos=mos, noisiness=mos + 0.1, discontinuity=mos + 0.2, coloration=mos - 0.1,
                               loudness=mos)
        windows = (QualityWindow(0.0, 10.0, scores, 6.0),
                   QualityWindow(5.0, 15.0, QualityScores(mos + 0.3, 3.0, 3.0, 3.0, 3.0), 5.0))
        result.quality = TrackQuality(scores=scores, windows=windows, model="nisqa-v2.0")
        result.quality_reason = None
    out.quality_model = "v2.0"
    return out


def _metadata(call_id: str, i: int) -> dict:
    return {
        "call_time": datetime.strptime(call_id[:15], "%Y%m%d-%H%M%S"),
        "agent": AGENTS[i % 3],
        "campaign": CAMPAIGNS[i % 2],
        "server_ip": SERVERS[i % 2],
        "carrier": CARRIERS[i % 3],
        "lead_id": 1000 + i,
        "uniqueid": f"1794038400.{i}",
        "list_id": 99,  # not a column: kept in metadata_json
    }


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    """[(analysis, metadata, cache_key)] for every corpus call, analysed once without NISQA."""
    out = []
    for i, call in enumerate(discover_calls(corpus_dir)):
        analysis = _with_quality(analyze_call(call, cfg=AnalysisConfig()), i)
        out.append((analysis, _metadata(call.call_id, i), f"key-{call.call_id}"))
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url):
    s = open_store(store_url)
    yield s
    s.close()


@pytest.fixture
def filled(store, corpus):
    for analysis, meta, key in corpus:
        assert store.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="corpus", metadata=meta)
    return store


def _count(store, table, call_id=None) -> int:
    stmt = select(func.count()).select_from(table)
    if call_id is not None:
        stmt = stmt.where(table.c.call_id == call_id)
    with store.engine.connect() as conn:
        return conn.execute(stmt).scalar()


def _printed(doc) -> str:
    """What ``callqa analyze --json`` prints for ``doc`` (core.commands.common.echo_json)."""
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


# --- migrations --------------------------------------------------------------------------------------------
def test_migrations_are_recorded_and_match_the_schema(store_url):
    assert script_head() == HEAD_REVISION == head_revision()
    display, before, after = migrate_store(store_url)
    assert (before, after) == (None, head_revision())
    assert migrate_store(store_url)[1:] == (head_revision(), head_revision())  # idempotent
    store = open_store(store_url)
    try:
        assert store.revision() == head_revision()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all() == [head_revision()]
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []  # the migrations build exactly core/store/schema.py
    finally:
        store.close()


def test_read_only_needs_a_migrated_store(store_url):
    with pytest.raises(StoreError, match="callqa migrate"):
        open_store(store_url, read_only=True)
    open_store(store_url).close()
    ro = open_store(store_url, read_only=True)
    try:
        assert ro.revision() == head_revision()
    finally:
        ro.close()


def test_a_newer_schema_is_refused(store_url):
    open_store(store_url).close()
    store = open_store(store_url)
    try:
        with store.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        store.close()
    with pytest.raises(StoreError, match="newer schema"):
        open_store(store_url)
    with pytest.raises(StoreError, match="is at schema 9999"):
        open_store(store_url, read_only=True)


def test_sqlite_pragmas_and_url_handling(tmp_path):
    path = tmp_path / "deep" / "er" / "store.db"
    store = open_store(str(path))
    try:
        assert path.exists()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()
    assert normalize_url("postgresql://u:pw@h/db") == "postgresql+psycopg://u:pw@h/db"
    assert normalize_url(f"sqlite:///{path}") == f"sqlite:///{path}"
    with pytest.raises(StoreError, match="unsupported store URL"):
        normalize_url("mysql://u@h/db")
    with pytest.raises(StoreError, match="does not exist"):
        open_store(str(tmp_path / "missing.db"), read_only=True)


# --- write side ----------------------------------------------------------------------------------------------
def test_round_trip_is_byte_identical_to_analyze_json(store, corpus, store_url):
    analysis, meta, key = corpus[0]
    store.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="r", metadata=meta)
    assert _printed(store.get_analysis(analysis.call_id)) == _printed(analysis.as_dict())
    result = CliRunner().invoke(cli, ["--store", store_url, "show", analysis.call_id, "--json"])
    assert result.exit_code == 0, result.output
    assert result.output == _printed(analysis.as_dict())
    readable = CliRunner().invoke(cli, ["--store", store_url, "show", analysis.call_id])
    assert readable.exit_code == 0 and f"Call {analysis.call_id}" in readable.output
    with pytest.raises(CallNotFoundError):
        store.get_analysis("no-such-call")


def test_rows_mirror_the_json(filled, corpus):
    for analysis, _meta, _key in corpus:
        doc = analysis.as_dict()
        cid = doc["call_id"]
        assert _count(filled, tracks, cid) == len(doc["legs"])
        assert _count(filled, findings, cid) == len(doc["findings"])
        assert _count(filled, call_warnings, cid) == len(doc["warnings"])
        assert _count(filled, silences, cid) == sum(len(g["silences"]) for g in doc["legs"].values())
        assert _count(filled, speech_segments, cid) == sum(len(g["speech"]) for g in doc["legs"].values())
    got = q.call_findings(filled, corpus[5][0].call_id)
    want = corpus[5][0].as_dict()["findings"]
    assert list(got["code"]) == [f["code"] for f in sorted(want, key=lambda f: f["start_s"])]
    tr = q.call_tracks(filled, corpus[0][0].call_id)
    legs = corpus[0][0].as_dict()["legs"]
    assert sorted(tr["leg"]) == sorted(legs)
    for _, row in tr.iterrows():
        assert row["mos"] == pytest.approx(legs[row["leg"]]["quality"]["mos"])
        assert row["speech_ratio"] == pytest.approx(legs[row["leg"]]["speech_ratio"])
    qw = q.call_quality_windows(filled, corpus[0][0].call_id)
    assert len(qw) == 2 * len(legs)
    sp = q.call_intervals(filled, corpus[0][0].call_id, kind="speech")
    assert len(sp) == sum(len(g["speech"]) for g in legs.values())


def test_resave_same_key_is_a_no_op(store, corpus):
    analysis, meta, key = corpus[3]
    assert store.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="r", metadata=meta)
    with store.engine.connect() as conn:
        first = conn.execute(select(calls.c.analyzed_at).where(calls.c.call_id == analysis.call_id)).scalar()
    rows = _count(store, findings), _count(store, silences), _count(store, tracks)
    assert not store.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="r", metadata=meta)
    with store.engine.connect() as conn:
        again = conn.execute(select(calls.c.analyzed_at).where(calls.c.call_id == analysis.call_id)).scalar()
    assert again == first
    assert (_count(store, findings), _count(store, silences), _count(store, tracks)) == rows
    assert _count(store, calls) == 1
    assert store.cached(analysis.call_id, key) and not store.cached(analysis.call_id, "other")


def test_new_key_replaces_the_analysis_and_keeps_metadata(store, corpus):
    old, meta, key = corpus[5]  # a call with findings
    assert old.findings
    store.save_analysis(old, cache_key=key, source_kind="folder", source_ref="r", metadata=meta)
    new = copy.deepcopy(corpus[0][0])  # a clean call's analysis under the first call's id
    new.call_id = old.call_id
    assert store.save_analysis(new, cache_key="key-2", source_kind="folder", source_ref="r2",
                               metadata={"agent": "7000"})
    assert store.get_analysis(old.call_id) == new.as_dict()
    assert _count(store, findings, old.call_id) == len(new.findings)
    assert _count(store, silences, old.call_id) == sum(len(g.silences) for g in new.legs.values())
    assert _count(store, calls) == 1
    row = q.list_calls(store).iloc[0]
    assert row["agent"] == "7000"  # given again: replaced
    assert row["campaign"] == meta["campaign"]  # not given: kept
    assert row["n_findings"] == len(new.findings)


def test_call_time_defaults_to_when_first_stored(store, corpus):
    analysis, _meta, key = corpus[2]
    before = datetime.now().replace(microsecond=0)
    store.save_analysis(analysis, cache_key=key, source_kind="file", source_ref="r")
    stored = q.list_calls(store)["call_time"].iloc[0]
    assert before <= stored <= datetime.now()
    store.save_analysis(analysis, cache_key="other", source_kind="file", source_ref="r")
    assert q.list_calls(store)["call_time"].iloc[0] == stored  # kept when replaced
    store.save_analysis(analysis, cache_key="third", source_kind="file", source_ref="r",
                        metadata={"call_time": "2026-11-07 08:00:00"})  # ISO text, as ViciDial rows give it
    assert q.list_calls(store)["call_time"].iloc[0] == datetime(2026, 11, 7, 8, 0)


def test_errors_are_stored_and_cleared_by_success(store, corpus):
    analysis, meta, key = corpus[1]
    store.save_error(analysis.call_id, cache_key=key, source_ref="r", reason="x.wav: not a WAV file")
    store.save_error(analysis.call_id, cache_key=key, source_ref="r", reason="x.wav: truncated")
    assert store.known_error(analysis.call_id, key) == "x.wav: truncated"
    assert store.known_error(analysis.call_id, "other") is None
    errs = q.list_errors(store)
    assert list(errs["call_id"]) == [analysis.call_id] and errs["reason"][0] == "x.wav: truncated"
    assert q.store_status(store)["errors"] == 1
    store.save_analysis(analysis, cache_key="fixed", source_kind="folder", source_ref="r", metadata=meta)
    assert q.list_errors(store).empty


def test_claims(store):
    assert store.try_claim("c1", "k", "scanner-a", 60)
    assert not store.try_claim("c1", "k", "scanner-b", 60)
    assert store.try_claim("c1", "k", "scanner-a", 60)  # re-entrant
    assert store.claim_holder("c1") == "scanner-a"
    store.release("c1", "scanner-b")  # not the holder: no effect
    assert store.claim_holder("c1") == "scanner-a"
    store.release("c1", "scanner-a")
    assert store.try_claim("c1", "k", "scanner-b", 0.0)  # expires at once
    assert store.try_claim("c1", "k", "scanner-a", 60)  # takes over the expired claim
    assert store.try_claim("c2", "k", "scanner-a", 60)
    assert store.claim_owners() == ["scanner-a"]
    assert store.release_owner("scanner-a") == 2
    assert store.claim_owners() == []


def test_watermarks_and_claude_tables(store, corpus):
    assert store.get_watermark("vicidial:recording_log") is None
    store.set_watermark("vicidial:recording_log", "123")
    store.set_watermark("vicidial:recording_log", "456")
    assert store.get_watermark("vicidial:recording_log") == "456"

    analysis, meta, key = corpus[0]
    store.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="r", metadata=meta)
    store.save_ai_summary(analysis.call_id, analysis_key=key, model="claude-x", prompt_version="p1",
                          summary="clean call", verdict="ok", severity="info", input_tokens=900,
                          output_tokens=80, cost_usd=0.004)
    store.save_ai_summary(analysis.call_id, analysis_key=key, model="claude-x", prompt_version="p1",
                          summary="clean call, revised", verdict="ok", input_tokens=950, output_tokens=90,
                          cost_usd=0.005)
    got = store.get_ai_summary(analysis.call_id, analysis_key=key)
    assert got["summary"] == "clean call, revised" and got["input_tokens"] == 950
    assert store.get_ai_summary(analysis.call_id, model="other") is None

    day = date(2026, 11, 7)
    store.add_llm_usage(day=day, kind="summary", model="claude-x", input_tokens=100, output_tokens=10, cost_usd=0.25)
    store.add_llm_usage(day=day, kind="summary", model="claude-x", input_tokens=50, output_tokens=5, cost_usd=0.5)
    store.add_llm_usage(day=day + timedelta(days=1), kind="chat", model="claude-x", input_tokens=1,
                        output_tokens=1, cost_usd=1.0)
    usage = store.llm_usage(since=day, until=day + timedelta(days=1))
    assert [(u["input_tokens"], u["output_tokens"], u["calls"]) for u in usage] == [(150, 15, 2)]
    assert store.llm_spend_usd(day) == pytest.approx(0.75)

    store.save_llm_batch("msgbatch_1", status="submitted", submitted_count=12)
    store.update_llm_batch("msgbatch_1", status="ended", finished_at=datetime(2026, 11, 7, 9, 0))
    assert store.get_llm_batch("msgbatch_1")["status"] == "ended"
    assert [b["batch_id"] for b in store.llm_batches(status="ended")] == ["msgbatch_1"]
    with pytest.raises(StoreError, match="not recorded"):
        store.update_llm_batch("nope", status="ended")


# --- read side ------------------------------------------------------------------------------------------------
def test_list_calls_filters(filled, corpus):
    docs = {a.call_id: (a.as_dict(), m) for a, m, _ in corpus}
    df = q.list_calls(filled, limit=None)
    assert len(df) == len(corpus) == q.count_calls(filled)
    assert list(df["call_time"]) == sorted(df["call_time"], reverse=True)  # newest first
    for _, row in df.iterrows():
        doc, meta = docs[row["call_id"]]
        mos = [g["quality"]["mos"] for g in doc["legs"].values()]
        assert row["mos_min"] == pytest.approx(min(mos))
        assert row["n_findings"] == len(doc["findings"])
        assert row["finding_codes"] == ",".join(sorted({f["code"] for f in doc["findings"]}))
        assert row["agent"] == meta["agent"] and row["lead_id"] == meta["lead_id"]
    assert set(q.list_calls(filled, agent="6002", limit=None)["call_id"]) == {
        c for c, (_, m) in docs.items() if m["agent"] == "6002"}
    assert set(q.list_calls(filled, agent=["6001", "6003"], campaign="SALES", limit=None)["call_id"]) == {
        c for c, (_, m) in docs.items() if m["agent"] in ("6001", "6003") and m["campaign"] == "SALES"}
    with_one_way = {c for c, (d, _) in docs.items() if any(f["code"] == "one_way_audio" for f in d["findings"])}
    assert with_one_way and set(q.list_calls(filled, finding="one_way_audio")["call_id"]) == with_one_way
    low = {c for c, (d, _) in docs.items() if min(g["quality"]["mos"] for g in d["legs"].values()) <= 2.0}
    assert set(q.list_calls(filled, max_mos=2.0, limit=None)["call_id"]) == low
    since, until = datetime(2026, 11, 7, 9, 0), datetime(2026, 11, 7, 10, 0)
    assert set(q.list_calls(filled, since=since, until=until)["call_id"]) == {
        c for c, (_, m) in docs.items() if since <= m["call_time"] < until}
    assert list(q.list_calls(filled, text="1107-0906")["call_id"]) == ["20261107-090628_2407982532"]
    assert list(q.list_calls(filled, text="%")["call_id"]) == []  # LIKE wildcards are escaped
    some = [corpus[1][0].call_id, corpus[7][0].call_id, "not-stored"]
    assert sorted(q.list_calls(filled, call_ids=some)["call_id"]) == sorted(some[:2])
    meta = q.call_metadata(filled, corpus[1][0].call_id)
    assert (meta["agent"], meta["lead_id"], meta["list_id"], meta["source_kind"]) == (
        corpus[1][1]["agent"], corpus[1][1]["lead_id"], 99, "folder")
    assert meta["call_time"] == corpus[1][1]["call_time"]
    with pytest.raises(CallNotFoundError):
        q.call_metadata(filled, "not-stored")
    page = q.list_calls(filled, limit=5, offset=5, order="oldest")
    assert list(page["call_id"]) == sorted(docs)[5:10]
    worst = q.list_calls(filled, order="worst_mos", limit=3)
    assert list(worst["mos_min"]) == sorted(worst["mos_min"])


def _expected(corpus, key_fn):
    """Fleet numbers per key computed directly from the JSON documents (numpy for p10)."""
    groups = defaultdict(list)
    for analysis, meta, _ in corpus:
        groups[key_fn(meta)].append(analysis.as_dict())
    out = {}
    for key, docs in groups.items():
        n = len(docs)
        mos = [min(g["quality"]["mos"] for g in d["legs"].values()) for d in docs]
        codes = [{f["code"] for f in d["findings"]} for d in docs]
        out[key] = {
            "calls": n,
            "call_minutes": sum(d["duration_s"] for d in docs) / 60,
            "mean_mos": float(np.mean(mos)),
            "p10_mos": float(np.quantile(mos, 0.1)),
            "dead_air_s": sum(f["end_s"] - f["start_s"] for d in docs for f in d["findings"] if f["code"] == "dead_air"),
            "one_way_rate": sum("one_way_audio" in c for c in codes) / n,
            "problem_rate": sum(any(f["severity"] in ("warning", "critical") for f in d["findings"]) for d in docs) / n,
            **{f"rate_{code}": sum(code in c for c in codes) / n for code in FINDING_CODES},
        }
    return out


def _check(df, expected, key_columns):
    assert len(df) == len(expected)
    for _, row in df.iterrows():
        key = tuple(row[c] for c in key_columns)
        want = expected[key if len(key) > 1 else key[0]]
        for name, value in want.items():
            assert row[name] == pytest.approx(value, abs=1e-3 if name == "dead_air_s" else 1e-9), (key, name)


def test_fleet_trend_by_hour_and_agent(filled, corpus):
    df = q.fleet_trend(filled, bucket="hour", group_by="agent")
    hour = lambda m: m["call_time"].replace(minute=0, second=0)  # noqa: E731
    _check(df, _expected(corpus, lambda m: (hour(m), m["agent"])), ["bucket", "agent"])
    assert list(df.columns[:3]) == ["bucket", "agent", "calls"]
    assert str(df["bucket"].dtype).startswith("datetime64")


def test_fleet_trend_by_day(filled, corpus):
    df = q.fleet_trend(filled, bucket="day")
    _check(df, _expected(corpus, lambda m: datetime(2026, 11, 7)), ["bucket"])
    assert q.fleet_trend(filled, since="2026-11-08").empty


def test_fleet_trend_by_carrier_keeps_unknown(filled, corpus):
    df = q.fleet_trend(filled, bucket="day", group_by="carrier")
    _check(df, _expected(corpus, lambda m: (datetime(2026, 11, 7), m["carrier"] or q.UNKNOWN)),
           ["bucket", "carrier"])


@pytest.mark.parametrize("by,column", [("agent", "agent"), ("campaign", "campaign"), ("server", "server_ip"),
                                       ("layout", None)])
def test_fleet_groups(filled, corpus, by, column):
    if column is None:
        layouts = {a.call_id: a.layout for a, _, _ in corpus}
        expected = _expected([(a, {**m, "layout": layouts[a.call_id]}, k) for a, m, k in corpus],
                             lambda m: m["layout"])
    else:
        expected = _expected(corpus, lambda m: m[column])
    df = q.fleet_groups(filled, by=by, sort="mean_mos")
    _check(df, expected, [by])
    assert list(df["mean_mos"]) == sorted(df["mean_mos"])  # worst first
    top = q.fleet_groups(filled, by=by, sort="problem_rate", limit=1)
    assert top["problem_rate"].iloc[0] == max(v["problem_rate"] for v in expected.values())


def test_finding_counts_and_status(filled, corpus):
    docs = [a.as_dict() for a, _, _ in corpus]
    df = q.finding_counts(filled)
    want = defaultdict(lambda: [0, set(), 0.0])
    for d in docs:
        for f in d["findings"]:
            w = want[(f["code"], f["severity"])]
            w[0] += 1
            w[1].add(d["call_id"])
            w[2] += f["end_s"] - f["start_s"]
    assert len(df) == len(want)
    for _, row in df.iterrows():
        n, ids, span = want[(row["code"], row["severity"])]
        assert (row["findings"], row["calls"]) == (n, len(ids))
        assert row["duration_s"] == pytest.approx(span, abs=1e-6)
        assert row["call_share"] == pytest.approx(len(ids) / len(docs))
    status = q.store_status(filled)
    assert status["calls"] == len(docs) and status["schema_current"]
    assert status["findings"] == sum(len(d["findings"]) for d in docs)
    assert status["call_minutes"] == pytest.approx(sum(d["duration_s"] for d in docs) / 60, abs=1e-3)
    assert status["first_call_time"] == datetime(2026, 11, 7, 8, 0)
    assert sum(status["by_layout"].values()) == len(docs)


def test_sqlite_and_postgresql_give_the_same_frames(corpus, tmp_path, pg_url):  # noqa: F811
    frames = []
    for url in (str(tmp_path / "a.db"), pg_url):
        with open_store(url) as s:
            for analysis, meta, key in corpus:
                s.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="c", metadata=meta)
            frames.append([
                q.list_calls(s, limit=None).drop(columns="analyzed_at"),
                q.fleet_trend(s, bucket="hour", group_by="campaign"),
                q.fleet_groups(s, by="carrier"),
                q.finding_counts(s),
            ])
    for a, b in zip(*frames, strict=True):
        assert list(a.columns) == list(b.columns)
        assert [str(t) for t in a.dtypes] == [str(t) for t in b.dtypes]
        # same rows in the same order; floats may differ in the last bits (summation order)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, atol=1e-12)


def test_sqlite_file_is_consistent_after_writes(tmp_path, corpus):
    path = tmp_path / "s.db"
    with open_store(str(path)) as s:
        for analysis, meta, key in corpus[:3]:
            s.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="c", metadata=meta)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


def test_a_long_verdict_is_stored_on_every_database(store, corpus):
    """The summary validator allows 200-character verdicts; PostgreSQL enforces the column width."""
    analysis, meta, key = corpus[0]
    store.save_analysis(analysis, cache_key=key, source_kind="folder", source_ref="r", metadata=meta)
    verdict = "Caller leg lost 20 % of its packets in bursts; the agent was fine. " * 3
    verdict = verdict[:200]
    store.save_ai_summary(analysis.call_id, analysis_key=key, model="claude-x", prompt_version="p1",
                          summary="s", verdict=verdict, severity="major", input_tokens=1, output_tokens=1,
                          cost_usd=0.0)
    assert store.get_ai_summary(analysis.call_id, analysis_key=key)["verdict"] == verdict
