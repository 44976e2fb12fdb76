"""``callqa demo``: the local demo that ``make run`` opens on."""

from __future__ import annotations

from collections import Counter
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
@click.option("--force", is_flag=True, help="Regenerate even when the recordings are from today.")
@click.option("--no-scan", is_flag=True, help="Only generate the recordings; do not analyse them.")
@click.option("--no-quality", is_flag=True, help="Scan without NISQA speech-quality scoring.")
@click.pass_context
def build(ctx: click.Context, dest: Path | None, force: bool, no_scan: bool, no_quality: bool) -> None:
    """Generate the demo month and analyse it into the demo store (what `make run` opens on).

    About 160 calls of a small ViciDial contact centre over the 30 days ending today (8 agents,
    3 campaigns and an in-group, 3 carriers, 2 dialers, every recording layout), voiced with real
    recorded speech (espeak-ng when the demo speech folder is missing), with planted stories to
    find in Fleet trends and the Overview (listed in demo_manifest.json). The store is
    DATA_DIR/demo/callqa.db unless --store is given. Does nothing when the demo is from today
    and already analysed; a demo from an earlier day is rebuilt.

    \b
    Example:
      callqa demo build --dest /tmp/demo
    """
    import sys

    from core.demo import build_demo, demo_store_url  # scipy and friends load only when the command runs
    from core.progress import ProgressReporter

    settings = settings_from(ctx)
    store = (ctx.find_root().obj or {}).get("store_url") or demo_store_url(settings)
    interval = None if sys.stderr.isatty() else 5.0
    progress = ProgressReporter(label="demo scan", stream=sys.stderr, interval_s=interval)
    building = ProgressReporter(label="demo calls", stream=sys.stderr, interval_s=interval)
    result = build_demo(settings, force=force, recordings_dir=dest, scan=not no_scan, quality=not no_quality,
                        store_url=store, progress=progress, build_progress=building)
    _report(result)
    if not no_scan:
        click.echo(f"demo store: {store}")


def _report(result: DemoSet) -> None:
    from core.demo import STORIES

    days = f"30 days to {result.reference_date}"
    if not result.generated:
        click.echo(f"demo recordings up to date in {result.root} ({len(result.calls)} calls, {days})")
        return
    speech = "real recorded speech" if result.speech_source == "recorded" else "espeak-ng speech (no demo speech folder)"
    click.echo(f"generated {len(result.calls)} demo calls ({days}, {speech}) in {result.root}")
    layouts = Counter(c.layout for c in result.calls)
    click.echo("  layouts: " + ", ".join(f"{n} {layout}" for layout, n in sorted(layouts.items())))
    for story, meta in STORIES.items():
        click.echo(f"  story {story} ({sum(story in c.stories for c in result.calls)} calls): {meta['title']}")
    click.echo(f"manifest: {result.manifest_path}")
