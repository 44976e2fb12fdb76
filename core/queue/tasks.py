"""The queue's tasks ``callqa.analyze_call`` (:func:`analyze_call_task`) and ``callqa.summarize_call``
(:func:`summarize_call_task`), run by ``callqa worker``.

A task carries a call reference -- a :class:`~core.work.WorkItem` as a plain JSON dict (a
ViciDial ``recording_id``, or the paths of recordings every worker can read) -- never audio.
The worker process runs it through :class:`core.analysis_service.AnalysisJob` (the path every
entry point shares): it resolves the item (fetching ViciDial recordings into a per-task
temporary folder), computes the cache key from the bytes it got, and:

- skips the call when the store already holds that key (or, for ViciDial recordings, when
  it was fetched within ``[scan] remote_ttl_s``), so a message delivered twice analyses once;
- claims the call (the ``claims`` table, shared with ``callqa scan``): a call being analysed
  by a live scanner or worker is left to it; the claim of a dead worker process on this
  machine is taken over at once, one on another machine when it expires;
- analyses with the models loaded once per worker process (``worker_process_init``), and
  stores the analysis idempotently (:meth:`~core.store.store.ResultStore.save_analysis`);
- on a transient failure (fetch, ViciDial, a misconfigured worker) retries with exponential
  backoff, ``[queue] retry_max`` times, then writes a **dead letter**; a store outage is
  retried until the store is back; a bad recording is stored as an analysis error like a scan
  does (not retried until its bytes change);
- counts deliveries that never ended cleanly (``task_attempts``): a call that killed the
  process analysing it :data:`MAX_WORKER_DEATHS` times is dead-lettered instead of crashing
  workers for ever.

Each outcome is one log line (``stored``, ``cached``, ``busy``, ``retry``, ``failed``,
``dead letter``), with the analysis and task times, in the worker's log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery.exceptions import Reject, SoftTimeLimitExceeded
from celery.signals import worker_process_init, worker_process_shutdown

from core.config import Settings
from core.errors import (
    AudioError,
    CallNotFoundError,
    CallQAError,
    ConfigError,
    FetchError,
    LLMError,
    LLMTransientError,
    ModelUnavailableError,
    ParameterError,
    QueueError,
    StoreError,
    UnsafeLocationError,
    ViciDialError,
)
from core.queue.app import ANALYZE_TASK, SUMMARY_TASK
from core.queue.settings import QueueSettings

if TYPE_CHECKING:
    from celery import Celery, Task

    from core.analysis_service import AnalysisJob, Models
    from core.store.store import ResultStore
    from core.work import WorkItem

log = logging.getLogger("callqa.queue")

PAYLOAD_VERSION = 1
#: A call whose delivery killed the worker process this many times is dead-lettered.
MAX_WORKER_DEATHS = 2
_PERMANENT = (AudioError, CallNotFoundError, UnsafeLocationError, ParameterError)
_TRANSIENT = (FetchError, ViciDialError, QueueError, ConfigError, ModelUnavailableError, OSError)


# --- payloads ------------------------------------------------------------------------------------
def item_to_payload(item: WorkItem) -> dict[str, Any]:
    """A work item as a JSON-ready dict (datetimes in metadata become ISO text)."""
    payload = {
        "call_id": item.call_id,
        "kind": item.kind,
        "ref": item.ref,
        "metadata": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in item.metadata.items()},
        "files": [[role, path] for role, path in item.files],
    }
    if item.extras:
        payload["extras"] = dict(item.extras)
    return payload


def item_from_payload(data: Any) -> WorkItem:
    """The work item of a task payload.

    Raises
    ------
    ParameterError
        The payload is not a work item (missing keys, wrong types, unknown kind).
    """
    from core.work import WorkItem

    if not isinstance(data, dict):
        raise ParameterError(f"task item must be an object, got {type(data).__name__}")
    try:
        files = tuple((str(role), str(path)) for role, path in data.get("files") or [])
        metadata = data.get("metadata") or {}
        extras = data.get("extras") or {}
        if not isinstance(metadata, dict) or not isinstance(extras, dict):
            raise TypeError("metadata")
        return WorkItem(call_id=str(data["call_id"]), kind=str(data["kind"]), ref=str(data["ref"]),
                        metadata=metadata, files=files, extras={str(k): str(v) for k, v in extras.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise ParameterError(f"task item is malformed ({exc})") from None


# --- worker configuration (main process) and per-process state (pool processes) -----------------
@dataclass(frozen=True)
class WorkerConfig:
    """What ``callqa worker`` hands to its pool processes (inherited through fork)."""

    settings: Settings
    store_url: str
    queue: QueueSettings
    load_models: bool = True  # this worker consumes the analysis queue
    quality: bool = True  # preload NISQA (a task asking for quality loads it anyway)
    threads: int = 1  # torch threads per process


_CONFIG: WorkerConfig | None = None


def configure_worker(config: WorkerConfig) -> None:
    """Set what the pool processes use; call in ``callqa worker`` before the pool starts."""
    global _CONFIG
    _CONFIG = config
    _STATE.reset()


@dataclass
class _ProcessState:
    """Models, store and temporary folder of one worker process, created once."""

    pid: int = 0
    owner: str = ""
    run_dir: Path | None = None
    models: dict[bool, Models] = field(default_factory=dict)
    store_: ResultStore | None = None
    llm_: Any = None
    error: CallQAError | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        """Forget everything (the next :meth:`ensure` initialises again)."""
        self.pid, self.owner, self.run_dir, self.error = 0, "", None, None
        self.store_, self.llm_, self.models = None, None, {}

    @property
    def config(self) -> WorkerConfig:
        if _CONFIG is None:
            raise ConfigError("the callqa tasks run inside `callqa worker` (no worker configuration)")
        return _CONFIG

    def ensure(self) -> _ProcessState:
        """Initialise for this process (after fork, or lazily in a solo pool)."""
        with self.lock:
            if self.pid != os.getpid():
                self._init()
        return self

    def _init(self) -> None:
        from core.runtime import make_run_dir, process_owner

        cfg = self.config
        self.reset()
        self.pid, self.owner = os.getpid(), process_owner()
        try:
            self.run_dir = make_run_dir(cfg.settings.tmp_dir)
            os.environ["TMPDIR"] = str(self.run_dir)
            tempfile.tempdir = str(self.run_dir)
            if cfg.load_models:
                self.quality_model(cfg.quality)
        except CallQAError as exc:
            self.error = exc

    def quality_model(self, enabled: bool) -> Models:
        """The models to analyse with, quality scoring on or off; loaded once."""
        if enabled not in self.models:
            from core.analysis_service import load_models

            self.models[enabled] = load_models(self.config.settings, quality=enabled, threads=self.config.threads)
        return self.models[enabled]

    def store(self) -> ResultStore:
        if self.store_ is None:
            from core.store.store import open_store

            self.store_ = open_store(self.config.store_url, migrate=False)
        return self.store_

    def llm(self) -> Any:
        if self.llm_ is None:
            from core.llm.adapters import build_services

            self.llm_ = build_services(self.config.settings, store_url=self.config.store_url)
        return self.llm_

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.llm_ is not None:
                self.llm_.close()
        with contextlib.suppress(Exception):
            if self.store_ is not None:
                self.store_.close()
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        self.reset()


_STATE = _ProcessState()


@worker_process_init.connect(weak=False)
def _on_process_init(**_kwargs: Any) -> None:
    """Load the models once per pool process; a worker that cannot load them stops."""
    if _CONFIG is None:
        return
    t0 = time.perf_counter()
    state = _STATE.ensure()
    if state.error is None:
        loaded = ("VAD and NISQA" if True in state.models else "VAD") if _CONFIG.load_models else "no models"
        log.info("process %d ready (%s loaded in %.2f s)", os.getpid(), loaded, time.perf_counter() - t0)
    if state.error is not None:
        log.critical("worker process cannot analyse calls: %s; stopping this worker", state.error)
        with contextlib.suppress(OSError):
            os.kill(os.getppid(), signal.SIGTERM)  # warm shutdown of the whole worker; its messages go back


@worker_process_shutdown.connect(weak=False)
def _on_process_shutdown(**_kwargs: Any) -> None:
    if _STATE.pid == os.getpid():
        _STATE.close()


# --- the analysis task ---------------------------------------------------------------------------
_REUSED = {"cached": "already stored with this cache key", "fresh": "fetched and analysed recently",
           "unchanged": "fetched again, unchanged"}


class _GiveUp(Exception):
    """Internal: dead-letter the call without analysing it (``attempts`` deliveries so far)."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(reason)
        self.attempts = attempts


