"""Fleet scans: analyse every call of a source into the result store, resumably and in parallel.

A scan turns a source into :class:`WorkItem` s (today a folder of recordings grouped into calls by
ViciDial naming; the ViciDial scan and a task queue reuse the same items), skips the calls whose
stored analysis has the same cache key, and analyses the rest in worker processes.

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
  workers), removed in ``finally``; :func:`cleanup_tmp` removes leftovers of killed runs.
- **A scan with nothing to do stays cheap**: no worker starts, and the quality model's identity
  (part of every cache key) is remembered in ``<data_dir>/quality-identity.json`` against the
  weights file and the quality code, so torch is not even imported (:func:`quality_identity`).

Configuration (``[scan]`` in callqa.toml, environment ``CALLQA_SCAN_<KEY>``): ``claim_ttl_s``
(1800), ``remote_ttl_s`` (86400: recordings fetched from remote servers are fetched again after
this, since they can be rewritten or truncated), ``progress_interval_s`` (10: plain progress
lines when stderr is not a terminal).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.audio.layout import CallFiles, discover_calls
from core.config import Settings, env_overrides
from core.errors import CallQAError, ConfigError, ModelUnavailableError, ParameterError, ScanIncompleteError
from core.progress import NullProgress, ProgressReporter
from core.store.cachekey import cache_key
from core.store.store import ResultStore, open_store

if TYPE_CHECKING:
    from core.results import CallAnalysis

KINDS = ("folder", "vicidial")
#: How each kind of work item becomes local files, as ``module:function`` so spawned workers can
#: import it (the table is handed to the workers when a scan starts). A resolver takes
#: ``(item, tmp_dir: Path, settings)`` and returns ``CallFiles``; it may download into
#: ``tmp_dir`` (the run's temporary folder).
RESOLVERS: dict[str, str] = {
    "folder": "core.scan:resolve_folder_item",
    "vicidial": "core.fetch.service:resolve_vicidial_item",  # item.ref = recording_log.recording_id
}
RUN_PREFIX = "callqa-run-"
_FULLDATE = re.compile(r"^(\d{8})-(\d{6})")
_FATAL = (ModelUnavailableError, ConfigError)


# --- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScanConfig:
    """``[scan]`` settings."""

    claim_ttl_s: float = 1800.0
    remote_ttl_s: float = 86400.0
    progress_interval_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ScanConfig:
        """Read ``[scan]`` with ``CALLQA_SCAN_*`` overrides, rejecting unknown keys and bad values."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = env_overrides(settings.section("scan"), "CALLQA_SCAN_", dict.fromkeys(names, float))
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"unknown [scan] setting(s): {', '.join(unknown)}")
        clean = {}
        for name, value in values.items():
            try:
                clean[name] = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"[scan] {name}={value!r} must be a number") from None
            if clean[name] <= 0:
                raise ConfigError(f"[scan] {name}={value!r} must be positive")
        return cls(**clean)


# --- work items ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkItem:
    """One call to analyse, small and picklable (for worker processes and, later, a task queue).

    Attributes
    ----------
    call_id : str
        The call's identity in the store.
    kind : str
        ``folder`` (local files, listed in ``files``) or ``vicidial`` (resolved in the worker).
    ref : str
        Where the call comes from, stored as ``source_ref`` (the folder and call name, a
        recording id...).
    metadata : mapping
        Call metadata for the store (``call_time``, ``agent``, ``campaign``... see
        :meth:`core.store.store.ResultStore.save_analysis`).
    files : tuple of (role, path)
        The recordings of a ``folder`` item.
    cache_key : str, optional
        Set when the parent could hash the bytes (local files); remote items are hashed in the
        worker after fetching.
    """

    call_id: str
    kind: str
    ref: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[tuple[str, str], ...] = ()
    cache_key: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"work item kind={self.kind!r}; one of {', '.join(KINDS)}")

    @classmethod
    def from_call_files(cls, call: CallFiles, *, metadata: Mapping[str, Any] | None = None) -> WorkItem:
        """A ``folder`` item for local files, with ``call_time`` from the name or the files' mtime."""
        meta = dict(metadata or {})
        meta.setdefault("call_time", call_time_of(call))
        folder = call.paths[0].parent
        return cls(call_id=call.call_id, kind="folder", ref=str(folder / call.call_id), metadata=meta,
                   files=tuple((role, str(path)) for role, path in sorted(call.files.items())))

    def call_files(self) -> CallFiles:
        return CallFiles(call_id=self.call_id, files={role: Path(p) for role, p in self.files})


