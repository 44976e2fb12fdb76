"""The ports of :mod:`core.llm.ports` over the result store and ViciDial, and their composition.

- :class:`StoreSummaryRepository` -- summaries, usage and batches in the store's ``ai_summaries``,
  ``llm_usage`` and ``llm_batches`` tables (through :class:`core.store.ResultStore`);
- :class:`StoreCallReader` -- stored analyses, call search and fleet statistics (SQLAlchemy Core
  over the ``calls`` table);
- :class:`ViciDialContextReader` -- every related ViciDial row (:func:`core.vicidial.call_context`);
- :class:`StoreSqlRunner`, :class:`ViciDialSqlRunner` -- the chat's guarded read-only SQL;
- :func:`build_services` -- the composition root used by the CLI and the dashboard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, case, cast, func, literal, select

from core.config import Settings
from core.errors import CallNotFoundError, StoreError
from core.jsonable import json_value
from core.llm.guardrails import (
    SqlLimits,
    SqlResult,
    run_mysql_readonly,
    run_postgres_readonly,
    run_sqlite_readonly,
)
from core.llm.ports import BatchRecord, CallQuery, StoredCall, SummaryRecord
from core.llm.settings import ClaudeSettings

#: Batch statuses after which nothing is left to collect.
FINAL_BATCH_STATUSES = ("collected", "failed", "canceled")
GROUP_BY = ("day", "agent", "campaign", "carrier", "server_ip", "layout", "hangup_cause")
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}
_META_COLUMNS = ("call_time", "lead_id", "uniqueid", "agent", "campaign", "server_ip", "carrier", "hangup_cause")


# --- store: summaries, usage, batches ----------------------------------------------------------
class StoreSummaryRepository:
    """:class:`~core.llm.ports.SummaryRepository` over a :class:`core.store.ResultStore`."""

    def __init__(self, store) -> None:
        self.store = store

    def get_summary(self, call_id: str, *, analysis_key: str, model: str, prompt_version: str) -> SummaryRecord | None:
        row = self.store.get_ai_summary(call_id, analysis_key=analysis_key, model=model, prompt_version=prompt_version)
        if row is None:
            return None
        return SummaryRecord(
            call_id=row["call_id"], analysis_key=row["analysis_key"], model=row["model"],
            prompt_version=row["prompt_version"], verdict=row["verdict"] or "", severity=row["severity"] or "",
            summary=row["summary"], suspected_cause=row["suspected_cause"] or "",
            input_tokens=int(row["input_tokens"]), output_tokens=int(row["output_tokens"]),
            cost_usd=float(row["cost_usd"]), created_at=row["created_at"],
        )

    def save_summary(self, record: SummaryRecord) -> None:
        self.store.save_ai_summary(
            record.call_id, analysis_key=record.analysis_key, model=record.model,
            prompt_version=record.prompt_version, summary=record.summary, verdict=record.verdict,
            severity=record.severity, suspected_cause=record.suspected_cause, input_tokens=record.input_tokens,
            output_tokens=record.output_tokens, cost_usd=record.cost_usd,
        )

    def record_usage(self, *, day: date, kind: str, model: str, input_tokens: int, output_tokens: int,
                     cost_usd: float, calls: int = 1) -> None:
        self.store.add_llm_usage(day=day, kind=kind, model=model, input_tokens=input_tokens,
                                 output_tokens=output_tokens, cost_usd=cost_usd, calls_count=calls)

    def spend_usd(self, day: date) -> float:
        return self.store.llm_spend_usd(day)

    def save_batch(self, batch_id: str, *, status: str, submitted_count: int) -> None:
        self.store.save_llm_batch(batch_id, status=status, submitted_count=submitted_count)

    def update_batch(self, batch_id: str, *, status: str, finished_at: datetime | None = None,
                     error: str | None = None) -> None:
        self.store.update_llm_batch(batch_id, status=status, finished_at=finished_at, error=error)

    def get_batch(self, batch_id: str) -> BatchRecord | None:
        row = self.store.get_llm_batch(batch_id)
        return _batch(row) if row else None

    def open_batches(self) -> list[BatchRecord]:
        return [_batch(r) for r in self.store.llm_batches() if r["status"] not in FINAL_BATCH_STATUSES]


def _batch(row: dict[str, Any]) -> BatchRecord:
    return BatchRecord(batch_id=row["batch_id"], status=row["status"], submitted_count=int(row["submitted_count"]),
                       created_at=row.get("created_at"), finished_at=row.get("finished_at"), error=row.get("error"))


# --- store: calls --------------------------------------------------------------------------------
class StoreCallReader:
    """:class:`~core.llm.ports.CallReader` over the store's ``calls`` table.

    When ``core.store.queries`` offers equivalent read models, :meth:`search_calls` and
    :meth:`fleet_stats` can delegate to them; the output shape (JSON-ready dicts) stays.
    """

    def __init__(self, store) -> None:
        self.store = store

    @property
    def _calls(self):
        from core.store.schema import calls

        return calls

    def _rows(self, stmt) -> list[dict[str, Any]]:
        try:
            with self.store.engine.connect() as conn:
                return [{k: json_value(v) for k, v in row.items()} for row in conn.execute(stmt).mappings()]
        except StoreError:
            raise
        except Exception as exc:  # SQLAlchemy/driver errors become one line
            raise StoreError(f"reading the store {self.store.display_url} failed: {type(exc).__name__}") from None

    def get_call(self, call_id: str) -> StoredCall:
        """The stored call named by its id or by its opaque reference (``ref-...``)."""
        from core.privacy.refs import is_ref

        c = self._calls
        key = c.c.ref if is_ref(call_id) else c.c.call_id
        stmt = select(c.c.call_id, c.c.ref, c.c.analysis_json, c.c.cache_key, c.c.source_kind, c.c.source_ref,
                      c.c.metadata_json, *[c.c[name] for name in _META_COLUMNS]).where(key == call_id)
        try:
            with self.store.engine.connect() as conn:
                row = conn.execute(stmt).mappings().first()
        except Exception as exc:
            raise StoreError(f"reading call {call_id} from {self.store.display_url} failed: {type(exc).__name__}") from None
        if row is None:
            raise CallNotFoundError(f"call {call_id} is not in the store {self.store.display_url}")
        metadata = {name: json_value(row[name]) for name in _META_COLUMNS if row[name] is not None}
        extra: dict[str, Any] = {}
        if row["metadata_json"]:
            try:
                extra = json.loads(row["metadata_json"]) or {}
            except ValueError:
                extra = {}
        for key, value in extra.items():
            metadata.setdefault(str(key), json_value(value))
        return StoredCall(call_id=row["call_id"], analysis=json.loads(row["analysis_json"]),
                          analysis_key=row["cache_key"], metadata=metadata, ref=row["ref"] or "",
                          recording_id=_recording_id(row["source_kind"], row["source_ref"], extra))

    def refs_for(self, call_ids: list[str]) -> dict[str, str]:
        """``{call_id: ref}`` of the stored calls among ``call_ids`` (500 per query)."""
        c = self._calls
        out: dict[str, str] = {}
        ids = list(dict.fromkeys(str(i) for i in call_ids))
        for start in range(0, len(ids), 500):
            stmt = select(c.c.call_id, c.c.ref).where(c.c.call_id.in_(ids[start:start + 500]), c.c.ref.is_not(None))
            out.update({r["call_id"]: r["ref"] for r in self._rows(stmt)})
        return out

    def search_calls(self, query: CallQuery) -> list[dict[str, Any]]:
        c = self._calls
        when = func.coalesce(c.c.call_time, c.c.analyzed_at)
        stmt = select(c.c.call_id, when.label("call_time"), c.c.agent, c.c.campaign, c.c.carrier, c.c.hangup_cause,
                      c.c.layout, c.c.duration_s, c.c.mos_min, c.c.n_findings, c.c.worst_severity,
                      c.c.finding_codes, c.c.dead_air_s, c.c.one_way)
        if query.since:
            stmt = stmt.where(when >= query.since)
        if query.until:
            stmt = stmt.where(when < query.until)
        for name in ("agent", "campaign", "carrier"):
            value = getattr(query, name)
            if value:
                stmt = stmt.where(c.c[name] == value)
        if query.finding_code:
            stmt = stmt.where((literal(",") + c.c.finding_codes + literal(",")).like(f"%,{query.finding_code},%"))
        if query.min_severity:
            stmt = stmt.where(c.c.severity_rank >= SEVERITY_RANK.get(query.min_severity, 0))
        if query.max_mos is not None:
            stmt = stmt.where(c.c.mos_min <= query.max_mos)
        stmt = stmt.order_by(when.desc(), c.c.call_id).limit(max(1, min(int(query.limit), 100)))
        return self._rows(stmt)

    def fleet_stats(self, *, since: datetime | None, until: datetime | None, group_by: str) -> list[dict[str, Any]]:
        if group_by not in GROUP_BY:
            raise StoreError(f"group_by={group_by!r} must be one of {', '.join(GROUP_BY)}")
        c = self._calls
        when = func.coalesce(c.c.call_time, c.c.analyzed_at)
        if group_by == "day":
            key = func.date(when) if self.store.engine.dialect.name == "sqlite" else cast(when, Date)
        else:
            key = c.c[group_by]
        stmt = select(
            key.label(group_by),
            func.count().label("calls"),
            func.avg(c.c.mos_min).label("avg_mos_min"),
            func.min(c.c.mos_min).label("worst_mos"),
            func.sum(c.c.one_way).label("one_way_calls"),
            func.sum(case((c.c.severity_rank >= 3, 1), else_=0)).label("critical_calls"),
            func.sum(case((c.c.n_findings > 0, 1), else_=0)).label("calls_with_findings"),
            func.avg(c.c.dead_air_s).label("avg_dead_air_s"),
            func.avg(c.c.duration_s).label("avg_duration_s"),
        ).group_by(key).order_by(func.count().desc()).limit(100)
        if since:
            stmt = stmt.where(when >= since)
        if until:
            stmt = stmt.where(when < until)
        rows = self._rows(stmt)
        for row in rows:
            for k, v in row.items():
                if isinstance(v, float):
                    row[k] = round(v, 3)
        return rows

    def call_ids_between(self, *, since: datetime, until: datetime | None, limit: int) -> list[str]:
        c = self._calls
        when = func.coalesce(c.c.call_time, c.c.analyzed_at)
        stmt = select(c.c.call_id).where(when >= since)
        if until:
            stmt = stmt.where(when < until)
        stmt = stmt.order_by(when, c.c.call_id).limit(limit)
        return [r["call_id"] for r in self._rows(stmt)]


def _recording_id(source_kind: str | None, source_ref: str | None, extra: dict[str, Any]) -> int | None:
    value = extra.get("recording_id")
    if value is None and source_kind == "vicidial":
        value = source_ref
    try:
        return int(str(value).strip()) if value is not None and str(value).strip().isdigit() else None
    except ValueError:
        return None


# --- ViciDial ------------------------------------------------------------------------------------
class ViciDialContextReader:
    """:class:`~core.llm.ports.ContextReader` over the read-only ViciDial session."""

    def __init__(self, settings) -> None:
        self.settings = settings  # core.vicidial.ViciDialSettings

    def call_context(self, call: StoredCall) -> dict[str, list[dict[str, Any]]]:
        from core.vicidial import call_context

        if not self.settings.configured or call.recording_id is None:
            return {}
        try:
            return call_context(self.settings, call.recording_id)
        except CallNotFoundError:
            return {}


# --- guarded SQL ---------------------------------------------------------------------------------
class StoreSqlRunner:
    """The chat's SQL over the result store: SQLite ``mode=ro`` + authorizer, or PostgreSQL READ ONLY."""

    name = "store"

    def __init__(self, store_url: str, *, tables: tuple[str, ...], limits: SqlLimits) -> None:
        from core.store.engine import normalize_url, sqlite_path

        self.url = normalize_url(store_url, create_dirs=False)
        self.path = sqlite_path(self.url)
        self.dialect = "sqlite" if self.path is not None else "postgresql"
        self.tables = tables
        self.limits = limits
        self._engine: Any = None

    def run(self, sql: str) -> SqlResult:
        if self.path is not None:
            return run_sqlite_readonly(self.path, sql, allowed_tables=self.tables, limits=self.limits)
        if self._engine is None:
            from core.store.engine import make_engine

            self._engine = make_engine(self.url, read_only=True)
        return run_postgres_readonly(self._engine, sql, allowed_tables=self.tables, limits=self.limits)


