"""Measure callqa on ../shared/corpus and print the per-condition table used in README.md.

Usage: .venv/bin/python scripts/corpus_report.py [--quality] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.pipeline import analyze_path  # noqa: E402

IMPAIRED = ("one_way", "clipping", "low_volume", "echo", "packet_loss", "noisy")


def agreement(ours, truth, duration, step=0.01):
    n = int(np.ceil(duration / step))
    a, b = np.zeros(n, bool), np.zeros(n, bool)
    for s in ours:
        a[int(round(s["start_s"] / step)): int(round(s["end_s"] / step))] = True
    for s, e in truth:
        b[int(round(s / step)): int(round(e / step))] = True
    return float((a == b).mean())


def expected(call):
    e = call["expect"]
    out = []
    if e["one_way"]:
        out.append(f"one_way_audio/{e['one_way']}")
    for k in ("clipping", "low_volume", "echo", "packet_loss", "noisy"):
        if e[k]:
            out.append(f"{k}/{e[k]}")
    out += ["dead_air" for _ in e["dead_air"]]
    if e["talk_imbalance"]:
        out.append("talk_imbalance")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=os.environ.get("CALLQA_SHARED", str(ROOT.parent / "shared")) + "/corpus")
    ap.add_argument("--quality", action="store_true", help="also score NISQA MOS per leg")
    args = ap.parse_args()
    corpus = Path(args.corpus)
    labels = json.loads((corpus / "labels.json").read_text())
    model = None
    if args.quality:
        from core.config import load_settings
        from core.quality.manager import get_quality_model

        model = get_quality_model(load_settings())
    head = "| condition | layout | expected | found | VAD agreement caller / agent | dead air (found vs label) |"
    if model:
        head += " MOS caller / agent |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for call in labels["calls"]:
        r = analyze_path(corpus / call["files"]["in"], quality_model=model).as_dict()
        found = [f"{f['code']}/{f['leg']}" if f["leg"] and f["code"] != "talk_imbalance" else f["code"]
                 for f in r["findings"] if f["code"] != "poor_quality"]
        poor = sorted({f"poor_quality/{f['leg']}" for f in r["findings"] if f["code"] == "poor_quality"})
        exp = expected(call)
        impaired = {call["expect"][k] for k in IMPAIRED if call["expect"].get(k)}
        agr = []
        for leg in ("caller", "agent"):
            if leg in r["legs"]:
                mark = "" if leg not in impaired else "*"
                agr.append(f"{agreement(r['legs'][leg]['speech'], call['legs'][leg]['speech'], call['duration_s']):.3f}{mark}")
        if "mixed" in r["legs"]:
            truth = call["legs"]["caller"]["speech"] + call["legs"]["agent"]["speech"]
            agr.append(f"{agreement(r['legs']['mixed']['speech'], truth, call['duration_s']):.3f} (mix)")
        dead = [f for f in r["findings"] if f["code"] == "dead_air"]
        dead_txt = "; ".join(f"{f['start_s']:.1f}-{f['end_s']:.1f} vs {s:.1f}-{e:.1f}"
                             for f, (s, e) in zip(dead, call["expect"]["dead_air"], strict=False)) or "-"
        ok = "✅" if sorted(found) == sorted(exp) and r["layout"] == call["layout"] else "❌"
        extra = f" (+ {', '.join(poor)})" if poor else ""
        row = (f"| {call['condition']} | {r['layout']} | {', '.join(exp) or '-'} | {ok} {', '.join(found) or '-'}{extra} "
               f"| {' / '.join(agr)} | {dead_txt} |")
        if model:
            mos = [f"{r['legs'][leg]['quality']['mos']:.2f}" if r["legs"][leg]["quality"] else "-" for leg in r["legs"]]
            row += f" {' / '.join(mos)} |"
        print(row)
    print("\n`*` = the impaired leg (echo adds the other talker's voice, so its VAD disagrees with the talker's own labels).")


if __name__ == "__main__":
    main()
