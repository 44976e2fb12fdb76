"""The watcher: follow ViciDial's ``recording_log`` and analyse every new recording.

Each poll reads the recordings after the stored watermark (``recording_id``, kept in the
store's ``watermarks`` table as :data:`WATERMARK`) with
:func:`core.vicidial.lookup.recordings_since` -- which stops before the first recording the
dialer has not processed yet, so nothing is skipped -- hands them to a sink, and advances the
watermark **only after** the sink took them:

- with a broker (``[queue] broker_url``) the sink enqueues them (:class:`~core.queue.enqueue.Enqueuer`,
  which skips calls already stored or queued), and ``callqa worker`` processes analyse them;
- without one, the sink analyses them in-process with the scan engine (:func:`core.scan.run_scan`),
  the embedded default.

A watcher killed between the two steps enqueues the same batch again on restart, which the
enqueuer's checks turn into no new work. A full batch polls again at once; otherwise the
watcher sleeps ``[queue] watch_interval_s``. SIGTERM/SIGINT stop it after the batch in hand.
On its very first run (no watermark stored) it starts at the newest recording unless given a
starting ``recording_id``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from core.config import Settings
from core.errors import CallQAError, ConfigError, ScanIncompleteError
from core.queue.settings import QueueSettings

if TYPE_CHECKING:
    from core.store.store import ResultStore
    from core.vicidial import ViciDialSettings
    from core.work import WorkItem

log = logging.getLogger("callqa.watch")

WATERMARK = "watch.vicidial.recording_id"

#: Takes a batch of work items; returns a one-line summary. Raising keeps the watermark where it is.
Sink = Callable[[list["WorkItem"]], str]


@dataclass(frozen=True)
class Poll:
    """One poll: the watermark before and after, recordings found, and what the sink said."""

    before: int
    after: int
    found: int
    full: bool
    summary: str


def newest_recording_id(vicidial: ViciDialSettings) -> int:
    """The largest ``recording_log.recording_id`` now (0 for an empty table)."""
    from core.vicidial import connect

    with connect(vicidial) as session:
        rows = session.query("SELECT MAX(recording_id) AS newest FROM recording_log")
    return int(rows[0]["newest"] or 0) if rows else 0


class Watcher:
    """Polls ViciDial and feeds a sink, keeping the watermark in the store.

    Parameters
    ----------
    settings : Settings
    store : ResultStore
        Where the watermark is kept (the store the analyses go to).
    sink : callable
        :func:`queue_sink` or :func:`local_sink`.
    start_id : int, optional
        The watermark to start from when none is stored (default: the newest recording now).
    """

    def __init__(self, settings: Settings, store: ResultStore, sink: Sink, *, start_id: int | None = None) -> None:
        from core.vicidial import ViciDialSettings

        self.qs = QueueSettings.from_settings(settings)
        self.vicidial = ViciDialSettings.from_settings(settings)
        if not self.vicidial.configured:
            raise ConfigError("callqa watch follows ViciDial's recording_log: configure [vicidial] (host, user, "
                              "database) or CALLQA_VICIDIAL_HOST and friends")
        self.store = store
        self.sink = sink
        self.start_id = start_id
        self.stop = threading.Event()

    def watermark(self) -> int:
        """The stored watermark, initialised (and stored) on the first run."""
        value = self.store.get_watermark(WATERMARK)
        if value is not None:
            return int(value)
        start = self.start_id if self.start_id is not None else newest_recording_id(self.vicidial)
        self.store.set_watermark(WATERMARK, str(start))
        log.info("no watermark stored: starting after recording_id %d", start)
        return start

    def poll(self) -> Poll:
        """Read the next batch, hand it to the sink, then advance the watermark."""
        from core.vicidial import recordings_since, to_records

        before = self.watermark()
        rows = to_records(recordings_since(self.vicidial, after_recording_id=before, limit=self.qs.watch_batch,
                                           pending_grace_s=self.qs.watch_grace_s))
        if not rows:
            return Poll(before, before, 0, False, "no new recordings")
        from core.fetch.service import items_from_vicidial_rows

        summary = self.sink(items_from_vicidial_rows(rows))
        after = max(int(r["recording_id"]) for r in rows)
        self.store.set_watermark(WATERMARK, str(after))
        return Poll(before, after, len(rows), len(rows) >= self.qs.watch_batch, summary)

    def run(self, *, once: bool = False, report: Callable[[str], None] | None = None,
            after_poll: Callable[[Poll], None] | None = None) -> int:
        """Poll until stopped (or once); return the number of polls that failed.

        With ``once`` an error is raised; otherwise it is reported and the next poll retries it.
        ``after_poll`` runs after every successful poll (the alert check of ``callqa watch``).
        """
        say = report or log.info
        failures = 0
        while not self.stop.is_set():
            try:
                poll = self.poll()
            except ScanIncompleteError:  # the in-process analysis was interrupted by a signal: stop
                self.stop.set()
                raise
            except CallQAError as exc:
                if once:
                    raise
                failures += 1
                say(f"poll failed (retrying in {self.qs.watch_interval_s:g} s): {exc}")
                self.stop.wait(self.qs.watch_interval_s)
                continue
            if poll.found:
                say(f"recordings {poll.before + 1}..{poll.after}: {poll.found} found, {poll.summary}")
            if after_poll is not None:
                after_poll(poll)
            if once:
                break
            if not poll.full:
                self.stop.wait(self.qs.watch_interval_s)
        return failures

    @contextmanager
    def stopping_on_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT set :attr:`stop`: the batch in hand is finished, then the watcher exits."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {}

        def handle(signum: int, _frame: object) -> None:
            log.info("%s: stopping after the current batch", signal.Signals(signum).name)
            self.stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handle)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def queue_sink(enqueuer) -> Sink:
    """A sink that enqueues (an :class:`~core.queue.enqueue.Enqueuer`)."""

    def sink(items: list[WorkItem]) -> str:
        before = dict(enqueuer.counts)
        for item in items:
            enqueuer.add(item)
        delta = {k: enqueuer.counts[k] - before[k] for k in before}
        return (f"{delta['queued']} queued, {delta['cached']} already analysed, {delta['busy']} already queued"
                + (f", {delta['failed_before']} failed before" if delta["failed_before"] else ""))

    return sink


def local_sink(settings: Settings, *, store_url: str, quality: bool, workers: int = 1) -> Sink:
    """A sink that analyses in this process's scan workers (no broker configured)."""
    from core.scan import run_scan

    def sink(items: list[WorkItem]) -> str:
        t0 = time.perf_counter()
        report = run_scan(settings, items, store_url=store_url, workers=workers, quality=quality,
                          source="vicidial")
        if report.interrupted_by is not None:  # keep the watermark: the next run analyses the rest
            raise ScanIncompleteError("interrupted while analysing new recordings", exit_code=report.exit_code)
        return (f"{report.analysed} analysed, {report.cached} cached, {len(report.failed)} failed "
                f"in {time.perf_counter() - t0:.1f} s")

    return sink
