"""Chart builders: pure functions from DataFrames to ``alt.Chart``, rendered by the dashboard
and, as PNG, by the e-mailed report (:mod:`core.report`).

Every builder is deterministic and Streamlit-free, so tests read its Vega-Lite spec
(``chart.to_dict()``). The call timelines share one time axis: each takes ``duration_s`` and
uses the x scale ``[0, duration_s]`` in seconds and a fixed y-axis width (:data:`AXIS_EXTENT`),
so charts stacked in a column line up to the pixel.

Colours are fixed per leg (:data:`LEG_COLORS`) and per severity (:data:`SEVERITY_COLORS`)
everywhere in the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import altair as alt
import pandas as pd

from core.results import FINDING_CODES

# --- the palette ------------------------------------------------------------------------------------
LEG_ORDER = ("caller", "agent", "speaker_a", "speaker_b", "mixed")
LEG_LABELS = {"caller": "Caller", "agent": "Agent", "speaker_a": "Speaker A", "speaker_b": "Speaker B",
              "mixed": "Both (mix)"}
LEG_SHORT = {"caller": "caller", "agent": "agent", "speaker_a": "speaker A", "speaker_b": "speaker B",
             "mixed": "mix"}  # in row labels and metric names
LEG_COLORS = {"caller": "#2563eb", "agent": "#0d9488", "speaker_a": "#d97706", "speaker_b": "#db2777",
              "mixed": "#7c3aed"}
SEVERITY_ORDER = ("critical", "warning", "info")
SEVERITY_LABELS = {"critical": "Critical", "warning": "Warning", "info": "Info"}
SEVERITY_COLORS = {"critical": "#dc2626", "warning": "#f59e0b", "info": "#64748b"}
SILENCE_COLOR = "#cbd5e1"
HIGHLIGHT_COLOR = "#facc15"
MOS_BANDS = (("Poor (< 2.5)", "#dc2626"), ("Fair (2.5–3.5)", "#f59e0b"), ("Good (≥ 3.5)", "#16a34a"))
FINDING_LABELS = {
    "one_way_audio": "One-way audio",
    "talk_imbalance": "Talk imbalance",
    "dead_air": "Dead air",
    "clipping": "Clipping",
    "low_volume": "Low volume",
    "echo": "Echo",
    "packet_loss": "Packet loss",
    "talk_over": "Talk-over",
    "noisy": "Noisy line",
    "poor_quality": "Poor quality",
}
#: The four rates the fleet page charts.
FLEET_RATE_CODES = ("one_way_audio", "dead_air", "clipping", "packet_loss")
#: Colours of groups (agents, servers...): a categorical scheme without a pure red, which means "critical" here.
GROUP_SCHEME = "dark2"
SUBSCORES = (("mos", "MOS"), ("noisiness", "Noisiness"), ("discontinuity", "Discontinuity"),
             ("coloration", "Coloration"), ("loudness", "Loudness"))
AXIS_EXTENT = 150  # px of y axis on every timeline chart, so their plot areas align
# Streamlit sizes Vega-Lite charts with autosize "fit": a chart's height includes its axes and
# legend, so charts that show them reserve this much on top of the plot itself.
X_AXIS_PX = 80
LEGEND_PX = 35
TIME_TITLE = "Time (s)"


def finding_label(code: str) -> str:
    return FINDING_LABELS.get(code, code.replace("_", " ").capitalize())


def leg_label(leg: str | None) -> str:
    return LEG_LABELS.get(leg or "", "Both legs") if leg else "Both legs"


# --- shaping an analysis (the ``callqa analyze --json`` document) into frames --------------------------
def legs_of(doc: dict[str, Any]) -> list[str]:
    """The call's legs in display order (caller, agent, mixed)."""
    legs = list(doc.get("legs", {}))
    return sorted(legs, key=lambda leg: LEG_ORDER.index(leg) if leg in LEG_ORDER else len(LEG_ORDER))


def intervals_frame(doc: dict[str, Any], kind: str) -> pd.DataFrame:
    """``speech`` or ``silences`` of every leg: ``leg``, ``start_s``, ``end_s``."""
    rows = [(leg, float(s["start_s"]), float(s["end_s"]))
            for leg in legs_of(doc) for s in doc["legs"][leg].get(kind, [])]
    return pd.DataFrame(rows, columns=["leg", "start_s", "end_s"])


