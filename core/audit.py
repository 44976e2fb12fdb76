"""The audit log: who played, downloaded, asked or changed what, when and from where.

Entries are only ever appended (:func:`record`); nothing in callqa updates one, and only the
retention (:mod:`core.retention`, ``[retention] audit_days``, the longest period) deletes old
ones. Each entry carries the SHA-256 of its content and of the entry before it, so an entry
edited or removed in the database afterwards breaks the chain, which :func:`verify` (``callqa
audit --verify``) reports. The chat's SQL cannot read the table (it is not in ``[claude]
store_tables``).

Actions: ``audio.play``, ``audio.download``, ``summary``, ``investigate``, ``chat.question``,
``chat.sql``, ``settings.change``, ``user.add``, ``user.remove``, ``user.passwd``,
``user.role``, ``voiceprint.enroll``, ``voiceprint.remove``, ``side.mark``, ``login``,
``login.failed``, ``logout``, ``retention.apply``, ``analyze``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text

from core.access.roles import Identity
from core.errors import StoreError
from core.store.engine import first_line, write_transaction
from core.store.schema import audit_log, chat_log

GENESIS = "0" * 64
MAX_DETAIL = 4000
_AUDIT_LOCK = 0x61756474  # "audt": serialises appends on PostgreSQL (SQLite's write lock already does)
SOURCES = ("dashboard", "api", "cli")


def utcnow() -> datetime:
    from core.store.store import utcnow as now

    return now()


def cli_identity() -> Identity:
    """The command line's identity: the local operator, trusted as admin (``cli:<os user>``)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Identity(name=f"cli:{user}", role="admin", source="cli")


def _seal(prev_hash: str, entry: dict[str, Any]) -> str:
    fields = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in entry.items()
              if k in ("at", "actor", "role", "source", "action", "target", "detail", "remote")}
    body = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _text(value: Any, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def record(store, who: Identity, action: str, *, source: str, target: str | None = None,
           detail: Any = None, at: datetime | None = None) -> int:
    """Append one entry; return its id.

    Parameters
    ----------
    store : ResultStore
    who : Identity
        The actor (its name, role and remote address are recorded).
    action : str
        See the module docstring.
    source : {'dashboard', 'api', 'cli'}
    target : str, optional
        What was acted on (a call id, a user, a setting).
    detail : str or JSON-able, optional
        The question, the SQL, the change (cut at :data:`MAX_DETAIL` characters).
    at : datetime, optional
        UTC time (default: now).

    Raises
    ------
    StoreError
        The entry could not be written: callers refuse the action rather than do it unrecorded.
    """
    entry: dict[str, Any] = {"at": at or utcnow(), "actor": _text(who.name, 200), "role": who.role, "source": source, "action": action[:64],
             "target": _text(target, 255), "detail": _text(detail, MAX_DETAIL), "remote": _text(who.remote, 64)}
    try:
        with write_transaction(store.engine) as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _AUDIT_LOCK})
            prev = conn.execute(select(audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)).scalar()
            entry["prev_hash"] = prev or GENESIS
            entry["hash"] = _seal(entry["prev_hash"], entry)
            result = conn.execute(insert(audit_log).values(entry))
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])
    except Exception as exc:
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"store {store.display_url}: writing the audit log failed: {first_line(exc)}") from None


@dataclass
class AuditTrail:
    """An identity and a source bound to a store: ``trail.record("summary", target=call_id)``.

    What the services (:mod:`core.llm`, the API, the dashboard) are handed, so they record who
    did what without knowing where the request came from.
    """

    store: Any
    who: Identity
    source: str

    def record(self, action: str, *, target: str | None = None, detail: Any = None) -> int:
        return record(self.store, self.who, action, source=self.source, target=target, detail=detail)

    def chat(self, *, question: str, answer: str, tools: list[dict[str, Any]], cost_usd: float) -> None:
        """Keep one answered chat question (``chat_log``, purged after ``[retention] chat_days``)."""
        record_chat(self.store, self.who, source=self.source, question=question, answer=answer, tools=tools,
                    cost_usd=cost_usd)


def record_chat(store, who: Identity, *, source: str, question: str, answer: str,
                tools: list[dict[str, Any]], cost_usd: float) -> None:
    """Store one answered chat question as sent (redacted) and the answer as written (references)."""
    values = {"at": utcnow(), "actor": _text(who.name, 200), "source": source, "question": question,
              "answer": answer, "tools_json": json.dumps(tools, ensure_ascii=False, default=str) if tools else None,
              "cost_usd": float(cost_usd or 0.0)}
    try:
        with write_transaction(store.engine) as conn:
            conn.execute(insert(chat_log).values(values))
    except Exception as exc:
        raise StoreError(f"store {store.display_url}: writing the chat log failed: {first_line(exc)}") from None


def entries(store, *, since: datetime | None = None, until: datetime | None = None, actor: str | None = None,
            action: str | None = None, limit: int | None = 1000, oldest_first: bool = False) -> list[dict[str, Any]]:
    """Audit entries, newest first (or oldest first), filtered.

    Parameters
    ----------
    since, until : datetime, optional
        UTC; ``since`` inclusive, ``until`` exclusive.
    actor : str, optional
        Exact actor name.
    action : str, optional
        An action, or a prefix ending in ``.`` (``audio.`` for plays and downloads).
    limit : int or None
    """
    stmt = select(audit_log)
    if since is not None:
        stmt = stmt.where(audit_log.c.at >= since)
    if until is not None:
        stmt = stmt.where(audit_log.c.at < until)
    if actor:
        stmt = stmt.where(audit_log.c.actor == actor)
    if action:
        stmt = stmt.where(audit_log.c.action.like(action + "%") if action.endswith(".") else audit_log.c.action == action)
    stmt = stmt.order_by(audit_log.c.id if oldest_first else audit_log.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    try:
        with store.engine.connect() as conn:
            return [dict(r) for r in conn.execute(stmt).mappings()]
    except Exception as exc:
        raise StoreError(f"store {store.display_url}: reading the audit log failed: {first_line(exc)}") from None


def count_since(store, *, actor: str, action: str, since: datetime) -> int:
    """How many ``action`` entries of ``actor`` there are since ``since`` (failed sign-ins)."""
    stmt = select(func.count()).select_from(audit_log).where(
        audit_log.c.actor == actor, audit_log.c.action == action, audit_log.c.at >= since)
    with store.engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`verify` found: ``ok``, entries checked, the first entry that does not match."""

    ok: bool
    checked: int
    broken_at: int | None = None
    reason: str = ""


def verify(store, *, batch: int = 5000) -> ChainCheck:
    """Recompute the hash chain from the oldest kept entry (retention cuts the chain's start).

    An entry whose hash does not match its content, or whose ``prev_hash`` is not the hash of
    the entry before it, was edited, inserted or the entry before it removed.
    """
    checked, prev, last_id = 0, None, 0
    with store.engine.connect() as conn:
        while True:
            rows = conn.execute(select(audit_log).where(audit_log.c.id > last_id).order_by(audit_log.c.id)
                                .limit(batch)).mappings().all()
            if not rows:
                return ChainCheck(ok=True, checked=checked)
            for row in rows:
                entry = dict(row)
                if prev is not None and entry["prev_hash"] != prev:
                    return ChainCheck(False, checked, entry["id"], "the entry before it was changed or removed")
                if _seal(entry["prev_hash"], entry) != entry["hash"]:
                    return ChainCheck(False, checked, entry["id"], "its content does not match its hash")
                prev, last_id = entry["hash"], entry["id"]
                checked += 1
