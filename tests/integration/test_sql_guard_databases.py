"""The chat's SQL guard executed against real databases: SQLite, PostgreSQL and MariaDB.

Every adversarial statement (more than 100 per dialect: the validator's list in
``tests/unit/test_sql_guardrails.py`` plus the functions that run SQL from strings, dump tables,
cast to catalog types, sleep or read files) goes through the real runner the chat uses
(:class:`~core.llm.adapters.StoreSqlRunner`, :class:`~core.llm.adapters.ViciDialSqlRunner`) and
must be refused, quickly, without touching the canary rows. The analyst questions the chat is
for still answer on each database. On PostgreSQL the second layer is checked alone: with the
validator bypassed, the role ``callqa migrate`` creates cannot read tables outside the
allow-list and ``pg_sleep`` is cut by the statement timeout; without the privilege to create
roles, ``callqa migrate`` says what an administrator must run and the chat still works.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.config import AnalysisConfig
from core.errors import QueryRefusedError, StoreError, ViciDialError
from core.llm.adapters import StoreSqlRunner, ViciDialSqlRunner
from core.llm.guardrails import CheckedSql, SqlLimits, execute_postgres_readonly
from core.llm.settings import ClaudeSettings
from core.pipeline import analyze_path
from core.store.engine import make_engine, normalize_url
from core.store.sqlrole import SQL_ROLE
from core.store.store import migrate_store, open_store
from tests.support.postgres import postgres_server, throwaway_database, throwaway_schema
from tests.support.shared import in_ci
from tests.support.signals import write
from tests.support.vicidial_fixture import vicidial_database
from tests.unit.test_sql_guardrails import ADVERSARIAL

LIMITS = SqlLimits(max_rows=50, max_bytes=20_000, timeout_s=2.0)
SECRET = "TOP-SECRET-9f3e"
STORE_TABLES = ClaudeSettings().store_tables
VICI_TABLES = ClaudeSettings().vicidial_tables

EXTRA = [
    # run SQL given as a string, or dump whole tables (the bypasses of issue #18)
    "SELECT ts_stat('SELECT to_tsvector(owner) FROM claims')",
    "SELECT table_to_xml_and_xmlschema('app_secrets', true, false, '')",
    "SELECT table_to_xml('claims', true, false, '') FROM calls",
    "SELECT query_to_xml('SELECT * FROM app_secrets', true, false, '')",
    "SELECT query_to_xml_and_xmlschema('SELECT 1', true, false, '')",
    "SELECT database_to_xml(true, false, '')",
    "SELECT xpath('/row', query_to_xml('SELECT 1', true, false, ''))",
    "SELECT ts_rewrite('a'::tsquery, 'SELECT 1')",
    "SELECT public.ts_stat('SELECT 1')",
    'SELECT "ts_stat"(\'SELECT 1\')',
    'SELECT "TABLE_TO_XML"(\'claims\', true, false, \'\')',
    # time, locks, files, server identity
    "SELECT pg_sleep_for('5 seconds')", "SELECT pg_read_file('/etc/passwd')", "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')", "SELECT current_setting('data_directory')",
    "SELECT set_config('role', 'postgres', true)", "SELECT version()", "SELECT inet_server_addr()",
    "SELECT pg_backend_pid()", "SELECT txid_current()", "SELECT pg_advisory_lock(1)", "SELECT dblink('a', 'b')",
    "SELECT current_schema", "SELECT CURRENT_CATALOG", "SELECT session_user", "SELECT pg_catalog.now()",
    # casts and typed literals that run a catalog type's input function
    "SELECT 'claims'::regclass", "SELECT CAST('claims' AS regclass)", "SELECT regclass 'claims'",
    "SELECT \"regclass\" 'claims'", "SELECT 'app_secrets'::regclass::oid", "SELECT 'x'::xml",
    "SELECT CAST(1 AS regproc)",
    # huge values, table functions, other tables
    "SELECT generate_series(1, 100000000)", "SELECT * FROM generate_series(1, 10)",
    "SELECT lpad('x', 1000000000)", "SELECT rpad('x', 1000000000)", "SELECT to_tsvector('x') FROM calls",
    "SELECT format('%s', 1)", "SELECT xmlparse(document '<a/>')", "SELECT row_to_json(c) FROM claims c",
    "SELECT array_to_string(ARRAY(SELECT owner FROM claims), ',') FROM calls",
    # MySQL / MariaDB
    "SELECT extractvalue(1, concat(0x5c, version()))", "SELECT updatexml(1, concat(0x7e, user()), 1)",
    "SELECT uuid()", "SELECT @@hostname", "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) t",
    "SELECT sys_eval('id')", "SELECT * FROM calls PROCEDURE ANALYSE()", "HANDLER calls OPEN",
    "SELECT CONVERT(call_id USING utf8) FROM calls", "SELECT master_pos_wait('x', 1)",
    "SELECT name_const('a', 1)", "SELECT load_file(0x2f6574632f706173737764)", "SELECT sleep(0.5) FROM calls",
    "SELECT benchmark(10000000, sha1('x'))",
    # SQLite
    "SELECT sqlite_version()", "SELECT readfile('/etc/passwd')", "SELECT writefile('/tmp/x', 'y')",
    "SELECT fts3_tokenizer('simple')", "SELECT zeroblob(1000000000)", "SELECT printf('%.*c', 1000000000, 'x')",
    "SELECT * FROM pragma_database_list", "SELECT * FROM sqlite_dbpage", "SELECT value FROM json_each('[1]')",
    "SELECT sqlite_compileoption_used('x')", "SELECT total_changes()", "SELECT changes()",
    "SELECT last_insert_rowid()", "SELECT load_extension('/tmp/x.so', 'entry')", "SELECT secret FROM app_secrets",
]
STATEMENTS = [sql for _, sql in ADVERSARIAL] + EXTRA
_MYSQL_NAMES = {"calls": "vicidial_log", "findings": "vicidial_carrier_log", "claims": "vicidial_users",
                "watermarks": "servers", "app_secrets": "vicidial_users"}


def for_dialect(sql: str, dialect: str) -> str:
    """The statement with the store's table names swapped for ViciDial's on MySQL."""
    if dialect != "mysql":
        return sql
    return re.sub(r"\b(calls|findings|claims|watermarks|app_secrets)\b", lambda m: _MYSQL_NAMES[m.group(1)], sql)


ANALYST = {
    "common": [
        "SELECT layout, COUNT(*) AS n FROM calls GROUP BY layout",
        "SELECT COUNT(*) AS n, AVG(duration_s) AS avg_s, MAX(duration_s) AS longest FROM calls",
        "WITH t AS (SELECT call_id, duration_s FROM calls) SELECT ROUND(CAST(SUM(duration_s) AS NUMERIC), 1) AS total "
        "FROM t",
        "SELECT c.call_id, COUNT(f.code) AS n FROM calls c LEFT JOIN findings f ON f.call_id = c.call_id "
        "GROUP BY c.call_id ORDER BY n DESC",
        "SELECT call_id, ROW_NUMBER() OVER (ORDER BY duration_s DESC) AS r FROM calls",
        "SELECT SUM(CASE WHEN n_findings > 0 THEN 1 ELSE 0 END) AS with_findings FROM calls",
        "SELECT leg, COUNT(*) AS n FROM tracks GROUP BY leg",
        "SELECT call_id, CAST(duration_s AS integer) AS s FROM calls",
        "SELECT COALESCE(agent, 'unknown') AS agent, COUNT(*) AS n FROM calls GROUP BY COALESCE(agent, 'unknown')",
    ],
    "sqlite": ["SELECT strftime('%Y-%m-%d', analyzed_at) AS day, COUNT(*) AS n FROM calls GROUP BY day",
               "SELECT date(analyzed_at) AS day, COUNT(*) AS n FROM calls GROUP BY day"],
    "postgresql": ["SELECT date_trunc('day', analyzed_at) AS day, COUNT(*) AS n FROM calls GROUP BY 1",
                   "SELECT duration_s::numeric(6,1) AS s, to_char(analyzed_at, 'YYYY-MM-DD') AS d FROM calls",
                   "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS median FROM calls",
                   "SELECT string_agg(call_id, ',') AS ids FROM calls"],
    "mysql": ["SELECT user, COUNT(*) AS n FROM vicidial_log GROUP BY user",
              "SELECT DATE(call_date) AS d, COUNT(*) AS n FROM vicidial_log GROUP BY d",
              "SELECT campaign_id, AVG(length_in_sec) AS avg_s FROM vicidial_log GROUP BY campaign_id",
              "SELECT HOUR(call_date) AS h, IF(length_in_sec > 60, 'long', 'short') AS kind FROM vicidial_log",
              "SELECT channel, COUNT(*) AS n FROM vicidial_carrier_log GROUP BY channel",
              "SELECT r.recording_id, r.filename FROM recording_log r ORDER BY r.recording_id DESC LIMIT 5"],
}


def test_at_least_100_adversarial_statements() -> None:
    assert len(set(STATEMENTS)) >= 100 + 50


# --- fixtures: one store per database, with a canary and a secret table ---------------------------
def _seed_store(url: str, tmp: Path) -> None:
    """One real analysis in the store, a claims row and a table the chat must never read."""
    store = open_store(url)
    t = np.arange(4 * 8000) / 8000
    rec = write(tmp / "20261205-090000_5551230000-all.wav",
                0.2 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 0.4 * t) > 0), sample_rate=8000)
    store.save_analysis(analyze_path(rec, cfg=AnalysisConfig()), cache_key="c" * 64, source_kind="folder",
                        source_ref=str(rec))
    with store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE app_secrets (secret TEXT)")
        conn.exec_driver_sql(f"INSERT INTO app_secrets VALUES ('{SECRET}')")
        conn.exec_driver_sql(f"INSERT INTO claims (call_id, cache_key, owner, claimed_at, expires_at) VALUES "
                             f"('x', 'k', '{SECRET}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
    store.close()


@pytest.fixture(scope="module")
def sqlite_runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StoreSqlRunner, str]]:
    tmp = tmp_path_factory.mktemp("guard-sqlite")
    url = str(tmp / "store.db")
    _seed_store(url, tmp)
    yield StoreSqlRunner(url, tables=STORE_TABLES, limits=LIMITS), url


@pytest.fixture(scope="module")
def pg_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StoreSqlRunner, str]]:
    server = postgres_server()
    if server is None:
        message = "no PostgreSQL on 127.0.0.1:5432 and none could be started"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    with throwaway_database(server, prefix="callqa_guard") as db_url, throwaway_schema(server, db_url) as url:
        status: list = []
        migrate_store(url, sql_role_tables=STORE_TABLES, role_status=status)
        assert status[0].ok, status[0].message  # the test server's user may create roles
        _seed_store(url, tmp_path_factory.mktemp("guard-pg"))
        yield StoreSqlRunner(url, tables=STORE_TABLES, limits=LIMITS), url


@pytest.fixture(scope="module")
def vici_runner() -> Iterator[tuple[ViciDialSqlRunner, object]]:
    with vicidial_database() as fixture:
        yield ViciDialSqlRunner(fixture.settings, tables=VICI_TABLES, limits=LIMITS), fixture


def _runner(request: pytest.FixtureRequest, dialect: str):
    return request.getfixturevalue({"sqlite": "sqlite_runner", "postgresql": "pg_store",
                                    "mysql": "vici_runner"}[dialect])[0]


def _canary(request: pytest.FixtureRequest, dialect: str) -> tuple:
    """Counts that any write would change."""
    if dialect == "sqlite":
        conn = sqlite3.connect(request.getfixturevalue("sqlite_runner")[1])
        try:
            return tuple(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                         for t in ("calls", "findings", "claims", "app_secrets"))
        finally:
            conn.close()
    if dialect == "postgresql":
        engine = make_engine(normalize_url(request.getfixturevalue("pg_store")[1]))
        try:
            with engine.connect() as conn:
                return tuple(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar()
                             for t in ("calls", "findings", "claims", "app_secrets"))
        finally:
            engine.dispose()
    fixture = request.getfixturevalue("vici_runner")[1]
    conn = fixture.admin()
    try:
        with conn.cursor() as cur:
            out = []
            for t in ("vicidial_log", "vicidial_users", "recording_log"):
                cur.execute(f"SELECT COUNT(*) AS n FROM {t}")
                row = cur.fetchone()
                out.append(row["n"] if isinstance(row, dict) else row[0])
            return tuple(out)
    finally:
        conn.close()


# --- every adversarial statement is refused, on every database ------------------------------------
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_every_adversarial_statement_is_refused_by_the_real_runner(request: pytest.FixtureRequest,
                                                                   dialect: str) -> None:
    runner = _runner(request, dialect)
    before = _canary(request, dialect)
    accepted, slow, refused, unparsable = [], [], [], []
    for sql in dict.fromkeys(STATEMENTS):
        text = for_dialect(sql, dialect)
        started = time.monotonic()
        try:
            result = runner.run(text)
        except QueryRefusedError as exc:
            assert str(exc).startswith("query refused: ")
            assert SECRET.lower() not in str(exc).lower()
            refused.append(text)
        except (StoreError, ViciDialError) as exc:
            # a statement written for another dialect that this database cannot even parse
            # (SQLite reading "regclass" as a column): refused by the database, nothing returned
            assert re.search(r"syntax|no such column|Unknown column|does not exist", str(exc)), (text, str(exc))
            unparsable.append(text)
        else:
            accepted.append((text, result.rows[:2]))
        if time.monotonic() - started > 1.0:
            slow.append(text)
    assert not accepted, accepted
    assert not slow, slow  # nothing slept or spun
    assert len(refused) >= 100 + 40 and len(unparsable) <= 3, (len(refused), unparsable)
    assert _canary(request, dialect) == before


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_analyst_questions_still_answer(request: pytest.FixtureRequest, dialect: str) -> None:
    runner = _runner(request, dialect)
    questions = ANALYST[dialect] + ([] if dialect == "mysql" else ANALYST["common"])
    for sql in questions:
        result = runner.run(sql)
        assert result.row_count >= 1, sql
        assert SECRET not in str(result.rows)


# --- PostgreSQL: the role is a layer of its own ---------------------------------------------------
@pytest.mark.parametrize("sql", [
    "SELECT ts_stat('SELECT to_tsvector(owner) FROM claims')",
    "SELECT table_to_xml_and_xmlschema('app_secrets', true, false, '')",
    "SELECT query_to_xml('SELECT * FROM app_secrets', true, false, '')",
    "SELECT secret FROM app_secrets",
    "SELECT owner FROM claims",
])
def test_postgres_role_denies_unlisted_tables_even_without_the_validator(pg_store, sql: str) -> None:
    _, url = pg_store
    engine = make_engine(normalize_url(url), read_only=True)
    try:
        with pytest.raises(QueryRefusedError, match="denied by the database role") as refused:
            execute_postgres_readonly(engine, CheckedSql(sql, ()), limits=LIMITS)
        assert SECRET.lower() not in str(refused.value).lower()
        # the same statement as the store user reads the secret (ts_stat lower-cases it): the role stopped it
        with engine.connect() as conn:
            assert SECRET.lower() in str(conn.exec_driver_sql(sql).fetchall()).lower()
    finally:
        engine.dispose()


def test_postgres_role_has_a_statement_timeout_and_cannot_write(pg_store) -> None:
    _, url = pg_store
    engine = make_engine(normalize_url(url), read_only=True)
    try:
        started = time.monotonic()
        with pytest.raises(QueryRefusedError, match="statement timeout"):
            execute_postgres_readonly(engine, CheckedSql("SELECT pg_sleep(30)", ()), limits=SqlLimits(timeout_s=0.5))
        assert time.monotonic() - started < 5
        with pytest.raises(QueryRefusedError):
            execute_postgres_readonly(engine, CheckedSql("DELETE FROM calls", ()), limits=LIMITS)
        with engine.connect() as conn:
            row = conn.exec_driver_sql("SELECT rolcanlogin, rolsuper, rolconfig FROM pg_roles WHERE rolname = %(r)s",
                                       {"r": SQL_ROLE}).one()
        assert row[0] is False and row[1] is False and any("statement_timeout" in c for c in row[2])
    finally:
        engine.dispose()


def test_postgres_without_createrole_migrate_explains_and_chat_still_works(pg_store) -> None:
    server = postgres_server()
    assert server is not None
    _, url = pg_store
    database = url.split("?")[0].rsplit("/", 1)[1]
    user, schema = f"callqa_plain_{uuid.uuid4().hex[:6]}", f"plain_{uuid.uuid4().hex[:6]}"
    with server.connect(database) as conn:
        conn.execute(f'CREATE ROLE "{user}" LOGIN NOCREATEROLE')
        conn.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{user}"')
    plain_url = f"postgresql://{user}@{server.host}:{server.port}/{database}?options=-csearch_path%3D{schema}"
    try:
        status: list = []
        migrate_store(plain_url, sql_role_tables=STORE_TABLES, role_status=status)
        assert not status[0].ok
        assert "As an administrator, run:" in status[0].message and f"GRANT SELECT ON \"{schema}\".\"calls\"" in \
            status[0].message
        runner = StoreSqlRunner(plain_url, tables=STORE_TABLES, limits=LIMITS)
        assert runner.run("SELECT COUNT(*) AS n FROM calls").rows == ({"n": 0},)
        with pytest.raises(QueryRefusedError):
            runner.run("SELECT ts_stat('SELECT 1')")
    finally:
        with server.connect(database) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'DROP OWNED BY "{user}"')
            conn.execute(f'DROP ROLE IF EXISTS "{user}"')
