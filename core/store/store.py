"""The result store, write side: analyses, errors, claims, watermarks, queue records and the Claude tables.

:func:`open_store` opens (and by default migrates) a store named by a SQLite path or a
PostgreSQL URL; :class:`ResultStore` writes each analysis in one transaction and reads it back
exactly as ``callqa analyze --json`` printed it. Dashboard queries live in
:mod:`core.store.queries`.

Concurrency: several scanner processes may write one store. On SQLite every write transaction
takes the write lock up front (``BEGIN IMMEDIATE``) and waits on the busy timeout; on PostgreSQL
a transaction-scoped advisory lock per call serialises two writers of the same call. Claims
(:meth:`ResultStore.try_claim`) keep two scanners from analysing the same call at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from core.errors import CallNotFoundError, StoreError
from core.results import SEVERITIES, CallAnalysis
from core.store import migrations
from core.store.engine import (
    check_connection,
    first_line,
    make_engine,
    normalize_url,
    redact_url,
    sqlite_path,
    write_transaction,
)
from core.store.schema import (
    ANALYSIS_CHILDREN,
    ai_summaries,
    analysis_errors,
    call_warnings,
    calls,
    claims,
    dead_letters,
    findings,
    llm_batches,
    llm_usage,
    quality_windows,
    silences,
    speech_segments,
    task_attempts,
    tracks,
    watermarks,
)

SOURCE_KINDS = ("folder", "vicidial", "file")
#: :meth:`ResultStore.fresh` without a quality-model condition.
ANY_MODEL = object()
#: Metadata keys stored in their own ``calls`` column; any other key goes to ``metadata_json``.
METADATA_COLUMNS = ("call_time", "lead_id", "uniqueid", "agent", "campaign", "server_ip", "carrier",
                    "hangup_cause", "ingroup")
_METADATA_ALIASES = {"user": "agent", "campaign_id": "campaign"}
_LEG_COLUMNS = {"stats", "silences", "speech", "speech_ratio", "quality", "quality_reason", "sample_rate",
                "encoding", "source", "speech_level_db", "noise_floor_db", "snr_db", "dropouts"}
_QUALITY_SCORES = ("mos", "noisiness", "discontinuity", "coloration", "loudness")


def utcnow() -> datetime:
    """Now in UTC without a zone (how every ``*_at`` column is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def open_store(url: str, *, migrate: bool = True, read_only: bool = False) -> ResultStore:
    """Open the result store at ``url``, applying pending migrations unless told not to.

    Parameters
    ----------
    url : str
        A SQLite path (parent folders are created), a ``sqlite:///`` URL or a
        ``postgresql://`` URL; usually ``Settings.store_url(override)``.
    migrate : bool
        Apply pending migrations first (ignored when ``read_only``).
    read_only : bool
        Open for reading only (the dashboard); the schema must already be current.

    Raises
    ------
    StoreError
        The store cannot be reached, a migration fails, or the schema is not the one this
        version of callqa expects (the message says to run ``callqa migrate``).
    """
    normalized = normalize_url(url, create_dirs=not read_only)
    display = redact_url(normalized)
    engine = make_engine(normalized, read_only=read_only)
    check_connection(engine, display_url=display)
    store = ResultStore(engine, display_url=display)
    try:
        if migrate and not read_only:
            store.migrate()
        else:
            store.check_schema()
    except BaseException:
        store.close()
        raise
    return store


def open_reader(url: str) -> ResultStore:
    """Open the store for commands that only read it (``callqa calls``, ``callqa show``).

    Read-only when its schema is current, so a store on a read-only filesystem (a mounted
    backup, a replica) can be listed and shown; a store with an older schema is migrated
    first and a SQLite file that does not exist yet is created, as :func:`open_store` does.

    Raises
    ------
    StoreError
        As :func:`open_store`.
    """
    normalized = normalize_url(url, create_dirs=False)
    path = sqlite_path(normalized)
    if path is not None and not path.is_file():
        return open_store(url)
    display = redact_url(normalized)
    engine = make_engine(normalized, read_only=True)
    check_connection(engine, display_url=display)
    store = ResultStore(engine, display_url=display)
    try:
        current = store.revision()
    except BaseException:
        store.close()
        raise
    if current == migrations.head_revision():
        return store
    store.close()
    return open_store(url)


def migrate_store(url: str, *, sql_role_tables=None, role_status: list | None = None) -> tuple[str, str | None, str]:
    """Apply pending migrations to the store at ``url``.

    Parameters
    ----------
    url : str
        The store.
    sql_role_tables : iterable of str, optional
        On PostgreSQL, also create or update the chat's read-only role for these tables
        (:func:`core.store.sqlrole.ensure_sql_role`); its :class:`~core.store.sqlrole.RoleStatus`
        is appended to ``role_status``.

    Returns
    -------
    tuple of (str, str or None, str)
        The store URL without password, the revision before (None: empty store) and after.
    """
    normalized = normalize_url(url)
    display = redact_url(normalized)
    engine = make_engine(normalized)
    check_connection(engine, display_url=display)
    with ResultStore(engine, display_url=display) as store:
        before, after = store.migrate()
        if sql_role_tables is not None:
            from core.store.sqlrole import ensure_sql_role

            status = ensure_sql_role(engine, sql_role_tables)
            if role_status is not None:
                role_status.append(status)
    return display, before, after


class ResultStore:
    """Stored analyses and everything kept beside them. Build with :func:`open_store`."""

    def __init__(self, engine, *, display_url: str) -> None:
        self.engine = engine
        self.display_url = display_url

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ResultStore({self.display_url!r})"

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.display_url}: {action} failed: {first_line(exc)}") from None

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def migrate(self) -> tuple[str | None, str]:
        """Apply pending migrations; return the revisions before and after."""
        try:
            return migrations.upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.display_url}: migration failed: {first_line(exc)}") from None
        except Exception as exc:
            if not type(exc).__module__.startswith("alembic"):
                raise
            if "Can't locate revision" in str(exc):
                raise StoreError(
                    f"store {self.display_url} has a newer schema than this callqa knows "
                    f"(head {migrations.head_revision()}): upgrade callqa") from None
            raise StoreError(f"store {self.display_url}: migration failed: {exc}") from None

    def revision(self) -> str | None:
        """The migration recorded in the store (None when it was never migrated)."""
        with self._guard("reading the schema version"), self._read() as conn:
            return migrations.current_revision(conn)

    def check_schema(self) -> None:
        """Raise :class:`StoreError` unless the store's schema is the current one."""
        current, head = self.revision(), migrations.head_revision()
        if current != head:
            state = "has no schema" if current is None else f"is at schema {current}, this callqa needs {head}"
            raise StoreError(f"store {self.display_url} {state}: run `callqa migrate`")

    # --- analyses --------------------------------------------------------------------------
    def save_analysis(
        self,
        analysis: CallAnalysis,
        *,
        cache_key: str,
        source_kind: str,
        source_ref: str,
        metadata: Mapping[str, Any] | None = None,
        fetched_at: datetime | None = None,
    ) -> bool:
        """Store one call's analysis, replacing any previous analysis of that call.

        Parameters
        ----------
        analysis : CallAnalysis
            The result of :func:`core.pipeline.analyze_call`; stored as its ``as_dict()`` JSON
            and in rows.
        cache_key : str
            :func:`core.store.cachekey.cache_key` of the analysed recordings.
        source_kind : str
            ``folder``, ``vicidial`` or ``file``.
        source_ref : str
            Where the recording came from (a path, a recording id...).
        metadata : mapping, optional
            ViciDial metadata: ``call_time`` (datetime or ISO text, local wall-clock time; when
            never given, the local time the call is first stored),
            ``lead_id``, ``uniqueid``, ``agent`` (or ``user``), ``campaign`` (or
            ``campaign_id``), ``server_ip``, ``carrier``, ``hangup_cause``; other keys are kept
            in ``metadata_json``.
        fetched_at : datetime, optional
            When a remote recording was fetched (UTC), for the re-fetch TTL.

        Metadata is about the call, not the analysis: when an analysis is replaced, metadata
        not given this time is kept from before.

        Returns
        -------
        bool
            False when the call is already stored with this ``cache_key`` (and, for a split mix,
            the same voices: ``attribution.voices``), so nothing changes except ``fetched_at``;
            True when the analysis was written.
        """
        if source_kind not in SOURCE_KINDS:
            raise StoreError(f"unknown source kind {source_kind!r}; one of {', '.join(SOURCE_KINDS)}")
        doc = analysis.as_dict()
        doc_text = json.dumps(doc, ensure_ascii=False, default=str)
        doc = json.loads(doc_text)  # exactly what is stored, so rows and JSON agree
        call_id = doc["call_id"]
        row = _call_row(doc, doc_text, cache_key=cache_key, source_kind=source_kind, source_ref=source_ref,
                        metadata=metadata, fetched_at=fetched_at)
        with self._guard(f"saving call {call_id}"), write_transaction(self.engine) as conn:
            self._lock_call(conn, call_id)
            previous = conn.execute(select(calls.c.cache_key, calls.c.voice_key, calls.c.metadata_json,
                                           *(calls.c[c] for c in METADATA_COLUMNS))
                                    .where(calls.c.call_id == call_id)).mappings().first()
            # same bytes and inputs: nothing to write (a split mix also needs the same voices)
            if previous is not None and previous["cache_key"] == cache_key and previous["voice_key"] == row["voice_key"]:
                if fetched_at is not None:
                    conn.execute(update(calls).where(calls.c.call_id == call_id)
                                 .values(fetched_at=_naive_utc(fetched_at)))
                return False
            for child in ANALYSIS_CHILDREN:
                conn.execute(delete(child).where(child.c.call_id == call_id))
            if previous is not None:
                _keep_metadata(row, previous)
            if row["call_time"] is None:
                row["call_time"] = datetime.now().replace(microsecond=0)
            if previous is None:
                from core.privacy.refs import new_ref

                conn.execute(insert(calls).values({**row, "ref": new_ref()}))
            else:
                conn.execute(update(calls).where(calls.c.call_id == call_id).values(row))
            for table, rows in _child_rows(doc).items():
                if rows:
                    conn.execute(insert(table), rows)
            conn.execute(delete(analysis_errors).where(analysis_errors.c.call_id == call_id))
        return True

    def _lock_call(self, conn: Connection, call_id: str) -> None:
        """Serialise writers of one call on PostgreSQL (SQLite already holds the write lock)."""
        if conn.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.blake2b(call_id.encode(), digest_size=8).digest(), "big", signed=True)
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def cached(self, call_id: str, cache_key: str) -> bool:
        """True when ``call_id`` is stored with exactly this cache key."""
        return self.stored_key(call_id) == cache_key

    def voice_key(self, call_id: str) -> str | None:
        """The voices a stored mixed call was split with (None: not a split mix, or not stored)."""
        with self._guard("reading a voice key"), self._read() as conn:
            return conn.execute(select(calls.c.voice_key).where(calls.c.call_id == call_id)).scalar()

    def stored_key(self, call_id: str) -> str | None:
        """The cache key of the stored analysis of ``call_id`` (None when not stored)."""
        with self._guard("reading the cache"), self._read() as conn:
            return conn.execute(select(calls.c.cache_key).where(calls.c.call_id == call_id)).scalar()

    def fresh(self, call_id: str, *, max_age_s: float, now: datetime | None = None,
              quality_model: str | None | object = ANY_MODEL) -> bool:
        """True when ``call_id`` is stored and was fetched (or analysed) less than ``max_age_s`` ago.

        For remote recordings, which can be rewritten or truncated after the fact: within the TTL
        a scan skips the call without fetching it again. With ``quality_model`` (an identity, or
        None for unscored), only an analysis scored by that model counts.
        """
        with self._guard("reading the cache"), self._read() as conn:
            row = conn.execute(select(calls.c.fetched_at, calls.c.analyzed_at, calls.c.quality_model)
                               .where(calls.c.call_id == call_id)).first()
        if row is None:
            return False
        if quality_model is not ANY_MODEL and row.quality_model != quality_model:
            return False
        seen = row.fetched_at or row.analyzed_at
        return (now or utcnow()) - seen < timedelta(seconds=max_age_s)

    def touch_fetched(self, call_id: str, *, fetched_at: datetime | None = None) -> None:
        """Record that a remote recording was fetched again and found unchanged (restarts its TTL)."""
        with self._guard(f"updating call {call_id}"), write_transaction(self.engine) as conn:
            conn.execute(update(calls).where(calls.c.call_id == call_id)
                         .values(fetched_at=_naive_utc(fetched_at) if fetched_at else utcnow()))

    def has_call(self, call_id: str) -> bool:
        return self.stored_key(call_id) is not None

    def get_analysis(self, call_id: str) -> dict[str, Any]:
        """The stored ``callqa analyze --json`` document of ``call_id``.

        Raises
        ------
        CallNotFoundError
            No analysis of ``call_id`` is stored.
        """
        with self._guard(f"reading call {call_id}"), self._read() as conn:
            doc = conn.execute(select(calls.c.analysis_json).where(calls.c.call_id == call_id)).scalar()
        if doc is None:
            raise CallNotFoundError(f"call {call_id} is not in the store {self.display_url}")
        return json.loads(doc)

    def save_error(self, call_id: str, *, cache_key: str, source_ref: str, reason: str,
                   source_kind: str = "folder") -> None:
        """Record that analysing ``call_id`` (these bytes: ``cache_key``) failed, and why.

        A previous analysis of the call, if any, is kept. The error is cleared when the call is
        next analysed successfully.
        """
        values = {"call_id": call_id, "cache_key": cache_key, "source_kind": source_kind,
                  "source_ref": source_ref, "reason": reason, "created_at": utcnow()}
        with self._guard(f"saving the error of call {call_id}"), write_transaction(self.engine) as conn:
            _upsert(conn, analysis_errors, values, keys=("call_id", "cache_key"))

    def known_error(self, call_id: str, cache_key: str) -> str | None:
        """The reason analysing these exact bytes of ``call_id`` failed before, or None."""
        with self._guard("reading errors"), self._read() as conn:
            return conn.execute(select(analysis_errors.c.reason).where(
                analysis_errors.c.call_id == call_id, analysis_errors.c.cache_key == cache_key)).scalar()

    # --- claims ----------------------------------------------------------------------------
    def try_claim(self, call_id: str, cache_key: str, owner: str, ttl_s: float, *,
                  take_over: str | None = None) -> bool:
        """Claim ``call_id`` for ``owner`` for ``ttl_s`` seconds; False when another owner holds it.

        A claim that expired, or one already held by ``owner`` (or by ``take_over``: a queue
        worker taking over the claim its task was enqueued with), is taken over.
        """
        now = utcnow()
        values = {"call_id": call_id, "cache_key": cache_key, "owner": owner, "claimed_at": now,
                  "expires_at": now + timedelta(seconds=ttl_s)}
        mine = [claims.c.owner == owner] + ([claims.c.owner == take_over] if take_over else [])
        with self._guard(f"claiming call {call_id}"), write_transaction(self.engine) as conn:
            _upsert(conn, claims, values, keys=("call_id",),
                    where=or_(claims.c.expires_at < now, *mine))
            holder = conn.execute(select(claims.c.owner).where(claims.c.call_id == call_id)).scalar()
        return holder == owner

    def release(self, call_id: str, owner: str) -> None:
        """Drop ``owner``'s claim on ``call_id`` (no-op when it holds none)."""
        with self._guard(f"releasing call {call_id}"), write_transaction(self.engine) as conn:
            conn.execute(delete(claims).where(claims.c.call_id == call_id, claims.c.owner == owner))

    def release_owner(self, owner: str) -> int:
        """Drop every claim of ``owner`` (a scanner that died); return how many."""
        with self._guard("releasing claims"), write_transaction(self.engine) as conn:
            return conn.execute(delete(claims).where(claims.c.owner == owner)).rowcount

    def claim_owners(self) -> list[str]:
        """Owners currently holding claims."""
        with self._guard("reading claims"), self._read() as conn:
            return list(conn.execute(select(claims.c.owner).distinct()).scalars())

    def claim_holder(self, call_id: str) -> str | None:
        """Who holds an unexpired claim on ``call_id``."""
        with self._guard("reading claims"), self._read() as conn:
            return conn.execute(select(claims.c.owner).where(
                claims.c.call_id == call_id, claims.c.expires_at >= utcnow())).scalar()

    # --- task queue: dead letters, delivery attempts, activity -----------------------------
    def save_dead_letter(self, *, task_id: str, task: str, queue: str, call_id: str, reason: str,
                         attempts: int, payload: Mapping[str, Any], source_kind: str | None = None,
                         source_ref: str | None = None) -> None:
        """Record that the queued task ``task_id`` gave up on ``call_id`` (replacing an earlier record
        of the same task).

        ``payload`` is the task's keyword arguments (JSON-ready), kept to enqueue it again.
        """
        values = {"task_id": task_id, "task": task, "queue": queue, "call_id": call_id,
                  "source_kind": source_kind, "source_ref": source_ref, "reason": reason,
                  "attempts": int(attempts), "created_at": utcnow(),
                  "payload_json": json.dumps(payload, ensure_ascii=False, default=str, sort_keys=True)}
        with self._guard(f"saving the dead letter of call {call_id}"), write_transaction(self.engine) as conn:
            _upsert(conn, dead_letters, values, keys=("task_id",))

    def dead_letters(self, *, limit: int | None = 100, call_id: str | None = None) -> list[dict[str, Any]]:
        """Dead letters, newest first, with ``payload`` decoded (``limit=None``: all of them)."""
        stmt = select(dead_letters).order_by(dead_letters.c.created_at.desc(), dead_letters.c.id.desc())
        if call_id is not None:
            stmt = stmt.where(dead_letters.c.call_id == call_id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._guard("reading dead letters"), self._read() as conn:
            rows = [dict(r) for r in conn.execute(stmt).mappings()]
        for row in rows:
            row["payload"] = json.loads(row.pop("payload_json"))
        return rows

    def count_dead_letters(self) -> int:
        with self._guard("reading dead letters"), self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(dead_letters)).scalar() or 0)

    def delete_dead_letter(self, dead_letter_id: int) -> bool:
        """Remove one dead letter (it was enqueued again); False when it was already gone."""
        with self._guard("deleting a dead letter"), write_transaction(self.engine) as conn:
            return conn.execute(delete(dead_letters).where(dead_letters.c.id == dead_letter_id)).rowcount > 0

    def start_attempt(self, task_id: str, call_id: str) -> int:
        """Count one more delivery of ``task_id`` starting; return how many started without
        :meth:`end_attempt` (1 = this one: every earlier delivery ended cleanly)."""
        values = {"task_id": task_id, "call_id": call_id, "attempts": 1, "updated_at": utcnow()}
        with self._guard(f"recording an attempt on call {call_id}"), write_transaction(self.engine) as conn:
            stmt = _dialect_insert(conn, task_attempts).values(values)
            stmt = stmt.on_conflict_do_update(index_elements=["task_id"],
                                              set_={"attempts": task_attempts.c.attempts + 1,
                                                    "updated_at": stmt.excluded.updated_at})
            conn.execute(stmt)
            return int(conn.execute(select(task_attempts.c.attempts)
                                    .where(task_attempts.c.task_id == task_id)).scalar_one())

    def end_attempt(self, task_id: str) -> None:
        """The delivery of ``task_id`` ended (stored, failed, retried later or dead-lettered)."""
        with self._guard("clearing an attempt"), write_transaction(self.engine) as conn:
            conn.execute(delete(task_attempts).where(task_attempts.c.task_id == task_id))

    def activity_since(self, since: datetime) -> dict[str, float]:
        """What was stored since ``since`` (UTC): ``analysed`` calls, their ``audio_s`` and ``failed``
        calls (errors recorded), for throughput figures."""
        since = _naive_utc(since)
        with self._guard("reading activity"), self._read() as conn:
            analysed, audio = conn.execute(select(func.count(), func.coalesce(func.sum(calls.c.duration_s), 0.0))
                                           .where(calls.c.analyzed_at >= since)).one()
            failed = conn.execute(select(func.count()).select_from(analysis_errors)
                                  .where(analysis_errors.c.created_at >= since)).scalar()
        return {"analysed": int(analysed), "audio_s": float(audio or 0.0), "failed": int(failed or 0)}

    # --- watermarks ------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None:
        with self._guard("reading a watermark"), self._read() as conn:
            return conn.execute(select(watermarks.c.value).where(watermarks.c.name == name)).scalar()

    def set_watermark(self, name: str, value: str) -> None:
        with self._guard("writing a watermark"), write_transaction(self.engine) as conn:
            _upsert(conn, watermarks, {"name": name, "value": value, "updated_at": utcnow()}, keys=("name",))

    # --- Claude: summaries, usage, batches -------------------------------------------------
    def save_ai_summary(self, call_id: str, *, analysis_key: str, model: str, prompt_version: str,
                        summary: str, verdict: str | None = None, severity: str | None = None,
                        suspected_cause: str | None = None, input_tokens: int = 0, output_tokens: int = 0,
                        cost_usd: float = 0.0) -> None:
        """Store (or replace) the summary of one analysis by one model and prompt version."""
        values = {"call_id": call_id, "analysis_key": analysis_key, "model": model,
                  "prompt_version": prompt_version, "verdict": verdict, "severity": severity,
                  "summary": summary, "suspected_cause": suspected_cause, "input_tokens": int(input_tokens),
                  "output_tokens": int(output_tokens), "cost_usd": float(cost_usd), "created_at": utcnow()}
        with self._guard(f"saving the summary of call {call_id}"), write_transaction(self.engine) as conn:
            _upsert(conn, ai_summaries, values, keys=("call_id", "analysis_key", "model", "prompt_version"))

    def get_ai_summary(self, call_id: str, *, analysis_key: str | None = None, model: str | None = None,
                       prompt_version: str | None = None) -> dict[str, Any] | None:
        """The newest summary of ``call_id`` matching the given filters, or None."""
        stmt = select(ai_summaries).where(ai_summaries.c.call_id == call_id)
        if analysis_key is not None:
            stmt = stmt.where(ai_summaries.c.analysis_key == analysis_key)
        if model is not None:
            stmt = stmt.where(ai_summaries.c.model == model)
        if prompt_version is not None:
            stmt = stmt.where(ai_summaries.c.prompt_version == prompt_version)
        stmt = stmt.order_by(ai_summaries.c.created_at.desc(), ai_summaries.c.id.desc()).limit(1)
        with self._guard("reading summaries"), self._read() as conn:
            row = conn.execute(stmt).mappings().first()
        return dict(row) if row else None

    def add_llm_usage(self, *, day: date, kind: str, model: str, input_tokens: int, output_tokens: int,
                      cost_usd: float, calls_count: int = 1) -> None:
        """Add one or more Claude calls to the day's totals for ``kind`` and ``model``."""
        values = {"day": day, "kind": kind, "model": model, "input_tokens": int(input_tokens),
                  "output_tokens": int(output_tokens), "cost_usd": float(cost_usd), "calls": int(calls_count)}
        with self._guard("recording LLM usage"), write_transaction(self.engine) as conn:
            stmt = _dialect_insert(conn, llm_usage).values(values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "kind", "model"],
                set_={c: getattr(llm_usage.c, c) + getattr(stmt.excluded, c)
                      for c in ("input_tokens", "output_tokens", "cost_usd", "calls")},
            )
            conn.execute(stmt)

    def llm_usage(self, *, since: date | None = None, until: date | None = None) -> list[dict[str, Any]]:
        """Usage rows, oldest day first; ``since`` inclusive, ``until`` exclusive."""
        stmt = select(llm_usage).order_by(llm_usage.c.day, llm_usage.c.kind, llm_usage.c.model)
        if since is not None:
            stmt = stmt.where(llm_usage.c.day >= since)
        if until is not None:
            stmt = stmt.where(llm_usage.c.day < until)
        with self._guard("reading LLM usage"), self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]

    def llm_spend_usd(self, day: date) -> float:
        """Total Claude cost recorded for ``day``."""
        with self._guard("reading LLM usage"), self._read() as conn:
            total = conn.execute(select(func.sum(llm_usage.c.cost_usd)).where(llm_usage.c.day == day)).scalar()
        return float(total or 0.0)

    def save_llm_batch(self, batch_id: str, *, status: str, submitted_count: int,
                       created_at: datetime | None = None) -> None:
        """Record a submitted message batch (or update its status and count)."""
        values = {"batch_id": batch_id, "status": status, "submitted_count": int(submitted_count),
                  "created_at": _naive_utc(created_at) if created_at else utcnow()}
        with self._guard(f"saving batch {batch_id}"), write_transaction(self.engine) as conn:
            _upsert(conn, llm_batches, values, keys=("batch_id",), update=("status", "submitted_count"))

    def update_llm_batch(self, batch_id: str, *, status: str, finished_at: datetime | None = None,
                         error: str | None = None) -> None:
        """Set a batch's status (and when it finished, and why it failed)."""
        values: dict[str, Any] = {"status": status, "error": error}
        if finished_at is not None:
            values["finished_at"] = _naive_utc(finished_at)
        with self._guard(f"updating batch {batch_id}"), write_transaction(self.engine) as conn:
            n = conn.execute(update(llm_batches).where(llm_batches.c.batch_id == batch_id).values(values)).rowcount
        if n == 0:
            raise StoreError(f"batch {batch_id} is not recorded in the store")

    def get_llm_batch(self, batch_id: str) -> dict[str, Any] | None:
        with self._guard("reading batches"), self._read() as conn:
            row = conn.execute(select(llm_batches).where(llm_batches.c.batch_id == batch_id)).mappings().first()
        return dict(row) if row else None

    def llm_batches(self, *, status: str | None = None) -> list[dict[str, Any]]:
        """Recorded batches, newest first, optionally only those with ``status``."""
        stmt = select(llm_batches).order_by(llm_batches.c.created_at.desc())
        if status is not None:
            stmt = stmt.where(llm_batches.c.status == status)
        with self._guard("reading batches"), self._read() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]


