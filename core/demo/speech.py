"""Where the demo's voices come from: real recorded speech, or espeak-ng when that folder is missing.

The speech folder (``index.json``, ``clips/*.flac`` with ``clips/ATTRIBUTION.md`` beside them; made by
``scripts/prepare_demo_speech.py``) holds short utterances of real talkers at 8 kHz under
licences that allow redistribution. It is looked for in ``$CALLQA_DEMO_SPEECH``, then
``<project>/demo-speech``, then ``<project>/../shared/demo-speech``. Without it the same talker
ids are voiced by espeak-ng (a fallback: synthetic speech scores lower on NISQA).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from core.demo.chain import SAMPLE_RATE_HZ, frame_db
from core.errors import ConfigError

SPEECH_ENV = "CALLQA_DEMO_SPEECH"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
INDEX_NAME = "index.json"
ESPEAK_RATE_WPM = 155
_TRIM_RANGE_DB = 50.0

# espeak-ng voices standing in for the recorded talkers (same ids, so the month plan is the same)
ESPEAK_VOICES = {
    "p225": "en-gb+f3", "p226": "en-gb+m3", "p227": "en-gb-x-rp", "p228": "en+f4", "LJ": "en-us+f2",
    "p287": "en-us+m3", "p230": "en-us+f3", "p243": "en-gb-scotland", "p233": "en-us+f4", "p236": "en+f2",
    "p244": "en-gb+f2", "p254": "en-us+m1", "p258": "en-gb+m1", "p259": "en-us+m2", "p273": "en+m4",
    "p240": "en-gb+f4", "p260": "en-gb-scotland+m2", "ls1320": "en-us+m4", "ls3575": "en-us+f1",
    "ls6829": "en+f1", "ls8230": "en-gb+m4",
}
_AGENT_LINES = (
    "Thank you for calling, my name is on the screen, how can I help you today?",
    "Let me pull up your account, one moment please.",
    "I can see the order here, it shipped on Monday.",
    "Could you confirm the address on the account for me?",
    "That plan is twelve dollars a month and you can cancel at any time.",
    "I have updated that for you, you will get an email shortly.",
    "Is there anything else I can help you with today?",
    "Thank you for your patience, have a great day.",
)
_CALLER_LINES = (
    "Hello?", "Yes, this is me speaking.", "I am calling about my last bill.",
    "It is the one on the kitchen counter, I think.", "Okay, that sounds fine to me.",
    "No, that is everything, thank you.",
)


@dataclass(frozen=True)
class Talker:
    """One voice: its phrases (float64 arrays at 8 kHz)."""

    talker_id: str
    role: str  # agent | caller
    phrases: tuple[np.ndarray, ...]
    corpus: str = ""
    licence: str = ""


@dataclass(frozen=True)
class SpeechBank:
    """Every talker the demo can use; ``source`` is ``recorded`` (with ``root``) or ``espeak``."""

    source: str
    talkers: dict[str, Talker]
    root: Path | None = None


def speech_dir() -> Path | None:
    """The speech folder to use, or None when none of the candidate places holds one."""
    candidates = [Path(os.environ[SPEECH_ENV])] if os.environ.get(SPEECH_ENV) else []
    candidates += [PROJECT_ROOT / "demo-speech", PROJECT_ROOT.parent / "shared" / "demo-speech"]
    return next((c for c in candidates if (c / INDEX_NAME).is_file()), None)


def load_speech_bank(root: Path | None = None, *, talker_ids: set[str] | None = None) -> SpeechBank:
    """The recorded talkers of ``root`` (default :func:`speech_dir`), else the espeak-ng fallback.

    Parameters
    ----------
    root : Path, optional
        A speech folder; when omitted and none is found, espeak-ng voices the talkers.
    talker_ids : set of str, optional
        Talkers the espeak fallback must synthesize (all of :data:`ESPEAK_VOICES` by default).

    Raises
    ------
    ConfigError
        The folder's index is unreadable, or espeak-ng is needed but missing or failing.
    """
    root = root if root is not None else speech_dir()
    if root is None:
        return _espeak_bank(talker_ids or set(ESPEAK_VOICES))
    try:
        index = json.loads((root / INDEX_NAME).read_text(encoding="utf-8"))
        phrases: dict[str, list[np.ndarray]] = {}
        for clip in index["clips"]:
            audio, rate = sf.read(str(root / clip["file"]), dtype="float64")
            if rate != SAMPLE_RATE_HZ:
                audio = soxr.resample(audio, rate, SAMPLE_RATE_HZ, quality="HQ")
            phrases.setdefault(clip["speaker"], []).append(audio)
        talkers = {
            tid: Talker(tid, info["role"], tuple(phrases.get(tid, ())), info.get("corpus", ""),
                        info.get("licence", ""))
            for tid, info in index["speakers"].items()
        }
    except (OSError, ValueError, KeyError, TypeError, sf.LibsndfileError) as exc:
        raise ConfigError(f"demo speech folder {root} cannot be read ({exc})") from None
    return SpeechBank("recorded", talkers, root)


# --- espeak-ng fallback ------------------------------------------------------------------------
def find_espeak() -> str:
    """The espeak-ng executable; a ConfigError naming ``make setup`` when it is missing."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise ConfigError("espeak-ng is not installed (needed for the demo recordings when the demo speech "
                          "folder is missing); run `make setup`")
    return path


def _espeak_bank(talker_ids: set[str]) -> SpeechBank:
    espeak = find_espeak()
    talkers = {}
    for tid in sorted(talker_ids):
        voice = ESPEAK_VOICES[tid]
        lines = _AGENT_LINES if tid in ("p225", "p226", "p227", "p228", "LJ", "p287", "p230", "p243") \
            else _CALLER_LINES
        role = "agent" if lines is _AGENT_LINES else "caller"
        talkers[tid] = Talker(tid, role, tuple(synthesize(t, voice=voice, espeak=espeak) for t in lines),
                              "espeak-ng", "GPL-3.0 (synthesized)")
    return SpeechBank("espeak", talkers)


def synthesize(text: str, *, voice: str, espeak: str) -> np.ndarray:
    """One utterance at 8 kHz, float64, trimmed to where the voice is within 50 dB of its peak."""
    cmd = [espeak, "-v", voice, "-s", str(ESPEAK_RATE_WPM), "--stdout", text]
    try:
        done = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
        audio, rate = sf.read(io.BytesIO(done.stdout), dtype="float64")
    except (OSError, subprocess.SubprocessError, sf.LibsndfileError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        message = detail.decode(errors="replace").strip() or str(exc)
        raise ConfigError(f"espeak-ng failed for voice {voice!r}: {message}; run `make setup`") from None
    audio = soxr.resample(audio, rate, SAMPLE_RATE_HZ, quality="HQ")
    frames = frame_db(audio)
    if frames.size == 0 or not np.isfinite(frames.max()):
        raise ConfigError(f"espeak-ng produced no audio for voice {voice!r}; run `make setup`")
    loud = np.flatnonzero(frames >= frames.max() - _TRIM_RANGE_DB)
    hop = round(0.020 * SAMPLE_RATE_HZ)
    return audio[loud[0] * hop: (loud[-1] + 1) * hop]
