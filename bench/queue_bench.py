"""Queue throughput: the corpus analysed through Redis by 1 and 2 worker processes vs the in-process scan.

For each process count N the same calls are analysed twice into fresh stores of the same kind
(PostgreSQL when one answers on 127.0.0.1:5432, else SQLite):

- **in-process**: ``callqa scan CORPUS --workers N`` (the real command line, so interpreter
  start-up, pool start and model loading are counted, as in ``bench/scan_bench.py``);
- **queue**: ``callqa worker --concurrency N`` on a private ``redis-server``, started and warmed
  up first (its start-up is reported separately), then the calls are enqueued from this process
  and timed until the last analysis is committed (``max(calls.analyzed_at)``).

Per call it reports, from the worker's log lines: the pipeline time (``analysis_s``), the time
in the task outside the pipeline (claim, hash, store writes: ``task_s - analysis_s``), Celery's
own share (``succeeded in`` minus the task's time), and the broker gap (a worker process's idle
time between acknowledging one call and starting the next, while calls were waiting); the
queue's overhead per call is their sum, plus the enqueue cost.

Usage::

    .venv/bin/python bench/queue_bench.py                    # NISQA on, 1 and 2 processes
    .venv/bin/python bench/queue_bench.py --no-quality --workers 1 2

Results are printed as a table and written to ``bench/results/queue_bench.json``.
``--sizing`` prints the sizing table of ``docs/scaling.md`` from that file (no run): cores needed
per call-minutes a day, from the measured call-minutes analysed per wall minute per process
(one process per core), at :data:`UTILISATION`, for a day averaged over 24 hours and for the busiest
hour carrying :data:`PEAK_SHARE` of the day's minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_CORPUS = Path(os.environ.get("CALLQA_SHARED", ROOT.parent / "shared")) / "corpus"
_STAMP = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}): \w+/(\S+?)\]"
_STORED = re.compile(_STAMP + r" stored (\S+): analysis_s=([\d.]+) audio_s=([\d.]+) \[task (\w+), ([\d.]+) s\]")
_RECEIVED = re.compile(_STAMP + r" Task callqa\.analyze_call\[(\w+)\] received")
_SUCCEEDED = re.compile(_STAMP + r" Task callqa\.analyze_call\[(\w+)\] succeeded in ([\d.]+)s")
_SCAN = re.compile(r"(\d+) calls: (\d+) analysed, (\d+) cached, (\d+) failed in ([\d.]+) s")
#: Daily call-minutes of the sizing table (600k: the 1,000-agent cluster of the issue).
DAILY_MINUTES = (10_000, 50_000, 100_000, 300_000, 600_000, 1_200_000)
#: Share of a day's call-minutes in its busiest hour (a ~10-hour contact-centre day with a peak).
PEAK_SHARE = 0.12
#: Plan workers to run at most this busy (headroom for long calls, restarts and retries).
UTILISATION = 0.7
MACHINE_CORES = 8


# --- infrastructure: a private Redis, throwaway stores ------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import redis

    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(200):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.RedisError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


class Stores:
    """Fresh stores: PostgreSQL databases when a server answers on 127.0.0.1:5432, else SQLite files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.created: list[str] = []
        self.pg_user = None
        try:
            import psycopg

            for user in ("postgres", "root"):
                try:
                    psycopg.connect(host="127.0.0.1", user=user, dbname="postgres", connect_timeout=3).close()
                    self.pg_user = user
                    break
                except psycopg.Error:
                    continue
        except ImportError:
            pass
        self.kind = "postgresql" if self.pg_user else "sqlite"

    def _admin(self):
        import psycopg

        return psycopg.connect(host="127.0.0.1", user=self.pg_user, dbname="postgres", autocommit=True)

    def fresh(self) -> str:
        name = f"callqa_bench_{uuid.uuid4().hex[:10]}"
        if self.pg_user is None:
            return str(self.folder / f"{name}.db")
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"postgresql://{self.pg_user}@127.0.0.1:5432/{name}"

    def query(self, url: str, sql: str) -> list[tuple]:
        if url.startswith("postgresql://"):
            import psycopg

            with psycopg.connect(url) as conn:
                return conn.execute(sql).fetchall()
        conn = sqlite3.connect(url)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def drop_all(self) -> None:
        if self.pg_user is None:
            return
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- runs -------------------------------------------------------------------------------------------------
def in_process(corpus: Path, store: str, *, workers: int, quality: bool, env: dict[str, str]) -> dict:
    """``callqa scan`` once (CLI wall time, and the scan's own elapsed time)."""
    args = [sys.executable, "-m", "core.cli", "--store", store, "scan", str(corpus), "--workers", str(workers)]
    if not quality:
        args.append("--no-quality")
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = _SCAN.search(run.stdout)
    if run.returncode != 0 or not m:
        raise SystemExit(f"scan failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"analysed": int(m.group(2)), "wall_s": wall_s, "elapsed_s": float(m.group(5)), "cpu_s": cpu}


def cpu_s(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its live children (and their waited-for children)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        this, parent = int(stat.parent.name), int(fields[1])
        if this == pid or parent == pid:
            total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
    return total


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def worker_log_figures(text: str) -> dict:
    """Per-call timings of one worker log (see the module docstring)."""
    stored = [m.groups() for m in _STORED.finditer(text)]
    succeeded = {m.group(3): (m.group(2), _stamp(m.group(1)), float(m.group(4))) for m in _SUCCEEDED.finditer(text)}
    received = {m.group(3): _stamp(m.group(1)) for m in _RECEIVED.finditer(text)}
    analysis = [float(s[3]) for s in stored]
    in_task = [float(s[6]) - float(s[3]) for s in stored]
    celery = [max(0.0, succeeded[s[5]][2] - float(s[6])) for s in stored if s[5] in succeeded]
    # idle gap of each pool process between one task's end and its next task's start
    by_process: dict[str, list[tuple[float, float]]] = {}
    for task_id, (process, end, runtime) in succeeded.items():
        start = received.get(task_id, end - runtime)
        by_process.setdefault(process, []).append((start, end))
    gaps = []
    for spans in by_process.values():
        spans.sort()
        gaps += [max(0.0, b[0] - a[1]) for a, b in zip(spans, spans[1:], strict=False)]
    return {"tasks": len(stored), "analysis_s": analysis, "in_task_s": in_task, "celery_s": celery, "gap_s": gaps,
            "audio_s": sum(float(s[4]) for s in stored)}


def through_queue(corpus: Path, store: str, stores: Stores, *, workers: int, quality: bool, env: dict[str, str],
                  folder: Path) -> dict:
    """Warm ``callqa worker --concurrency N``, enqueue the corpus, time until the last analysis is stored."""
    from core.config import load_settings
    from core.quality.manager import quality_identity
    from core.queue.enqueue import Enqueuer
    from core.work import folder_items

    log = folder / f"worker-{workers}-{uuid.uuid4().hex[:6]}.log"
    args = [sys.executable, "-m", "core.cli", "--store", store, "worker", "--concurrency", str(workers)]
    if not quality:
        args.append("--no-quality")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        while log.read_text().count(" ready (") < workers:
            if proc.poll() is not None:
                raise SystemExit(f"worker exited:\n{log.read_text()}")
            time.sleep(0.05)
        startup_s = time.perf_counter() - t0
        settings = load_settings(env["CALLQA_CONFIG"])
        items = folder_items(corpus)
        quality_identity(settings, quality)  # warm the memo, as on a running system
        cpu_before = cpu_s(proc.pid)
        with Enqueuer(settings, store_url=store, quality=quality) as enqueuer:
            started = datetime.now(UTC).replace(tzinfo=None)
            t1 = time.perf_counter()
            report = enqueuer.run(items)
            enqueue_s = time.perf_counter() - t1
        while True:
            (count, last), = stores.query(store, "SELECT count(*), max(analyzed_at) FROM calls")
            if count >= report.queued:
                break
            if proc.poll() is not None:
                raise SystemExit(f"worker exited:\n{log.read_text()}")
            time.sleep(0.05)
        if isinstance(last, str):
            last = datetime.fromisoformat(last)
        wall_s = (last - started).total_seconds()
        time.sleep(0.3)  # the last task's acknowledgement
        worker_cpu_s = cpu_s(proc.pid) - cpu_before
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    return {"analysed": report.queued, "wall_s": wall_s, "enqueue_s": enqueue_s, "startup_s": startup_s,
            "cpu_s": worker_cpu_s,
            **worker_log_figures(log.read_text())}


def per_core_throughput(rows: list[dict], *, quality: bool) -> float | None:
    """Call-minutes analysed per CPU-minute through the queue (the whole worker: pool processes, Celery,
    store writes), the lowest of the runs: what one fully used core delivers. CPU time, unlike wall time,
    hardly depends on what else the machine runs."""
    candidates = [r["queue_per_cpu"] for r in rows if r["quality"] == quality and r.get("queue_per_cpu")]
    return min(candidates) if candidates else None


def sizing(rows: list[dict]) -> list[dict]:
    """Cores (and 8-core machines) needed for each of :data:`DAILY_MINUTES`."""
    with_q, without_q = per_core_throughput(rows, quality=True), per_core_throughput(rows, quality=False)
    if with_q is None:
        raise SystemExit("no NISQA-on rows in the results: run bench/queue_bench.py first")
    out = []
    for daily in DAILY_MINUTES:
        average, peak = daily / 1440.0, daily * PEAK_SHARE / 60.0
        cores_avg = math.ceil(average / (with_q * UTILISATION))
        cores_peak = math.ceil(peak / (with_q * UTILISATION))
        out.append({"call_minutes_per_day": daily, "average_per_min": round(average, 1), "peak_per_min": round(peak),
                    "cores_24h": cores_avg, "cores_peak": cores_peak,
                    "machines_peak": math.ceil(cores_peak / MACHINE_CORES),
                    "cores_peak_no_quality": math.ceil(peak / (without_q * UTILISATION)) if without_q else None})
    return out


def print_sizing(path: Path) -> int:
    rows = json.loads(path.read_text())["rows"]
    table = sizing(rows)
    with_q, without_q = per_core_throughput(rows, quality=True), per_core_throughput(rows, quality=False)
    print(f"per core (call-minutes per CPU-minute of the whole worker): {with_q:.1f} with NISQA"
          + (f", {without_q:.1f} without" if without_q else "") + f"; planned at {UTILISATION:.0%} busy, "
          f"busiest hour = {PEAK_SHARE:.0%} of the day")
    print("| call-minutes / day | average call-min / min | busiest-hour call-min / min | cores, 24 h catch-up "
          f"| cores, real time at the peak | {MACHINE_CORES}-core workers at the peak | cores at the peak without NISQA |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        print(f"| {r['call_minutes_per_day']:,} | {r['average_per_min']:,} | {r['peak_per_min']:,} | {r['cores_24h']} "
              f"| {r['cores_peak']} | {r['machines_peak']} | {r['cores_peak_no_quality'] or '-'} |")
    return 0


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of recordings")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="process counts to compare")
    parser.add_argument("--no-quality", action="store_true", help="skip NISQA (analysis without quality)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each mode, interleaved; the fastest is kept (the machine may be shared)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "queue_bench.json")
    parser.add_argument("--sizing", action="store_true", help="print the sizing table from --out and exit")
    args = parser.parse_args(argv)
    if args.sizing:
        return print_sizing(args.out)
    if not args.corpus.is_dir():
        print(f"{args.corpus}: not a folder (set --corpus or CALLQA_SHARED)", file=sys.stderr)
        return 2
    quality = not args.no_quality
    rows = []
    with tempfile.TemporaryDirectory(prefix="callqa-qbench-") as tmp:
        folder = Path(tmp)
        redis_proc, broker = start_redis(folder)
        stores = Stores(folder)
        config = folder / "callqa.toml"
        config.write_text(f'[queue]\nbroker_url = "{broker}"\nmax_memory_per_child_mb = 0\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLQA_") or k == "CALLQA_SHARED"}
        env.update(CALLQA_CONFIG=str(config), CALLQA_TMP=str(folder / "tmp"), CALLQA_DATA=str(folder / "data"),
                   PYTHONUNBUFFERED="1")
        os.environ.update({k: env[k] for k in ("CALLQA_CONFIG", "CALLQA_TMP", "CALLQA_DATA")})
        try:
            for workers in args.workers:
                scans, queues = [], []
                for _ in range(max(1, args.repeat)):
                    scans.append(in_process(args.corpus, stores.fresh(), workers=workers, quality=quality, env=env))
                    queues.append(through_queue(args.corpus, stores.fresh(), stores, workers=workers,
                                                quality=quality, env=env, folder=folder))
                scan = min(scans, key=lambda r: r["wall_s"])
                queued = min(queues, key=lambda r: r["wall_s"])
                minutes = queued["audio_s"] / 60.0
                calls = queued["analysed"]
                overhead = (_mean(queued["in_task_s"]) + _mean(queued["celery_s"]) + _mean(queued["gap_s"])
                            + queued["enqueue_s"] / max(1, calls))
                rows.append({
                    "workers": workers, "quality": quality, "store": stores.kind, "calls": calls,
                    "call_minutes": round(minutes, 3),
                    "scan_wall_s": round(scan["wall_s"], 3), "scan_elapsed_s": round(scan["elapsed_s"], 3),
                    "scan_throughput": round(minutes / (scan["wall_s"] / 60.0), 2),
                    "scan_cpu_s": round(scan["cpu_s"], 2),
                    "scan_per_cpu": round(minutes / (scan["cpu_s"] / 60.0), 2),
                    "queue_wall_s": round(queued["wall_s"], 3), "worker_startup_s": round(queued["startup_s"], 3),
                    "queue_throughput": round(minutes / (queued["wall_s"] / 60.0), 2),
                    "queue_cpu_s": round(queued["cpu_s"], 2),
                    "queue_per_cpu": round(minutes / (queued["cpu_s"] / 60.0), 2),
                    "analysis_s_per_call": round(_mean(queued["analysis_s"]), 4),
                    "in_task_overhead_s": round(_mean(queued["in_task_s"]), 4),
                    "celery_overhead_s": round(_mean(queued["celery_s"]), 4),
                    "broker_gap_s": round(_mean(queued["gap_s"]), 4),
                    "enqueue_s_per_call": round(queued["enqueue_s"] / max(1, calls), 4),
                    "queue_overhead_s_per_call": round(overhead, 4),
                    "queue_overhead_pct": round(100 * overhead / max(1e-9, _mean(queued["analysis_s"])), 1),
                })
        finally:
            stores.drop_all()
            redis_proc.terminate()
            redis_proc.wait(timeout=10)
    header = ("procs", "quality", "store", "calls", "call-min", "scan wall s", "scan cm/min", "scan cm/cpu-min",
              "queue wall s", "queue cm/min", "queue cm/cpu-min", "worker start s", "analysis s/call",
              "overhead s/call", "overhead %")
    table = [(r["workers"], "on" if r["quality"] else "off", r["store"], r["calls"], f"{r['call_minutes']:.2f}",
              f"{r['scan_wall_s']:.2f}", f"{r['scan_throughput']:.1f}", f"{r['scan_per_cpu']:.1f}",
              f"{r['queue_wall_s']:.2f}", f"{r['queue_throughput']:.1f}", f"{r['queue_per_cpu']:.1f}",
              f"{r['worker_startup_s']:.2f}", f"{r['analysis_s_per_call']:.3f}",
              f"{r['queue_overhead_s_per_call']:.3f}", f"{r['queue_overhead_pct']:.1f}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    print(f"queue vs in-process on {args.corpus} ({os.cpu_count()} CPUs), fastest of {args.repeat} runs each; "
          "cm/min = call-minutes per wall minute, cm/cpu-min = per CPU-minute (scan: whole command incl. start-up; queue: the warm worker)")
    for line in (header, *table):
        print("  ".join(str(x).rjust(w) for x, w in zip(line, widths, strict=True)))
    print("overhead per call = in-task (claim, hash, store) + Celery + broker gap + enqueue:")
    for r in rows:
        print(f"  {r['workers']} proc: {r['in_task_overhead_s']:.4f} + {r['celery_overhead_s']:.4f} + "
              f"{r['broker_gap_s']:.4f} + {r['enqueue_s_per_call']:.4f} = {r['queue_overhead_s_per_call']:.4f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"corpus": str(args.corpus), "cpus": os.cpu_count(), "repeat": args.repeat, "rows": rows}
    if args.out.exists():  # keep the other quality setting's rows
        try:
            old = json.loads(args.out.read_text())
            doc["rows"] = [r for r in old.get("rows", []) if r.get("quality") != quality] + rows
        except (OSError, ValueError):
            pass
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"written to {args.out}")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
