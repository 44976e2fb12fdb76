"""Read models for the dashboard: plain SQL over the result store, returned as DataFrames.

Every function takes a :class:`~core.store.store.ResultStore` and gives the same frame (columns,
dtypes, order) on SQLite and PostgreSQL: the SQL uses only what both have (window functions,
``CASE``, integer division), times are bucketed with an expression chosen per dialect, and
numbers are coerced to float/int64 here because the drivers differ (PostgreSQL returns
``Decimal`` for some aggregates).

Conventions:

- ``since`` is inclusive and ``until`` exclusive, compared with ``calls.call_time`` (the call's
  wall-clock time); each accepts a ``datetime``, a ``date`` (midnight) or ISO text.
- A call's MOS is ``mos_min``, its worst leg's NISQA MOS; calls scored without quality have
  none and are left out of MOS statistics (``calls_with_mos`` counts the others).
- A missing agent/campaign/server/carrier is grouped as ``"(unknown)"``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.sql import ColumnElement, Select

from core.errors import CallNotFoundError, ParameterError
from core.results import FINDING_CODES, SEVERITIES
from core.store import migrations
from core.store.schema import (
    analysis_errors,
    calls,
    claims,
    findings,
    quality_windows,
    silences,
    speech_segments,
    tracks,
)
from core.store.store import ResultStore

UNKNOWN = "(unknown)"
#: ``group_by`` names and the column each groups on.
GROUPS: dict[str, ColumnElement] = {
    "agent": calls.c.agent,
    "campaign": calls.c.campaign,
    "server": calls.c.server_ip,
    "carrier": calls.c.carrier,
    "layout": calls.c.layout,
    "ingroup": calls.c.ingroup,
}
BUCKETS = ("day", "hour")
ORDERS = ("newest", "oldest", "worst_mos", "most_findings")
P10 = (1, 10)  # the low-MOS percentile as a fraction num/den (linear interpolation, like numpy)

LIST_COLUMNS = ("call_id", "call_time", "duration_s", "layout", "agent", "campaign", "server_ip", "carrier",
                "lead_id", "mos_caller", "mos_agent", "mos_mixed", "mos_min", "finding_codes", "n_findings",
                "worst_severity", "dead_air_s", "one_way", "n_warnings", "source_kind", "analyzed_at")
_FLOATS = ("duration_s", "mos_caller", "mos_agent", "mos_mixed", "mos_min", "dead_air_s")
_INTS = ("n_findings", "one_way", "n_warnings")
_TIMES = ("call_time", "analyzed_at")


# --- helpers -------------------------------------------------------------------------------------
def _as_datetime(value: datetime | date | str | None, name: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise ParameterError(f"{name}={value!r} is not an ISO date or date-time") from None


def _time_range(since: Any, until: Any) -> list[ColumnElement]:
    out = []
    start, end = _as_datetime(since, "since"), _as_datetime(until, "until")
    if start is not None:
        out.append(calls.c.call_time >= start)
    if end is not None:
        out.append(calls.c.call_time < end)
    return out


def _match(column: ColumnElement, value: str | Sequence[str] | None) -> list[ColumnElement]:
    if value is None:
        return []
    if isinstance(value, str):
        return [column == value]
    values = list(value)
    return [column.in_(values)] if values else []


def _group_column(name: str | None) -> ColumnElement | None:
    if name is None:
        return None
    if name not in GROUPS:
        raise ParameterError(f"group_by={name!r}; choose one of {', '.join(GROUPS)}")
    return GROUPS[name]


def _grouping(column: ColumnElement) -> ColumnElement:
    """A group column for GROUP BY: NULL becomes :data:`UNKNOWN`. Being an expression, it also keeps
    SQLite from walking the (agent, call_time)-style indexes, which are not covering, instead of
    the covering ``ix_calls_fleet`` (measured 3x slower at 1M calls)."""
    return func.coalesce(column, literal_column(f"'{UNKNOWN}'"))


def _bucket_expr(dialect: str, bucket: str) -> ColumnElement:
    """``call_time`` truncated to the day or hour, as ISO text (the format is inlined, not bound,
    so the same expression can be repeated in GROUP BY on PostgreSQL)."""
    if bucket not in BUCKETS:
        raise ParameterError(f"bucket={bucket!r}; choose one of {', '.join(BUCKETS)}")
    if dialect == "postgresql":
        fmt = "'YYYY-MM-DD'" if bucket == "day" else "'YYYY-MM-DD HH24:00'"
        return func.to_char(calls.c.call_time, literal_column(fmt))
    fmt = "'%Y-%m-%d'" if bucket == "day" else "'%Y-%m-%d %H:00'"
    return func.strftime(literal_column(fmt), calls.c.call_time)


def _frame(store: ResultStore, stmt: Select, columns: Sequence[str]) -> pd.DataFrame:
    with store._guard("querying"), store._read() as conn:
        rows = conn.execute(stmt).all()
    return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))


def _coerce(df: pd.DataFrame, *, floats: Iterable[str] = (), ints: Iterable[str] = (),
            times: Iterable[str] = (), texts: Iterable[str] = ()) -> pd.DataFrame:
    for c in floats:
        if c in df:
            df[c] = pd.to_numeric(df[c].map(lambda v: None if v is None else float(v)), errors="coerce").astype(
                "float64")
    for c in ints:
        if c in df:
            df[c] = df[c].fillna(0).map(int).astype("int64")
    for c in times:
        if c in df:
            df[c] = pd.to_datetime(df[c]).astype("datetime64[us]")
    for c in texts:
        if c in df:
            df[c] = df[c].astype("object")
    return df


# --- calls -------------------------------------------------------------------------------------
def _call_filters(*, since: Any = None, until: Any = None, agent: Any = None, campaign: Any = None,
                  server: Any = None, carrier: Any = None, layout: Any = None, ingroup: Any = None,
                  finding: Any = None,
                  min_mos: float | None = None, max_mos: float | None = None,
                  text: str | None = None, call_ids: Sequence[str] | None = None) -> list[ColumnElement]:
    where = _time_range(since, until)
    if call_ids is not None:
        where.append(calls.c.call_id.in_(list(call_ids)))
    for column, value in ((calls.c.agent, agent), (calls.c.campaign, campaign), (calls.c.server_ip, server),
                          (calls.c.carrier, carrier), (calls.c.layout, layout), (calls.c.ingroup, ingroup)):
        where += _match(column, value)
    if finding:
        codes = [finding] if isinstance(finding, str) else list(finding)
        where.append(exists().where(findings.c.call_id == calls.c.call_id, findings.c.code.in_(codes)))
    if min_mos is not None:
        where.append(calls.c.mos_min >= float(min_mos))
    if max_mos is not None:
        where.append(calls.c.mos_min <= float(max_mos))
    if text:
        needle = str(text).strip()
        where.append(or_(*(c.icontains(needle, autoescape=True) for c in (
            calls.c.call_id, calls.c.agent, calls.c.campaign, calls.c.uniqueid, calls.c.source_ref,
            cast(calls.c.lead_id, String)))))
    return where


def list_calls(
    store: ResultStore,
    *,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    agent: str | Sequence[str] | None = None,
    campaign: str | Sequence[str] | None = None,
    server: str | Sequence[str] | None = None,
    carrier: str | Sequence[str] | None = None,
    layout: str | Sequence[str] | None = None,
    ingroup: str | Sequence[str] | None = None,
    finding: str | Sequence[str] | None = None,
    min_mos: float | None = None,
    max_mos: float | None = None,
    text: str | None = None,
    call_ids: Sequence[str] | None = None,
    order: str = "newest",
    limit: int | None = 100,
    offset: int = 0,
) -> pd.DataFrame:
    """Stored calls with their headline numbers, filtered and paged.

    Parameters
    ----------
    store : ResultStore
    since, until : datetime, date or str, optional
        Call-time range (``since`` inclusive, ``until`` exclusive).
    agent, campaign, server, carrier, layout, ingroup : str or sequence of str, optional
        Exact match (one value or any of several). ``server`` matches ``server_ip``; ``ingroup``
        is the in-group of inbound calls.
    finding : str or sequence of str, optional
        Only calls with at least one finding of this code (of any of these codes).
    min_mos, max_mos : float, optional
        Bounds on the call's worst-leg MOS (calls without a MOS are then excluded).
    text : str, optional
        Case-insensitive substring of the call id, agent, campaign, uniqueid, lead id or source.
    call_ids : sequence of str, optional
        Only these calls (those not stored are simply absent).
    order : str
        ``newest`` (default), ``oldest``, ``worst_mos`` or ``most_findings``.
    limit, offset : int
        Paging; ``limit=None`` returns everything.

    Returns
    -------
    pandas.DataFrame
        One row per call with the columns in :data:`LIST_COLUMNS`: ``call_time`` and
        ``analyzed_at`` as datetime64, MOS columns as float (NaN when not scored),
        ``finding_codes`` as comma-separated text.
    """
    if order not in ORDERS:
        raise ParameterError(f"order={order!r}; choose one of {', '.join(ORDERS)}")
    where = _call_filters(since=since, until=until, agent=agent, campaign=campaign, server=server,
                          carrier=carrier, layout=layout, ingroup=ingroup, finding=finding, min_mos=min_mos, max_mos=max_mos,
                          text=text, call_ids=call_ids)
    stmt = select(*(calls.c[c] for c in LIST_COLUMNS)).where(and_(True, *where))
    ordering = {  # call_time is never NULL: these use its index on both dialects
        "newest": (calls.c.call_time.desc(), calls.c.call_id),
        "oldest": (calls.c.call_time.asc(), calls.c.call_id),
        "worst_mos": (calls.c.mos_min.asc().nulls_last(), calls.c.call_time.desc(), calls.c.call_id),
        "most_findings": (calls.c.severity_rank.desc(), calls.c.n_findings.desc(), calls.c.call_time.desc(),
                          calls.c.call_id),
    }[order]
    stmt = stmt.order_by(*ordering).offset(max(0, int(offset)))
    if limit is not None:
        stmt = stmt.limit(max(0, int(limit)))
    df = _frame(store, stmt, LIST_COLUMNS)
    df = _coerce(df, floats=_FLOATS, ints=_INTS, times=_TIMES)
    df["lead_id"] = df["lead_id"].astype("Int64")
    return df


def count_calls(store: ResultStore, **filters: Any) -> int:
    """How many calls :func:`list_calls` would return without ``limit`` (same filters)."""
    stmt = select(func.count()).select_from(calls).where(and_(True, *_call_filters(**filters)))
    with store._guard("counting calls"), store._read() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def call_analysis(store: ResultStore, call_id: str) -> dict[str, Any]:
    """One call's full analysis: the stored ``callqa analyze --json`` document."""
    return store.get_analysis(call_id)


