"""Fleet scans: analyse every call of a source into the result store, resumably and in parallel.

A scan takes :class:`~core.work.WorkItem` s (a folder of recordings grouped into calls by ViciDial
naming, :func:`scan_folder`; or ViciDial recordings, :func:`core.fetch.service.vicidial_items`),
skips the calls whose stored analysis has the same cache key, and analyses the rest in worker
processes. Each step is the one every entry point shares (:class:`core.analysis_service.AnalysisJob`):
the parent hashes, checks and stores, the workers resolve and analyse.

Design:

- **Workers** are processes from a ``spawn`` context (torch is not fork-safe). Each loads the
  VAD and the quality model once, in its initializer, then analyses calls; a call's recordings
  are decoded once and every stage shares the samples (:func:`core.pipeline.analyze_call`).
  Workers ignore SIGINT/SIGTERM (the parent coordinates) and exit by themselves if the parent
  dies, even by ``kill -9``.
- **The parent** computes cache keys, checks the store, claims calls, and writes every result,
  so one process writes per scan. Each result is one transaction: a scan killed at any moment
  loses at most the calls in flight, and the next scan continues where it stopped.
- **Claims** (``claims`` table) keep two scanners of one source from analysing the same call;
  a claim expires after ``[scan] claim_ttl_s`` and claims of a dead scanner on this machine are
  dropped at once. A call claimed by another scanner is waited for at the end, so a scan that
  returns 0 leaves every call of its source in the store.
- **Failures** never stop a scan: the reason is stored (``analysis_errors``) and listed at the
  end, and exit status 3 says some calls failed. The same bytes are not retried until they
  change (or the analysis version/config does). A worker crash (a decoder segfault) restarts
  the pool and retries the calls in flight one at a time to find the culprit.
- **SIGINT/SIGTERM**: the first stops taking new calls and finishes the ones in flight; a second
  one aborts at once. The report is still printed (exit status 130/143).
- **Temporary files** live in a per-run folder under ``Settings.tmp_dir`` (``TMPDIR`` of the
  workers), removed in ``finally``; :func:`core.runtime.cleanup_tmp` removes leftovers of killed runs.
- **A scan with nothing to do stays cheap**: no worker starts, and the quality model's identity
  (part of every cache key) is remembered in ``<data_dir>/quality-identity.json`` against the
  weights file and the quality code, so torch is not even imported
  (:func:`core.quality.manager.quality_identity`).

Configuration: ``[scan]`` (:class:`core.config.ScanSettings`; environment ``CALLQA_SCAN_<KEY>``):
``claim_ttl_s`` (1800), ``remote_ttl_s`` (86400: recordings fetched from remote servers are
fetched again after this, since they can be rewritten or truncated), ``progress_interval_s``
(10: plain progress lines when stderr is not a terminal).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.analysis_service import AnalysisJob, Models, load_models, record_failure, reuse_reason, save_result
from core.config import ScanSettings, Settings
from core.errors import CallQAError, ConfigError, ModelUnavailableError, ParameterError, ScanIncompleteError
from core.progress import NullProgress, ProgressReporter
from core.quality.manager import quality_identity
from core.runtime import make_run_dir, process_owner, release_dead_claims
from core.store.store import ResultStore, open_store
from core.voices import list_all as list_voiceprints
from core.voices import voices_for
from core.work import RESOLVERS, WorkItem, as_datetime, folder_items

if TYPE_CHECKING:
    from core.audio.diarize import VoiceContext
    from core.results import CallAnalysis

_FATAL = (ModelUnavailableError, ConfigError)


# --- the report ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanFailure:
    """A call that could not be analysed. ``previously``: the same bytes failed in an earlier run."""

    call_id: str
    ref: str
    reason: str
    previously: bool = False


@dataclass(frozen=True)
class ScanReport:
    """What a scan did. ``exit_code``: 0 all analysed, 3 some failed, 128+signal when interrupted."""

    source: str
    total: int
    analysed: int
    cached: int
    failed: tuple[ScanFailure, ...]
    elapsed_s: float
    audio_s: float
    interrupted_by: int | None = None
    limited: bool = False
    busy: int = 0

    @property
    def exit_code(self) -> int:
        if self.interrupted_by is not None:
            return 128 + self.interrupted_by
        return 3 if self.failed else 0

    def check(self) -> None:
        """Raise :class:`ScanIncompleteError` unless every call was analysed (or was already)."""
        if self.interrupted_by is not None:
            name = signal.Signals(self.interrupted_by).name
            raise ScanIncompleteError(f"scan interrupted by {name}; the next scan continues where it stopped",
                                      exit_code=self.exit_code)
        if self.failed:
            raise ScanIncompleteError(f"{len(self.failed)} of {self.total} calls could not be analysed "
                                      "(listed above, stored with their reason)", exit_code=self.exit_code)

    @property
    def throughput(self) -> float:
        """Call-minutes analysed per wall-clock minute."""
        return self.audio_s / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["failed"] = [dataclasses.asdict(f) for f in self.failed]
        out["exit_code"] = self.exit_code
        out["throughput"] = round(self.throughput, 3)
        out["elapsed_s"] = round(self.elapsed_s, 3)
        out["audio_s"] = round(self.audio_s, 3)
        return out


# --- the worker side ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Outcome:
    call_id: str
    status: str  # ok | error | fatal | unchanged
    cache_key: str | None
    analysis: CallAnalysis | None = None
    reason: str = ""
    fetched_at: datetime | None = None
    error: CallQAError | None = None  # status "fatal": the error that stops the scan


_WORKER: dict[str, Any] = {}


def _watch_parent() -> None:
    import multiprocessing
    from multiprocessing.connection import wait as mp_wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        mp_wait([parent.sentinel])
        os._exit(1)  # the scan died (kill -9): do not linger as an orphan

    threading.Thread(target=watch, name="callqa-parent-watch", daemon=True).start()


def _init_worker(settings: Settings, quality: bool, threads: int, run_dir: str,
                 resolvers: dict[str, str]) -> None:
    """Worker initializer: signals, temp dir, resolvers, and the models, loaded once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _watch_parent()
    os.environ["TMPDIR"] = run_dir
    tempfile.tempdir = run_dir
    _WORKER.update(settings=settings, run_dir=Path(run_dir), resolvers=dict(resolvers), error=None, models=None)
    try:
        _WORKER["models"] = load_models(settings, quality=quality, threads=threads)
    except CallQAError as exc:  # reported with the first task, which stops the scan
        _WORKER["error"] = exc


