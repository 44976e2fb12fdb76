"""Helpers of the Overview page (:mod:`pages.overview`)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from ui import charts
from ui.dates import period_since
from ui.formatting import severity_mark
from ui.widgets import severity_column


def recent_counts(url: str, *, now: datetime | None = None) -> dict[str, int]:
    """Calls (by call time) today, in the last 7 and the last 30 days."""
    from ui import cached

    return {p: cached.count_calls(url, since=period_since(p, now=now))
            for p in ("Today", "Last 7 days", "Last 30 days")}


FINDING_COUNT_COLUMNS = {
    "finding": st.column_config.TextColumn("Finding"),
    "severity": severity_column("Severity", None),
    "calls": st.column_config.NumberColumn("Calls"),
    "call_share": st.column_config.NumberColumn("Share of calls", format="percent"),
}


def finding_counts_display(counts: pd.DataFrame) -> pd.DataFrame:
    """:func:`core.store.queries.finding_counts` rows with readable names."""
    return pd.DataFrame({"finding": counts["code"].map(charts.finding_label),
                         "severity": counts["severity"].map(severity_mark),
                         "calls": counts["calls"], "call_share": counts["call_share"]})
