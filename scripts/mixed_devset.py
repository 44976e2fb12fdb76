#!/usr/bin/env python3
"""Build a development set of mix-only calls with per-talker truth (for per-side analysis of mixes).

The calls are two-party conversations assembled from real speech, passed through a telephone
chain, given one impairment, and stored as a site that keeps only the mix would keep them:
``NAME-all.mp3`` (``sox -m`` of the two legs at 16 kbit/s) or a conference recording (``NAME-in.wav``
holds the mix, ``NAME-out.wav`` is digital silence). Each call sits in a folder of its own; the true
legs sit apart under ``legs/``, and every agent talker gets enrollment recordings under
``enroll/<talker>/`` built from utterances that no call uses. ``labels.json`` follows the schema of
``../shared/corpus/labels.json`` (``legs.<side>.speech``, ``overlaps``, ``expect``).

Talkers come from:

- ``--corpus DIR``: the unimpaired legs of a corpus in that schema, cut into utterances at its
  truth intervals (already telephone audio);
- ``--speech DIR`` (repeatable): folders of real speech: the demo speech folder (``index.json``
  lists each clip's speaker), one sub-folder per talker holding utterance files, or files named
  ``{digit}_{talker}_{n}.wav`` (the Free Spoken Digit Dataset layout; 3–7 digits are joined into
  one utterance).

Truth is computed as the corpus defines it: per placed utterance, 20 ms frames within 35 dB of the
utterance's peak; pauses shorter than 250 ms bridged. Nothing here is committed audio: the set is
generated (``data/`` is ignored by git).

Usage::

    .venv/bin/python scripts/mixed_devset.py data/devset-mixed --corpus ../shared/corpus \
        --speech /path/to/fsdd/recordings --calls 60 --seed 7
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.mixed_truth import talker_truth  # noqa: E402

SR = 8000
IMPAIRED = ("noisy", "low_volume", "clipping", "packet_loss", "echo", "one_way")
CONDITIONS = ("clean", "clean", "noisy", "low_volume", "clipping", "packet_loss", "one_way_caller",
              "one_way_agent", "monologue", "lively", "long_turns")
_FSDD = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.(wav|flac)$", re.I)


# --- talkers --------------------------------------------------------------------------------------
@dataclass
class Utterance:
    talker: str
    samples: np.ndarray  # float32 at SR, the talker's own level
    processed: bool      # already through a telephone chain


def _load(path: Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return np.asarray(soxr.resample(x, sr, SR), dtype=np.float32) if sr != SR else x


def corpus_utterances(corpus: Path) -> list[Utterance]:
    labels = json.loads((corpus / "labels.json").read_text())["calls"]
    out = []
    for c in labels:
        if c.get("layout") != "channel":
            continue
        for side, key in (("caller", "in"), ("agent", "out")):
            if any(c["expect"].get(k) == side for k in IMPAIRED):
                continue
            x = _load(corpus / c["files"][key])
            for s, e in c["legs"][side]["speech"]:
                a, b = max(0, int((s - 0.05) * SR)), min(len(x), int((e + 0.05) * SR))
                if b - a > 0.4 * SR:
                    out.append(Utterance(c["speakers"][side], _fade(x[a:b].copy()), True))
    return out


def folder_utterances(folder: Path, rng: np.random.Generator) -> list[Utterance]:
    index = folder / "index.json"
    if index.is_file():  # the demo speech folder's layout: clips listed with their speaker
        clips = json.loads(index.read_text()).get("clips", [])
        return [Utterance(str(c["speaker"]), _trim(_load(folder / c["file"])), False) for c in clips
                if c.get("kind", "speech") == "speech"]
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".wav", ".flac"))
    digits: dict[str, list[Path]] = defaultdict(list)
    out = []
    for p in files:
        m = _FSDD.match(p.name)
        if m:
            digits[m.group(2).lower()].append(p)
        elif p.parent != folder:
            out.append(Utterance(p.parent.name, _trim(_load(p)), False))
    for talker, paths in sorted(digits.items()):
        order = rng.permutation(len(paths))
        i = 0
        while i < len(order):
            k = int(rng.integers(3, 8))
            parts = []
            for j in order[i:i + k]:
                parts += [_trim(_load(paths[j])), np.zeros(int(rng.uniform(0.06, 0.2) * SR), np.float32)]
            out.append(Utterance(talker, np.concatenate(parts[:-1]), False))
            i += k
    return out


def _trim(x: np.ndarray) -> np.ndarray:
    env = np.abs(x)
    keep = np.flatnonzero(env > env.max() * 0.02)
    return _fade(x[max(0, keep[0] - 80): keep[-1] + 80] if len(keep) else x)


def _fade(x: np.ndarray, ms: float = 20.0) -> np.ndarray:
    """Raised-cosine fade in and out, so joins decay like speech instead of cutting off."""
    n = min(len(x) // 2, int(ms / 1000 * SR))
    if n < 2:
        return x
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
    y = x.astype(np.float32).copy()
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


# --- signal chain ------------------------------------------------------------------------------------
_BAND = signal.butter(4, [300, 3400], btype="bandpass", fs=SR, output="sos")


def active_level_db(x: np.ndarray) -> float:
    frames = x[: len(x) // 160 * 160].reshape(-1, 160)
    e = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = e[e > e.max() - 30] if len(e) else e
    return float(10 * np.log10(np.mean(10 ** (loud / 10)))) if len(loud) else -120.0


def set_level(x: np.ndarray, target_db: float, max_peak_db: float = -2.0) -> np.ndarray:
    """Scale to an active speech level, but never so far that a peak passes ``max_peak_db``."""
    gain_db = target_db - active_level_db(x)
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak > 0:
        gain_db = min(gain_db, max_peak_db - 20 * np.log10(peak))
    return (x * 10 ** (gain_db / 20)).astype(np.float32)


def telephone(x: np.ndarray) -> np.ndarray:
    return signal.sosfilt(_BAND, x).astype(np.float32)


def mulaw_roundtrip(x: np.ndarray) -> np.ndarray:
    mu = 255.0
    y = np.sign(x) * np.log1p(mu * np.minimum(np.abs(x), 1.0)) / np.log1p(mu)
    q = np.round(y * 127) / 127
    return (np.sign(q) * (np.expm1(np.abs(q) * np.log1p(mu)) / mu)).astype(np.float32)


def noise(n: int, rng: np.random.Generator, level_db: float, kind: str = "pink") -> np.ndarray:
    w = rng.standard_normal(n)
    if kind == "pink":
        b, a = [0.049922, -0.095993, 0.050612, -0.004408], [1, -2.494956, 2.017265, -0.522189]
        w = signal.lfilter(b, a, w)
        w *= 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * np.arange(n) / SR)  # slow swell
    w = telephone(w.astype(np.float32))
    return (w / (np.sqrt(np.mean(w ** 2)) + 1e-12) * 10 ** (level_db / 20)).astype(np.float32)


# --- truth --------------------------------------------------------------------------------------------
def utterance_truth(x: np.ndarray, offset_s: float) -> list[tuple[float, float]]:
    """The corpus labels' definition of speech (:func:`tests.support.mixed_truth.talker_truth`)."""
    return talker_truth(x, offset_s, SR)


