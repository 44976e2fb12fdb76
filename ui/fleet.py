"""Helpers of the Fleet trends page (:mod:`pages.fleet`): groupings, rankings, drill-down."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import streamlit as st

GROUP_OPTIONS = {"agent": "Agent", "campaign": "Campaign", "server": "Server", "carrier": "Carrier",
                 "layout": "Layout"}


GROUP_FILTER = {"agent": "agent", "campaign": "campaign", "server": "server", "carrier": "carrier",
                "layout": "layout"}


GROUP_CALL_COLUMN = {"agent": "agent", "campaign": "campaign", "server": "server_ip", "carrier": "carrier",
                     "layout": "layout"}


SORT_OPTIONS = {"problem_rate": "Problem rate", "mean_mos": "Lowest mean MOS", "one_way_rate": "One-way rate",
                "dead_air_s_per_call": "Dead air per call", "findings_per_call": "Findings per call"}


TREND_METRICS = {"mean_mos": ("Mean MOS", False), "p10_mos": ("MOS, 10th percentile", False),
                 "problem_rate": ("Problem rate", True), "calls": ("Calls", False)}


MAX_GROUP_LINES = 6


def _pct(label: str, help: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="percent", help=help)


GROUP_COLUMNS = {
    "calls": st.column_config.NumberColumn("Calls"),
    "call_minutes": st.column_config.NumberColumn("Minutes", format="%.0f"),
    "mean_mos": st.column_config.NumberColumn("Mean MOS", format="%.2f"),
    "p10_mos": st.column_config.NumberColumn("P10 MOS", format="%.2f", help="10th percentile of call MOS"),
    "problem_rate": _pct("Problem rate", "Share of calls with a warning or critical finding"),
    "rate_one_way_audio": _pct("One-way"),
    "rate_dead_air": _pct("Dead air"),
    "rate_clipping": _pct("Clipping"),
    "rate_packet_loss": _pct("Packet loss"),
    "dead_air_s_per_call": st.column_config.NumberColumn("Dead air / call", format="%.1f s"),
}


def groups_display(groups: pd.DataFrame, by: str) -> pd.DataFrame:
    cols = [by, *GROUP_COLUMNS]
    return groups[[c for c in cols if c in groups.columns]]


def top_groups(trend: pd.DataFrame, group: str, n: int = MAX_GROUP_LINES) -> tuple[pd.DataFrame, int]:
    """The trend rows of the ``n`` groups with most calls, and how many groups were left out."""
    totals = trend.groupby(group)["calls"].sum().sort_values(ascending=False)
    keep = totals.index[:n]
    return trend[trend[group].isin(keep)].reset_index(drop=True), max(len(totals) - n, 0)


def drill_down_calls(url: str, *, by: str, value: str, since: datetime | None, until: datetime | None) -> pd.DataFrame:
    """The calls of one group (agent, server...) in the period, worst MOS first."""
    from core.store.queries import UNKNOWN
    from ui import cached

    if value != UNKNOWN:
        return cached.list_calls(url, since=since, until=until, order="worst_mos", limit=500,
                                 **{GROUP_FILTER[by]: value})
    frame = cached.list_calls(url, since=since, until=until, order="worst_mos", limit=5000)
    return frame[frame[GROUP_CALL_COLUMN[by]].isna()].head(500).reset_index(drop=True)
