"""Retention: how long analyses, summaries, chat transcripts, fetched audio and audit entries are kept.

``callqa retention apply`` (daily by ``systemd/callqa-retention.timer``) deletes what is older
than ``[retention]`` allows, in batches of ``batch_size`` rows per transaction so a large purge
neither locks the store for long nor needs much memory, and reports what it removed;
``--dry-run`` counts the same rows and files without changing anything::

    [retention]
    analyses_days = 365      # calls (by call time) with their rows, summaries, errors, side marks
    summaries_days = 365     # AI summaries (by when they were written)
    chat_days = 90           # the chat log (questions and answers)
    audio_cache_days = 7     # fetched recordings in the cache (by last use)
    audit_days = 730         # the audit log: the longest, so every deletion stays accounted for
    batch_size = 500

``0`` keeps that kind forever. A purged call leaves a tombstone (a keyed hash of its id and the
day of the call, no number), so a deep link to it says it was deleted instead of failing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Table, delete, func, insert, select

from core.config import Settings, SettingsSection
from core.errors import ConfigError, StoreError
from core.store.engine import first_line, write_transaction
from core.store.schema import (
    ai_summaries,
    analysis_errors,
    audit_log,
    calls,
    chat_log,
    dead_letters,
    purged_calls,
    side_overrides,
)

SECTION = "retention"
TOMBSTONE_KEY = "privacy.tombstone_key"


@dataclass(frozen=True)
class RetentionSettings(SettingsSection):
    """The ``[retention]`` section (days; 0 keeps forever); build with :meth:`from_settings`."""

    analyses_days: int = 365
    summaries_days: int = 365
    chat_days: int = 90
    audio_cache_days: int = 7
    audit_days: int = 730
    batch_size: int = 500

    SECTION: ClassVar[str] = SECTION
    PERIODS: ClassVar[tuple[str, ...]] = ("analyses_days", "summaries_days", "chat_days", "audio_cache_days")

    def _validate(self) -> None:
        """Periods >= 0, and the audit kept longest: every deletion has to stay accounted for."""
        for name in (*self.PERIODS, "audit_days"):
            if getattr(self, name) < 0:
                raise ConfigError(f"[{SECTION}] {name}={getattr(self, name)} must be >= 0 (0 keeps forever)")
        if self.batch_size < 1:
            raise ConfigError(f"[{SECTION}] batch_size={self.batch_size} must be >= 1")
        if self.audit_days:
            for name in self.PERIODS:
                days = getattr(self, name)
                if days == 0 or days > self.audit_days:
                    raise ConfigError(f"[{SECTION}] audit_days={self.audit_days} must be the longest period "
                                      f"({name}={days or 'forever'}): every deletion has to stay accounted for")


@dataclass
class RetentionReport:
    """What :func:`apply_retention` deleted (or, dry, would delete)."""

    dry_run: bool
    cutoffs: dict[str, str] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    cache_bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "cutoffs": dict(self.cutoffs), "deleted": dict(self.deleted),
                "cache_bytes": self.cache_bytes}

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


# --- tombstones ----------------------------------------------------------------------------------
def _tombstone_key(store, *, create: bool) -> bytes | None:
    value = store.get_watermark(TOMBSTONE_KEY)
    if value is None and create:
        store.set_watermark(TOMBSTONE_KEY, secrets.token_hex(32))
        value = store.get_watermark(TOMBSTONE_KEY)
    return bytes.fromhex(value) if value else None


def _id_hash(key: bytes, call_id: str) -> str:
    return hmac.new(key, call_id.encode("utf-8"), hashlib.sha256).hexdigest()


def purged_on(store, call_id: str) -> datetime | None:
    """When retention deleted ``call_id`` (UTC), or None when it never stored or deleted it."""
    key = _tombstone_key(store, create=False)
    if key is None:
        return None
    with store.engine.connect() as conn:
        return conn.execute(select(purged_calls.c.purged_at)
                            .where(purged_calls.c.id_hash == _id_hash(key, call_id))).scalar()


# --- deleting --------------------------------------------------------------------------------------
def _count(store, table: Table, condition) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(condition)).scalar() or 0)


def delete_older(store, table: Table, condition, *, batch: int, dry_run: bool) -> int:
    """Delete the rows of ``table`` matching ``condition``, ``batch`` per transaction (or count them)."""
    if dry_run:
        return _count(store, table, condition)
    pk = list(table.primary_key.columns)[0]
    total = 0
    while True:
        with write_transaction(store.engine) as conn:
            keys = list(conn.execute(select(pk).where(condition).order_by(pk).limit(batch)).scalars())
            if not keys:
                return total
            conn.execute(delete(table).where(pk.in_(keys)))
        total += len(keys)


def _purge_calls(store, cutoff: datetime, *, batch: int, dry_run: bool) -> int:
    """Delete calls older than ``cutoff`` (call time) with everything kept for them; leave tombstones."""
    condition = calls.c.call_time < cutoff
    if dry_run:
        return _count(store, calls, condition)
    key = _tombstone_key(store, create=True)
    assert key is not None
    total = 0
    while True:
        with write_transaction(store.engine) as conn:
            rows = conn.execute(select(calls.c.call_id, calls.c.call_time).where(condition)
                                .order_by(calls.c.call_time, calls.c.call_id).limit(batch)).all()
            if not rows:
                return total
            ids = [r.call_id for r in rows]
            now = _utcnow()
            stones = [{"id_hash": _id_hash(key, r.call_id), "call_date": r.call_time.date(), "purged_at": now}
                      for r in rows]
            known = set(conn.execute(select(purged_calls.c.id_hash)
                                     .where(purged_calls.c.id_hash.in_([s["id_hash"] for s in stones]))).scalars())
            fresh = [s for s in stones if s["id_hash"] not in known]
            if fresh:
                conn.execute(insert(purged_calls), fresh)
            conn.execute(delete(side_overrides).where(side_overrides.c.call_id.in_(ids)))
            conn.execute(delete(calls).where(calls.c.call_id.in_(ids)))  # children and summaries cascade
        total += len(ids)


def _utcnow() -> datetime:
    from core.store.store import utcnow

    return utcnow()


def apply_retention(store, settings: Settings, *, retention: RetentionSettings | None = None,
                    dry_run: bool = False, now: datetime | None = None,
                    local_now: datetime | None = None) -> RetentionReport:
    """Delete (or count, ``dry_run``) everything older than ``[retention]`` allows.

    Parameters
    ----------
    store : ResultStore
    settings : Settings
        For ``[retention]`` and the recordings cache folder (``[recordings] cache_dir``).
    retention : RetentionSettings, optional
        Default: read from ``settings``.
    dry_run : bool
        Count only; nothing is changed (not even a tombstone key is created).
    now, local_now : datetime, optional
        UTC and local wall-clock "now" (tests); call times are local, every ``*_at`` UTC.

    Returns
    -------
    RetentionReport
        Rows (and cache entries) per kind: ``calls``, ``analysis_errors``, ``dead_letters``,
        ``summaries``, ``chat``, ``audit``, ``tombstones``, ``audio_cache``.

    Raises
    ------
    StoreError
    """
    policy = retention or RetentionSettings.from_settings(settings)
    now = now or _utcnow()
    local_now = local_now or datetime.now()
    report = RetentionReport(dry_run=dry_run)
    batch = policy.batch_size

    def days(n: int, base: datetime) -> datetime:
        return base - timedelta(days=n)

    try:
        if policy.analyses_days:
            cut, cut_utc = days(policy.analyses_days, local_now), days(policy.analyses_days, now)
            report.cutoffs["analyses"] = cut.isoformat(sep=" ", timespec="seconds")
            report.deleted["calls"] = _purge_calls(store, cut, batch=batch, dry_run=dry_run)
            report.deleted["analysis_errors"] = delete_older(store, analysis_errors, analysis_errors.c.created_at < cut_utc,
                                                             batch=batch, dry_run=dry_run)
            report.deleted["dead_letters"] = delete_older(store, dead_letters, dead_letters.c.created_at < cut_utc,
                                                          batch=batch, dry_run=dry_run)
        if policy.summaries_days:
            cut = days(policy.summaries_days, now)
            report.cutoffs["summaries"] = cut.isoformat(sep=" ", timespec="seconds")
            report.deleted["summaries"] = delete_older(store, ai_summaries, ai_summaries.c.created_at < cut,
                                                       batch=batch, dry_run=dry_run)
        if policy.chat_days:
            cut = days(policy.chat_days, now)
            report.cutoffs["chat"] = cut.isoformat(sep=" ", timespec="seconds")
            report.deleted["chat"] = delete_older(store, chat_log, chat_log.c.at < cut, batch=batch, dry_run=dry_run)
        if policy.audit_days:
            cut = days(policy.audit_days, now)
            report.cutoffs["audit"] = cut.isoformat(sep=" ", timespec="seconds")
            report.deleted["audit"] = delete_older(store, audit_log, audit_log.c.at < cut, batch=batch, dry_run=dry_run)
            report.deleted["tombstones"] = delete_older(store, purged_calls, purged_calls.c.purged_at < cut,
                                                        batch=batch, dry_run=dry_run)
    except Exception as exc:
        if isinstance(exc, StoreError):
            raise
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(exc, SQLAlchemyError):
            raise
        raise StoreError(f"store {store.display_url}: retention failed: {first_line(exc)}") from None
    if policy.audio_cache_days:
        cut_s = (now - timedelta(days=policy.audio_cache_days)).timestamp()
        report.cutoffs["audio_cache"] = days(policy.audio_cache_days, now).isoformat(sep=" ", timespec="seconds")
        entries, size = expire_audio_cache(settings, before_s=cut_s, dry_run=dry_run)
        report.deleted["audio_cache"], report.cache_bytes = entries, size
    return report


def expire_audio_cache(settings: Settings, *, before_s: float, dry_run: bool) -> tuple[int, int]:
    """Remove cached recordings last used before ``before_s`` (epoch seconds); ``(entries, bytes)``."""
    from core.fetch.cache import FetchCache
    from core.vicidial.settings import RecordingAccess

    access = RecordingAccess.from_settings(settings)
    root = Path(access.cache_dir).expanduser() if access.cache_dir else settings.data_dir / "recordings-cache"
    return FetchCache(root, max_bytes=access.cache_max_bytes).expire(before_s=before_s, dry_run=dry_run)

