"""Reusable pieces of the pages: error messages, badges, metric rows, call tables, the health panel.

Pages call :func:`call_or_stop` / :func:`call_or_none` around ``core`` and ``ui.cached`` calls so
that every :class:`~core.errors.CallQAError` becomes a readable message instead of a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import pandas as pd
import streamlit as st

from core.config import AnalysisConfig
from core.errors import (
    AudioError,
    AudioNotFoundError,
    BudgetExceededError,
    CallNotFoundError,
    CallQAError,
    ConfigError,
    FetchError,
    LLMError,
    LLMNotConfiguredError,
    ModelUnavailableError,
    ParameterError,
    QueryRefusedError,
    StoreError,
    UnsafeLocationError,
    ViciDialError,
)
from ui import charts

T = TypeVar("T")

# --- errors -------------------------------------------------------------------------------------------
#: (error class, level, headline, what to do) — first match wins, so subclasses come first.
ERROR_VIEWS: tuple[tuple[type[CallQAError], str, str, str], ...] = (
    (CallNotFoundError, "warning", "Call not found",
     "Check the link, or find the call in **Call lookup**."),
    (LLMNotConfiguredError, "info", "Claude is not configured",
     "Set `ANTHROPIC_API_KEY` in the environment or in `.streamlit/secrets.toml`."),
    (BudgetExceededError, "warning", "Today's Claude budget is used up",
     "Raise `[claude] daily_budget_usd` or try again tomorrow (UTC)."),
    (LLMError, "error", "The Claude request failed", "Try again in a moment."),
    (QueryRefusedError, "warning", "Query refused", "Only single read-only SELECT statements are allowed."),
    (ViciDialError, "error", "ViciDial lookup failed",
     "Check `[vicidial]` in callqa.toml (host, port, user) and the network. Stored results and recording "
     "folders still work."),
    (UnsafeLocationError, "error", "Recording location refused",
     "The recording's path or URL is not in `[recordings]` allowed_hosts / local_roots."),
    (FetchError, "error", "The recording could not be fetched", "Check `[recordings]` in callqa.toml."),
    (AudioNotFoundError, "error", "Recording not found", "The file was moved or deleted since it was analysed."),
    (AudioError, "error", "The recording cannot be analysed",
     "The file is damaged, truncated or not audio. Other calls are not affected."),
    (ModelUnavailableError, "error", "A model is unavailable",
     "Install the models with `make models` (or `python -m core.quality.manager install`)."),
    (StoreError, "error", "The result store is unavailable",
     "Check `CALLQA_STORE` / `[store] url`; `callqa migrate` upgrades an old store."),
    (ParameterError, "warning", "Invalid input", ""),
    (ConfigError, "error", "Configuration problem", "Fix callqa.toml, `.streamlit/secrets.toml` or the environment."),
    (CallQAError, "error", "Something went wrong", ""),
)


def describe_error(exc: CallQAError) -> tuple[str, str, str]:
    """``(level, headline, text)`` for an error: level is ``error``, ``warning`` or ``info``."""
    for cls, level, headline, hint in ERROR_VIEWS:
        if isinstance(exc, cls):
            message = str(exc).strip()
            text = f"{message[0].upper()}{message[1:]}" if message else headline
            if hint:
                text = f"{text}{'' if text.endswith(('.', '!', '?', ')')) else '.'}\n\n{hint}"
            return level, headline, text
    return "error", "Something went wrong", str(exc)


def show_error(exc: CallQAError) -> None:
    level, headline, text = describe_error(exc)
    render = {"error": st.error, "warning": st.warning, "info": st.info}[level]
    render(f"**{headline}** — {text}", icon={"error": ":material/error:", "warning": ":material/warning:",
                                              "info": ":material/info:"}[level])


def call_or_stop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; on a callqa error show it and stop the page."""
    try:
        return fn(*args, **kwargs)
    except CallQAError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop raises