def windows_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """NISQA windows of every leg: ``leg``, ``start_s``, ``end_s``, ``mid_s``, the five scores, ``speech_s``."""
    cols = ["leg", "start_s", "end_s", "mid_s", *(k for k, _ in SUBSCORES), "speech_s"]
    rows = []
    for leg in legs_of(doc):
        quality = doc["legs"][leg].get("quality") or {}
        for w in quality.get("windows", []):
            rows.append([leg, w["start_s"], w["end_s"], (w["start_s"] + w["end_s"]) / 2,
                         *(w.get(k) for k, _ in SUBSCORES), w.get("speech_s")])
    return pd.DataFrame(rows, columns=cols)


def findings_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """Findings by start time: ``code``, ``finding``, ``leg``, ``leg_label``, ``start_s``, ``end_s``,
    ``duration_s``, ``severity``, ``detail``."""
    rows = [{
        "code": f["code"], "finding": finding_label(f["code"]), "leg": f.get("leg"),
        "leg_label": leg_label(f.get("leg")), "start_s": float(f["start_s"]), "end_s": float(f["end_s"]),
        "duration_s": round(float(f["end_s"]) - float(f["start_s"]), 2), "severity": f["severity"],
        "detail": f.get("detail", ""),
    } for f in doc.get("findings", [])]
    cols = ["code", "finding", "leg", "leg_label", "start_s", "end_s", "duration_s", "severity", "detail"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["start_s", "end_s"], kind="stable").reset_index(drop=True)


def subscores_frame(doc: dict[str, Any]) -> pd.DataFrame:
    """Call-level NISQA scores per leg, long form: ``leg``, ``dimension``, ``score``."""
    rows = []
    for leg in legs_of(doc):
        quality = doc["legs"][leg].get("quality")
        if not quality:
            continue
        rows += [(leg, label, quality.get(key)) for key, label in SUBSCORES]
    return pd.DataFrame(rows, columns=["leg", "dimension", "score"])


# --- shared pieces ----------------------------------------------------------------------------------------
def _time_x(field: str, duration_s: float, *, axis: bool) -> alt.X:
    return alt.X(
        f"{field}:Q",
        scale=alt.Scale(domain=[0, max(float(duration_s), 0.001)], nice=False, zero=True),
        axis=alt.Axis(title=TIME_TITLE, labelFlush=True) if axis
        else alt.Axis(title=None, labels=False, ticks=False, domain=False),
    )


def _leg_scale(legs: Iterable[str]) -> alt.Scale:
    legs = list(legs)
    return alt.Scale(domain=[LEG_LABELS.get(leg, leg) for leg in legs],
                     range=[LEG_COLORS.get(leg, "#475569") for leg in legs])


def _severity_scale() -> alt.Scale:
    return alt.Scale(domain=[SEVERITY_LABELS[s] for s in SEVERITY_ORDER],
                     range=[SEVERITY_COLORS[s] for s in SEVERITY_ORDER])


def _highlight(highlight: tuple[float, float] | None, duration_s: float) -> alt.Chart | None:
    if highlight is None:
        return None
    start, end = float(highlight[0]), float(highlight[1])
    end = max(end, start + max(duration_s, 1.0) * 0.004)  # a point in time still shows
    data = pd.DataFrame({"start_s": [start], "end_s": [end]})
    return alt.Chart(data).mark_rect(color=HIGHLIGHT_COLOR, opacity=0.35).encode(
        x=alt.X("start_s:Q"), x2="end_s:Q")


def _with_highlight(chart: Any, highlight: tuple[float, float] | None, duration_s: float):
    rect = _highlight(highlight, duration_s)
    return chart if rect is None else alt.layer(rect, chart)


def _y_labels(title: str | None = None, **kw: Any) -> alt.Axis:
    kw.setdefault("labelOverlap", False)
    return alt.Axis(title=title, minExtent=AXIS_EXTENT, maxExtent=AXIS_EXTENT, labelLimit=AXIS_EXTENT - 8, **kw)


