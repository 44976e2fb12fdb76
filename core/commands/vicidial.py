"""``callqa lookup``: find ViciDial recordings by time, phone, agent, campaign, in-group or ids."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from core.commands.common import echo_json, settings_from
from core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

# the same bounds as core.vicidial.lookup (kept here so `callqa --help` loads no database driver)
DEFAULT_LIMIT = 100
MAX_LIMIT = 5000

_DATE_FORMATS = ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
# (column, header, width) of the readable table
_TABLE = (
    ("recording_id", "RECORDING", 10),
    ("call_date", "CALL TIME", 19),
    ("direction", "DIR", 8),
    ("phone_number", "PHONE", 12),
    ("user", "AGENT", 8),
    ("full_name", "NAME", 18),
    ("queue", "CAMPAIGN/INGROUP", 16),
    ("status", "STATUS", 6),
    ("length_in_sec", "REC S", 6),
    ("carrier", "CARRIER", 14),
    ("filename", "FILENAME", 40),
)


def parse_when(text: str, *, end: bool) -> datetime:
    """Parse ``YYYY-MM-DD`` or ``YYYY-MM-DD HH:MM[:SS]`` into a bound for the search.

    ``end=True`` makes the bound inclusive of what was written: a date covers that whole
    day, a time covers that whole second (the search uses ``call_date < until``).
    """
    value = text.strip()
    for fmt in _DATE_FORMATS:
        try:
            moment = datetime.strptime(value, fmt)
        except ValueError:
            continue
        if not end:
            return moment
        return moment + (timedelta(days=1) if fmt == "%Y-%m-%d" else timedelta(seconds=1))
    raise click.BadParameter(f"{text!r} is not YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]'")


def _start(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    return parse_when(value, end=False) if value else None


def _end(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    return parse_when(value, end=True) if value else None


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "queue":
        value = row.get("campaign_id") or row.get("ingroup")
    elif column == "carrier":
        parts = [str(row[k]) for k in ("hangup_cause", "sip_hangup_cause") if row.get(k) is not None]
        value = "/".join(parts) + (f" {row['dialstatus']}" if row.get("dialstatus") else "")
    else:
        value = row.get(column)
    return "" if value is None else str(value)


def format_table(frame: pd.DataFrame) -> str:
    """A fixed-width table of a search result (long cells are cut with '~')."""
    from core.vicidial import to_records

    lines = ["  ".join(header.ljust(width) for _, header, width in _TABLE).rstrip()]
    for row in to_records(frame):
        cells = []
        for column, _, width in _TABLE:
            text = " ".join(_cell(row, column).split())
            cells.append((text if len(text) <= width else text[: width - 1] + "~").ljust(width))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


@click.command("lookup")
@click.option("--since", callback=_start, help="Calls from this time on: YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]' (dialer time).")
@click.option("--until", callback=_end, help="Calls up to this day or time, inclusive (same formats).")
@click.option("--phone", help="Customer number in any format (+1 312-555-1212, 3125551212...).")
@click.option("--agent", help="ViciDial user id of the agent on the recording.")
@click.option("--campaign", help="Outbound campaign id (e.g. SALESOUT).")
@click.option("--ingroup", help="Inbound group id (e.g. SUPPORT_IN).")
@click.option("--lead-id", type=click.IntRange(min=0), help="ViciDial lead_id.")
@click.option("--recording-id", type=click.IntRange(min=0), help="recording_log.recording_id.")
@click.option("--uniqueid", help="Asterisk uniqueid of the call.")
@click.option("--status", help="Call disposition (SALE, NA, DROP...).")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=DEFAULT_LIMIT, show_default=True,
              help=f"Maximum rows (1-{MAX_LIMIT}).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rows instead of a table.")
@click.pass_context
def lookup(ctx: click.Context, since: datetime | None, until: datetime | None, phone: str | None, agent: str | None,
           campaign: str | None, ingroup: str | None, lead_id: int | None, recording_id: int | None,
           uniqueid: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """Find ViciDial recordings (read-only), newest call first, one row per recording.

    Searches outbound (vicidial_log) and inbound (vicidial_closer_log) calls with their
    recordings, agent, campaign/in-group names and carrier result, live and archive tables.
    Needs [vicidial] in callqa.toml or CALLQA_VICIDIAL_HOST/_USER/_PASSWORD/_DATABASE.

    \b
    Examples:
      callqa lookup --since 2025-08-29 --campaign SALESOUT
      callqa lookup --phone "+1 312-555-1212" --json
      callqa lookup --recording-id 9123456 --json
    """
    from core.vicidial import LookupFilters, ViciDialSettings, search_recordings, to_records

    settings = ViciDialSettings.from_settings(settings_from(ctx))
    if not settings.configured:
        raise ConfigError(
            "ViciDial is not configured: set [vicidial] host in callqa.toml (see callqa.toml.example) "
            "or CALLQA_VICIDIAL_HOST"
        )
    filters = LookupFilters(
        since=since, until=until, phone=phone, agent=agent, campaign=campaign, ingroup=ingroup, lead_id=lead_id,
        recording_id=recording_id, uniqueid=uniqueid, status=status,
    )
    frame = search_recordings(settings, filters, limit=limit)
    if as_json:
        echo_json(to_records(frame))
        return
    if frame.empty:
        click.echo("no recordings found")
        return
    click.echo(format_table(frame))
    more = " (limit reached: narrow the search or raise --limit)" if len(frame) == limit else ""
    click.echo(f"{len(frame)} recording{'s' if len(frame) != 1 else ''}{more}")


def register(cli: click.Group) -> None:
    """Add ``lookup`` to the ``callqa`` group."""
    cli.add_command(lookup)
