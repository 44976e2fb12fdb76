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
@click.option("--no-scan", is_flag=True, help="Only generate the recordings; do not analyse them.")
@click.option("--no-quality", is_flag=True, help="Scan without NISQA speech-quality scoring.")
@click.pass_context
def build(ctx: click.Context, dest: Path | None, force: bool, no_scan: bool, no_quality: bool) -> None:
    """Generate the demo calls and analyse them into the demo store (what `make run` opens on).

    The calls are espeak-ng speech through a telephone chain, one impairment each, with
    ViciDial-like metadata. The store is DATA_DIR/demo/callqa.db unless --store is given. Does
    nothing when the recordings are current and already analysed.

    \b
    Example:
      callqa demo build --dest /tmp/demo
    """
    import sys

    from core.demo import build_demo, demo_store_url  # scipy and friends load only when the command runs
    from core.progress import ProgressReporter

    settings = settings_from(ctx)
    store = (ctx.find_root().obj or {}).get("store_url") or demo_store_url(settings)
    progress = ProgressReporter(label="demo scan", stream=sys.stderr,
                                interval_s=None if sys.stderr.isatty() else 5.0)
    result = build_demo(settings, force=force, recordings_dir=dest, scan=not no_scan, quality=not no_quality,
                        store_url=store, progress=progress)
    _report(result)
    if not no_scan:
        click.echo(f"demo store: {store}")


def _report(result: DemoSet) -> None:
    if not result.generated:
        click.echo(f"demo recordings up to date in {result.root} ({len(result.calls)} calls)")
        return
    click.echo(f"generated {len(result.calls)} demo calls in {result.root}")
    for call in result.calls:
        click.echo(f"  {call.call_id}  {call.impairment:<12} {call.layout:<10} {call.duration_s:5.1f} s")
    click.echo(f"manifest: {result.manifest_path}")
