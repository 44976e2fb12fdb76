"""ViciDial end to end: a recording found in a real MariaDB, fetched over real HTTP, analysed and stored
with its ViciDial metadata (`callqa analyze --recording-id [--save]`, `callqa scan vicidial`, analyze_or_reuse)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.analysis_service import Models, analyze_or_reuse
from core.config import load_settings
from core.store.store import open_store
from tests.support.http_server import RecordingServer, recording_server
from tests.support.vicidial_fixture import ViciDialFixture, config_sections, vicidial_database

ROOT = Path(__file__).resolve().parents[2]
CALL = "20261107-080000_9828963560"


@pytest.fixture(scope="module")
def vicidial() -> Iterator[ViciDialFixture]:
    with vicidial_database() as fixture:
        yield fixture


@pytest.fixture(scope="module")
def http(corpus_dir: Path) -> Iterator[RecordingServer]:
    with recording_server(corpus_dir, flatten=True) as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, vicidial: ViciDialFixture, http: RecordingServer) -> Path:
    path = tmp_path / "callqa.toml"
    path.write_text(config_sections(vicidial, tmp_path / "cache", dialer_11=http.netloc)
                    + f'\n[paths]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def run(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CALLQA_VICIDIAL_PASSWORD": "", "CALLQA_CONFIG": str(config)}
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)


def test_analyze_recording_id(config: Path):
    out = run(config, "analyze", "--recording-id", "9200001", "--json", "--no-quality")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["call_id"] == CALL
    assert data["vicidial"]["recording_id"] == 9200001 and data["vicidial"]["user"] == "6001"
    assert data["layout"] == "mixed"  # only the -all.wav mix is reachable over HTTP
    assert any("falling back to the mix" in w for w in data["warnings"])


def test_analyze_recording_id_save_stores_it_with_its_metadata(config: Path, tmp_path: Path):
    store_path = tmp_path / "saved.db"
    out = run(config, "--store", str(store_path), "analyze", "--recording-id", "9200001", "--json", "--no-quality",
              "--save")
    assert out.returncode == 0, out.stderr
    with open_store(str(store_path)) as store:
        assert store.get_analysis(CALL) == json.loads(out.stdout)
        from core.store.queries import call_metadata

        meta = call_metadata(store, CALL)
    assert meta["agent"] == "6001" and str(meta["recording_id"]) == "9200001"


def test_unknown_recording_id_is_one_line(config: Path):
    out = run(config, "analyze", "--recording-id", "1", "--no-quality")
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "1" in out.stderr and "Traceback" not in out.stderr


def test_scan_vicidial_stores_metadata(config: Path, tmp_path: Path):
    store_path = tmp_path / "s.db"
    out = run(config, "--store", str(store_path), "scan", "vicidial", "--since", "2026-11-07", "--until",
              "2026-11-08", "--no-quality")
    assert out.returncode == 0, out.stderr
    assert "3 calls: 3 analysed" in out.stdout
    store = open_store(str(store_path))
    try:
        analysis = store.get_analysis(CALL)
        from core.store.queries import call_metadata

        meta = call_metadata(store, CALL)
        assert meta["agent"] == "6001" and meta["server_ip"] == "10.10.10.11"
        assert analysis["call_id"] == CALL
    finally:
        store.close()
    again = run(config, "--store", str(store_path), "scan", "vicidial", "--since", "2026-11-07", "--until",
                "2026-11-08", "--no-quality")
    assert " 0 analysed" in again.stdout


def test_analyze_or_reuse_caches_a_vicidial_recording(config: Path, tmp_path: Path, http: RecordingServer):
    from core.fetch.service import recording_item

    settings = load_settings(config)
    store = open_store(str(tmp_path / "e.db"))
    try:
        first = analyze_or_reuse(recording_item(settings, 9200001), store, Models(), settings)
        second = analyze_or_reuse(recording_item(settings, 9200001), store, Models(), settings)
    finally:
        store.close()
    assert (first.reused, second.reused) == (False, True) and second.outcome == "fresh"
    assert first.document["findings"] == second.document["findings"]
    assert second.document["vicidial"]["recording_id"] == 9200001