class _Retry(Exception):
    """Internal: schedule a retry of the current task after ``countdown`` seconds."""

    def __init__(self, countdown: float, reason: str) -> None:
        super().__init__(reason)
        self.countdown = countdown


class _Analysis:
    """One delivery of one ``analyze_call`` task (in a worker process)."""

    def __init__(self, task: Task, state: _ProcessState, item: WorkItem, *, marker: str, quality: bool,
                 summarize: bool, payload: dict[str, Any]) -> None:
        self.task = task
        self.state = state
        self.cfg = state.config
        self.qs = state.config.queue
        self.item = item
        self.marker = marker
        self.quality = quality
        self.summarize = summarize
        self.payload = payload
        self.task_id = str(task.request.id)
        self.retries = int(task.request.retries or 0)
        self.store: ResultStore = None  # type: ignore[assignment]  # opened in execute()
        self.job: AnalysisJob | None = None
        self.claimed = False
        self.started = time.perf_counter()
        self.tmp = (state.run_dir or Path(tempfile.gettempdir())) / f"task-{self.task_id}"

    @property
    def key(self) -> str | None:
        """The cache key, once the item's files were hashed."""
        return self.job.key if self.job is not None else None

    # outcomes ------------------------------------------------------------------------------
    def _say(self, outcome: str, detail: str = "") -> str:
        log.info("%s %s%s [task %s, %.2f s]", outcome, self.item.call_id, f": {detail}" if detail else "",
                 self.task_id, time.perf_counter() - self.started)
        return outcome

    def _release(self) -> None:
        with contextlib.suppress(StoreError):
            self.store.end_attempt(self.task_id)
            if self.claimed:
                self.store.release(self.item.call_id, self.state.owner)
            self.store.release(self.item.call_id, self.marker)

    def dead_letter(self, reason: str, *, attempts: int) -> str:
        self.store.save_dead_letter(task_id=self.task_id, task="analyze_call", queue=self.qs.analysis_queue,
                                    call_id=self.item.call_id, reason=reason, attempts=attempts,
                                    payload=self.payload, source_kind=self.item.kind, source_ref=self.item.ref)
        self._release()
        return self._say("dead letter", reason)

    def failed(self, reason: str) -> str:
        """A bad recording: stored as an analysis error, like a scan does (retried when the bytes change)."""
        from core.analysis_service import record_failure

        record_failure(self.store, self.item, self.key, reason)
        self._release()
        return self._say("failed", reason)

    def retry_or_give_up(self, exc: BaseException) -> str:
        reason = _reason(exc)
        if self.retries >= self.qs.retry_max:
            return self.dead_letter(f"{reason} (gave up after {self.retries + 1} attempts)",
                                    attempts=self.retries + 1)
        countdown = self.qs.backoff_s(self.retries) * random.uniform(0.8, 1.2)
        with contextlib.suppress(StoreError):
            self.store.end_attempt(self.task_id)
            if self.claimed:  # hand the claim back to the queued task, so enqueuing again still skips it
                self.store.try_claim(self.item.call_id, self.key or "remote", self.marker, self.qs.claim_ttl_s,
                                     take_over=self.state.owner)
        self._say("retry", f"{reason}; attempt {self.retries + 2} of {self.qs.retry_max + 1} in {countdown:.1f} s")
        raise _Retry(countdown, reason)

    # steps ---------------------------------------------------------------------------------
    def _claim(self) -> bool:
        """Claim the call for this process (taking over its enqueue mark); False when someone else works on it."""
        from core.runtime import owner_alive

        ttl = self.qs.hard_time_limit_s + 30
        for _ in range(2):
            if self.store.try_claim(self.item.call_id, self.key or "remote", self.state.owner, ttl,
                                    take_over=self.marker):
                self.claimed = True
                return True
            holder = self.store.claim_holder(self.item.call_id)
            if holder is None or owner_alive(holder) is not False:
                break
            self.store.release_owner(holder)  # a worker or scanner on this machine that died
        return False

    def _begin(self, _job: AnalysisJob) -> bool:
        """Before any fetch: claim the call and count this delivery; False when it is someone else's."""
        if not self._claim():
            return False
        attempt = self.store.start_attempt(self.task_id, self.item.call_id)
        if attempt > MAX_WORKER_DEATHS:
            raise _GiveUp(f"the worker process died {attempt - 1} times while analysing this call", attempt)
        if attempt > 1:
            log.warning("%s: delivery %d, the previous worker died while analysing it", self.item.call_id, attempt)
        return True

    def run(self) -> str:
        from core.analysis_service import AnalysisJob

        self.tmp.mkdir(parents=True, exist_ok=True)
        self.job = AnalysisJob(self.item, self.cfg.settings, self.state.quality_model(self.quality))
        try:
            outcome, analysis = self.job.run(self.store, tmp_dir=self.tmp, before_work=self._begin)
        except _GiveUp as give_up:
            return self.dead_letter(str(give_up), attempts=give_up.attempts)
        if outcome == "busy":
            return self._say("busy", f"being analysed by {self.store.claim_holder(self.item.call_id) or 'another worker'}")
        self._release()
        if analysis is None:
            return self._say("cached", _REUSED[outcome])
        if outcome == "stored" and self.summarize:
            self._request_summary()
        return self._say("stored" if outcome == "stored" else "cached",
                         f"analysis_s={analysis.timings_s['total']:.3f} audio_s={analysis.duration_s:.1f}"
                         + ("" if outcome == "stored" else " (stored meanwhile by another worker)"))

    def _request_summary(self) -> None:
        """Enqueue the Claude summary of the stored analysis (a broker hiccup loses the summary, not the call)."""
        try:
            self.task.app.send_task(SUMMARY_TASK, args=[self.item.call_id], queue=self.qs.summary_queue)
        except Exception as exc:  # kombu/redis/amqp errors of any transport
            log.warning("%s: stored, but its summary could not be enqueued (%s); `callqa summarize` can "
                        "write it later", self.item.call_id, _reason(exc))

    def execute(self) -> str:
        """Run, turning every outcome into a log line, a stored record or a scheduled retry (:class:`_Retry`)."""
        try:
            self.store = self.state.store()
            return self._outcome()
        except StoreError as exc:  # the store is down: nothing can be recorded, try again until it is back
            countdown = self.qs.backoff_s(self.retries) * random.uniform(0.8, 1.2)
            log.warning("retry %s in %.1f s: %s", self.item.call_id, countdown, exc)
            raise _Retry(countdown, str(exc)) from None
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _outcome(self) -> str:
        try:
            return self.run()
        except SoftTimeLimitExceeded:
            return self.dead_letter(f"the analysis took longer than [queue] task_time_limit_s="
                                    f"{self.qs.task_time_limit_s:g}", attempts=self.retries + 1)
        except StoreError:
            raise
        except _PERMANENT as exc:
            return self.failed(str(exc))
        except _TRANSIENT as exc:
            return self.retry_or_give_up(exc)
        except CallQAError as exc:
            return self.failed(str(exc))
        except Exception as exc:  # a bug: retrying will not help; keep the call for a requeue after the fix
            log.exception("unexpected error analysing %s", self.item.call_id)
            return self.dead_letter(_reason(exc), attempts=self.retries + 1)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, CallQAError):
        return str(exc)
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f" at {Path(frame.tb_frame.f_code.co_filename).name}:{frame.tb_lineno}" if frame else ""
    return f"unexpected {type(exc).__name__}: {exc}{where}"


