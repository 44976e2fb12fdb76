"""Known-answer tests of the generated demo calls (one shared build per module)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from core.config import Settings
from core.demo import (
    DEMO_VERSION,
    IMPAIRMENTS,
    LOW_VOLUME_DBFS,
    MANIFEST_NAME,
    NOISE_FLOOR_DBFS,
    SPEECH_LEVEL_DBFS,
    VICIDIAL_FIELDS,
    DemoSet,
    active_level_dbfs,
    build_demo,
    build_demo_recordings,
    demo_recordings_dir,
    read_demo_manifest,
)
from core.errors import ConfigError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

MULAW_FULL_SCALE = 32124 / 32768  # largest G.711 mu-law magnitude (ITU-T G.711)
FRAME = 160  # 20 ms at 8 kHz


@pytest.fixture(scope="module")
def demo_set(tmp_path_factory: pytest.TempPathFactory) -> DemoSet:
    return build_demo_recordings(tmp_path_factory.mktemp("demo") / "recordings")


@pytest.fixture(scope="module")
def manifest(demo_set: DemoSet) -> dict:
    return json.loads(demo_set.manifest_path.read_text())


def _call(manifest: dict, impairment: str) -> dict:
    return next(c for c in manifest["calls"] if c["impairment"] == impairment)


def _legs(demo_set: DemoSet, call: dict) -> tuple[np.ndarray, np.ndarray]:
    caller, _ = sf.read(demo_set.root / call["files"]["in"], dtype="float64")
    agent, _ = sf.read(demo_set.root / call["files"]["out"], dtype="float64")
    return caller, agent


def _rms_dbfs(x: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(x**2)))


def _frame_dbfs(x: np.ndarray) -> np.ndarray:
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-20)


def _digests(root: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


# --- files and manifest -------------------------------------------------------------------------
def test_one_call_per_impairment(demo_set: DemoSet) -> None:
    assert demo_set.generated
    assert [c.impairment for c in demo_set.calls] == list(IMPAIRMENTS)
    assert len({c.call_id for c in demo_set.calls}) == 8


def test_files_are_8khz_mono_of_the_announced_length(demo_set: DemoSet, manifest: dict) -> None:
    for call in manifest["calls"]:
        infos = [sf.info(demo_set.root / call["files"][role]) for role in ("in", "out", "mixed")]
        for info in infos:
            assert (info.samplerate, info.channels, info.format) == (8000, 1, "WAV")
            assert info.subtype == call["encoding"] in ("PCM_16", "ULAW")
            assert info.frames == infos[0].frames
        assert 40.0 <= infos[0].frames / 8000 <= 75.0, call["call_id"]
        assert infos[0].frames / 8000 == pytest.approx(call["duration_s"], abs=1e-3)


def test_file_names_follow_vicidial(manifest: dict) -> None:
    for call in manifest["calls"]:
        assert re.fullmatch(r"\d{8}-\d{6}_\d{10}", call["call_id"])
        assert call["files"] == {role: f"{call['call_id']}-{suffix}.wav"
                                 for role, suffix in (("in", "in"), ("out", "out"), ("mixed", "all"))}
        assert call["call_id"].endswith(call["phone_number"])
        assert call["call_id"][:15] == call["call_date"].replace("-", "").replace("T", "-").replace(":", "")
    assert len({c["phone_number"] for c in manifest["calls"]}) == 8


def test_manifest_keys(manifest: dict) -> None:
    assert manifest["demo_version"] == DEMO_VERSION
    assert manifest["sample_rate"] == 8000
    required = {"call_id", "impairment", "layout", "files", "duration_s", "legs", "overlaps", "params", "expect"}
    expect_keys = {"one_way", "dead_air", "clipping", "low_volume", "echo", "packet_loss", "noisy",
                   "talk_imbalance"}
    for call in manifest["calls"]:
        assert required | set(VICIDIAL_FIELDS) <= set(call)
        assert set(call["expect"]) == expect_keys
        assert call["layout"] == ("conference" if call["impairment"] == "conference" else "channel")
        assert re.fullmatch(r"\d{10}\.\d{4}", call["uniqueid"])
        assert call["server_ip"] in ("10.10.10.11", "10.10.10.12")
        assert call["dialstatus"] == "ANSWER"
        assert (call["ingroup"] is None) == (call["campaign_id"] == "SALESOUT")
        assert call["legs"]["caller"]["speech"], call["impairment"]
        assert call["expect"]["talk_imbalance"] is False


def test_expected_findings_name_the_impaired_leg(manifest: dict) -> None:
    flagged = {c["impairment"]: {k: v for k, v in c["expect"].items() if v} for c in manifest["calls"]}
    assert flagged["clean"] == flagged["conference"] == {}
    assert flagged["one_way"] == {"one_way": "agent"}
    assert flagged["clipping"] == {"clipping": "agent"}
    assert flagged["low_volume"] == {"low_volume": "caller"}
    assert flagged["echo"] == {"echo": "caller"}
    assert flagged["packet_loss"] == {"packet_loss": "caller"}
    ((start_s, end_s),) = flagged["dead_air"]["dead_air"]
    assert 14.5 <= end_s - start_s <= 16.5


def test_packet_loss_call_has_carrier_trouble(manifest: dict) -> None:
    call = _call(manifest, "packet_loss")
    assert call["hangup_cause"] == 38 or call["sip_hangup_cause"] == 503


def test_demo_set_carries_metadata(demo_set: DemoSet) -> None:
    call = demo_set.calls[0]
    assert call.in_path.is_file() and call.out_path.is_file() and call.mixed_path.is_file()
    assert set(call.metadata) == set(VICIDIAL_FIELDS)
    assert read_demo_manifest(demo_set.root)["calls"][0]["call_id"] == call.call_id


# --- the telephone chain and impairments --------------------------------------------------------
def test_mix_is_each_leg_at_minus_6_db(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "clean")  # PCM_16: the mix is exact up to int16 rounding
    caller, agent = _legs(demo_set, call)
    mixed, _ = sf.read(demo_set.root / call["files"]["mixed"], dtype="float64")
    assert np.max(np.abs(mixed - (caller + agent) * 0.5)) <= 1 / 32768


def test_clean_legs_sit_at_the_speech_level_over_the_noise_floor(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "clean")
    caller, agent = _legs(demo_set, call)
    for samples, leg in ((caller, "caller"), (agent, "agent")):
        speech = call["legs"][leg]["speech"]
        assert active_level_dbfs(samples, speech) == pytest.approx(SPEECH_LEVEL_DBFS, abs=1.0)
        assert np.max(np.abs(samples)) < 0.8  # headroom: no clipping in a clean call
        quiet = _frame_dbfs(samples)[: int(speech[0][0] / 0.02) - 1]  # before the first word
        assert np.median(quiet) == pytest.approx(NOISE_FLOOR_DBFS, abs=3.0)


def test_conference_out_leg_is_digital_silence(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "conference")
    mix, out = sf.read(demo_set.root / call["files"]["in"], dtype="int16")[0], \
        sf.read(demo_set.root / call["files"]["out"], dtype="int16")[0]
    assert not out.any()
    both = [*call["legs"]["caller"]["speech"], *call["legs"]["agent"]["speech"]]
    assert active_level_dbfs(mix / 32768, both) == pytest.approx(SPEECH_LEVEL_DBFS, abs=1.5)


def test_one_way_agent_leg_carries_only_the_noise_floor(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "one_way")
    caller, agent = _legs(demo_set, call)
    assert _rms_dbfs(agent) == pytest.approx(NOISE_FLOOR_DBFS, abs=2.0)
    assert np.max(_frame_dbfs(agent)) < NOISE_FLOOR_DBFS + 6
    assert active_level_dbfs(caller, call["legs"]["caller"]["speech"]) == pytest.approx(SPEECH_LEVEL_DBFS, abs=1.0)
    assert call["legs"]["agent"]["speech"] == []


def test_clipping_agent_leg_is_flat_topped(demo_set: DemoSet, manifest: dict) -> None:
    clipped = _legs(demo_set, _call(manifest, "clipping"))[1]
    clean = _legs(demo_set, _call(manifest, "clean"))[1]
    at_full_scale = np.abs(clipped) >= MULAW_FULL_SCALE - 1e-6
    assert at_full_scale.mean() > 0.01  # over 1 % of all samples: thousands of clipped samples
    runs = np.flatnonzero(np.diff(at_full_scale.astype(np.int8)) == 1)
    assert len(runs) > 100
    assert not (np.abs(clean) >= MULAW_FULL_SCALE - 1e-6).any()


def test_low_volume_caller_speech_level(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "low_volume")
    caller, agent = _legs(demo_set, call)
    assert active_level_dbfs(caller, call["legs"]["caller"]["speech"]) == pytest.approx(LOW_VOLUME_DBFS, abs=2.0)
    assert active_level_dbfs(agent, call["legs"]["agent"]["speech"]) == pytest.approx(SPEECH_LEVEL_DBFS, abs=1.0)


def test_dead_air_interval_is_silent_on_both_legs(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "dead_air")
    ((start_s, end_s),) = call["expect"]["dead_air"]
    lo, hi = int((start_s + 0.3) * 8000), int((end_s - 0.3) * 8000)  # skip synthetic decay tails
    for leg in _legs(demo_set, call):
        segment = leg[lo:hi]
        # line noise only: every 20 ms frame within 10 dB of the floor; Gaussian peaks reach
        # ~13 dB over its RMS, so samples stay under the -50 dBFS silence threshold instead
        assert np.max(_frame_dbfs(segment)) < NOISE_FLOOR_DBFS + 10
        assert 20 * np.log10(np.max(np.abs(segment))) < -50.0


def test_echo_returns_agent_speech_on_the_caller_leg(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "echo")
    caller, agent = _legs(demo_set, call)
    delay = round(call["params"]["echo_delay_s"] * 8000)
    lagged = agent[:-delay]
    gain = np.dot(caller[delay:], lagged) / np.dot(lagged, lagged)  # least-squares echo path
    assert 20 * np.log10(gain) == pytest.approx(-call["params"]["echo_erl_db"], abs=1.5)


def test_packet_loss_zeroes_whole_packets_of_the_caller_leg(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "packet_loss")
    caller, agent = _legs(demo_set, call)
    packets = caller[: len(caller) // FRAME * FRAME].reshape(-1, FRAME)
    lost = ~packets.any(axis=1)
    assert int(lost.sum()) == call["params"]["lost_packets"]
    assert 0.10 <= lost.mean() <= 0.15
    assert np.count_nonzero(np.diff(lost.astype(np.int8)) == 1) < lost.sum()  # bursts, not singles
    assert not (~agent[: len(agent) // FRAME * FRAME].reshape(-1, FRAME).any(axis=1)).any()


def test_speech_truth_matches_the_audio(demo_set: DemoSet, manifest: dict) -> None:
    call = _call(manifest, "clean")
    caller, _ = _legs(demo_set, call)
    mask = np.zeros(len(caller), dtype=bool)
    for start_s, end_s in call["legs"]["caller"]["speech"]:
        mask[int(start_s * 8000) - 400: int(end_s * 8000) + 400] = True  # 50 ms of decay either side
    assert _rms_dbfs(caller[~mask]) < -45.0


# --- idempotence, determinism, errors -----------------------------------------------------------
def test_rebuild_is_a_no_op_and_force_is_deterministic(demo_set: DemoSet) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in demo_set.root.iterdir()}
    digests = _digests(demo_set.root)
    again = build_demo_recordings(demo_set.root)
    assert not again.generated
    assert again.calls == demo_set.calls
    assert {p.name: p.stat().st_mtime_ns for p in demo_set.root.iterdir()} == before
    forced = build_demo_recordings(demo_set.root, force=True)
    assert forced.generated
    assert _digests(demo_set.root) == digests
    assert len(digests) == 8 * 3 + 1  # no temporary files left behind


def test_up_to_date_check_needs_no_espeak(demo_set: DemoSet, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo_set.root, copy)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert not build_demo_recordings(copy).generated
    manifest = json.loads((copy / MANIFEST_NAME).read_text())
    (copy / MANIFEST_NAME).write_text(json.dumps({**manifest, "demo_version": DEMO_VERSION - 1}))
    with pytest.raises(ConfigError, match="make setup"):  # an old version is rebuilt
        build_demo_recordings(copy)
    (copy / MANIFEST_NAME).write_text(json.dumps(manifest))
    (copy / manifest["calls"][3]["files"]["out"]).unlink()
    with pytest.raises(ConfigError, match="make setup"):  # a missing file is rebuilt
        build_demo_recordings(copy)


def test_missing_espeak_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="espeak-ng.*make setup"):
        build_demo_recordings(tmp_path / "demo")
    assert not (tmp_path / "demo" / MANIFEST_NAME).exists()


def test_read_manifest_of_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="callqa demo build"):
        read_demo_manifest(tmp_path)


def test_default_folder_is_under_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CALLQA_DATA", raising=False)
    settings = Settings(raw={"paths": {"data_dir": str(tmp_path)}})
    assert demo_recordings_dir(settings) == tmp_path / "demo" / "recordings"


def test_build_demo_entry_point_scans_into_the_demo_store(demo_set: DemoSet, tmp_path: Path) -> None:
    from core.store.queries import call_metadata, list_calls
    from core.store.store import open_store

    store_url = str(tmp_path / "demo.db")
    result = build_demo(Settings(), force=False, recordings_dir=demo_set.root, quality=False, store_url=store_url)
    assert not result.generated and result.root == demo_set.root
    store = open_store(store_url)
    try:
        calls = list_calls(store)
        assert sorted(calls["call_id"]) == sorted(c.call_id for c in demo_set.calls)
        for call in demo_set.calls:
            meta = call_metadata(store, call.call_id)
            assert meta["agent"] == call.metadata["user"] and meta["server_ip"] == call.metadata["server_ip"]
            codes = {f["code"] for f in store.get_analysis(call.call_id)["findings"]}
            expected = {"one_way": "one_way_audio"}.get(call.impairment, call.impairment)
            assert codes == (set() if call.impairment in ("clean", "conference") else {expected}), call.impairment
    finally:
        store.close()


def test_cli_reports_up_to_date(demo_set: DemoSet) -> None:
    from core.cli import cli

    result = CliRunner().invoke(cli, ["demo", "build", "--dest", str(demo_set.root), "--no-scan"])
    assert result.exit_code == 0, result.output
    assert "demo recordings up to date" in result.output
