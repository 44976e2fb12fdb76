"""The figures of the managers' report, read from the result store.

A period is a local calendar day, or 7 days, ending at ``end`` (exclusive, local midnight):
``callqa report --period week`` on a Monday covers Monday to Sunday of the week before. Every
headline figure is given for the period and for the one just before it, so the report can say
what changed. All figures come from the same SQL aggregates as the Fleet page
(:mod:`core.store.queries`); nothing is sampled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from core.alerts.state import AlertEvent, list_events
from core.errors import ParameterError
from core.store.queries import (
    finding_counts,
    fleet_groups,
    fleet_trend,
    list_calls,
    list_errors,
    window_stats,
)
from core.store.store import utcnow

if TYPE_CHECKING:
    from core.store.store import ResultStore

PERIODS = {"day": 1, "week": 7}
#: Groups the report ranks, with the column of :func:`core.store.queries.fleet_groups`.
WORST_BY = ("carrier", "agent", "campaign")
WORST_LIMIT = 5


@dataclass(frozen=True)
class Headline:
    """One headline figure now and in the previous period.

    ``kind`` says how to show it: ``count``, ``minutes``, ``rate`` (a fraction) or ``mos``;
    ``better`` is ``higher`` or ``lower`` (which direction is good news), or ``""``.
    """

    key: str
    label: str
    current: float | None
    previous: float | None
    kind: str
    better: str = ""

    @property
    def change(self) -> float | None:
        """Current minus previous (None when either is missing)."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def verdict(self) -> str:
        """``better``, ``worse`` or ``same`` (no direction, or no change)."""
        change = self.change
        if change is None or not self.better or abs(change) < 1e-12:
            return "same"
        return "better" if (change > 0) == (self.better == "higher") else "worse"