def analyze_in_worker(item: WorkItem, previous_key: str | None = None, voices: VoiceContext | None = None) -> _Outcome:
    """Analyse one work item in a worker process (models from the initializer, voices from the
    parent's store); nothing is stored here."""
    if _WORKER.get("error") is not None:
        return _Outcome(item.call_id, "fatal", item.cache_key, reason=str(_WORKER["error"]), error=_WORKER["error"])
    job = AnalysisJob(item, _WORKER["settings"], _WORKER["models"], voices=voices)
    try:
        job.resolve(_WORKER["run_dir"], resolvers=_WORKER["resolvers"])
        if item.cache_key is None and job.cache_key() == previous_key:  # fetched here: hash what was fetched
            return _Outcome(item.call_id, "unchanged", job.key, fetched_at=job.fetched_at)
        analysis = job.run_pipeline()
        return _Outcome(item.call_id, "ok", job.cache_key(), analysis=analysis, fetched_at=job.fetched_at)
    except _FATAL as exc:
        return _Outcome(item.call_id, "fatal", job.key, reason=str(exc), error=exc)
    except CallQAError as exc:
        return _Outcome(item.call_id, "error", job.key, reason=str(exc))
    except Exception as exc:  # a bug or an unexpected library error: one call fails, the scan goes on
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        return _Outcome(item.call_id, "error", job.key, reason=f"unexpected {type(exc).__name__}: {exc}{where}")


# --- the parent side -----------------------------------------------------------------------------------
class _Signals:
    """First SIGINT/SIGTERM: stop taking calls; second: abort (KeyboardInterrupt)."""

    def __init__(self, progress: ProgressReporter) -> None:
        self.progress = progress
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum: int, _frame: object) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum
        self.progress.message(f"{signal.Signals(signum).name}: finishing the calls in flight "
                              "(signal again to abort)")


