"""NISQA over the corpus calls: impaired legs score below the same call's other leg."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import load_settings
from core.pipeline import analyze_path
from core.quality.manager import get_quality_model
from tests.support.shared import corpus_calls

CALLS = corpus_calls()
RANKED = ("packet_loss", "noisy", "low_volume")


@pytest.fixture(scope="module")
def model():
    return get_quality_model(load_settings())


@pytest.fixture(scope="module")
def scored(corpus_dir: Path, model) -> dict[str, dict]:
    wanted = [c for c in CALLS if c["condition"] in (*RANKED, "clean", "one_way", "conference")]
    return {c["condition"]: analyze_path(corpus_dir / c["files"]["in"], quality_model=model).as_dict() for c in wanted}


@pytest.mark.parametrize("condition", RANKED)
def test_impaired_leg_scores_below_the_other_leg(scored, condition: str):
    call = next(c for c in CALLS if c["condition"] == condition)
    bad = call["expect"][condition]
    good = "agent" if bad == "caller" else "caller"
    legs = scored[condition]["legs"]
    assert legs[bad]["quality"]["mos"] < legs[good]["quality"]["mos"] - 0.5, (
        legs[bad]["quality"]["mos"], legs[good]["quality"]["mos"])
    poor = {f["leg"] for f in scored[condition]["findings"] if f["code"] == "poor_quality"}
    assert poor <= {bad}


def test_quality_shape_and_windows(scored):
    result = scored["clean"]
    assert result["quality_model"] == "nisqa-v2.0"
    for leg in result["legs"].values():
        q = leg["quality"]
        assert {"mos", "noisiness", "discontinuity", "coloration", "loudness", "worst_window", "windows"} <= set(q)
        assert q["windows"] and all(w["end_s"] - w["start_s"] <= 10.0 + 1e-6 for w in q["windows"])
        assert min(w["mos"] for w in q["windows"]) == q["worst_window"]["mos"]
        assert min(w["mos"] for w in q["windows"]) <= q["mos"] <= max(w["mos"] for w in q["windows"])
    assert not [f for f in result["findings"] if f["code"] == "poor_quality"]


def test_silent_leg_has_no_mos_but_a_reason(scored):
    agent = scored["one_way"]["legs"]["agent"]
    assert agent["quality"] is None and "speech" in agent["quality_reason"]


def test_conference_mix_is_scored_per_side(scored):
    legs = scored["conference"]["legs"]
    sides = [name for name in legs if name != "mixed"]
    assert len(sides) == 2 and all(legs[s]["quality"]["mos"] > 2.0 for s in sides)
    assert legs["mixed"]["quality"] is None and "per side" in legs["mixed"]["quality_reason"]
    # every window of a side lies on the call's time axis, inside the call
    for s in sides:
        for w in legs[s]["quality"]["windows"]:
            assert 0 <= w["start_s"] < w["end_s"] <= scored["conference"]["duration_s"] + 1e-6
