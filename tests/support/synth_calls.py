"""Synthetic two-talker calls with known turns, from espeak-ng voices (known answers for diarization).

Each talker is an espeak-ng voice; sentences are synthesised at 8 kHz, band-limited to the
telephone band and placed turn by turn with known gaps. The truth of each side is where its
sentences sit (20 ms frames within 35 dB of each sentence's peak, as the corpus labels are
defined). Enrollment audio for a voice uses sentences that no call uses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field

import numpy as np
import soxr
from scipy import signal

from tests.support.mixed_truth import talker_truth

RATE = 8000
AGENT_VOICE = "en-us+m3"
CALLER_VOICE = "en-us+f2"
AGENT_LINES = (
    "Thank you for calling, my name is Daniel, how can I help you today.",
    "I can certainly look into that for you, may I have your account number please.",
    "Thank you, I can see the order was shipped on Monday morning.",
    "It should arrive within two business days at the latest.",
    "Is there anything else I can help you with today.",
    "You are welcome, have a wonderful afternoon.",
)
CALLER_LINES = (
    "Hi, I am calling about a parcel that has not arrived yet.",
    "Sure, it is four seven one two nine eight three.",
    "Oh great, so when will it get here.",
    "Alright, that sounds fine to me.",
    "No, that is everything, thanks a lot.",
)
ENROLL_LINES = (
    "Good morning, you are speaking with the billing department.",
    "Let me transfer you to a colleague who handles refunds.",
    "Your ticket number has been sent to you by email.",
    "Please stay on the line while I check the details.",
)
_BAND = signal.butter(4, [300, 3400], btype="bandpass", fs=RATE, output="sos")


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None or shutil.which("espeak") is not None


def requires_espeak():
    """A pytest mark: skip without espeak-ng, except in CI (CI=true), where its absence fails."""
    import pytest

    missing = not espeak_available()
    return pytest.mark.skipif(missing and os.environ.get("CI") != "true",
                              reason="espeak-ng is not installed (make setup installs it)")


def say(text: str, voice: str, *, level_db: float = -20.0) -> np.ndarray:
    """One sentence from espeak-ng at 8 kHz, telephone band, active level ``level_db``."""
    exe = shutil.which("espeak-ng") or shutil.which("espeak")
    assert exe, "espeak-ng is needed (make setup installs it)"
    raw = subprocess.run([exe, "-v", voice, "-s", "165", "--stdout", text], capture_output=True, check=True).stdout
    pcm = np.frombuffer(raw[44:], dtype="<i2").astype(np.float32) / 32768.0  # espeak writes 22.05 kHz WAV
    x = signal.sosfilt(_BAND, soxr.resample(pcm, 22050, RATE)).astype(np.float32)
    loud = np.abs(x) > 1e-4
    x = x[np.argmax(loud): len(x) - np.argmax(loud[::-1])]
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12
    return (x * (10 ** (level_db / 20) / rms)).astype(np.float32)


def truth_of(x: np.ndarray, offset_s: float) -> list[tuple[float, float]]:
    """The corpus labels' definition of speech (:func:`tests.support.mixed_truth.talker_truth`)."""
    return talker_truth(x, offset_s, RATE)


@dataclass
class SynthCall:
    """A two-talker mix and its truth."""

    mix: np.ndarray
    legs: dict[str, np.ndarray]
    truth: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return len(self.mix) / RATE


def two_talker_call(*, seed: int = 1, agent_db: float = -18.0, caller_db: float = -22.0,
                    silent: str | None = None) -> SynthCall:
    """Alternating turns (agent first), gaps of 0.4-0.9 s; ``silent`` leaves one side out."""
    rng = np.random.default_rng(seed)
    turns = []
    for i in range(max(len(AGENT_LINES), len(CALLER_LINES))):
        if i < len(AGENT_LINES):
            turns.append(("agent", say(AGENT_LINES[i], AGENT_VOICE, level_db=agent_db)))
        if i < len(CALLER_LINES):
            turns.append(("caller", say(CALLER_LINES[i], CALLER_VOICE, level_db=caller_db)))
    t = 0.5
    placed = []
    for side, x in turns:
        placed.append((side, int(t * RATE), x))
        t += len(x) / RATE + rng.uniform(0.4, 0.9)
    n = int((t + 0.5) * RATE)
    legs = {"caller": np.zeros(n, np.float32), "agent": np.zeros(n, np.float32)}
    truth: dict[str, list[tuple[float, float]]] = {"caller": [], "agent": []}
    for side, a, x in placed:
        if side == silent:
            continue
        legs[side][a: a + len(x)] += x
        truth[side] += truth_of(x, a / RATE)
    floor = (rng.standard_normal(n) * 10 ** (-66 / 20)).astype(np.float32)
    mix = (0.5 * (legs["caller"] + legs["agent"]) + floor).astype(np.float32)
    return SynthCall(mix, legs, truth)


def enrollment(voice: str = AGENT_VOICE) -> np.ndarray:
    """About 12 s of one voice (sentences no call uses), with pauses."""
    gap = np.zeros(int(0.5 * RATE), np.float32)
    return np.concatenate([np.concatenate((say(line, voice), gap)) for line in ENROLL_LINES])


def frames(intervals, duration_s: float, step: float = 0.01) -> np.ndarray:
    n = int(duration_s / step) + 1
    f = np.zeros(n, dtype=bool)
    for s, e in intervals:
        f[max(0, int(s / step)): min(n, int(e / step))] = True
    return f


def single_talker_accuracy(truth: dict, predicted: dict, duration_s: float) -> float:
    """The check's measure: over frames where exactly one true talker speaks, that talker's side
    is active and the other is not (sides given as ``caller``/``agent``)."""
    tc, ta = frames(truth["caller"], duration_s), frames(truth["agent"], duration_s)
    pc, pa = frames(predicted["caller"], duration_s), frames(predicted["agent"], duration_s)
    one = tc ^ ta
    if not one.any():
        return 1.0
    ok = np.where(tc, pc & ~pa, pa & ~pc)
    return float(ok[one].mean())
