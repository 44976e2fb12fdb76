"""``callqa voices``: agent voiceprints that tell the agent's side of a mixed recording."""

from __future__ import annotations

from pathlib import Path

import click

from core.commands.common import echo_json, settings_from, store_url_from


def _store(ctx: click.Context):
    from core.store.store import open_store

    settings = settings_from(ctx)
    return settings, open_store(store_url_from(ctx, settings))


def _audit(store, action: str, *, target: str, detail: str | None = None) -> None:
    """Voiceprints are biometric data: every change is in the audit log (as the local operator)."""
    from core.audit import cli_identity, record

    record(store, cli_identity(), action, source="cli", target=target, detail=detail)


def voice_context_for(ctx: click.Context, agent: str | None):
    """The voices an ``analyze`` of a mixed call uses: ``--agent``'s voiceprint (required when
    given) and every enrolled one, from the store when it exists (an absent SQLite store is
    not created just for this)."""
    from core.store.store import open_store
    from core.voices import voice_context

    settings = settings_from(ctx)
    url = store_url_from(ctx, settings)
    local = not url.startswith(("postgresql:", "postgres:"))
    path = Path(url.removeprefix("sqlite:///")) if local else None
    if path is not None and not path.exists():
        return voice_context(None, agent, require=agent is not None)
    store = open_store(url)
    try:
        return voice_context(store, agent, require=agent is not None)
    finally:
        store.close()


@click.group("voices")
def voices_group() -> None:
    """Agent voiceprints: which side of a mixed recording is the agent.

    A voiceprint is enrolled from recordings that hold only that agent; channel and stereo
    calls analysed with a known ViciDial user refresh it automatically.
    """


@voices_group.command("enroll")
@click.argument("user")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the stored voiceprint's summary as JSON.")
@click.pass_context
def enroll_cmd(ctx: click.Context, user: str, files: tuple[str, ...], as_json: bool) -> None:
    """Set USER's voiceprint from FILES that hold only that agent's voice.

    USER is the ViciDial user id (vicidial_users.user). Use -out legs of channel recordings
    or stereo recordings (the agent channel, [analysis] stereo_left); at least 3 s of speech
    each. An existing voiceprint is replaced.

    \b
    Examples:
      callqa voices enroll 6001 20261107-080000_9828963560-out.wav 20261108-093000_5550123456-out.wav
    """
    from core.voices import enroll

    settings, store = _store(ctx)
    try:
        info = enroll(store, user, list(files), cfg=settings.analysis)
        _audit(store, "voiceprint.enroll", target=user, detail=f"{info.speech_s:.1f} s from {len(files)} recording(s)")
    finally:
        store.close()
    if as_json:
        echo_json(info.as_dict())
    else:
        click.echo(f"enrolled {info.user}: {info.speech_s:.1f} s of speech from {len(files)} recording(s)")


@voices_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the voiceprints as one JSON array.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the stored voiceprints (user, speech behind them, origin, last update).

    \b
    Examples:
      callqa voices list --json
    """
    from core.voices import list_all

    _, store = _store(ctx)
    try:
        prints = list_all(store)
    finally:
        store.close()
    if as_json:
        echo_json([p.as_dict() for p in prints])
        return
    if not prints:
        click.echo("no voiceprints yet (enroll with `callqa voices enroll USER FILE...`)")
        return
    click.echo(f"{'USER':20} {'SPEECH':>8} {'RECS':>5}  {'ORIGIN':9} UPDATED")
    for p in prints:
        click.echo(f"{p.user:20} {p.speech_s:7.0f}s {p.recordings:5d}  {p.origin:9} "
                   f"{p.updated_at.isoformat(sep=' ', timespec='minutes')}")


@voices_group.command("remove")
@click.argument("user")
@click.pass_context
def remove_cmd(ctx: click.Context, user: str) -> None:
    """Delete USER's voiceprint (mixed calls of that agent are attributed again when re-analysed).

    \b
    Examples:
      callqa voices remove 6001
    """
    from core.errors import CallNotFoundError
    from core.voices import check_user, remove

    _, store = _store(ctx)
    try:
        if not remove(store, check_user(user)):
            raise CallNotFoundError(f"no voiceprint for agent {user!r}")
        _audit(store, "voiceprint.remove", target=user)
    finally:
        store.close()
    click.echo(f"removed the voiceprint of {user}")


def register(cli: click.Group) -> None:
    cli.add_command(voices_group)