def analyze_call_task(self: Task, item: dict[str, Any], claim: str | None = None, quality: bool = True,
                      summarize: bool = False, v: int = PAYLOAD_VERSION) -> str:
    """Celery task ``callqa.analyze_call``: analyse one call reference into the store.

    Parameters
    ----------
    item : dict
        A work item (:func:`item_to_payload`).
    claim : str, optional
        The claim owner the enqueuer marked the call with (taken over by the worker).
    quality : bool
        Score NISQA quality (part of the cache key).
    summarize : bool
        Enqueue the Claude summary once the analysis is stored.

    Returns
    -------
    str
        ``stored``, ``cached``, ``busy``, ``failed`` or ``dead letter`` (no result backend keeps it).
    """
    state = _STATE.ensure()
    if state.error is not None:  # this worker cannot analyse: give the call back to the queue
        raise Reject(str(state.error), requeue=True)
    payload = {"item": item, "claim": claim, "quality": quality, "summarize": summarize, "v": v}
    marker = claim or f"queue/{self.request.id}"
    try:
        work = item_from_payload(item)
    except ParameterError as exc:
        call_id = str(item.get("call_id", "?")) if isinstance(item, dict) else "?"
        state.store().save_dead_letter(task_id=str(self.request.id), task="analyze_call",
                                       queue=state.config.queue.analysis_queue, call_id=call_id[:255],
                                       reason=str(exc), attempts=1, payload=payload)
        log.error("dead letter %s: %s", call_id, exc)
        return "dead letter"
    try:
        return _Analysis(self, state, work, marker=marker, quality=bool(quality), summarize=bool(summarize),
                         payload=payload).execute()
    except _Retry as retry:
        raise self.retry(countdown=retry.countdown) from None


