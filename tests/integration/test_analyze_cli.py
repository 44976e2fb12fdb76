"""`callqa analyze` end to end as a user runs it: JSON contract, readable report, bad input."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.support.signals import place, speechlike, tone, write

ROOT = Path(__file__).resolve().parents[2]
CALLQA = [sys.executable, "-m", "core.cli"]
LEG_KEYS = {"stats", "silences", "speech", "speech_ratio", "quality"}
STAT_KEYS = {"rms_db", "peak_db", "duration_s", "dc_offset", "clipped_samples", "clip_ratio"}


def run(*args: str, env: dict | None = None, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(prefix or []), *CALLQA, *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_json_contract(corpus_dir: Path):
    out = run("analyze", str(corpus_dir / "20261107-084951_4324835793-in.wav"), "--json", "--no-quality")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"call_id", "layout", "duration_s", "legs", "findings", "warnings", "config", "timings_s"} <= set(data)
    assert data["call_id"] == "20261107-084951_4324835793" and data["layout"] == "channel"
    assert set(data["legs"]) == {"caller", "agent"}
    for leg in data["legs"].values():
        assert LEG_KEYS <= set(leg) and STAT_KEYS == set(leg["stats"])
        assert leg["quality"] is None
        assert all(set(s) == {"start_s", "end_s"} for s in leg["silences"] + leg["speech"])
    assert [f["code"] for f in data["findings"]] == ["one_way_audio"]
    assert set(data["findings"][0]) == {"code", "leg", "start_s", "end_s", "severity", "detail"}
    assert data["config"]["dead_air_min_s"] == 5.0 and "vad_threshold" in data["config"]
    assert data["timings_s"]["total"] > 0


def test_readable_report(corpus_dir: Path):
    out = run("analyze", str(corpus_dir / "20261107-110247_3125534856-all.mp3"), "--no-quality")
    assert out.returncode == 0, out.stderr
    assert "conference layout" in out.stdout and "one_way_audio [caller]" in out.stdout
    assert "Warnings:" in out.stdout


def test_thresholds_come_from_the_config_file(tmp_path: Path, corpus_dir: Path):
    cfg = tmp_path / "callqa.toml"
    cfg.write_text("[analysis]\ndead_air_min_s = 60.0\n")
    path = str(corpus_dir / "20261107-090628_2407982532-in.wav")
    out = run("--config", str(cfg), "analyze", path, "--json", "--no-quality")
    data = json.loads(out.stdout)
    assert data["config"]["dead_air_min_s"] == 60.0
    assert "dead_air" not in [f["code"] for f in data["findings"]]
    bad = tmp_path / "bad.toml"
    bad.write_text("[analysis]\ndead_air_seconds = 3\n")
    out = run("--config", str(bad), "analyze", path, "--no-quality")
    assert out.returncode == 2 and "unknown [analysis] setting(s): dead_air_seconds" in out.stderr


def test_save_stores_what_it_prints_and_the_environment_sets_thresholds(tmp_path: Path, corpus_dir: Path):
    store = tmp_path / "store.db"
    path = str(corpus_dir / "20261107-090628_2407982532-in.wav")
    plain = run("--store", str(store), "analyze", path, "--json", "--no-quality")
    assert plain.returncode == 0, plain.stderr
    assert not store.exists()  # without --save nothing is stored
    env = {"CALLQA_ANALYSIS_DEAD_AIR_MIN_S": "60"}
    saved = run("--store", str(store), "analyze", path, "--json", "--no-quality", "--save", env=env)
    assert saved.returncode == 0, saved.stderr
    data = json.loads(saved.stdout)
    assert data["config"]["dead_air_min_s"] == 60.0 and "dead_air" not in [f["code"] for f in data["findings"]]
    shown = run("--store", str(store), "show", data["call_id"], "--json")
    assert json.loads(shown.stdout) == data  # the stored analysis is the printed one
    before = json.loads(plain.stdout)
    assert {k: v for k, v in before.items() if k not in ("timings_s", "config", "findings")} == \
        {k: v for k, v in data.items() if k not in ("timings_s", "config", "findings")}


def _bad_inputs(tmp: Path, rng: np.random.Generator) -> dict[str, tuple[Path, str]]:
    cases: dict[str, tuple[Path, str]] = {}
    p = tmp / "empty-in.wav"
    p.write_bytes(b"")
    cases["empty"] = (p, "empty (0 bytes)")
    p = write(tmp / "cut" / "T-in.wav", place(4, [(0.5, speechlike(rng, duration_s=2))]))
    write(tmp / "cut" / "T-out.wav", place(4, [(2.5, speechlike(rng, duration_s=1))]))
    p.write_bytes(p.read_bytes()[:20000])
    cases["truncated"] = (p, "truncated")
    p = tmp / "text.wav"
    p.write_text("hello\n" * 100)
    cases["non-audio"] = (p, "not a readable audio file")
    p = tmp / "zero.wav"
    sf.write(str(p), np.zeros(0), 8000, subtype="PCM_16")
    cases["0-length"] = (p, "no audio samples")
    p = tmp / "long.wav"
    frames = 6 * 3600 * 8000
    with p.open("wb") as fh:
        fh.write(b"RIFF" + struct.pack("<I", 36 + frames * 2) + b"WAVEfmt " +
                 struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", frames * 2))
        fh.truncate(44 + frames * 2)
    cases["6-hour"] = (p, "6.0 h long")
    p = write(tmp / "hifi.wav", tone(440, rms_dbfs=-20, duration_s=0.5, sample_rate=96000), sample_rate=96000)
    cases["96 kHz"] = (p, "96000 Hz")
    p = write(tmp / "lonely" / "L-in.wav", place(4, [(0.5, speechlike(rng, duration_s=2))]))
    cases["missing leg"] = (p, "missing leg: L-out.*")
    cases["unreadable path"] = (tmp / "no" / "such" / "call-in.wav", "no such file")
    return cases


@pytest.mark.parametrize("case", ["empty", "truncated", "non-audio", "0-length", "6-hour", "96 kHz",
                                  "missing leg", "unreadable path"])
def test_bad_input_gives_one_line_and_non_zero_exit(tmp_path: Path, rng: np.random.Generator, case: str):
    path, expected = _bad_inputs(tmp_path, rng)[case]
    out = run("analyze", str(path), "--no-quality")
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("callqa: error: ") and expected in lines[0]
    assert path.name in lines[0]
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_permission_denied_is_one_line(tmp_path: Path, rng: np.random.Generator):
    path = write(tmp_path / "locked.wav", place(2, [(0.2, speechlike(rng, duration_s=1))]))
    path.chmod(0)
    drop = "-dac_override,-dac_read_search"  # root reads anything otherwise
    prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"] if os.geteuid() == 0 else []
    try:
        out = run("analyze", str(path), "--no-quality", "--layout", "mixed", prefix=prefix)
    finally:
        path.chmod(0o644)
    assert out.returncode != 0 and "permission denied" in out.stderr and "Traceback" not in out.stderr


def test_usage_errors_exit_2(corpus_dir: Path):
    assert run("analyze").returncode == 2
    out = run("analyze", str(corpus_dir / "20261107-080000_9828963560-in.wav"), "--layout", "quad")
    assert out.returncode == 2 and "Traceback" not in out.stderr
