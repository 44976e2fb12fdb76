#!/usr/bin/env python3
"""Score the per-side analysis of mixed recordings on a labelled set, as ../shared/checks/mixed_sides.py does.

Works on ``../shared/corpus`` (``--corpus``: mix-only copies of each call's ``-all.mp3``, the agent
enrolled from up to two unimpaired legs of *other* calls of that talker) and on sets built by
``scripts/mixed_devset.py`` (each agent enrolled from the set's ``enroll/<talker>/`` files). The
analysis runs in-process through :func:`core.pipeline.analyze_call` with quality off (as the
check runs it), so a set of a hundred calls takes a minute or two.

Printed per condition and overall: single-talker frame accuracy (median / worst), share of
silent frames claimed as speech, agent named correctly, side findings found on the right side,
false one-way audio. ``--json FILE`` keeps every call's figures.

Usage::

    .venv/bin/python scripts/mixed_report.py --corpus ../shared/corpus
    .venv/bin/python scripts/mixed_report.py data/devset-mixed
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.audio.diarize import VoiceContext, Voiceprint  # noqa: E402
from core.audio.layout import call_files_for  # noqa: E402
from core.config import AnalysisConfig  # noqa: E402
from core.pipeline import analyze_call  # noqa: E402
from core.voices import embed_recordings  # noqa: E402
from tests.support.mixed_truth import corpus_items, devset_items, score_call  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", nargs="?", type=Path, help="a set built by scripts/mixed_devset.py")
    ap.add_argument("--corpus", type=Path, help="score the shared corpus instead (mix-only copies)")
    ap.add_argument("--no-voiceprint", action="store_true", help="analyse without enrolling the agents")
    ap.add_argument("--json", dest="json_out", type=Path, help="write every call's figures here")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="an [analysis] setting to try instead of its default (repeatable)")
    args = ap.parse_args(argv)
    if (args.dataset is None) == (args.corpus is None):
        ap.error("give a dataset folder or --corpus")
    cfg = AnalysisConfig.from_mapping(dict(o.split("=", 1) for o in args.overrides))
    work = Path(tempfile.mkdtemp(prefix="callqa-mixed-report-"))
    items = corpus_items(args.corpus, work) if args.corpus else devset_items(args.dataset)
    prints: dict[tuple[str, tuple[str, ...]], Voiceprint] = {}
    rows, elapsed, audio = [], 0.0, 0.0
    try:
        for call, mix, agent, enroll in items:
            voices = VoiceContext()
            if not args.no_voiceprint:
                key = (agent, tuple(map(str, enroll)))
                if key not in prints:
                    vector, _ = embed_recordings(enroll, cfg=cfg)
                    prints[key] = Voiceprint(agent, vector)
                voices = VoiceContext(agent_user=agent, agent=prints[key], enrolled=(prints[key],))
            t0 = time.perf_counter()
            result = analyze_call(call_files_for(mix), cfg=cfg, voices=voices).as_dict()
            elapsed += time.perf_counter() - t0
            audio += result["duration_s"]
            rows.append(score_call(call, result))
            print(f"\r{len(rows)} calls", end="", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(file=sys.stderr)
    if not rows:
        print("no calls to score")
        return 2
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["condition"], []).append(r)
    print(f"{'condition':20} {'n':>3} {'acc med':>8} {'worst':>6} {'named':>6} {'findings':>9} {'silence':>8}")
    for cond, rs in sorted(by.items()):
        claimed = [r["silence_claimed"] for r in rs if r["silence_claimed"] is not None]
        print(f"{cond:20} {len(rs):3d} {statistics.median(r['accuracy'] for r in rs):8.3f} "
              f"{min(r['accuracy'] for r in rs):6.3f} {sum(r['named'] for r in rs):3d}/{len(rs):<2d} "
              f"{sum(r['found'] for r in rs):4d}/{sum(r['expected'] for r in rs):<4d} "
              f"{statistics.median(claimed) if claimed else 0:8.2f}")
    accs = [r["accuracy"] for r in rows]
    claimed = [r["silence_claimed"] for r in rows if r["silence_claimed"] is not None]
    found, expected = sum(r["found"] for r in rows), sum(r["expected"] for r in rows)
    print(f"\n{len(rows)} calls: single-talker frame accuracy median {statistics.median(accs):.3f} worst {min(accs):.3f}; "
          f"speech claimed in silence {statistics.median(claimed):.2f}; agent named {sum(r['named'] for r in rows)}/"
          f"{len(rows)}; side findings {found}/{expected}; false one-way {sum(r['false_one_way'] for r in rows)}; "
          f"{elapsed / audio * 60:.2f} s per call-minute")
    for r in sorted(rows, key=lambda r: r["accuracy"])[:5]:
        print(f"  lowest: {r['condition']} {r['layout']} acc {r['accuracy']:.3f} named {r['named']} "
              f"attribution {r['attribution']} missed {r['missed']}")
    misses = [(r["condition"], m) for r in rows for m in r["missed"]]
    if misses:
        print("  missed findings: " + ", ".join(f"{c}:{m}" for c, m in misses))
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