# --- the deep dive's timelines ----------------------------------------------------------------------
def waveform_chart(env: pd.DataFrame, *, leg: str, duration_s: float, highlight: tuple[float, float] | None = None,
                   height: int = 72, x_axis: bool = False):
    """The amplitude envelope of one leg (``t_s``, ``lo``, ``hi`` per pixel column) as a filled band."""
    label = LEG_LABELS.get(leg, leg)
    band = alt.Chart(env).mark_area(color=LEG_COLORS.get(leg, "#475569"), interpolate="step-after").encode(
        x=_time_x("t_s", duration_s, axis=x_axis),
        y=alt.Y("lo:Q", scale=alt.Scale(domain=[-1, 1]),
                axis=_y_labels(values=[0], labelExpr=f"'{label}'", ticks=False, grid=False, domain=False,
                               labelFontWeight="bold", labelFontSize=12)),
        y2="hi:Q",
    )
    return _with_highlight(band, highlight, duration_s).properties(height=height + (X_AXIS_PX if x_axis else 0))


def activity_chart(speech: pd.DataFrame, silences: pd.DataFrame, *, legs: Sequence[str], duration_s: float,
                   highlight: tuple[float, float] | None = None, x_axis: bool = False):
    """Speech segments (VAD) and silence gaps per leg, one thin row each, coloured by leg."""
    rows, order = [], []
    for leg in legs:
        label = LEG_LABELS.get(leg, leg)
        order += [f"{label} · speech", f"{label} · silence"]
        for kind, frame, colour in (("speech", speech, LEG_COLORS.get(leg, "#475569")),
                                    ("silence", silences, SILENCE_COLOR)):
            part = frame[frame["leg"] == leg]
            rows += [{"row": f"{label} · {kind}", "kind": kind, "leg": label, "start_s": s, "end_s": e,
                      "duration_s": round(e - s, 2), "colour": colour}
                     for s, e in zip(part["start_s"], part["end_s"], strict=True)]
    data = pd.DataFrame(rows, columns=["row", "kind", "leg", "start_s", "end_s", "duration_s", "colour"])
    bars = alt.Chart(data).mark_bar(height={"band": 0.7}).encode(
        x=_time_x("start_s", duration_s, axis=x_axis),
        x2="end_s:Q",
        y=alt.Y("row:N", sort=order, scale=alt.Scale(domain=order), axis=_y_labels(ticks=False, domain=False)),
        color=alt.Color("colour:N", scale=None),
        tooltip=[alt.Tooltip("leg:N", title="Leg"), alt.Tooltip("kind:N", title="What"),
                 alt.Tooltip("start_s:Q", title="From (s)", format=".1f"),
                 alt.Tooltip("end_s:Q", title="To (s)", format=".1f"),
                 alt.Tooltip("duration_s:Q", title="Length (s)", format=".1f")],
    )
    height = 30 * max(len(order), 1) + (X_AXIS_PX if x_axis else 0)
    return _with_highlight(bars, highlight, duration_s).properties(height=height)


def _window_runs(windows: pd.DataFrame) -> list[str]:
    """A run id per window: consecutive windows of a leg (touching or overlapping) share one."""
    runs, last_end, last_leg, n = [], None, None, 0
    for leg, start, end in zip(windows["leg"], windows["start_s"], windows["end_s"], strict=True):
        if leg != last_leg or last_end is None or start > last_end + 1e-6:
            n += 1
        runs.append(f"{leg}-{n}")
        last_end, last_leg = end, leg
    return runs