def resolve_folder_item(item: WorkItem, tmp_dir: Path, settings: Settings) -> CallFiles:
    """Resolver of ``folder`` items: the files are already local."""
    return item.call_files()


def call_time_of(call: CallFiles) -> datetime:
    """When the call happened: the ViciDial FULLDATE prefix ``YYYYMMDD-HHMMSS`` of its id, else the
    oldest modification time of its files (local time, no zone)."""
    m = _FULLDATE.match(call.call_id)
    if m:
        with contextlib.suppress(ValueError):
            return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    mtimes = []
    for p in call.paths:
        with contextlib.suppress(OSError):
            mtimes.append(p.stat().st_mtime)
    return datetime.fromtimestamp(min(mtimes)) if mtimes else datetime.now()


_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """Parse a ``--since``/``--until`` value: ISO date or date-time, ``today``, ``yesterday``, or an age
    like ``30m``, ``12h``, ``7d``, ``2w`` (that long before now). Local time, no zone.

    Raises
    ------
    ParameterError
        Anything else; the message lists the accepted forms.
    """
    now = now or datetime.now()
    value = text.strip().lower()
    if value == "today":
        return datetime(now.year, now.month, now.day)
    if value == "yesterday":
        return datetime(now.year, now.month, now.day) - timedelta(days=1)
    m = _RELATIVE.match(value)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParameterError(
            f"cannot read the time {text!r}: use 2026-11-07, '2026-11-07 08:00', today, yesterday, 12h or 7d"
        ) from None
    return parsed.astimezone().replace(tzinfo=None) if parsed.tzinfo else parsed


def folder_items(folder: str | Path, *, since: datetime | None = None, until: datetime | None = None,
                 metadata: Mapping[str, Any] | None = None) -> list[WorkItem]:
    """The calls in ``folder`` (recursively), as work items in call-id order, filtered by call time
    (``since`` inclusive, ``until`` exclusive)."""
    items = []
    for call in discover_calls(folder):
        item = WorkItem.from_call_files(call, metadata=metadata)
        when = item.metadata["call_time"]
        if (since is not None and when < since) or (until is not None and when >= until):
            continue
        items.append(item)
    return items


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


# --- scanner identity, claims and temporary folders --------------------------------------------------
def _start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (distinguishes a reused pid), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_OWNER: str | None = None


def scanner_owner() -> str:
    """This process as a claim owner: ``host/pid/start-token``."""
    global _OWNER
    if _OWNER is None:
        token = _start_token(os.getpid()) or uuid.uuid4().hex[:12]
        _OWNER = f"{socket.gethostname()}/{os.getpid()}/{token}"
    return _OWNER


