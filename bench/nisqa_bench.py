"""NISQA speed and memory: whole files vs windowed scoring of a call, warm, on N threads.

Run from the project root (needs ``make setup`` and ``../shared``)::

    .venv/bin/python bench/nisqa_bench.py [--threads 2] [--repeats 3] [--json]

It reports the model load time after ``import torch``, then the median of ``--repeats`` warm
runs (after one warm-up) of:

* ``golden``: the 38 golden clips scored whole in one batch (``callqa quality``'s path);
* ``whole_50s``: one 50 s 8 kHz file scored whole;
* ``windowed_call``: a 3-minute 8 kHz two-leg call built by concatenating corpus legs, scored
  with :func:`core.quality.windows.score_tracks` (10 s windows, 5 s hop, corpus speech labels);
* ``windowed_all_speech``: the same call with every window kept (worst case).

Seconds per minute of audio count every track's minutes (a 3-minute two-leg call is 6 minutes).
Peak RSS is the process maximum at the end.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _median_time(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-call allocations and oneDNN primitive creation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _two_leg_call(corpus: Path, seconds: float):
    """Concatenate the in/out legs of channel-layout corpus calls; return clips and speech per leg."""
    from core.audio.io import AudioClip, load_mono
    from core.results import Interval

    labels = json.loads((corpus / "labels.json").read_text())
    legs: dict[str, list[np.ndarray]] = {"caller": [], "agent": []}
    speech: dict[str, list[Interval]] = {"caller": [], "agent": []}
    offset_s = 0.0
    for call in labels["calls"]:
        if call["layout"] != "channel" or offset_s >= seconds:
            continue
        length_s = 0.0
        for file_key in ("in", "out"):
            role = call["leg_map"][file_key]
            clip = load_mono(corpus / call["files"][file_key])
            legs[role].append(clip.samples)
            length_s = clip.duration_s
            speech[role] += [Interval(s + offset_s, e + offset_s) for s, e in call["legs"][role]["speech"]]
        offset_s += length_s
    rate = int(labels["sample_rate"])
    n = int(seconds * rate)
    tracks = {role: AudioClip(np.concatenate(parts)[:n], rate, Path(f"{role}.wav")) for role, parts in legs.items()}
    return tracks, speech


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()

    start = time.perf_counter()
    import torch  # noqa: F401  (timed separately from the model load)

    import_s = time.perf_counter() - start
    from core.audio.io import load_mono
    from core.quality.manager import get_quality_model, shared_dir
    from core.quality.windows import score_tracks
    from core.results import Interval

    start = time.perf_counter()
    model = get_quality_model(threads=args.threads)
    load_s = time.perf_counter() - start

    shared = shared_dir()
    rows: dict[str, dict[str, float]] = {}

    def record(name: str, seconds: float, audio_s: float, **extra: float) -> None:
        rows[name] = {"seconds": seconds, "audio_min": audio_s / 60, "s_per_audio_min": seconds / (audio_s / 60), **extra}

    clips = [load_mono(p) for p in sorted((shared / "golden" / "nisqa" / "clips").glob("*.wav"))]
    batch = [(c.samples, c.sample_rate) for c in clips]
    record("golden", _median_time(lambda: model.score_batch(batch), args.repeats),
           sum(c.duration_s for c in clips), files=len(clips))

    tracks, speech = _two_leg_call(shared / "corpus", 180.0)
    caller = tracks["caller"]
    whole = [(caller.samples[: 50 * caller.sample_rate], caller.sample_rate)]
    record("whole_50s", _median_time(lambda: model.score_batch(whole), args.repeats), 50.0)

    call_audio_s = sum(t.duration_s for t in tracks.values())
    result = score_tracks(model, tracks, speech)
    kept = sum(len(q.windows) for q, _ in result.values() if q is not None)
    record("windowed_call", _median_time(lambda: score_tracks(model, tracks, speech), args.repeats),
           call_audio_s, windows=kept)
    everything = {name: [Interval(0.0, t.duration_s)] for name, t in tracks.items()}
    result = score_tracks(model, tracks, everything)
    kept = sum(len(q.windows) for q, _ in result.values() if q is not None)
    record("windowed_all_speech", _median_time(lambda: score_tracks(model, tracks, everything), args.repeats),
           call_audio_s, windows=kept)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps({"threads": args.threads, "import_torch_s": import_s, "load_model_s": load_s,
                          "peak_rss_mb": peak_rss_mb, "runs": rows}, indent=2))
        return
    print(f"threads {args.threads}; import torch {import_s:.2f} s; get_quality_model {load_s:.3f} s")
    print(f"{'run':<22}{'seconds':>9}{'audio min':>11}{'s / audio min':>15}  notes")
    for name, row in rows.items():
        notes = ", ".join(f"{k} {v:g}" for k, v in row.items() if k not in ("seconds", "audio_min", "s_per_audio_min"))
        print(f"{name:<22}{row['seconds']:>9.3f}{row['audio_min']:>11.2f}{row['s_per_audio_min']:>15.3f}  {notes}")
    print(f"peak RSS {peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
