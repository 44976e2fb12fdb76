"""Helpers of the Call lookup page (:mod:`pages.lookup`): search results beside the stored
headlines, each row with its deep link."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.errors import ParameterError
from ui.dates import date_bounds
from ui.formatting import finding_names, fmt_duration, severity_mark
from ui.widgets import CALL_COLUMNS, calls_display, drop_empty_columns


def with_headlines(frame: pd.DataFrame, url: str, *, id_column: str) -> pd.DataFrame:
    """``frame`` plus the stored analysis headlines of its calls (MOS per leg, findings)."""
    from ui import cached

    heads = cached.headlines(url, tuple(str(c) for c in frame[id_column].dropna().unique()))
    merged = frame.merge(heads, how="left", left_on=id_column, right_on="call_id", suffixes=("", "_stored"))
    merged["analysed"] = merged["layout"].notna()
    return merged


HEADLINE_COLUMNS = {
    "analysed": st.column_config.CheckboxColumn("Analysed", help="Already in the result store"),
    "mos_caller": CALL_COLUMNS["mos_caller"],
    "mos_agent": CALL_COLUMNS["mos_agent"],
    "mos_mixed": CALL_COLUMNS["mos_mixed"],
    "severity": CALL_COLUMNS["severity"],
    "findings": CALL_COLUMNS["findings"],
}


def _headline_display(merged: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({
        "analysed": merged["analysed"],
        "severity": merged["worst_severity"].map(severity_mark),
        "findings": merged["finding_codes"].map(finding_names),
        "mos_caller": merged["mos_caller"],
        "mos_agent": merged["mos_agent"],
        "mos_mixed": merged["mos_mixed"],
    })
    return drop_empty_columns(out, ("mos_caller", "mos_agent", "mos_mixed"))


VICIDIAL_COLUMNS = {
    "call_date": st.column_config.DatetimeColumn("Call time", format="YYYY-MM-DD HH:mm"),
    "call": st.column_config.TextColumn("Recording", width="medium"),
    "direction": st.column_config.TextColumn("Direction"),
    "agent": st.column_config.TextColumn("Agent"),
    "campaign": st.column_config.TextColumn("Campaign / in-group"),
    "phone": st.column_config.TextColumn("Phone"),
    "status": st.column_config.TextColumn("Status"),
    "length": st.column_config.TextColumn("Length"),
    "hangup": st.column_config.TextColumn("Hangup (SIP)", help="Carrier hangup cause and SIP reason"),
    "server": st.column_config.TextColumn("Server"),
    **HEADLINE_COLUMNS,
}


def vicidial_results(frame: pd.DataFrame, url: str) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """A ViciDial search (:func:`core.vicidial.search_recordings`) beside the stored headlines:
    the table to show and the deep-link parameters of each row."""
    merged = with_headlines(frame, url, id_column="filename")

    def agent(row: pd.Series) -> str:
        user, name = row.get("user"), row.get("full_name")
        return f"{user} ({name})" if isinstance(name, str) and name and name != user else (user or "")

    def hangup(row: pd.Series) -> str:
        parts = [str(row[c]) for c in ("hangup_cause", "sip_hangup_cause") if pd.notna(row.get(c))]
        reason = row.get("sip_hangup_reason")
        return " / ".join(parts) + (f" {reason}" if isinstance(reason, str) and reason else "")

    length = merged["call_length_in_sec"].fillna(merged["length_in_sec"])
    display = pd.DataFrame({
        "call_date": merged["call_date"],
        "call": merged["filename"],
        "direction": merged["direction"],
        "agent": merged.apply(agent, axis=1) if len(merged) else pd.Series(dtype="object"),
        "campaign": merged["campaign_id"].fillna(merged["ingroup"]),
        "phone": merged["phone_number"],
        "status": merged["status"],
        "length": length.map(lambda v: fmt_duration(float(v)) if pd.notna(v) else "–"),
        "hangup": merged.apply(hangup, axis=1) if len(merged) else pd.Series(dtype="object"),
        "server": merged["server_ip"],
    })
    # who and what first, then the analysis headlines, then the dialer's details
    first = ["call_date", "call", "agent", "campaign"]
    display = pd.concat([display[first], _headline_display(merged), display.drop(columns=first)], axis=1)
    links = [{"call": str(f), "recording_id": str(int(r))}
             for f, r in zip(merged["filename"], merged["recording_id"], strict=True)]
    return display, links


FOLDER_COLUMNS = {
    "call_time": st.column_config.DatetimeColumn("Call time", format="YYYY-MM-DD HH:mm"),
    "call": st.column_config.TextColumn("Call", width="medium"),
    "files": st.column_config.TextColumn("Files", help="in = caller leg, out = agent leg, all = mix"),
    "size_kb": st.column_config.NumberColumn("Size", format="%.0f KB"),
    **HEADLINE_COLUMNS,
}


def folder_results(frame: pd.DataFrame, folder: str, url: str) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """The calls of a recording folder beside the stored headlines, and each row's deep link."""
    merged = with_headlines(frame, url, id_column="call_id")
    display = pd.concat([pd.DataFrame({"call_time": merged["call_time"], "call": merged["call_id"]}),
                         _headline_display(merged),
                         pd.DataFrame({"files": merged["files"], "size_kb": merged["size_kb"]})], axis=1)
    links = [{"call": str(c), "folder": folder} for c in merged["call_id"]]
    return display, links


def store_results(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Stored calls (:func:`core.store.queries.list_calls`) as a table, and each row's deep link."""
    return calls_display(frame), [{"call": str(c)} for c in frame["call_id"]]


def vicidial_filters(*, days: Any, phone: str, agent: str, lead: str, campaign: str, ingroup: str, status: str):
    """The ViciDial lookup form as :class:`core.vicidial.LookupFilters` (raises ``ParameterError``)."""
    from core.vicidial import LookupFilters

    since, until = date_bounds(days)
    lead = lead.strip()
    if lead and not lead.isdigit():
        raise ParameterError(f"lead id {lead!r} must be a number")
    return LookupFilters(since=since, until=until, phone=phone or None, agent=agent or None,
                         campaign=campaign or None, ingroup=ingroup or None, lead_id=int(lead) if lead else None,
                         status=status.strip().upper() or None)


def folder_choice(folder: str, sub: str = "") -> str:
    """``folder`` or its sub-folder ``sub``, checked against the allowed folders (raises ``ConfigError``)."""
    from pathlib import Path

    from ui import cached

    chosen = Path(folder) / sub.strip() if sub and sub.strip() else Path(folder)
    return str(cached.check_folder(str(chosen)))


def filter_folder_calls(frame: pd.DataFrame, *, days: Any = (), text: str = "") -> pd.DataFrame:
    """Folder calls within the date range and whose name contains ``text``."""
    since, until = date_bounds(days)
    keep = pd.Series(True, index=frame.index)
    if since is not None:
        keep &= frame["call_time"] >= since
    if until is not None:
        keep &= frame["call_time"] < until
    if text and text.strip():
        keep &= frame["call_id"].str.contains(text.strip(), case=False, regex=False)
    return frame[keep].reset_index(drop=True)
