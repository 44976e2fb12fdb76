"""Benchmark inputs: 1, 3 and 10-minute two-leg calls and one 3-minute mixed MP3, built from the corpus.

Each two-leg call concatenates the ``-in`` / ``-out`` legs of the corpus's channel-layout calls
(in ``labels.json`` order, starting again from the first when the corpus runs out) and cuts
both legs at exactly the target length, so the legs stay aligned as in a real recording. The
legs are written as 8 kHz 16-bit PCM WAV under ViciDial names, one folder per call, so that
``callqa analyze`` finds both legs by itself. The MP3 mixes the 3-minute legs with ``sox -m``
(each leg -6 dB, as the corpus's ``-all`` files) and encodes the mix with ``ffmpeg``/LAME at
16 kbit/s mono, as ViciDial compresses recordings; it sits alone in its folder, so it is
analysed as the ``mixed`` layout.

Everything is deterministic (no dither, bit-exact MP3 flags, no metadata): building twice gives
byte-identical files, and ``manifest.json`` records their sha256. The files are rebuilt only
when missing or when the manifest's recipe differs.

Usage::

    .venv/bin/python -m bench.inputs [--out bench/results/inputs] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CALLQA_SHARED", ROOT.parent / "shared"))
CORPUS = SHARED / "corpus"
DEFAULT_OUT = ROOT / "bench" / "results" / "inputs"
RATE = 8000
#: bump when the way inputs are built changes (the manifest then no longer matches: rebuild)
RECIPE = "bench-inputs-2"
MP3_BITRATE = "16k"


@dataclass(frozen=True)
class BenchInput:
    """One benchmark input: a call the bench analyses.

    Attributes
    ----------
    name : str
        Short label (``call-1m``, ``call-3m``, ``call-10m``, ``mix-3m``).
    call_id : str
        ViciDial-style call name (``FULLDATE_PHONE``).
    kind : str
        ``channel`` (two legs) or ``mixed`` (one MP3).
    files : dict of role to Path
        ``in``/``out`` for two-leg calls, ``all`` for the MP3.
    duration_s : float
        Call length in seconds.
    """

    name: str
    call_id: str
    kind: str
    files: dict[str, Path]
    duration_s: float

    @property
    def primary(self) -> Path:
        """The file to hand to ``callqa analyze`` (the ``-in`` leg or the MP3)."""
        return self.files.get("in") or self.files["all"]

    @property
    def legs(self) -> list[Path]:
        """The files the baseline processes one by one."""
        return [self.files[r] for r in ("in", "out", "all") if r in self.files]

    def as_dict(self) -> dict:
        return {"name": self.name, "call_id": self.call_id, "kind": self.kind, "duration_s": self.duration_s,
                "files": {k: str(v) for k, v in self.files.items()}}


#: (name, minutes, call id) of the two-leg calls
CALLS = (
    ("call-1m", 1, "20261201-090000_5550000001"),
    ("call-3m", 3, "20261201-091000_5550000003"),
    ("call-10m", 10, "20261201-092000_5550000010"),
)
MIX = ("mix-3m", "call-3m", "20261201-093000_5550000103")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def channel_calls(corpus: Path = CORPUS) -> list[dict]:
    """The corpus calls recorded with separate legs (``layout == "channel"``), in labels order."""
    labels = json.loads((corpus / "labels.json").read_text())
    if int(labels["sample_rate"]) != RATE:
        raise SystemExit(f"{corpus}: expected {RATE} Hz recordings")
    return [c for c in labels["calls"] if c["layout"] == "channel"]


def _pcm16(path: Path) -> np.ndarray:
    """Decode a corpus leg (PCM, mu-law or GSM WAV) to int16, exactly as callqa decodes it."""
    from core.audio.io import load_mono

    clip = load_mono(path)
    if clip.sample_rate != RATE:
        raise SystemExit(f"{path}: {clip.sample_rate} Hz, expected {RATE}")
    # float32 samples are int16 / 32768 exactly, so this round trip is lossless
    return np.clip(np.round(clip.samples.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def concat_legs(seconds: float, corpus: Path = CORPUS) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Caller (-in) and agent (-out) legs of ``seconds`` seconds and the corpus calls used."""
    calls = channel_calls(corpus)
    target = int(round(seconds * RATE))
    parts_in: list[np.ndarray] = []
    parts_out: list[np.ndarray] = []
    used: list[str] = []
    have = 0
    i = 0
    while have < target:
        call = calls[i % len(calls)]
        a = _pcm16(corpus / call["files"]["in"])
        b = _pcm16(corpus / call["files"]["out"])
        n = max(len(a), len(b))  # keep the legs aligned: pad the shorter one with silence
        parts_in.append(np.pad(a, (0, n - len(a))))
        parts_out.append(np.pad(b, (0, n - len(b))))
        used.append(call["call_id"])
        have += n
        i += 1
    return np.concatenate(parts_in)[:target], np.concatenate(parts_out)[:target], used


def _write_wav(path: Path, samples: np.ndarray) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, RATE, subtype="PCM_16", format="WAV")


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")


