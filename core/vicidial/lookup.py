"""Finding ViciDial calls and their recordings (read-only).

The public functions take either an open :class:`~core.vicidial.connection.ViciDialSession`
or settings (:class:`~core.vicidial.settings.ViciDialSettings` or the whole
:class:`~core.config.Settings`), in which case a session is opened and closed around the call.

- :func:`search_recordings` -- the search behind ``callqa lookup``, the dashboard and
  ``callqa scan vicidial``: a DataFrame with one row per recording.
- :func:`get_recording` -- one recording's row with its metadata, for fetching and analysis.
- :func:`recordings_since` -- new recordings after a ``recording_id`` watermark, for a watcher.
- :func:`call_context` -- every related log row, for an investigation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from core.config import Settings
from core.errors import CallNotFoundError, ParameterError
from core.jsonable import json_records, json_value
from core.vicidial.connection import ViciDialSession, connect
from core.vicidial.settings import ViciDialSettings
from core.vicidial.sql import (
    SEARCH_COLUMNS,
    carrier_query,
    search_query,
    twin_rows,
    uniqueid_second,
)

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
CONTEXT_LIMIT = 50
DIRECTIONS = ("outbound", "inbound", "unlinked")
CARRIER_OUTPUT = ("hangup_cause", "dialstatus", "sip_hangup_cause", "sip_hangup_reason", "dial_time", "answered_time")
RESULT_COLUMNS: tuple[str, ...] = SEARCH_COLUMNS + CARRIER_OUTPUT
_INT_COLUMNS = (
    "recording_id", "start_epoch", "length_in_sec", "lead_id", "list_id", "closecallid", "call_length_in_sec",
    "hangup_cause", "sip_hangup_cause", "dial_time", "answered_time",
)
_TIME_COLUMNS = ("start_time", "end_time", "call_date")
# the columns a session may read from vicidial_users / servers (never pass, phone_pass, manager secrets)
_USER_COLUMNS = "user, full_name, user_level, user_group, active"
_SERVER_COLUMNS = "server_id, server_description, server_ip, active, asterisk_version, local_gmt"

# ITU-T E.164 two-digit country codes; 1 and 7 are one digit, every other code has three
_TWO_DIGIT_COUNTRY_CODES = frozenset(
    "20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 "
    "60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98".split()
)

SessionSource = ViciDialSession | ViciDialSettings | Settings


@dataclass(frozen=True)
class LookupFilters:
    """What to search for; every given field must match (AND), except as noted.

    Attributes
    ----------
    since, until : datetime, optional
        Call time range, ``since <= call_date < until`` (server-local time, like ViciDial's
        DATETIMEs). For inbound calls ``call_date`` is when the call entered the queue.
    phone : str, optional
        Customer number in any spelling (``+1 (312) 555-1212``, ``13125551212``,
        ``3125551212``); matched against ``phone_number``, which ViciDial stores without the
        country code.
    agent : str, optional
        ViciDial user id of the agent on the recording (``recording_log.user``).
    campaign : str, optional
        Outbound campaign id. Alone it limits the search to outbound calls.
    ingroup : str, optional
        In-group id. Alone it limits the search to inbound calls; given with ``campaign``,
        the result holds the campaign's and the in-group's calls.
    lead_id, recording_id : int, optional
        Exact ids.
    uniqueid : str, optional
        Asterisk uniqueid of the call row.
    status : str, optional
        Call disposition (``SALE``, ``NA``...).
    direction : {'outbound', 'inbound', 'unlinked'}, optional
        Only that kind of recording (``unlinked``: no call row found for it).

    Notes
    -----
    Unlinked recordings are searched only when ``recording_id``, ``lead_id`` or ``agent`` is
    given and nothing call-specific (phone, campaign, in-group, uniqueid, status):
    ``recording_log.start_time`` has no index, so a date range alone cannot reach them cheaply.
    ``vicidial_log`` has no index on ``phone_number`` either; give outbound phone searches a
    date range on large databases (the server's statement cap stops runaway scans).
    """

    since: datetime | None = None
    until: datetime | None = None
    phone: str | None = None
    agent: str | None = None
    campaign: str | None = None
    ingroup: str | None = None
    lead_id: int | None = None
    uniqueid: str | None = None
    recording_id: int | None = None
    status: str | None = None
    direction: str | None = None

    def __post_init__(self) -> None:
        for name in ("phone", "agent", "campaign", "ingroup", "uniqueid", "status"):
            value = getattr(self, name)
            if value is not None:
                value = str(value).strip() or None
                object.__setattr__(self, name, value)
        for name in ("lead_id", "recording_id"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) < 0):
                raise ParameterError(f"{name}={value!r} must be a non-negative integer")
        if self.since and self.until and self.until <= self.since:
            raise ParameterError(f"until ({self.until}) must be later than since ({self.since})")
        if self.direction not in (None, *DIRECTIONS):
            raise ParameterError(f"direction={self.direction!r} must be one of {', '.join(DIRECTIONS)}")
        if self.phone is not None:
            phone_candidates(self.phone)  # validates


def _country_code_length(digits: str) -> int:
    """Length of the E.164 country code at the start of ``digits`` (codes are prefix-free)."""
    if digits[:1] in ("1", "7"):
        return 1
    return 2 if digits[:2] in _TWO_DIGIT_COUNTRY_CODES else 3


def phone_candidates(phone: str) -> tuple[str, ...]:
    """The ``phone_number`` spellings a user-typed number may be stored as.

    ViciDial stores digits only, without the country code (that is ``phone_code``). Input
    with ``+``, ``00`` or ``011`` carries a country code, which is stripped using the E.164
    code lengths; an 11-digit number starting with 1 is also tried without it (NANP).

    Examples
    --------
    >>> phone_candidates("+1 (312) 555-1212")
    ('13125551212', '3125551212')
    >>> phone_candidates("0044 20 7946 0018")
    ('00442079460018', '442079460018', '2079460018')
    >>> phone_candidates("312-555-1212")
    ('3125551212',)
    """
    digits = re.sub(r"\D", "", phone)
    if len(digits) < 3:
        raise ParameterError(f"phone={phone!r} needs at least 3 digits")
    candidates = [digits]
    body = digits
    international = phone.strip().startswith("+")
    for prefix in ("011", "00"):
        if digits.startswith(prefix) and len(digits) > len(prefix) + 6:
            body = digits[len(prefix):]
            candidates.append(body)
            international = True
            break
    if international:
        national = body[_country_code_length(body):]
        if len(national) >= 4:
            candidates.append(national)
    elif len(digits) == 11 and digits.startswith("1"):
        candidates.append(digits[1:])
    return tuple(dict.fromkeys(candidates))


@contextmanager
def _session(source: SessionSource) -> Iterator[ViciDialSession]:
    if isinstance(source, ViciDialSession):
        yield source
        return
    settings = ViciDialSettings.from_settings(source) if isinstance(source, Settings) else source
    with connect(settings) as session:
        yield session


def _check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= int(limit) <= MAX_LIMIT:
        raise ParameterError(f"limit={limit!r} must be between 1 and {MAX_LIMIT}")
    return int(limit)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows to a DataFrame with stable columns and types (nullable ints, datetimes)."""
    frame = pd.DataFrame.from_records(rows, columns=list(RESULT_COLUMNS))
    for col in _TIME_COLUMNS:
        frame[col] = pd.to_datetime(frame[col], errors="coerce")  # '0000-00-00' comes back as text
    for col in _INT_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    frame["queue_seconds"] = pd.to_numeric(frame["queue_seconds"], errors="coerce").astype("float64")
    return frame


def _dedupe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per recording: a row copied to an archive table but not yet deleted counts once."""
    seen: set[Any] = set()
    out = []
    ranked = sorted(rows, key=lambda r: (str(r.get("recording_table", "")).endswith("_archive"),
                                         str(r.get("call_table") or "").endswith("_archive")))
    for row in ranked:
        if row["recording_id"] in seen:
            continue
        seen.add(row["recording_id"])
        out.append(row)
    order = {id(r): i for i, r in enumerate(rows)}
    return sorted(out, key=lambda r: order[id(r)])


def _attach_carrier(session: ViciDialSession, rows: list[dict[str, Any]]) -> None:
    """Add the carrier result (hangup cause, SIP cause/reason, dial status) to outbound rows."""
    calls = [(r["uniqueid"], r["lead_id"]) for r in rows if r["direction"] == "outbound" and r.get("uniqueid")]
    for row in rows:
        for col in CARRIER_OUTPUT:
            row.setdefault(col, None)
    query = carrier_query(session.schema, calls, limit=4 * len(calls) + 10)
    if query is None:
        return
    carrier = session.query(query.sql, query.args)
    for row in rows:
        if row["direction"] != "outbound" or not row.get("uniqueid"):
            continue
        second = uniqueid_second(row["uniqueid"])
        exact = [c for c in carrier if c["uniqueid"] == row["uniqueid"]]
        near = [
            c for c in carrier
            if c["lead_id"] == row["lead_id"] and second and uniqueid_second(c["uniqueid"]) == second
        ]
        best = exact or sorted(near, key=lambda c: str(c["call_date"] or ""), reverse=True)
        if best:
            for col in CARRIER_OUTPUT:
                row[col] = best[0][col]


def _search_rows(session: ViciDialSession, filters: LookupFilters, *, limit: int,
                 after_recording_id: int | None = None) -> list[dict[str, Any]]:
    phones = phone_candidates(filters.phone) if filters.phone else ()
    query = search_query(session.schema, filters, phones=phones, limit=limit, after_recording_id=after_recording_id)
    if query is None:
        return []
    rows = _dedupe(session.query(query.sql, query.args))
    _attach_carrier(session, rows)
    return rows


def search_recordings(conn_or_settings: SessionSource, filters: LookupFilters | None = None, *,
                      limit: int = DEFAULT_LIMIT) -> pd.DataFrame:
    """Search ViciDial recordings with their call, agent, campaign/in-group and carrier data.

    Outbound calls (``vicidial_log``) and inbound calls (``vicidial_closer_log``) are joined
    to ``recording_log``, live and ``_archive`` tables together. When the filters name a
    recording, a lead or an agent (and nothing call-specific), recordings without a call row
    (gateway, manual-dial before connect, agent recordings outside a call) are included as
    ``direction='unlinked'``.

    Parameters
    ----------
    conn_or_settings : ViciDialSession, ViciDialSettings or Settings
        An open session, or settings to open one for this search.
    filters : LookupFilters, optional
        The search; none means the newest recordings.
    limit : int
        Maximum rows, 1..5000.

    Returns
    -------
    pandas.DataFrame
        One row per recording, newest call first, columns :data:`RESULT_COLUMNS`:
        ``recording_id``, ``filename``, ``location``, ``server_ip``, ``start_time``,
        ``length_in_sec`` (recording), ``call_date``, ``call_length_in_sec``, ``direction``,
        ``user``/``full_name``, ``campaign_id``/``campaign_name``, ``ingroup``/``group_name``,
        ``phone_number``, ``status``, ``term_reason``, ``hangup_cause``, ``sip_hangup_cause``,
        ``sip_hangup_reason``, ``dialstatus`` ... Ids are nullable ``Int64``, times
        ``datetime64`` (server-local).

    Raises
    ------
    ViciDialError
        Connection or query failure (including the server's statement time cap).
    ParameterError
        Invalid filters or limit.
    """
    filters = filters or LookupFilters()
    limit = _check_limit(limit)
    with _session(conn_or_settings) as session:
        return _frame(_search_rows(session, filters, limit=limit))


def to_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a search result as JSON-ready dicts (times as ``YYYY-MM-DD HH:MM:SS``, NULL as None)."""
    return json_records(frame)


def get_recording(settings: SessionSource, recording_id: int) -> dict[str, Any]:
    """One recording's row with its call metadata, ready for :func:`core.fetch.fetch_recording`.

    Parameters
    ----------
    settings : ViciDialSession, ViciDialSettings or Settings
        Where to look.
    recording_id : int
        ``recording_log.recording_id`` (live or archive).

    Returns
    -------
    dict
        The :data:`RESULT_COLUMNS` of that recording, JSON-ready values.

    Raises
    ------
    CallNotFoundError
        No such recording.
    """
    filters = LookupFilters(recording_id=int(recording_id))
    with _session(settings) as session:
        rows = _search_rows(session, filters, limit=5)
    if not rows:
        raise CallNotFoundError(f"recording_id {recording_id} not found in ViciDial (recording_log and its archive)")
    return to_records(_frame(rows[:1]))[0]


def recordings_since(settings: SessionSource, *, after_recording_id: int, limit: int = DEFAULT_LIMIT,
                     pending_grace_s: float = 3600.0) -> pd.DataFrame:
    """Recordings with ``recording_id > after_recording_id``, oldest first, for a watcher.

    A recording is *ready* once the dialer's audio cron has written its URL into
    ``location`` (ViciDial processes files every few minutes). The result stops before the
    first recording that is not ready yet, so the largest ``recording_id`` returned is a safe
    new watermark; a recording still unprocessed ``pending_grace_s`` after it started is
    returned anyway (with its empty location) so it cannot block the watcher for ever.

    Parameters
    ----------
    settings : ViciDialSession, ViciDialSettings or Settings
        Where to look.
    after_recording_id : int
        The watermark (0 to start from the beginning).
    limit : int
        Maximum rows, 1..5000.
    pending_grace_s : float
        How long to wait for an unprocessed recording, in seconds after its start.

    Returns
    -------
    pandas.DataFrame
        Same columns as :func:`search_recordings`, ascending ``recording_id``.
    """
    limit = _check_limit(limit)
    with _session(settings) as session:
        rows = _search_rows(session, LookupFilters(), limit=limit, after_recording_id=int(after_recording_id))
        now_s = int(session.query("SELECT UNIX_TIMESTAMP() AS now LIMIT 1")[0]["now"])
    ready = []
    for row in rows:
        processed = "://" in str(row.get("location") or "")
        stale = row.get("start_epoch") is not None and now_s - int(row["start_epoch"]) > pending_grace_s
        if not (processed or stale):
            break
        ready.append(row)
    return _frame(ready)


def _jsonable_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: json_value(v) for k, v in row.items()} for row in rows]


