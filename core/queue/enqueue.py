"""Enqueuing calls: what ``callqa scan --queue`` and ``callqa watch`` do instead of analysing.

Each :class:`~core.work.WorkItem` is checked against the store before it is sent, by the rules
every entry point shares (:func:`core.analysis_service.reuse_reason`):

- a call already stored with the same cache key (local files are hashed here, as a scan
  does) -- or a ViciDial recording fetched within ``[scan] remote_ttl_s`` and scored by the
  same quality model -- is not sent;
- the same bytes that failed before (``analysis_errors``) are not sent again;
- a call that is queued or being analysed (an unexpired claim) is not sent again: after the
  message is published the call is marked with the claim ``queue/<task id>`` for
  ``[queue] claim_ttl_s``, which the worker takes over when it starts and drops when done.

The mark is written *after* publishing, so an enqueuer killed in between can only cause one
duplicate message on the next run (which the worker skips by the cache key), never a lost
call. Enqueuing the same calls twice therefore sends them once and analyses them once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.errors import AudioNotFoundError, QueueError
from core.queue.settings import QueueSettings, redact_url

if TYPE_CHECKING:
    from celery import Celery

    from core.store.store import ResultStore
    from core.work import WorkItem

OUTCOMES = ("queued", "cached", "busy", "failed_before")


@dataclass(frozen=True)
class EnqueueReport:
    """What an enqueue did: ``queued`` sent, ``cached`` already analysed, ``busy`` already queued
    or being analysed, ``failed_before`` the same bytes failed before."""

    total: int
    queued: int
    cached: int
    busy: int
    failed_before: int
    elapsed_s: float
    limited: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "queued": self.queued, "cached": self.cached, "busy": self.busy,
                "failed_before": self.failed_before, "elapsed_s": round(self.elapsed_s, 3), "limited": self.limited}


class Enqueuer:
    """Sends work items to the analysis queue, skipping what is stored, failed or already queued.

    Parameters
    ----------
    settings : Settings
        Configuration (``[queue]``, ``[analysis]``, the quality model for cache keys).
    store_url : str, optional
        The result store workers write to (default: ``settings.store_url()``).
    quality : bool, optional
        Score NISQA quality (default ``[queue] quality``); part of the cache key.
    summarize : bool, optional
        Workers enqueue the Claude summary after storing (default ``[queue] summarize``).
    app, store : optional
        An existing Celery app / open store (tests, the watcher); built here otherwise.

    Raises
    ------
    ConfigError
        No broker is configured.
    """

    def __init__(self, settings: Settings, *, store_url: str | None = None, quality: bool | None = None,
                 summarize: bool | None = None, app: Celery | None = None, store: ResultStore | None = None) -> None:
        from core.analysis_service import remote_ttl_s
        from core.queue.app import create_app
        from core.store.store import open_store

        self.settings = settings
        self.qs = QueueSettings.from_settings(settings).require_broker("enqueuing calls")
        self.quality = self.qs.quality if quality is None else quality
        self.summarize = self.qs.summarize if summarize is None else summarize
        self.remote_ttl_s = remote_ttl_s(settings)
        self.app = app or create_app(self.qs)
        self._own_store = store is None
        self.store = store or open_store(store_url or settings.store_url())
        self._quality_ids: dict[bool, str | None] = {}
        self.counts = dict.fromkeys(OUTCOMES, 0)

    def close(self) -> None:
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Enqueuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _quality_identity(self, quality: bool) -> str | None:
        if quality not in self._quality_ids:
            from core.quality.manager import quality_identity

            self._quality_ids[quality] = quality_identity(self.settings, quality)
        return self._quality_ids[quality]

    def _skip(self, item: WorkItem, quality: bool) -> tuple[str | None, str | None]:
        """(why ``item`` is not sent, or None; its cache key when local and readable)."""
        from core.analysis_service import AnalysisJob, Models, reuse_reason

        quality_id = self._quality_identity(quality)
        try:
            key = AnalysisJob(item, self.settings, Models(quality_id=quality_id)).local_key()
        except AudioNotFoundError:
            key = None  # the worker records why
        if reuse_reason(self.store, item, key, quality_id=quality_id, ttl_s=self.remote_ttl_s):
            return "cached", key
        if key is not None and self.store.known_error(item.call_id, key) is not None:
            return "failed_before", key
        if self.store.claim_holder(item.call_id) is not None:
            return "busy", key
        return None, key

    def add(self, item: WorkItem, *, quality: bool | None = None, summarize: bool | None = None) -> str:
        """Send one call unless it is stored, failed before or already queued; return the outcome
        (one of :data:`OUTCOMES`). ``quality``/``summarize`` override the enqueuer's for this call.

        Raises
        ------
        QueueError
            The broker cannot be reached (nothing was marked: the call is sent on the next try).
        StoreError
            The store cannot be read or written.
        """
        from core.queue.app import ANALYZE_TASK
        from core.queue.tasks import PAYLOAD_VERSION, item_to_payload

        quality = self.quality if quality is None else quality
        summarize = self.summarize if summarize is None else summarize
        outcome, key = self._skip(item, quality)
        if outcome is None:
            task_id = uuid.uuid4().hex
            marker = f"queue/{task_id}"
            kwargs = {"item": item_to_payload(item), "claim": marker, "quality": bool(quality),
                      "summarize": bool(summarize), "v": PAYLOAD_VERSION}
            try:
                self.app.send_task(ANALYZE_TASK, kwargs=kwargs, task_id=task_id, queue=self.qs.analysis_queue,
                                   retry=True,
                                   retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5,
                                                 "interval_max": 2.0})
            except Exception as exc:  # kombu/redis/amqp connection errors, whatever the transport
                raise QueueError(self._error(exc)) from None
            self.store.try_claim(item.call_id, key or "remote", marker, self.qs.claim_ttl_s)
            outcome = "queued"
        self.counts[outcome] += 1
        return outcome

    def _error(self, exc: BaseException) -> str:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        password = _password(self.qs.broker_url)
        if password:
            text = text.replace(password, "***")
        return f"cannot enqueue on {redact_url(self.qs.broker_url)}: {text}"

    def run(self, items: Iterable[WorkItem], *, limit: int | None = None) -> EnqueueReport:
        """Enqueue ``items`` (at most ``limit`` sent; the rest wait for the next run)."""
        t0 = time.perf_counter()
        total, limited = 0, False
        for item in items:
            if limit is not None and self.counts["queued"] >= limit:
                limited = True
                break
            total += 1
            self.add(item)
        c = self.counts
        return EnqueueReport(total=total, queued=c["queued"], cached=c["cached"], busy=c["busy"],
                             failed_before=c["failed_before"], elapsed_s=time.perf_counter() - t0, limited=limited)


def _password(url: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return unquote(password) if password else None


def enqueue_items(settings: Settings, items: Iterable[WorkItem], *, store_url: str | None = None,
                  quality: bool | None = None, summarize: bool | None = None, limit: int | None = None) -> int:
    """Enqueue ``items`` for ``callqa worker`` processes; return how many were sent.

    Calls already stored with the same cache key, failed before with the same bytes, or
    already queued are not sent (see the module docstring), so calling this twice with the
    same items sends them once.

    Raises
    ------
    ConfigError
        No broker is configured (``[queue] broker_url`` / ``CALLQA_BROKER_URL``).
    QueueError
        The broker cannot be reached.
    StoreError
        The store cannot be opened, read or written.
    """
    with Enqueuer(settings, store_url=store_url, quality=quality, summarize=summarize) as enqueuer:
        return enqueuer.run(items, limit=limit).queued
