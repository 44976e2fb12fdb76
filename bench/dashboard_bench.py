"""Deep-dive render time for a cached call: building its charts, and the whole page in AppTest.

For each call the stages of a deep dive are timed separately -- reading the stored analysis,
shaping it into frames, the waveform envelopes (decoding the legs, then min/max per pixel
column), building every Altair chart and serialising it to Vega-Lite as Streamlit does -- and
then the whole deep-dive page is run through ``AppTest`` twice: cold (empty Streamlit caches)
and warm (envelopes and queries cached, as for an analyst re-opening the call or clicking a
finding). The target is about one second for a cached call.

Usage::

    .venv/bin/python bench/dashboard_bench.py                       # scans ../shared/corpus first
    .venv/bin/python bench/dashboard_bench.py --store data/callqa.db --calls 5 --repeat 5

Results are printed as a table and written to ``bench/results/dashboard_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_CORPUS = Path(os.environ.get("CALLQA_SHARED", ROOT.parent / "shared")) / "corpus"


def _ms(fn, repeat: int) -> tuple[float, object]:
    """Median wall time of ``fn()`` over ``repeat`` runs, in ms, and its last result."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), result


def chart_stages(store, call_id: str, repeat: int) -> dict[str, float]:
    """Time each step the deep dive takes to draw one call's charts."""
    from core.audio.preview import ENVELOPE_WIDTH, envelope
    from core.audio.preview import leg_samples as _leg_samples
    from core.store.queries import call_analysis
    from ui import charts

    out: dict[str, float] = {}
    out["read analysis"], doc = _ms(lambda: call_analysis(store, call_id), repeat)
    legs = charts.legs_of(doc)
    duration = float(doc["duration_s"])

    def frames():
        return (charts.intervals_frame(doc, "speech"), charts.intervals_frame(doc, "silences"),
                charts.windows_frame(doc), charts.findings_frame(doc), charts.subscores_frame(doc))

    out["shape frames"], (speech, silences, windows, findings, scores) = _ms(frames, repeat)
    sources = {leg: doc["legs"][leg]["source"] for leg in legs}
    out["decode legs"], decoded = _ms(lambda: {leg: _leg_samples(s) for leg, s in sources.items()}, repeat)
    out["envelopes"], envs = _ms(lambda: {leg: envelope(x, sr, ENVELOPE_WIDTH) for leg, (x, sr) in decoded.items()},
                                 repeat)

    def build():
        built = [charts.waveform_chart(envs[leg], leg=leg, duration_s=duration) for leg in legs]
        built.append(charts.activity_chart(speech, silences, legs=legs, duration_s=duration))
        if not windows.empty:
            built.append(charts.mos_window_chart(windows, legs=legs, duration_s=duration))
        built.append(charts.findings_lane_chart(findings, legs=legs, duration_s=duration))
        if not scores.empty:
            built.append(charts.subscores_chart(scores, legs=legs))
        return built

    out["build charts"], built = _ms(build, repeat)
    out["to Vega-Lite"], _ = _ms(lambda: [c.to_dict() for c in built], repeat)
    out["charts total"] = sum(out[k] for k in ("read analysis", "shape frames", "decode legs", "envelopes",
                                                 "build charts", "to Vega-Lite"))
    out["charts total (cached audio)"] = out["charts total"] - out["decode legs"] - out["envelopes"]
    return out


def page_runs(call_id: str, repeat: int) -> dict[str, float]:
    """The whole deep-dive page in AppTest: first view (cold caches) and re-views (warm)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    st.cache_data.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["call"] = call_id
    t0 = time.perf_counter()
    at.run()
    cold = (time.perf_counter() - t0) * 1000
    if at.exception:
        raise SystemExit(f"the deep dive of {call_id} failed: {at.exception[0].value}")
    warm, _ = _ms(lambda: at.run(), repeat)
    return {"page, first view": cold, "page, re-view": warm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="a scanned store (default: scan the corpus into a temporary one)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--calls", type=int, default=4, help="how many calls (longest first)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    from core.config import load_settings
    from core.scan import scan_folder
    from core.store import open_store
    from core.store.queries import list_calls

    tmp = tempfile.TemporaryDirectory(prefix="callqa-bench-")
    store_url = args.store
    if store_url is None:
        store_url = str(Path(tmp.name) / "callqa.db")
        print(f"scanning {args.corpus} into {store_url} ...", file=sys.stderr)
        scan_folder(load_settings(), args.corpus, store_url=store_url, workers=2, quality=True)
    os.environ["CALLQA_STORE"] = store_url
    os.environ.setdefault("CALLQA_DATA", str(Path(tmp.name) / "data"))

    with open_store(store_url, read_only=True) as store:
        calls = list_calls(store, limit=None).sort_values("duration_s", ascending=False).head(args.calls)
        # one throw-away page run so imports and model files do not count against the first call
        page_runs(str(calls.iloc[-1]["call_id"]), 1)
        rows = []
        for call_id, duration in zip(calls["call_id"], calls["duration_s"], strict=True):
            stages = chart_stages(store, str(call_id), args.repeat)
            stages.update(page_runs(str(call_id), args.repeat))
            rows.append({"call_id": str(call_id), "duration_s": float(duration), **stages})

    columns = [k for k in rows[0] if k not in ("call_id", "duration_s")]
    print(f"\ndeep dive of a cached call, median of {args.repeat} runs, ms")
    header = f"{'call':<28} {'len s':>6} " + " ".join(f"{c:>{max(len(c), 8)}}" for c in columns)
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['call_id']:<28} {r['duration_s']:>6.1f} "
              + " ".join(f"{r[c]:>{max(len(c), 8)}.1f}" for c in columns))
    out = ROOT / "bench" / "results" / "dashboard_bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"repeat": args.repeat, "calls": rows}, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