def call_context(settings: SessionSource, recording_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every log row related to one recording, for an investigation.

    Follows vicidial.md sections 2.1-2.2: the recording, its call (``vicidial_log`` or
    ``vicidial_closer_log``, or for an unlinked recording the same lead and agent's calls
    around its start), transfers, ``vicidial_log_extended`` (the call ID), carrier and dial
    logs, ``call_log`` channels, DID entry, the agent's state rows, the agent and the server.
    Live and archive tables are both read; each row carries ``_table``.

    Returns
    -------
    dict of str to list of dict
        Keyed by table name (``recording_log``, ``vicidial_log``, ``vicidial_closer_log``,
        ``vicidial_xfer_log``, ``vicidial_log_extended``, ``vicidial_carrier_log``,
        ``vicidial_dial_log``, ``call_log``, ``vicidial_did_log``, ``vicidial_agent_log``,
        ``recording_log_stereo``, ``routing_initiated_recordings``, ``vicidial_users``,
        ``servers``); every key is present, empty when nothing matched or the table does not
        exist on this ViciDial version. Values are JSON-ready.

    Raises
    ------
    CallNotFoundError
        No such recording.
    """
    with _session(settings) as session:
        return _call_context(session, int(recording_id))


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


class _Context:
    """Gathers :func:`call_context` rows, one related table at a time, into ``out``."""

    def __init__(self, session: ViciDialSession, recording: dict[str, Any], out: dict[str, list[dict[str, Any]]]):
        self.session, self.rec, self.out = session, recording, out

    def rows(self, table: str, where: str, args: list[Any], **kw: Any) -> list[dict[str, Any]]:
        return twin_rows(self.session.query, self.session.schema, table, where, args, limit=CONTEXT_LIMIT, **kw)

    def calls(self) -> None:
        """The call behind the recording (vicidial_id: uniqueid or closecallid) and its transfers."""
        out, rec = self.out, self.rec
        vid, lead, user = str(rec.get("vicidial_id") or ""), rec.get("lead_id"), rec.get("user")
        out["vicidial_log"], out["vicidial_closer_log"], out["vicidial_xfer_log"] = [], [], []
        if uniqueid_second(vid):
            out["vicidial_log"] = self.rows("vicidial_log", "uniqueid = %s", [vid])
        elif vid.isdigit():
            out["vicidial_closer_log"] = self.rows("vicidial_closer_log", "closecallid = %s", [int(vid)])
        elif lead and user and rec.get("start_time"):
            # no call link: the same lead and agent's outbound calls around the recording start
            out["vicidial_log"] = self.rows(
                "vicidial_log",
                "lead_id = %s AND user = %s AND call_date BETWEEN %s - INTERVAL 1 HOUR AND %s + INTERVAL 10 MINUTE",
                [lead, user, rec["start_time"], rec["start_time"]], order="call_date DESC",
            )
        for call in list(out["vicidial_log"]):  # transfers out of the outbound call into in-groups
            xfers = self.rows("vicidial_xfer_log", "lead_id = %s AND front_uniqueid = %s",
                              [call["lead_id"], call["uniqueid"]])
            out["vicidial_xfer_log"] += xfers
            ids = [x["xfercallid"] for x in xfers]
            if ids:
                out["vicidial_closer_log"] += self.rows(
                    "vicidial_closer_log", f"lead_id = %s AND xfercallid IN ({_marks(ids)})", [call["lead_id"], *ids])
        for closer in list(out["vicidial_closer_log"]):  # the agent transfer that fed an in-group call
            if closer.get("xfercallid"):
                xfers = self.rows("vicidial_xfer_log", "xfercallid = %s", [closer["xfercallid"]])
                out["vicidial_xfer_log"] += [x for x in xfers if x not in out["vicidial_xfer_log"]]
                fronts = [x["front_uniqueid"] for x in xfers if x.get("front_uniqueid")]
                if fronts:
                    out["vicidial_log"] += self.rows("vicidial_log", f"uniqueid IN ({_marks(fronts)})", fronts)

    def dialing(self) -> None:
        """Outbound: call ID (log_extended), carrier result, Originate (dial log); inbound: DID entry; channels."""
        out = self.out
        out["vicidial_log_extended"], out["vicidial_carrier_log"], out["vicidial_did_log"] = [], [], []
        outbound = [(c["uniqueid"], c["lead_id"], f"{uniqueid_second(c['uniqueid'])}.%") for c in out["vicidial_log"]]
        for uniqueid, lead, same_second in outbound:
            out["vicidial_log_extended"] += self.rows(
                "vicidial_log_extended", "uniqueid = %s OR (lead_id = %s AND uniqueid LIKE %s)",
                [uniqueid, lead, same_second])
        codes = sorted({e["caller_code"] for e in out["vicidial_log_extended"] if e.get("caller_code")})
        by_code = f" OR caller_code IN ({_marks(codes)})" if codes else ""
        for uniqueid, lead, same_second in outbound:
            out["vicidial_carrier_log"] += self.rows(
                "vicidial_carrier_log", f"lead_id = %s AND (uniqueid = %s OR uniqueid LIKE %s{by_code})",
                [lead, uniqueid, same_second, *codes])
        out["vicidial_dial_log"] = self.rows("vicidial_dial_log", f"caller_code IN ({_marks(codes)})", codes) if codes else []
        for closer in out["vicidial_closer_log"]:
            if closer.get("uniqueid"):
                out["vicidial_did_log"] += self.rows("vicidial_did_log", "uniqueid = %s", [closer["uniqueid"]])
        keys = sorted({c["uniqueid"] for c in out["vicidial_log"] + out["vicidial_closer_log"] + out["vicidial_did_log"]
                       if c.get("uniqueid")})
        where: list[str] = []
        if codes:
            where.append(f"caller_code IN ({_marks(codes)})")
        if keys:
            where.append(f"uniqueid IN ({_marks(keys)})")
        out["call_log"] = self.rows("call_log", " OR ".join(where), [*codes, *keys]) if where else []

    def people_and_server(self) -> None:
        """The agent's state rows around the call, the agent (no password columns) and the server."""
        out, rec = self.out, self.rec
        lead, user = rec.get("lead_id"), rec.get("user")
        calls = out["vicidial_log"] + out["vicidial_closer_log"]
        anchor = next((c["call_date"] for c in calls if c.get("call_date")), rec.get("start_time"))
        out["vicidial_agent_log"] = self.rows(
            "vicidial_agent_log",
            "lead_id = %s AND user = %s AND event_time BETWEEN %s - INTERVAL 1 HOUR AND %s + INTERVAL 2 HOUR",
            [lead, user, anchor, anchor], order="event_time",
        ) if lead and user and anchor else []
        out["vicidial_users"] = self.rows("vicidial_users", "user = %s", [user], columns=_USER_COLUMNS) if user else []
        server_ip = rec.get("server_ip")
        out["servers"] = self.rows("servers", "server_ip = %s", [server_ip], columns=_SERVER_COLUMNS) if server_ip else []


def _call_context(session: ViciDialSession, recording_id: int) -> dict[str, list[dict[str, Any]]]:
    recordings = twin_rows(session.query, session.schema, "recording_log", "recording_id = %s", [recording_id],
                           limit=CONTEXT_LIMIT)
    if not recordings:
        raise CallNotFoundError(f"recording_id {recording_id} not found in ViciDial (recording_log and its archive)")
    out: dict[str, list[dict[str, Any]]] = {"recording_log": recordings}
    context = _Context(session, recordings[0], out)
    for table in ("recording_log_stereo", "routing_initiated_recordings"):
        out[table] = context.rows(table, "recording_id = %s", [recording_id])
    context.calls()
    context.dialing()
    context.people_and_server()
    return {key: _jsonable_rows(value) for key, value in out.items()}
