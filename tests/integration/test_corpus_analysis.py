"""The analysis against the corpus ground truth (labels.json): VAD agreement, expected findings,
layouts. Quality scoring is off here; its own tests cover it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.pipeline import analyze_path
from core.results import CallAnalysis
from tests.support.shared import corpus_calls

IMPAIRED_LEG_KEYS = ("one_way", "clipping", "low_volume", "echo", "packet_loss", "noisy")
SIMPLE = {"clipping": "clipping", "low_volume": "low_volume", "echo": "echo", "packet_loss": "packet_loss"}
CALLS = corpus_calls()


@pytest.fixture(scope="module")
def analyses(corpus_dir: Path) -> dict[str, CallAnalysis]:
    return {c["call_id"]: analyze_path(corpus_dir / c["files"]["in"]) for c in CALLS}


def frame_agreement(ours: list[dict], truth: list[list[float]], duration_s: float, step_s: float = 0.01) -> float:
    n = int(np.ceil(duration_s / step_s))
    a, b = np.zeros(n, bool), np.zeros(n, bool)
    for s in ours:
        a[int(round(s["start_s"] / step_s)): int(round(s["end_s"] / step_s))] = True
    for s, e in truth:
        b[int(round(s / step_s)): int(round(e / step_s))] = True
    return float((a == b).mean())


def clean_legs() -> list[tuple[str, str]]:
    out = []
    for c in CALLS:
        if c["layout"] != "channel":
            continue
        impaired = {c["expect"][k] for k in IMPAIRED_LEG_KEYS if c["expect"].get(k)}
        out += [(c["call_id"], leg) for leg in ("caller", "agent") if leg not in impaired]
    return out


@pytest.mark.parametrize(("call_id", "leg"), clean_legs())
def test_vad_agrees_with_labels_on_clean_legs(analyses, call_id: str, leg: str):
    call = next(c for c in CALLS if c["call_id"] == call_id)
    result = analyses[call_id].as_dict()
    agreement = frame_agreement(result["legs"][leg]["speech"], call["legs"][leg]["speech"], call["duration_s"])
    assert agreement >= 0.95, f"{call_id} {leg}: {agreement:.3f}"


@pytest.mark.parametrize("call_id", [c["call_id"] for c in CALLS if c["layout"] == "conference"])
def test_vad_on_the_conference_mix_agrees_with_both_talkers(analyses, call_id: str):
    call = next(c for c in CALLS if c["call_id"] == call_id)
    truth = call["legs"]["caller"]["speech"] + call["legs"]["agent"]["speech"]
    agreement = frame_agreement(analyses[call_id].as_dict()["legs"]["mixed"]["speech"], truth, call["duration_s"])
    assert agreement >= 0.93  # not a clean leg: two talkers and the bridge's mixing share one track


def expected_findings(call: dict) -> set[tuple[str, str | None]]:
    e = call["expect"]
    out: set[tuple[str, str | None]] = set()
    if e["one_way"]:
        out.add(("one_way_audio", e["one_way"]))
    for key, code in SIMPLE.items():
        if e[key]:
            out.add((code, e[key]))
    if e["noisy"]:
        out.add(("noisy", e["noisy"]))
    for _ in e["dead_air"]:
        out.add(("dead_air", None))
    return out


@pytest.mark.parametrize("call_id", [c["call_id"] for c in CALLS])
def test_expected_findings_and_nothing_else(analyses, call_id: str):
    call = next(c for c in CALLS if c["call_id"] == call_id)
    result = analyses[call_id].as_dict()
    got = {(f["code"], f["leg"]) for f in result["findings"]}
    expected = expected_findings(call)
    missing = expected - got
    assert not missing, f"{call['condition']}: missing {missing}, got {got}"
    extra = {g for g in got - expected if g[0] != "talk_imbalance"}
    allowed = set()
    if call["overlaps"]:
        allowed |= {g for g in extra if g[0] == "talk_over"}
    if call["params"].get("snr_db") is not None:
        allowed |= {g for g in extra if g[0] == "noisy"}
    assert extra <= allowed, f"{call['condition']}: unexpected {extra - allowed}"
    imbalance = [f for f in result["findings"] if f["code"] == "talk_imbalance"]
    assert bool(imbalance) == call["expect"]["talk_imbalance"], call["condition"]


@pytest.mark.parametrize("call_id", [c["call_id"] for c in CALLS if c["expect"]["dead_air"]])
def test_dead_air_intervals_within_one_second(analyses, call_id: str):
    call = next(c for c in CALLS if c["call_id"] == call_id)
    found = [f for f in analyses[call_id].as_dict()["findings"] if f["code"] == "dead_air"]
    assert len(found) == len(call["expect"]["dead_air"])
    for f, (s, e) in zip(found, call["expect"]["dead_air"], strict=True):
        assert abs(f["start_s"] - s) <= 1.0 and abs(f["end_s"] - e) <= 1.0, (f, s, e)


@pytest.mark.parametrize("call_id", [c["call_id"] for c in CALLS])
def test_layout_detection_and_conference_is_never_one_way(analyses, call_id: str):
    call = next(c for c in CALLS if c["call_id"] == call_id)
    result = analyses[call_id].as_dict()
    assert result["layout"] == call["layout"]
    one_way = [f for f in result["findings"] if f["code"] == "one_way_audio"]
    if call["layout"] == "conference":
        # the mix stays as a leg; its two talkers are split into two sides (named by voice or a/b)
        sides = set(result["legs"]) - {"mixed"}
        assert "mixed" in result["legs"] and sides in ({"caller", "agent"}, {"speaker_a", "speaker_b"})
        assert set(result["attribution"]["sides"]) == sides
        assert bool(one_way) == (call["condition"] == "one_way_conference")
        if one_way:  # the bridge always records the agent: the missing voice is the caller's
            assert [f["leg"] for f in one_way] == ["caller"]
    else:
        assert set(result["legs"]) == {"caller", "agent"}


def test_talk_imbalance_is_the_monologue_not_one_way(analyses):
    mono = next(c for c in CALLS if c["condition"] == "monologue")
    codes = {f["code"]: f for f in analyses[mono["call_id"]].as_dict()["findings"]}
    assert "talk_imbalance" in codes and "one_way_audio" not in codes
    assert codes["talk_imbalance"]["leg"] == "agent"


@pytest.mark.parametrize("call", [c for c in CALLS if c["files"].get("stereo")], ids=lambda c: c["condition"])
def test_stereo_files_give_the_same_findings_as_the_legs(corpus_dir: Path, analyses, call: dict):
    result = analyze_path(corpus_dir / call["files"]["stereo"], layout="stereo").as_dict()
    assert result["layout"] == "stereo"
    legs_result = analyses[call["call_id"]].as_dict()
    assert {(f["code"], f["leg"]) for f in result["findings"]} == {(f["code"], f["leg"]) for f in legs_result["findings"]}
    # left = agent, right = caller
    assert result["legs"]["agent"]["stats"]["rms_db"] == pytest.approx(
        legs_result["legs"]["agent"]["stats"]["rms_db"], abs=0.5)


def test_the_one_way_pattern_is_found_in_the_mp3_mix(corpus_dir: Path):
    call = next(c for c in CALLS if c["condition"] == "one_way_conference")
    result = analyze_path(corpus_dir / call["files"]["mp3"], layout="mixed").as_dict()
    assert result["layout"] == "mixed"
    # without a voiceprint a mix-only copy cannot say whose voice is missing, and says so
    assert result["attribution"]["single_talker"] and result["attribution"]["method"] == "none"
    assert any("not attributed" in w for w in result["warnings"])
    assert [(f["code"], f["leg"]) for f in result["findings"]] == [("one_way_audio", None)]
