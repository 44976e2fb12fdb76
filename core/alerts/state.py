"""Alert state, history and outbox in the result store (tables ``alert_states``, ``alert_events``,
``alert_deliveries``; migration 0005).

:func:`apply_transitions` is the only writer of states and events: it runs in one write
transaction that concurrent checkers serialise on (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL
advisory lock) and re-reads each group's state inside it, so a scan's hook and the timer
checking at the same moment fire an alert once. Each new event gets one ``pending`` delivery
per configured channel; deliverers lease a row before sending (:func:`lease_due`), so two of
them never send the same message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update

from core.alerts.evaluate import FIRING, Transition, decide
from core.alerts.rules import AlertRule, format_value, group_label
from core.store.engine import write_transaction
from core.store.schema import alert_deliveries, alert_events, alert_states

if TYPE_CHECKING:
    from core.store.store import ResultStore

#: Key of the PostgreSQL advisory lock serialising alert checks.
PG_ALERT_LOCK = 0x616C7274  # "alrt"
PENDING, SENT, FAILED = "pending", "sent", "failed"
EVENT_COLUMNS = ("id", "rule", "group_by", "group_key", "kind", "severity", "metric", "op", "threshold", "value",
                 "calls", "window_start", "window_end", "message", "created_at")


@dataclass(frozen=True)
class AlertEvent:
    """One row of ``alert_events``: an alert that fired or resolved, with its numbers."""

    id: int
    rule: str
    group_by: str
    group_key: str
    kind: str
    severity: str
    metric: str
    op: str
    threshold: float
    value: float | None
    calls: int
    window_start: datetime
    window_end: datetime
    message: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in EVENT_COLUMNS}


def event_message(t: Transition) -> str:
    """One line naming the rule, the group, the value, the threshold and the calls counted."""
    m = t.measurement
    rule = m.rule
    group = group_label(rule.group_by, m.group)
    value = format_value(rule, m.value)
    limit = f"{rule.op} {format_value(rule, rule.threshold)}"
    counted = f"{m.calls} call{'s' if m.calls != 1 else ''}" if rule.metric != "failed_rate" else f"{m.calls} analyses"
    span = f"{m.window_start:%Y-%m-%d %H:%M} - {m.window_end:%Y-%m-%d %H:%M}"
    if t.change == FIRING:
        return f"{rule.name}: {group} {rule.metric} = {value} ({limit}) over {counted}, {span}"
    why = f" ({t.reason})" if t.reason else ""
    return f"{rule.name} resolved: {group} {rule.metric} = {value} (threshold {limit}) over {counted}, {span}{why}"


# --- states and events -----------------------------------------------------------------------------
def stored_states(store: ResultStore, rules: Sequence[str] | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(rule, group): row}`` of ``alert_states`` (only these rules when given)."""
    stmt = select(alert_states)
    if rules is not None:
        stmt = stmt.where(alert_states.c.rule.in_(list(rules)))
    with store._guard("reading alert states"), store._read() as conn:
        return {(r["rule"], r["group_key"]): dict(r) for r in conn.execute(stmt).mappings()}


