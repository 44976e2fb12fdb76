"""The demo generator: the month plan, the rendered layouts and impairments, the manifest, reuse.

The plan tests are pure; the render tests write a handful of planned calls (one per layout and
story) with whatever speech this machine has (the demo speech folder, else espeak-ng).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from core.config import Settings
from core.demo import (
    DEMO_VERSION,
    MANIFEST_NAME,
    NOISE_FLOOR_DBFS,
    STORIES,
    VICIDIAL_FIELDS,
    _current_set,
    active_level_dbfs,
    build_demo_recordings,
    demo_metadata,
    demo_recordings_dir,
    month,
    read_demo_manifest,
)
from core.demo.render import render_call
from core.demo.speech import SPEECH_ENV, load_speech_bank, speech_dir
from core.errors import ConfigError

DAY = date(2026, 11, 24)
MULAW_FULL_SCALE = 32124 / 32768  # largest G.711 mu-law magnitude (ITU-T G.711)
FRAME = 160  # 20 ms at 8 kHz

needs_speech = pytest.mark.skipif(speech_dir() is None and shutil.which("espeak-ng") is None,
                                  reason="neither the demo speech folder nor espeak-ng is available")


@pytest.fixture(scope="module")
def plans() -> list[month.CallPlan]:
    return month.plan_month(DAY)


# --- the month plan -----------------------------------------------------------------------------------
def test_a_month_of_calls_ending_on_the_build_day(plans) -> None:
    assert len(plans) >= 150
    days = {p.start.date() for p in plans}
    assert len(days) == 30 and max(days) == DAY and min(days) == DAY - timedelta(days=29)
    assert [p.start for p in plans] == sorted(p.start for p in plans)
    today = [p for p in plans if p.start.date() == DAY]
    assert today and all(p.start.hour == 0 for p in today)  # past at any later hour of the day
    weekdays = Counter(p.start.date() for p in plans if p.start.weekday() < 5 and p.start.date() != DAY)
    weekends = Counter(p.start.date() for p in plans if p.start.weekday() >= 5)
    assert min(weekdays.values()) > max(weekends.values())
    hours = Counter(p.start.hour for p in plans if p.start.date() != DAY)
    assert set(hours) <= set(range(8, 19)) and hours[10] + hours[11] > hours[8] + hours[18]


def test_the_plan_is_deterministic_per_day_and_moves_with_it(plans) -> None:
    again = month.plan_month(DAY)
    assert [(p.start, p.phone, p.agent.user, p.stories) for p in again] == \
        [(p.start, p.phone, p.agent.user, p.stories) for p in plans]
    later = month.plan_month(DAY + timedelta(days=3))
    assert max(p.start.date() for p in later) == DAY + timedelta(days=3)


def test_agents_keep_their_voice_and_the_centre_has_its_parts(plans) -> None:
    voices = {}
    for p in plans:
        assert voices.setdefault(p.agent.user, p.agent.talker) == p.agent.talker
    assert len(voices) == 8 and len(set(voices.values())) == 8
    assert {p.carrier for p in plans} == set(month.CARRIERS)
    assert {p.server for p in plans} == set(month.SERVERS)
    assert {p.campaign.campaign_id for p in plans} == set(month.CAMPAIGNS)
    inbound = [p for p in plans if p.campaign.inbound]
    assert inbound and all(p.campaign.ingroup == "HELPDESK" for p in inbound)
    assert not set(voices.values()) & {p.caller for p in plans}  # callers are other people
    assert len({p.phone for p in plans}) >= 0.9 * len(plans)


def test_layouts_half_mixed_or_conference_and_every_layout_present(plans) -> None:
    layouts = Counter(p.layout for p in plans)
    assert set(layouts) == {"channel", "stereo", "conference", "mixed"}
    assert (layouts["mixed"] + layouts["conference"]) / len(plans) >= 0.40
    users_with_two_legs = {p.agent.user for p in plans if p.layout in ("channel", "stereo")}
    assert len(users_with_two_legs) >= 6  # voiceprints can be enrolled from most agents


def test_stories_are_planted_where_the_manifest_says(plans) -> None:
    for p in plans:
        s = set(p.stories)
        assert ("carrier_packet_loss" in s) == (p.carrier == month.LOSSY_CARRIER and p.day >= month.LOSS_FROM_DAY)
        assert ("clipping_headset" in s) == (p.agent.user == month.CLIPPING_AGENT)
        if "afternoon_dead_air" in s:
            assert p.campaign.campaign_id == month.DEAD_AIR_CAMPAIGN and p.start.hour >= month.DEAD_AIR_FROM_HOUR
        if "one_way_server" in s:
            assert s == {"one_way_server"} and p.server == month.ONE_WAY_SERVER
            assert p.layout in ("channel", "stereo") and p.day >= month.DAYS - month.ONE_WAY_LAST_DAYS
    counts = Counter(s for p in plans for s in p.stories)
    assert set(counts) == set(STORIES)
    assert 3 <= counts["one_way_server"] <= month.ONE_WAY_CALLS
    afternoon = [p for p in plans if p.campaign.campaign_id == month.DEAD_AIR_CAMPAIGN
                 and p.start.hour >= month.DEAD_AIR_FROM_HOUR]
    assert sum("afternoon_dead_air" in p.stories for p in afternoon) >= 0.6 * len(afternoon)


# --- rendered calls ----------------------------------------------------------------------------------
def _pick(plans: list[month.CallPlan], layout: str, story: str | None) -> month.CallPlan:
    return next(p for p in plans if p.layout == layout and (story in p.stories if story else not p.stories))


@pytest.fixture(scope="module")
def rendered(plans, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    if speech_dir() is None and shutil.which("espeak-ng") is None:
        pytest.skip("neither the demo speech folder nor espeak-ng is available")
    chosen = {
        "clean_channel": _pick(plans, "channel", None), "clean_stereo": _pick(plans, "stereo", None),
        "clean_conference": _pick(plans, "conference", None), "clean_mixed": _pick(plans, "mixed", None),
        "loss": _pick(plans, "channel", "carrier_packet_loss"),
        "clipping": next(p for p in plans if "clipping_headset" in p.stories and p.layout in ("channel", "stereo")),
        "dead_air": next(p for p in plans if "afternoon_dead_air" in p.stories and p.layout == "channel"),
        "one_way": next(p for p in plans if "one_way_server" in p.stories),
    }
    bank = load_speech_bank(talker_ids={t for p in chosen.values() for t in (p.agent.talker, p.caller)})
    dest = tmp_path_factory.mktemp("rendered")
    return dest, {name: render_call(p, bank, dest) for name, p in chosen.items()}


def _legs(dest: Path, entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """(caller, agent) of a channel or stereo call, float at full scale 1.0."""
    if entry["layout"] == "stereo":
        both, _ = sf.read(dest / entry["files"]["stereo"], dtype="float64")
        return both[:, 1], both[:, 0]
    caller, _ = sf.read(dest / entry["files"]["in"], dtype="float64")
    agent, _ = sf.read(dest / entry["files"]["out"], dtype="float64")
    return caller, agent


def _frame_dbfs(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


@needs_speech
def test_each_layout_is_written_with_vicidial_naming(rendered) -> None:
    dest, calls = rendered
    expected = {"channel": {"in", "out"}, "stereo": {"stereo"}, "conference": {"in", "out"}, "mixed": {"all"}}
    for entry in calls.values():
        assert set(entry["files"]) == expected[entry["layout"]]
        for role, name in entry["files"].items():
            assert name == f"{entry['call_id']}-{role}.{'mp3' if role == 'all' else 'wav'}"
            info = sf.info(dest / name)
            assert info.samplerate == 8000
            assert info.channels == (2 if role == "stereo" else 1)
            if role != "all":
                assert info.subtype == "ULAW"
            assert info.frames / 8000 == pytest.approx(entry["duration_s"], abs=0.2)
        assert re.fullmatch(r"\d{8}-\d{6}_\d{10}", entry["call_id"])
        assert entry["call_id"][:15] == entry["call_date"].replace("-", "").replace("T", "-").replace(":", "")
        assert entry["call_id"].endswith(entry["phone_number"])
        assert set(VICIDIAL_FIELDS) <= set(entry)
    conference = calls["clean_conference"]
    out, _ = sf.read(dest / conference["files"]["out"], dtype="int16")
    assert not out.any()  # digital silence beside the bridge's mix


@needs_speech
def test_clean_legs_sit_at_a_telephone_level_over_a_quiet_line(rendered) -> None:
    dest, calls = rendered
    entry = calls["clean_channel"]
    for samples, leg in zip(_legs(dest, entry), ("caller", "agent"), strict=True):
        speech = entry["legs"][leg]["speech"]
        assert -25.0 <= active_level_dbfs(samples, speech) <= -17.0
        assert np.max(np.abs(samples)) < 0.8
        quiet = _frame_dbfs(samples)[: int(speech[0][0] / 0.02) - 2]
        assert np.median(quiet) == pytest.approx(NOISE_FLOOR_DBFS, abs=4.0)


@needs_speech
def test_clipping_agent_leg_is_flat_topped(rendered) -> None:
    dest, calls = rendered
    _, agent = _legs(dest, calls["clipping"])
    _, clean = _legs(dest, calls["clean_channel"])
    rail = np.abs(agent) >= MULAW_FULL_SCALE - 1e-6
    assert rail.mean() > 0.002
    assert not (np.abs(clean) >= MULAW_FULL_SCALE - 1e-6).any()
    assert calls["clipping"]["expect"]["clipping"] == "agent"


@needs_speech
def test_packet_loss_zeroes_whole_packets_of_the_caller_leg(rendered) -> None:
    dest, calls = rendered
    entry = calls["loss"]
    caller, agent = _legs(dest, entry)
    packets = caller[: len(caller) // FRAME * FRAME].reshape(-1, FRAME)
    lost = ~packets.any(axis=1)
    assert lost.mean() == pytest.approx(entry["params"]["loss_rate"], abs=0.02)
    assert np.count_nonzero(np.diff(lost.astype(np.int8)) == 1) < lost.sum()  # bursts, not singles
    assert not (~agent[: len(agent) // FRAME * FRAME].reshape(-1, FRAME).any(axis=1)).any()
    assert entry["expect"]["packet_loss"] == "caller"


@needs_speech
def test_dead_air_is_silent_on_both_legs(rendered) -> None:
    dest, calls = rendered
    entry = calls["dead_air"]
    (start_s, end_s), *_ = [g for g in entry["expect"]["dead_air"] if g[1] - g[0] >= 10]
    assert end_s - start_s == pytest.approx(entry["params"]["dead_air_s"], abs=2.0)
    lo, hi = int((start_s + 0.3) * 8000), int((end_s - 0.3) * 8000)
    for leg in _legs(dest, entry):
        assert np.max(_frame_dbfs(leg[lo:hi])) < NOISE_FLOOR_DBFS + 10
        assert 20 * np.log10(np.max(np.abs(leg[lo:hi]))) < -50.0  # under the silence threshold


@needs_speech
def test_one_way_agent_leg_carries_only_the_line_noise(rendered) -> None:
    dest, calls = rendered
    entry = calls["one_way"]
    caller, agent = _legs(dest, entry)
    assert np.max(_frame_dbfs(agent)) < NOISE_FLOOR_DBFS + 6
    assert 20 * np.log10(np.max(np.abs(agent))) > -66.0  # line noise, not conference digital silence
    assert entry["legs"]["agent"]["speech"] == [] and entry["legs"]["caller"]["speech"]
    assert entry["expect"] == {"one_way_audio": "agent"}
    assert entry["status"] == "NI"


@needs_speech
def test_rendering_is_deterministic(rendered, plans) -> None:
    dest, calls = rendered
    entry = calls["clean_stereo"]
    plan = next(p for p in plans if f"{p.start:%Y%m%d-%H%M%S}_{p.phone}" == entry["call_id"])
    bank = load_speech_bank(talker_ids={plan.agent.talker, plan.caller})
    again = dest / "again"
    again.mkdir()
    assert render_call(plan, bank, again) == entry
    name = entry["files"]["stereo"]
    assert (again / name).read_bytes() == (dest / name).read_bytes()


# --- the speech folder and the espeak fallback ----------------------------------------------------------
def test_a_speech_folder_is_read_from_its_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "clips").mkdir()
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    sf.write(tmp_path / "clips" / "a_0.flac", tone, 8000, subtype="PCM_16")
    sf.write(tmp_path / "clips" / "a_1.flac", tone[:4000], 16000, subtype="PCM_16")  # resampled on load
    index = {"sample_rate": 8000, "speakers": {"a": {"role": "agent", "corpus": "X", "licence": "CC BY 4.0"}},
             "clips": [{"file": "clips/a_0.flac", "speaker": "a"}, {"file": "clips/a_1.flac", "speaker": "a"}]}
    (tmp_path / "index.json").write_text(json.dumps(index))
    monkeypatch.setenv(SPEECH_ENV, str(tmp_path))
    assert speech_dir() == tmp_path
    bank = load_speech_bank()
    assert bank.source == "recorded" and bank.root == tmp_path
    assert [len(p) for p in bank.talkers["a"].phrases] == [8000, 2000]
    assert bank.talkers["a"].licence == "CC BY 4.0"
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_speech_bank()


def test_the_real_speech_folder_has_its_attribution() -> None:
    root = speech_dir()
    if root is None:
        pytest.skip("no demo speech folder on this machine")
    text = (root / "clips" / "ATTRIBUTION.md").read_text()  # beside the audio it covers
    index = json.loads((root / "index.json").read_text())
    for talker, info in index["speakers"].items():
        assert info["licence"] in ("CC BY 4.0", "Public domain"), talker
        assert info["corpus"].split()[0] in text
    assert {a.talker for a in month.AGENTS} | set(month.CALLERS) <= set(index["speakers"])
    assert sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) <= 10_000_000


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_without_the_folder_espeak_voices_the_same_talkers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.demo.speech.speech_dir", lambda: None)
    bank = load_speech_bank(talker_ids={"p225", "p233"})
    assert bank.source == "espeak" and set(bank.talkers) == {"p225", "p233"}
    assert bank.talkers["p225"].role == "agent" and bank.talkers["p233"].role == "caller"
    assert all(len(p) > 4000 for p in bank.talkers["p225"].phrases)


def test_missing_espeak_without_the_folder_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.demo.speech.speech_dir", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="espeak-ng.*make setup"):
        build_demo_recordings(tmp_path / "demo", today=DAY)
    assert not (tmp_path / "demo" / MANIFEST_NAME).exists()


# --- the manifest and reuse --------------------------------------------------------------------------------
def _fake_set(dest: Path, today: date, *, source: str = "recorded") -> dict:
    """A minimal complete manifest (one call) as a build of ``today`` would leave it."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "20261124-003000_2125550100-all.mp3").write_bytes(b"x")
    call = {"call_id": "20261124-003000_2125550100", "layout": "mixed", "duration_s": 40.0,
            "files": {"all": "20261124-003000_2125550100-all.mp3"}, "stories": [],
            **dict.fromkeys(VICIDIAL_FIELDS, "x")}
    manifest = {"demo_version": DEMO_VERSION, "reference_date": today.isoformat(), "speech_source": source,
                "calls": [call]}
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest))
    return manifest


