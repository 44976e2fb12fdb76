"""Signal-level detectors on synthetic signals with known answers: echo, dropouts, levels, findings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio.dropouts import DropoutResult, detect_dropouts
from core.audio.echo import measure_echo
from core.audio.findings import MixedSpeech, TrackMeasurements, dead_air, one_way_in_mix, talk_over
from core.audio.io import AudioClip
from core.audio.levels import LevelResult, measure_levels
from core.audio.vad import SpeechResult, segments_from_probs
from core.config import AnalysisConfig
from core.results import Interval, TrackStats
from tests.support.signals import place, speechlike

SR = 8000
CFG = AnalysisConfig()


def clip(x: np.ndarray) -> AudioClip:
    return AudioClip(np.asarray(x, dtype=np.float32), SR, Path("synthetic.wav"), "FLOAT")


@pytest.mark.parametrize(("delay_ms", "loss_db"), [(120, 8), (183, 12), (300, 16)])
def test_echo_delay_and_return_loss(rng: np.random.Generator, delay_ms: float, loss_db: float):
    talker = place(20, [(1, speechlike(rng, duration_s=4)), (9, speechlike(rng, duration_s=5))], floor_dbfs=-66, rng=rng)
    d = int(delay_ms * SR / 1000)
    echo = np.zeros_like(talker)
    echo[d:] = talker[:-d] * 10 ** (-loss_db / 20)
    own = place(20, [(5.5, speechlike(rng, duration_s=3)), (15, speechlike(rng, duration_s=3))], floor_dbfs=-66, rng=rng)
    r = measure_echo(clip(talker), clip(own + echo), [Interval(1, 5), Interval(9, 14)])
    assert r is not None
    assert r.delay_ms == pytest.approx(delay_ms, abs=0.2)
    assert r.erl_db == pytest.approx(loss_db, abs=0.5)
    assert r.correlation > CFG.echo_min_corr
    independent = measure_echo(clip(talker), clip(own), [Interval(1, 5), Interval(9, 14)])
    assert independent is not None and independent.correlation < 0.1


def test_dropouts_count_lost_packets_inside_speech_only(rng: np.random.Generator):
    x = place(10, [(1, speechlike(rng, duration_s=6, rms_dbfs=-18))], floor_dbfs=-66, rng=rng)
    lost = [(2.00, 0.02), (3.04, 0.04), (4.5, 0.02), (5.2, 0.06)]
    for start, length in lost:
        a = int(start * SR)
        x[a: a + int(length * SR)] = 0.0
    x[int(8.5 * SR): int(8.6 * SR)] = 0.0  # a hole outside speech: not packet loss
    res = detect_dropouts(clip(x), [Interval(1, 7)])
    found = [(round(d.start_s, 2), round(d.duration_s, 2)) for d in res.dropouts]
    assert found == lost
    assert res.events_per_min == pytest.approx(4 / (6 / 60))


def test_frozen_frames_are_found():
    rng = np.random.default_rng(1)
    x = place(4, [(0.5, speechlike(rng, duration_s=3, rms_dbfs=-18))])
    a = int(2.0 * SR)
    n = 80  # 10 ms
    x[a + n: a + 3 * n] = np.tile(x[a: a + n], 2)  # the last packet repeated twice (concealment)
    res = detect_dropouts(clip(x), [Interval(0.5, 3.5)])
    assert [(round(f.start_s, 2), round(f.end_s, 2)) for f in res.frozen] == [(2.01, 2.03)]


def test_levels_speech_and_noise(rng: np.random.Generator):
    x = place(10, [(2, speechlike(rng, duration_s=4, rms_dbfs=-24))], floor_dbfs=-60, rng=rng)
    lv = measure_levels(clip(x), [Interval(2, 6)])
    assert lv.speech_db == pytest.approx(-24, abs=0.3)
    assert lv.noise_db == pytest.approx(-60, abs=0.5)  # 20 ms frames of Gaussian noise sit at its mean power
    assert lv.snr_db == pytest.approx(36, abs=0.8)


def test_vad_hysteresis_rules():
    probs = np.array([0.1, 0.9, 0.9, 0.4, 0.9, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.95, 0.95, 0.1] + [0.0] * 10)
    segs = segments_from_probs(probs, frame_s=0.032, duration_s=25 * 0.032, threshold=0.5,
                               min_speech_ms=60, min_silence_ms=100, speech_pad_ms=0)
    # 0.4 is above threshold-0.15: still speech; the first segment ends at frame 5
    assert [(round(s.start_s / 0.032), round(s.end_s / 0.032)) for s in segs] == [(1, 5), (12, 14)]
    short = segments_from_probs(probs, frame_s=0.032, duration_s=0.8, threshold=0.5,
                                min_speech_ms=100, min_silence_ms=100, speech_pad_ms=0)
    assert [(round(s.start_s / 0.032), round(s.end_s / 0.032)) for s in short] == [(1, 5)]


def test_dead_air_only_between_speech_and_after_the_grace():
    speech = [[Interval(0.5, 3.0), Interval(20.0, 22.0)], [Interval(3.5, 6.0), Interval(8.0, 9.0)]]
    found = dead_air(speech, 40.0, CFG)  # trailing 18 s after 22.0 is not dead air
    assert [(f.start_s, f.end_s) for f in found] == [(10.0, 20.0)]
    assert found[0].severity == "warning"
    assert dead_air([[Interval(0, 1), Interval(5.5, 6)]], 10, CFG) == []  # 4.5 s < 5 s


def test_one_way_pattern_in_a_mix():
    greet = [Interval(7.4, 9.0), Interval(11.4, 13.0), Interval(22.5, 23.9), Interval(26.4, 27.8),
             Interval(38.3, 40.3), Interval(42.4, 44.1)]
    found = one_way_in_mix(MixedSpeech(tuple(greet), 45.6), CFG, layout="conference")
    assert [(f.code, f.leg) for f in found] == [("one_way_audio", "caller")]
    assert one_way_in_mix(MixedSpeech(tuple(greet), 45.6), CFG, layout="mixed")[0].leg is None
    conversation = [Interval(t, t + 1.5) for t in np.arange(1.0, 58.0, 2.5)]
    assert one_way_in_mix(MixedSpeech(tuple(conversation), 62.0), CFG, layout="conference") == []


def _track(segs: list[Interval], duration: float = 60.0) -> TrackMeasurements:
    speech_s = sum(s.duration_s for s in segs)
    return TrackMeasurements(TrackStats(-20, -3, duration, 0, 0, 0),
                             SpeechResult(tuple(segs), speech_s / duration, 0.032, np.zeros(1)),
                             LevelResult(-20, -60), DropoutResult((), (), speech_s), duration)


def test_talk_over_share_and_echo_suppression():
    caller = _track([Interval(0, 10), Interval(20, 30)])
    agent = _track([Interval(8, 22), Interval(40, 50)])
    found = talk_over({"caller": caller, "agent": agent}, CFG, echo_legs=set())
    assert len(found) == 1 and "4.0 s" in found[0].detail
    assert talk_over({"caller": caller, "agent": agent}, CFG, echo_legs={"caller"}) == []
    brief = _track([Interval(0, 10), Interval(20, 30)])
    agent2 = _track([Interval(9.8, 19.9), Interval(40, 50)])
    assert talk_over({"caller": brief, "agent": agent2}, CFG, echo_legs=set()) == []


def test_packet_loss_from_nisqa_discontinuity_when_no_dropout_shows():
    from core.audio.findings import packet_loss
    from core.results import QualityScores, QualityWindow, TrackQuality

    def quality(dis: float) -> TrackQuality:
        scores = QualityScores(mos=2.0, noisiness=3.5, discontinuity=dis, coloration=3.0, loudness=3.5)
        return TrackQuality(scores, (QualityWindow(0, 10, scores, 6.0), QualityWindow(10, 20, scores, 5.0)), "t")

    base = _track([Interval(0, 20)])
    concealed = TrackMeasurements(base.stats, base.speech, base.levels, base.dropouts, 20.0, quality(1.4))
    found = packet_loss("caller", concealed, CFG)
    assert [(f.code, f.start_s, f.end_s) for f in found] == [("packet_loss", 0, 20)]
    assert "discontinuity 1.40" in found[0].detail
    fine = TrackMeasurements(base.stats, base.speech, base.levels, base.dropouts, 20.0, quality(3.9))
    assert packet_loss("caller", fine, CFG) == []
