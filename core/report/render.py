"""The report as an HTML e-mail: inline-styled tables and charts as inline PNG images.

The charts are the dashboard's own Altair builders (:mod:`core.charts`) rendered to PNG by
vl-convert, which bundles Vega, Vega-Lite and a JavaScript engine in its wheel: rendering
reads nothing from the network. In an e-mail the images are ``cid:`` parts of a
``multipart/related`` message (mail clients block ``data:`` images); in a file or the
dashboard they are ``data:`` URIs, so one HTML file is the whole report.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html import escape
from typing import TYPE_CHECKING, Any

import altair as alt

from core import charts
from core.alerts.channels import SEVERITY_COLORS, alert_url
from core.alerts.rules import format_value, group_label
from core.alerts.state import rule_of
from core.report.data import Headline, Report

if TYPE_CHECKING:
    from core.alerts.settings import AlertSettings

CHART_WIDTH = 560
_FONT = "font-family:Arial,Helvetica,sans-serif"
_GOOD, _BAD, _MUTED = "#16a34a", "#dc2626", "#64748b"
_WORST_TITLES = {"carrier": "Worst carriers", "agent": "Worst agents", "campaign": "Worst campaigns"}


@dataclass
class RenderedReport:
    """The HTML, its images (content id -> PNG bytes) and a plain-text version."""

    html: str
    text: str
    images: dict[str, bytes] = field(default_factory=dict)


# --- numbers ---------------------------------------------------------------------------------------
def fmt(kind: str, value: float | None) -> str:
    """A headline value as the report prints it."""
    if value is None:
        return "–"
    if kind == "rate":
        return f"{value * 100:.1f} %"
    if kind == "mos":
        return f"{value:.2f}"
    if kind == "minutes":
        return f"{value:,.0f} min"
    return f"{value:,.0f}"


def fmt_change(h: Headline) -> str:
    """How a headline moved: points for rates, MOS difference, counts with their relative change."""
    change = h.change
    if change is None:
        return "–"
    if h.kind == "rate":
        return f"{change * 100:+.1f} pts"
    if h.kind == "mos":
        return f"{change:+.2f}"
    relative = f" ({change / h.previous * 100:+.0f} %)" if h.previous else ""
    return f"{change:+,.0f}{relative}"


# --- charts ----------------------------------------------------------------------------------------
def report_charts(report: Report) -> dict[str, tuple[str, alt.TopLevelMixin]]:
    """The report's charts by content id: (title, chart), built by the dashboard's chart builders."""
    out: dict[str, tuple[str, Any]] = {}
    bucket = report.extra.get("bucket", "day")
    if len(report.trend):
        out["mos-trend"] = ("Mean MOS", charts.trend_chart(report.trend, metric="mean_mos", title="Mean MOS",
                                                           bucket=bucket, height=220))
        out["problem-trend"] = ("Calls with a problem", charts.trend_chart(
            report.trend, metric="problem_rate", title="Calls with a problem", percent=True, bucket=bucket,
            height=220))
    if report.mos_values:
        out["mos-distribution"] = ("MOS of the period's calls", charts.mos_distribution_chart(
            charts.mos_histogram(report.mos_values), height=220))
    if len(report.findings):
        out["findings"] = ("Findings by code", charts.findings_by_code_chart(report.findings))
    return {cid: (title, chart.properties(width=CHART_WIDTH)) for cid, (title, chart) in out.items()}


def chart_png(chart: alt.TopLevelMixin, *, scale: float = 2.0) -> bytes:
    """One Altair chart as PNG bytes (vl-convert; nothing is downloaded)."""
    import vl_convert

    version = alt.SCHEMA_VERSION.lstrip("v").rsplit(".", 1)[0]  # "v6.4.1" -> "6.4"
    # the data inline, whatever transformer is active (Streamlit's keeps datasets by reference)
    with alt.data_transformers.enable("default"), alt.theme.enable("default"):
        spec = chart.to_dict()
    return vl_convert.vegalite_to_png(spec, vl_version=version, scale=scale)


# --- HTML ------------------------------------------------------------------------------------------
def _cell(text: str, *, style: str = "", head: bool = False) -> str:
    tag = "th" if head else "td"
    base = "padding:6px 10px;border-bottom:1px solid #e2e8f0;text-align:left;"
    return f"<{tag} style='{base}{style}'>{text}</{tag}>"


def _headline_table(report: Report) -> str:
    rows = [_cell("", head=True) + _cell("This period", head=True) + _cell("Previous", head=True)
            + _cell("Change", head=True)]
    for h in report.headlines:
        color = {"better": _GOOD, "worse": _BAD}.get(h.verdict, _MUTED)
        rows.append(_cell(escape(h.label)) + _cell(f"<b>{fmt(h.kind, h.current)}</b>")
                    + _cell(fmt(h.kind, h.previous), style=f"color:{_MUTED};")
                    + _cell(fmt_change(h), style=f"color:{color};"))
    return _table(rows)


def _table(rows: list[str]) -> str:
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f"<table cellspacing='0' style='border-collapse:collapse;{_FONT};font-size:13px;margin:4px 0 16px'>{body}</table>"


def _worst_table(by: str, frame: Any, minimum: int) -> str:
    title = f"<h3 style='{_FONT};font-size:15px;margin:16px 0 4px'>{_WORST_TITLES[by]}</h3>"
    if not len(frame):
        return title + f"<p style='{_FONT};font-size:13px;color:{_MUTED}'>None with {minimum} calls or more.</p>"
    rows = ["".join(_cell(h, head=True) for h in (by.capitalize(), "Calls", "With a problem", "Mean MOS",
                                                  "One-way", "Dead air", "Packet loss"))]
    for r in frame.to_dict("records"):
        rows.append(_cell(escape(str(r[by]))) + _cell(f"{int(r['calls']):,}") + _cell(f"<b>{fmt('rate', r['problem_rate'])}</b>")
                    + _cell(fmt("mos", None if r["mean_mos"] != r["mean_mos"] else r["mean_mos"]))
                    + _cell(fmt("rate", r["one_way_rate"])) + _cell(fmt("rate", r["rate_dead_air"]))
                    + _cell(fmt("rate", r["rate_packet_loss"])))
    return title + _table(rows)


def _alerts_table(report: Report, dashboard_url: str) -> str:
    title = f"<h2 style='{_FONT};font-size:17px;margin:20px 0 4px'>Alerts that fired</h2>"
    if not report.alerts:
        return title + f"<p style='{_FONT};font-size:13px;color:{_MUTED}'>No alert fired in this period.</p>"
    rows = ["".join(_cell(h, head=True) for h in ("When (UTC)", "Alert", "Group", "Value", "Calls"))]
    for e in sorted(report.alerts, key=lambda e: e.created_at):
        group = group_label(e.group_by, e.group_key)
        link = alert_url(dashboard_url, e.id)
        color = SEVERITY_COLORS.get(e.severity, _MUTED)
        rows.append(_cell(f"{e.created_at:%Y-%m-%d %H:%M}")
                    + _cell(f"<a href='{escape(link, quote=True)}' style='color:{color}'>{escape(e.rule)}</a>")
                    + _cell(escape(group)) + _cell(f"{escape(e.metric)} = {format_value(rule_of(e), e.value)}")
                    + _cell(str(e.calls)))
    return title + _table(rows)


def render_report(report: Report, *, settings: AlertSettings, inline: str = "cid",
                  images: dict[str, bytes] | None = None) -> RenderedReport:
    """The report as HTML (and plain text).

    Parameters
    ----------
    report : Report
    settings : AlertSettings
        ``dashboard_url`` for the links.
    inline : str
        ``cid`` (images referenced as ``cid:<id>``, for e-mail) or ``data`` (``data:`` URIs).
    images : dict, optional
        Already rendered PNGs by content id (default: render :func:`report_charts` now).

    Returns
    -------
    RenderedReport
    """
    figures = report_charts(report)
    if images is None:
        images = {cid: chart_png(chart) for cid, (_, chart) in figures.items()}
    parts = [f"<div style='{_FONT};color:#0f172a;max-width:680px'>",
             f"<h1 style='font-size:21px;margin:0 0 2px'>{escape(report.title)}</h1>",
             f"<p style='font-size:12px;color:{_MUTED};margin:0 0 12px'>Compared with the {report.period} before "
             f"({report.previous_since:%d %b} – {report.since:%d %b}). Call times are the dialer's local time.</p>"]
    if report.narrative:
        parts.append(f"<p style='font-size:14px;line-height:1.5;background:#f8fafc;padding:10px 12px;"
                     f"border-left:3px solid #2563eb'>{escape(report.narrative)}<br><span style='font-size:11px;"
                     f"color:{_MUTED}'>Written by {escape(report.narrative_model or 'Claude')} from the figures "
                     f"below.</span></p>")
    parts.append(_headline_table(report))
    for cid, (title, _) in figures.items():
        if cid not in images:
            continue
        src = f"cid:{cid}" if inline == "cid" else "data:image/png;base64," + base64.b64encode(images[cid]).decode()
        parts.append(f"<h3 style='font-size:15px;margin:16px 0 4px'>{escape(title)}</h3>"
                     f"<img src='{src}' alt='{escape(title, quote=True)}' width='{CHART_WIDTH + 60}' "
                     f"style='max-width:100%;height:auto;display:block'>")
    minimum = int(report.extra.get("min_group_calls", 1))
    parts += [_worst_table(by, frame, minimum) for by, frame in report.worst.items()]
    parts.append(_alerts_table(report, settings.dashboard_url))
    parts.append(f"<p style='font-size:12px;color:{_MUTED}'>Open the dashboard: "
                 f"<a href='{escape(settings.dashboard_url, quote=True)}'>{escape(settings.dashboard_url)}</a> · "
                 f"generated {report.generated_at:%Y-%m-%d %H:%M} UTC by callqa.</p></div>")
    document = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(report.title)}</title>"
                f"</head><body style='margin:16px'>{''.join(parts)}</body></html>")
    return RenderedReport(html=document, text=render_text(report), images=images)


def render_text(report: Report) -> str:
    """The plain-text alternative of the e-mail."""
    lines = [report.title, ""]
    if report.narrative:
        lines += [report.narrative, ""]
    for h in report.headlines:
        lines.append(f"{h.label}: {fmt(h.kind, h.current)} (previous {fmt(h.kind, h.previous)}, {fmt_change(h)})")
    for by, frame in report.worst.items():
        lines += ["", _WORST_TITLES[by] + ":"]
        lines += [f"  {r[by]}: {int(r['calls'])} calls, {fmt('rate', r['problem_rate'])} with a problem"
                  for r in frame.to_dict("records")] or ["  (none)"]
    lines += ["", f"Alerts fired: {len(report.alerts)}"]
    lines += [f"  {e.created_at:%Y-%m-%d %H:%M} UTC {e.rule}: {e.group_key}" for e in report.alerts]
    return "\n".join(lines) + "\n"
