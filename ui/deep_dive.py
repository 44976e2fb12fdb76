"""Helpers of the Deep dive page (:mod:`pages.deep_dive`): the analysis (stored, or analysed on
the spot with progress), header, players, aligned timelines, findings, details, AI summary."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from core.audio import preview
from core.config import AnalysisConfig
from core.errors import CallNotFoundError, CallQAError, ParameterError
from ui import charts, state
from ui.errors import call_or_none, call_or_stop, show_error
from ui.formatting import (
    finding_badges_markdown,
    fmt_duration,
    fmt_mos,
    fmt_span,
    fmt_time,
    leg_heading,
    severity_mark,
)
from ui.widgets import Metric, metrics_row, severity_column

#: What the analysis is doing, per stage of :data:`core.pipeline.STAGES` (plus the ViciDial fetch).
STAGE_LABELS = {"fetch": "Fetching the recording from ViciDial", "decode": "Decoding the recordings",
                "stats": "Measuring levels", "silence": "Finding silences", "speech": "Detecting speech (VAD)",
                "measure": "Measuring SNR, dropouts and echo",
                "sides": "Telling the two voices of the mix apart", "quality": "Scoring speech quality (NISQA)",
                "findings": "Deciding findings"}


def analysis_for(call_id: str, *, recording_id: str | None = None, folder: str | None = None) -> dict[str, Any]:
    """The analysis of ``call_id``: from the store, or analysed now (with ``st.status`` progress by
    stage) when the deep link says where the call comes from. Shows errors and stops the page."""
    from ui import access, cached

    url = call_or_stop(cached.store_target).url
    try:
        return cached.call_analysis(url, call_id)
    except CallNotFoundError as exc:
        if not recording_id and not folder:
            purged = call_or_none(cached.purged_on, url, call_id)
            if purged is not None:
                st.warning(f"**This call was deleted on {purged:%Y-%m-%d}** by the retention policy "
                           "(`[retention] analyses_days`): its analysis, summary and details are no longer "
                           "kept.", icon=":material/auto_delete:")
                st.stop()
            show_error(exc)
            st.stop()
    except CallQAError as exc:
        show_error(exc)
        st.stop()
    access.require("analyze", action="analysing calls")
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


def call_id_of(asked: str) -> str:
    """The call a deep link names: its id, or the id behind an opaque reference (``ref-...``)."""
    from core.privacy.refs import is_ref
    from ui import cached

    if not is_ref(asked):
        return asked
    found = call_or_none(cached.call_for_ref, cached.store_target().url, asked)
    return found or asked


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
    "conference": "The conference mix on one track (split into the two talkers by voice); -out is silent by design",
    "stereo": "One stereo file: one channel per leg",
    "mixed": "Only a mono mix: the two talkers are told apart by voice",
}


def leg_sources(doc: dict[str, Any]) -> dict[str, str]:
    """The recording behind each leg; the sides of a split mix have none of their own (the mix
    plays them both, and the timeline lanes show who speaks when)."""
    from ui.sides import is_side

    return {leg: str(doc["legs"][leg].get("source") or "") for leg in charts.legs_of(doc) if not is_side(doc, leg)}


def audio_players(doc: dict[str, Any], *, start_s: float = 0.0) -> None:
    """One player per leg, cued to ``start_s`` (roles with ``play_audio`` only, every playback
    audited: :func:`ui.access.audio_player`); a missing recording is said, not crashed on."""
    from ui import access

    sources = leg_sources(doc)
    for col, (leg, source) in zip(st.columns(len(sources)), sources.items(), strict=True):
        with col:
            st.markdown(leg_heading(leg), unsafe_allow_html=True)
            if preview.file_stamp(source) is None:
                st.caption(f":material/volume_off: Recording not available at `{preview.split_source(source)[0]}`")
                continue
            access.audio_player(str(doc.get("call_id")), leg, source, start_s=start_s)


def timeline(doc: dict[str, Any], *, highlight: tuple[float, float] | None = None) -> None:
    """The aligned timelines: waveform per leg, speech/silence, MOS per window, findings."""
    from ui import cached

    duration = float(doc.get("duration_s") or 0.0)
    legs = charts.legs_of(doc)
    for leg, source in leg_sources(doc).items():
        stamp = preview.file_stamp(source)
        if stamp is None:
            continue
        env = call_or_none(cached.waveform_envelope, source, preview.ENVELOPE_WIDTH, stamp)
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
    index = state.selected_row(key)
    if index is None or not 0 <= index < len(findings):
        return None
    row = findings.iloc[index]
    leg = row["leg"]
    where = "both legs" if not leg else "the mix" if leg == "mixed" else f"the {charts.LEG_SHORT.get(leg, leg)} leg"
    return {"start_s": float(row["start_s"]), "end_s": float(row["end_s"]),
            "label": f"{row['finding']} on {where} at {fmt_duration(row['start_s'])}"}


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
    if st.button(label, key=state.DEEP_SUMMARISE, icon=":material/auto_awesome:"):
        from ui import access

        access.require("use_ai", action="AI summaries")
        with st.spinner("Asking Claude for a summary…"):
            done = call_or_none(cached.summarize_call, call_id, force=bool(summary), audit=access.trail())
        if done is not None:
            cached.ai_summary.clear()
            st.rerun()
