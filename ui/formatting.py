"""Numbers, times, severities and findings as people read them (text and Markdown, no widgets)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from core.progress import format_duration
from ui import charts


def fmt_duration(seconds: float | None) -> str:
    """``1:05`` / ``1:02:03`` for a duration in seconds; ``–`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    return format_duration(float(seconds))


def fmt_mos(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{float(value):.2f}"


def fmt_time(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, str):
        return value
    return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M")


def fmt_span(start_s: float, end_s: float) -> str:
    return f"{fmt_duration(start_s)}–{fmt_duration(end_s)}"


def fmt_age(value: Any, *, now: datetime | None = None) -> str:
    """How long ago ``value`` was: ``just now``, ``25 min ago``, ``5 h ago``, ``17 days ago``."""
    if value is None or value is pd.NaT:
        return "–"
    seconds = ((now or datetime.now()) - pd.Timestamp(value).to_pydatetime()).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    days = int(seconds // 86400)
    return "1 day ago" if days == 1 else f"{days} days ago"


_BADGE_COLORS = {"critical": "red", "warning": "orange", "info": "gray"}


def severity_mark(severity: Any) -> list[str]:
    """A severity as the one-item list a :func:`severity_column` shows as a coloured pill."""
    return [charts.SEVERITY_LABELS[severity]] if severity in charts.SEVERITY_LABELS else []


def finding_names(codes: Any) -> list[str]:
    """``"dead_air,clipping"`` as ``["Dead air", "Clipping"]`` (pills in a :data:`FINDINGS_COLUMN`)."""
    if not isinstance(codes, str) or not codes:
        return []
    return [charts.finding_label(c) for c in codes.split(",") if c]


def finding_badges_markdown(findings: Sequence[dict[str, Any]]) -> str:
    """One coloured badge per finding code (worst severity of that code), e.g. ``:red-badge[Dead air]``."""
    if not findings:
        return ":green-badge[:material/check: No findings]"
    worst: dict[str, str] = {}
    counts: dict[str, int] = {}
    for f in findings:
        code, sev = f["code"], f["severity"]
        counts[code] = counts.get(code, 0) + 1
        current = worst.get(code)
        if current is None or charts.SEVERITY_ORDER.index(sev) < charts.SEVERITY_ORDER.index(current):
            worst[code] = sev
    ordered = sorted(worst, key=lambda c: (charts.SEVERITY_ORDER.index(worst[c]), charts.finding_label(c)))
    badges = []
    for code in ordered:
        label = charts.finding_label(code) + (f" ×{counts[code]}" if counts[code] > 1 else "")
        badges.append(f":{_BADGE_COLORS.get(worst[code], 'gray')}-badge[{label}]")
    return " ".join(badges)


def leg_heading(leg: str) -> str:
    """A leg's name in its colour (Markdown), the same colour as in every chart."""
    colour = charts.LEG_COLORS.get(leg, "#475569")
    return f"<span style='color:{colour};font-weight:600'>● {charts.LEG_LABELS.get(leg, leg)}</span>"
