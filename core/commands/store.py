"""``callqa migrate``, ``callqa calls`` and ``callqa show``: the result store from the command line."""

from __future__ import annotations

import math
from typing import Any

import click

from core.commands.common import echo_json, settings_from, store_url_from


def _open(ctx: click.Context):
    """The store for reading: read-only when its schema is current (works on a read-only filesystem)."""
    from core.store.store import open_reader

    settings = settings_from(ctx)
    return open_reader(store_url_from(ctx, settings))


@click.command("migrate")
@click.pass_context
def migrate_cmd(ctx: click.Context) -> None:
    """Create the result store or bring its schema up to date (idempotent).

    The store is --store, else $CALLQA_STORE, else [store] url, else data/callqa.db; a
    postgresql:// URL selects PostgreSQL. Scans and the dashboard also migrate at start.
    On PostgreSQL this also creates the role the chat's SQL runs as (callqa_sql_reader: SELECT
    on [claude] store_tables only) when the store user may create roles, and otherwise prints
    the statements for an administrator.

    \b
    Examples:
      callqa migrate
      callqa --store postgresql://callqa@db.example/callqa migrate
    """
    from core.llm.settings import ClaudeSettings
    from core.store.store import migrate_store

    settings = settings_from(ctx)
    role: list = []
    display, before, after = migrate_store(store_url_from(ctx, settings), role_status=role,
                                           sql_role_tables=ClaudeSettings.from_settings(settings).store_tables)
    if before == after:
        click.echo(f"{display}: schema is current ({after})")
    else:
        click.echo(f"{display}: migrated {before or 'empty store'} -> {after}")
    if role and display.startswith("postgresql"):
        click.echo(("" if role[0].ok else "warning: ") + role[0].message)


def _fmt(value: Any, spec: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


@click.command("calls")
@click.option("--json", "as_json", is_flag=True, help="Print the calls as one JSON array.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Show at most this many calls (newest first).")
@click.pass_context
def calls_cmd(ctx: click.Context, as_json: bool, limit: int) -> None:
    """List stored calls with their headline numbers, newest first.

    \b
    Examples:
      callqa calls
      callqa --store /var/lib/callqa/callqa.db calls --limit 200 --json
    """
    from core.store.queries import count_calls, list_calls

    store = _open(ctx)
    try:
        df = list_calls(store, limit=limit)
        total = count_calls(store)
    finally:
        store.close()
    from core.jsonable import call_records

    records = call_records(df)
    if as_json:
        echo_json(records)
        return
    if not records:
        click.echo("no calls stored yet (run `callqa scan FOLDER`)")
        return
    header = ("CALL", "TIME", "DUR", "LAYOUT", "AGENT", "CAMPAIGN", "MOS", "FINDINGS", "SEVERITY")
    rows = [(r["call_id"], (r["call_time"] or "-").replace("T", " ")[:19], _fmt(r["duration_s"], ".1f"),
             r["layout"], r["agent"] or "-", r["campaign"] or "-", _fmt(r["mos_min"], ".2f"),
             ",".join(r["finding_codes"]) or "-", r["worst_severity"] or "-") for r in records]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in (header, *rows):
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True)).rstrip())
    if total > len(records):
        click.echo(f"({len(records)} of {total} calls; --limit for more)")


@click.command("show")
@click.argument("call_id")
@click.option("--json", "as_json", is_flag=True, help="Print the stored analysis (the `callqa analyze --json` object).")
@click.pass_context
def show_cmd(ctx: click.Context, call_id: str, as_json: bool) -> None:
    """Print one stored analysis, as `callqa analyze` printed it.

    \b
    Examples:
      callqa show 20261107-080000_9828963560
      callqa show 20261107-080000_9828963560 --json
    """
    from core.commands.analyze import echo_analysis

    store = _open(ctx)
    try:
        doc = store.get_analysis(call_id)
    finally:
        store.close()
    echo_analysis(doc, as_json=as_json)


def register(cli: click.Group) -> None:
    cli.add_command(migrate_cmd)
    cli.add_command(calls_cmd)
    cli.add_command(show_cmd)
