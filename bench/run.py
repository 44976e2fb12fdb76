"""callqa vs the seed pipeline, side by side on this machine: ``make bench`` / ``python -m bench.run``.

Usage (from the project root)::

    .venv/bin/python -m bench.run                 # full run, 5 repeats (about 10 minutes on 2 cores)
    .venv/bin/python -m bench.run --quick         # 1 repeat, 1-3 minute inputs only (about 1 minute)
    .venv/bin/python -m bench.run --repeats 3 --json /tmp/bench.json
    .venv/bin/python -m bench.run --only warm,cold
    .venv/bin/python -m bench.run --wait-load 0.7     # on a shared machine: wait for quiet before each section

Sections (``--only`` picks some; all by default):

``warm``
    Each input (``bench.inputs``: 1/3/10-minute two-leg calls, a 3-minute mixed MP3) analysed by
    callqa (:func:`core.pipeline.analyze_call`, models loaded) and by the seed pipeline
    (:mod:`bench.baseline`), alternately in this process, after one untimed warm-up of each;
    wall seconds min/median/max, callqa's per-stage timings, the baseline/callqa ratio of medians.
``cold``
    A fresh interpreter importing callqa and loading both models (``python -c``), and a full
    ``callqa analyze --json`` CLI run on the 3-minute call; wall seconds and peak RSS (``wait4``).
``scan``
    :func:`core.scan.scan_folder` with 1 and 2 workers over a folder of renamed copies of the
    inputs into a fresh SQLite store each time: call-minutes per wall-minute (the report's own
    clock: listing, hashing, worker start-up and model loading included) and each worker's peak
    RSS (``VmHWM``).
``vad``
    Silero VAD variants on the 3-minute legs: callqa's ONNX sequence model with and without silence
    gating, the TorchScript model through ``get_speech_timestamps`` (the baseline's), the per-frame
    ONNX model through ``get_speech_timestamps``; seconds per audio minute.
``nisqa``
    NISQA seconds per audio minute: callqa's batched windows (speech-gated, and every window) and
    the baseline's 50 s chunks at 16 kHz.
``omp`` (not with ``--quick``)
    The warm 3-minute analysis in fresh processes with libgomp's default spin-waiting,
    ``GOMP_SPINCOUNT=10000`` and ``OMP_WAIT_POLICY=PASSIVE``, as the machine is and with one
    CPU-bound process per core added (a busy shared server).

Writes ``bench/results/latest.json`` (or ``--json PATH``) with every figure and prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "bench" / "results" / "latest.json"
SECTIONS = ("warm", "cold", "scan", "vad", "nisqa", "checks", "omp")
DEFAULT_SECTIONS = ("warm", "cold", "scan", "vad", "nisqa", "checks")  # omp only when asked (torch-only)
#: OpenMP (libgomp, torch's runtime) settings compared by the ``omp`` section; read when torch loads
OMP_VARIANTS = {"default": {}, "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
                "OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}
TARGETS = {  # performance round 2 (issue 19)
    "process_ratio": 6.0,  # whole `callqa analyze --json` process vs the seed-style pipeline (warm)
    "process_ratio_stretch": 8.0,
    "cold_start_s": 1.0,  # import + model load
    "cli_trivial_s": 0.3,  # `callqa --version`, `callqa --help`
    "warm_3m_s": 0.6,
    "warm_mix_s": 1.2,  # warm 3-minute mixed call, side split (diarization) included
    "scan_2w_cmpm": 250.0,
    "worker_rss_mb": 600.0,
    "golden_tol": 1e-4,
    "peak_rss_mb": 800.0,  # round 1: the CLI, and a 60-minute call extrapolated
}


# --- small helpers ----------------------------------------------------------------------------------
def summary(values: Sequence[float]) -> dict[str, Any]:
    """min / median / max of repeated measurements (and the raw values)."""
    vals = [float(v) for v in values]
    if not vals:
        return {"n": 0, "min": None, "median": None, "max": None, "values": []}
    return {"n": len(vals), "min": min(vals), "median": statistics.median(vals), "max": max(vals),
            "values": [round(v, 4) for v in vals]}


def fmt3(s: dict[str, Any], digits: int = 2, scale: float = 1.0) -> str:
    """``min/median/max`` of a :func:`summary`."""
    if not s or s.get("n", 0) == 0:
        return "-"
    return "/".join(f"{s[k] * scale:.{digits}f}" for k in ("min", "median", "max"))


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set of a running process (``VmHWM`` in ``/proc/<pid>/status``), MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def run_child(args: list[str], *, env: dict[str, str] | None = None, cwd: Path = ROOT) -> dict[str, Any]:
    """Run a command; return wall seconds, exit status, stdout and the child's peak RSS (MB, ``wait4``)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    return {"wall_s": wall, "exit": proc.returncode, "stdout": out.decode(errors="replace"), "stderr": stderr,
            "peak_rss_mb": usage.ru_maxrss / 1024, "user_s": usage.ru_utime, "sys_s": usage.ru_stime}


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    try:
        mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
        info["ram_gb"] = round(int(mem) / 1024 / 1024, 1)
    except (OSError, IndexError, ValueError):
        pass
    versions = {}
    for mod in ("numpy", "scipy", "torch", "onnxruntime", "soundfile", "soxr", "silero_vad"):
        try:
            from importlib.metadata import version

            versions[mod] = version(mod.replace("_", "-"))
        except Exception:  # noqa: BLE001 - a missing package is just not listed
            pass
    info["versions"] = versions
    for tool, flag in (("sox", "--version"), ("ffmpeg", "-version")):
        try:
            first = subprocess.run([tool, flag], capture_output=True, text=True).stdout.splitlines()[0]
            info[tool] = first.strip()
        except (OSError, IndexError):
            info[tool] = None
    try:
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip() or None
    except OSError:
        info["git"] = None
    return info


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# --- sections ------------------------------------------------------------------------------------------
class Models:
    """callqa's models and the baseline, loaded once for the warm sections."""

    def __init__(self, threads: int) -> None:
        import torch

        self.threads = threads
        t0 = time.perf_counter()
        from core.audio.vad import get_vad
        from core.pipeline import analyze_call  # noqa: F401  (import cost belongs to the load)
        from core.quality.manager import get_quality_model

        self.vad = get_vad()
        self.quality = get_quality_model(threads=threads)  # the active backend (ONNX when exported)
        self.load_s = time.perf_counter() - t0
        self._baseline = None
        torch.set_num_threads(threads)

    @property
    def baseline(self):
        if self._baseline is None:
            from bench.baseline import Baseline
            from core.quality.manager import get_quality_model

            # the seed ran NISQA on PyTorch: the baseline keeps the PyTorch network
            self._baseline = Baseline(get_quality_model(threads=self.threads, backend="torch"), threads=self.threads)
        return self._baseline

    def callqa_threads(self) -> None:
        import torch

        torch.set_num_threads(self.threads)

    def analyze(self, item) -> tuple[float, float, dict[str, float], Any]:
        """callqa on one input: wall s, CPU s (all threads of this process), stage timings, result."""
        from core.audio.layout import call_files_for
        from core.pipeline import analyze_call

        self.callqa_threads()
        c0, t0 = time.process_time(), time.perf_counter()
        result = analyze_call(call_files_for(item.primary), quality_model=self.quality, vad=self.vad)
        return time.perf_counter() - t0, time.process_time() - c0, dict(result.timings_s), result

    def analyze_baseline(self, item) -> tuple[float, float, dict[str, float]]:
        """The seed pipeline on one input: wall s, CPU s (this process + its sox/ffmpeg children), stages."""
        c0, k0, t0 = time.process_time(), _children_cpu(), time.perf_counter()
        base = self.baseline.analyze(item.legs)
        wall = time.perf_counter() - t0
        return wall, time.process_time() - c0 + _children_cpu() - k0, base.timings_s


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def section_warm(models: Models, inputs, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Round robin: each repeat runs every input once with callqa then with the baseline, so a
    noisy minute on a shared machine hits all inputs and both pipelines alike."""
    from core.quality.windows import plan_windows

    runs: dict[str, dict[str, list]] = {i.name: {"c": [], "cc": [], "b": [], "bc": [], "st": [], "bst": []}
                                        for i in inputs}
    results: dict[str, Any] = {}
    for item in inputs:
        log(f"warm: warm-up {item.name} ({item.duration_s / 60:.1f} min, {len(item.legs)} file(s))")
        *_, results[item.name] = models.analyze(item)  # first-call allocations, oneDNN primitives
        models.analyze_baseline(item)
    for r in range(repeats):
        log(f"warm: repeat {r + 1}/{repeats} over {len(inputs)} inputs")
        for item in inputs:
            rec = runs[item.name]
            wall, cpu, timings, results[item.name] = models.analyze(item)
            rec["c"].append(wall)
            rec["cc"].append(cpu)
            rec["st"].append(timings)
            wall, cpu, timings = models.analyze_baseline(item)
            rec["b"].append(wall)
            rec["bc"].append(cpu)
            rec["bst"].append(timings)
    out: dict[str, Any] = {}
    for item in inputs:
        rec, result = runs[item.name], results[item.name]
        windows = sum(len(leg.quality.windows) for leg in result.legs.values() if leg.quality is not None)
        possible = 0
        for leg in result.legs.values():
            n = int(round(leg.sample_rate * result.duration_s))
            possible += len(plan_windows(n, leg.sample_rate, window_s=10.0, hop_s=10.0))
        c, b = summary(rec["c"]), summary(rec["b"])
        out[item.name] = {
            "duration_s": item.duration_s, "layout": result.layout, "legs": list(result.legs),
            "callqa_s": c, "baseline_s": b,
            "callqa_cpu_s": summary(rec["cc"]), "baseline_cpu_s": summary(rec["bc"]),
            "ratio": b["median"] / c["median"] if c["median"] else None,
            "ratio_per_repeat": summary([bb / cc for bb, cc in zip(rec["b"], rec["c"], strict=True)]),
            "callqa_stages": {k: summary([s.get(k, 0.0) for s in rec["st"]]) for k in rec["st"][0]},
            "baseline_stages": {k: summary([s.get(k, 0.0) for s in rec["bst"]]) for k in rec["bst"][0]},
            "quality_windows": {"scored": windows, "planned": possible},
            "s_per_call_min": c["median"] / (item.duration_s / 60),
            "s_per_scored_window": c["median"] / windows if windows else None,
        }
    return out


def physical_limit(models: Models, inputs, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    """What the two models' work on the 3-minute call costs on one core (VAD over the gated
    stretches, NISQA over the speech-gated windows, each single-threaded, best of the repeats),
    spread over every core: a floor for the warm analysis (everything else, and any threading
    overhead, comes on top)."""
    from core.audio.layout import call_files_for, resolve_layout
    from core.audio.vad import SileroVAD, detect_speech
    from core.config import AnalysisConfig
    from core.quality.manager import get_quality_model
    from core.quality.windows import score_tracks

    item = next(i for i in inputs if i.name == "call-3m")
    cfg = AnalysisConfig()
    clips = resolve_layout(call_files_for(item.primary), cfg=cfg).tracks
    vad1 = SileroVAD(parallel=1)
    log("warm: physical limit (each model on one thread)")
    speech = {k: v.segments for k, v in detect_speech(clips, vad=vad1).items()}
    t_vad = min(timed(lambda: detect_speech(clips, vad=vad1))[0] for _ in range(max(2, repeats)))
    model1 = get_quality_model(threads=1)
    try:
        def quality() -> Any:
            return score_tracks(model1, clips, speech, window_s=cfg.quality_window_s, hop_s=cfg.quality_hop_s,
                                min_speech_s=cfg.quality_min_speech_s)

        quality()
        t_q = min(timed(quality)[0] for _ in range(max(2, repeats)))
    finally:
        get_quality_model(threads=models.threads)  # the warm runs' thread count again
    cores = os.cpu_count() or 1
    return {"input": item.name, "vad_1t_s": t_vad, "quality_1t_s": t_q, "cores": cores,
            "limit_s": (t_vad + t_q) / cores}


def linearity(warm: dict[str, Any]) -> dict[str, Any] | None:
    """Least-squares fit of warm callqa seconds against call minutes over the two-leg calls."""
    pts = [(v["duration_s"] / 60, v["callqa_s"]["median"]) for k, v in warm.items() if k.startswith("call-")]
    if len(pts) < 2:
        return None
    n = len(pts)
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for _, y in pts)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in pts)
    per_min = {f"{x:g}m": y / x for x, y in pts}
    return {"points": [{"minutes": x, "seconds": y} for x, y in pts], "slope_s_per_min": slope,
            "intercept_s": intercept, "r2": 1 - ss_res / ss_tot if ss_tot else 1.0, "s_per_call_min": per_min}


_COLD_SNIPPET = """
import json, os, resource, sys, time
t0 = time.perf_counter()
import core.pipeline
t1 = time.perf_counter()
from core.audio.vad import get_vad
get_vad()
t2 = time.perf_counter()
from core.quality.manager import get_quality_model
model = get_quality_model()
t3 = time.perf_counter()
torch_imported = "torch" in sys.modules
from core.audio.speakers import get_encoder
get_encoder()
t4 = time.perf_counter()
print(json.dumps({"import_pipeline_s": t1 - t0, "vad_load_s": t2 - t1, "nisqa_import_load_s": t3 - t2,
                  "inside_s": t3 - t0, "speaker_load_s": t4 - t3, "quality_model": model.name,
                  "quality_backend": getattr(model, "backend", "torch"),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "torch_imported": torch_imported, "pandas_imported": "pandas" in sys.modules}))
