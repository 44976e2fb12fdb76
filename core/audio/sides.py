"""What a leg gets, measured for each side of a mixed recording.

Once :mod:`core.audio.diarize` has split a mix into two sides, each side is measured on the
mix, restricted to its own speech:

* **stats**: ``sox stat`` quantities over the side's speech samples; clipping counts samples
  that reach the *leg's* full scale inside the mix, within 1 dB, because a 16 kbit/s MP3 leaves
  no flat tops to count. A ``-all`` mix (``sox -m`` of two legs) halves each leg, so a clipped
  leg tops out at -6 dBFS (``[analysis] mix_leg_gain_db``); a conference bridge sums its
  members at unity (``conference_leg_gain_db``, 0 dB) — :func:`leg_gain_db`;
* **levels**: the side's active speech level, the mix's noise floor (the background is shared:
  a mix cannot tell whose line carries it);
* **dropouts**: abrupt holes in the side's speech (:func:`core.audio.dropouts.detect_mix_gaps`);
* **quality**: NISQA over the side's speech alone: its speech stretches are joined (10 ms
  fades) into one track, scored in windows as a leg is, and each window mapped back to the
  call's time axis (from the start of its first stretch to the end of its last).

Silence gaps, dead air and whole-track statistics stay with the mixed track (call level).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.audio.dropouts import DropoutResult, detect_mix_gaps
from core.audio.io import AudioClip
from core.audio.levels import LevelResult, measure_levels
from core.audio.stats import amplitude_to_db
from core.config import AnalysisConfig
from core.results import Interval, QualityWindow, TrackQuality, TrackStats

FADE_S = 0.01


@dataclass(frozen=True)
class JoinedSpeech:
    """One side's speech cut out of the mix and joined: the clip and where each piece came from.

    ``pieces`` holds ``(start_in_joined_s, start_in_call_s, duration_s)`` per speech stretch.
    """

    clip: AudioClip
    pieces: tuple[tuple[float, float, float], ...]

    def to_call_time(self, t: float, *, end: bool = False) -> float:
        """Map a time in the joined clip to the call's time axis (``end``: a boundary belongs to the
        piece it closes, not the one it opens)."""
        for joined, call, dur in self.pieces:
            if t < joined + dur or (end and t <= joined + dur):
                return call + max(0.0, t - joined)
        joined, call, dur = self.pieces[-1]
        return call + dur


def join_speech(mix: AudioClip, segments: Sequence[Interval]) -> JoinedSpeech | None:
    """The side's speech stretches of ``mix`` joined into one clip (None without speech)."""
    sr = mix.sample_rate
    fade = int(FADE_S * sr)
    ramp = (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, fade))).astype(np.float32) if fade > 1 else None
    parts, pieces, at = [], [], 0.0
    for iv in segments:
        a, b = int(round(iv.start_s * sr)), min(len(mix.samples), int(round(iv.end_s * sr)))
        if b <= a:
            continue
        piece = mix.samples[a:b].astype(np.float32, copy=True)
        if ramp is not None and len(piece) > 2 * fade:
            piece[:fade] *= ramp
            piece[-fade:] *= ramp[::-1]
        parts.append(piece)
        pieces.append((at, a / sr, (b - a) / sr))
        at += (b - a) / sr
    if not parts:
        return None
    joined = AudioClip(np.concatenate(parts), sr, mix.path, mix.encoding, mix.full_scale, mix.channel)
    return JoinedSpeech(joined, tuple(pieces))


def leg_gain_db(layout: str, cfg: AnalysisConfig) -> float:
    """The gain each talker's leg got in a mixed track of ``layout``."""
    return cfg.conference_leg_gain_db if layout == "conference" else cfg.mix_leg_gain_db


def side_stats(mix: AudioClip, segments: Sequence[Interval], gain_db: float) -> TrackStats:
    """``sox stat`` quantities over one side's speech, clipping against the leg's rail in the mix
    (the encoding's full scale times ``gain_db``, within 1 dB)."""
    joined = join_speech(mix, segments)
    if joined is None:
        return TrackStats(rms_db=amplitude_to_db(0.0), peak_db=amplitude_to_db(0.0), duration_s=0.0,
                          dc_offset=0.0, clipped_samples=0, clip_ratio=0.0)
    x = joined.clip.samples.astype(np.float64)
    peak = float(np.abs(x).max())
    rail = mix.full_scale * 10 ** ((gain_db - 1.0) / 20)
    clipped = int(np.count_nonzero(np.abs(x) >= rail))
    return TrackStats(
        rms_db=amplitude_to_db(float(np.sqrt(np.mean(x * x)))),
        peak_db=amplitude_to_db(peak),
        duration_s=x.size / mix.sample_rate,
        dc_offset=float(x.mean()),
        clipped_samples=clipped,
        clip_ratio=clipped / x.size,
    )


@dataclass(frozen=True)
class SideMeasures:
    """Everything measured for one side of a mix (quality comes separately, batched)."""

    stats: TrackStats
    levels: LevelResult
    dropouts: DropoutResult


def measure_side(mix: AudioClip, segments: Sequence[Interval], noise_db: float | None,
                 gain_db: float) -> SideMeasures:
    """Stats, levels (the mix's shared noise floor) and holes of one side's speech."""
    speech_db = measure_levels(mix, segments).speech_db
    return SideMeasures(side_stats(mix, segments, gain_db), LevelResult(speech_db, noise_db),
                        detect_mix_gaps(mix, segments))


def score_sides(model, mix: AudioClip, sides: Mapping[str, Sequence[Interval]], cfg: AnalysisConfig
                ) -> dict[str, tuple[TrackQuality | None, str | None]]:
    """NISQA per side over its joined speech (one batch for all sides), windows on the call's axis."""
    from core.quality.windows import score_tracks

    joined = {name: join_speech(mix, segs) for name, segs in sides.items()}
    present = {name: j for name, j in joined.items() if j is not None}
    out: dict[str, tuple[TrackQuality | None, str | None]] = {
        name: (None, f"no {name} speech in the mix") for name in sides if name not in present}
    if not present:
        return out
    scored = score_tracks(
        model, {n: j.clip for n, j in present.items()},
        {n: [Interval(0.0, j.clip.duration_s)] for n, j in present.items()},
        window_s=cfg.quality_window_s, hop_s=cfg.quality_hop_s, min_speech_s=cfg.quality_min_speech_s,
    )
    for name, (quality, reason) in scored.items():
        if quality is None:
            out[name] = (None, reason)
            continue
        j = present[name]
        windows = tuple(
            QualityWindow(start_s=j.to_call_time(w.start_s), end_s=j.to_call_time(w.end_s, end=True), scores=w.scores,
                          speech_s=w.speech_s)
            for w in quality.windows
        )
        out[name] = (TrackQuality(scores=quality.scores, windows=windows, model=quality.model), None)
    return {name: out[name] for name in sides}
