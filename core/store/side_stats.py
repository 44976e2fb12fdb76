"""Per-side fleet statistics: talk share, caller and agent MOS, talk-over, over every layout.

The caller and agent of a channel or stereo call are its legs; those of a mixed or conference
recording are the sides the split attributed (:mod:`core.audio.diarize`). A mixed call counts only
when its sides were attributed (``caller``/``agent``, not ``speaker_a``/``speaker_b``) with at
least ``min_confidence``; channel and stereo calls always count.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, or_, select

from core.errors import ParameterError
from core.store.queries import _call_filters, _coerce, _frame, _group_column, _grouping
from core.store.schema import calls, tracks
from core.store.store import ResultStore

MIXED_LAYOUTS = ("mixed", "conference")
COLUMNS = ("calls", "mixed_calls", "agent_speech_s", "caller_speech_s", "agent_talk_share", "caller_mos",
           "agent_mos", "talk_over_rate")


def side_stats(store: ResultStore, *, group_by: str | None = None, min_confidence: float | None = None,
               **filters: Any) -> pd.DataFrame:
    """Talk share and per-side quality per group (or for the whole fleet).

    Parameters
    ----------
    store : ResultStore
    group_by : str, optional
        ``agent``, ``campaign``, ``server``, ``carrier`` or ``layout``; one row for the fleet when None.
    min_confidence : float, optional
        Count a split mix only when its attribution confidence is at least this (0..1).
    **filters
        Any :func:`core.store.queries.list_calls` filter (``since=``, ``until=``, ``agent=``...).

    Returns
    -------
    pandas.DataFrame
        Per group: ``calls`` (with both sides known), ``mixed_calls`` (of them, split mixes),
        ``agent_speech_s``, ``caller_speech_s``, ``agent_talk_share`` (agent speech over both
        sides' speech), ``caller_mos``/``agent_mos`` (mean NISQA MOS of the side, over the calls
        that have one), ``talk_over_rate`` (share of calls with a ``talk_over`` finding).
    """
    if min_confidence is not None and not 0.0 <= float(min_confidence) <= 1.0:
        raise ParameterError(f"min_confidence={min_confidence!r} must lie between 0 and 1")
    column = _group_column(group_by)
    group = [(_grouping(column)).label(group_by)] if group_by is not None and column is not None else []
    counted = or_(calls.c.layout.not_in(MIXED_LAYOUTS),
                  and_(calls.c.attribution.is_not(None), calls.c.attribution != "none",
                       calls.c.attribution_confidence >= float(min_confidence or 0.0)))
    agent_row = tracks.c.leg == "agent"
    stmt = (
        select(
            *group,
            func.count(func.distinct(calls.c.call_id)).label("calls"),
            func.sum(case((and_(agent_row, calls.c.layout.in_(MIXED_LAYOUTS)), 1), else_=0)).label("mixed_calls"),
            func.sum(case((agent_row, tracks.c.speech_s), else_=0.0)).label("agent_speech_s"),
            func.sum(case((tracks.c.leg == "caller", tracks.c.speech_s), else_=0.0)).label("caller_speech_s"),
            func.avg(case((tracks.c.leg == "caller", tracks.c.mos))).label("caller_mos"),
            func.avg(case((agent_row, tracks.c.mos))).label("agent_mos"),
            func.sum(case((and_(agent_row, calls.c.finding_codes.contains("talk_over")), 1), else_=0)).label("talk_over"),
        )
        .select_from(calls.join(tracks, tracks.c.call_id == calls.c.call_id))
        .where(tracks.c.leg.in_(("caller", "agent")), counted, *_call_filters(**filters))
    )
    if group:
        stmt = stmt.group_by(group[0]).order_by(group[0])
    names = [*([group_by] if group else []), "calls", "mixed_calls", "agent_speech_s", "caller_speech_s",
             "caller_mos", "agent_mos", "talk_over"]
    df = _coerce(_frame(store, stmt, names), floats=("agent_speech_s", "caller_speech_s", "caller_mos", "agent_mos"),
                 ints=("calls", "mixed_calls", "talk_over"), texts=[group_by] if group else [])
    df = df[df["calls"] > 0].reset_index(drop=True)
    talk = df["agent_speech_s"] + df["caller_speech_s"]
    df["agent_talk_share"] = (df["agent_speech_s"] / talk).where(talk > 0)
    df["talk_over_rate"] = df.pop("talk_over") / df["calls"]
    return df[[*([group_by] if group else []), *COLUMNS]]