METADATA_FIELDS = ("call_id", "call_time", "lead_id", "uniqueid", "agent", "campaign", "ingroup", "server_ip",
                   "carrier", "hangup_cause", "source_kind", "source_ref", "analyzed_at", "fetched_at", "cache_key")


def call_metadata(store: ResultStore, call_id: str) -> dict[str, Any]:
    """What is stored beside one call's analysis: identity, source, ViciDial metadata, times.

    Returns
    -------
    dict
        :data:`METADATA_FIELDS` (``call_time`` local, ``*_at`` UTC, as datetimes), then any other
        metadata given when it was stored (``metadata_json``), which never overrides a column.

    Raises
    ------
    CallNotFoundError
        The call is not stored.
    """
    stmt = select(*(calls.c[c] for c in METADATA_FIELDS), calls.c.metadata_json).where(calls.c.call_id == call_id)
    with store._guard(f"reading call {call_id}"), store._read() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        raise CallNotFoundError(f"call {call_id} is not in the store {store.display_url}")
    out = {k: row[k] for k in METADATA_FIELDS}
    for key, value in json.loads(row["metadata_json"] or "{}").items():
        out.setdefault(key, value)
    return out


def _require_call(store: ResultStore, call_id: str) -> None:
    if not store.has_call(call_id):
        raise CallNotFoundError(f"call {call_id} is not in the store {store.display_url}")