@dataclass
class Report:
    """Everything the report shows; :mod:`core.report.render` turns it into HTML."""

    period: str
    since: datetime
    until: datetime
    previous_since: datetime
    generated_at: datetime
    store: str
    headlines: list[Headline]
    worst: dict[str, pd.DataFrame]
    trend: pd.DataFrame
    mos_values: list[float]
    findings: pd.DataFrame
    alerts: list[AlertEvent]
    narrative: str | None = None
    narrative_model: str | None = None
    narrative_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        last = self.until - timedelta(days=1)
        if self.period == "day":
            return f"Call quality on {self.since:%A %d %B %Y}"
        return f"Call quality, {self.since:%d %b} – {last:%d %b %Y}"

    def headline(self, key: str) -> Headline:
        return next(h for h in self.headlines if h.key == key)

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready data (``callqa report --json``)."""
        return {
            "period": self.period,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "previous_since": self.previous_since.isoformat(),
            "generated_at": self.generated_at.isoformat() + "Z",
            "headlines": {h.key: {"label": h.label, "current": h.current, "previous": h.previous,
                                  "change": h.change, "verdict": h.verdict} for h in self.headlines},
            "worst": {by: _records(df) for by, df in self.worst.items()},
            "findings": _records(self.findings),
            "alerts": [{"id": e.id, "rule": e.rule, "group_by": e.group_by, "group": e.group_key,
                        "severity": e.severity, "value": e.value, "calls": e.calls,
                        "created_at": e.created_at.isoformat() + "Z"} for e in self.alerts],
            "narrative": self.narrative,
        }


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for row in df.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
    return out


def period_bounds(period: str, end: date) -> tuple[datetime, datetime, datetime]:
    """``(previous_since, since, until)`` as local midnights for a ``day`` or ``week`` ending at ``end``.

    Raises
    ------
    ParameterError
        An unknown period.
    """
    days = PERIODS.get(period)
    if days is None:
        raise ParameterError(f"period={period!r}; choose one of {', '.join(PERIODS)}")
    until = datetime(end.year, end.month, end.day)
    since = until - timedelta(days=days)
    return since - timedelta(days=days), since, until


def _local_to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)  # naive = local time


def _fleet(store: ResultStore, since: datetime, until: datetime) -> dict[str, Any]:
    frame = window_stats(store, since=since, until=until)
    return frame.iloc[0].to_dict() if len(frame) else {"calls": 0, "call_minutes": 0.0}


def _failed(store: ResultStore, since: datetime, until: datetime) -> int:
    errors = list_errors(store, limit=None)
    if errors.empty:
        return 0
    at = errors["created_at"]
    return int(((at >= _local_to_utc(since)) & (at < _local_to_utc(until))).sum())


def _num(row: dict[str, Any], key: str) -> float | None:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def headlines(store: ResultStore, *, previous_since: datetime, since: datetime, until: datetime,
              alerts: int, previous_alerts: int) -> list[Headline]:
    """The headline figures of the period and of the one before (see :class:`Headline`)."""
    now, before = _fleet(store, since, until), _fleet(store, previous_since, since)
    spec = (("calls", "Calls analysed", "calls", "count", ""),
            ("call_minutes", "Call-minutes", "call_minutes", "minutes", ""),
            ("mean_mos", "Mean MOS", "mean_mos", "mos", "higher"),
            ("p10_mos", "MOS, worst 10 %", "p10_mos", "mos", "higher"),
            ("problem_rate", "Calls with a problem", "problem_rate", "rate", "lower"),
            ("one_way_rate", "One-way audio", "one_way_rate", "rate", "lower"),
            ("dead_air_rate", "Dead air", "rate_dead_air", "rate", "lower"),
            ("packet_loss_rate", "Packet loss", "rate_packet_loss", "rate", "lower"))
    out = [Headline(key, label, _num(now, col), _num(before, col), kind, better)
           for key, label, col, kind, better in spec]
    out.append(Headline("failed", "Failed analyses", float(_failed(store, since, until)),
                        float(_failed(store, previous_since, since)), "count", "lower"))
    out.append(Headline("alerts", "Alerts fired", float(alerts), float(previous_alerts), "count", "lower"))
    return out


def build_report(store: ResultStore, *, period: str = "week", end: date | None = None,
                 min_group_calls: int | None = None) -> Report:
    """Read the report's figures (no narrative; :func:`core.report.narrative.add_narrative` adds it).

    Parameters
    ----------
    store : ResultStore
    period : str
        ``day`` or ``week``.
    end : date, optional
        End of the period (exclusive); default today, so the period is yesterday or the last 7 full days.
    min_group_calls : int, optional
        Carriers, agents and campaigns with fewer calls are not ranked (default 5 for a week, 2 for a day).

    Returns
    -------
    Report
    """
    previous_since, since, until = period_bounds(period, end or date.today())
    fired = list_events(store, since_utc=_local_to_utc(previous_since), until_utc=_local_to_utc(until),
                        kind="firing", limit=None)
    current = [e for e in fired if e.created_at >= _local_to_utc(since)]
    minimum = min_group_calls if min_group_calls is not None else (5 if period == "week" else 2)
    worst = {by: fleet_groups(store, by=by, since=since, until=until, sort="problem_rate", min_calls=minimum,
                              limit=WORST_LIMIT) for by in WORST_BY}
    bucket = "hour" if period == "day" else "day"
    trend = fleet_trend(store, since=since, until=until, bucket=bucket)
    mos = list_calls(store, since=since, until=until, limit=None)["mos_min"].dropna().tolist()
    return Report(
        period=period, since=since, until=until, previous_since=previous_since, generated_at=utcnow(),
        store=store.display_url,
        headlines=headlines(store, previous_since=previous_since, since=since, until=until, alerts=len(current),
                            previous_alerts=len(fired) - len(current)),
        worst=worst, trend=trend, mos_values=[float(v) for v in mos],
        findings=finding_counts(store, since=since, until=until), alerts=current,
        extra={"min_group_calls": minimum, "bucket": bucket},
    )
