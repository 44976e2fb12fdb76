"""Per-side fleet statistics against the stored analyses themselves (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from core.analysis_service import analyze_or_reuse, load_models
from core.config import Settings
from core.store.side_stats import side_stats
from core.store.store import open_store
from core.voices import enroll
from core.work import path_item
from tests.support.postgres import pg_database, pg_url  # noqa: F401  (fixtures)
from tests.support.shared import require_shared


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path):
    url = str(tmp_path / "s.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    with open_store(url) as s:
        yield s


def _fill(store, tmp_path: Path) -> list[dict]:
    corpus = require_shared("corpus")
    calls = json.loads((corpus / "labels.json").read_text())["calls"]
    enroll(store, "af1", [corpus / next(c for c in calls if c["condition"] == "low_volume")["files"]["out"]])
    models = load_models(Settings(), quality=False)
    docs = []
    for i, condition in enumerate(("clean", "clipping", "monologue", "conference")):
        call = next(c for c in calls if c["condition"] == condition)
        folder = tmp_path / condition
        folder.mkdir()
        roles = ("mp3",) if condition == "clipping" else ("in", "out")  # a mix-only copy of the clipping call
        for role in roles:
            shutil.copy(corpus / call["files"][role], folder / Path(call["files"][role]).name)
        item = path_item(folder / Path(call["files"][roles[0]]).name)
        agent = "af1" if condition == "clipping" else f"70{i}"
        docs.append(analyze_or_reuse(dataclasses.replace(item, metadata={"agent": agent}), store, models,
                                     Settings()).document)
    return docs


def _speech(doc: dict, leg: str) -> float:
    return sum(s["end_s"] - s["start_s"] for s in doc["legs"][leg]["speech"])


def test_side_statistics_match_the_stored_analyses(store, tmp_path: Path):
    docs = _fill(store, tmp_path)
    mixed = [d for d in docs if d["layout"] in ("mixed", "conference")]
    assert any(d["attribution"]["method"] == "voiceprint" for d in mixed)  # the clipping mix, agent af1 enrolled

    def counted(d: dict, floor: float) -> bool:
        att = d.get("attribution")
        return att is None or (att["method"] != "none" and (att["confidence"] or 0) >= floor)

    for floor in (0.0, 0.8, 1.0):
        keep = [d for d in docs if counted(d, floor)]
        got = side_stats(store, min_confidence=floor)
        if not keep:
            assert got.empty
            continue
        agent = sum(_speech(d, "agent") for d in keep)
        caller = sum(_speech(d, "caller") for d in keep)
        assert int(got["calls"].iloc[0]) == len(keep)
        assert int(got["mixed_calls"].iloc[0]) == sum(d["layout"] in ("mixed", "conference") for d in keep)
        assert got["agent_speech_s"].iloc[0] == pytest.approx(agent, abs=0.01)
        assert got["agent_talk_share"].iloc[0] == pytest.approx(agent / (agent + caller), abs=1e-4)
    by_agent = side_stats(store, group_by="agent", min_confidence=0.0)
    assert set(by_agent["agent"]) <= {"af1", "700", "702", "703"} and "af1" in set(by_agent["agent"])
    mono = by_agent.set_index("agent").loc["702"]  # the monologue: the agent talks most of the call
    assert mono["agent_talk_share"] > 0.7


def test_a_bad_confidence_bound_is_refused(store):
    from core.errors import ParameterError

    with pytest.raises(ParameterError):
        side_stats(store, min_confidence=1.5)
