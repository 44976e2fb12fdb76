"""Agent voiceprints in a real SQLite store: enrollment, automatic refresh from channel calls, an
analyst's mark on a mixed call, and re-analysing only the mixed calls a new voiceprint concerns."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.analysis_service import Models, analyze_or_reuse, load_models, reuse_reason
from core.config import Settings
from core.store.store import open_store
from core.voices import agent_mark, enroll, get, list_all, mark_agent, refresh, remove, voices_for
from core.work import path_item
from tests.support.shared import require_shared


def _call(condition: str) -> dict:
    labels = json.loads((require_shared("corpus") / "labels.json").read_text())
    return next(c for c in labels["calls"] if c["condition"] == condition)


@pytest.fixture()
def store(tmp_path: Path):
    with open_store(str(tmp_path / "voices.db")) as s:
        yield s


@pytest.fixture(scope="module")
def models() -> Models:
    return load_models(Settings(), quality=False)


def _copy(call: dict, roles: tuple[str, ...], folder: Path) -> Path:
    corpus = require_shared("corpus")
    folder.mkdir(parents=True, exist_ok=True)
    for role in roles:
        shutil.copy(corpus / call["files"][role], folder / Path(call["files"][role]).name)
    return folder / Path(call["files"][roles[0]]).name


def test_enroll_replaces_and_bumps_the_revision_refresh_merges(store):
    corpus = require_shared("corpus")
    first = enroll(store, "6001", [corpus / _call("low_volume")["files"]["out"]])
    assert first.origin == "enrolled" and first.revision == 1 and first.recordings == 1
    again = enroll(store, "6001", [corpus / _call("clipping")["files"]["out"]])
    assert again.revision == 2 and again.recordings == 1  # replaced, not merged
    # a refresh with the same voice barely moves it: same revision, more speech behind it
    same = refresh(store, "6001", again.vector, 20.0, source="call-x")
    assert same is not None and same.revision == 2 and same.recordings == 2
    assert same.speech_s == pytest.approx(again.speech_s + 20.0)
    assert same.origin == "enrolled"  # an enrolled print stays marked as enrolled
    # another voice moves it noticeably: a new revision
    other = np.roll(again.vector, 17)
    moved = refresh(store, "6001", other / np.linalg.norm(other), 600.0, source="call-y")
    assert moved.revision == 3
    assert refresh(store, "6001", again.vector, 2.0, source="too short") is None
    assert [p.user for p in list_all(store)] == ["6001"]
    assert remove(store, "6001") and get(store, "6001") is None and not remove(store, "6001")


def test_a_channel_call_with_a_known_agent_refreshes_that_voiceprint(store, models, tmp_path: Path):
    call = _call("clean")
    path = _copy(call, ("in", "out"), tmp_path / "ch")
    item = dataclasses.replace(path_item(path), metadata={"agent": "7002"})
    stored = analyze_or_reuse(item, store, models, Settings())
    assert stored.document["layout"] == "channel" and not stored.reused
    info = get(store, "7002")
    assert info is not None and info.origin == "auto" and info.recordings == 1 and info.speech_s > 10
    # it is the agent leg's voice: closer to an enrollment from the -out leg than from the -in leg
    corpus = require_shared("corpus")
    from core.voices import embed_recordings

    out_leg, _ = embed_recordings([corpus / call["files"]["out"]])
    in_leg, _ = embed_recordings([corpus / call["files"]["in"]])
    assert info.vector @ out_leg > 0.97 and info.vector @ out_leg > info.vector @ in_leg + 0.1
    # reused from the store: nothing analysed, nothing refreshed
    again = analyze_or_reuse(item, store, models, Settings())
    assert again.reused and get(store, "7002").recordings == 1


def test_a_new_voiceprint_reanalyses_the_mixed_calls_it_concerns_and_nothing_else(store, models, tmp_path: Path):
    corpus = require_shared("corpus")
    mixed_call, channel_call = _call("clipping"), _call("gsm_codec")
    mix = _copy(mixed_call, ("mp3",), tmp_path / "mix")
    channel = _copy(channel_call, ("in", "out"), tmp_path / "ch")
    mix_item = dataclasses.replace(path_item(mix), metadata={"agent": "6001"})
    ch_item = dataclasses.replace(path_item(channel), metadata={"agent": "6002"})
    first = analyze_or_reuse(mix_item, store, models, Settings())
    assert first.document["attribution"]["method"] == "none"  # nobody enrolled yet
    analyze_or_reuse(ch_item, store, models, Settings())
    voice_key = store.voice_key(mix_item.call_id)
    assert voice_key is not None and store.voice_key(ch_item.call_id) is None

    def reusable(item) -> bool:
        return reuse_reason(store, item, first_key(item), quality_id=None, ttl_s=3600,
                            voices=voices_for(store, item)) is not None

    def first_key(item):
        from core.analysis_service import AnalysisJob

        return AnalysisJob(item, Settings(), models).local_key()

    assert reusable(mix_item) and reusable(ch_item)
    enroll(store, "6001", [corpus / _call("low_volume")["files"]["out"]])  # the mixed call's agent (af1)
    assert not reusable(mix_item) and reusable(ch_item)
    second = analyze_or_reuse(mix_item, store, models, Settings())
    assert not second.reused
    att = second.document["attribution"]
    assert att["method"] == "voiceprint" and att["agent_user"] == "6001" and att["voices"] != voice_key
    assert ("clipping", "agent") in {(f["code"], f["leg"]) for f in second.document["findings"]}
    assert reusable(mix_item)


def test_an_analysts_mark_names_the_agent_and_teaches_the_voiceprint(store, models, tmp_path: Path):
    call = _call("conference")  # two talkers in a conference mix, nobody enrolled: speaker_a / speaker_b
    mix = _copy(call, ("in", "out"), tmp_path / "conf")
    item = dataclasses.replace(path_item(mix), metadata={"agent": "6009"})
    before = analyze_or_reuse(item, store, models, Settings()).document
    assert set(before["legs"]) == {"speaker_a", "speaker_b", "mixed"}
    # the analyst hears that speaker_b is the agent and marks its first words
    t = before["legs"]["speaker_b"]["speech"][0]["start_s"] + 0.2
    mark_agent(store, item.call_id, t, set_by="qa@example")
    assert agent_mark(store, item.call_id) == pytest.approx(t)
    after = analyze_or_reuse(item, store, models, Settings()).document
    assert not before == after and after["attribution"]["method"] == "manual"
    assert after["attribution"]["confidence"] == 1.0 and after["attribution"]["agent_user"] == "6009"
    assert after["legs"]["agent"]["speech"] == before["legs"]["speaker_b"]["speech"]
    assert after["legs"]["caller"]["speech"] == before["legs"]["speaker_a"]["speech"]
    learned = get(store, "6009")
    assert learned is not None and learned.origin == "manual"
    # the mark is kept: analysing again reuses the stored, marked analysis
    assert analyze_or_reuse(item, store, models, Settings()).reused
