"""SQL for the ViciDial lookups, kept apart from the code that runs it.

The joins follow ``../shared/docs/vicidial.md`` section 2 (ViciDial's own
``call_report_export.php``):

- outbound: ``recording_log.vicidial_id = vicidial_log.uniqueid``;
- inbound: ``recording_log.vicidial_id = closecallid`` compared *as text*, with the cast given
  the character set and collation of ``recording_log.vicidial_id`` so the index is usable and
  a connection collation that differs from the tables' does not fail with "Illegal mix of
  collations" (section 6);
- names by LEFT JOIN (users, campaigns, in-groups, statuses, servers), because ViciDial has no
  foreign keys and system users (VDAD, VDCL) may be missing.

Live and ``_archive`` tables are combined with ``UNION ALL`` at the outermost level (one
SELECT per live/archive pair) so that every SELECT can use its indexes; each SELECT and the
union carry a LIMIT. Table names are constants and the collation comes from
``information_schema`` (validated), so the only values in the text are placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import ViciDialError

if TYPE_CHECKING:
    from core.vicidial.lookup import LookupFilters

QueryFn = Callable[[str, Sequence[Any]], list[dict[str, Any]]]

REQUIRED_TABLES = ("recording_log", "vicidial_log", "vicidial_closer_log")
# tables ADMIN_archive_log_tables.pl moves old rows out of (vicidial.md 2.5)
ARCHIVED_TABLES = (
    "recording_log",
    "vicidial_log",
    "vicidial_closer_log",
    "vicidial_carrier_log",
    "call_log",
    "vicidial_agent_log",
    "vicidial_did_log",
    "vicidial_log_extended",
    "vicidial_dial_log",
    "vicidial_xfer_log",
    "vicidial_did_agent_log",
)
OTHER_TABLES = (
    "servers",
    "vicidial_users",
    "vicidial_campaigns",
    "vicidial_inbound_groups",
    "vicidial_statuses",
    "vicidial_campaign_statuses",
    "recording_log_stereo",
    "routing_initiated_recordings",
)
_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_UNIQUEID = re.compile(r"^(\d+)\.\d+$")


@dataclass(frozen=True)
class SchemaInfo:
    """What a ViciDial database offers: present tables and the vicidial_id collation(s)."""

    tables: frozenset[str]
    vicidial_id_collations: tuple[tuple[str, str, str], ...]  # (table, charset, collation)

    def has(self, table: str) -> bool:
        return table in self.tables

    def twins(self, table: str) -> tuple[str, ...]:
        """``table`` and its ``_archive`` twin, those that exist (archive only when enabled)."""
        return tuple(t for t in (table, f"{table}_archive") if t in self.tables)

    def vicidial_id_cast(self, expr: str, rec_table: str) -> str:
        """``expr`` cast to text in the character set and collation of ``rec_table.vicidial_id``."""
        for table, charset, collation in self.vicidial_id_collations:
            if table == rec_table:
                return f"CAST({expr} AS CHAR CHARACTER SET {charset}) COLLATE {collation}"
        return f"CAST({expr} AS CHAR)"


def detect_schema(query: QueryFn, *, database: str, collation: str = "", include_archive: bool = True) -> SchemaInfo:
    """Read which ViciDial tables exist and how ``recording_log.vicidial_id`` is collated.

    Parameters
    ----------
    query : callable
        ``query(sql, args) -> rows`` of an open session.
    database : str
        Database name, for the error message.
    collation : str
        Collation forced by configuration; empty = use the column's own.
    include_archive : bool
        Whether ``*_archive`` tables take part in searches.

    Raises
    ------
    ViciDialError
        When the database lacks ``recording_log``, ``vicidial_log`` or ``vicidial_closer_log``.
    """
    wanted = set(ARCHIVED_TABLES) | {f"{t}_archive" for t in ARCHIVED_TABLES} | set(OTHER_TABLES)
    marks = ", ".join(["%s"] * len(wanted))
    rows = query(
        "SELECT TABLE_NAME AS name FROM information_schema.TABLES "
        f"WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ({marks}) LIMIT 100",
        sorted(wanted),
    )
    tables = {str(r["name"]) for r in rows}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise ViciDialError(
            f"database '{database}' has no {', '.join(missing)} table: is it the ViciDial database?"
        )
    if not include_archive:
        tables = {t for t in tables if not t.endswith("_archive")}
    collations = []
    cols = query(
        "SELECT TABLE_NAME AS t, CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll "
        "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND COLUMN_NAME = 'vicidial_id' "
        "AND TABLE_NAME IN ('recording_log', 'recording_log_archive') LIMIT 2",
        (),
    )
    forced_charset = ""
    if collation:
        found = query(
            "SELECT CHARACTER_SET_NAME AS cs FROM information_schema.COLLATIONS WHERE COLLATION_NAME = %s LIMIT 1",
            (collation,),
        )
        if not found:
            raise ViciDialError(f"[vicidial] collation '{collation}' is not known to the server")
        forced_charset = str(found[0]["cs"])
    for col in cols:
        charset = forced_charset or str(col["cs"] or "")
        coll = collation or str(col["coll"] or "")
        if _NAME.match(charset) and _NAME.match(coll):
            collations.append((str(col["t"]), charset, coll))
    return SchemaInfo(tables=frozenset(tables), vicidial_id_collations=tuple(collations))


# --- the recording search -------------------------------------------------------------------

# output column -> SQL expression per branch (outbound, inbound, unlinked). ``c`` is the call
# row, ``r`` the recording; None is written as NULL.
_COLUMNS: tuple[tuple[str, str | None, str | None, str | None], ...] = (
    ("direction", "'outbound'", "'inbound'", "'unlinked'"),
    ("recording_id", "r.recording_id", "r.recording_id", "r.recording_id"),
    ("filename", "r.filename", "r.filename", "r.filename"),
    ("location", "r.location", "r.location", "r.location"),
    ("server_ip", "r.server_ip", "r.server_ip", "r.server_ip"),
    ("server_id", "s.server_id", "s.server_id", "s.server_id"),
    ("start_time", "r.start_time", "r.start_time", "r.start_time"),
    ("start_epoch", "r.start_epoch", "r.start_epoch", "r.start_epoch"),
    ("end_time", "r.end_time", "r.end_time", "r.end_time"),
    ("length_in_sec", "r.length_in_sec", "r.length_in_sec", "r.length_in_sec"),
    ("recording_channel", "r.channel", "r.channel", "r.channel"),
    ("recording_extension", "r.extension", "r.extension", "r.extension"),
    ("vicidial_id", "r.vicidial_id", "r.vicidial_id", "r.vicidial_id"),
    ("user", "COALESCE(NULLIF(r.user, ''), c.user)", "COALESCE(NULLIF(r.user, ''), c.user)", "r.user"),
    ("full_name", "u.full_name", "u.full_name", "u.full_name"),
    ("user_group", "c.user_group", "c.user_group", "u.user_group"),
    ("lead_id", "c.lead_id", "c.lead_id", "r.lead_id"),
    ("list_id", "c.list_id", "c.list_id", None),
    ("uniqueid", "c.uniqueid", "c.uniqueid", None),
    ("closecallid", None, "c.closecallid", None),
    ("call_date", "c.call_date", "c.call_date", "r.start_time"),
    ("call_length_in_sec", "c.length_in_sec", "c.length_in_sec", None),
    ("campaign_id", "c.campaign_id", None, None),
    ("campaign_name", "vc.campaign_name", None, None),
    ("ingroup", None, "c.campaign_id", None),
    ("group_name", None, "ig.group_name", None),
    ("phone_code", "c.phone_code", "c.phone_code", None),
    ("phone_number", "c.phone_number", "c.phone_number", None),
    ("status", "c.status", "c.status", None),
    ("status_name", "COALESCE(cst.status_name, st.status_name)", "st.status_name", None),
    ("term_reason", "c.term_reason", "c.term_reason", None),
    ("queue_seconds", None, "c.queue_seconds", None),
    ("comments", "c.comments", "c.comments", None),
    ("stereo_options", "rs.options", "rs.options", "rs.options"),
)
SEARCH_COLUMNS: tuple[str, ...] = tuple(c[0] for c in _COLUMNS) + ("call_table", "recording_table")
_KIND_INDEX = {"outbound": 1, "inbound": 2, "unlinked": 3}


def _select_list(kind: str, call_table: str | None, rec_table: str, *, has_stereo: bool) -> str:
    parts = []
    for column in _COLUMNS:
        expr = column[_KIND_INDEX[kind]]
        if expr is not None and expr.startswith("rs.") and not has_stereo:
            expr = None
        parts.append(f"{expr or 'NULL'} AS `{column[0]}`")
    parts.append(f"'{call_table}' AS `call_table`" if call_table else "NULL AS `call_table`")
    parts.append(f"'{rec_table}' AS `recording_table`")
    return ",\n  ".join(parts)


@dataclass(frozen=True)
class SqlQuery:
    """A statement with ``%s`` placeholders and its arguments."""

    sql: str
    args: tuple[Any, ...]


def _common_joins(kind: str, schema: SchemaInfo) -> str:
    user_expr = "r.user" if kind == "unlinked" else "COALESCE(NULLIF(r.user, ''), c.user)"
    joins = [
        f"LEFT JOIN vicidial_users u ON u.user = {user_expr}",
        "LEFT JOIN servers s ON s.server_ip = r.server_ip",
    ]
    if kind == "outbound":
        joins += [
            "LEFT JOIN vicidial_campaigns vc ON vc.campaign_id = c.campaign_id",
            "LEFT JOIN vicidial_statuses st ON st.status = c.status",
            "LEFT JOIN vicidial_campaign_statuses cst ON cst.status = c.status AND cst.campaign_id = c.campaign_id",
        ]
    elif kind == "inbound":
        joins += [
            "LEFT JOIN vicidial_inbound_groups ig ON ig.group_id = c.campaign_id",
            "LEFT JOIN vicidial_statuses st ON st.status = c.status",
        ]
    if schema.has("recording_log_stereo"):
        joins.append("LEFT JOIN recording_log_stereo rs ON rs.recording_id = r.recording_id")
    return "\n".join(joins)


def _conditions(
    kind: str,
    schema: SchemaInfo,
    filters: LookupFilters,
    phones: Sequence[str],
    after_recording_id: int | None,
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    time_col = "r.start_time" if kind == "unlinked" else "c.call_date"
    if filters.since is not None:
        where.append(f"{time_col} >= %s")
        args.append(filters.since)
    if filters.until is not None:
        where.append(f"{time_col} < %s")
        args.append(filters.until)
    if phones:
        where.append(f"c.phone_number IN ({', '.join(['%s'] * len(phones))})")
        args.extend(phones)
    if filters.agent:
        where.append("r.user = %s")
        args.append(filters.agent)
    if kind == "outbound" and filters.campaign:
        where.append("c.campaign_id = %s")
        args.append(filters.campaign)
    if kind == "inbound" and filters.ingroup:
        where.append("c.campaign_id = %s")
        args.append(filters.ingroup)
    if filters.lead_id is not None:
        where.append("r.lead_id = %s" if kind == "unlinked" else "c.lead_id = %s")
        args.append(filters.lead_id)
    if filters.uniqueid:
        where.append("c.uniqueid = %s")
        args.append(filters.uniqueid)
    if filters.recording_id is not None:
        where.append("r.recording_id = %s")
        args.append(filters.recording_id)
    if filters.status:
        where.append("c.status = %s")
        args.append(filters.status)
    if after_recording_id is not None:
        where.append("r.recording_id > %s")
        args.append(after_recording_id)
    if kind == "unlinked":
        # recordings whose vicidial_id finds no call row (gateway G..., manual-dial M/V call
        # ids, empty, or a call row that was purged)
        for table in schema.twins("vicidial_log"):
            where.append(f"NOT EXISTS (SELECT 1 FROM {table} x WHERE x.uniqueid = r.vicidial_id LIMIT 1)")
        for table in schema.twins("vicidial_closer_log"):
            where.append(
                f"NOT EXISTS (SELECT 1 FROM {table} x WHERE r.vicidial_id REGEXP '^[0-9]+$' "
                "AND x.closecallid = CAST(r.vicidial_id AS UNSIGNED) LIMIT 1)"
            )
    return where, args


def _kinds(filters: LookupFilters, after_recording_id: int | None) -> list[str]:
    kinds = []
    want = filters.direction
    if want in (None, "outbound") and not (filters.ingroup and not filters.campaign):
        kinds.append("outbound")
    if want in (None, "inbound") and not (filters.campaign and not filters.ingroup):
        kinds.append("inbound")
    call_only = filters.phone or filters.campaign or filters.ingroup or filters.uniqueid or filters.status
    recording_keyed = (
        filters.recording_id is not None or filters.lead_id is not None or filters.agent or after_recording_id is not None
    )
    if want in (None, "unlinked") and recording_keyed and not call_only:
        kinds.append("unlinked")
    return kinds


def search_query(
    schema: SchemaInfo,
    filters: LookupFilters,
    *,
    phones: Sequence[str] = (),
    limit: int,
    after_recording_id: int | None = None,
) -> SqlQuery | None:
    """Build the recording search: one row per (call, recording) pair, newest first.

    Parameters
    ----------
    schema : SchemaInfo
        Present tables and collations.
    filters : LookupFilters
        The search; ``campaign`` narrows outbound calls and ``ingroup`` inbound ones (given
        both, the result holds both sets).
    phones : sequence of str
        Candidate ``phone_number`` spellings for ``filters.phone``.
    limit : int
        Row cap, applied to every SELECT and to the union.
    after_recording_id : int, optional
        Only recordings with a larger id, oldest first (the watcher's watermark).

    Returns
    -------
    SqlQuery or None
        None when the filters exclude every branch (the result is empty).
    """
    kinds = _kinds(filters, after_recording_id)
    ascending = after_recording_id is not None
    has_stereo = schema.has("recording_log_stereo")
    selects: list[str] = []
    args: list[Any] = []
    for kind in kinds:
        rec_tables = schema.twins("recording_log")
        call_tables: tuple[str | None, ...]
        if kind == "outbound":
            call_tables = schema.twins("vicidial_log")
        elif kind == "inbound":
            call_tables = schema.twins("vicidial_closer_log")
        else:
            call_tables = (None,)
        for call_table in call_tables:
            for rec_table in rec_tables:
                if kind == "outbound":
                    source = f"{call_table} c\nJOIN {rec_table} r ON r.vicidial_id = c.uniqueid"
                elif kind == "inbound":
                    cast = schema.vicidial_id_cast("c.closecallid", rec_table)
                    source = f"{call_table} c\nJOIN {rec_table} r ON r.vicidial_id = {cast}"
                else:
                    source = f"{rec_table} r"
                where, where_args = _conditions(kind, schema, filters, phones, after_recording_id)
                if ascending:
                    order = "r.recording_id ASC"
                elif kind == "unlinked":
                    order = "r.start_time DESC, r.recording_id DESC"
                else:
                    order = "c.call_date DESC, r.recording_id DESC"
                selects.append(
                    f"(SELECT\n  {_select_list(kind, call_table, rec_table, has_stereo=has_stereo)}\n"
                    f"FROM {source}\n{_common_joins(kind, schema)}\n"
                    f"{'WHERE ' + ' AND '.join(where) if where else ''}\n"
                    f"ORDER BY {order}\nLIMIT %s)"
                )
                args.extend(where_args)
                args.append(limit)
    if not selects:
        return None
    outer = "recording_id ASC" if ascending else "call_date DESC, recording_id DESC"
    sql = "\nUNION ALL\n".join(selects) + f"\nORDER BY {outer}\nLIMIT %s"
    args.append(limit)
    return SqlQuery(sql, tuple(args))


# --- carrier log ----------------------------------------------------------------------------

CARRIER_COLUMNS = (
    "uniqueid",
    "lead_id",
    "call_date",
    "hangup_cause",
    "dialstatus",
    "sip_hangup_cause",
    "sip_hangup_reason",
    "dial_time",
    "answered_time",
    "caller_code",
    "channel",
)


def uniqueid_second(uniqueid: str | None) -> str | None:
    """The integer (Unix-second) part of an Asterisk uniqueid, or None if it is not one."""
    m = _UNIQUEID.match(uniqueid or "")
    return m.group(1) if m else None


def carrier_query(schema: SchemaInfo, calls: Sequence[tuple[str, int]], *, limit: int) -> SqlQuery | None:
    """Carrier-log rows for outbound calls given as ``(uniqueid, lead_id)``.

    Matches the call's uniqueid exactly (carrier rows are realigned to it when the agent
    dispositions) or the same integer second on the same lead (the Local ``;2`` leg, as
    ViciDial's export does); the caller picks the best row per call.
    """
    calls = [(u, int(lead)) for u, lead in calls if u and lead is not None]
    if not calls or not schema.has("vicidial_carrier_log"):
        return None
    leads = sorted({lead for _, lead in calls})
    exact = sorted({u for u, _ in calls})
    prefixes = sorted({f"{s}.%" for u, _ in calls if (s := uniqueid_second(u))})
    match = [f"uniqueid IN ({', '.join(['%s'] * len(exact))})"] + ["uniqueid LIKE %s"] * len(prefixes)
    selects, args = [], []
    for table in schema.twins("vicidial_carrier_log"):
        selects.append(
            f"(SELECT {', '.join(CARRIER_COLUMNS)} FROM {table} "
            f"WHERE lead_id IN ({', '.join(['%s'] * len(leads))}) AND ({' OR '.join(match)}) LIMIT %s)"
        )
        args += [*leads, *exact, *prefixes, limit]
    return SqlQuery("\nUNION ALL\n".join(selects) + "\nLIMIT %s", (*args, limit))


def twin_rows(query: QueryFn, schema: SchemaInfo, table: str, where: str, args: Sequence[Any], *,
              limit: int, columns: str = "*", order: str = "") -> list[dict[str, Any]]:
    """Rows of ``table`` and its archive twin matching ``where``, each tagged with ``_table``."""
    out: list[dict[str, Any]] = []
    for name in schema.twins(table) if table in ARCHIVED_TABLES else ((table,) if schema.has(table) else ()):
        sql = f"SELECT {columns} FROM {name} WHERE {where}{' ORDER BY ' + order if order else ''} LIMIT %s"
        for row in query(sql, (*args, limit)):
            out.append({**row, "_table": name})
    return out
