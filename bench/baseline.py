"""The seed's analysis pipeline, rebuilt as the seed describes it, to compare callqa against.

Per file of the call (each leg, or the one MP3), strictly one after the other:

1. ``sox FILE -n stat`` in a subprocess (levels, parsed from its stderr);
2. ``ffmpeg -i FILE -af silencedetect=noise=-50dB:d=0.5 -f null -`` in a subprocess (silence gaps);
3. Silero VAD with the package's TorchScript model (``silero_vad.load_silero_vad()``) and its
   ``get_speech_timestamps`` on a 16 kHz copy of the file (decoded with soundfile, resampled
   with soxr, as ``silero_vad.read_audio`` would give it);
4. NISQA on a 16 kHz mono conversion made by ``sox FILE -r 16000 -c 1`` (a temporary WAV, read
   back), cut into chunks of at most 50 s, each chunk scored as a whole file, one after the other,
   with callqa's own NISQA v2.0 implementation (the same network and weights callqa uses, so the
   comparison measures the pipeline, not two implementations).

Models load once (:class:`Baseline`), like the seed's long-running process; the runner times the
warm analyses, and ``python -m bench.baseline FILE...`` is the seed as a whole process (interpreter,
imports, model loading and one analysis), compared with a whole ``callqa analyze --json`` process. Threads: importing ``silero_vad`` sets torch's global thread count to 1 as a side
effect, so the seed's VAD runs on 1 thread (:attr:`Baseline.vad_threads`; per-frame TorchScript
calls are also the fastest that way: with 2 threads on a busy 2-core machine one minute of audio
took 17 s instead of 0.7 s); the NISQA step runs on ``threads`` (2, as callqa's NISQA). Both are set
before each step, so whatever ran before in the process does not leak in.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VAD_RATE = 16000
NISQA_RATE = 16000
CHUNK_S = 50.0
SILENCE_NOISE_DB = -50.0
SILENCE_MIN_S = 0.5
STAGES = ("sox_stat", "silencedetect", "vad", "resample", "nisqa")

_STAT_LINE = re.compile(r"^([A-Za-z ()]+?):\s+(-?[\d.]+)\s*$")
_SIL_START = re.compile(r"silence_start: (-?[\d.]+)")
_SIL_END = re.compile(r"silence_end: (-?[\d.]+)")


@dataclass
class BaselineResult:
    """What the seed pipeline produced for one call, and how long each stage took."""

    files: dict[str, dict] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings_s[stage] = self.timings_s.get(stage, 0.0) + seconds


def sox_stat(path: Path) -> dict[str, float]:
    """``sox FILE -n stat``: the numbers it prints on stderr."""
    proc = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sox stat {path}: {proc.stderr.strip()}")
    out = {}
    for line in proc.stderr.splitlines():
        m = _STAT_LINE.match(line.strip())
        if m:
            out[m.group(1).strip()] = float(m.group(2))
    return out


def silencedetect(path: Path, *, noise_db: float = SILENCE_NOISE_DB, min_s: float = SILENCE_MIN_S) -> list[tuple[float, float]]:
    """``ffmpeg silencedetect``: silence intervals (start, end) in seconds."""
    proc = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-af", f"silencedetect=noise={noise_db}dB:d={min_s}",
         "-f", "null", "-"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg silencedetect {path}: {proc.stderr.strip()[-300:]}")
    starts = [float(x) for x in _SIL_START.findall(proc.stderr)]
    ends = [float(x) for x in _SIL_END.findall(proc.stderr)]
    if len(ends) < len(starts):  # silence running to the end of the file
        import soundfile as sf

        ends.append(sf.info(str(path)).duration)
    return list(zip(starts, ends, strict=False))


def sox_resample(path: Path, target: Path, rate: int = NISQA_RATE) -> None:
    """``sox FILE -r 16000 -c 1 -b 16 TARGET`` (the seed's NISQA input)."""
    proc = subprocess.run(["sox", str(path), "-r", str(rate), "-c", "1", "-b", "16", str(target)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"sox resample {path}: {proc.stderr.strip()}")


class Baseline:
    """The seed pipeline with its models loaded (Silero TorchScript, NISQA).

    Parameters
    ----------
    quality_model : NisqaModel, optional
        Defaults to :func:`core.quality.manager.get_quality_model`.
    threads : int
        Torch threads for NISQA (callqa's default is 2).
    """

    def __init__(self, quality_model=None, *, threads: int = 2) -> None:
        import torch
        from silero_vad import get_speech_timestamps, load_silero_vad

        self.threads = threads
        self.vad_threads = 1  # what importing silero_vad sets (torch.set_num_threads(1) in silero_vad.model)
        self.vad = load_silero_vad()  # TorchScript (silero_vad.jit)
        self._timestamps = get_speech_timestamps
        if quality_model is None:
            from core.quality.manager import get_quality_model

            quality_model = get_quality_model(threads=threads, backend="torch")  # the seed's NISQA ran on PyTorch
        self.model = quality_model
        torch.set_num_threads(threads)

    def vad_segments(self, samples16k: np.ndarray) -> list[dict]:
        import torch

        return self._timestamps(torch.from_numpy(samples16k), self.vad, sampling_rate=VAD_RATE, return_seconds=True)

    def analyze(self, files: list[Path], *, tmp_dir: Path | None = None) -> BaselineResult:
        """Analyse the files of one call the seed's way, sequentially; per-stage timings in the result."""
        import soundfile as sf
        import soxr
        import torch

        result = BaselineResult()
        with tempfile.TemporaryDirectory(prefix="callqa-baseline-", dir=tmp_dir) as tmp:
            for path in files:
                entry: dict = {}
                t = time.perf_counter()
                entry["stat"] = sox_stat(path)
                result.add_time("sox_stat", time.perf_counter() - t)

                t = time.perf_counter()
                entry["silences"] = silencedetect(path)
                result.add_time("silencedetect", time.perf_counter() - t)

                t = time.perf_counter()
                torch.set_num_threads(self.vad_threads)
                data, rate = sf.read(str(path), dtype="float32", always_2d=True)
                mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                x16 = soxr.resample(mono, rate, VAD_RATE).astype(np.float32) if rate != VAD_RATE else mono
                entry["speech"] = self.vad_segments(np.ascontiguousarray(x16))
                result.add_time("vad", time.perf_counter() - t)

                t = time.perf_counter()
                converted = Path(tmp) / f"{path.stem}-16k.wav"
                sox_resample(path, converted)
                samples, rate16 = sf.read(str(converted), dtype="float32")
                result.add_time("resample", time.perf_counter() - t)

                t = time.perf_counter()
                torch.set_num_threads(self.threads)
                chunk = int(CHUNK_S * rate16)
                scores = []
                for start in range(0, len(samples), chunk):
                    piece = samples[start: start + chunk]
                    if len(piece) < self.model.min_samples(rate16):
                        continue
                    scores.append(self.model.score_batch([(piece, rate16)])[0])
                entry["mos"] = float(np.mean([s.mos for s in scores])) if scores else None
                entry["chunks"] = len(scores)
                result.add_time("nisqa", time.perf_counter() - t)
                result.files[str(path)] = entry
        result.timings_s["total"] = sum(v for k, v in result.timings_s.items() if k in STAGES)
        return result


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.baseline FILE...``: one call analysed the seed's way in a fresh process;
    prints the per-stage timings as JSON."""
    import json
    import sys

    files = [Path(a) for a in (argv if argv is not None else sys.argv[1:])]
    if not files:
        print("usage: python -m bench.baseline FILE [FILE...]", file=sys.stderr)
        return 2
    result = Baseline().analyze(files)
    print(json.dumps({"timings_s": result.timings_s, "files": len(result.files)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