"""


_MODULES_SNIPPET = """
import json, sys
from core.pipeline import analyze_path
from core.quality.manager import get_quality_model
analyze_path(sys.argv[1], quality_model=get_quality_model())
heavy = ("pandas", "matplotlib", "plotly", "altair", "streamlit", "librosa", "torchaudio", "silero_vad", "sklearn")
print(json.dumps({"loaded": [m for m in heavy if m in sys.modules], "modules": len(sys.modules)}))
"""


def section_cold(inputs, repeats: int, log: Callable[[str], None], env: dict[str, str]) -> dict[str, Any]:
    item = next(i for i in inputs if i.name == "call-3m")
    starts, inner = [], []
    for r in range(repeats):
        log(f"cold: import + model load, fresh interpreter {r + 1}/{repeats}")
        run = run_child([sys.executable, "-c", _COLD_SNIPPET], env=env)
        if run["exit"] != 0:
            raise SystemExit(f"cold start failed:\n{run['stderr']}")
        starts.append(run)
        inner.append(json.loads(run["stdout"].strip().splitlines()[-1]))
    def cli_runs(label: str, run_env: dict[str, str]) -> list[dict[str, Any]]:
        runs = []
        for r in range(repeats):
            log(f"cold: callqa analyze --json {item.name}{label} {r + 1}/{repeats}")
            run = run_child([sys.executable, "-m", "core.cli", "analyze", str(item.primary), "--json"], env=run_env)
            if run["exit"] != 0:
                raise SystemExit(f"callqa analyze failed ({run['exit']}):\n{run['stderr'][-2000:]}")
            run["timings_s"] = json.loads(run["stdout"])["timings_s"]
            runs.append(run)
        return runs

    def cli_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "input": item.name,
            "wall_s": summary([r["wall_s"] for r in runs]),
            "peak_rss_mb": summary([r["peak_rss_mb"] for r in runs]),
            "cpu_s": summary([r["user_s"] + r["sys_s"] for r in runs]),
            "stages_s": {k: summary([r["timings_s"].get(k, 0.0) for r in runs]) for k in runs[0]["timings_s"]},
        }

    clis = cli_runs("", env)
    seed_runs = []
    for r in range(repeats):
        log(f"cold: the seed-style pipeline as a whole process on {item.name} {r + 1}/{repeats}")
        run = run_child([sys.executable, "-m", "bench.baseline", *map(str, item.legs)], env=env)
        if run["exit"] != 0:
            raise SystemExit(f"python -m bench.baseline failed:\n{run['stderr'][-2000:]}")
        seed_runs.append(run)
    script = Path(sys.executable).with_name("callqa")
    base_cmd = [str(script)] if script.exists() else [sys.executable, "-m", "core.cli"]
    trivial: dict[str, Any] = {}
    for flag in ("--version", "--help"):
        walls = []
        for r in range(repeats):
            log(f"cold: callqa {flag} {r + 1}/{repeats}")
            run = run_child([*base_cmd, flag], env=env)
            if run["exit"] != 0:
                raise SystemExit(f"callqa {flag} failed:\n{run['stderr'][-2000:]}")
            walls.append(run["wall_s"])
        trivial[flag] = summary(walls)
    rss_by_length: dict[str, Any] = {}
    for other in inputs:
        if other.kind != "channel":
            continue
        log(f"cold: peak RSS of callqa analyze {other.name}")
        run = run_child([sys.executable, "-m", "core.cli", "analyze", str(other.primary), "--json"], env=env)
        if run["exit"] == 0:
            rss_by_length[other.name] = {"minutes": other.duration_s / 60, "peak_rss_mb": run["peak_rss_mb"],
                                         "wall_s": run["wall_s"]}
    log("cold: which heavy modules a full analysis imports")
    probe = run_child([sys.executable, "-c", _MODULES_SNIPPET, str(next(i for i in inputs if i.name == "call-1m").primary)],
                      env=env)
    heavy = json.loads(probe["stdout"].strip().splitlines()[-1]) if probe["exit"] == 0 else {"error": probe["stderr"]}
    return {
        "start": {
            "wall_s": summary([r["wall_s"] for r in starts]),
            "peak_rss_mb": summary([r["peak_rss_mb"] for r in starts]),
            "breakdown_s": {k: summary([i[k] for i in inner])
                            for k in ("import_pipeline_s", "vad_load_s", "nisqa_import_load_s", "inside_s",
                                      "speaker_load_s")},
            "pandas_imported": any(i["pandas_imported"] for i in inner),
            "torch_imported": any(i["torch_imported"] for i in inner),
            "quality_backend": inner[0]["quality_backend"],
        },
        "cli_analyze": cli_summary(clis),
        "seed_process": {"input": item.name, "wall_s": summary([r["wall_s"] for r in seed_runs]),
                         "peak_rss_mb": summary([r["peak_rss_mb"] for r in seed_runs])},
        "cli_trivial": trivial,
        "modules_after_analysis": heavy,
        "rss_by_length": rss_by_length,
    }


class _WorkerWatch:
    """Polls the peak RSS (VmHWM) of this process's multiprocessing children while a scan runs."""

    def __init__(self, interval_s: float = 0.1) -> None:
        self.interval_s = interval_s
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        import multiprocessing

        while not self._stop.is_set():
            for child in multiprocessing.active_children():
                if child.pid is None:
                    continue
                hwm = vm_hwm_mb(child.pid)
                if hwm is not None:
                    self.peaks[child.pid] = max(hwm, self.peaks.get(child.pid, 0.0))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> _WorkerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def section_scan(inputs, repeats: int, copies: int, workers_list: Sequence[int], work: Path,
                 log: Callable[[str], None]) -> dict[str, Any]:
    from bench.inputs import copy_for_scan
    from core.config import load_settings
    from core.scan import scan_folder

    folder = work / "scan-folder"
    if folder.exists():
        shutil.rmtree(folder)
    call_s = copy_for_scan(inputs, folder, copies)
    n_calls = copies * len(inputs)
    saved = {k: os.environ.get(k) for k in ("CALLQA_DATA", "CALLQA_TMP", "CALLQA_STORE")}
    os.environ["CALLQA_DATA"] = str(work / "scan-data")
    os.environ["CALLQA_TMP"] = str(work / "scan-tmp")
    os.environ.pop("CALLQA_STORE", None)
    out: dict[str, Any] = {"calls": n_calls, "call_minutes": call_s / 60, "copies": copies}
    try:
        settings = load_settings(None)
        for workers in workers_list:
            rows = []
            for r in range(repeats):
                store = work / f"scan-{workers}-{r}.db"
                store.unlink(missing_ok=True)
                log(f"scan: {workers} worker(s), {n_calls} calls / {call_s / 60:.1f} call-min, run {r + 1}/{repeats}")
                c0, k0 = time.process_time(), _children_cpu()
                with _WorkerWatch() as watch:
                    report = scan_folder(settings, folder, store_url=str(store), workers=workers)
                parent_cpu, worker_cpu = time.process_time() - c0, _children_cpu() - k0
                if report.failed or report.analysed != n_calls:
                    raise SystemExit(f"scan analysed {report.analysed}/{n_calls}: {report.failed}")
                cpu_per_min = (parent_cpu + worker_cpu) / (report.audio_s / 60)
                cores = min(os.cpu_count() or 1, workers * max(1, (os.cpu_count() or 1) // workers))
                rows.append({"elapsed_s": report.elapsed_s, "audio_s": report.audio_s,
                             "cmpm": report.throughput, "worker_peak_rss_mb": sorted(watch.peaks.values()),
                             "parent_cpu_s": parent_cpu, "worker_cpu_s": worker_cpu,
                             "cpu_s_per_call_min": cpu_per_min,
                             # what the CPU work alone allows on this many idle cores
                             "cores": cores, "cpu_bound_cmpm": cores * 60.0 / cpu_per_min})
                store.unlink(missing_ok=True)
            out[f"{workers}w"] = {
                "workers": workers,
                "call_min_per_wall_min": summary([r["cmpm"] for r in rows]),
                "elapsed_s": summary([r["elapsed_s"] for r in rows]),
                "worker_peak_rss_mb": summary([max(r["worker_peak_rss_mb"] or [0.0]) for r in rows]),
                "cpu_s_per_call_min": summary([r["cpu_s_per_call_min"] for r in rows]),
                "cpu_bound_cmpm": summary([r["cpu_bound_cmpm"] for r in rows]),
                "runs": rows,
            }
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(folder, ignore_errors=True)
    return out


def section_vad(models: Models, inputs, repeats: int, log: Callable[[str], None], *, per_frame: bool) -> dict:
    import numpy as np
    import soxr
    import torch

    from core.audio.io import load_mono
    from core.audio.vad import SileroVAD, detect_speech

    item = next(i for i in inputs if i.name == "call-3m")
    clips = {role: load_mono(p) for role, p in zip(("caller", "agent"), item.legs, strict=True)}
    audio_min = sum(c.duration_s for c in clips.values()) / 60
    x16 = {k: soxr.resample(c.samples, c.sample_rate, 16000).astype(np.float32) for k, c in clips.items()}
    from concurrent.futures import ThreadPoolExecutor

    vad2 = SileroVAD(threads=2)
    pool = ThreadPoolExecutor(max_workers=len(clips))

    def legs_in_parallel() -> None:
        # what core.audio.vad.detect_speech could do: one leg per thread (onnxruntime releases the GIL)
        list(pool.map(lambda kv: detect_speech({kv[0]: kv[1]}, vad=models.vad), clips.items()))

    variants: dict[str, Callable[[], Any]] = {
        "onnx_sequence_gated_1t (callqa)": lambda: detect_speech(clips, vad=models.vad),
        "onnx_sequence_ungated_1t": lambda: detect_speech(clips, vad=models.vad, gate=False),
        "onnx_sequence_gated_2t": lambda: detect_speech(clips, vad=vad2),
        "onnx_sequence_gated_1t_legs_in_2_threads": legs_in_parallel,
    }
    base = models.baseline

    def torchscript() -> None:
        torch.set_num_threads(1)
        for x in x16.values():
            base.vad_segments(x)

    variants["torchscript_per_frame_1t (baseline)"] = torchscript
    if per_frame:
        from silero_vad import get_speech_timestamps, load_silero_vad

        onnx_frame = load_silero_vad(onnx=True)

        def onnx_per_frame() -> None:
            for x in x16.values():
                get_speech_timestamps(torch.from_numpy(x), onnx_frame, sampling_rate=16000)

        variants["onnx_per_frame (silero OnnxWrapper)"] = onnx_per_frame
    out: dict[str, Any] = {"input": item.name, "audio_min": audio_min}
    for name, fn in variants.items():
        log(f"vad: {name}")
        fn()
        times = [timed(fn)[0] for _ in range(repeats)]
        s = summary(times)
        out[name] = {"seconds": s, "s_per_audio_min": summary([t / audio_min for t in times])}
    pool.shutdown()
    models.callqa_threads()
    return out


def section_nisqa(models: Models, inputs, repeats: int, log: Callable[[str], None]) -> dict[str, Any]:
    import numpy as np
    import soundfile as sf

    from bench.baseline import sox_resample
    from core.audio.io import load_mono
    from core.audio.vad import detect_speech
    from core.quality.windows import score_tracks
    from core.results import Interval

    item = next(i for i in inputs if i.name == "call-3m")
    clips = {role: load_mono(p) for role, p in zip(("caller", "agent"), item.legs, strict=True)}
    audio_min = sum(c.duration_s for c in clips.values()) / 60
    speech = {k: v.segments for k, v in detect_speech(clips, vad=models.vad, min_silence_ms=250, speech_pad_ms=0).items()}
    everything = {k: [Interval(0.0, c.duration_s)] for k, c in clips.items()}
    chunks = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in item.legs:
            target = Path(tmp) / f"{p.stem}-16k.wav"
            sox_resample(p, target)
            x, rate = sf.read(str(target), dtype="float32")
            chunks += [(x[s: s + 50 * rate], rate) for s in range(0, len(x), 50 * rate)]
    model = models.quality
    models.callqa_threads()

    def windowed(spans) -> Callable[[], Any]:
        return lambda: score_tracks(model, clips, spans, window_s=10.0, hop_s=10.0, min_speech_s=3.0)

    def chunked() -> None:
        for c in chunks:
            model.score_batch([c])

    kept = sum(len(q.windows) for q, _ in score_tracks(model, clips, speech, window_s=10.0, hop_s=10.0).values() if q)
    total = sum(len(q.windows) for q, _ in score_tracks(model, clips, everything, window_s=10.0, hop_s=10.0).values() if q)
    out: dict[str, Any] = {"input": item.name, "audio_min": audio_min, "threads": models.threads,
                           "windows_kept": kept, "windows_total": total}
    for name, fn in (("callqa_windows_speech_gated", windowed(speech)), ("callqa_windows_all", windowed(everything)),
                     ("baseline_50s_chunks_16k", chunked)):
        log(f"nisqa: {name}")
        fn()
        times = [timed(fn)[0] for _ in range(repeats)]
        out[name] = {"seconds": summary(times), "s_per_audio_min": summary([t / audio_min for t in times])}
    out["speech_s"] = {k: float(np.sum([s.duration_s for s in v])) for k, v in speech.items()}
    return out


def section_checks(log: Callable[[str], None]) -> dict[str, Any]:
    """Same outputs as before: the active quality model (ONNX Runtime when its export is installed)
    on the golden NISQA clips against the official scores, and every corpus call's findings with
    the active model against the PyTorch reference implementation (the source of truth)."""
    import csv

    from core.audio.io import load_mono
    from core.audio.layout import call_files_for
    from core.pipeline import analyze_call
    from core.quality.manager import get_quality_model, weights_path
    from core.quality.nisqa import load_nisqa

    shared = Path(os.environ.get("CALLQA_SHARED", str(ROOT.parent / "shared")))
    out: dict[str, Any] = {}
    model = get_quality_model()
    backend = getattr(model, "backend", "torch")
    ref_csv = shared / "golden" / "nisqa" / "nisqa_reference.csv"
    if ref_csv.exists():
        log("checks: golden NISQA clips")
        with ref_csv.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        clips = [load_mono(ref_csv.parent / "clips" / r["file"]) for r in rows]
        scores = model.score_batch([(c.samples, c.sample_rate) for c in clips])
        cols = {"mos_pred": "mos", "noi_pred": "noisiness", "dis_pred": "discontinuity", "col_pred": "coloration",
                "loud_pred": "loudness"}
        diff = max(abs(getattr(sc, f) - float(r[c])) for r, sc in zip(rows, scores, strict=True) for c, f in cols.items())
        out["golden"] = {"clips": len(rows), "max_abs_diff": diff, "backend": backend}
    labels = shared / "corpus" / "labels.json"
    if labels.exists():
        reference = load_nisqa(weights_path())
        calls = json.loads(labels.read_text())["calls"]
        differing, analyses, mos_diff, details = 0, 0, 0.0, []
        for call in calls:
            for role in ("in", "mp3"):
                if role not in call["files"]:
                    continue
                log(f"checks: findings of {call['call_id']} ({role}), {backend} vs torch")
                files = call_files_for(labels.parent / call["files"][role])
                a = analyze_call(files, quality_model=model).as_dict()
                b = analyze_call(files, quality_model=reference).as_dict()

                def key(doc: dict) -> list[tuple]:
                    return sorted((f["code"], f["leg"] or "", f["severity"]) for f in doc["findings"])

                analyses += 1
                if key(a) != key(b):
                    differing += 1
                    details.append({"call": call["call_id"], "role": role, "active": key(a), "torch": key(b)})
                for leg, doc in a["legs"].items():
                    qa, qb = doc.get("quality"), b["legs"][leg].get("quality")
                    if qa and qb:
                        mos_diff = max(mos_diff, abs(qa["mos"] - qb["mos"]))
        out["findings"] = {"analyses": analyses, "differing": differing, "max_mos_diff": mos_diff,
                           "details": details, "backend": backend}
    return out


_WARM_SNIPPET = """
import json, sys, time
from core.audio.layout import call_files_for
from core.audio.vad import get_vad
from core.pipeline import analyze_call
from core.quality.manager import get_quality_model
model, vad = get_quality_model(), get_vad()
call = call_files_for(sys.argv[1])
analyze_call(call, quality_model=model, vad=vad)
walls, quality = [], []
for _ in range(int(sys.argv[2])):
    t0 = time.perf_counter()
    result = analyze_call(call, quality_model=model, vad=vad)
    walls.append(time.perf_counter() - t0)
    quality.append(result.timings_s["quality"])
print(json.dumps({"wall_s": walls, "quality_s": quality}))
"""


def section_omp(inputs, repeats: int, log: Callable[[str], None], env: dict[str, str]) -> dict[str, Any]:
    """Warm 3-minute analyses in fresh processes under each OpenMP setting, on a quiet and a busy machine.

    "busy" adds two CPU-bound processes (one per core), as when the scan, the dashboard and other
    jobs share the box: libgomp's default spin-waiting then makes the 2-thread NISQA much slower.
    """
    item = next(i for i in inputs if i.name == "call-3m")
    out: dict[str, Any] = {"input": item.name}
    for condition in ("as is", "busy (+2 CPU burners)"):
        burners: list[subprocess.Popen] = []
        if condition.startswith("busy"):
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 2)]
        try:
            for name, extra in OMP_VARIANTS.items():
                log(f"omp: {condition}, {name}")
                run = run_child([sys.executable, "-c", _WARM_SNIPPET, str(item.primary), str(repeats)],
                                env={**env, **extra})
                if run["exit"] != 0:
                    raise SystemExit(f"omp run failed:\n{run['stderr'][-2000:]}")
                data = json.loads(run["stdout"].strip().splitlines()[-1])
                out.setdefault(condition, {})[name] = {"wall_s": summary(data["wall_s"]),
                                                       "quality_s": summary(data["quality_s"])}
        finally:
            for b in burners:
                b.kill()
            for b in burners:
                b.wait()
    return out