# --- rows --------------------------------------------------------------------------------------
def _dialect_insert(conn: Connection, table: Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _upsert(conn: Connection, table: Table, values: dict[str, Any], *, keys: tuple[str, ...],
            update: tuple[str, ...] | None = None, where=None) -> None:
    """INSERT, or UPDATE the non-key columns (``update``) of the row with the same ``keys``."""
    stmt = _dialect_insert(conn, table).values(values)
    columns = update if update is not None else tuple(c for c in values if c not in keys)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                      set_={c: getattr(stmt.excluded, c) for c in columns}, where=where)
    conn.execute(stmt)


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _local_naive(value: datetime) -> datetime:
    return value.astimezone().replace(tzinfo=None) if value.tzinfo else value


def normalize_metadata(metadata: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split call metadata into ``calls`` column values and the rest (for ``metadata_json``).

    Raises
    ------
    StoreError
        ``call_time`` is not a datetime or ISO text, or ``lead_id`` is not an integer.
    """
    columns: dict[str, Any] = {c: None for c in METADATA_COLUMNS}
    rest: dict[str, Any] = {}
    for key, value in (metadata or {}).items():
        name = _METADATA_ALIASES.get(key, key)
        if name not in columns:
            rest[key] = value
        elif value is not None and value != "":
            columns[name] = value
    when = columns["call_time"]
    if isinstance(when, str):
        try:
            when = datetime.fromisoformat(when)
        except ValueError:
            raise StoreError(f"metadata call_time={when!r} is not an ISO date-time") from None
    if when is not None and not isinstance(when, datetime):
        raise StoreError(f"metadata call_time={when!r} must be a datetime")
    columns["call_time"] = _local_naive(when) if when else None
    if columns["lead_id"] is not None:
        try:
            columns["lead_id"] = int(columns["lead_id"])
        except (TypeError, ValueError):
            raise StoreError(f"metadata lead_id={columns['lead_id']!r} must be an integer") from None
    for name in ("uniqueid", "agent", "campaign", "server_ip", "carrier", "hangup_cause", "ingroup"):
        if columns[name] is not None:
            columns[name] = str(columns[name])
    return columns, rest


def _call_row(doc: dict[str, Any], doc_text: str, *, cache_key: str, source_kind: str, source_ref: str,
              metadata: Mapping[str, Any] | None, fetched_at: datetime | None) -> dict[str, Any]:
    meta, rest = normalize_metadata(metadata)
    legs = doc["legs"]
    mos = {leg: (legs[leg]["quality"] or {}).get("mos") if leg in legs else None
           for leg in ("caller", "agent", "mixed")}
    # every track counts for the call's worst MOS, also the unattributed sides of a mix (speaker_a/b)
    present = [q["mos"] for g in legs.values() if (q := g.get("quality")) and q.get("mos") is not None]
    found = doc["findings"]
    ranks = [SEVERITIES.index(f["severity"]) + 1 for f in found if f["severity"] in SEVERITIES]
    rank = max(ranks, default=0)
    return {
        "call_id": doc["call_id"],
        "cache_key": cache_key,
        "source_kind": source_kind,
        "source_ref": source_ref,
        "layout": doc["layout"],
        "duration_s": float(doc["duration_s"]),
        **meta,
        "metadata_json": json.dumps(rest, ensure_ascii=False, default=str, sort_keys=True) if rest else None,
        "mos_caller": mos["caller"],
        "mos_agent": mos["agent"],
        "mos_mixed": mos["mixed"],
        "mos_min": min(present) if present else None,
        "n_findings": len(found),
        "worst_severity": SEVERITIES[rank - 1] if rank else None,
        "severity_rank": rank,
        "finding_codes": ",".join(sorted({f["code"] for f in found})),
        "dead_air_s": round(sum(f["end_s"] - f["start_s"] for f in found if f["code"] == "dead_air"), 3),
        "one_way": int(any(f["code"] == "one_way_audio" for f in found)),
        "n_warnings": len(doc["warnings"]),
        "attribution": (doc.get("attribution") or {}).get("method"),
        "attribution_confidence": _finite((doc.get("attribution") or {}).get("confidence")),
        "voice_key": (doc.get("attribution") or {}).get("voices"),
        "analysis_version": doc["analysis_version"],
        "quality_model": doc.get("quality_model"),
        "analysis_json": doc_text,
        "analyzed_at": utcnow(),
        "fetched_at": _naive_utc(fetched_at) if fetched_at else None,
    }


def _keep_metadata(row: dict[str, Any], previous: Any) -> None:
    """Fill metadata missing from ``row`` with the previously stored values."""
    for column in METADATA_COLUMNS:
        if row[column] is None:
            row[column] = previous[column]
    if previous["metadata_json"]:
        merged = {**json.loads(previous["metadata_json"]), **json.loads(row["metadata_json"] or "{}")}
        row["metadata_json"] = json.dumps(merged, ensure_ascii=False, default=str, sort_keys=True)


def _span_s(spans: list[dict[str, float]]) -> float:
    return round(sum(s["end_s"] - s["start_s"] for s in spans), 3)


def _child_rows(doc: dict[str, Any]) -> dict[Table, list[dict[str, Any]]]:
    call_id = doc["call_id"]
    out: dict[Table, list[dict[str, Any]]] = {t: [] for t in ANALYSIS_CHILDREN}
    for leg, g in doc["legs"].items():
        q = g.get("quality") or {}
        extra = {k: v for k, v in g.items() if k not in _LEG_COLUMNS}
        out[tracks].append({
            "call_id": call_id, "leg": leg, "source": g["source"], "sample_rate": int(g["sample_rate"]),
            "encoding": str(g["encoding"]), "duration_s": float(g["stats"]["duration_s"]),
            "rms_db": _finite(g["stats"]["rms_db"]), "peak_db": _finite(g["stats"]["peak_db"]),
            "dc_offset": _finite(g["stats"]["dc_offset"]), "clipped_samples": int(g["stats"]["clipped_samples"]),
            "clip_ratio": float(g["stats"]["clip_ratio"]), "speech_ratio": float(g["speech_ratio"]),
            "speech_s": _span_s(g["speech"]), "silence_s": _span_s(g["silences"]),
            "n_silences": len(g["silences"]), "speech_level_db": _finite(g.get("speech_level_db")),
            "noise_floor_db": _finite(g.get("noise_floor_db")), "snr_db": _finite(g.get("snr_db")),
            "dropouts": _int_or_none(g.get("dropouts")),
            **{k: _finite(q.get(k)) for k in _QUALITY_SCORES},
            "quality_model": q.get("model"), "quality_reason": g.get("quality_reason"),
            "extra_json": json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None,
        })
        for table, key in ((silences, "silences"), (speech_segments, "speech")):
            out[table] += [{"call_id": call_id, "leg": leg, "start_s": s["start_s"], "end_s": s["end_s"]}
                           for s in g[key]]
        out[quality_windows] += [
            {"call_id": call_id, "leg": leg, "start_s": w["start_s"], "end_s": w["end_s"],
             **{k: _finite(w.get(k)) for k in _QUALITY_SCORES}, "speech_s": w.get("speech_s")}
            for w in q.get("windows", [])
        ]
    out[findings] = [{"call_id": call_id, **{k: f[k] for k in ("code", "leg", "start_s", "end_s",
                                                                 "severity", "detail")}}
                     for f in doc["findings"]]
    out[call_warnings] = [{"call_id": call_id, "seq": i, "message": w} for i, w in enumerate(doc["warnings"])]
    return out


def _finite(value: Any) -> float | None:
    """A float for a SQL column; None for missing, non-numeric, infinite or NaN values (e.g. -inf dB)."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f and f not in (float("inf"), float("-inf")) else None


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