def apply_transitions(store: ResultStore, transitions: Iterable[Transition], *, now_utc: datetime,
                      channels: Sequence[str], active_rules: Sequence[str]) -> list[AlertEvent]:
    """Store the evaluation: states, an event per change, a pending delivery per event and channel.

    Groups that are ``ok`` and had no calls in the window are forgotten; so are the states of
    rules that are no longer configured (their history stays).

    Returns
    -------
    list of AlertEvent
        The events created now (a change another checker already stored creates none).
    """
    created: list[AlertEvent] = []
    with store._guard("storing alert states"), write_transaction(store.engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_ALERT_LOCK})
        conn.execute(delete(alert_states).where(alert_states.c.rule.not_in(list(active_rules))))
        current = {(r["rule"], r["group_key"]): r["state"]
                   for r in conn.execute(select(alert_states.c.rule, alert_states.c.group_key, alert_states.c.state))
                   .mappings()}
        for t in transitions:
            m, rule = t.measurement, t.measurement.rule
            key = (rule.name, m.group)
            before = current.get(key)
            if (before == FIRING) != (t.before == FIRING):  # another checker got here first: decide again
                t = decide(m, before)
            where = and_(alert_states.c.rule == rule.name, alert_states.c.group_key == m.group)
            if t.after != FIRING and m.calls == 0 and rule.metric != "calls":
                conn.execute(delete(alert_states).where(where))
            else:
                values = {"group_by": rule.group_by, "state": t.after, "value": m.value, "calls": m.calls,
                          "threshold": rule.threshold, "evaluated_at": now_utc, "window_start": m.window_start,
                          "window_end": m.window_end}
                if before is None:
                    conn.execute(insert(alert_states).values(rule=rule.name, group_key=m.group, since=now_utc,
                                                             event_id=None, **values))
                else:
                    conn.execute(update(alert_states).where(where).values(**values))
            if t.change is None:
                continue
            event = _insert_event(conn, t, now_utc)
            created.append(event)
            conn.execute(update(alert_states).where(where).values(since=now_utc, event_id=event.id))
            for channel in channels:
                conn.execute(insert(alert_deliveries).values(event_id=event.id, channel=channel, status=PENDING,
                                                             attempts=0, next_attempt_at=now_utc, created_at=now_utc))
    return created


def _insert_event(conn: Any, t: Transition, now_utc: datetime) -> AlertEvent:
    m, rule = t.measurement, t.measurement.rule
    values = {"rule": rule.name, "group_by": rule.group_by, "group_key": m.group, "kind": t.change,
              "severity": rule.severity, "metric": rule.metric, "op": rule.op, "threshold": rule.threshold,
              "value": m.value, "calls": m.calls, "window_start": m.window_start, "window_end": m.window_end,
              "message": event_message(t), "created_at": now_utc}
    event_id = conn.execute(insert(alert_events).values(**values).returning(alert_events.c.id)).scalar_one()
    return AlertEvent(id=int(event_id), **values)


def _event(row: Any) -> AlertEvent:
    values = {c: row[c] for c in EVENT_COLUMNS}
    values["value"] = None if values["value"] is None else float(values["value"])
    return AlertEvent(**values)


def list_events(store: ResultStore, *, since_utc: datetime | None = None, until_utc: datetime | None = None,
                kind: str | None = None, limit: int | None = 200) -> list[AlertEvent]:
    """Alert history, newest first (``created_at`` in UTC within the bounds)."""
    stmt = select(*(alert_events.c[c] for c in EVENT_COLUMNS))
    if since_utc is not None:
        stmt = stmt.where(alert_events.c.created_at >= since_utc)
    if until_utc is not None:
        stmt = stmt.where(alert_events.c.created_at < until_utc)
    if kind is not None:
        stmt = stmt.where(alert_events.c.kind == kind)
    stmt = stmt.order_by(alert_events.c.created_at.desc(), alert_events.c.id.desc())
    if limit is not None:
        stmt = stmt.limit(int(limit))
    with store._guard("reading alert events"), store._read() as conn:
        return [_event(r) for r in conn.execute(stmt).mappings()]


def get_event(store: ResultStore, event_id: int) -> AlertEvent | None:
    stmt = select(*(alert_events.c[c] for c in EVENT_COLUMNS)).where(alert_events.c.id == int(event_id))
    with store._guard("reading an alert event"), store._read() as conn:
        row = conn.execute(stmt).mappings().first()
    return _event(row) if row else None


# --- the outbox ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    """One pending message: an event for one channel, on its ``attempts + 1``-th try."""

    id: int
    channel: str
    attempts: int
    event: AlertEvent