# --- the report ---------------------------------------------------------------------------------------
def targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, computed from this run's medians (RSS: maxima)."""
    rows: list[dict[str, Any]] = []

    def row(target: str, value: float | None, unit: str, met: bool | None) -> None:
        rows.append({"target": target, "value": value, "unit": unit, "met": bool(met) if value is not None else False})

    cold = res.get("cold") or {}
    pr = cold.get("process_ratio")
    if pr:
        row(f"whole process `callqa analyze --json` call-3m >= {TARGETS['process_ratio']:g}x faster than the "
            f"seed-style pipeline's process (stretch {TARGETS['process_ratio_stretch']:g}x)", pr["ratio"],
            f"x ({pr['baseline_s']:.2f} s / {pr['callqa_process_s']:.2f} s; stretch "
            f"{'met' if pr['ratio'] >= TARGETS['process_ratio_stretch'] else 'at ' + format(pr['ratio'] / TARGETS['process_ratio_stretch'], '.0%')})",
            pr["ratio"] >= TARGETS["process_ratio"])
    if cold:
        v = cold["start"]["wall_s"]["median"]
        row(f"import + model load <= {TARGETS['cold_start_s']:g} s", v, "s (median, fresh interpreter)",
            v <= TARGETS["cold_start_s"])
        for flag, t in cold.get("cli_trivial", {}).items():
            row(f"callqa {flag} <= {TARGETS['cli_trivial_s']:g} s", t["median"], "s (median)",
                t["median"] <= TARGETS["cli_trivial_s"])
        v = cold["cli_analyze"]["peak_rss_mb"]["max"]
        row(f"peak RSS <= {TARGETS['peak_rss_mb']:g} MB (full CLI analyze)", v, "MB (max)", v <= TARGETS["peak_rss_mb"])
    warm = res.get("warm", {})
    if "call-3m" in warm:
        v = warm["call-3m"]["callqa_s"]["median"]
        row(f"warm 3-min two-leg call <= {TARGETS['warm_3m_s']:g} s", v, "s (median)", v <= TARGETS["warm_3m_s"])
    if "mix-3m" in warm:
        v = warm["mix-3m"]["callqa_s"]["median"]
        row(f"warm 3-min mixed call with diarization <= {TARGETS['warm_mix_s']:g} s", v, "s (median)",
            v <= TARGETS["warm_mix_s"])
    scan = res.get("scan")
    if scan and "2w" in scan:
        v = scan["2w"]["call_min_per_wall_min"]["median"]
        row(f"scan >= {TARGETS['scan_2w_cmpm']:g} call-min per wall-min, 2 workers", v, "(median)",
            v >= TARGETS["scan_2w_cmpm"])
        v = scan["2w"]["worker_peak_rss_mb"]["max"]
        row(f"peak RSS per scan worker <= {TARGETS['worker_rss_mb']:g} MB", v, "MB (max)", v <= TARGETS["worker_rss_mb"])
    checks = res.get("checks") or {}
    golden = checks.get("golden")
    if golden:
        row(f"NISQA outputs unchanged: golden clips within {TARGETS['golden_tol']:g} of the official scores",
            golden["max_abs_diff"], f"max |diff| over {golden['clips']} clips x 5 outputs [{golden['backend']}]",
            golden["max_abs_diff"] <= TARGETS["golden_tol"])
    same = checks.get("findings")
    if same:
        row("findings unchanged on the corpus (active quality backend vs the PyTorch reference)",
            float(same["differing"]), f"analyses differ of {same['analyses']} (max |MOS diff| {same['max_mos_diff']:.1e})",
            same["differing"] == 0)
    lin = res.get("linearity")
    if lin and "10m" in lin["s_per_call_min"]:
        per = lin["s_per_call_min"]
        growth = per["10m"] / min(per.values())
        row("cost at most linear in call length (s per call-min at 10 min <= 1.15x the lowest)", growth,
            f"x, R2 of the linear fit {lin['r2']:.3f}", growth <= 1.15)
    rss = cold.get("rss_by_length")
    if rss and len(rss) >= 2 and max(v["minutes"] for v in rss.values()) >= 10:
        # growth between the two longest calls: short calls are dominated by fixed costs (model
        # buffers, NISQA batches filling up) and overstate the slope
        xs = sorted((v["minutes"], v["peak_rss_mb"]) for v in rss.values())
        slope = (xs[-1][1] - xs[-2][1]) / (xs[-1][0] - xs[-2][0])
        v = xs[-1][1] + slope * (60 - xs[-1][0])
        row(f"peak RSS <= {TARGETS['peak_rss_mb']:g} MB for a 60-minute call (ViciDial's cap), extrapolated", v,
            f"MB ({slope:.1f} MB per call-min)", v <= TARGETS["peak_rss_mb"])
    return rows


