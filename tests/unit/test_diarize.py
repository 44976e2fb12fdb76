"""Splitting a mix into sides: known answers from synthetic embeddings, signals and espeak-ng voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio.diarize import (
    SIDES_ATTRIBUTED,
    SIDES_UNATTRIBUTED,
    VoiceContext,
    Voiceprint,
    anchored_two_means,
    cluster_two,
    detect_mix_speech,
    diarize_mix,
    speaker_embedding,
    unanswered_pattern,
    window_starts,
)
from core.audio.dropouts import detect_mix_gaps
from core.audio.io import AudioClip
from core.audio.sides import join_speech, leg_gain_db, side_stats
from core.audio.speakers import get_encoder
from core.audio.vad import detect_speech, get_vad
from core.config import AnalysisConfig
from core.results import Interval
from tests.support import synth_calls as sc

CFG = AnalysisConfig()


# --- pieces, on synthetic data --------------------------------------------------------------------
def _sphere_cluster(rng, centre, n, spread):
    x = centre + spread * rng.standard_normal((n, len(centre)))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("minor", [50, 12], ids=["balanced", "monologue"])
def test_cluster_two_finds_both_voices_even_when_one_dominates(minor: int):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(256), rng.standard_normal(256)
    emb = np.vstack((_sphere_cluster(rng, a / np.linalg.norm(a), 100, 0.04),
                     _sphere_cluster(rng, b / np.linalg.norm(b), minor, 0.04)))
    truth = np.r_[np.zeros(100), np.ones(minor)]
    labels = cluster_two(emb)
    assert max(np.mean(labels == truth), np.mean(labels != truth)) == 1.0


def test_cluster_two_keeps_a_few_outliers_out_of_the_split():
    rng = np.random.default_rng(4)
    c = rng.standard_normal(256)
    emb = np.vstack((_sphere_cluster(rng, c / np.linalg.norm(c), 150, 0.03), rng.standard_normal((2, 256))))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = cluster_two(emb)
    assert labels.min() == labels.max()  # two stray windows are not a second talker


def test_anchored_two_means_pulls_the_agents_windows_to_the_agent():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(256), rng.standard_normal(256)
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    emb = np.vstack((_sphere_cluster(rng, a, 60, 0.05), _sphere_cluster(rng, b, 40, 0.05)))
    wrong = np.zeros(100, dtype=bool)
    wrong[:30] = True  # only half of the agent's windows start on the agent's side
    agent = anchored_two_means(emb, wrong, a, weight=0.3)
    assert agent[:60].all() and not agent[60:].any()


def test_window_starts_cover_long_runs_and_centre_short_ones():
    mask = np.zeros(1000, dtype=bool)
    mask[100:400] = True  # 3 s
    mask[600:660] = True  # 0.6 s
    mask[800:810] = True  # too short
    starts = window_starts(mask, 100, 50)
    long = [s for s, a, b in starts if a == 100]
    assert long == [100, 150, 200, 250, 300]  # flush with the run's end
    assert [s for s, a, b in starts if a == 600] == [580]
    assert not [s for s, a, b in starts if a == 800]


def test_unanswered_pattern_is_short_bursts_into_long_silence():
    bursts = [Interval(t, t + 1.5) for t in (1.0, 9.0, 17.0, 25.0)]
    assert unanswered_pattern(bursts, 32.0, CFG)
    conversation = [Interval(t, t + 1.5) for t in np.arange(1.0, 40.0, 2.0)]
    assert not unanswered_pattern(conversation, 42.0, CFG)


def _speechlike(rng, seconds: float) -> np.ndarray:
    """Noise shaped into 'syllables' (smooth 4 Hz envelope) at about -20 dBFS."""
    n = int(seconds * 8000)
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * np.arange(n) / 8000)
    return (0.1 * rng.standard_normal(n) * env).astype(np.float32)


def test_mix_gaps_count_abrupt_holes_not_smooth_pauses():
    rng = np.random.default_rng(6)
    x = _speechlike(rng, 10.0)
    holes = [(1.00, 1.04), (2.50, 2.52), (4.00, 4.06), (6.30, 6.34), (8.00, 8.02)]  # where the speech is loud
    lossy = x.copy()
    for s, e in holes:
        lossy[int(s * 8000):int(e * 8000)] = 0.0
    speech = [Interval(0.0, 10.0)]
    found = detect_mix_gaps(AudioClip(lossy, 8000, Path("x.wav")), speech)
    assert found.events == len(holes)
    for (s, e), iv in zip(holes, found.dropouts, strict=True):
        assert abs(iv.start_s - s) <= 0.005 and abs(iv.end_s - e) <= 0.01
    # the same holes faded over 30 ms (speech ending a sound) are not packet loss
    smooth = x.copy()
    ramp = np.linspace(1.0, 0.0, 240)
    for s, _ in holes:
        a = int(s * 8000)
        smooth[a - 240:a] *= ramp
        smooth[a:a + 400] = 0.0
        smooth[a + 400:a + 640] *= ramp[::-1]
    assert detect_mix_gaps(AudioClip(smooth, 8000, Path("x.wav")), speech).events == 0


def test_side_stats_count_samples_at_the_legs_rail_in_the_mix():
    rng = np.random.default_rng(7)
    leg = np.clip(_speechlike(rng, 4.0) * 8, -1.0, 1.0)  # driven into full scale
    clean = _speechlike(rng, 4.0)
    mix = AudioClip(np.concatenate((0.5 * leg, 0.5 * clean)).astype(np.float32), 8000, Path("m-all.wav"))
    gain = leg_gain_db("mixed", CFG)
    clipped = side_stats(mix, [Interval(0.0, 4.0)], gain)
    fine = side_stats(mix, [Interval(4.0, 8.0)], gain)
    assert clipped.clip_ratio > 0.05 and fine.clipped_samples == 0
    assert abs(clipped.duration_s - 4.0) < 1e-6
    # a conference bridge sums at unity: the same samples are far from its rail
    assert side_stats(mix, [Interval(0.0, 4.0)], leg_gain_db("conference", CFG)).clipped_samples == 0


def test_joined_speech_maps_back_to_the_call_time():
    mix = AudioClip(np.zeros(8000 * 10, np.float32), 8000, Path("m.wav"))
    joined = join_speech(mix, [Interval(1.0, 2.0), Interval(5.0, 7.5)])
    assert joined is not None and abs(joined.clip.duration_s - 3.5) < 1e-6
    assert joined.to_call_time(0.5) == pytest.approx(1.5)
    assert joined.to_call_time(1.0) == pytest.approx(5.0)
    assert joined.to_call_time(1.0, end=True) == pytest.approx(2.0)
    assert joined.to_call_time(3.5, end=True) == pytest.approx(7.5)
    assert join_speech(mix, []) is None


def test_voice_identity_changes_with_the_voiceprint_only():
    v = np.ones(256, np.float32) / 16
    a = VoiceContext("6001", Voiceprint("6001", v))
    assert a.identity() == VoiceContext("6001", Voiceprint("6001", v.copy())).identity()
    w = v.copy()
    w[0] += 0.01
    assert a.identity() != VoiceContext("6001", Voiceprint("6001", w)).identity()
    assert VoiceContext().identity().endswith("/enrolled:none")
    assert VoiceContext().identity().startswith("ge2e-")  # the speaker model and the split version count too


# --- whole splits, on espeak-ng voices with known turns ---------------------------------------------------
espeak = sc.requires_espeak()


@pytest.fixture(scope="module")
def agent_print() -> Voiceprint:
    clip = AudioClip(sc.enrollment(), sc.RATE, Path("enroll.wav"))
    vector, seconds = speaker_embedding(clip, detect_speech({"a": clip}, vad=get_vad())["a"].segments, get_encoder())
    assert vector is not None and seconds > 8
    return Voiceprint("6001", vector)


def _split(call: sc.SynthCall, voices: VoiceContext | None, layout: str = "mixed"):
    clip = AudioClip(call.mix, sc.RATE, Path("call-all.wav"))
    speech = detect_mix_speech(clip, vad=get_vad(), cfg=CFG)
    return diarize_mix(clip, speech, encoder=get_encoder(), voices=voices, layout=layout, cfg=CFG)


def _pred(split) -> dict[str, list[tuple[float, float]]]:
    return {name: [(iv.start_s, iv.end_s) for iv in split.segments[name]] for name in split.names}


@espeak
def test_known_turns_are_split_and_the_agent_named_by_voiceprint(agent_print: Voiceprint):
    call = sc.two_talker_call()
    split = _split(call, VoiceContext("6001", agent_print))
    assert split.names == SIDES_ATTRIBUTED and split.method == "voiceprint" and split.agent_user == "6001"
    assert split.confidence >= 0.8 and not split.single_talker
    assert sc.single_talker_accuracy(call.truth, _pred(split), call.duration_s) >= 0.95
    a, c = split.segments["agent"], split.segments["caller"]
    assert all(x.end_s <= y.start_s or y.end_s <= x.start_s for x in a for y in c)  # one side per frame


@espeak
def test_a_quiet_agent_is_still_found(agent_print: Voiceprint):
    call = sc.two_talker_call(agent_db=-32.0, caller_db=-16.0)
    split = _split(call, VoiceContext("6001", agent_print))
    assert split.names == SIDES_ATTRIBUTED
    assert sc.single_talker_accuracy(call.truth, _pred(split), call.duration_s) >= 0.9


@espeak
def test_without_a_voiceprint_the_sides_are_not_guessed():
    call = sc.two_talker_call()
    split = _split(call, None)
    assert split.names == SIDES_UNATTRIBUTED and split.method == "none" and split.confidence is None
    assert any("not attributed" in w for w in split.warnings)
    truth = {"caller": call.truth["caller"], "agent": call.truth["agent"]}
    pred = _pred(split)
    best = max(sc.single_talker_accuracy(truth, {"caller": pred["speaker_a"], "agent": pred["speaker_b"]}, call.duration_s),
               sc.single_talker_accuracy(truth, {"caller": pred["speaker_b"], "agent": pred["speaker_a"]}, call.duration_s))
    assert best >= 0.95
    # speaker_a is whoever speaks first (the agent greets first here)
    assert split.segments["speaker_a"][0].start_s < split.segments["speaker_b"][0].start_s


@espeak
def test_an_enrolled_agent_is_recognised_when_the_call_does_not_name_one(agent_print: Voiceprint):
    call = sc.two_talker_call()
    split = _split(call, VoiceContext(None, None, enrolled=(agent_print,)))
    assert split.names == SIDES_ATTRIBUTED and split.agent_user == "6001" and "unknown" in split.evidence


@espeak
def test_a_mix_with_only_the_agent_is_never_split_into_two_confident_sides(agent_print: Voiceprint):
    call = sc.two_talker_call(silent="caller")
    split = _split(call, VoiceContext("6001", agent_print))
    if split.names == SIDES_ATTRIBUTED:
        assert split.single_talker and split.segments["caller"] == ()
    else:
        assert split.warnings  # not attributed, and it says so


@espeak
def test_a_single_voice_in_a_conference_recording_is_the_agents():
    call = sc.two_talker_call(silent="caller")
    x = np.zeros(int(40 * sc.RATE), np.float32)
    for t, line in zip((1.0, 11.0, 21.0, 31.0), sc.AGENT_LINES, strict=False):
        y = sc.say(line.split(",")[0], sc.AGENT_VOICE)
        x[int(t * sc.RATE): int(t * sc.RATE) + len(y)] = y
    call = sc.SynthCall(x, {"agent": x, "caller": np.zeros_like(x)})
    split = _split(call, None, layout="conference")
    assert split.single_talker and split.method == "heuristic"
    assert split.segments["caller"] == () and split.segments["agent"]
    assert "always records the agent" in split.evidence


def test_tones_and_silence_give_empty_sides_and_a_warning():
    t = np.arange(8000 * 20) / 8000
    tones = (0.2 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
    split = _split(sc.SynthCall(tones, {}), None)
    assert sum(len(v) for v in split.segments.values()) == 0 or split.names == SIDES_UNATTRIBUTED
    if sum(len(v) for v in split.segments.values()) == 0:
        assert split.warnings and "no speech" in split.warnings[0]
