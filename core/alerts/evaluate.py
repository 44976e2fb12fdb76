"""Measuring the rules over the store and deciding what changes (no writes here).

A rule is measured per group over its window with one SQL aggregate
(:func:`core.store.queries.window_stats`); ``failed_rate`` from the analyses recorded in the
window (:meth:`core.store.store.ResultStore.activity_since`). :func:`decide` turns a
measurement and the group's stored state into a transition:

- not firing, at least ``min_calls`` counted calls and the condition holds: **fire**;
- firing, at least ``min_calls`` counted calls and the condition no longer holds, or no calls
  at all in the window any more: **resolve**;
- anything else keeps the state (fewer than ``min_calls`` calls neither fires nor resolves, so
  a quiet hour does not flap an alert).

``calls`` rules ignore ``min_calls`` (a count of zero is an answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.alerts.rules import MOS_METRICS, AlertRule
from core.store.queries import FLEET_GROUP, window_stats

if TYPE_CHECKING:
    from core.store.store import ResultStore

FIRING, OK = "firing", "ok"
FIRE, RESOLVE = "firing", "resolved"
_COLUMN = {"one_way_rate": "one_way_rate", "dead_air_rate": "rate_dead_air", "problem_rate": "problem_rate",
           "mos_mean": "mean_mos", "mos_p10": "p10_mos", "calls": "calls"}


@dataclass(frozen=True)
class Clock:
    """One evaluation's "now": local wall-clock time (as ``calls.call_time``) and UTC (as ``*_at``)."""

    local: datetime
    utc: datetime

    @classmethod
    def at(cls, when: datetime | None = None) -> Clock:
        """``when`` (aware, or naive local time), else now."""
        if when is None:
            when = datetime.now().astimezone()
        elif when.tzinfo is None:
            when = when.astimezone()  # naive = local time
        return cls(local=when.astimezone().replace(tzinfo=None), utc=when.astimezone(UTC).replace(tzinfo=None))


@dataclass(frozen=True)
class Measurement:
    """A rule's value for one group over its window.

    Attributes
    ----------
    value : float or None
        None when nothing was counted (no calls, or none with a MOS for MOS metrics).
    calls : int
        Calls counted: with a MOS for MOS metrics, analyses (done + failed) for ``failed_rate``.
    window_start, window_end : datetime
        Local call time (``failed_rate``: the same span, of analysis time).
    """

    rule: AlertRule
    group: str
    value: float | None
    calls: int
    window_start: datetime
    window_end: datetime

    @property
    def decided(self) -> bool:
        """Enough calls to fire or resolve."""
        if self.rule.metric == "calls":
            return self.value is not None
        return self.value is not None and self.calls >= self.rule.min_calls

    @property
    def breaching(self) -> bool:
        return self.decided and self.value is not None and self.rule.holds(self.value)


@dataclass(frozen=True)
class Transition:
    """What one measurement does to its group's state: ``change`` is ``firing``, ``resolved`` or None."""

    measurement: Measurement
    before: str | None
    after: str
    change: str | None

    @property
    def reason(self) -> str:
        m = self.measurement
        if self.change == RESOLVE and m.calls == 0:
            return "no calls in the window"
        if not m.decided and m.rule.metric != "calls":
            return f"{m.calls} of {m.rule.min_calls} calls needed"
        return ""


def window_of(rule: AlertRule, clock: Clock) -> tuple[datetime, datetime]:
    """The rule's call-time window ending now (local time)."""
    return clock.local - timedelta(hours=rule.window_hours), clock.local


def measure(store: ResultStore, rule: AlertRule, clock: Clock, *, known_groups: tuple[str, ...] = ()) -> list[Measurement]:
    """The rule's value for every group with calls in its window.

    Parameters
    ----------
    store : ResultStore
    rule : AlertRule
    clock : Clock
        The evaluation time.
    known_groups : tuple of str
        Groups with a stored state: each gets a measurement even without calls (value None, or
        0 for ``calls``), so a firing group whose calls stopped can resolve.

    Returns
    -------
    list of Measurement
        Sorted by group. The fleet always has one.
    """
    start, end = window_of(rule, clock)
    if rule.metric == "failed_rate":
        activity = store.activity_since(clock.utc - timedelta(hours=rule.window_hours))
        total = activity["analysed"] + activity["failed"]
        value = activity["failed"] / total if total else None
        return [Measurement(rule, FLEET_GROUP, value, int(total), start, end)]
    frame = window_stats(store, since=start, until=end, group_by=None if rule.group_by == "fleet" else rule.group_by)
    out = {str(row["group"]): _measurement(rule, row, start, end) for row in frame.to_dict("records")}
    wanted = set(known_groups) | ({FLEET_GROUP} if rule.group_by == "fleet" else set())
    for group in wanted - set(out):
        out[group] = Measurement(rule, group, 0.0 if rule.metric == "calls" else None, 0, start, end)
    return [out[g] for g in sorted(out)]


def _measurement(rule: AlertRule, row: Mapping[str, Any], start: datetime, end: datetime) -> Measurement:
    code = rule.finding_code
    column = f"rate_{code}" if code else _COLUMN[rule.metric]
    raw = row.get(column)
    value = None if raw is None or pd.isna(raw) else float(raw)
    counted = int(row["calls_with_mos"] if rule.metric in MOS_METRICS else row["calls"])
    return Measurement(rule, str(row["group"]), value, counted, start, end)


def decide(measurement: Measurement, before: str | None) -> Transition:
    """The transition of one group (see the module docstring)."""
    firing = before == FIRING
    if not firing and measurement.breaching:
        return Transition(measurement, before, FIRING, FIRE)
    if firing and ((measurement.decided and not measurement.breaching) or
                   (measurement.calls == 0 and measurement.rule.metric != "calls")):
        return Transition(measurement, before, OK, RESOLVE)
    return Transition(measurement, before, FIRING if firing else OK, None)
