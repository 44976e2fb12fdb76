"""``callqa worker``, ``callqa watch``, ``callqa queue-status`` and ``callqa requeue-dead``: the task queue."""

from __future__ import annotations

import logging
import os
from typing import Any

import click

from core.commands.common import echo_json, settings_from, store_url_from
from core.errors import ConfigError, ModelUnavailableError

LOGLEVELS = ("debug", "info", "warning", "error")


@click.command("worker")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: [queue] concurrency; 0 there means one per CPU core).")
@click.option("--queues", "-Q", default=None, metavar="NAMES",
              help="Comma-separated queues to consume (default: the analysis and the summary queue).")
@click.option("--no-quality", is_flag=True, help="Do not preload NISQA (tasks that ask for quality still load it).")
@click.option("--loglevel", "-l", type=click.Choice(LOGLEVELS), default="info", show_default=True)
@click.option("--hostname", "-n", default=None, help="Worker node name (default callqa-<pid>@<host>).")
@click.pass_context
def worker_cmd(ctx: click.Context, concurrency: int | None, queues: str | None, no_quality: bool, loglevel: str,
               hostname: str | None) -> None:
    """Run a Celery worker that analyses queued calls into the result store.

    Each worker process loads the VAD (and NISQA) once, then takes one call at a time from the
    broker ([queue] broker_url / CALLQA_BROKER_URL): it fetches the recording, skips it when
    the store already holds that analysis, analyses and stores it. A worker killed at any
    moment loses nothing (its calls are delivered again) and duplicates nothing. Fetch
    failures are retried with backoff, then recorded as dead letters (callqa queue-status).
    Use the shared PostgreSQL store (--store / CALLQA_STORE) when several machines run workers.

    \b
    Examples:
      callqa --store postgresql://callqa@db/callqa worker --concurrency 2
      callqa worker --queues callqa-summaries --concurrency 1
    """
    from celery.utils.nodenames import host_format

    from core.queue.app import create_app
    from core.queue.settings import QueueSettings
    from core.queue.tasks import WorkerConfig, configure_worker
    from core.runtime import cleanup_tmp
    from core.store.store import open_store

    settings = settings_from(ctx)
    qs = QueueSettings.from_settings(settings).require_broker("callqa worker")
    store_url = store_url_from(ctx, settings)
    open_store(store_url).close()  # migrate once, here, before the pool forks
    names = [q.strip() for q in (queues or f"{qs.analysis_queue},{qs.summary_queue}").split(",") if q.strip()]
    unknown = sorted(set(names) - {qs.analysis_queue, qs.summary_queue})
    if unknown or not names:
        raise click.BadParameter(f"consume {qs.analysis_queue} and/or {qs.summary_queue} (got {', '.join(unknown)})",
                                 param_hint="--queues")
    processes = concurrency or qs.worker_concurrency()
    load_models = qs.analysis_queue in names
    quality = qs.quality and not no_quality
    if load_models and quality:
        _check_weights(settings)
    cleanup_tmp(settings.tmp_dir)  # temporary files of worker processes killed earlier
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per download is noise in a worker log
    configure_worker(WorkerConfig(settings=settings, store_url=store_url, queue=qs, load_models=load_models,
                                  quality=quality, threads=max(1, (os.cpu_count() or 1) // processes)))
    app = create_app(qs)
    worker = app.Worker(concurrency=processes, queues=names, loglevel=loglevel.upper(), pool="prefork",
                        hostname=host_format(hostname or f"callqa-{os.getpid()}@%h"), without_gossip=True,
                        without_mingle=True, without_heartbeat=True, quiet=False)
    worker.start()
    ctx.exit(worker.exitcode or 0)


def _check_weights(settings) -> None:
    """Fail before forking when the NISQA weights are missing (reading the file, without torch)."""
    from core.quality.manager import weights_path

    path = weights_path(settings)
    if not path.is_file():
        raise ModelUnavailableError(f"NISQA weights not found at {path}: install them (python -m "
                                    "core.quality.manager install) or start the worker with --no-quality")


@click.command("watch")
@click.option("--once", is_flag=True, help="Poll once and exit (for a timer or a test).")
@click.option("--from-id", type=click.IntRange(min=0), default=None, metavar="RECORDING_ID",
              help="Start after this recording_id when no watermark is stored (default: the newest recording now).")
@click.option("--reset", is_flag=True, help="With --from-id: replace the stored watermark.")
@click.option("--no-quality", is_flag=True, help="Skip NISQA speech-quality scoring of the new calls.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Without a broker: worker processes of the in-process analysis.")
@click.pass_context
def watch_cmd(ctx: click.Context, once: bool, from_id: int | None, reset: bool, no_quality: bool,
              workers: int) -> None:
    """Follow ViciDial's recording_log and analyse every new recording.

    Polls for recordings after the stored recording_id watermark every [queue]
    watch_interval_s, enqueues them (or, with no broker configured, analyses them in this
    process) and only then advances the watermark, so a watcher stopped at any moment resumes
    without skipping a call. Recordings the dialer has not processed yet are waited for
    ([queue] watch_grace_s). SIGTERM/SIGINT stop it after the batch in hand.

    \b
    Examples:
      callqa watch                         # runs until stopped (systemd: callqa-watch.service)
      callqa watch --once --from-id 0      # first run: everything in recording_log
    """
    from core.queue.settings import QueueSettings
    from core.queue.watch import WATERMARK, Watcher, local_sink, queue_sink
    from core.store.store import open_store

    if reset and from_id is None:
        raise click.BadParameter("--reset needs --from-id", param_hint="--reset")
    settings = settings_from(ctx)
    qs = QueueSettings.from_settings(settings)
    store_url = store_url_from(ctx, settings)
    quality = qs.quality and not no_quality
    with open_store(store_url) as store:
        if reset:
            store.set_watermark(WATERMARK, str(from_id))
        enqueuer = None
        if qs.enabled:
            from core.queue.enqueue import Enqueuer

            enqueuer = Enqueuer(settings, store=store, quality=quality)
            sink = queue_sink(enqueuer)
            click.echo(f"watching ViciDial: new recordings go to {qs.analysis_queue} on {qs.display_broker}", err=True)
        else:
            sink = local_sink(settings, store_url=store_url, quality=quality, workers=workers)
            click.echo("watching ViciDial: no [queue] broker_url, new recordings are analysed in this process",
                       err=True)
        watcher = Watcher(settings, store, sink, start_id=from_id)
        with watcher.stopping_on_signals():
            watcher.run(once=once, report=lambda line: click.echo(line), after_poll=_alert_hook(settings, store))
        click.echo(f"watermark: recording_id {store.get_watermark(WATERMARK)}")
        if enqueuer is not None:
            enqueuer.close()


def _alert_hook(settings, store, *, every_s: float = 300.0):
    """The alert check after a poll that found recordings, and at least every ``every_s`` otherwise
    (windows move on and retries fall due without new calls); a failure is one warning line."""
    import time

    from core.alerts import check_after_work

    last = [float("-inf")]

    def hook(poll) -> None:
        if poll.found or time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            check_after_work(settings, store, warn=lambda line: click.echo(line, err=True))

    return hook


@click.command("queue-status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.option("--dead", type=click.IntRange(min=0), default=10, show_default=True,
              help="Show this many of the newest dead letters.")
@click.pass_context
def queue_status_cmd(ctx: click.Context, as_json: bool, dead: int) -> None:
    """Show the broker, queue depths, throughput of the last 5 minutes and dead letters.

    \b
    Example:
      callqa queue-status --dead 20
    """
    from core.queue.metrics import broker_stats, store_stats
    from core.queue.settings import QueueSettings
    from core.queue.watch import WATERMARK
    from core.store.store import open_store

    settings = settings_from(ctx)
    qs = QueueSettings.from_settings(settings)
    broker = broker_stats(qs) if qs.enabled else None
    with open_store(store_url_from(ctx, settings)) as store:
        stats = store_stats(store, window_s=300.0)
        letters = store.dead_letters(limit=dead) if dead else []
        watermark = store.get_watermark(WATERMARK)
    doc: dict[str, Any] = {
        "broker": qs.display_broker,
        "broker_up": broker.up if broker else None,
        "broker_error": broker.error if broker else "",
        "queues": broker.depths if broker else {},
        "unacked": broker.unacked if broker else None,
        "last_5_min": {k: round(v, 3) for k, v in stats.items() if k != "dead_letters"},
        "dead_letters": int(stats["dead_letters"]),
        "newest_dead_letters": [{k: v for k, v in d.items() if k != "payload"} for d in letters],
        "watch_watermark": int(watermark) if watermark is not None else None,
    }
    if as_json:
        echo_json(doc)
        return
    if broker is None:
        click.echo("broker: none ([queue] broker_url not set: scans run in-process)")
    else:
        click.echo(f"broker: {doc['broker']} ({'up' if broker.up else 'DOWN: ' + broker.error})")
        for name, depth in broker.depths.items():
            click.echo(f"  {name}: {depth} waiting")
        if broker.unacked is not None:
            click.echo(f"  unacknowledged: {broker.unacked} (in flight, or awaiting redelivery)")
    m = doc["last_5_min"]
    click.echo(f"last 5 min: {m['analyses_per_minute']:.1f} calls/min, {m['audio_minutes_per_minute']:.1f} "
               f"call-min/min, {m['failures_per_minute']:.1f} failed/min")
    click.echo(f"watcher watermark: {doc['watch_watermark'] if watermark is not None else 'none'}")
    click.echo(f"dead letters: {doc['dead_letters']}")
    for d in letters:
        click.echo(f"  #{d['id']} {d['created_at']:%Y-%m-%d %H:%M:%S} {d['call_id']} ({d['task']}, "
                   f"{d['attempts']} attempts): {d['reason']}")


@click.command("requeue-dead")
@click.argument("call_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Requeue every dead letter.")
@click.pass_context
def requeue_dead_cmd(ctx: click.Context, call_ids: tuple[str, ...], everything: bool) -> None:
    """Enqueue dead-lettered calls again (after fixing what made them fail), removing their records.

    \b
    Examples:
      callqa requeue-dead 20261107-080000_9828963560
      callqa requeue-dead --all
    """
    from core.queue.app import SUMMARY_TASK
    from core.queue.enqueue import Enqueuer
    from core.queue.tasks import item_from_payload

    if not call_ids and not everything:
        raise click.UsageError("give CALL_IDs or --all")
    settings = settings_from(ctx)
    store_url = store_url_from(ctx, settings)
    with Enqueuer(settings, store_url=store_url) as enqueuer:
        store = enqueuer.store
        letters = store.dead_letters(limit=None)
        if call_ids:
            letters = [d for d in letters if d["call_id"] in set(call_ids)]
        sent = 0
        for d in letters:
            payload = d["payload"]
            if d["task"] == "summarize_call":
                enqueuer.app.send_task(SUMMARY_TASK, args=[d["call_id"]], queue=enqueuer.qs.summary_queue)
                outcome = "queued"
            else:
                outcome = enqueuer.add(item_from_payload(payload.get("item")), quality=bool(payload.get("quality", True)),
                                       summarize=bool(payload.get("summarize", False)))
            store.delete_dead_letter(d["id"])
            sent += outcome == "queued"
            click.echo(f"{d['call_id']}: {outcome.replace('_', ' ')}")
    click.echo(f"{sent} of {len(letters)} dead letters enqueued again")
    if call_ids and not letters:
        raise ConfigError(f"no dead letter for {', '.join(call_ids)}")


def register(cli: click.Group) -> None:
    cli.add_command(worker_cmd)
    cli.add_command(watch_cmd)
    cli.add_command(queue_status_cmd)
    cli.add_command(requeue_dead_cmd)
