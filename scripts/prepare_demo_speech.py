#!/usr/bin/env python3
"""Build the demo's speech folder from real recordings (run once by a maintainer, not at run time).

The folder holds short utterances of real talkers at 8 kHz (16-bit FLAC), an ``index.json``
naming each clip's talker and source, and ``clips/ATTRIBUTION.md`` (kept beside the audio). ``callqa demo build`` assembles
its calls from these clips; nothing is downloaded at run time.

Sources (each a local folder holding the files named below, e.g. extracted from the public
repositories that redistribute them):

- VCTK 0.92 utterances (CC BY 4.0) of p225-p228 (``--vctk4``: ``<speaker>/<speaker>_NNN.wav``,
  any number of folders), p230/p233/p236/p243/p244/p254/p258/p259/p273 (``--vctk-demo``:
  ``<speaker>/<speaker>_023.wav``), p287 (``--voicebank``: ``p287_00N.wav``, VoiceBank clean
  speech), p240/p260 and four LibriSpeech talkers (CC BY 4.0; ``--samples``: ``*_00000.mp3``);
- LJ Speech 1.1 (public domain; ``--ljspeech``: ``LJ001-00NN.wav``).

Processing: mono, resampled to 8 kHz (soxr HQ), leading and trailing silence trimmed (frames
more than 40 dB under the clip's loudest frame), utterances longer than 4.5 s split at their
longest internal pauses into phrases of 1.2-4.5 s (at most 75 s per talker), peak-normalised to -3 dBFS, 16-bit FLAC.

Example::

    python scripts/prepare_demo_speech.py --out demo-speech --vctk4 /tmp/src/a/data/wav48 \\
        /tmp/src/b/wavs --vctk-demo /tmp/src/c/Demo/VCTK-corpus --voicebank /tmp/src/d/clean \\
        --samples /tmp/src/e/samples --ljspeech /tmp/src/f/wavs
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 8000
FRAME = 160  # 20 ms
TRIM_DB = 40.0
MAX_PHRASE_S = 4.5
MIN_PHRASE_S = 1.2
MIN_PAUSE_S = 0.15
PEAK_DBFS = -3.0
MAX_SPEAKER_S = 75.0  # per talker: keeps the folder small

AGENTS = ("p225", "p226", "p227", "p228", "LJ", "p287", "p230", "p243")

VCTK_INFO = {  # speaker-info.txt of VCTK 0.92
    "p225": ("F", "English, Southern England"), "p226": ("M", "English, Surrey"),
    "p227": ("M", "English, Cumbria"), "p228": ("F", "English, Southern England"),
    "p230": ("F", "English, Stockton-on-Tees"), "p233": ("F", "English, Staffordshire"),
    "p236": ("F", "English, Manchester"), "p240": ("F", "English, Southern England"),
    "p243": ("M", "English, London"), "p244": ("F", "English, Manchester"),
    "p254": ("M", "English, Surrey"), "p258": ("M", "English, Southern England"),
    "p259": ("M", "English, Nottingham"), "p260": ("M", "Scottish, Orkney"),
    "p273": ("M", "English, Suffolk"), "p287": ("M", "English, York"),
}
VCTK = ("VCTK 0.92", "CC BY 4.0")
LIBRI = ("LibriSpeech", "CC BY 4.0")


def load(path: Path) -> np.ndarray:
    audio, rate = sf.read(str(path), dtype="float64", always_2d=True)
    mono = audio.mean(axis=1)
    return soxr.resample(mono, rate, RATE, quality="HQ") if rate != RATE else mono


def frame_db(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def trim(x: np.ndarray) -> np.ndarray:
    db = frame_db(x)
    loud = np.flatnonzero(db >= db.max() - TRIM_DB)
    start, end = max(loud[0] - 2, 0), loud[-1] + 3  # 40 ms of margin either side
    return x[start * FRAME: end * FRAME]


def split(x: np.ndarray) -> list[np.ndarray]:
    """Cut at the longest internal pauses until every phrase is at most MAX_PHRASE_S."""
    if len(x) / RATE <= MAX_PHRASE_S:
        return [x]
    db = frame_db(x)
    quiet = db < db.max() - 30.0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], quiet.astype(np.int8), [0]))))
    pauses = [(e - s, (s + e) // 2) for s, e in edges.reshape(-1, 2) if (e - s) * FRAME / RATE >= MIN_PAUSE_S]
    for _, centre in sorted(pauses, reverse=True):
        left, right = x[: centre * FRAME], x[centre * FRAME:]
        if len(left) / RATE >= MIN_PHRASE_S and len(right) / RATE >= MIN_PHRASE_S:
            return split(trim(left)) + split(trim(right))
    return [x]  # no usable pause: keep it whole


def write(out: Path, name: str, x: np.ndarray) -> float:
    peak = np.max(np.abs(x))
    y = x * (10 ** (PEAK_DBFS / 20) / peak)
    sf.write(str(out / name), np.round(y * 32767).astype(np.int16), RATE, subtype="PCM_16", format="FLAC")
    return round(len(y) / RATE, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--vctk4", type=Path, nargs="+", required=True)
    parser.add_argument("--vctk-demo", type=Path, required=True)
    parser.add_argument("--voicebank", type=Path, required=True)
    parser.add_argument("--samples", type=Path, required=True)
    parser.add_argument("--ljspeech", type=Path, required=True)
    args = parser.parse_args()
    out: Path = args.out
    (out / "clips").mkdir(parents=True, exist_ok=True)

    sources: dict[str, list[tuple[Path, str]]] = {}  # speaker -> [(file, origin)]
    for folder in args.vctk4:
        for path in sorted(folder.glob("p22[5-8]/p22[5-8]_*.wav")):
            sources.setdefault(path.parent.name, []).append((path, f"VCTK {path.stem}"))
    for path in sorted(args.vctk_demo.glob("p*/p*_023.wav")):
        sources.setdefault(path.parent.name, []).append((path, f"VCTK {path.stem}"))
    for path in sorted(args.voicebank.glob("p287_*.wav")):
        sources.setdefault("p287", []).append((path, f"VoiceBank clean {path.stem}"))
    for path in sorted(args.samples.glob("*_00000.mp3")):
        speaker = path.stem.split("_")[0]
        key = speaker if speaker.startswith("p") else f"ls{speaker}"
        sources.setdefault(key, []).append((path, f"{'VCTK' if key.startswith('p') else 'LibriSpeech'} "
                                                  f"speaker {speaker}"))
    for path in sorted(args.ljspeech.glob("LJ001-*.wav")):
        sources.setdefault("LJ", []).append((path, f"LJ Speech {path.stem}"))

    speakers: dict[str, dict] = {}
    clips: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for speaker, files in sorted(sources.items()):
        if speaker.startswith("p"):
            gender, accent = VCTK_INFO[speaker]
            corpus, licence = VCTK
        elif speaker == "LJ":
            gender, accent, corpus, licence = "F", "US English", "LJ Speech 1.1", "Public domain"
        else:
            gender, accent = "", "English (LibriVox reader)"
            corpus, licence = LIBRI
        speakers[speaker] = {"role": "agent" if speaker in AGENTS else "caller", "gender": gender,
                             "accent": accent, "corpus": corpus, "licence": licence}
        kept_s = 0.0
        for path, origin in files:
            if kept_s >= MAX_SPEAKER_S:
                break
            stem = re.sub(r"[^A-Za-z0-9_-]", "", path.stem)
            if (speaker, stem) in seen:  # the same VCTK utterance from two repositories
                continue
            seen.add((speaker, stem))
            for i, phrase in enumerate(split(trim(load(path)))):
                name = f"clips/{speaker}_{stem.removeprefix(speaker + '_')}_{i}.flac"
                clips.append({"file": name, "speaker": speaker, "kind": "speech", "source": origin,
                              "duration_s": write(out, name, phrase)})
                kept_s += clips[-1]["duration_s"]

    index = {"sample_rate": RATE, "speakers": speakers, "clips": clips}
    (out / "index.json").write_text(json.dumps(index, indent=1) + "\n")
    total = sum(c["duration_s"] for c in clips)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"{len(clips)} clips, {len(speakers)} talkers, {total:.0f} s of speech, {size / 1e6:.2f} MB in {out}")


if __name__ == "__main__":
    main()
