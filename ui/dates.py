"""Dates and periods of the pages' pickers: ``st.date_input`` ranges, named periods, defaults."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

#: Period name -> days back from today's midnight (None: everything).
PERIODS: dict[str, int | None] = {"Today": 0, "Last 7 days": 6, "Last 30 days": 29, "All time": None}


def period_since(period: str, *, now: datetime | None = None) -> datetime | None:
    """The start of ``period`` (local midnight), or None for all time."""
    days = PERIODS.get(period)
    if days is None:
        return None
    now = now or datetime.now()
    return datetime(now.year, now.month, now.day) - timedelta(days=days)


def default_period(counts: dict[str, int]) -> str:
    """The shortest period with calls in it (all time when the store has none recently)."""
    for p in ("Today", "Last 7 days", "Last 30 days"):
        if counts.get(p):
            return "Last 7 days" if p == "Today" else p
    return "All time"


def date_bounds(value: Any) -> tuple[datetime | None, datetime | None]:
    """A ``st.date_input`` range as ``(since, until)``: midnight of the first day and of the day
    after the last (until is exclusive); a half-picked range gives only ``since``."""
    days = list(value) if isinstance(value, (list, tuple)) else ([value] if value else [])
    since = datetime.combine(days[0], datetime.min.time()) if days else None
    until = datetime.combine(days[1], datetime.min.time()) + timedelta(days=1) if len(days) > 1 else None
    return since, until


def fleet_range_default(status: dict[str, Any]) -> tuple:
    """The last 30 days of stored calls (by call time), as a ``st.date_input`` range."""
    last = status.get("last_call_time")
    first = status.get("first_call_time")
    if not last:
        today = datetime.now().date()
        return (today - timedelta(days=29), today)
    start = max(first.date(), last.date() - timedelta(days=29)) if first else last.date() - timedelta(days=29)
    return (start, last.date())


def default_bucket(days: tuple) -> str:
    """``hour`` when the range covers at most two days (one point per day says nothing), else ``day``."""
    return "hour" if len(days) == 2 and (days[1] - days[0]).days < 2 else "day"
