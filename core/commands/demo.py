"""``callqa demo``: the local demo that ``make run`` opens on."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from core.commands.common import settings_from

if TYPE_CHECKING:
    from core.demo import DemoSet


def register(cli: click.Group) -> None:
    """Add the ``demo`` group to the ``callqa`` command line."""
    cli.add_command(demo)


@click.group()
def demo() -> None:
    """Demo data for a fresh machine (no ViciDial, no recordings needed)."""


@demo.command("build")
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the demo recordings (default: DATA_DIR/demo/recordings).")
@click.option("--force", is_flag=True, help="Regenerate even when the recordings are up to date.")
@click.pass_context
def build(ctx: click.Context, dest: Path | None, force: bool) -> None:
    """Generate the demo calls (espeak-ng speech through a telephone chain, one impairment each).

    Does nothing when the folder already holds a complete, current demo set.

    \b
    Example:
      callqa demo build --dest /tmp/demo
    """
    from core.demo import build_demo  # scipy and friends load only when the command runs

    result = build_demo(settings_from(ctx), force=force, recordings_dir=dest)
    _report(result)


def _report(result: DemoSet) -> None:
    if not result.generated:
        click.echo(f"demo recordings up to date in {result.root} ({len(result.calls)} calls)")
        return
    click.echo(f"generated {len(result.calls)} demo calls in {result.root}")
    for call in result.calls:
        click.echo(f"  {call.call_id}  {call.impairment:<12} {call.layout:<10} {call.duration_s:5.1f} s")
    click.echo(f"manifest: {result.manifest_path}")