def call_findings(store: ResultStore, call_id: str) -> pd.DataFrame:
    """Findings of one call (code, leg, start_s, end_s, duration_s, severity, detail), by start time."""
    _require_call(store, call_id)
    cols = ("code", "leg", "start_s", "end_s", "severity", "detail")
    stmt = (select(*(findings.c[c] for c in cols)).where(findings.c.call_id == call_id)
            .order_by(findings.c.start_s, findings.c.id))
    df = _coerce(_frame(store, stmt, cols), floats=("start_s", "end_s"))
    df.insert(4, "duration_s", (df["end_s"] - df["start_s"]).round(3))
    return df


def call_tracks(store: ResultStore, call_id: str) -> pd.DataFrame:
    """Per-leg numbers of one call (one row per leg, the ``tracks`` columns)."""
    _require_call(store, call_id)
    cols = [c.name for c in tracks.columns if c.name not in ("call_id", "extra_json")]
    stmt = select(*(tracks.c[c] for c in cols)).where(tracks.c.call_id == call_id).order_by(tracks.c.leg)
    floats = [c for c in cols if isinstance(tracks.c[c].type, type(tracks.c.mos.type))]
    return _coerce(_frame(store, stmt, cols), floats=floats)


def call_intervals(store: ResultStore, call_id: str, *, kind: str = "speech") -> pd.DataFrame:
    """Speech segments (``kind="speech"``) or silence gaps (``"silences"``) of one call, per leg."""
    table = {"speech": speech_segments, "silences": silences}.get(kind)
    if table is None:
        raise ParameterError(f"kind={kind!r}; choose 'speech' or 'silences'")
    _require_call(store, call_id)
    stmt = (select(table.c.leg, table.c.start_s, table.c.end_s).where(table.c.call_id == call_id)
            .order_by(table.c.leg, table.c.start_s))
    return _coerce(_frame(store, stmt, ("leg", "start_s", "end_s")), floats=("start_s", "end_s"))


