"""``callqa users``, ``callqa audit`` and ``callqa retention``: accounts, the audit log, deleting old data.

The command line is the local operator's tool: it is trusted as an admin, and what it changes is
recorded in the audit log as ``cli:<os user>``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from core.commands.common import echo_json, settings_from, store_url_from


def _store(ctx: click.Context):
    from core.store.store import open_store

    settings = settings_from(ctx)
    return settings, open_store(store_url_from(ctx, settings))


def _audit(store, action: str, *, target: str | None = None, detail=None) -> None:
    from core.audit import cli_identity, record

    record(store, cli_identity(), action, source="cli", target=target, detail=detail)


def _read_password(from_stdin: bool, *, confirm: bool = True) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=confirm)


def _utc(value: datetime | None) -> datetime | None:
    """A local wall-clock time (as --since reads) in UTC without a zone (as audit times are stored)."""
    return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None


def _when(_ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from core.errors import ConfigError
    from core.work import parse_when

    try:
        return parse_when(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from None


# --- users ---------------------------------------------------------------------------------------
@click.group("users")
def users_group() -> None:
    """Built-in dashboard accounts (used when no reverse proxy signs people in).

    Once an account exists the dashboard asks everyone to sign in ([access] mode = "auto").
    Roles: viewer, analyst, admin (README, "Privacy and access").
    """


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["viewer", "analyst", "admin"]), required=True, help="The account's role.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (scripts).")
@click.pass_context
def users_add_cmd(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Create the account NAME with a role; asks for the password (at least 10 characters).

    \b
    Examples:
      callqa users add alice --role admin
      printf '%s\\n' "$PASSWORD" | callqa users add qa-screen --role viewer --password-stdin
    """
    from core.access.accounts import add_user, check_name

    check_name(name)
    password = _read_password(password_stdin)
    _, store = _store(ctx)
    try:
        add_user(store, name, role=role, password=password)
        _audit(store, "user.add", target=name, detail=f"role {role}")
    finally:
        store.close()
    click.echo(f"added {name} ({role})")


@users_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the accounts as one JSON array.")
@click.pass_context
def users_list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the accounts: name, role, last sign-in, open sessions.

    \b
    Examples:
      callqa users list --json
    """
    from core.access.accounts import list_users

    _, store = _store(ctx)
    try:
        rows = list_users(store)
    finally:
        store.close()
    if as_json:
        echo_json([{**r, "created_at": _iso(r["created_at"]), "last_login_at": _iso(r["last_login_at"])}
                   for r in rows])
        return
    if not rows:
        click.echo("no accounts (the dashboard is open to everyone who reaches it; add one with `callqa users add`)")
        return
    click.echo(f"{'USER':24} {'ROLE':8} {'SESSIONS':>8}  LAST SIGN-IN (UTC)")
    for r in rows:
        last = r["last_login_at"].isoformat(sep=" ", timespec="minutes") if r["last_login_at"] else "never"
        click.echo(f"{r['name']:24} {r['role']:8} {r['sessions']:8d}  {last}")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


@users_group.command("remove")
@click.argument("name")
@click.pass_context
def users_remove_cmd(ctx: click.Context, name: str) -> None:
    """Delete the account NAME and end its sessions.

    \b
    Examples:
      callqa users remove alice
    """
    from core.access.accounts import remove_user

    _, store = _store(ctx)
    try:
        remove_user(store, name)
        _audit(store, "user.remove", target=name)
    finally:
        store.close()
    click.echo(f"removed {name}")


@users_group.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the new password from the first line of stdin.")
@click.pass_context
def users_passwd_cmd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (its open sessions end).

    \b
    Examples:
      callqa users passwd alice
    """
    from core.access.accounts import set_password

    password = _read_password(password_stdin)
    _, store = _store(ctx)
    try:
        set_password(store, name, password)
        _audit(store, "user.passwd", target=name)
    finally:
        store.close()
    click.echo(f"password of {name} changed; its sessions ended")


@users_group.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["viewer", "analyst", "admin"]))
@click.pass_context
def users_role_cmd(ctx: click.Context, name: str, role: str) -> None:
    """Give NAME another role (its open sessions end).

    \b
    Examples:
      callqa users role bob analyst
    """
    from core.access.accounts import set_role

    _, store = _store(ctx)
    try:
        set_role(store, name, role)
        _audit(store, "user.role", target=name, detail=f"role {role}")
    finally:
        store.close()
    click.echo(f"{name} is now {role}; its sessions ended")


