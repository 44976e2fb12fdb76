"""Per-side analysis of mix-only recordings, scored on the corpus as the issue defines it, and the
voiceprint commands as a user runs them."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from core.audio.diarize import VoiceContext, Voiceprint
from core.audio.layout import call_files_for
from core.config import AnalysisConfig
from core.pipeline import analyze_call
from core.voices import embed_recordings
from tests.support.mixed_truth import corpus_items, score_call
from tests.support.shared import require_shared

ROOT = Path(__file__).resolve().parents[2]
CALLQA = [sys.executable, "-m", "core.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CALLQA, *args], capture_output=True, text=True, cwd=ROOT, env=dict(os.environ),
                          timeout=300)


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> list[dict]:
    """Every corpus call with an enrollable agent, analysed from a mix-only copy of its -all.mp3."""
    corpus = require_shared("corpus")
    cfg = AnalysisConfig()
    rows, prints = [], {}
    for call, mix, agent, enroll in corpus_items(corpus, tmp_path_factory.mktemp("mixes")):
        key = (agent, tuple(map(str, enroll)))
        if key not in prints:
            prints[key] = Voiceprint(agent, embed_recordings(enroll, cfg=cfg)[0])
        voices = VoiceContext(agent_user=agent, agent=prints[key], enrolled=(prints[key],))
        result = analyze_call(call_files_for(mix), cfg=cfg, voices=voices).as_dict()
        rows.append({**score_call(call, result), "result": result})
    assert len(rows) >= 8  # the corpus has 10 calls whose agent talker speaks in another call
    return rows


def test_single_talker_frame_accuracy(scored):
    accs = [r["accuracy"] for r in scored]
    assert statistics.median(accs) >= 0.92, accs
    assert min(accs) >= 0.80, accs


def test_the_agent_side_is_named_in_all_calls_but_one(scored):
    assert sum(not r["named"] for r in scored) <= 1, [(r["condition"], r["sides"]) for r in scored]


def test_side_findings_land_on_the_right_side(scored):
    found, expected = sum(r["found"] for r in scored), sum(r["expected"] for r in scored)
    assert expected >= 6 and found >= 0.8 * expected, [(r["condition"], r["missed"]) for r in scored if r["missed"]]


def test_no_one_way_audio_where_both_talk(scored):
    assert not [r["condition"] for r in scored if r["false_one_way"]]


def test_silence_is_rarely_claimed_as_speech(scored):
    claimed = [r["silence_claimed"] for r in scored if r["silence_claimed"] is not None]
    assert statistics.median(claimed) <= 0.20, claimed


def test_json_contract_of_a_split_mix(scored):
    result = scored[0]["result"]
    assert set(result["legs"]) == {"caller", "agent", "mixed"}
    att = result["attribution"]
    assert att["method"] == "voiceprint" and att["agent_user"] and 0 <= att["confidence"] <= 1
    assert att["diarization"]["model"].startswith("ge2e-") and "overlap_s" in att["diarization"]
    mixed_keys = set(result["legs"]["mixed"])
    for side in ("caller", "agent"):
        leg = result["legs"][side]
        assert mixed_keys <= set(leg)  # each side has every key a leg has
        assert leg["silences"] == [] and leg["side_of"] == "mixed"
    # the sides never speak at the same 10 ms
    a = {round(t, 2) for s in result["legs"]["agent"]["speech"] for t in np.arange(s["start_s"], s["end_s"], 0.01)}
    c = {round(t, 2) for s in result["legs"]["caller"]["speech"] for t in np.arange(s["start_s"], s["end_s"], 0.01)}
    assert len(a & c) <= 2 * len(result["legs"]["agent"]["speech"])  # only at shared boundaries


# --- the commands ------------------------------------------------------------------------------------------
def _call(condition: str) -> dict:
    labels = json.loads((require_shared("corpus") / "labels.json").read_text())
    return next(c for c in labels["calls"] if c["condition"] == condition)


def test_enroll_list_analyse_remove(tmp_path: Path):
    corpus = require_shared("corpus")
    store = str(tmp_path / "s.db")
    clipping, low_volume = _call("clipping"), _call("low_volume")  # agent af1 in both
    enroll = run("--store", store, "voices", "enroll", "6001", str(corpus / low_volume["files"]["out"]), "--json")
    assert enroll.returncode == 0, enroll.stderr
    assert json.loads(enroll.stdout)["user"] == "6001" and json.loads(enroll.stdout)["speech_s"] > 10
    listed = run("--store", store, "voices", "list", "--json")
    assert [v["user"] for v in json.loads(listed.stdout)] == ["6001"]
    folder = tmp_path / "mix"
    folder.mkdir()
    mix = folder / clipping["files"]["mp3"]
    mix.write_bytes((corpus / clipping["files"]["mp3"]).read_bytes())
    out = run("--store", store, "analyze", str(mix), "--agent", "6001", "--no-quality", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["attribution"]["method"] == "voiceprint" and data["attribution"]["agent_user"] == "6001"
    assert ("clipping", "agent") in {(f["code"], f["leg"]) for f in data["findings"]}
    # without --agent the enrolled voice is still recognised
    out = run("--store", store, "analyze", str(mix), "--no-quality", "--json")
    assert json.loads(out.stdout)["attribution"]["agent_user"] == "6001"
    removed = run("--store", store, "voices", "remove", "6001")
    assert removed.returncode == 0 and "removed" in removed.stdout
    gone = run("--store", store, "analyze", str(mix), "--agent", "6001", "--no-quality", "--json")
    assert gone.returncode != 0 and gone.stdout == ""
    lines = gone.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callqa: error:") and "voices enroll 6001" in lines[0]
    again = run("--store", store, "voices", "remove", "6001")
    assert again.returncode != 0 and "no voiceprint" in again.stderr


def test_enrolling_from_silence_is_refused(tmp_path: Path):
    silent = tmp_path / "silent-out.wav"
    sf.write(silent, np.zeros(8000 * 5, np.float32), 8000, subtype="PCM_16")
    out = run("--store", str(tmp_path / "s.db"), "voices", "enroll", "6001", str(silent))
    assert out.returncode != 0
    assert out.stderr.strip().startswith("callqa: error:") and "speech" in out.stderr


@pytest.mark.parametrize("kind", ["two_seconds", "tones", "one_talker"])
def test_odd_mixes_give_an_honest_analysis(tmp_path: Path, kind: str):
    corpus = require_shared("corpus")
    path = tmp_path / "20261107-080000_5550000000-all.wav"
    if kind == "two_seconds":
        x, sr = sf.read(corpus / _call("clean")["files"]["mixed"], dtype="float32")
        sf.write(path, x[: 2 * sr], sr)
    elif kind == "tones":
        t = np.arange(8000 * 20) / 8000
        sf.write(path, (0.2 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 0.3 * t) > 0)).astype(np.float32), 8000)
    else:  # one talker only: the caller leg of the clean call, as if it were the mix
        x, sr = sf.read(corpus / _call("clean")["files"]["in"], dtype="float32")
        sf.write(path, x, sr)
    out = run("analyze", str(path), "--no-quality", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    sides = [k for k in data["legs"] if k != "mixed"]
    assert len(sides) == 2 and data["attribution"]["method"] in ("none", "heuristic")
    assert not [f for f in data["findings"] if f["code"] == "one_way_audio" and f["leg"] in ("caller", "agent")]
    if kind == "tones":
        assert sum(len(data["legs"][s]["speech"]) for s in sides) == 0 or data["warnings"]
    if data["attribution"]["method"] == "none":
        assert any("not attributed" in w or "no speech" in w for w in data["warnings"])


def test_the_split_can_be_turned_off(tmp_path: Path):
    call = _call("conference")
    corpus = require_shared("corpus")
    cfg_file = tmp_path / "callqa.toml"
    cfg_file.write_text("[analysis]\nsplit_mixed_sides = false\n")
    out = run("--config", str(cfg_file), "analyze", str(corpus / call["files"]["in"]), "--no-quality", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert list(data["legs"]) == ["mixed"] and "attribution" not in data
    assert any("directional checks" in w for w in data["warnings"])
