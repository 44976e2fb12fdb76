"""The HTTP API under 30 concurrent analyses: wall time, latency and the server's peak RSS.

Starts a real ``callqa serve`` (uvicorn, NISQA on, ``[api] max_concurrency = 2``, ``max_queue =
64``) on a free 127.0.0.1 port with a fresh SQLite store, builds 30 calls that are not in the
store (hard links of the ``../shared/corpus`` two-leg calls under new names, so every request is
a real analysis), sends the 30 ``POST /analyze`` requests at once, and samples the server's
resident memory from ``/proc`` every 50 ms (``VmHWM`` reset before the burst, where the kernel
allows). The limiter makes the requests queue: memory grows with ``max_concurrency``, not
with the number of requests.

Usage::

    .venv/bin/python -m bench.api_bench                 # 30 requests
    .venv/bin/python -m bench.api_bench --requests 60 --concurrency 2

Prints a table and writes ``bench/results/api_bench.json``. ``make bench`` runs it after
``bench.run``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
RESULTS = ROOT / "bench" / "results"
KEY = "bench-key-" + "0123456789abcdef" * 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _calls(folder: Path, count: int) -> list[Path]:
    """``count`` fresh two-leg calls: hard links of the corpus calls under new names."""
    sources = sorted({p.name.rsplit("-", 1)[0] for p in CORPUS.glob("*-in.wav")
                      if (CORPUS / p.name.replace("-in.wav", "-out.wav")).exists()})
    if not sources:
        raise SystemExit(f"no two-leg calls in {CORPUS}")
    out = []
    for i in range(count):
        src = sources[i % len(sources)]
        name = f"20261211-{i:06d}_{src.split('_')[1]}"
        for role in ("in", "out"):
            target = folder / f"{name}-{role}.wav"
            try:
                os.link(CORPUS / f"{src}-{role}.wav", target)
            except OSError:
                target.write_bytes((CORPUS / f"{src}-{role}.wav").read_bytes())
        out.append(folder / f"{name}-in.wav")
    return out


def run(requests: int, concurrency: int, quality: bool) -> dict[str, Any]:
    base = Path(tempfile.mkdtemp(prefix="callqa-api-bench-"))
    calls_dir = base / "calls"
    calls_dir.mkdir()
    paths = _calls(calls_dir, requests)
    config = base / "callqa.toml"
    config.write_text(f"[api]\nallowed_roots = [{json.dumps(str(calls_dir))}]\nmax_concurrency = {concurrency}\n"
                      f"max_queue = {max(64, requests)}\nqueue_timeout_s = 3600\nquality = {str(quality).lower()}\n")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLQA_", "ANTHROPIC_"))}
    env.update({"CALLQA_CONFIG": str(config), "CALLQA_STORE": str(base / "store.db"), "CALLQA_API_KEY": KEY,
                "CALLQA_DATA": str(base / "data"), "CALLQA_TMP": str(base / "tmp")})
    log = (base / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port), "--log-level",
                               "warning"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"callqa serve did not start; see {base / 'serve.log'}")
            try:
                if httpx.get(f"{url}/health", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        started_mb = _status_mb(server.pid, "VmRSS")
        with httpx.Client(base_url=url, headers={"X-API-Key": KEY}, timeout=600, trust_env=False) as warm:
            warm.post("/analyze", json={"path": str(CORPUS / sorted(CORPUS.glob("*-in.wav"))[0].name)})
        baseline_mb = _status_mb(server.pid, "VmRSS")
        try:
            Path(f"/proc/{server.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            hwm_reset = True
        except OSError:
            hwm_reset = False
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(_status_mb(server.pid, "VmRSS"))
                time.sleep(0.05)

        async def fire() -> list[tuple[int, float]]:
            async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": KEY}, timeout=3600, trust_env=False,
                                         limits=httpx.Limits(max_connections=requests + 5)) as client:
                async def one(path: Path) -> tuple[int, float]:
                    t0 = time.monotonic()
                    r = await client.post("/analyze", json={"path": str(path)})
                    return r.status_code, time.monotonic() - t0
                return await asyncio.gather(*(one(p) for p in paths))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t0 = time.monotonic()
        results = asyncio.run(fire())
        wall = time.monotonic() - t0
        stop.set()
        sampler.join(timeout=5)
        peak = max([*samples, _status_mb(server.pid, "VmHWM") if hwm_reset else 0.0])
        latencies = sorted(s for _, s in results)
        return {
            "requests": requests, "max_concurrency": concurrency, "quality": quality,
            "statuses": {str(c): sum(1 for code, _ in results if code == c) for c in sorted({c for c, _ in results})},
            "wall_s": round(wall, 2), "analyses_per_min": round(60 * requests / wall, 1),
            "latency_s": {"min": round(latencies[0], 2), "median": round(statistics.median(latencies), 2),
                          "max": round(latencies[-1], 2)},
            "rss_mb": {"after_start": round(started_mb), "baseline": round(baseline_mb), "peak": round(peak),
                       "growth": round(peak - baseline_mb)},
            "peak_from_vmhwm": hwm_reset,
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=2, help="[api] max_concurrency")
    parser.add_argument("--no-quality", action="store_true")
    args = parser.parse_args(argv)
    res = run(args.requests, args.concurrency, not args.no_quality)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "api_bench.json").write_text(json.dumps(res, indent=2))
    print(f"\nAPI: {res['requests']} concurrent POST /analyze, max_concurrency {res['max_concurrency']}, "
          f"NISQA {'on' if res['quality'] else 'off'}")
    print("| statuses | wall (s) | analyses/min | latency min/median/max (s) | RSS baseline | peak | growth |")
    print("|---|---|---|---|---|---|---|")
    lat, rss = res["latency_s"], res["rss_mb"]
    print(f"| {res['statuses']} | {res['wall_s']} | {res['analyses_per_min']} | {lat['min']} / {lat['median']} / "
          f"{lat['max']} | {rss['baseline']} MB | {rss['peak']} MB | +{rss['growth']} MB |")
    return 0 if set(res["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
