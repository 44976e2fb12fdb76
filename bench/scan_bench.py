"""Scan throughput: call-minutes analysed per wall-clock minute, 1 and 2 workers, first vs cached run.

Each configuration scans the corpus with the real command line (``callqa scan``, so process
start-up, model loading and the store are all counted) into a fresh SQLite store, then scans
it again: the second run should analyse nothing and take under a tenth of the first.

Usage::

    .venv/bin/python bench/scan_bench.py                      # NISQA on, 1 and 2 workers
    .venv/bin/python bench/scan_bench.py --no-quality --workers 1 2 4
    .venv/bin/python bench/scan_bench.py --corpus /var/spool/asterisk/monitorDONE/ORIG

Results are printed as a table and written to ``bench/results/scan_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("CALLQA_SHARED", ROOT.parent / "shared")) / "corpus"
_COUNTS = re.compile(r"(\d+) calls: (\d+) analysed, (\d+) cached, (\d+) failed")


def scan_once(corpus: Path, store: Path, *, workers: int, quality: bool, env: dict[str, str]) -> dict:
    """Run ``callqa scan`` once and measure it."""
    args = [sys.executable, "-m", "core.cli", "--store", str(store), "scan", str(corpus), "--workers", str(workers)]
    if not quality:
        args.append("--no-quality")
    t0 = time.perf_counter()
    run = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    m = _COUNTS.search(run.stdout)
    if run.returncode not in (0, 3) or not m:
        raise SystemExit(f"scan failed (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    return {"exit": run.returncode, "calls": int(m.group(1)), "analysed": int(m.group(2)),
            "cached": int(m.group(3)), "failed": int(m.group(4)), "wall_s": wall_s}


def stored_minutes(store: Path) -> float:
    conn = sqlite3.connect(store)
    try:
        return (conn.execute("SELECT coalesce(sum(duration_s), 0) FROM calls").fetchone()[0] or 0.0) / 60.0
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="folder of recordings to scan")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    parser.add_argument("--no-quality", action="store_true", help="skip NISQA (analysis without quality)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scan_bench.json")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        print(f"{args.corpus}: not a folder (set --corpus or CALLQA_SHARED)", file=sys.stderr)
        return 2
    quality = not args.no_quality
    rows = []
    with tempfile.TemporaryDirectory(prefix="callqa-bench-") as tmp:
        env = {**os.environ, "CALLQA_TMP": str(Path(tmp) / "tmp"), "CALLQA_DATA": str(Path(tmp) / "data")}
        env.pop("CALLQA_STORE", None)
        for workers in args.workers:
            store = Path(tmp) / f"store-{workers}.db"
            first = scan_once(args.corpus, store, workers=workers, quality=quality, env=env)
            minutes = stored_minutes(store)
            second = scan_once(args.corpus, store, workers=workers, quality=quality, env=env)
            for name, run, analysed_min in (("first", first, minutes), ("cached", second, 0.0)):
                rows.append({
                    "workers": workers, "quality": quality, "run": name, **run,
                    "call_minutes": round(analysed_min, 3),
                    "throughput": round(analysed_min / (run["wall_s"] / 60.0), 2) if analysed_min else None,
                    "vs_first": round(run["wall_s"] / first["wall_s"], 3),
                })
    header = ("workers", "quality", "run", "calls", "analysed", "cached", "failed", "wall s", "call-min",
              "call-min/wall-min", "time vs first")
    table = [(r["workers"], "on" if r["quality"] else "off", r["run"], r["calls"], r["analysed"], r["cached"],
              r["failed"], f"{r['wall_s']:.2f}", f"{r['call_minutes']:.2f}",
              "-" if r["throughput"] is None else f"{r['throughput']:.1f}", f"{r['vs_first']:.3f}") for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *table, strict=False)]
    print(f"scan throughput on {args.corpus} ({os.cpu_count()} CPUs)")
    for line in (header, *table):
        print("  ".join(str(x).rjust(w) for x, w in zip(line, widths, strict=True)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"corpus": str(args.corpus), "cpus": os.cpu_count(), "rows": rows}, indent=2))
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
