"""Deep dive: one call — header metrics, per-leg players, aligned timelines, findings that cue the
players, NISQA sub-scores, the ViciDial context and the AI summary.

Deep link: ``/deep_dive?call=<call_id>`` (plus ``recording_id=`` or ``folder=`` for a call that
is not analysed yet: it is analysed on the spot, with progress by stage).
"""

from __future__ import annotations

import streamlit as st

from ui import access, cached, charts, deep_dive, errors, sides, state, widgets

access.require("view_calls", action="the deep dive")
params = st.query_params
asked = params.get(state.PARAM_CALL) or state.get(state.DEEP_CALL)
if not asked:
    st.title("Deep dive")
    st.info("Open a call from **Call lookup** or the **Overview**, or use a link like `/deep_dive?call=<call id>`.",
            icon=":material/graphic_eq:")
    st.stop()
if params.get(state.PARAM_CALL) != asked:
    st.query_params[state.PARAM_CALL] = asked  # the address bar always holds a shareable link
state.put(state.DEEP_CALL, asked)
call_id = deep_dive.call_id_of(asked)  # a reference (ref-...) names a call without its number

st.title(access.call_label(call_id))
doc = deep_dive.analysis_for(call_id, recording_id=params.get(state.PARAM_RECORDING_ID), folder=params.get(state.PARAM_FOLDER))
url = cached.store_target().url
meta = errors.call_or_none(cached.call_metadata, url, call_id) or {}
st.caption(deep_dive.call_subtitle(meta))

deep_dive.header(doc)
sides.attribution_panel(doc, call_id)
for warning in doc.get("warnings", []):
    st.caption(f":material/warning: {access.shown_text(warning)}")


@st.fragment
def players_and_timeline() -> None:
    """Players, timelines and the findings table; a clicked finding re-cues only this part."""
    findings = charts.findings_frame(doc)
    seek = deep_dive.seek_from_selection(findings, state.DEEP_FINDINGS_TABLE)
    if access.can("deep_dive"):
        st.subheader("Timeline")
        st.caption("Waveform of each leg, speech (VAD) and silence gaps, NISQA MOS per 10 s window (dashed: the "
                   "poor-quality threshold) and the findings, on one time axis. Hover for details.")
        if access.can("play_audio"):
            deep_dive.audio_players(doc, start_s=seek["start_s"] if seek else 0.0)
            if seek:
                st.caption(f":material/my_location: Players cued to {seek['label']} — highlighted below.")
        deep_dive.timeline(doc, highlight=(seek["start_s"], seek["end_s"]) if seek else None)
    else:
        access.role_note("Recordings, the timeline, the ViciDial context and AI summaries")
    st.subheader("Findings")
    if findings.empty:
        st.success("No findings: nothing unusual was detected in this call.", icon=":material/check_circle:")
        return
    if access.can("play_audio"):
        st.caption("Click a finding to cue the players to that moment.")
    widgets.selectable_table(deep_dive.findings_display(findings), key=state.DEEP_FINDINGS_TABLE,
                             column_config=deep_dive.FINDING_COLUMNS)


players_and_timeline()

left, right = st.columns(2, gap="large")
with left:
    st.subheader("Speech quality (NISQA)")
    scores = charts.subscores_frame(doc)
    if scores.empty:
        reasons = {charts.LEG_LABELS.get(leg, leg): doc["legs"][leg].get("quality_reason") for leg in doc["legs"]}
        st.caption("Not scored: " + "; ".join(f"{k}: {v}" for k, v in reasons.items() if v))
    else:
        st.altair_chart(charts.subscores_chart(scores, legs=charts.legs_of(doc)), width="stretch")
    st.dataframe(deep_dive.leg_details(doc), hide_index=True, width="stretch")
with right:
    if access.can("deep_dive"):
        st.subheader("ViciDial context")
        context = deep_dive.vicidial_context(meta)
        if context.empty:
            st.caption("No ViciDial data is stored with this call (it was analysed from a recording folder).")
        else:
            st.dataframe(context, hide_index=True, width="stretch")
    if access.can("use_ai"):
        st.subheader("AI summary")
        deep_dive.ai_summary_section(call_id)