def call_or_none(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)``; on a callqa error show it and return None (the page goes on)."""
    try:
        return fn(*args, **kwargs)
    except CallQAError as exc:
        show_error(exc)
        return None


# --- formatting ---------------------------------------------------------------------------------------
def fmt_duration(seconds: float | None) -> str:
    """``1:05`` / ``1:02:03`` for a duration in seconds; ``–`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    total = int(round(float(seconds)))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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


_BADGE_COLORS = {"critical": "red", "warning": "orange", "info": "gray"}


def severity_mark(severity: Any) -> list[str]:
    """A severity as the one-item list a :func:`severity_column` shows as a coloured pill."""
    return [charts.SEVERITY_LABELS[severity]] if severity in charts.SEVERITY_LABELS else []


def finding_names(codes: Any) -> list[str]:
    """``"dead_air,clipping"`` as ``["Dead air", "Clipping"]`` (pills in a :data:`FINDINGS_COLUMN`)."""
    if not isinstance(codes, str) or not codes:
        return []
    return [charts.finding_label(c) for c in codes.split(",") if c]


def severity_column(label: str = "Worst", help: str | None = "Most severe finding of the call") -> Any:
    """Severity as a pill in the severity colour (read-only tables)."""
    return st.column_config.MultiselectColumn(
        label, help=help, options=[charts.SEVERITY_LABELS[s] for s in charts.SEVERITY_ORDER],
        color=[charts.SEVERITY_COLORS[s] for s in charts.SEVERITY_ORDER])


FINDINGS_COLUMN = st.column_config.MultiselectColumn(
    "Findings", options=[charts.finding_label(c) for c in charts.FINDING_LABELS],
    color="#cbd5e1")


# --- badges and metrics ---------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Metric:
    label: str
    value: str
    help: str | None = None


def metrics_row(metrics: Sequence[Metric]) -> None:
    """Metrics side by side, bordered."""
    for col, m in zip(st.columns(len(metrics)), metrics, strict=True):
        col.metric(m.label, m.value, help=m.help, border=True)


def leg_heading(leg: str) -> str:
    """A leg's name in its colour (Markdown), the same colour as in every chart."""
    colour = charts.LEG_COLORS.get(leg, "#475569")
    return f"<span style='color:{colour};font-weight:600'>● {charts.LEG_LABELS.get(leg, leg)}</span>"


# --- call tables ---------------------------------------------------------------------------------------
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
    for col in ("mos_mixed", "mos_caller", "mos_agent", "agent", "campaign"):
        if out[col].isna().all():
            out = out.drop(columns=col)
    return out


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


# --- health ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Health:
    """One line of the configuration health: ``state`` is ok, warn, off or error."""

    name: str
    state: str
    summary: str
    detail: str = ""


_STATE_ICONS = {"ok": ":green[:material/check_circle:]", "warn": ":orange[:material/warning:]",
                "off": ":gray[:material/radio_button_unchecked:]", "error": ":red[:material/error:]"}


def health_checks(*, live: bool = False) -> list[Health]:
    """Store, models, ViciDial, recording access and the Claude key; ``live`` also connects to ViciDial.

    Never shows a secret: passwords and the API key are reported as present or absent only.
    """
    from ui import cached

    out: list[Health] = []
    try:
        settings = cached.get_settings()
    except CallQAError as exc:
        return [Health("Configuration", "error", "invalid", str(exc))]
    target = cached.store_target(settings)

    # store
    try:
        status = cached.store_status(target.url)
        origin = "demo data" if target.demo else f"chosen by {target.origin}"
        state = "ok" if status["schema_current"] else "warn"
        out.append(Health("Result store", state, f"{status['calls']:,} calls" + (" (demo)" if target.demo else ""),
                          f"{status['store']} ({origin}) · schema {status['schema']} · "
                          f"{status['errors']} failed analyses"))
    except CallQAError as exc:
        out.append(Health("Result store", "error", "unavailable", str(exc)))

    # models
    from core.audio.vad import model_path
    from core.quality.manager import weights_path

    weights = weights_path(settings)
    out.append(Health("NISQA quality model", "ok" if weights.is_file() else "warn",
                      "installed" if weights.is_file() else "missing (run `make models`)", str(weights)))
    vad = model_path()
    out.append(Health("Voice activity detector", "ok" if vad.is_file() else "error",
                      "installed" if vad.is_file() else "missing", str(vad)))

    # ViciDial
    from core.vicidial import RecordingAccess, ViciDialSettings

    try:
        vs = ViciDialSettings.from_settings(settings)
    except ConfigError as exc:
        out.append(Health("ViciDial", "error", "invalid settings", str(exc)))
        vs = None
    if vs is not None and not vs.configured:
        out.append(Health("ViciDial", "off", "not configured", "Set [vicidial] host in callqa.toml or "
                          "CALLQA_VICIDIAL_HOST to look calls up in ViciDial."))
    elif vs is not None:
        detail = f"{vs.user}@{vs.address}/{vs.database}, password {'set' if vs.password else 'not set'}"
        if live:
            ok, message = vicidial_reachable()
            out.append(Health("ViciDial", "ok" if ok else "error", "reachable" if ok else "unreachable",
                              detail if ok else f"{detail}: {message}"))
        else:
            out.append(Health("ViciDial", "ok", f"configured ({vs.address})", detail))

    # recording access
    try:
        access = RecordingAccess.from_settings(settings)
        parts = []
        if access.local_roots:
            parts.append(f"{len(access.local_roots)} local root(s)")
        if access.sftp_configured:
            parts.append(f"SFTP {access.sftp_host}")
        if access.allowed_hosts:
            parts.append(f"HTTP from {len(access.allowed_hosts)} host(s)")
        folders = cached.allowed_folders(settings)
        detail = "Dashboard folders: " + (", ".join(str(f) for f in folders) or "none")
        if parts:
            out.append(Health("Recording access", "ok", ", ".join(parts), detail))
        else:
            out.append(Health("Recording access", "off", f"{len(folders)} local folder(s) only", detail))
    except ConfigError as exc:
        out.append(Health("Recording access", "error", "invalid settings", str(exc)))

    # Claude
    try:
        from core.llm.settings import ClaudeSettings

        claude = ClaudeSettings.from_settings(settings)
        if claude.configured:
            out.append(Health("Claude API key", "ok", "present",
                              f"chat {claude.chat_model}, summaries {claude.summary_model}, "
                              f"budget ${claude.daily_budget_usd:g}/day"))
        else:
            out.append(Health("Claude API key", "off", "not set",
                              "Set ANTHROPIC_API_KEY (environment or .streamlit/secrets.toml) for summaries and chat."))
    except ConfigError as exc:
        out.append(Health("Claude API key", "error", "invalid [claude] settings", str(exc)))
    return out


@st.cache_data(ttl=60, show_spinner="Connecting to ViciDial…")
def vicidial_reachable() -> tuple[bool, str]:
    """Whether ViciDial answers (cached, failures included, so a dead host is not retried every rerun)."""
    from ui import cached

    try:
        return True, cached.vicidial_ping()
    except CallQAError as exc:
        return False, str(exc)


def health_sidebar(items: Iterable[Health]) -> None:
    """The compact health list for the sidebar."""
    lines = [f"{_STATE_ICONS[h.state]} **{h.name}** · {h.summary}" for h in items]
    st.markdown("  \n".join(lines), help="Details on the Settings page")


def sidebar_panel() -> None:
    """The sidebar under the navigation: a demo badge and the compact health list."""
    from ui import cached

    items = health_checks()
    try:
        demo = cached.store_target().demo
    except CallQAError:
        demo = False
    if demo:
        st.badge("Demo data", icon=":material/science:", color="violet")
    st.caption("Health")
    health_sidebar(items)


def health_table(items: Iterable[Health]) -> None:
    """The detailed health list (settings page)."""
    for h in items:
        with st.container(border=True):
            st.markdown(f"{_STATE_ICONS[h.state]} **{h.name}** — {h.summary}")
            if h.detail:
                st.caption(h.detail)


def demo_banner() -> None:
    st.info(
        "**Demo data** — a month of a small contact centre generated on this machine (recorded speech through "
        "a telephone line, with problems planted for you to find: see the README). Configure ViciDial or a result store in `.streamlit/secrets.toml` "
        "(see `.streamlit/secrets.toml.example`) or `callqa.toml` to work on real calls.",
        icon=":material/science:",
    )


# --- the AI summary --------------------------------------------------------------------------------------
_VERDICT_COLORS = {"ok": "green", "minor": "gray", "major": "orange", "critical": "red"}


def ai_summary_panel(summary: dict[str, Any] | None, *, claude_configured: bool) -> None:
    """A stored Claude summary (verdict, severity, summary, suspected cause), rendered safely."""
    if summary:
        from core.llm.render import safe_markdown

        severity = str(summary.get("severity") or "")
        badge = f":{_VERDICT_COLORS.get(severity, 'gray')}-badge[{severity.capitalize() or 'Unrated'}]"
        st.markdown(f"{badge} **{safe_markdown(str(summary.get('verdict') or ''))}**")
        st.markdown(safe_markdown(str(summary.get("summary") or "")))
        if summary.get("suspected_cause"):
            st.markdown(f"**Suspected cause:** {safe_markdown(str(summary['suspected_cause']))}")
        when = summary.get("created_at")
        st.caption(f"Written by {summary.get('model', 'Claude')}"
                   + (f" on {fmt_time(when)} UTC" if when else "") + " from the stored analysis.")
    elif claude_configured:
        st.caption("No AI summary of this call yet.")
    else:
        st.caption("AI summaries need a Claude API key: set `ANTHROPIC_API_KEY` in the environment or in "
                   "`.streamlit/secrets.toml`. Everything else works without it.")


# --- navigation ---------------------------------------------------------------------------------------
def open_selected_call(key: str, links: Sequence[dict[str, str]]) -> None:
    """Switch to the deep dive when a row of the table ``key`` is selected; ``links[i]`` holds the
    deep-link parameters of row ``i`` (``call`` and, for an unanalysed call, where it comes from)."""
    from ui import state

    index = state.selected_row(key)
    if index is not None and 0 <= index < len(links):
        st.switch_page(state.PAGE_DEEP_DIVE, query_params=dict(links[index]))


# --- periods ------------------------------------------------------------------------------------------
#: Period name -> days back from today's midnight (None: everything).
PERIODS: dict[str, int | None] = {"Today": 0, "Last 7 days": 6, "Last 30 days": 29, "All time": None}


def period_since(period: str, *, now: datetime | None = None) -> datetime | None:
    """The start of ``period`` (local midnight), or None for all time."""
    days = PERIODS.get(period)
    if days is None:
        return None
    now = now or datetime.now()
    return datetime(now.year, now.month, now.day) - timedelta(days=days)


def recent_counts(url: str, *, now: datetime | None = None) -> dict[str, int]:
    """Calls (by call time) today, in the last 7 and the last 30 days."""
    from ui import cached

    return {p: cached.count_calls(url, since=period_since(p, now=now))
            for p in ("Today", "Last 7 days", "Last 30 days")}


def default_period(counts: dict[str, int]) -> str:
    """The shortest period with calls in it (all time when the store has none recently)."""
    for p in ("Today", "Last 7 days", "Last 30 days"):
        if counts.get(p):
            return "Last 7 days" if p == "Today" else p
    return "All time"


# --- call lookup ----------------------------------------------------------------------------------------
def date_bounds(value: Any) -> tuple[datetime | None, datetime | None]:
    """A ``st.date_input`` range as ``(since, until)``: midnight of the first day and of the day
    after the last (until is exclusive); a half-picked range gives only ``since``."""
    days = list(value) if isinstance(value, (list, tuple)) else ([value] if value else [])
    since = datetime.combine(days[0], datetime.min.time()) if days else None
    until = datetime.combine(days[1], datetime.min.time()) + timedelta(days=1) if len(days) > 1 else None
    return since, until


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
    for col in ("mos_caller", "mos_agent", "mos_mixed"):
        if out[col].isna().all():
            out = out.drop(columns=col)
    return out


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


# --- deep dive ------------------------------------------------------------------------------------------
#: What the analysis is doing, per stage of :data:`core.pipeline.STAGES` (plus the ViciDial fetch).
STAGE_LABELS = {"fetch": "Fetching the recording from ViciDial", "decode": "Decoding the recordings",
                "stats": "Measuring levels", "silence": "Finding silences", "speech": "Detecting speech (VAD)",
                "measure": "Measuring SNR, dropouts and echo", "quality": "Scoring speech quality (NISQA)",
                "findings": "Deciding findings"}


def analysis_for(call_id: str, *, recording_id: str | None = None, folder: str | None = None) -> dict[str, Any]:
    """The analysis of ``call_id``: from the store, or analysed now (with ``st.status`` progress by
    stage) when the deep link says where the call comes from. Shows errors and stops the page."""
    from ui import cached

    url = call_or_stop(cached.store_target).url
    try:
        return cached.call_analysis(url, call_id)
    except CallNotFoundError as exc:
        if not recording_id and not folder:
            show_error(exc)
            st.stop()
    except CallQAError as exc:
        show_error(exc)
        st.stop()
    with st.status(f"Analysing {call_id}…", expanded=True) as status:
        def progress(stage: str) -> None:
            label = STAGE_LABELS.get(stage, stage)
            status.update(label=f"Analysing {call_id}: {label.lower()}…")
            status.write(f":material/check: {label}")

        try:
            if recording_id:
                if not str(recording_id).isdigit():
                    raise ParameterError(f"recording_id={recording_id!r} must be a number")
                doc, _ = cached.analyze_or_reuse(recording_id=int(recording_id), progress=progress)
            else:
                path = cached.find_in_folder(str(folder), call_id)
                doc, _ = cached.analyze_or_reuse(path=path, progress=progress)
        except CallQAError as exc:
            status.update(label=f"Could not analyse {call_id}", state="error", expanded=False)
            show_error(exc)
            st.stop()
        status.update(label=f"Analysed {call_id} in {doc.get('timings_s', {}).get('total', 0):.1f} s",
                      state="complete", expanded=False)
    return doc


def call_subtitle(meta: dict[str, Any]) -> str:
    """``2026-11-07 08:33 · 1003 · SALES``: when, who, which campaign (what is known of it)."""
    when = fmt_time(meta["call_time"]) if meta.get("call_time") else None
    return " · ".join(str(v) for v in (when, meta.get("agent"), meta.get("campaign")) if v) or " "


def header(doc: dict[str, Any]) -> None:
    """Duration, layout, MOS per leg and the findings of a call, as metrics and badges."""
    legs = charts.legs_of(doc)
    items = [Metric("Duration", fmt_duration(doc.get("duration_s"))),
             Metric("Layout", str(doc.get("layout", "–")).capitalize(), LAYOUT_HELP.get(str(doc.get("layout"))))]
    for leg in legs:
        quality = doc["legs"][leg].get("quality") or {}
        items.append(Metric(f"MOS {charts.LEG_SHORT.get(leg, leg)}", fmt_mos(quality.get("mos")),
                            "NISQA mean opinion score, 1 (bad) to 5 (excellent)"
                            if quality else doc["legs"][leg].get("quality_reason") or "not scored"))
    items.append(Metric("Findings", str(len(doc.get("findings", [])))))
    metrics_row(items)
    st.markdown(finding_badges_markdown(doc.get("findings", [])))


LAYOUT_HELP = {
    "channel": "Separate caller (-in) and agent (-out) recordings",
    "conference": "The conference mix on one track; -out is silent by design",
    "stereo": "One stereo file: one channel per leg",
    "mixed": "Only a mono mix: directional checks are limited",
}


def leg_sources(doc: dict[str, Any]) -> dict[str, str]:
    return {leg: str(doc["legs"][leg].get("source") or "") for leg in charts.legs_of(doc)}


def audio_players(doc: dict[str, Any], *, start_s: float = 0.0) -> None:
    """One player per leg, cued to ``start_s``; a missing recording is said, not crashed on."""
    from ui import cached

    sources = leg_sources(doc)
    for col, (leg, source) in zip(st.columns(len(sources)), sources.items(), strict=True):
        with col:
            st.markdown(leg_heading(leg), unsafe_allow_html=True)
            stamp = cached.file_stamp(source)
            if stamp is None:
                st.caption(f":material/volume_off: Recording not available at `{cached.split_source(source)[0]}`")
                continue
            data = call_or_none(cached.leg_audio, source, stamp)
            if data is not None:
                st.audio(data, format="audio/wav", start_time=int(start_s))


def timeline(doc: dict[str, Any], *, highlight: tuple[float, float] | None = None) -> None:
    """The aligned timelines: waveform per leg, speech/silence, MOS per window, findings."""
    from ui import cached

    duration = float(doc.get("duration_s") or 0.0)
    legs = charts.legs_of(doc)
    for leg, source in leg_sources(doc).items():
        stamp = cached.file_stamp(source)
        if stamp is None:
            continue
        env = call_or_none(cached.waveform_envelope, source, cached.ENVELOPE_WIDTH, stamp)
        if env is not None:
            st.altair_chart(charts.waveform_chart(env, leg=leg, duration_s=duration, highlight=highlight),
                            width="stretch")
    st.altair_chart(charts.activity_chart(charts.intervals_frame(doc, "speech"),
                                          charts.intervals_frame(doc, "silences"), legs=legs, duration_s=duration,
                                          highlight=highlight), width="stretch")
    windows = charts.windows_frame(doc)
    if not windows.empty:
        threshold = float(doc.get("config", {}).get("poor_quality_mos", AnalysisConfig.poor_quality_mos))
        st.altair_chart(charts.mos_window_chart(windows, legs=legs, duration_s=duration, threshold=threshold,
                                                highlight=highlight), width="stretch")
    findings = charts.findings_frame(doc)
    st.altair_chart(charts.findings_lane_chart(findings, legs=legs, duration_s=duration, highlight=highlight),
                    width="stretch")


FINDING_COLUMNS = {
    "when": st.column_config.TextColumn("When", help="Start–end in the call (m:ss)"),
    "finding": st.column_config.TextColumn("Finding"),
    "severity": severity_column("Severity", None),
    "leg": st.column_config.TextColumn("Leg"),
    "detail": st.column_config.TextColumn("Detail", width="large"),
}


def findings_display(findings: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "when": [fmt_span(s, e) for s, e in zip(findings["start_s"], findings["end_s"], strict=True)],
        "finding": findings["finding"],
        "severity": findings["severity"].map(severity_mark),
        "leg": findings["leg_label"],
        "detail": findings["detail"],
    })


LEG_DETAIL_ROWS = (
    ("Speech level", "speech_level_db", "{:.1f} dBFS"),
    ("Noise floor", "noise_floor_db", "{:.1f} dBFS"),
    ("SNR", "snr_db", "{:.1f} dB"),
    ("Talk time", "speech_ratio", "{:.0%}"),
    ("RMS level", ("stats", "rms_db"), "{:.1f} dBFS"),
    ("Peak", ("stats", "peak_db"), "{:.1f} dBFS"),
    ("Clipped samples", ("stats", "clipped_samples"), "{:,}"),
    ("Dropouts", "dropouts", "{:,}"),
    ("Encoding", "encoding", "{}"),
    ("Sample rate", "sample_rate", "{:,} Hz"),
)


def leg_details(doc: dict[str, Any]) -> pd.DataFrame:
    """Per-leg measurements as a table: one row per measurement, one column per leg."""
    data: dict[str, list[str]] = {"Measurement": [label for label, _, _ in LEG_DETAIL_ROWS]}
    for leg in charts.legs_of(doc):
        values = []
        for _, key, fmt in LEG_DETAIL_ROWS:
            value = doc["legs"][leg]
            for part in (key if isinstance(key, tuple) else (key,)):
                value = value.get(part) if isinstance(value, dict) else None
            try:
                values.append("–" if value is None else fmt.format(value))
            except (TypeError, ValueError):
                values.append(str(value))
        data[charts.LEG_LABELS.get(leg, leg)] = values
    return pd.DataFrame(data)


CONTEXT_FIELDS = (
    ("Agent", ("agent", "full_name")),
    ("Campaign / in-group", ("campaign", "ingroup")),
    ("Phone", ("phone_number",)),
    ("Lead", ("lead_id",)),
    ("Status", ("status", "term_reason")),
    ("Carrier", ("carrier", "dialstatus")),
    ("Hangup cause", ("hangup_cause",)),
    ("SIP", ("sip_hangup_cause", "sip_hangup_reason")),
    ("Server", ("server_ip",)),
    ("Uniqueid", ("uniqueid",)),
    ("Recording id", ("recording_id",)),
)


def vicidial_context(meta: dict[str, Any]) -> pd.DataFrame:
    """The ViciDial facts stored with a call as ``Field``/``Value`` rows (only the known ones)."""
    rows = []
    for label, keys in CONTEXT_FIELDS:
        parts: list[str] = []
        for k in keys:
            v = meta.get(k)
            if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
                continue
            text = str(v)
            if parts and k in ("full_name",):
                text = f"({text})"
            parts.append(text)
        if parts:
            rows.append((label, " ".join(parts)))
    return pd.DataFrame(rows, columns=["Field", "Value"])


def seek_from_selection(findings: pd.DataFrame, key: str) -> dict[str, Any] | None:
    """The finding row selected in table ``key`` as ``{start_s, end_s, label}``, or None."""
    from ui import state

    index = state.selected_row(key)
    if index is None or not 0 <= index < len(findings):
        return None
    row = findings.iloc[index]
    leg = row["leg"]
    where = "both legs" if not leg else "the mix" if leg == "mixed" else f"the {charts.LEG_SHORT.get(leg, leg)} leg"
    return {"start_s": float(row["start_s"]), "end_s": float(row["end_s"]),
            "label": f"{row['finding']} on {where} at {fmt_duration(row['start_s'])}"}


def ai_summary_section(call_id: str) -> None:
    """The stored AI summary of a call and, with a key, the button that asks Claude for one."""
    from ui import cached

    url = cached.store_target().url
    summary = call_or_none(cached.ai_summary, url, call_id)
    configured = cached.claude_configured()
    ai_summary_panel(summary, claude_configured=configured)
    if not configured:
        return
    label = "Summarise again" if summary else "Summarise with Claude"
    if st.button(label, key="deep.summarise", icon=":material/auto_awesome:"):
        with st.spinner("Asking Claude for a summary…"):
            done = call_or_none(cached.summarize_call, call_id, force=bool(summary))
        if done is not None:
            cached.ai_summary.clear()
            st.rerun()


# --- fleet ------------------------------------------------------------------------------------------------
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


def fleet_range_default(status: dict[str, Any]) -> tuple:
    """The last 30 days of stored calls (by call time), as a ``st.date_input`` range."""
    last = status.get("last_call_time")
    first = status.get("first_call_time")
    if not last:
        today = datetime.now().date()
        return (today - timedelta(days=29), today)
    start = max(first.date(), last.date() - timedelta(days=29)) if first else last.date() - timedelta(days=29)
    return (start, last.date())


# --- chat -------------------------------------------------------------------------------------------------
def render_chat_entry(entry: dict[str, Any], *, app_base_url: str = "") -> None:
    """One stored chat message (user or assistant) inside its ``st.chat_message``."""
    from core.llm.render import safe_markdown

    with st.chat_message(entry["role"]):
        for tool in entry.get("tools", []):
            with st.expander(tool["label"], icon=":material/build:"):
                if tool.get("sql"):
                    st.code(tool["sql"], language="sql")
                if tool.get("error"):
                    st.caption(f":material/error: {tool['error']}")
        if entry["role"] == "user":
            st.text(entry["text"])
        else:
            st.markdown(safe_markdown(entry["text"], app_base_url=app_base_url, known_ids=entry.get("call_ids", ())))
        for notice in entry.get("notices", []):
            st.caption(f":material/info: {notice}")
        if entry.get("cost_usd") is not None:
            st.caption(f"{entry.get('rounds', 1)} round(s) · ${entry['cost_usd']:.4f}")


def chat_turn(conversation: Any, question: str, services: Any) -> dict[str, Any] | None:
    """Ask one question and stream the answer into the current ``st.chat_message``; return the
    entry to keep in the transcript, or None when it failed (the error is shown)."""
    from core.llm.chat import Notice, TextDelta, ToolCallFinished, ToolCallStarted, TurnFinished, ask
    from core.llm.render import safe_markdown
    from core.llm.tools import ToolBox

    base = services.claude.app_base_url
    tools_box = st.container()
    placeholder = st.empty()
    text = ""
    tools: list[dict[str, Any]] = []
    notices: list[str] = []
    statuses: dict[str, Any] = {}
    final = None
    try:
        toolbox = ToolBox(calls=services.calls, runners=services.runners)
        for event in ask(conversation, question, client=services.client(), settings=services.claude,
                         toolbox=toolbox, repo=services.repo):
            if isinstance(event, TextDelta):
                text += event.text
                placeholder.markdown(safe_markdown(text, app_base_url=base) + " ▌")
            elif isinstance(event, ToolCallStarted):
                box: Any = tools_box.status(f"Running {event.name}…", expanded=False)
                if event.sql:
                    box.code(event.sql, language="sql")
                statuses[event.tool_use_id] = box
                tools.append({"id": event.tool_use_id, "label": event.name, "sql": event.sql})
            elif isinstance(event, ToolCallFinished):
                outcome = event.outcome
                label = (f"{outcome.name}: {outcome.error}" if outcome.is_error
                         else f"{outcome.name}: {outcome.row_count} row(s)")
                box = statuses.get(event.tool_use_id)
                if box is not None:
                    box.update(label=label, state="error" if outcome.is_error else "complete")
                for t in tools:
                    if t["id"] == event.tool_use_id:
                        t.update(label=label, sql=outcome.sql or t.get("sql"), error=outcome.error)
            elif isinstance(event, Notice):
                notices.append(event.message)
                st.caption(f":material/info: {event.message}")
            elif isinstance(event, TurnFinished):
                final = event
    except CallQAError as exc:
        placeholder.empty()
        show_error(exc)
        return None
    answer = final.text if final is not None else text
    ids = final.call_ids if final is not None else ()
    placeholder.markdown(safe_markdown(answer, app_base_url=base, known_ids=ids))
    entry = {"role": "assistant", "text": answer, "tools": tools, "notices": notices, "call_ids": list(ids),
             "cost_usd": final.cost_usd if final is not None else None,
             "rounds": final.rounds if final is not None else 1}
    if entry["cost_usd"] is not None:
        st.caption(f"{entry['rounds']} round(s) · ${entry['cost_usd']:.4f}")
    return entry


# --- settings ---------------------------------------------------------------------------------------------
def configuration_rows() -> pd.DataFrame:
    """Where the configuration comes from and the paths in use (no secrets)."""
    from core.store.engine import redact_url
    from ui import cached

    settings = cached.get_settings()
    target = cached.store_target(settings)
    rows = [
        ("Configuration file", str(settings.path) if settings.path else "none (defaults; set CALLQA_CONFIG)"),
        ("Secrets file sections", ", ".join(sorted(cached._secret_sections())) or "none"),
        ("Result store", redact_url(target.url) if "://" in target.url else target.url),
        ("Store chosen by", {"demo": "demo (nothing configured)", "default": "default path"}.get(target.origin,
                                                                                              target.origin)),
        ("Data folder", str(settings.data_dir)),
        ("Models folder", str(settings.models_dir)),
        ("Recording folders", ", ".join(str(f) for f in cached.allowed_folders(settings)) or "none"),
    ]
    return pd.DataFrame(rows, columns=["Setting", "Value"])


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


def default_bucket(days: tuple) -> str:
    """``hour`` when the range covers at most two days (one point per day says nothing), else ``day``."""
    return "hour" if len(days) == 2 and (days[1] - days[0]).days < 2 else "day"