def mos_window_chart(windows: pd.DataFrame, *, legs: Sequence[str], duration_s: float, threshold: float = 2.0,
                     highlight: tuple[float, float] | None = None, x_axis: bool = False, height: int = 150):
    """NISQA MOS per analysis window (at the window's centre), one line per leg, with the
    poor-quality threshold as a dashed rule."""
    data = windows.assign(leg_label=windows["leg"].map(lambda leg: LEG_LABELS.get(leg, leg)),
                          run=_window_runs(windows))
    lines = alt.Chart(data).mark_line(point=alt.OverlayMarkDef(size=36), strokeWidth=2).encode(
        x=_time_x("mid_s", duration_s, axis=x_axis),
        y=alt.Y("mos:Q", scale=alt.Scale(domain=[1, 5]), axis=_y_labels(values=[1, 2, 3, 4, 5],
                               # no axis title: it would sit outside the fixed extent and shift this plot
                               labelExpr="datum.value == 3 ? 'MOS  3' : datum.label")),
        color=alt.Color("leg_label:N", scale=_leg_scale(legs), legend=None),
        detail="run:N",  # windows apart (speechless stretches were not scored) are not joined
        tooltip=[alt.Tooltip("leg_label:N", title="Leg"),
                 alt.Tooltip("start_s:Q", title="Window from (s)", format=".0f"),
                 alt.Tooltip("end_s:Q", title="to (s)", format=".0f"),
                 *(alt.Tooltip(f"{k}:Q", title=label, format=".2f") for k, label in SUBSCORES)],
    )
    rule = alt.Chart(pd.DataFrame({"mos": [threshold]})).mark_rule(
        color=SEVERITY_COLORS["critical"], strokeDash=[4, 4], opacity=0.7).encode(y="mos:Q")
    return _with_highlight(alt.layer(rule, lines), highlight, duration_s).properties(
        height=height + (X_AXIS_PX if x_axis else 0))


def findings_lane_chart(findings: pd.DataFrame, *, legs: Sequence[str], duration_s: float,
                        highlight: tuple[float, float] | None = None, x_axis: bool = True):
    """Findings as spans on the call's time axis, coloured by severity: one row per finding and
    leg (``Packet loss · caller``), so overlapping findings never hide each other."""
    minimum = max(float(duration_s), 1.0) * 0.006
    rows = [f"{f} · {LEG_SHORT.get(leg, 'both legs') if leg else 'both legs'}"
            for f, leg in zip(findings["finding"], findings["leg"], strict=True)]
    data = findings.assign(
        row=rows,
        leg_name=[leg_label(leg) for leg in findings["leg"]],
        severity_label=findings["severity"].map(lambda s: SEVERITY_LABELS.get(s, s)),
        shown_end_s=[max(e, s + minimum) for s, e in zip(findings["start_s"], findings["end_s"], strict=True)],
    )
    order = list(dict.fromkeys(rows)) or ["No findings"]
    bars = alt.Chart(data).mark_bar(height={"band": 0.7}, cornerRadius=2).encode(
        x=_time_x("start_s", duration_s, axis=x_axis),
        x2="shown_end_s:Q",
        y=alt.Y("row:N", sort=order, scale=alt.Scale(domain=order), axis=_y_labels(ticks=False, domain=False)),
        color=alt.Color("severity_label:N", scale=_severity_scale(), legend=None),
        tooltip=[alt.Tooltip("finding:N", title="Finding"), alt.Tooltip("severity_label:N", title="Severity"),
                 alt.Tooltip("leg_name:N", title="Leg"),
                 alt.Tooltip("start_s:Q", title="From (s)", format=".1f"),
                 alt.Tooltip("end_s:Q", title="To (s)", format=".1f"), alt.Tooltip("detail:N", title="Detail")],
    )
    height = 30 * len(order) + 10 + (X_AXIS_PX if x_axis else 0)
    return _with_highlight(bars, highlight, duration_s).properties(height=height)


def subscores_chart(scores: pd.DataFrame, *, legs: Sequence[str], height: int | None = None):
    """NISQA MOS and its four dimensions per leg (1 = bad, 5 = excellent), grouped horizontal bars."""
    data = scores.assign(leg_label=scores["leg"].map(lambda leg: LEG_LABELS.get(leg, leg)))
    order = [label for _, label in SUBSCORES]
    n_legs = max(data["leg_label"].nunique(), 1)
    return alt.Chart(data).mark_bar(cornerRadiusEnd=2).encode(
        y=alt.Y("dimension:N", sort=order, title=None, axis=alt.Axis(labelOverlap=False)),
        yOffset=alt.YOffset("leg_label:N", sort=[LEG_LABELS.get(leg, leg) for leg in legs]),
        x=alt.X("score:Q", scale=alt.Scale(domain=[1, 5]), title="Score (1 = bad, 5 = excellent)"),
        x2=alt.X2Datum(1),  # bars grow from the bottom of the scale, not from 0 (outside it)
        color=alt.Color("leg_label:N", scale=_leg_scale(legs), legend=alt.Legend(title=None, orient="bottom")),
        tooltip=[alt.Tooltip("leg_label:N", title="Leg"), alt.Tooltip("dimension:N", title="Score"),
                 alt.Tooltip("score:Q", title="Value", format=".2f")],
    ).properties(height=height or 5 * (14 * n_legs + 10) + X_AXIS_PX + LEGEND_PX + 10)