def owner_alive(owner: str) -> bool | None:
    """Whether the scanner ``owner`` still runs: True/False on this machine, None for another host."""
    try:
        host, pid_text, token = owner.rsplit("/", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    if Path("/proc/self/stat").exists():
        return _start_token(pid) == token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_claims(store: ResultStore) -> int:
    """Drop the claims of scanners on this machine that are no longer running."""
    n = 0
    for owner in store.claim_owners():
        if owner != scanner_owner() and owner_alive(owner) is False:
            n += store.release_owner(owner)
    return n


def make_run_dir(tmp_dir: Path) -> Path:
    """A fresh per-run folder ``callqa-run-<pid>-<token>-<random>`` under ``tmp_dir``."""
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        token = _start_token(os.getpid()) or "0"
        return Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-{token}-", dir=tmp_dir))
    except OSError as exc:
        raise ConfigError(f"cannot create a temporary folder in {tmp_dir}: {exc.strerror}") from None


def _run_dir_alive(path: Path) -> bool:
    m = re.match(rf"^{re.escape(RUN_PREFIX)}(\d+)-(\d+)-", path.name)
    if not m:
        return False
    pid, token = int(m.group(1)), m.group(2)
    current = _start_token(pid)
    return current is not None and (token == "0" or current == token)


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def cleanup_tmp(tmp_dir: Path, *, older_than_s: float = 900.0, now: float | None = None) -> list[Path]:
    """Remove leftovers in ``tmp_dir`` untouched for ``older_than_s`` seconds.

    The folder of a run whose process is still alive is kept, however old. Returns what was removed.
    """
    if not tmp_dir.is_dir():
        return []
    now = now if now is not None else time.time()
    removed = []
    for entry in sorted(tmp_dir.iterdir()):
        try:
            if _run_dir_alive(entry) or now - _newest_mtime(entry) < older_than_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot remove {entry}: {exc.strerror}") from None
    return removed


# --- quality model identity -------------------------------------------------------------------------
IDENTITY_MEMO = "quality-identity.json"


def _quality_fingerprint(settings: Settings) -> str | None:
    """What the quality model's identity depends on, from file metadata only (no torch import):
    the weights file (path, size, mtime) and the quality code (newest module)."""
    from core.quality import manager

    try:
        weights = manager.weights_path(settings).expanduser().resolve()
        stat = weights.stat()
        code = [p.stat() for p in Path(manager.__file__).parent.glob("*.py")]
    except OSError:
        return None
    newest = max((s.st_mtime_ns for s in code), default=0)
    return f"{weights}:{stat.st_size}:{stat.st_mtime_ns}:{len(code)}:{newest}"


def quality_identity(settings: Settings, enabled: bool) -> str | None:
    """The quality model's identity for cache keys (``name-version``), or None when quality is off.

    The identity is remembered in ``<data_dir>/quality-identity.json`` against a fingerprint of
    the weights file and the quality code, so a scan whose calls are all cached does not load
    torch. On a miss the model is loaded (once per process), which also checks it is usable
    before any worker starts.

    Raises
    ------
    ModelUnavailableError
        The weights are missing or corrupt.
    """
    if not enabled:
        return None
    memo_path = settings.data_dir / IDENTITY_MEMO
    fingerprint = _quality_fingerprint(settings)
    if fingerprint is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            memo = json.loads(memo_path.read_text())
            if memo["fingerprint"] == fingerprint:
                return str(memo["identity"])
    from core.quality.manager import get_quality_model

    model = get_quality_model(settings)
    identity = f"{getattr(model, 'name', 'quality')}-{model.version}"
    if fingerprint is not None:
        with contextlib.suppress(OSError):
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_path.with_name(f".{IDENTITY_MEMO}.{os.getpid()}")
            tmp.write_text(json.dumps({"fingerprint": fingerprint, "identity": identity}))
            os.replace(tmp, memo_path)
    return identity


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
    _WORKER.update(settings=settings, run_dir=Path(run_dir), resolvers=dict(resolvers), error=None, model=None,
                   vad=None)
    try:
        from core.audio.vad import get_vad

        _WORKER["vad"] = get_vad()
        if quality:
            from core.quality.manager import get_quality_model

            model = get_quality_model(settings, threads=threads)
            _WORKER["model"] = model
            _WORKER["quality_id"] = f"{getattr(model, 'name', 'quality')}-{model.version}"
        else:
            _WORKER["quality_id"] = None
    except CallQAError as exc:  # reported with the first task, which stops the scan
        _WORKER["error"] = exc


def _resolver(kind: str) -> Callable[[WorkItem, Path, Settings], CallFiles]:
    target = _WORKER.get("resolvers", RESOLVERS).get(kind)
    if target is None:
        raise ConfigError(f"no resolver for {kind!r} work items (is the ViciDial support installed?)")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def analyze_item(item: WorkItem, previous_key: str | None = None) -> _Outcome:
    """Analyse one work item in a worker process (models from the initializer)."""
    from core.pipeline import analyze_call

    if _WORKER.get("error") is not None:
        return _Outcome(item.call_id, "fatal", item.cache_key, reason=str(_WORKER["error"]), error=_WORKER["error"])
    settings: Settings = _WORKER["settings"]
    key = item.cache_key
    fetched_at = None
    try:
        call = _resolver(item.kind)(item, _WORKER["run_dir"], settings)
        if key is None:  # fetched here: hash what was fetched
            fetched_at = datetime.now(UTC).replace(tzinfo=None)
            key = cache_key(call, settings.analysis, _WORKER["quality_id"])
            if key == previous_key:
                return _Outcome(item.call_id, "unchanged", key, fetched_at=fetched_at)
        analysis = analyze_call(call, cfg=settings.analysis, quality_model=_WORKER["model"], vad=_WORKER["vad"])
        return _Outcome(item.call_id, "ok", key, analysis=analysis, fetched_at=fetched_at)
    except _FATAL as exc:
        return _Outcome(item.call_id, "fatal", key, reason=str(exc), error=exc)
    except CallQAError as exc:
        return _Outcome(item.call_id, "error", key, reason=str(exc))
    except Exception as exc:  # a bug or an unexpected library error: one call fails, the scan goes on
        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" at {Path(frame.filename).name}:{frame.lineno}" if frame else ""
        return _Outcome(item.call_id, "error", key, reason=f"unexpected {type(exc).__name__}: {exc}{where}")


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
                 scan_cfg: ScanConfig) -> None:
        self.settings = settings
        self.store = store
        self.workers = workers
        self.quality = quality
        self.quality_id = quality_id
        self.limit = limit
        self.progress = progress
        self.run_dir = run_dir
        self.cfg = scan_cfg
        self.owner = scanner_owner()
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
        if item.cache_key is not None or item.kind != "folder":
            return item.cache_key
        return cache_key(item.call_files(), self.settings.analysis, self.quality_id)

    def _fail(self, item: WorkItem, key: str | None, reason: str, *, previously: bool = False) -> None:
        if not previously:
            self.store.save_error(item.call_id, cache_key=key or "unreadable", source_ref=item.ref,
                                  reason=reason, source_kind=item.kind)
        self.failures.append(ScanFailure(item.call_id, item.ref, reason, previously))
        self.progress.message(f"failed {item.call_id}: {reason}" + (" (unchanged since it failed)"
                                                                    if previously else ""))
        self.progress.advance(outcome="failed")

    def consider(self, item: WorkItem) -> None:
        """Skip ``item`` when cached, claimed elsewhere or known bad; otherwise submit it."""
        try:
            key = self._key(item)
        except CallQAError as exc:
            self._fail(item, None, str(exc))
            return
        if key is None:  # remote: fetched and hashed in the worker unless fetched recently
            if self.store.fresh(item.call_id, max_age_s=self.cfg.remote_ttl_s):
                self.cached += 1
                self.progress.advance(outcome="cached")
                return
        elif self.store.cached(item.call_id, key):
            self.cached += 1
            self.progress.advance(outcome="cached")
            return
        else:
            reason = self.store.known_error(item.call_id, key)
            if reason is not None:
                self._fail(item, key, reason, previously=True)
                return
        if not self.store.try_claim(item.call_id, key or "remote", self.owner, self.cfg.claim_ttl_s):
            self.deferred.append(item)
            return
        if key is not None and self.store.cached(item.call_id, key):  # finished by another scanner meanwhile
            self.store.release(item.call_id, self.owner)
            self.cached += 1
            self.progress.advance(outcome="cached")
            return
        self.submit(dataclasses.replace(item, cache_key=key))

    def submit(self, item: WorkItem, *, retry: bool = False) -> None:
        previous = self.store.stored_key(item.call_id) if item.cache_key is None else None
        future = self._pool().submit(analyze_item, item, previous)
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
                self.store.save_analysis(outcome.analysis, cache_key=outcome.cache_key, source_kind=item.kind,
                                         source_ref=item.ref, metadata=item.metadata,
                                         fetched_at=outcome.fetched_at)
                self.analysed += 1
                self.audio_s += outcome.analysis.duration_s
                self.progress.advance(outcome="done", note=item.call_id)
            elif outcome.status == "unchanged":
                self.store.touch_fetched(item.call_id, fetched_at=outcome.fetched_at)
                self.cached += 1
                self.progress.advance(outcome="cached")
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
    scan_cfg = ScanConfig.from_settings(settings)
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
    since_dt = _as_datetime(since)
    until_dt = _as_datetime(until)
    items = folder_items(folder, since=since_dt, until=until_dt, metadata=metadata)
    return run_scan(settings, items, store_url=store_url, workers=workers, limit=limit, quality=quality,
                    progress=progress, source=str(folder))


