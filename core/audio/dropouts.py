"""Dropouts inside speech: lost packets (sudden runs of near-digital silence) and frozen frames.

RTP loss without concealment leaves holes of whole packets (10-20 ms multiples) where the
recorder writes digital silence; concealment that repeats the last packet leaves frames that
are exact copies of the previous ones. Natural speech does neither: its energy falls over tens
of milliseconds and never below the line's noise floor in the middle of a word. A dropout here
is a run of 10 ms frames below ``floor_db`` that starts and ends with a step of at least
``step_db`` from loud frames, inside the track's speech.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.audio.io import AudioClip
from core.audio.levels import frame_energy_db, interval_mask
from core.audio.silence import runs_of_true
from core.results import Interval


@dataclass(frozen=True)
class DropoutResult:
    """Lost and frozen stretches of one track's speech."""

    dropouts: tuple[Interval, ...]
    frozen: tuple[Interval, ...]
    speech_s: float

    @property
    def lost_s(self) -> float:
        return float(sum(d.duration_s for d in self.dropouts) + sum(f.duration_s for f in self.frozen))

    @property
    def events(self) -> int:
        return len(self.dropouts) + len(self.frozen)

    @property
    def loss_ratio(self) -> float:
        return self.lost_s / self.speech_s if self.speech_s > 0 else 0.0

    @property
    def events_per_min(self) -> float:
        return self.events / (self.speech_s / 60) if self.speech_s > 0 else 0.0


def detect_dropouts(
    clip: AudioClip,
    speech: Sequence[Interval],
    *,
    frame_ms: float = 10.0,
    floor_db: float = -60.0,
    loud_db: float = -45.0,
    step_db: float = 25.0,
    max_run_ms: float = 400.0,
) -> DropoutResult:
    """Find packet-loss dropouts and frozen frames inside the speech segments of ``clip``.

    Parameters
    ----------
    clip : AudioClip
    speech : sequence of Interval
        VAD speech segments of this track; only their inside is searched.
    frame_ms : float
        Analysis frame; RTP packets are 10-30 ms, so 10 ms frames resolve single lost packets.
    floor_db, loud_db, step_db : float
        A dropout frame is below ``floor_db``; the frames just before and after the run are at
        least ``loud_db`` and ``step_db`` louder than the run.
    max_run_ms : float
        Longer holes are pauses or mutes, not packet loss.
    """
    frame_s = frame_ms / 1000
    n = int(round(frame_s * clip.sample_rate))
    energy = frame_energy_db(clip.samples, clip.sample_rate, frame_s=frame_s)
    speech_s = float(sum(iv.duration_s for iv in speech))
    if energy.size < 3 or speech_s == 0:
        return DropoutResult((), (), speech_s)
    in_speech = interval_mask(speech, energy.size, frame_s)
    starts, ends = runs_of_true(energy < floor_db)
    max_run = int(round(max_run_ms / frame_ms))
    dropouts = []
    for a, b in zip(starts, ends, strict=True):
        if a == 0 or b >= energy.size or b - a > max_run:
            continue
        before, after, run_max = energy[a - 1], energy[b], energy[a:b].max()
        if not (in_speech[a - 1] or in_speech[b]):
            continue
        if min(before, after) >= loud_db and min(before, after) - run_max >= step_db:
            dropouts.append(Interval(a * frame_s, b * frame_s))
    # frozen frames: a loud 10 ms frame identical to the previous one (packet repetition)
    count = energy.size
    frames = clip.samples[: count * n].reshape(count, n)
    same = np.zeros(count, dtype=bool)
    same[1:] = np.all(frames[1:] == frames[:-1], axis=1)
    same &= (energy >= loud_db) & in_speech
    f_starts, f_ends = runs_of_true(same)
    frozen = tuple(Interval(a * frame_s, b * frame_s) for a, b in zip(f_starts, f_ends, strict=True))
    return DropoutResult(tuple(dropouts), frozen, speech_s)


def detect_mix_gaps(
    clip: AudioClip,
    speech: Sequence[Interval],
    *,
    sub_ms: float = 2.5,
    drop_db: float = 18.0,
    min_ms: float = 10.0,
    max_ms: float = 400.0,
    edge_db: float = 6.0,
) -> DropoutResult:
    """Holes left by lost packets in one talker's speech, as a mix (even a 16 kbit/s MP3) shows them.

    In a mix, a packet lost on one leg while that talker speaks leaves a hole in the mix (the
    other side is usually silent then). A low-rate MP3 smears the hole's digital silence, so
    :func:`detect_dropouts`' absolute floor no longer applies; what survives is its shape: the
    level falls by at least ``drop_db`` within 5 ms, stays that far below the level before for
    ``min_ms`` to ``max_ms``, and comes back as abruptly, and the speech on both sides of it is
    loud (within ``edge_db`` of the side's active level): a packet is lost in the middle of a
    word, whereas speech decays over tens of milliseconds at the end of a sound, and even
    synthetic speech that stops abruptly between words starts the next one softly.

    Parameters
    ----------
    clip : AudioClip
        The mix.
    speech : sequence of Interval
        One side's speech; only holes that start inside it count.
    sub_ms : float
        Resolution of the level track.

    Returns
    -------
    DropoutResult
        The holes as ``dropouts`` (``frozen`` is empty).
    """
    speech_s = float(sum(iv.duration_s for iv in speech))
    step = int(round(sub_ms / 1000 * clip.sample_rate))
    energy = frame_energy_db(clip.samples, clip.sample_rate, frame_s=sub_ms / 1000)
    if energy.size < 8 or speech_s == 0:
        return DropoutResult((), (), speech_s)
    inside = interval_mask(speech, energy.size, sub_ms / 1000)
    level = float(10 * np.log10(np.mean(10 ** (energy[inside] / 10)))) if inside.any() else 0.0
    edge = 2  # sub-frames: a drop or a rise within 5 ms is abrupt
    min_len, max_len = int(round(min_ms / sub_ms)), int(round(max_ms / sub_ms))
    holes = []
    i = edge
    n = energy.size
    while i < n - edge:
        if inside[i] and energy[i - edge] - energy[i] >= drop_db:
            before = float(energy[max(0, i - 4): i - edge + 1].max())
            j = i
            while j < n and j - i < max_len and energy[j] <= before - drop_db:
                j += 1
            if min_len <= j - i < max_len and j < n - edge:
                after = float(energy[j: j + edge + 2].max())
                loud = min(before, after) >= level - edge_db
                if loud and after - energy[j - 1] >= 0.8 * drop_db and after - energy[i:j].max() >= 0.8 * drop_db:
                    holes.append(Interval(i * step / clip.sample_rate, j * step / clip.sample_rate))
                    i = j
                    continue
        i += 1
    return DropoutResult(tuple(holes), (), speech_s)