def lease_due(store: ResultStore, *, now_utc: datetime, lease_s: float, limit: int = 50) -> list[Delivery]:
    """Take the pending deliveries that are due (and not leased by another deliverer) for ``lease_s``."""
    due = and_(alert_deliveries.c.status == PENDING, alert_deliveries.c.next_attempt_at <= now_utc,
               or_(alert_deliveries.c.lease_until.is_(None), alert_deliveries.c.lease_until <= now_utc))
    cols = [alert_deliveries.c.id, alert_deliveries.c.channel, alert_deliveries.c.attempts,
            *(alert_events.c[c].label(f"e_{c}") for c in EVENT_COLUMNS)]
    stmt = (select(*cols).select_from(alert_deliveries.join(alert_events, alert_events.c.id == alert_deliveries.c.event_id))
            .where(due).order_by(alert_deliveries.c.next_attempt_at, alert_deliveries.c.id).limit(limit))
    out = []
    with store._guard("leasing alert deliveries"), write_transaction(store.engine) as conn:
        for row in conn.execute(stmt).mappings().all():
            taken = conn.execute(update(alert_deliveries).where(alert_deliveries.c.id == row["id"], due)
                                 .values(lease_until=now_utc + timedelta(seconds=lease_s))).rowcount
            if taken:
                event = _event({c: row[f"e_{c}"] for c in EVENT_COLUMNS})
                out.append(Delivery(id=int(row["id"]), channel=row["channel"], attempts=int(row["attempts"]),
                                    event=event))
    return out


def finish_delivery(store: ResultStore, delivery: Delivery, *, now_utc: datetime, error: str | None,
                    next_attempt_at: datetime | None) -> str:
    """Record one attempt: sent, failed for good (``next_attempt_at`` None) or pending again; the status."""
    status = SENT if error is None else (PENDING if next_attempt_at is not None else FAILED)
    values: dict[str, Any] = {"attempts": delivery.attempts + 1, "status": status, "lease_until": None,
                              "last_error": error}
    if status == SENT:
        values["sent_at"] = now_utc
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    with store._guard("recording an alert delivery"), write_transaction(store.engine) as conn:
        conn.execute(update(alert_deliveries).where(alert_deliveries.c.id == delivery.id).values(**values))
    return status


def release_leases(store: ResultStore, delivery_ids: Sequence[int]) -> None:
    """Give back leases a pass did not use (the next pass may take them at once)."""
    with store._guard("releasing alert deliveries"), write_transaction(store.engine) as conn:
        conn.execute(update(alert_deliveries).where(alert_deliveries.c.id.in_(list(delivery_ids)))
                     .values(lease_until=None))


def delivery_counts(store: ResultStore) -> dict[str, int]:
    """Deliveries per status (``pending``, ``sent``, ``failed``; zero when none)."""
    stmt = select(alert_deliveries.c.status, func.count()).group_by(alert_deliveries.c.status)
    with store._guard("counting alert deliveries"), store._read() as conn:
        counts = {str(s): int(n) for s, n in conn.execute(stmt).all()}
    return {s: counts.get(s, 0) for s in (PENDING, SENT, FAILED)}


def event_deliveries(store: ResultStore, event_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The deliveries of these events: ``{event_id: [{channel, status, attempts, last_error, sent_at}]}``."""
    if not event_ids:
        return {}
    cols = ("event_id", "channel", "status", "attempts", "last_error", "sent_at", "next_attempt_at")
    stmt = (select(*(alert_deliveries.c[c] for c in cols)).where(alert_deliveries.c.event_id.in_(list(event_ids)))
            .order_by(alert_deliveries.c.id))
    out: dict[int, list[dict[str, Any]]] = {}
    with store._guard("reading alert deliveries"), store._read() as conn:
        for row in conn.execute(stmt).mappings():
            out.setdefault(int(row["event_id"]), []).append({c: row[c] for c in cols[1:]})
    return out


def rule_of(event: AlertEvent) -> AlertRule:
    """The rule as it was when the event was stored (for formatting its numbers)."""
    return AlertRule(event.rule, event.metric, event.op, event.threshold, group_by=event.group_by)


def event_call_filters(event: AlertEvent) -> dict[str, Any] | None:
    """The :func:`core.store.queries.list_calls` filters of the calls an alert counted (its group and
    window); None when they cannot be listed (``failed_rate`` counts analyses, an unknown group)."""
    from core.store.queries import UNKNOWN

    if event.metric == "failed_rate" or event.group_key == UNKNOWN:
        return None
    filters: dict[str, Any] = {"since": event.window_start, "until": event.window_end}
    if event.group_by != "fleet":
        filters[event.group_by] = event.group_key
    return filters