class ViciDialSqlRunner:
    """The chat's SQL over ViciDial, through a fresh read-only session per query."""

    name = "vicidial"
    dialect = "mysql"

    def __init__(self, settings, *, tables: tuple[str, ...], limits: SqlLimits) -> None:
        self.settings = settings  # core.vicidial.ViciDialSettings
        self.tables = tables
        self.limits = limits

    def run(self, sql: str) -> SqlResult:
        from core.llm.guardrails import validate_select
        from core.vicidial import connect

        validate_select(sql, allowed_tables=self.tables, dialect="mysql", max_rows=self.limits.max_rows)
        with connect(self.settings) as session:
            return run_mysql_readonly(session, sql, allowed_tables=self.tables, limits=self.limits)


# --- composition ---------------------------------------------------------------------------------
@dataclass
class LLMServices:
    """Everything the Claude features use, built once per process (or per CLI command)."""

    claude: ClaudeSettings
    repo: StoreSummaryRepository
    calls: StoreCallReader
    context: ViciDialContextReader | None
    runners: tuple[Any, ...]
    store: Any = None
    policy: Any = None  # core.privacy.redact.Policy: what personal data Claude may read
    _client: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.policy is None:
            from core.privacy.redact import STRICT

            self.policy = STRICT

    def toolbox(self, *, sql: bool, audit: Any = None):
        """The chat's tools: the call tools, plus the SQL tools when ``sql`` (the admin role)."""
        from core.llm.tools import ToolBox

        return ToolBox(calls=self.calls, runners=self.runners if sql else (), policy=self.policy, audit=audit)

    def client(self):
        """The SDK client (built on first use); raises :class:`~core.errors.LLMNotConfiguredError`."""
        if self._client is None:
            from core.llm.client import make_client

            self._client = make_client(self.claude)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.store is not None:
            self.store.close()