# --- fleet ------------------------------------------------------------------------------------------------
def mos_histogram(values: Iterable[float], *, step: float = 0.25, threshold: float = 2.5) -> pd.DataFrame:
    """Calls per MOS bin over [1, 5]: ``bin_start``, ``bin_end``, ``calls``, ``band``."""
    series = pd.Series(list(values), dtype="float64").dropna().clip(1.0, 5.0 - 1e-9)
    edges = [1.0 + i * step for i in range(int(round(4.0 / step)) + 1)]
    counts = pd.cut(series, bins=edges, right=False, include_lowest=True).value_counts(sort=False)
    rows = []
    for interval, n in zip(counts.index, counts.to_numpy(), strict=True):
        start = float(interval.left)
        band = MOS_BANDS[0][0] if start < threshold else MOS_BANDS[1][0] if start < 3.5 else MOS_BANDS[2][0]
        rows.append({"bin_start": round(start, 3), "bin_end": round(float(interval.right), 3), "calls": int(n),
                     "band": band})
    return pd.DataFrame(rows, columns=["bin_start", "bin_end", "calls", "band"])


def mos_distribution_chart(hist: pd.DataFrame, *, height: int = 320):
    """The :func:`mos_histogram` bins as bars coloured poor / fair / good."""
    return alt.Chart(hist).mark_bar(binSpacing=1).encode(
        x=alt.X("bin_start:Q", bin="binned", scale=alt.Scale(domain=[1, 5]), title="Call MOS (worst leg)"),
        x2="bin_end:Q",
        y=alt.Y("calls:Q", title="Calls", axis=alt.Axis(format="d", tickMinStep=1)),
        color=alt.Color("band:N", scale=alt.Scale(domain=[b for b, _ in MOS_BANDS], range=[c for _, c in MOS_BANDS]),
                        legend=alt.Legend(title=None, orient="bottom")),
        tooltip=[alt.Tooltip("bin_start:Q", title="MOS from", format=".2f"),
                 alt.Tooltip("bin_end:Q", title="to", format=".2f"), alt.Tooltip("calls:Q", title="Calls")],
    ).properties(height=height)


