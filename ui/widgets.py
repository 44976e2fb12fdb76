"""Pieces several pages show: metric rows, call tables with their columns, downloads, banners."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import streamlit as st

from ui import charts
from ui.formatting import finding_names, fmt_duration, severity_mark


def severity_column(label: str = "Worst", help: str | None = "Most severe finding of the call") -> Any:
    """Severity as a pill in the severity colour (read-only tables)."""
    return st.column_config.MultiselectColumn(
        label, help=help, options=[charts.SEVERITY_LABELS[s] for s in charts.SEVERITY_ORDER],
        color=[charts.SEVERITY_COLORS[s] for s in charts.SEVERITY_ORDER])


FINDINGS_COLUMN = st.column_config.MultiselectColumn(
    "Findings", options=[charts.finding_label(c) for c in charts.FINDING_LABELS],
    color="#cbd5e1")


CALL_COLUMNS = {
    "call_time": st.column_config.DatetimeColumn("Call time", format="YYYY-MM-DD HH:mm"),
    "call_id": st.column_config.TextColumn("Call", width="medium"),
    "duration": st.column_config.TextColumn("Length"),
    "agent": st.column_config.TextColumn("Agent"),
    "campaign": st.column_config.TextColumn("Campaign"),
    "layout": st.column_config.TextColumn("Layout"),
    "mos_caller": st.column_config.NumberColumn("MOS caller", format="%.2f", help="NISQA MOS of the caller leg (1–5)"),
    "mos_agent": st.column_config.NumberColumn("MOS agent", format="%.2f", help="NISQA MOS of the agent leg (1–5)"),
    "mos_mixed": st.column_config.NumberColumn("MOS mix", format="%.2f",
                                               help="NISQA MOS of the single mixed track (conference or mono)"),
    "severity": severity_column(),
    "findings": FINDINGS_COLUMN,
}


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    help: str | None = None


def metrics_row(metrics: Sequence[Metric]) -> None:
    """Metrics side by side, bordered."""
    for col, m in zip(st.columns(len(metrics)), metrics, strict=True):
        col.metric(m.label, m.value, help=m.help, border=True)


def calls_display(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of :func:`core.store.queries.list_calls` as a table for people (labels, no raw codes)."""
    out = pd.DataFrame({
        "call_time": df["call_time"],
        "call_id": df["call_id"],
        "duration": df["duration_s"].map(fmt_duration),
        "agent": df["agent"],
        "campaign": df["campaign"],
        "severity": df["worst_severity"].map(severity_mark),
        "findings": df["finding_codes"].map(finding_names),
        "mos_caller": df["mos_caller"],
        "mos_agent": df["mos_agent"],
        "mos_mixed": df["mos_mixed"],
        "layout": df["layout"].map(lambda v: v.capitalize() if isinstance(v, str) else v),
    })
    # a column that is empty for every row only adds noise (e.g. no mixed legs, no agents known)
    return drop_empty_columns(out, ("mos_mixed", "mos_caller", "mos_agent", "agent", "campaign"))


def drop_empty_columns(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``frame`` without those of ``columns`` that are empty in every row."""
    return frame.drop(columns=[c for c in columns if frame[c].isna().all()])


def selectable_table(df: pd.DataFrame, *, key: str, column_config: dict | None = None,
                     height: int | Literal["auto"] = "auto") -> None:
    """A read-only table whose rows can be clicked (single row); read the choice with
    :func:`ui.state.selected_row`."""
    st.dataframe(df, key=key, on_select="rerun", selection_mode="single-row", hide_index=True,
                 column_config=column_config or CALL_COLUMNS, height=height, placeholder="–")


def csv_download(df: pd.DataFrame, *, name: str, key: str, label: str = "Download CSV") -> None:
    """A download button for ``df`` as CSV (``name`` without extension)."""
    st.download_button(label, df.to_csv(index=False).encode("utf-8"), file_name=f"{name}.csv", mime="text/csv",
                       key=key, icon=":material/download:")


def empty_state(message: str, *, icon: str = ":material/inbox:") -> None:
    st.info(message, icon=icon)


def demo_banner() -> None:
    st.info(
        "**Demo data** — a month of a small contact centre generated on this machine (recorded speech through "
        "a telephone line, with problems planted for you to find: see the README). Configure ViciDial or a result store in `.streamlit/secrets.toml` "
        "(see `.streamlit/secrets.toml.example`) or `callqa.toml` to work on real calls.",
        icon=":material/science:",
    )


def open_selected_call(key: str, links: Sequence[dict[str, str]]) -> None:
    """Switch to the deep dive when a row of the table ``key`` is selected; ``links[i]`` holds the
    deep-link parameters of row ``i`` (``call`` and, for an unanalysed call, where it comes from)."""
    from ui import state

    index = state.selected_row(key)
    if index is not None and 0 <= index < len(links):
        st.switch_page(state.PAGE_DEEP_DIVE, query_params=dict(links[index]))
