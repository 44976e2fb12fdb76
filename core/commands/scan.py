"""``callqa scan``: analyse every call of a source into the result store; ``callqa cleanup``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from core.commands.common import settings_from, store_url_from
from core.errors import ConfigError

VICIDIAL = "vicidial"


def _when(_ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from core.work import parse_when

    try:
        return parse_when(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param=param) from None


@click.command("scan")
@click.argument("source")
@click.option("--since", callback=_when, default=None, metavar="WHEN",
              help="Only calls at or after WHEN: 2026-11-07, '2026-11-07 08:00', today, yesterday, 12h, 7d.")
@click.option("--until", callback=_when, default=None, metavar="WHEN", help="Only calls before WHEN.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes (each loads the models once).")
@click.option("--limit", type=click.IntRange(min=0), default=None,
              help="Analyse at most N calls this run (cached calls do not count); the next run continues.")
@click.option("--no-quality", is_flag=True, help="Skip NISQA speech-quality scoring.")
@click.option("--campaign", default=None, help="SOURCE vicidial: only this campaign.")
@click.option("--ingroup", default=None, help="SOURCE vicidial: only this in-group.")
@click.option("--agent", default=None, help="SOURCE vicidial: only this agent (user).")
@click.option("--max-recordings", type=click.IntRange(1, 5000), default=5000, show_default=True,
              help="SOURCE vicidial: look at most this many recordings up per run.")
@click.option("--queue", "to_queue", is_flag=True,
              help="Enqueue the calls for `callqa worker` processes instead of analysing them here "
                   "(needs [queue] broker_url).")
@click.pass_context
def scan_cmd(ctx: click.Context, source: str, since, until, workers: int, limit: int | None,
             no_quality: bool, campaign: str | None, ingroup: str | None, agent: str | None,
             max_recordings: int, to_queue: bool) -> None:
    """Analyse every call of SOURCE into the result store, skipping calls already analysed.

    SOURCE is a folder of recordings, searched recursively and grouped into calls by ViciDial
    naming (NAME-in.wav + NAME-out.wav, NAME-all.mp3, ...), or `vicidial`: the recordings the
    ViciDial database lists for --since/--until (and --campaign/--ingroup/--agent), fetched as
    [recordings] allows and stored with their ViciDial metadata. A call is analysed again only when
    its recordings' bytes, the [analysis] thresholds, the analysis version or the quality model
    change. Scans are resumable: stop one (Ctrl-C, SIGTERM, even kill -9) and the next run goes
    on; a second SIGINT/SIGTERM aborts the calls in flight. Several scans may share one store.
    With --queue the same calls are enqueued for `callqa worker` processes (on any machine
    sharing the broker and the store) instead; calls stored or already queued are not sent.

    Exit status: 0 every call analysed; 3 some calls failed (listed at the end, stored with
    their reason; unchanged failures are not retried); 2 usage or configuration error; 130/143
    interrupted by SIGINT/SIGTERM.

    \b
    Examples:
      callqa scan /var/spool/asterisk/monitorDONE --since yesterday --workers 2
      callqa --store postgresql://callqa@db/callqa scan ../shared/corpus --no-quality
      callqa scan vicidial --since yesterday --campaign SALESOUT
      callqa scan vicidial --since 2026-11-01 --queue
    """
    from core.config import ScanSettings
    from core.progress import ProgressReporter
    from core.scan import run_scan, scan_folder

    settings = settings_from(ctx)
    if since is not None and until is not None and since >= until:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    if to_queue:
        from core.queue.settings import QueueSettings

        QueueSettings.from_settings(settings).require_broker("scan --queue")
        if workers != 1:
            raise click.BadParameter("--workers applies to in-process scans; with --queue start more "
                                     "`callqa worker` processes instead", param_hint="--workers")
    progress = ProgressReporter(label="scan", stream=sys.stderr,
                                interval_s=None if sys.stderr.isatty() else
                                ScanSettings.from_settings(settings).progress_interval_s)
    store_url = store_url_from(ctx, settings)
    if source == VICIDIAL:
        from core.fetch.service import vicidial_items

        items = vicidial_items(settings, since=since, until=until, campaign=campaign, ingroup=ingroup,
                               agent=agent, limit=max_recordings)
        if len(items) >= max_recordings:
            click.echo(f"note: the search returned {len(items)} recordings (--max-recordings); narrow "
                       "--since/--until or run again to continue", err=True)
        if to_queue:
            _enqueue(settings, items, store_url=store_url, limit=limit, quality=not no_quality, source="vicidial")
            return
        report = run_scan(settings, items, store_url=store_url, workers=workers, limit=limit,
                          quality=not no_quality, progress=progress, source="vicidial")
    else:
        if campaign or ingroup or agent:
            raise click.BadParameter("--campaign/--ingroup/--agent apply to SOURCE vicidial only",
                                     param_hint="--campaign")
        folder = Path(source)
        if not folder.is_dir():
            raise click.BadParameter(f"{source}: not a folder of recordings (or 'vicidial')", param_hint="SOURCE")
        if to_queue:
            from core.work import folder_items

            _enqueue(settings, folder_items(folder, since=since, until=until), store_url=store_url, limit=limit,
                     quality=not no_quality, source=str(folder))
            return
        report = scan_folder(settings, folder, store_url=store_url, workers=workers,
                             limit=limit, since=since, until=until, quality=not no_quality, progress=progress)
    _print_report(report)
    if report.interrupted_by is None:
        _check_alerts(settings, store_url)
    report.check()  # exit status 3 (failures) or 130/143 (interrupted), with a one-line error


def _check_alerts(settings, store_url: str) -> None:
    """The alert check after a scan ([alerts] check_after_scan): never fails the scan."""
    from core.alerts import check_after_work
    from core.errors import CallQAError
    from core.store.store import open_store

    def warn(line: str) -> None:
        click.echo(line, err=True)

    try:
        with open_store(store_url) as store:
            check_after_work(settings, store, warn=warn)
    except CallQAError as exc:
        warn(f"alerts: {exc}")


def _enqueue(settings, items, *, store_url: str, limit: int | None, quality: bool, source: str) -> None:
    """``scan --queue``: send the calls to the analysis queue and say what was skipped."""
    from core.queue.enqueue import Enqueuer

    with Enqueuer(settings, store_url=store_url, quality=quality) as enqueuer:
        report = enqueuer.run(items, limit=limit)
        queue = enqueuer.qs.analysis_queue
    click.echo(f"scan of {source}: {report.total} calls: {report.queued} enqueued on {queue}, {report.cached} "
               f"already analysed, {report.busy} already queued or in progress, {report.failed_before} failed before "
               f"(unchanged) in {report.elapsed_s:.1f} s")
    if report.limited:
        click.echo("stopped at --limit; run the scan again to enqueue more")


def _print_report(report) -> None:
    rate = f", {report.throughput:.1f} call-min/min" if report.analysed else ""
    click.echo(f"scan of {report.source}: {report.total} calls: {report.analysed} analysed, {report.cached} cached, "
               f"{len(report.failed)} failed in {report.elapsed_s:.1f} s{rate}")
    if report.limited:
        click.echo("stopped at --limit; run the scan again to continue")
    if report.busy:
        click.echo(f"{report.busy} calls are being analysed by another scanner")
    if report.interrupted_by is not None:
        click.echo("interrupted: the calls not yet analysed are analysed by the next scan")
    if report.failed:
        click.echo("Failed calls:")
        for f in report.failed:
            note = " (unchanged since it failed)" if f.previously else ""
            click.echo(f"  {f.call_id}: {f.reason}{note}")


@click.command("cleanup")
@click.option("--older-than-min", type=click.FloatRange(min=0), default=15.0, show_default=True,
              help="Remove temporary files and folders untouched for this many minutes.")
@click.pass_context
def cleanup_cmd(ctx: click.Context, older_than_min: float) -> None:
    """Remove leftover temporary files of killed runs (decoded or fetched audio).

    Folders of runs still in progress are kept. The temporary folder is [paths] tmp_dir
    ($CALLQA_TMP, default data/tmp).

    \b
    Example:
      callqa cleanup --older-than-min 60
    """
    from core.runtime import cleanup_tmp

    settings = settings_from(ctx)
    removed = cleanup_tmp(settings.tmp_dir, older_than_s=older_than_min * 60)
    for path in removed:
        click.echo(f"removed {path}")
    click.echo(f"{settings.tmp_dir}: {len(removed)} leftovers removed")


def register(cli: click.Group) -> None:
    cli.add_command(scan_cmd)
    cli.add_command(cleanup_cmd)