def trend_chart(trend: pd.DataFrame, *, metric: str, title: str, group: str | None = None, percent: bool = False,
                bucket: str = "day", height: int = 320):
    """``metric`` per time bucket (``bucket`` column, datetime), one line per group when ``group`` is given."""
    fmt = ".0%" if percent else ".2f"
    axis_fmt = ".0%" if percent else ".1f" if metric in ("mean_mos", "p10_mos") else "d"
    time_format = "%b %d" if bucket == "day" else "%b %d %H:00"
    buckets = trend["bucket"].nunique() if "bucket" in trend else 0
    # one tick per bucket (at most ~10), never two ticks with the same day label
    # Vega (vega-time) knows "day" but not Vega-Lite's "hour" as a tick interval, which breaks the
    # whole chart: hourly charts get a tick count instead
    ticks: Any = {"interval": bucket, "step": max(1, -(-buckets // 10))} if bucket == "day" else min(max(buckets, 1), 12)
    x = alt.X("bucket:T", title=None, axis=alt.Axis(format=time_format, labelAngle=0, tickCount=ticks))
    y = alt.Y(f"{metric}:Q", title=title, axis=alt.Axis(format=axis_fmt),
              scale=alt.Scale(domain=[1, 5]) if metric in ("mean_mos", "p10_mos") else alt.Scale(zero=True))
    tooltip = [alt.Tooltip("bucket:T", title="When", format=time_format),
               alt.Tooltip(f"{metric}:Q", title=title, format=fmt), alt.Tooltip("calls:Q", title="Calls")]
    base = alt.Chart(trend).mark_line(point=True, strokeWidth=2)
    if group:
        return base.encode(x=x, y=y, color=alt.Color(f"{group}:N", title=group.capitalize(),
                                                     scale=alt.Scale(scheme=GROUP_SCHEME),
                                                     legend=alt.Legend(orient="bottom")),
                           tooltip=[alt.Tooltip(f"{group}:N", title=group.capitalize()), *tooltip]
                           ).properties(height=height)
    return base.encode(x=x, y=y, tooltip=tooltip, color=alt.value("#2563eb")).properties(height=height)


def finding_rates_frame(calls: pd.DataFrame, *, codes: Sequence[str] = FLEET_RATE_CODES,
                        group: str | None = None) -> pd.DataFrame:
    """Share of calls with each finding code, from :func:`core.store.queries.list_calls` rows
    (``finding_codes`` comma-separated): ``code``, ``finding``, ``calls``, ``with_finding``, ``rate``
    (and the group column)."""
    cols = [*([group] if group else []), "code", "finding", "calls", "with_finding", "rate"]
    if calls.empty:
        return pd.DataFrame(columns=cols)
    has = {code: calls["finding_codes"].fillna("").map(lambda s, c=code: c in s.split(",")) for code in codes}
    frames = []
    keys = calls[group].fillna("(unknown)") if group else pd.Series("all", index=calls.index)
    for key, idx in keys.groupby(keys).groups.items():
        n = len(idx)
        for code in codes:
            k = int(has[code].loc[idx].sum())
            row = {"code": code, "finding": finding_label(code), "calls": n, "with_finding": k, "rate": k / n}
            if group:
                row[group] = key
            frames.append(row)
    return pd.DataFrame(frames, columns=cols)


def finding_rate_chart(rates: pd.DataFrame, *, group: str | None = None, height: int | None = None):
    """Horizontal bars: share of calls with each finding (grouped bars per ``group`` when given)."""
    order = [finding_label(c) for c in FINDING_CODES]
    enc: dict[str, Any] = {
        "y": alt.Y("finding:N", sort=order, title=None),
        "x": alt.X("rate:Q", title="Share of calls", axis=alt.Axis(format=".0%", tickCount=6),
                   scale=alt.Scale(zero=True)),
        "tooltip": [alt.Tooltip("finding:N", title="Finding"), alt.Tooltip("rate:Q", title="Share", format=".1%"),
                    alt.Tooltip("with_finding:Q", title="Calls with it"), alt.Tooltip("calls:Q", title="Calls")],
    }
    if group:
        enc["color"] = alt.Color(f"{group}:N", title=group.capitalize(), scale=alt.Scale(scheme=GROUP_SCHEME),
                                 legend=alt.Legend(orient="bottom"))
        enc["yOffset"] = alt.YOffset(f"{group}:N")
        enc["tooltip"] = [alt.Tooltip(f"{group}:N", title=group.capitalize()), *enc["tooltip"]]
    else:
        enc["color"] = alt.value("#2563eb")
    n_bars = max(rates["finding"].nunique(), 1) * (max(rates[group].nunique(), 1) if group and len(rates) else 1)
    return alt.Chart(rates).mark_bar(cornerRadiusEnd=2).encode(**enc).properties(
        height=height or min(22 * n_bars + X_AXIS_PX + (LEGEND_PX if group else 0) + 20, 640))


def findings_by_code_chart(counts: pd.DataFrame, *, height: int | None = None):
    """Calls with each finding code, stacked by severity (from :func:`core.store.queries.finding_counts`)."""
    data = counts.assign(finding=counts["code"].map(finding_label),
                         severity_label=counts["severity"].map(lambda s: SEVERITY_LABELS.get(s, s)))
    order = (data.groupby("finding")["calls"].sum().sort_values(ascending=False).index.tolist()
             if len(data) else [])
    return alt.Chart(data).mark_bar(cornerRadiusEnd=2).encode(
        y=alt.Y("finding:N", sort=order, title=None),
        x=alt.X("calls:Q", title="Calls", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("severity_label:N", scale=_severity_scale(), legend=alt.Legend(title=None, orient="bottom")),
        order=alt.Order("severity_label:N"),
        tooltip=[alt.Tooltip("finding:N", title="Finding"), alt.Tooltip("severity_label:N", title="Severity"),
                 alt.Tooltip("calls:Q", title="Calls"), alt.Tooltip("findings:Q", title="Occurrences")],
    ).properties(height=height or 28 * max(len(order), 1) + X_AXIS_PX + LEGEND_PX + 20)