class _Scan:
    """The state of one running scan in the parent process."""

    def __init__(self, settings: Settings, store: ResultStore, *, workers: int, quality: bool,
                 quality_id: str | None, limit: int | None, progress: ProgressReporter, run_dir: Path,
                 scan_cfg: ScanSettings) -> None:
        self.settings = settings
        self.store = store
        self.workers = workers
        self.quality = quality
        self.quality_id = quality_id
        self.limit = limit
        self.progress = progress
        self.run_dir = run_dir
        self.cfg = scan_cfg
        self.owner = process_owner()
        self.models = Models(quality_id=quality_id)  # the workers hold the models themselves
        self.voiceprints = list_voiceprints(store)  # read once: every item's voices come from these
        self.pool: ProcessPoolExecutor | None = None
        self.inflight: dict[Future, tuple[WorkItem, str | None]] = {}
        self.suspects: deque[WorkItem] = deque()
        self.isolated: set[str] = set()
        self.deferred: list[WorkItem] = []
        self.submitted = 0
        self.analysed = 0
        self.cached = 0
        self.audio_s = 0.0
        self.failures: list[ScanFailure] = []
        self.limited = False

    # pool ------------------------------------------------------------------------------------
    def _pool(self) -> ProcessPoolExecutor:
        if self.pool is None:
            import multiprocessing

            threads = max(1, (os.cpu_count() or 1) // self.workers)
            self.pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.settings, self.quality, threads, str(self.run_dir), dict(RESOLVERS)),
            )
        return self.pool

    def shutdown(self, *, abort: bool) -> None:
        pool, self.pool = self.pool, None
        if pool is None:
            return
        if abort:
            processes = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                with contextlib.suppress(Exception):
                    p.terminate()
            for p in processes:
                with contextlib.suppress(Exception):
                    p.join(timeout=5)
        else:
            pool.shutdown(wait=True, cancel_futures=True)

    # items -----------------------------------------------------------------------------------
    def _key(self, item: WorkItem) -> str | None:
        return AnalysisJob(item, self.settings, self.models).local_key()

    def _fail(self, item: WorkItem, key: str | None, reason: str, *, previously: bool = False) -> None:
        if not previously:
            record_failure(self.store, item, key, reason)
        self.failures.append(ScanFailure(item.call_id, item.ref, reason, previously))
        self.progress.message(f"failed {item.call_id}: {reason}" + (" (unchanged since it failed)"
                                                                    if previously else ""))
        self.progress.advance(outcome="failed")

    def _cached(self) -> None:
        self.cached += 1
        self.progress.advance(outcome="cached")

    def consider(self, item: WorkItem) -> None:
        """Skip ``item`` when cached, claimed elsewhere or known bad; otherwise submit it."""
        try:
            key = self._key(item)
        except CallQAError as exc:
            self._fail(item, None, str(exc))
            return
        voices = voices_for(self.store, item, prints=self.voiceprints)
        if reuse_reason(self.store, item, key, quality_id=self.quality_id, ttl_s=self.cfg.remote_ttl_s,
                        voices=voices):
            self._cached()
            return
        if key is not None:
            reason = self.store.known_error(item.call_id, key)
            if reason is not None:
                self._fail(item, key, reason, previously=True)
                return
        if not self.store.try_claim(item.call_id, key or "remote", self.owner, self.cfg.claim_ttl_s):
            self.deferred.append(item)
            return
        if key is not None and reuse_reason(self.store, item, key, quality_id=self.quality_id,
                                            ttl_s=self.cfg.remote_ttl_s, voices=voices):  # finished meanwhile
            self.store.release(item.call_id, self.owner)
            self._cached()
            return
        self.submit(dataclasses.replace(item, cache_key=key), voices=voices)

    def submit(self, item: WorkItem, *, retry: bool = False, voices: VoiceContext | None = None) -> None:
        previous = self.store.stored_key(item.call_id) if item.cache_key is None else None
        if voices is None:
            voices = voices_for(self.store, item, prints=self.voiceprints)
        future = self._pool().submit(analyze_in_worker, item, previous, voices)
        self.inflight[future] = (item, item.cache_key)
        if not retry:
            self.submitted += 1

    # results ---------------------------------------------------------------------------------
    def collect(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for results and store them."""
        if not self.inflight:
            return
        done, _ = wait(list(self.inflight), timeout=timeout_s, return_when=FIRST_COMPLETED)
        broken = False
        for future in done:
            try:
                outcome = future.result()
            except BrokenProcessPool:
                broken = True
                continue
            item, _key = self.inflight.pop(future)
            self._store(item, outcome)
        if broken:
            self._pool_crashed()

    def _store(self, item: WorkItem, outcome: _Outcome) -> None:
        try:
            if outcome.status == "fatal":
                raise outcome.error or ModelUnavailableError(outcome.reason)
            if outcome.status == "ok":
                assert outcome.analysis is not None and outcome.cache_key is not None
                save_result(self.store, item, outcome.analysis, cache_key=outcome.cache_key,
                            fetched_at=outcome.fetched_at)
                if outcome.analysis.agent_voice is not None:  # a voiceprint was refreshed: use it from now on
                    self.voiceprints = list_voiceprints(self.store)
                self.analysed += 1
                self.audio_s += outcome.analysis.duration_s
                self.progress.advance(outcome="done", note=item.call_id)
            elif outcome.status == "unchanged":
                self.store.touch_fetched(item.call_id, fetched_at=outcome.fetched_at)
                self._cached()
            else:
                self._fail(item, outcome.cache_key, outcome.reason)
        finally:
            self.store.release(item.call_id, self.owner)

    def _pool_crashed(self) -> None:
        """A worker died (segfault, OOM kill): restart, retry the calls in flight one by one."""
        lost = [item for item, _ in self.inflight.values()]
        self.inflight.clear()
        self.shutdown(abort=True)
        if len(lost) == 1:
            item = lost[0]
            self._fail(item, item.cache_key, "the worker process died while analysing this call")
            self.store.release(item.call_id, self.owner)
        else:
            self.progress.message(f"a worker process died; retrying {len(lost)} calls one at a time")
            self.suspects.extend(lost)
            self.isolated.update(item.call_id for item in lost)

    # the loop --------------------------------------------------------------------------------
    def capacity(self) -> int:
        """Calls in flight at most: one more than the workers, or one while finding a crasher."""
        isolating = self.suspects or any(item.call_id in self.isolated for item, _ in self.inflight.values())
        return 1 if isolating else self.workers + 1

    def run(self, items: Iterator[WorkItem], signals: _Signals) -> None:
        exhausted = False
        last_recheck = 0.0
        while signals.received is None:
            # keep the workers fed, a little ahead
            while signals.received is None and len(self.inflight) < self.capacity():
                if self.suspects:
                    if self.inflight:
                        break
                    self.submit(self.suspects.popleft(), retry=True)
                    continue
                if exhausted:
                    break
                if self.limit is not None and self.submitted >= self.limit:
                    self.limited = next(items, None) is not None  # more calls wait for the next run
                    exhausted = True
                    break
                item = next(items, None)
                if item is None:
                    exhausted = True
                    break
                self.consider(item)
            if self.inflight:
                self.collect(0.5)
                continue
            if not exhausted or self.suspects:
                continue
            if not self.deferred or (self.limit is not None and self.submitted >= self.limit):
                break
            # only calls claimed by other scanners are left: wait for them (or for their claims to lapse)
            now = time.monotonic()
            if now - last_recheck < 0.5:
                time.sleep(0.5 - (now - last_recheck))
            last_recheck = time.monotonic()
            release_dead_claims(self.store)
            waiting, self.deferred = self.deferred, []
            for item in waiting:
                if self.limit is not None and self.submitted >= self.limit:
                    self.deferred.append(item)
                    continue
                self.consider(item)
        # stopping: let the calls in flight finish and store them
        while self.inflight:
            self.collect(0.5)


def run_scan(
    settings: Settings,
    items: Iterable[WorkItem],
    *,
    store_url: str,
    workers: int = 1,
    limit: int | None = None,
    quality: bool = True,
    progress: ProgressReporter | None = None,
    total: int | None = None,
    source: str = "",
) -> ScanReport:
    """Analyse ``items`` into the store at ``store_url`` (the engine behind every scan).

    Parameters
    ----------
    settings : Settings
        Configuration (analysis thresholds, quality model, ``[scan]``, ``tmp_dir``).
    items : iterable of WorkItem
        The calls, consumed lazily.
    store_url : str
        A SQLite path or PostgreSQL URL; migrated on open.
    workers : int
        Worker processes (>= 1).
    limit : int, optional
        Analyse at most this many calls (cached calls do not count); the rest wait for the next run.
    quality : bool
        Score speech quality (NISQA).
    progress : ProgressReporter, optional
        Where progress goes; silent when omitted.
    total : int, optional
        Number of items, for the progress bar (``len(items)`` when it has one).

    Returns
    -------
    ScanReport

    Raises
    ------
    StoreError, ModelUnavailableError, ConfigError
        Problems that stop the whole scan (not a single call's failure).
    KeyboardInterrupt
        A second SIGINT/SIGTERM aborted the scan.
    """
    if workers < 1:
        raise ParameterError(f"workers={workers} must be at least 1")
    if limit is not None and limit < 0:
        raise ParameterError(f"limit={limit} must not be negative")
    progress = progress or NullProgress()
    scan_cfg = ScanSettings.from_settings(settings)
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    quality_id = quality_identity(settings, quality)
    store = open_store(store_url)
    run_dir = make_run_dir(settings.tmp_dir)
    scan = _Scan(settings, store, workers=workers, quality=quality, quality_id=quality_id, limit=limit,
                 progress=progress, run_dir=run_dir, scan_cfg=scan_cfg)
    signals = _Signals(progress)
    aborted = True
    try:
        release_dead_claims(store)
        progress.start(total)
        with signals:
            scan.run(iter(items), signals)
        aborted = False
    finally:
        scan.shutdown(abort=aborted)
        with contextlib.suppress(Exception):
            store.release_owner(scan.owner)
        store.close()
        shutil.rmtree(run_dir, ignore_errors=True)
        progress.finish()
    return ScanReport(
        source=source, total=total if total is not None else scan.submitted + scan.cached,
        analysed=scan.analysed, cached=scan.cached, failed=tuple(scan.failures),
        elapsed_s=time.perf_counter() - t0, audio_s=scan.audio_s, interrupted_by=signals.received,
        limited=scan.limited, busy=len(scan.deferred),
    )


def scan_folder(
    settings: Settings,
    folder: str | Path,
    *,
    store_url: str,
    workers: int = 1,
    limit: int | None = None,
    since: datetime | date | None = None,
    until: datetime | date | None = None,
    quality: bool = True,
    metadata: Mapping[str, Any] | None = None,
    progress: ProgressReporter | None = None,
) -> ScanReport:
    """Analyse every call in a folder of recordings into the store.

    Parameters
    ----------
    settings : Settings
    folder : str or Path
        Recordings, searched recursively and grouped into calls by ViciDial naming
        (:func:`core.audio.layout.discover_calls`).
    store_url : str
        A SQLite path or PostgreSQL URL (``Settings.store_url(override)``).
    workers : int
        Worker processes.
    limit : int, optional
        Analyse at most this many calls this run.
    since, until : datetime or date, optional
        Only calls whose call time (FULLDATE prefix of the name, else file mtime) is in
        ``[since, until)``.
    quality : bool
        Score speech quality (NISQA); ``False`` is ``--no-quality``.
    metadata : mapping, optional
        Metadata stored with every call (e.g. ``{"campaign": "SALES"}``).
    progress : ProgressReporter, optional

    Returns
    -------
    ScanReport
        Counts analysed / cached / failed, the failures, timings. ``exit_code`` is 0 when every
        call is analysed, 3 when some failed.
    """
    items = folder_items(folder, since=as_datetime(since), until=as_datetime(until), metadata=metadata)
    return run_scan(settings, items, store_url=store_url, workers=workers, limit=limit, quality=quality,
                    progress=progress, source=str(folder))