def call_quality_windows(store: ResultStore, call_id: str) -> pd.DataFrame:
    """NISQA scores per window of one call (empty when it was analysed without quality)."""
    _require_call(store, call_id)
    cols = ("leg", "start_s", "end_s", "mos", "noisiness", "discontinuity", "coloration", "loudness", "speech_s")
    stmt = (select(*(quality_windows.c[c] for c in cols)).where(quality_windows.c.call_id == call_id)
            .order_by(quality_windows.c.leg, quality_windows.c.start_s))
    return _coerce(_frame(store, stmt, cols), floats=cols[1:])


# --- fleet ----------------------------------------------------------------------------------------
_AGG_FLOATS = ("call_minutes", "mean_mos", "p10_mos", "findings_per_call", "problem_rate", "dead_air_s",
               "dead_air_s_per_call", "one_way_rate", *(f"rate_{c}" for c in FINDING_CODES))
_AGG_INTS = ("calls", "calls_with_mos")


def _aggregate(store: ResultStore, keys: list[tuple[str, ColumnElement]], where: list[ColumnElement]) -> pd.DataFrame:
    """calls, call-minutes, MOS mean and p10, finding rates, dead air and one-way rate per ``keys`` (at least one).

    SQL sums per key and per ``finding_codes`` combination (a few dozen in practice), read from
    the covering index ``ix_calls_fleet``; pandas adds them up and turns the combinations into
    per-code rates, which is several times faster than testing every code on every row in SQL.
    """
    names = [n for n, _ in keys]
    exprs = [e for _, e in keys]
    cond = and_(True, *where)
    sums = ("calls", "duration_s", "mos_sum", "calls_with_mos", "findings", "problem_calls", "dead_air_s",
            "one_way_calls")
    base = (
        select(
            *(e.label(n) for n, e in keys),
            calls.c.finding_codes,
            func.count().label("calls"),
            func.sum(calls.c.duration_s).label("duration_s"),
            func.sum(calls.c.mos_min).label("mos_sum"),
            func.count(calls.c.mos_min).label("calls_with_mos"),
            func.sum(calls.c.n_findings).label("findings"),
            func.sum(case((calls.c.severity_rank >= 2, 1), else_=0)).label("problem_calls"),
            func.sum(calls.c.dead_air_s).label("dead_air_s"),
            func.sum(calls.c.one_way).label("one_way_calls"),
        )
        .where(cond)
        .group_by(*exprs, calls.c.finding_codes)
    )
    part = _coerce(_frame(store, base, [*names, "finding_codes", *sums]), floats=sums[1:], ints=("calls",),
                   texts=[n for n in names if n != "bucket"])
    df = part.groupby(names, sort=False, dropna=False)[list(sums)].sum().reset_index()
    per_code = part[[*names, "finding_codes", "calls"]].assign(
        code=part["finding_codes"].str.split(",")).explode("code")
    per_code = per_code[per_code["code"].isin(FINDING_CODES)]
    counts = per_code.groupby([*names, "code"], sort=False, dropna=False)["calls"].sum().unstack("code")
    counts = counts.reindex(columns=list(FINDING_CODES)).fillna(0)
    counts.columns = [f"rate_{c}" for c in counts.columns]
    df = df.merge(counts.reset_index(), on=names, how="left") if len(counts) else df.assign(
        **{f"rate_{c}": 0.0 for c in FINDING_CODES})

    n = df["calls"].astype("float64")
    with_mos = df["calls_with_mos"].astype("float64")
    df["mean_mos"] = (df.pop("mos_sum") / with_mos).where(with_mos > 0)
    df["call_minutes"] = df.pop("duration_s") / 60.0
    df["findings_per_call"] = df.pop("findings") / n
    df["problem_rate"] = df.pop("problem_calls") / n
    df["dead_air_s_per_call"] = df["dead_air_s"] / n
    df["one_way_rate"] = df.pop("one_way_calls") / n
    for code in FINDING_CODES:  # calls with at least one finding of the code, over calls
        df[f"rate_{code}"] = df[f"rate_{code}"].fillna(0).astype("float64") / n

    # p10 of the per-call MOS: rank within each group, keep the two ranks around the position
    rn = func.row_number().over(partition_by=exprs, order_by=calls.c.mos_min)  # ties: same value
    cnt = func.count().over(partition_by=exprs)
    ranked = (select(*(e.label(n) for n, e in keys), calls.c.mos_min.label("mos"), rn.label("rn"),
                     cnt.label("n")).where(cond, calls.c.mos_min.is_not(None)).subquery())
    num, den = P10
    lo = (ranked.c.n - 1) * num // den  # integer division on both dialects
    picked = select(*(ranked.c[n] for n in names), ranked.c.mos, ranked.c.rn, ranked.c.n).where(
        or_(ranked.c.rn == lo + 1, ranked.c.rn == lo + 2))
    pf = _coerce(_frame(store, picked, [*names, "mos", "rn", "n"]), floats=("mos",), ints=("rn", "n"),
                 texts=[n for n in names if n != "bucket"])
    df = df.merge(_percentile(pf, names), on=names, how="left")
    return _coerce(df, floats=_AGG_FLOATS, ints=_AGG_INTS)