# --- audit ---------------------------------------------------------------------------------------
@click.command("audit")
@click.option("--since", callback=_when, default=None, metavar="WHEN",
              help="Entries from WHEN (local time): 2026-11-07, '2026-11-07 08:00', today, 12h, 7d.")
@click.option("--until", callback=_when, default=None, metavar="WHEN", help="Entries before WHEN.")
@click.option("--user", "actor", default=None, help="Only this actor (a user, api:<key>, cli:<os user>).")
@click.option("--action", default=None, help="Only this action, or a prefix ending in '.' (audio. for plays and downloads).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=200, show_default=True, help="Newest entries first.")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as one JSON array.")
@click.option("--verify", is_flag=True, help="Check the hash chain of the whole log instead (exit 1 when broken).")
@click.pass_context
def audit_cmd(ctx: click.Context, since, until, actor: str | None, action: str | None, limit: int, as_json: bool,
              verify: bool) -> None:
    """Show the audit log: who played, downloaded, asked or changed what, when, from where.

    Times are UTC. Entries can only be appended; --verify recomputes the hash chain that
    seals each entry to the one before it.

    \b
    Examples:
      callqa audit --since 7d --user alice
      callqa audit --action audio. --json
      callqa audit --verify
    """
    from core.audit import entries
    from core.audit import verify as verify_chain
    from core.errors import StoreError
    from core.store.store import open_reader

    settings = settings_from(ctx)
    store = open_reader(store_url_from(ctx, settings))
    try:
        if verify:
            check = verify_chain(store)
            if as_json:
                echo_json({"ok": check.ok, "checked": check.checked, "broken_at": check.broken_at,
                           "reason": check.reason})
            elif check.ok:
                click.echo(f"audit log intact: {check.checked} entries checked")
            if not check.ok:
                raise StoreError(f"audit log broken at entry {check.broken_at}: {check.reason}")
            return
        rows = entries(store, since=_utc(since), until=_utc(until), actor=actor, action=action, limit=limit)
    finally:
        store.close()
    if as_json:
        echo_json([{k: (_iso(v) if isinstance(v, datetime) else v) for k, v in r.items()
                    if k not in ("prev_hash",)} for r in rows])
        return
    if not rows:
        click.echo("no audit entries match")
        return
    for r in reversed(rows):
        where = f" from {r['remote']}" if r["remote"] else ""
        target = f" {r['target']}" if r["target"] else ""
        detail = " ".join(str(r["detail"]).split()) if r["detail"] else ""
        click.echo(f"{r['at'].isoformat(sep=' ', timespec='seconds')}  {r['actor']} ({r['role'] or '-'}, "
                   f"{r['source']}{where})  {r['action']}{target}" + (f"  {detail[:160]}" if detail else ""))


# --- retention -----------------------------------------------------------------------------------
@click.group("retention")
def retention_group() -> None:
    """Delete what is older than [retention] allows (analyses, summaries, chat, audio cache, audit)."""


@retention_group.command("apply")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def retention_apply_cmd(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Delete everything older than [retention] allows, in batches, and report the counts.

    Calls are judged by their call time, summaries, chat and audit entries by when they were
    written, cached recordings by their last use. Run daily by callqa-retention.timer.

    \b
    Examples:
      callqa retention apply --dry-run
      callqa retention apply --json
    """
    from core.retention import RetentionSettings, apply_retention

    settings = settings_from(ctx)
    retention = RetentionSettings.from_settings(settings)
    _, store = _store(ctx)
    try:
        report = apply_retention(store, settings, retention=retention, dry_run=dry_run)
        if not dry_run:
            _audit(store, "retention.apply", detail={**report.deleted, "cache_bytes": report.cache_bytes})
    finally:
        store.close()
    if as_json:
        echo_json(report.as_dict())
        return
    verb = "would delete" if dry_run else "deleted"
    parts = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in report.deleted.items()) or "nothing (keep forever)"
    click.echo(f"{verb}: {parts}" + (f" ({report.cache_bytes / 1e6:.1f} MB of audio)" if report.cache_bytes else ""))
    for kind, cutoff in report.cutoffs.items():
        click.echo(f"  {kind}: older than {cutoff}")


def register(cli: click.Group) -> None:
    cli.add_command(users_group)
    cli.add_command(audit_cmd)
    cli.add_command(retention_group)