def test_a_demo_from_today_is_reused_and_one_from_an_earlier_day_is_not(tmp_path: Path) -> None:
    dest = tmp_path / "recordings"
    _fake_set(dest, DAY)
    current = _current_set(dest, DAY)
    assert current is not None and not current.generated and current.reference_date == DAY
    assert _current_set(dest, DAY + timedelta(days=1)) is None
    (dest / "20261124-003000_2125550100-all.mp3").unlink()
    assert _current_set(dest, DAY) is None  # a missing file is rebuilt
    _fake_set(dest, DAY)
    manifest = json.loads((dest / MANIFEST_NAME).read_text())
    (dest / MANIFEST_NAME).write_text(json.dumps({**manifest, "demo_version": DEMO_VERSION - 1}))
    assert _current_set(dest, DAY) is None


def test_an_espeak_demo_is_rebuilt_once_the_speech_folder_exists(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    dest = tmp_path / "recordings"
    _fake_set(dest, DAY, source="espeak")
    monkeypatch.setattr("core.demo.speech_dir", lambda: tmp_path)
    assert _current_set(dest, DAY) is None
    monkeypatch.setattr("core.demo.speech_dir", lambda: None)
    assert _current_set(dest, DAY) is not None


def test_store_metadata_of_a_demo_call(tmp_path: Path) -> None:
    _fake_set(tmp_path, DAY)
    call = read_demo_manifest(tmp_path)["calls"][0]
    from core.demo import _demo_set

    demo_call = _demo_set(tmp_path, read_demo_manifest(tmp_path), generated=False).calls[0]
    meta = demo_metadata(demo_call)
    assert meta["call_time"] == call["call_date"] and meta["user"] == call["user"]
    assert meta["campaign"] == call["campaign_id"] and "campaign_id" not in meta


def test_read_manifest_of_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="callqa demo build"):
        read_demo_manifest(tmp_path)


def test_default_folder_is_under_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLQA_DATA", raising=False)
    settings = Settings(raw={"paths": {"data_dir": str(tmp_path)}})
    assert demo_recordings_dir(settings) == tmp_path / "demo" / "recordings"


def test_cli_reports_a_current_demo(tmp_path: Path) -> None:
    from core.cli import cli

    _fake_set(tmp_path, date.today())
    result = CliRunner().invoke(cli, ["demo", "build", "--dest", str(tmp_path), "--no-scan"])
    assert result.exit_code == 0, result.output
    assert "demo recordings up to date" in result.output and "1 calls" in result.output