def make_mp3(leg_in: Path, leg_out: Path, target: Path, work: Path) -> None:
    """Mix two legs with sox (each -6 dB, no dither) and encode a 16 kbit/s mono MP3 with ffmpeg."""
    mix = work / "mix.wav"
    _run(["sox", "-D", "-m", "-v", "0.5", str(leg_in), "-v", "0.5", str(leg_out), "-b", "16", str(mix)])
    target.parent.mkdir(parents=True, exist_ok=True)
    _run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(mix),
          "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
          "-ac", "1", "-ar", str(RATE), "-c:a", "libmp3lame", "-b:a", MP3_BITRATE, "-id3v2_version", "0",
          "-write_xing", "0", str(target)])
    mix.unlink()


def _inputs_from_manifest(manifest: dict) -> list[BenchInput]:
    return [BenchInput(e["name"], e["call_id"], e["kind"], {k: Path(v) for k, v in e["files"].items()},
                       float(e["duration_s"])) for e in manifest["inputs"]]


def _manifest_ok(out: Path) -> dict | None:
    path = out / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("recipe") != RECIPE or manifest.get("out") != str(out):
        return None
    for entry in manifest["inputs"]:
        for role, file in entry["files"].items():
            p = Path(file)
            if not p.is_file() or p.stat().st_size != entry["bytes"][role]:
                return None
    return manifest


def build_inputs(out: Path = DEFAULT_OUT, *, force: bool = False, corpus: Path = CORPUS,
                 verify: bool = False) -> list[BenchInput]:
    """Build (or reuse) the benchmark inputs under ``out`` and return them.

    Parameters
    ----------
    out : Path
        Work folder (git-ignored under ``bench/results``).
    force : bool
        Rebuild even when the manifest matches.
    verify : bool
        Also check every file's sha256 against the manifest (else only sizes are checked).
    """
    out = out.resolve()
    manifest = None if force else _manifest_ok(out)
    if manifest is not None and verify:
        for entry in manifest["inputs"]:
            for role, file in entry["files"].items():
                if sha256_of(Path(file)) != entry["sha256"][role]:
                    manifest = None
                    break
            if manifest is None:
                break
    if manifest is not None:
        return _inputs_from_manifest(manifest)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries = []
    legs_by_name: dict[str, dict[str, Path]] = {}
    for name, minutes, call_id in CALLS:
        a, b, used = concat_legs(minutes * 60.0, corpus)
        files = {"in": out / name / f"{call_id}-in.wav", "out": out / name / f"{call_id}-out.wav"}
        _write_wav(files["in"], a)
        _write_wav(files["out"], b)
        legs_by_name[name] = files
        entries.append({"name": name, "call_id": call_id, "kind": "channel", "duration_s": len(a) / RATE,
                        "files": {k: str(v) for k, v in files.items()}, "sources": used})
    mix_name, from_name, mix_id = MIX
    src = legs_by_name[from_name]
    mp3 = out / mix_name / f"{mix_id}-all.mp3"
    make_mp3(src["in"], src["out"], mp3, out)
    import soundfile as sf

    entries.append({"name": mix_name, "call_id": mix_id, "kind": "mixed",
                    "duration_s": round(sf.info(str(mp3)).duration, 3), "files": {"all": str(mp3)},
                    "sources": [f"sox -m of {from_name}", f"ffmpeg libmp3lame {MP3_BITRATE} mono {RATE} Hz"]})
    for entry in entries:
        entry["sha256"] = {role: sha256_of(Path(f)) for role, f in entry["files"].items()}
        entry["bytes"] = {role: Path(f).stat().st_size for role, f in entry["files"].items()}
    manifest = {"recipe": RECIPE, "out": str(out), "corpus": str(corpus), "inputs": entries}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return _inputs_from_manifest(manifest)


def copy_for_scan(inputs: list[BenchInput], folder: Path, copies: int) -> float:
    """Fill ``folder`` with ``copies`` renamed copies of every input; return their call-seconds.

    Each copy gets its own call id (``20261202-10MMSS_555CCCJJJJ``), numbered longest call first so
    that a scan, which takes calls in call-id order, does not end with one long call running alone
    while the other workers idle. Copies are hard links when possible (same bytes, new names).
    """
    folder.mkdir(parents=True, exist_ok=True)
    order = sorted(inputs, key=lambda i: -i.duration_s)
    total = 0.0
    idx = 0
    for j, item in enumerate(order):
        for k in range(copies):
            new_id = f"20261202-10{idx // 60:02d}{idx % 60:02d}_555{k:03d}{j:04d}"
            idx += 1
            for role, path in item.files.items():
                target = folder / f"{new_id}-{role}{path.suffix}"
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
            total += item.duration_s
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--force", action="store_true", help="rebuild even if the manifest matches")
    args = parser.parse_args(argv)
    if not (CORPUS / "labels.json").is_file():
        print(f"{CORPUS}: corpus not found (set CALLQA_SHARED)", file=sys.stderr)
        return 2
    for item in build_inputs(args.out, force=args.force, verify=True):
        print(f"{item.name:9} {item.kind:8} {item.duration_s:7.2f} s  " + "  ".join(str(p) for p in item.legs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