def _percentile(pf: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """p10 per group from the two ranked rows around its position (numpy's linear interpolation)."""
    num, den = P10
    pf = pf.assign(lo_rank=(pf["n"] - 1) * num // den + 1)
    lo = pf[pf["rn"] == pf["lo_rank"]]
    hi = pf[pf["rn"] == pf["lo_rank"] + 1][[*names, "mos"]].rename(columns={"mos": "mos_hi"})
    out = lo.merge(hi, on=names, how="left")
    frac = ((out["n"] - 1) * num % den) / den
    v_hi = out["mos_hi"].fillna(out["mos"])
    out["p10_mos"] = out["mos"] + (v_hi - out["mos"]) * frac
    return out[[*names, "p10_mos"]]


def _aggregate_columns(prefix: list[str]) -> list[str]:
    return [*prefix, "calls", "call_minutes", "calls_with_mos", "mean_mos", "p10_mos", "findings_per_call",
            "problem_rate", "dead_air_s", "dead_air_s_per_call", "one_way_rate",
            *(f"rate_{c}" for c in FINDING_CODES)]


def fleet_trend(
    store: ResultStore,
    *,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    bucket: str = "day",
    group_by: str | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """Fleet numbers per day or hour of call time, optionally split by agent/campaign/server/carrier/layout.

    Parameters
    ----------
    store : ResultStore
    since, until : datetime, date or str, optional
        Call-time range (``since`` inclusive, ``until`` exclusive).
    bucket : str
        ``day`` or ``hour``.
    group_by : str, optional
        ``agent``, ``campaign``, ``server``, ``carrier`` or ``layout``.
    **filters
        Any other :func:`list_calls` filter (``agent=``, ``finding=``, ``min_mos=``...).

    Returns
    -------
    pandas.DataFrame
        One row per bucket (and group): ``bucket`` (datetime64, start of the day/hour), the
        group column (named as ``group_by``), ``calls``, ``call_minutes``, ``calls_with_mos``,
        ``mean_mos``, ``p10_mos`` (10th percentile of call MOS), ``findings_per_call``,
        ``problem_rate`` (share of calls with a warning or critical finding), ``dead_air_s``
        (total) and ``dead_air_s_per_call``, ``one_way_rate``, and ``rate_<code>`` for every
        finding code (share of calls with at least one such finding). Sorted by bucket, group.
    """
    keys = [("bucket", _bucket_expr(store.dialect, bucket))]
    column = _group_column(group_by)
    if group_by is not None and column is not None:
        keys.append((group_by, _grouping(column)))
    df = _aggregate(store, keys, _call_filters(since=since, until=until, **filters))
    df["bucket"] = pd.to_datetime(df["bucket"], format="%Y-%m-%d" if bucket == "day" else "%Y-%m-%d %H:%M")
    df["bucket"] = df["bucket"].astype("datetime64[us]")
    out = df[_aggregate_columns(["bucket", *([group_by] if group_by else [])])]
    return out.sort_values(["bucket", *([group_by] if group_by else [])], kind="stable").reset_index(drop=True)


GROUP_SORTS = ("problem_rate", "mean_mos", "p10_mos", "one_way_rate", "dead_air_s_per_call", "findings_per_call",
               "calls")


def fleet_groups(
    store: ResultStore,
    *,
    by: str = "agent",
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    sort: str = "problem_rate",
    min_calls: int = 1,
    limit: int | None = 20,
    **filters: Any,
) -> pd.DataFrame:
    """The worst agents, campaigns, servers, carriers or layouts over a period.

    Parameters
    ----------
    by : str
        ``agent``, ``campaign``, ``server``, ``carrier`` or ``layout``.
    sort : str
        What "worst" means: ``problem_rate`` (default), ``one_way_rate``,
        ``dead_air_s_per_call``, ``findings_per_call``, ``calls`` (highest first) or
        ``mean_mos`` / ``p10_mos`` (lowest first; groups without MOS last).
    min_calls : int
        Leave out groups with fewer calls (a single bad call is not a pattern).
    limit : int, optional
        How many groups to return.
    **filters
        Any other :func:`list_calls` filter.

    Returns
    -------
    pandas.DataFrame
        The :func:`fleet_trend` columns without ``bucket``, one row per group, worst first.
    """
    column = GROUPS.get(by)
    if column is None:
        raise ParameterError(f"by={by!r}; choose one of {', '.join(GROUPS)}")
    if sort not in GROUP_SORTS:
        raise ParameterError(f"sort={sort!r}; choose one of {', '.join(GROUP_SORTS)}")
    df = _aggregate(store, [(by, _grouping(column))], _call_filters(since=since, until=until, **filters))
    df = df[df["calls"] >= int(min_calls)]
    ascending = sort in ("mean_mos", "p10_mos")
    df = df.sort_values([sort, by], ascending=[ascending, True], na_position="last", kind="stable")
    if limit is not None:
        df = df.head(int(limit))
    return df[_aggregate_columns([by])].reset_index(drop=True)


def finding_counts(
    store: ResultStore,
    *,
    since: datetime | date | str | None = None,
    until: datetime | date | str | None = None,
    **filters: Any,
) -> pd.DataFrame:
    """How often each finding occurs: one row per code and severity.

    Returns
    -------
    pandas.DataFrame
        ``code``, ``severity``, ``findings`` (occurrences), ``calls`` (distinct calls),
        ``call_share`` (calls / all calls in the range), ``duration_s`` (total span), sorted by
        calls, then severity (critical first), then code.
    """
    where = _call_filters(since=since, until=until, **filters)
    stmt = select(findings.c.code, findings.c.severity, func.count().label("findings"),
                  func.count(findings.c.call_id.distinct()).label("calls"),
                  func.sum(findings.c.end_s - findings.c.start_s).label("duration_s"))
    if where:  # the calls in range first (covering index), then their findings
        stmt = stmt.where(findings.c.call_id.in_(select(calls.c.call_id).where(and_(True, *where))))
    stmt = stmt.group_by(findings.c.code, findings.c.severity)
    df = _coerce(_frame(store, stmt, ("code", "severity", "findings", "calls", "duration_s")),
                 ints=("findings", "calls"), floats=("duration_s",))
    total = count_calls(store, since=since, until=until, **filters)
    df["call_share"] = (df["calls"] / total if total else df["calls"] * 0.0).astype("float64")
    rank = df["severity"].map(lambda s: -SEVERITIES.index(s) if s in SEVERITIES else 0)
    df = df.assign(_rank=rank).sort_values(["calls", "_rank", "code"], ascending=[False, True, True], kind="stable")
    return df[["code", "severity", "findings", "calls", "call_share", "duration_s"]].reset_index(drop=True)


def list_errors(store: ResultStore, *, limit: int | None = 100) -> pd.DataFrame:
    """Calls whose analysis failed (and has not succeeded since), newest first."""
    cols = ("call_id", "source_kind", "source_ref", "reason", "created_at", "cache_key")
    stmt = select(*(analysis_errors.c[c] for c in cols)).order_by(analysis_errors.c.created_at.desc(),
                                                                   analysis_errors.c.call_id)
    if limit is not None:
        stmt = stmt.limit(int(limit))
    return _coerce(_frame(store, stmt, cols), times=("created_at",))


def store_status(store: ResultStore) -> dict[str, Any]:
    """Counts and times that say how full and how fresh the store is.

    Returns
    -------
    dict
        ``store`` (URL without password), ``dialect``, ``schema`` (revision) and
        ``schema_current``, ``calls``, ``call_minutes``, ``findings``, ``errors``,
        ``claims``, ``first_call_time``, ``last_call_time``, ``last_analyzed_at`` (UTC),
        ``last_error_at`` (UTC) and ``by_layout`` ({layout: calls}).
    """
    with store._guard("reading the status"), store._read() as conn:
        revision = migrations.current_revision(conn)
        c = conn.execute(select(func.count(), func.sum(calls.c.duration_s), func.min(calls.c.call_time),
                                func.max(calls.c.call_time), func.max(calls.c.analyzed_at))).one()
        n_findings = conn.execute(select(func.count()).select_from(findings)).scalar()
        e = conn.execute(select(func.count(), func.max(analysis_errors.c.created_at))).one()
        n_claims = conn.execute(select(func.count()).select_from(claims)).scalar()
        layouts = conn.execute(select(calls.c.layout, func.count()).group_by(calls.c.layout)
                               .order_by(calls.c.layout)).all()
    return {
        "store": store.display_url,
        "dialect": store.dialect,
        "schema": revision,
        "schema_current": revision == migrations.head_revision(),
        "calls": int(c[0] or 0),
        "call_minutes": round(float(c[1] or 0.0) / 60.0, 3),
        "findings": int(n_findings or 0),
        "errors": int(e[0] or 0),
        "claims": int(n_claims or 0),
        "first_call_time": c[2],
        "last_call_time": c[3],
        "last_analyzed_at": c[4],
        "last_error_at": e[1],
        "by_layout": {k: int(v) for k, v in layouts},
    }


HEADLINE_COLUMNS = ("call_id", "layout", "mos_caller", "mos_agent", "mos_mixed", "mos_min", "n_findings",
                    "worst_severity", "finding_codes")


def call_headlines(store: ResultStore, call_ids: Sequence[str]) -> pd.DataFrame:
    """The stored headlines of the given calls (absent calls are absent), for tables of calls found
    elsewhere (ViciDial, a folder).

    Returns
    -------
    pandas.DataFrame
        :data:`HEADLINE_COLUMNS`, MOS columns as float64 (NaN when not scored).
    """
    frames = [list_calls(store, call_ids=tuple(call_ids[i:i + 500]), limit=None) for i in range(0, len(call_ids), 500)]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    for c in HEADLINE_COLUMNS:
        if c not in df:
            df[c] = None
    df = df[list(HEADLINE_COLUMNS)]
    for c in ("mos_caller", "mos_agent", "mos_mixed", "mos_min"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    return df


# --- alerts --------------------------------------------------------------------------------------
FLEET_GROUP = "fleet"


def window_stats(
    store: ResultStore,
    *,
    since: datetime | date | str,
    until: datetime | date | str,
    group_by: str | None = None,
) -> pd.DataFrame:
    """The :func:`fleet_groups` numbers of every group with calls in a call-time window (alert rules).

    Parameters
    ----------
    since, until : datetime, date or str
        The window (``since`` inclusive, ``until`` exclusive), by ``call_time``.
    group_by : str, optional
        A key of :data:`GROUPS`; None for the whole fleet as one group named :data:`FLEET_GROUP`.

    Returns
    -------
    pandas.DataFrame
        ``group`` (the agent, carrier... or ``"fleet"``; missing values as ``"(unknown)"``) and
        the :func:`fleet_trend` columns without ``bucket``, sorted by group; no row for a group
        without calls (so no row at all when the window is empty).
    """
    if group_by is None:
        # an expression over a column, not a bare constant (PostgreSQL refuses GROUP BY 'literal')
        key = func.coalesce(func.nullif(calls.c.layout, calls.c.layout), literal_column(f"'{FLEET_GROUP}'"))
    else:
        column = _group_column(group_by)
        assert column is not None
        key = _grouping(column)
    df = _aggregate(store, [("group", key)], _call_filters(since=since, until=until))
    return df[_aggregate_columns(["group"])].sort_values("group", kind="stable").reset_index(drop=True)