def merge(intervals: list[tuple[float, float]], bridge: float = 0.25) -> list[list[float]]:
    out: list[list[float]] = []
    for s, e in sorted(intervals):
        if out and s - out[-1][1] < bridge:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [[round(a, 3), round(b, 3)] for a, b in out]


def intersect(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if e > s:
            out.append([round(s, 3), round(e, 3)])
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


# --- conversations --------------------------------------------------------------------------------------
class Pool:
    """A talker's utterances, drawn without repeating until exhausted."""

    def __init__(self, utts: list[Utterance], rng: np.random.Generator) -> None:
        self.utts, self.rng, self.order = utts, rng, []

    def draw(self, max_s: float | None = None) -> Utterance:
        cands = [u for u in self.utts if max_s is None or len(u.samples) <= max_s * SR]
        if not cands:
            u = min(self.utts, key=lambda u: len(u.samples))
            return Utterance(u.talker, u.samples[: int((max_s or 1.0) * SR)], u.processed)
        return cands[int(self.rng.integers(len(cands)))]


def build_call(rng: np.random.Generator, agent: Pool, caller: Pool, condition: str) -> dict:
    level = {"agent": rng.uniform(-26, -18), "caller": rng.uniform(-28, -18)}
    if condition == "low_volume":
        level["caller"] = rng.uniform(-46, -40)
    target = rng.uniform(40, 150)
    place: dict[str, list[tuple[float, Utterance]]] = {"agent": [], "caller": []}
    t = rng.uniform(0.3, 1.0)
    who = "agent" if rng.random() < 0.6 else "caller"
    missing = {"one_way_caller": "caller", "one_way_agent": "agent"}.get(condition)
    if missing:
        speaker = "agent" if missing == "caller" else "caller"
        target = rng.uniform(25, 60)
        while t < target:
            u = (agent if speaker == "agent" else caller).draw(max_s=2.2)
            place[speaker].append((t, u))
            t += len(u.samples) / SR + rng.uniform(4.0, 8.0)
    else:
        while t < target:
            pool = agent if who == "agent" else caller
            n = {"monologue": 4 if who == "agent" else 1, "long_turns": 5, "lively": 1}.get(condition, 2)
            k = int(rng.integers(1, n + 1)) if condition != "monologue" or who == "agent" else 1
            for _ in range(k):
                u = pool.draw(max_s=1.2 if condition == "monologue" and who == "caller" else None)
                place[who].append((t, u))
                if rng.random() < (0.35 if condition == "lively" else 0.12) and len(u.samples) > 1.8 * SR:
                    other = "caller" if who == "agent" else "agent"
                    bc = (caller if other == "caller" else agent).draw(max_s=0.9)
                    place[other].append((t + rng.uniform(0.6, len(u.samples) / SR - 0.8), bc))  # back-channel
                t += len(u.samples) / SR + rng.uniform(0.15, 0.6)
            gap = rng.normal(0.55, 0.35) if condition != "lively" else rng.normal(0.25, 0.35)
            t += float(np.clip(gap, -0.6, 1.6)) - 0.3
            who = "caller" if who == "agent" else "agent"
    duration = max([s + len(u.samples) / SR for legs in place.values() for s, u in legs] + [t]) + rng.uniform(0.5, 2)
    n = int(duration * SR)
    legs = {}
    truth: dict[str, list] = {}
    for side in ("caller", "agent"):
        x = np.zeros(n, np.float32)
        spans = []
        for start, u in place[side]:
            y = u.samples if u.processed else telephone(u.samples)
            y = set_level(y, level[side])
            a = int(start * SR)
            b = min(n, a + len(y))
            x[a:b] += y[: b - a]
            spans += utterance_truth(y[: b - a], a / SR)
        legs[side] = x
        truth[side] = merge(spans)
    return {"legs": legs, "truth": truth, "duration_s": round(duration, 3), "levels": level}


def impair(call: dict, condition: str, rng: np.random.Generator, others: list[Utterance]) -> dict:
    legs = call["legs"]
    n = len(legs["caller"])
    params: dict = {}
    for side in ("caller", "agent"):
        legs[side] = legs[side] + noise(n, rng, -66.0, kind="white")
    if condition == "noisy":
        snr = rng.uniform(0, 8)
        params["snr_db"] = round(snr, 1)
        kind = "pink"
        nz = noise(n, rng, call["levels"]["caller"] - snr, kind)
        if rng.random() < 0.3 and others:  # babble: distant voices under the caller
            babble = np.zeros(n, np.float32)
            for _ in range(6):
                u = others[int(rng.integers(len(others)))]
                a = int(rng.uniform(0, max(1, n - len(u.samples))))
                seg = telephone(u.samples)[: n - a]
                babble[a:a + len(seg)] += seg
            babble = np.resize(babble, n)
            nz = 0.6 * nz + 0.4 * babble / (np.sqrt(np.mean(babble ** 2)) + 1e-9) * 10 ** ((call["levels"]["caller"] - snr) / 20)
            params["babble"] = True
        legs["caller"] = legs["caller"] + nz.astype(np.float32)
    elif condition == "clipping":
        drive = rng.uniform(6, 14)
        params["overdrive_db"] = round(drive, 1)
        legs["agent"] = np.clip(legs["agent"] * 10 ** (drive / 20), -1.0, 1.0)
    elif condition == "packet_loss":
        side = "caller" if rng.random() < 0.6 else "agent"
        rate = rng.uniform(0.06, 0.2)
        x = legs[side]
        pk = int(0.02 * SR)
        lost = 0
        i = 0
        while i < n // pk:
            if rng.random() < rate / 2.5:
                burst = int(rng.integers(1, 5))
                x[i * pk:(i + burst) * pk] = 0.0
                lost += burst
                i += burst
            i += 1
        params.update(loss_leg=side, lost_packets=lost)
    elif condition in ("one_way_caller", "one_way_agent"):
        side = "caller" if condition == "one_way_caller" else "agent"
        legs[side] = noise(n, rng, -72.0, kind="white")
    for side in ("caller", "agent"):
        legs[side] = mulaw_roundtrip(np.clip(legs[side], -1, 1))
    call["params"] = params
    return call


def expect(call: dict, condition: str) -> dict:
    tc = sum(e - s for s, e in call["truth"]["caller"])
    ta = sum(e - s for s, e in call["truth"]["agent"])
    total = tc + ta
    one_way = {"one_way_caller": "caller", "one_way_agent": "agent"}.get(condition)
    return {
        "one_way": one_way,
        "noisy": "caller" if condition == "noisy" else None,
        "low_volume": "caller" if condition == "low_volume" else None,
        "clipping": "agent" if condition == "clipping" else None,
        "packet_loss": call["params"].get("loss_leg") if condition == "packet_loss" else None,
        "echo": None,
        "talk_imbalance": bool(not one_way and total > 0 and max(tc, ta) / total > 0.7),
        "dead_air": [],
    }


# --- writing --------------------------------------------------------------------------------------------------
def write_mp3(x: np.ndarray, path: Path) -> None:
    tmp = path.with_suffix(".tmp.wav")
    sf.write(str(tmp), x, SR, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(tmp), "-ac", "1", "-ar", str(SR), "-codec:a",
                    "libmp3lame", "-b:a", "16k", str(path)], check=True)
    tmp.unlink()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--speech", type=Path, action="append", default=[])
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--conference-share", type=float, default=0.3)
    ap.add_argument("--enroll-files", type=int, default=2)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    utts: list[Utterance] = []
    if args.corpus:
        utts += corpus_utterances(args.corpus)
    for folder in args.speech:
        utts += folder_utterances(folder, rng)
    by_talker: dict[str, list[Utterance]] = defaultdict(list)
    for u in utts:
        by_talker[u.talker].append(u)
    talkers = sorted(t for t, us in by_talker.items() if sum(len(u.samples) for u in us) > 25 * SR)
    if len(talkers) < 3:
        print("need at least 3 talkers with 25 s of speech each", file=sys.stderr)
        return 2
    if args.out.exists():
        shutil.rmtree(args.out)
    (args.out / "legs").mkdir(parents=True)
    # enrollment material apart from conversation material
    pools: dict[str, Pool] = {}
    for t in talkers:
        us = list(by_talker[t])
        rng.shuffle(us)
        need = min(args.enroll_files * 12 * SR, 0.4 * sum(len(u.samples) for u in us))
        take: list[Utterance] = []
        while us and sum(len(u.samples) for u in take) < need and len(us) > 4:
            take.append(us.pop())
        for i in range(args.enroll_files):
            part = take[i::args.enroll_files]
            y = np.concatenate([np.concatenate((u.samples if u.processed else telephone(u.samples),
                                                np.zeros(int(0.4 * SR), np.float32))) for u in part])
            y = mulaw_roundtrip(np.clip(set_level(y, -20) + noise(len(y), rng, -66, "white"), -1, 1))
            d = args.out / "enroll" / t
            d.mkdir(parents=True, exist_ok=True)
            sf.write(str(d / f"{t}-{i + 1}-out.wav"), y, SR, subtype="ULAW")
        pools[t] = Pool(us, rng)
    agents = sorted(rng.choice(talkers, size=max(2, (len(talkers) + 1) // 2), replace=False).tolist())
    calls = []
    for k in range(args.calls):
        condition = CONDITIONS[k % len(CONDITIONS)]
        agent = agents[int(rng.integers(len(agents)))]
        caller = talkers[int(rng.integers(len(talkers)))]
        while caller == agent:
            caller = talkers[int(rng.integers(len(talkers)))]
        others = [u for t in talkers if t not in (agent, caller) for u in by_talker[t]]
        call = impair(build_call(rng, pools[agent], pools[caller], condition), condition, rng, others)
        stamp = f"20261101-{8 + k // 6:02d}{(k % 6) * 9:02d}00"
        call_id = f"{stamp}_{7000000000 + k * 7919}"
        layout = "conference" if rng.random() < args.conference_share else "mixed"
        folder = args.out / f"call{k:03d}"
        folder.mkdir()
        mix = 0.5 * (call["legs"]["caller"] + call["legs"]["agent"])
        files = {}
        if layout == "mixed":
            write_mp3(mix, folder / f"{call_id}-all.mp3")
            files["mp3"] = f"call{k:03d}/{call_id}-all.mp3"
        else:
            bridge = np.clip(call["legs"]["caller"] + call["legs"]["agent"], -1.0, 1.0)  # a bridge sums at unity
            sf.write(str(folder / f"{call_id}-in.wav"), mulaw_roundtrip(bridge), SR, subtype="ULAW")
            sf.write(str(folder / f"{call_id}-out.wav"), np.zeros_like(mix), SR, subtype="ULAW")
            files["in"] = f"call{k:03d}/{call_id}-in.wav"
        for side, key in (("caller", "in"), ("agent", "out")):
            sf.write(str(args.out / "legs" / f"{call_id}-{key}.wav"), call["legs"][side], SR, subtype="ULAW")
        calls.append({
            "call_id": call_id, "condition": condition, "layout": layout, "duration_s": call["duration_s"],
            "files": files, "speakers": {"caller": caller, "agent": agent},
            "legs": {s: {"speech": call["truth"][s]} for s in ("caller", "agent")},
            "overlaps": intersect(call["truth"]["caller"], call["truth"]["agent"]),
            "params": call["params"], "expect": expect(call, condition),
        })
        print(f"\r{k + 1}/{args.calls} calls", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    (args.out / "labels.json").write_text(json.dumps({"sample_rate": SR, "talkers": talkers, "agents": agents,
                                                      "calls": calls}, indent=1))
    print(f"{len(calls)} calls, {len(talkers)} talkers ({len(agents)} agents) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
