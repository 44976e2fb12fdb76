"""The two sides of mixed recordings in the dashboard: how a deep dive's sides were attributed
(and the analyst's "this is the agent"), and the per-side fleet statistics."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from ui import charts, state
from ui.errors import call_or_none

METHOD_TEXT = {
    "voiceprint": "Attributed by the agent's voiceprint",
    "heuristic": "Attributed by the recording layout",
    "manual": "Marked by an analyst",
    "none": "Not attributed",
}


def split_sides(doc: dict[str, Any]) -> list[str]:
    """The sides of a split mix (``caller``/``agent`` or ``speaker_a``/``speaker_b``), [] otherwise."""
    return list((doc.get("attribution") or {}).get("sides") or [])


def is_side(doc: dict[str, Any], leg: str) -> bool:
    """True for a side cut out of the mix (it has no audio of its own: the mix's player plays it)."""
    return (doc.get("legs", {}).get(leg) or {}).get("side_of") == "mixed"


def attribution_summary(att: dict[str, Any]) -> tuple[str, str]:
    """(headline, detail) of an ``attribution`` object, for the analyst."""
    method = str(att.get("method") or "none")
    conf = att.get("confidence")
    sure = "" if conf is None else f" — confidence {conf:.0%}"
    who = f" (agent {att['agent_user']})" if att.get("agent_user") else ""
    head = f"{METHOD_TEXT.get(method, method)}{who}{sure}"
    if att.get("single_talker"):
        head += " · only one voice in the mix"
    return head, str(att.get("evidence") or "")


def mark_choices(doc: dict[str, Any]) -> dict[str, str]:
    """Button label → the side that becomes the agent, for the sides that have speech."""
    legs = doc.get("legs", {})
    sides = [s for s in split_sides(doc) if (legs.get(s) or {}).get("speech")]
    if set(sides) <= {"caller", "agent"}:
        return {"Swap: the other voice is the agent": "caller"} if "caller" in sides else {}
    return {f"{charts.LEG_LABELS.get(s, s)} is the agent": s for s in sides}


def attribution_panel(doc: dict[str, Any], call_id: str) -> None:
    """How the sides of a mixed call were attributed, and the buttons to correct it."""
    att = doc.get("attribution")
    if not att:
        return
    head, detail = attribution_summary(att)
    box = st.success if att.get("method") in ("voiceprint", "manual") and (att.get("confidence") or 0) >= 0.8 \
        else st.warning if att.get("method") == "none" else st.info
    box(f"**{head}.** {detail}", icon=":material/record_voice_over:")
    from ui import access

    choices = mark_choices(doc)
    if not choices or not access.can("mark_sides"):  # analysts and admins (core.access.roles.can_mark_sides)
        return
    st.caption("Hear it differently? Mark the agent's voice: the call is analysed again with your mark, it is "
               "kept for later analyses, and the agent's voiceprint learns from that side.")
    cols = st.columns(len(choices) + 1)
    for (label, side), col in zip(choices.items(), cols, strict=False):
        if col.button(label, key=f"{state.DEEP_MARK_AGENT}.{side}", icon=":material/person_pin:"):
            _mark(call_id, side)


def _mark(call_id: str, side: str) -> None:
    from ui import access, cached

    who = access.require("mark_sides", action="marking the agent's side")
    access.trail().record("side.mark", target=call_id, detail={"agent_side": side})
    with st.spinner("Analysing the call again with your mark…"):
        result = call_or_none(cached.mark_agent_side, call_id, side, set_by=who.name)
    if result is not None:
        st.rerun()


# --- fleet -----------------------------------------------------------------------------------------------------
SIDE_COLUMNS = {
    "calls": st.column_config.NumberColumn("Calls", help="Calls whose caller and agent are known"),
    "mixed_calls": st.column_config.NumberColumn("Of them mixed", help="Mix-only and conference recordings, "
                                                 "split by voice"),
    "agent_talk_share": st.column_config.NumberColumn("Agent talk share", format="percent",
                                                      help="Agent speech over both sides' speech"),
    "caller_mos": st.column_config.NumberColumn("Caller MOS", format="%.2f"),
    "agent_mos": st.column_config.NumberColumn("Agent MOS", format="%.2f"),
    "talk_over_rate": st.column_config.NumberColumn("Talk-over", format="percent",
                                                    help="Share of calls with both sides talking at once"),
}


def side_stats_chart(stats: pd.DataFrame, *, group: str | None) -> alt.Chart:
    """Caller and agent MOS side by side per group (or for the fleet), with the agent's talk share."""
    key = group or "fleet"
    frame = stats.assign(**{key: stats[group] if group else "All calls"})
    long = frame.melt(id_vars=[key, "agent_talk_share", "calls"], value_vars=["caller_mos", "agent_mos"],
                      var_name="side", value_name="mos").dropna(subset=["mos"])
    long["side"] = long["side"].map({"caller_mos": charts.LEG_LABELS["caller"], "agent_mos": charts.LEG_LABELS["agent"]})
    colors = alt.Scale(domain=[charts.LEG_LABELS["caller"], charts.LEG_LABELS["agent"]],
                       range=[charts.LEG_COLORS["caller"], charts.LEG_COLORS["agent"]])
    return alt.Chart(long).mark_bar().encode(
        x=alt.X("mos:Q", title="Mean MOS", scale=alt.Scale(domain=[1, 5])),
        y=alt.Y(f"{key}:N", title=None, sort="-x"),
        yOffset=alt.YOffset("side:N"),
        color=alt.Color("side:N", scale=colors, title="Side"),
        tooltip=[alt.Tooltip(f"{key}:N"), alt.Tooltip("side:N"), alt.Tooltip("mos:Q", format=".2f"),
                 alt.Tooltip("agent_talk_share:Q", title="Agent talk share", format=".0%"),
                 alt.Tooltip("calls:Q", title="Calls")],
    ).properties(height=alt.Step(14))


def side_section(url: str, *, since: Any, until: Any, group: str | None) -> pd.DataFrame | None:
    """The per-side statistics of the Fleet page, with the attribution-confidence filter."""
    from ui import cached

    st.subheader("Caller and agent")
    conf = st.slider("Mixed calls: minimum attribution confidence", 0.0, 1.0, 0.8, 0.05,
                     key=state.FLEET_SIDE_CONFIDENCE,
                     help="Mix-only and conference recordings count once their two voices were told apart and "
                          "attributed at least this surely (channel and stereo calls always count)")
    stats = call_or_none(cached.side_stats, url, since=since, until=until, group_by=group, min_confidence=conf)
    if stats is None:
        return None
    if stats.empty:
        st.caption("No calls with both sides known in this range.")
        return stats
    st.caption("Caller and agent, whatever the recording layout: legs of channel and stereo calls, voices of "
               "mixed calls split and attributed by voiceprint.")
    st.altair_chart(side_stats_chart(stats, group=group), width="stretch")
    cols = [group, *SIDE_COLUMNS] if group else list(SIDE_COLUMNS)
    st.dataframe(stats[cols], hide_index=True, width="stretch", column_config=SIDE_COLUMNS)
    return stats