def sql_limits(claude: ClaudeSettings) -> SqlLimits:
    return SqlLimits(max_rows=claude.sql_max_rows, max_bytes=claude.sql_max_bytes, timeout_s=claude.sql_timeout_s)


def build_services(settings: Settings, *, store_url: str, claude: ClaudeSettings | None = None,
                   vicidial=None) -> LLMServices:
    """Open the store and wire the adapters.

    Parameters
    ----------
    settings : Settings
        The loaded configuration.
    store_url : str
        ``Settings.store_url(override)``.
    claude : ClaudeSettings, optional
        Default: read from ``settings`` and the environment.
    vicidial : ViciDialSettings, optional
        Default: read from ``settings``; when not configured there is no ViciDial context or SQL.
    """
    from core.privacy.settings import PrivacySettings
    from core.store import open_store
    from core.vicidial import ViciDialSettings

    claude = claude or ClaudeSettings.from_settings(settings)
    policy = PrivacySettings.from_settings(settings).policy
    vicidial = vicidial if vicidial is not None else ViciDialSettings.from_settings(settings)
    store = open_store(store_url)
    limits = sql_limits(claude)
    runners: list[Any] = [StoreSqlRunner(store_url, tables=claude.store_tables, limits=limits)]
    context = None
    if vicidial.configured:
        context = ViciDialContextReader(vicidial)
        runners.append(ViciDialSqlRunner(vicidial, tables=claude.vicidial_tables, limits=limits))
    return LLMServices(claude=claude, repo=StoreSummaryRepository(store), calls=StoreCallReader(store),
                       context=context, runners=tuple(runners), store=store, policy=policy)