# --- the summary task ----------------------------------------------------------------------------
def _worker_trail(store):
    """The audit trail of this worker's automatic summaries (``worker:<host>``, from the command line)."""
    import socket

    from core.access.roles import Identity
    from core.audit import AuditTrail

    return AuditTrail(store, Identity(name=f"worker:{socket.gethostname()}", role=None, source="cli"), "cli")


def summarize_call_task(self: Task, call_id: str, force: bool = False) -> str:
    """Celery task ``callqa.summarize_call``: the Claude (Haiku) summary of one stored analysis.

    Rate-limited by ``[queue] summary_rate_limit`` per worker. Transient API errors (429, 5xx)
    are retried (after the API's ``retry-after`` when given); after ``retry_max`` retries, or on
    a budget or configuration error, a dead letter is written.
    """
    from core.llm.summary import summarize_call as summarize

    state = _STATE.ensure()
    qs = state.config.queue
    task_id, retries = str(self.request.id), int(self.request.retries or 0)
    started = time.perf_counter()

    def dead(reason: str) -> str:
        state.store().save_dead_letter(task_id=task_id, task="summarize_call", queue=qs.summary_queue,
                                       call_id=call_id, reason=reason, attempts=retries + 1,
                                       payload={"call_id": call_id, "force": force})
        log.error("dead letter %s (summary): %s", call_id, reason)
        return "dead letter"

    try:
        services = state.llm()
        result = summarize(call_id, client=services.client(), settings=services.claude, calls=services.calls,
                           repo=services.repo, force=bool(force), policy=services.policy,
                           audit=_worker_trail(state.store()))
    except LLMTransientError as exc:
        if retries >= qs.retry_max:
            return dead(f"{exc} (gave up after {retries + 1} attempts)")
        countdown = min(qs.retry_backoff_max_s, exc.retry_after_s or qs.backoff_s(retries))
        log.warning("retry summary of %s in %.1f s: %s", call_id, countdown, exc)
        raise self.retry(countdown=countdown) from None
    except StoreError as exc:
        log.warning("retry summary of %s: %s", call_id, exc)
        raise self.retry(countdown=qs.backoff_s(retries)) from None
    except CallNotFoundError as exc:
        log.warning("summary of %s skipped: %s", call_id, exc)
        return "missing"
    except (LLMError, ConfigError) as exc:
        return dead(str(exc))
    log.info("summarised %s%s [task %s, %.2f s]", call_id, " (stored before)" if result.cached else
             f" (${result.cost_usd:.4f})", task_id, time.perf_counter() - started)
    return "cached" if result.cached else "summarised"


def register(app: Celery, qs: QueueSettings) -> None:
    """Register the tasks on ``app`` with their limits and delivery options."""
    common = {"bind": True, "shared": False, "acks_late": True, "reject_on_worker_lost": True,
              "ignore_result": True, "max_retries": None, "soft_time_limit": qs.task_time_limit_s,
              "time_limit": qs.hard_time_limit_s}
    app.task(name=ANALYZE_TASK, **common)(analyze_call_task)  # queues: task_routes (core.queue.app)
    app.task(name=SUMMARY_TASK, rate_limit=qs.summary_rate_limit or None, **common)(summarize_call_task)
