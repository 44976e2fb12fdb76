"""Layout resolution from the files beside a path (ViciDial naming), with and without --layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.audio.layout import call_files_for, discover_calls, resolve_layout, split_role
from core.config import AnalysisConfig
from core.errors import AudioNotFoundError, LayoutError
from tests.support.signals import place, speechlike, write

CFG = AnalysisConfig()


@pytest.fixture
def legs(tmp_path: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    caller = place(12, [(1, speechlike(rng, duration_s=3)), (8, speechlike(rng, duration_s=2))], floor_dbfs=-66, rng=rng)
    agent = place(12, [(4.5, speechlike(rng, duration_s=3))], floor_dbfs=-66, rng=rng)
    return {"caller": caller, "agent": agent}


def test_split_role():
    assert split_role(Path("20261107-080000_9828963560-in.wav")) == ("20261107-080000_9828963560", "in")
    assert split_role(Path("X-ALL.MP3")) == ("X", "all")
    assert split_role(Path("plain.wav")) == ("plain", "single")


def test_channel_layout(tmp_path: Path, legs):
    write(tmp_path / "C-in.wav", legs["caller"])
    write(tmp_path / "C-out.wav", legs["agent"])
    write(tmp_path / "C-all.wav", (legs["caller"] + legs["agent"]) / 2)
    for given in ("C-in.wav", "C-out.wav", "C-all.wav"):
        r = resolve_layout(call_files_for(tmp_path / given), cfg=CFG)
        assert r.layout == "channel" and set(r.tracks) == {"caller", "agent"}
        assert r.tracks["caller"].path.name == "C-in.wav" and r.tracks["agent"].path.name == "C-out.wav"
        assert r.warnings == []


def test_conference_layout_when_out_is_digital_silence(tmp_path: Path, legs):
    write(tmp_path / "K-in.wav", legs["caller"] + legs["agent"])
    write(tmp_path / "K-out.wav", np.zeros_like(legs["agent"]), subtype="ULAW")
    r = resolve_layout(call_files_for(tmp_path / "K-in.wav"), cfg=CFG)
    assert r.layout == "conference" and list(r.tracks) == ["mixed"]
    assert "conference recording" in r.warnings[0]


def test_dead_leg_with_line_noise_stays_channel(tmp_path: Path, legs, rng):
    """A one-way call's dead leg carries the line's noise floor (-72 dBFS), not digital silence."""
    write(tmp_path / "D-in.wav", legs["caller"])
    write(tmp_path / "D-out.wav", rng.standard_normal(legs["agent"].size) * 10 ** (-72 / 20))
    assert resolve_layout(call_files_for(tmp_path / "D-in.wav"), cfg=CFG).layout == "channel"


def test_stereo_layout_maps_left_to_agent_and_is_configurable(tmp_path: Path, legs):
    path = write(tmp_path / "S-stereo.wav", np.stack([legs["agent"], legs["caller"]], axis=1))
    r = resolve_layout(call_files_for(path), cfg=CFG)
    assert r.layout == "stereo"
    assert np.allclose(r.tracks["agent"].samples, legs["agent"], atol=1e-4)
    flipped = resolve_layout(call_files_for(path), cfg=AnalysisConfig(stereo_left="caller"))
    assert np.allclose(flipped.tracks["caller"].samples, legs["agent"], atol=1e-4)


def test_plain_stereo_file_without_vicidial_name(tmp_path: Path, legs):
    path = write(tmp_path / "gateway_123.wav", np.stack([legs["agent"], legs["caller"]], axis=1))
    assert resolve_layout(call_files_for(path), cfg=CFG).layout == "stereo"


def test_mixed_only_warns_that_directional_checks_are_limited(tmp_path: Path, legs):
    path = write(tmp_path / "M-all.mp3", (legs["caller"] + legs["agent"]) / 2, fmt="MP3", subtype="MPEG_LAYER_III")
    r = resolve_layout(call_files_for(path), cfg=CFG)
    assert r.layout == "mixed" and list(r.tracks) == ["mixed"]
    assert any("directional checks" in w for w in r.warnings)


def test_missing_leg_falls_back_to_the_mix_with_a_warning(tmp_path: Path, legs):
    write(tmp_path / "F-in.wav", legs["caller"])
    write(tmp_path / "F-all.wav", (legs["caller"] + legs["agent"]) / 2)
    r = resolve_layout(call_files_for(tmp_path / "F-in.wav"), cfg=CFG)
    assert r.layout == "mixed"
    assert any("missing leg F-out" in w for w in r.warnings)


def test_missing_leg_without_a_mix_is_an_error_naming_the_file(tmp_path: Path, legs):
    write(tmp_path / "G-in.wav", legs["caller"])
    with pytest.raises(LayoutError, match=r"missing leg: G-out\.\* beside G-in\.wav.*--layout mixed"):
        resolve_layout(call_files_for(tmp_path / "G-in.wav"), cfg=CFG)
    r = resolve_layout(call_files_for(tmp_path / "G-in.wav"), cfg=CFG, layout="mixed")
    assert r.layout == "mixed" and r.tracks["mixed"].path.name == "G-in.wav"


def test_forced_layouts(tmp_path: Path, legs):
    write(tmp_path / "H-in.wav", legs["caller"])
    write(tmp_path / "H-out.wav", legs["agent"])
    r = resolve_layout(call_files_for(tmp_path / "H-in.wav"), cfg=CFG, layout="conference")
    assert r.layout == "conference" and any("not silent" in w for w in r.warnings)
    with pytest.raises(LayoutError, match="2-channel"):
        resolve_layout(call_files_for(tmp_path / "H-in.wav"), cfg=CFG, layout="stereo")
    with pytest.raises(LayoutError, match="unknown layout"):
        resolve_layout(call_files_for(tmp_path / "H-in.wav"), cfg=CFG, layout="quad")
    write(tmp_path / "J-out.wav", legs["agent"])
    with pytest.raises(LayoutError, match="needs both legs"):
        resolve_layout(call_files_for(tmp_path / "J-out.wav"), cfg=CFG, layout="channel")


def test_prefers_wav_over_mp3_and_decodes_each_file_once(tmp_path: Path, legs):
    write(tmp_path / "P-in.wav", legs["caller"])
    write(tmp_path / "P-out.wav", legs["agent"])
    write(tmp_path / "P-all.mp3", legs["caller"], fmt="MP3", subtype="MPEG_LAYER_III")
    write(tmp_path / "P-all.wav", legs["caller"])
    call = call_files_for(tmp_path / "P-in.wav")
    assert call.files["all"].suffix == ".wav"
    loads: list[Path] = []

    def loader(path: Path):
        from core.audio.io import load_audio

        loads.append(path)
        return load_audio(path)

    resolve_layout(call, cfg=CFG, loader=loader)
    assert sorted(p.name for p in loads) == ["P-in.wav", "P-out.wav"]


def test_discover_calls_groups_by_name(tmp_path: Path, legs):
    for name in ("A", "B"):
        write(tmp_path / f"{name}-in.wav", legs["caller"])
        write(tmp_path / f"{name}-out.wav", legs["agent"])
    write(tmp_path / "sub" / "C-all.wav", legs["caller"])
    (tmp_path / "notes.txt").write_text("not audio")
    calls = discover_calls(tmp_path)
    assert [c.call_id for c in calls] == ["A", "B", "C"]
    assert set(calls[0].files) == {"in", "out"}
    with pytest.raises(AudioNotFoundError):
        discover_calls(tmp_path / "nope")