def render(res: dict[str, Any]) -> str:
    lines: list[str] = []
    m = res["machine"]
    lines.append(f"callqa bench  {res['started']}  git {m.get('git')}  repeats {res['repeats']}"
                 f"{'  (quick)' if res['quick'] else ''}")
    lines.append(f"machine: {m.get('cpu')}, {m['cpus']} CPUs, {m.get('ram_gb')} GB; torch threads {res['threads']}; "
                 f"load avg {res['load_before']} -> {res['load_after']}"
                 + (f"; env {res['env']}" if res.get("env") else ""))
    lines.append("figures are min/median/max over the repeats")
    warm = res.get("warm")
    if warm:
        lines.append("")
        lines.append("WARM ANALYSIS (models loaded), wall s")
        lines.append(f"{'input':10}{'call min':>9}  {'callqa':>20}  {'baseline (seed)':>22}  {'speed-up':>9}"
                     f"  {'paired':>16}  {'callqa s/call-min':>17}  {'CPU s callqa | seed':>20}  windows")
        for name, v in warm.items():
            cpu = f"{v['callqa_cpu_s']['median']:.2f} | {v['baseline_cpu_s']['median']:.2f}"
            lines.append(f"{name:10}{v['duration_s'] / 60:>9.2f}  {fmt3(v['callqa_s'], 3):>20}  "
                         f"{fmt3(v['baseline_s'], 2):>22}  {v['ratio']:>8.1f}x  {fmt3(v['ratio_per_repeat'], 1):>16}"
                         f"  {v['s_per_call_min']:>17.3f}"
                         f"  {cpu:>20}  {v['quality_windows']['scored']}/{v['quality_windows']['planned']}")
        lines.append("  speed-up = median seed / median callqa; paired = seed/callqa of each back-to-back repeat; "
                     "windows = NISQA windows scored/planned")
        stages = list(dict.fromkeys(k for v in warm.values() for k in v["callqa_stages"]))
        lines.append("")
        lines.append("callqa per stage, median s: " + ", ".join(stages))
        for name, v in warm.items():
            lines.append(f"  {name:10}" + " ".join(f"{s}={v['callqa_stages'][s]['median']:.3f}" for s in stages
                                                  if s in v["callqa_stages"]))
        bstages = list(next(iter(warm.values()))["baseline_stages"])
        lines.append("baseline per stage, median s: " + ", ".join(bstages))
        for name, v in warm.items():
            lines.append(f"  {name:10}" + " ".join(f"{s}={v['baseline_stages'][s]['median']:.3f}" for s in bstages))
    lim = res.get("limit")
    if lim and warm and lim["input"] in warm:
        w = warm[lim["input"]]["callqa_s"]["median"]
        lines.append(f"physical limit on {lim['input']}: VAD {lim['vad_1t_s']:.3f} s + NISQA {lim['quality_1t_s']:.3f} s "
                     f"on one thread = {lim['vad_1t_s'] + lim['quality_1t_s']:.3f} CPU-s, over {lim['cores']} cores "
                     f"{lim['limit_s']:.3f} s; callqa warm {w:.3f} s = {w / lim['limit_s']:.2f}x that floor")
    lin = res.get("linearity")
    if lin:
        per = ", ".join(f"{k} {v:.3f}" for k, v in lin["s_per_call_min"].items())
        lines.append(f"linearity: s per call-minute {per}; fit {lin['intercept_s']:.3f} s + "
                     f"{lin['slope_s_per_min']:.3f} s/min, R2 {lin['r2']:.4f}")
    cold = res.get("cold")
    if cold:
        st, cli = cold["start"], cold["cli_analyze"]
        lines.append("")
        lines.append("COLD (fresh process)")
        lines.append(f"  import + model load: wall {fmt3(st['wall_s'])} s, peak RSS {fmt3(st['peak_rss_mb'], 0)} MB "
                     f"(inside: import {fmt3(st['breakdown_s']['import_pipeline_s'])}, VAD "
                     f"{fmt3(st['breakdown_s']['vad_load_s'])}, NISQA import+load "
                     f"{fmt3(st['breakdown_s']['nisqa_import_load_s'])} [{st.get('quality_backend')}]; "
                     f"torch imported: {st.get('torch_imported')}; pandas imported: {st['pandas_imported']}; "
                     f"speaker model load after it {fmt3(st['breakdown_s'].get('speaker_load_s', {}), 3)})")
        lines.append(f"  callqa analyze --json {cli['input']}: wall {fmt3(cli['wall_s'])} s, "
                     f"CPU {fmt3(cli['cpu_s'])} s, peak RSS {fmt3(cli['peak_rss_mb'], 0)} MB")
        lines.append("    stages (median s): " + ", ".join(f"{k} {v['median']:.3f}" for k, v in cli["stages_s"].items()))
        for flag, v in cold.get("cli_trivial", {}).items():
            lines.append(f"  callqa {flag}: wall {fmt3(v, 3)} s")
        if cold.get("process_ratio"):
            pr = cold["process_ratio"]
            seed = cold["seed_process"]
            lines.append(f"  seed-style pipeline as a whole process (python -m bench.baseline): wall "
                         f"{fmt3(seed['wall_s'])} s, peak RSS {fmt3(seed['peak_rss_mb'], 0)} MB")
            lines.append(f"  whole process vs whole process: {pr['ratio']:.1f}x "
                         f"({pr['baseline_s']:.2f} s / {pr['callqa_process_s']:.2f} s)")
        if cold.get("rss_by_length"):
            lines.append("  peak RSS of one CLI analysis by call length: " + ", ".join(
                f"{k} {v['peak_rss_mb']:.0f} MB" for k, v in cold["rss_by_length"].items()))
        mods = cold.get("modules_after_analysis", {})
        if "loaded" in mods:
            lines.append(f"  heavy modules imported by a full analysis: {', '.join(mods['loaded']) or 'none'} "
                         f"({mods['modules']} modules in all)")
    scan = res.get("scan")
    if scan:
        lines.append("")
        lines.append(f"SCAN ({scan['calls']} calls, {scan['call_minutes']:.1f} call-min, fresh store per run)")
        for key in ("1w", "2w", "3w", "4w"):
            if key in scan:
                v = scan[key]
                lines.append(f"  {v['workers']} worker(s): {fmt3(v['call_min_per_wall_min'], 1)} call-min/wall-min, "
                             f"elapsed {fmt3(v['elapsed_s'])} s, worker peak RSS {fmt3(v['worker_peak_rss_mb'], 0)} MB")
                cores = v["runs"][0]["cores"]
                lines.append(f"      CPU {fmt3(v['cpu_s_per_call_min'], 3)} s per call-min (workers + parent): "
                             f"{fmt3(v['cpu_bound_cmpm'], 0)} call-min/wall-min if its {cores} core(s) were idle")
    vad = res.get("vad")
    if vad:
        lines.append("")
        lines.append(f"VAD on {vad['input']} legs ({vad['audio_min']:.1f} audio min): s per audio minute")
        for k, v in vad.items():
            if isinstance(v, dict) and "s_per_audio_min" in v:
                lines.append(f"  {k:40} {fmt3(v['s_per_audio_min'], 4)}")
    nq = res.get("nisqa")
    if nq:
        lines.append("")
        lines.append(f"NISQA on {nq['input']} legs ({nq['audio_min']:.1f} audio min, {nq['threads']} threads; "
                     f"windows kept {nq['windows_kept']}/{nq['windows_total']}): s per audio minute")
        for k, v in nq.items():
            if isinstance(v, dict) and "s_per_audio_min" in v:
                lines.append(f"  {k:40} {fmt3(v['s_per_audio_min'], 4)}")
    omp = res.get("omp")
    if omp:
        lines.append("")
        lines.append(f"OPENMP WAIT POLICY: warm {omp['input']} analysis in a fresh process, wall s (quality stage s)")
        for condition, variants in omp.items():
            if not isinstance(variants, dict):
                continue
            lines.append(f"  {condition}")
            for name, v in variants.items():
                lines.append(f"    {name:26} {fmt3(v['wall_s'], 3)}  ({fmt3(v['quality_s'], 3)})")
    checks = res.get("checks")
    if checks:
        lines.append("")
        lines.append("CHECKS (outputs unchanged)")
        if "golden" in checks:
            g = checks["golden"]
            lines.append(f"  golden NISQA clips [{g['backend']}]: max |diff| to the official scores {g['max_abs_diff']:.2e} "
                         f"over {g['clips']} clips")
        if "findings" in checks:
            f = checks["findings"]
            lines.append(f"  corpus findings [{f['backend']} vs torch]: {f['analyses'] - f['differing']}/{f['analyses']} "
                         f"analyses identical, max |MOS diff| {f['max_mos_diff']:.1e}")
            for d in f["details"]:
                lines.append(f"    differs: {d['call']} ({d['role']}): {d['active']} vs {d['torch']}")
    if res.get("targets"):
        lines.append("")
        lines.append("TARGETS")
        for t in res["targets"]:
            v = t["value"]
            val = "-" if v is None else (f"{v:.3f}" if v == 0 or abs(v) >= 0.01 else f"{v:.2e}")
            lines.append(f"  [{'met' if t['met'] else 'NOT met':7}] {t['target']}: {val} {t['unit']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat, no 10-minute call, 1 scan copy, no per-frame ONNX VAD (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per figure (default 5, --quick 1)")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"where to write the figures ({DEFAULT_JSON})")
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS),
                        help=f"comma-separated sections: {','.join(SECTIONS)} (default: all but omp)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the warm NISQA runs (default 2)")
    parser.add_argument("--scan-copies", type=int, default=None, help="copies of each input in the scan folder")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="scan worker counts")
    parser.add_argument("--wait-load", type=float, default=None, metavar="LOAD",
                        help="before each section, wait (up to --max-wait s) for the 1-minute load average to "
                             "drop below LOAD (e.g. 0.5 on a shared machine)")
    parser.add_argument("--max-wait", type=float, default=600.0, help="seconds to wait for --wait-load (600)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    repeats = args.repeats or (1 if args.quick else 5)
    copies = args.scan_copies or (1 if args.quick else 2)

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {loadavg()[0] if loadavg() else '?'}] {msg}", file=sys.stderr,
              flush=True)

    waits: list[dict[str, Any]] = []

    def settle(section: str) -> None:
        if args.wait_load is None:
            return
        t0 = time.perf_counter()
        while (loadavg() or [0.0])[0] >= args.wait_load and time.perf_counter() - t0 < args.max_wait:
            time.sleep(5)
        waited = time.perf_counter() - t0
        waits.append({"section": section, "waited_s": round(waited, 1), "load": loadavg()})
        if waited > 1:
            log(f"waited {waited:.0f} s for load < {args.wait_load} before {section}")

    from bench.inputs import build_inputs

    log("building inputs (bench/results/inputs)")
    inputs = build_inputs()
    if args.quick:
        inputs = [i for i in inputs if i.name != "call-10m"]
    res: dict[str, Any] = {"started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick,
                           "repeats": repeats, "threads": args.threads, "load_before": loadavg(),
                           "machine": machine_info(), "inputs": [i.as_dict() for i in inputs]}
    work = Path(tempfile.mkdtemp(prefix="callqa-bench-"))
    env = {**os.environ, "CALLQA_DATA": str(work / "data"), "CALLQA_TMP": str(work / "tmp")}
    env.pop("CALLQA_STORE", None)
    try:
        # cold first: nothing of this process is loaded yet, and the page cache is as warm as it gets
        if "cold" in sections:
            settle("cold")
            res["cold"] = section_cold(inputs, repeats, log, env)
        models = None
        if {"warm", "vad", "nisqa"} & set(sections):
            log("loading callqa models and the baseline")
            models = Models(args.threads)
            res["in_process_load_s"] = models.load_s
        if "warm" in sections:
            settle("warm")
            assert models is not None
            res["warm"] = section_warm(models, inputs, repeats, log)
            res["linearity"] = linearity(res["warm"])
            res["limit"] = physical_limit(models, inputs, repeats, log)
        if "vad" in sections:
            settle("vad")
            assert models is not None
            res["vad"] = section_vad(models, inputs, repeats, log, per_frame=not args.quick)
        if "nisqa" in sections:
            settle("nisqa")
            assert models is not None
            res["nisqa"] = section_nisqa(models, inputs, repeats, log)
        if "checks" in sections:
            settle("checks")
            res["checks"] = section_checks(log)
        if "omp" in sections and not args.quick:
            settle("omp")
            res["omp"] = section_omp(inputs, repeats, log, env)
        if "scan" in sections:
            settle("scan")
            res["scan"] = section_scan(inputs, min(repeats, 3), copies, args.workers, work, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["load_after"] = loadavg()
    res["waits"] = waits
    res["env"] = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                                             "CALLQA_QUALITY_THREADS") if k in os.environ}
    res["runner_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cold = res.get("cold")
    if cold:
        base_s, proc_s = cold["seed_process"]["wall_s"]["median"], cold["cli_analyze"]["wall_s"]["median"]
        cold["process_ratio"] = {"baseline_s": base_s, "callqa_process_s": proc_s, "ratio": base_s / proc_s}
    res["targets"] = targets(res)
    text = render(res)
    print(text)
    res["table"] = text
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2, default=str))
    print(f"\nwritten to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
