"""Scoring the per-side analysis of mixed recordings as ../shared/checks/mixed_sides.py defines it.

Shared by ``scripts/mixed_report.py`` (the dev tool) and the acceptance tests: which calls to
score and with which enrollment recordings (the corpus: up to two unimpaired legs of *other*
calls of the agent's talker; a set from ``scripts/mixed_devset.py``: its ``enroll/`` folder), and
the figures of one analysed call against its per-talker truth.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np


def talker_truth(x: np.ndarray, offset_s: float, rate: int) -> list[tuple[float, float]]:
    """Where one placed utterance counts as speech, as the corpus labels define it: 20 ms frames
    within 35 dB of the utterance's peak frame, pauses shorter than 250 ms bridged."""
    hop = int(0.02 * rate)
    frames = x[: len(x) // hop * hop].reshape(-1, hop).astype(np.float64)
    e = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    out: list[list[float]] = []
    for i in np.flatnonzero(e >= e.max() - 35):
        s, t = offset_s + i * 0.02, offset_s + (i + 1) * 0.02
        if out and s - out[-1][1] < 0.25:
            out[-1][1] = t
        else:
            out.append([s, t])
    return [(a, b) for a, b in out]


IMPAIRS = ("noisy", "low_volume", "clipping", "packet_loss", "echo", "one_way")
REQUIRED = {"noisy": "noisy", "low_volume": "low_volume", "clipping": "clipping", "packet_loss": "packet_loss",
            "one_way": "one_way_audio", "talk_imbalance": "talk_imbalance"}
STEP = 0.01


def frames(intervals, duration_s: float) -> np.ndarray:
    n = int(duration_s / STEP) + 1
    f = np.zeros(n, dtype=bool)
    for s, e in intervals:
        f[max(0, int(s / STEP)): min(n, int(e / STEP))] = True
    return f


def spans(items) -> list[tuple[float, float]]:
    return [(float(x["start_s"]), float(x["end_s"])) for x in items or []]


def score_call(call: dict, result: dict) -> dict:
    """The check's figures for one call."""
    dur = call["duration_s"]
    truth = {k: frames(call["legs"][k]["speech"], dur) for k in ("caller", "agent")}
    sides = [k for k in result["legs"] if k != "mixed"]
    out = {"condition": call["condition"], "layout": call.get("layout"), "call_id": call["call_id"],
           "sides": sides, "attribution": result.get("attribution", {}).get("method")}
    if len(sides) != 2:
        return {**out, "accuracy": 0.0, "named": False, "silence_claimed": None, "found": 0, "expected": 0,
                "false_one_way": False, "missed": ["no sides"]}
    pred = {k: frames(spans(result["legs"][k]["speech"]), dur) for k in sides}
    n = len(truth["caller"])
    silent = ~truth["caller"] & ~truth["agent"]
    claimed = float(np.mean((pred[sides[0]] | pred[sides[1]])[silent])) if silent.any() else None

    def acc(mapping: dict[str, str]) -> float:
        one = truth["caller"] ^ truth["agent"]
        if not one.any():
            return 1.0
        pc, pa = pred[mapping["caller"]][:n], pred[mapping["agent"]][:n]
        ok = np.where(truth["caller"], pc & ~pa, pa & ~pc)
        return float(ok[one].mean())

    scores = [acc(dict(zip(("caller", "agent"), sides, strict=True))),
              acc(dict(zip(("caller", "agent"), sides[::-1], strict=True)))]
    named = set(sides) == {"caller", "agent"} and acc({"caller": "caller", "agent": "agent"}) >= max(scores) - 1e-9
    codes = [(f["code"], f["leg"]) for f in result["findings"]]
    found = expected = 0
    missed = []
    for key, code in REQUIRED.items():
        want = call["expect"].get(key)
        if not want:
            continue
        expected += 1
        ok = any(c == code for c, _ in codes) if key == "talk_imbalance" else (code, want) in codes
        found += ok
        if not ok:
            missed.append(f"{code}/{want}")
    false_one_way = not call["expect"].get("one_way") and any(c == "one_way_audio" for c, _ in codes)
    return {**out, "accuracy": max(scores), "named": named, "silence_claimed": claimed, "found": found,
            "expected": expected, "false_one_way": false_one_way, "missed": missed,
            "confidence": result.get("attribution", {}).get("confidence")}


def corpus_items(corpus: Path, work: Path):
    """(call, mix path, agent talker, enrollment files) for the shared corpus, as the check builds them."""
    calls = json.loads((corpus / "labels.json").read_text())["calls"]
    legs: dict[str, list[tuple[str, Path]]] = {}
    for c in calls:
        if c["layout"] != "channel":
            continue
        for side, key in (("caller", "in"), ("agent", "out")):
            if not any(c["expect"].get(k) == side for k in IMPAIRS):
                legs.setdefault(c["speakers"][side], []).append((c["call_id"], corpus / c["files"][key]))
    for c in calls:
        agent = c["speakers"]["agent"]
        enroll = [p for cid, p in legs.get(agent, []) if cid != c["call_id"]][:2]
        if not enroll:
            continue
        folder = work / c["call_id"]
        folder.mkdir()
        mix = folder / c["files"]["mp3"]
        shutil.copy(corpus / c["files"]["mp3"], mix)
        yield c, mix, agent, enroll


def devset_items(root: Path):
    labels = json.loads((root / "labels.json").read_text())
    for c in labels["calls"]:
        mix = root / (c["files"].get("mp3") or c["files"]["in"])
        agent = c["speakers"]["agent"]
        yield c, mix, agent, sorted((root / "enroll" / agent).glob("*.wav"))