def vicidial_items(settings: Settings, *, since: datetime | None = None, until: datetime | None = None,
                   campaign: str | None = None, ingroup: str | None = None, agent: str | None = None,
                   limit: int = 5000) -> list[WorkItem]:
    """Work items for the ViciDial recordings matching the filters (fetched later, in the workers).

    Raises
    ------
    ConfigError
        ViciDial is not configured.
    ViciDialError
        The database cannot be reached or refuses the query.
    """
    from core.vicidial import LookupFilters, ViciDialSettings, search_recordings, to_records

    vicidial = ViciDialSettings.from_settings(settings)
    if not vicidial.configured:
        raise ConfigError("scanning ViciDial needs a [vicidial] section in callqa.toml (host, user, password, "
                          "database) or CALLQA_VICIDIAL_HOST and friends; see callqa.toml.example")
    filters = LookupFilters(since=since, until=until, campaign=campaign, ingroup=ingroup, agent=agent)
    return items_from_vicidial_rows(to_records(search_recordings(vicidial, filters, limit=limit)))


def items_from_vicidial_rows(rows: Iterable[Mapping[str, Any]]) -> list[WorkItem]:
    """Work items for ``recording_log`` rows (rows without a filename are not analysable)."""
    from core.fetch.service import store_metadata

    return [WorkItem(call_id=str(row["filename"]), kind="vicidial", ref=str(row["recording_id"]),
                     metadata=store_metadata(row))
            for row in rows if row.get("filename") and row.get("recording_id") is not None]


def _as_datetime(value: datetime | date | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)
