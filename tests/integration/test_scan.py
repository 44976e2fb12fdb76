"""Fleet scans of real recordings into real stores: caching, failures, kills and concurrent scanners.

Quality scoring is off (``--no-quality``) to keep these fast; the scan engine treats the quality
model as one more input of the cache key.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from core import work as work_module
from core.audio.layout import CallFiles
from core.cli import cli
from core.config import Settings
from core.runtime import RUN_PREFIX, cleanup_tmp, make_run_dir
from core.scan import run_scan, scan_folder
from core.store import open_store
from core.store import queries as q
from core.work import WorkItem, parse_when
from tests.support.shared import PROJECT_ROOT


# --- helpers -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def call_ids(labels) -> list[str]:
    return sorted(c["call_id"] for c in labels["calls"])


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """A hermetic environment for ``callqa`` subprocesses (own config, data and temp folders)."""
    config = tmp_path / "callqa.toml"
    config.write_text("")
    out = {k: v for k, v in os.environ.items() if not k.startswith("CALLQA_") or k == "CALLQA_SHARED"}
    out.update(CALLQA_CONFIG=str(config), CALLQA_DATA=str(tmp_path / "data"), CALLQA_TMP=str(tmp_path / "tmp"))
    return out


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("CALLQA_TMP", str(tmp_path / "tmp"))
    return Settings()


def callqa(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], cwd=PROJECT_ROOT, env=env, text=True,
                          capture_output=True, timeout=timeout)


def start_callqa(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = open(log, "w")  # a file, not a pipe: a full pipe would block the scan
    return subprocess.Popen([sys.executable, "-m", "core.cli", *args], cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=handle, stderr=subprocess.STDOUT)


def analysed_count(output: str) -> int:
    m = re.search(r"(\d+) analysed, (\d+) cached, (\d+) failed", output)
    assert m, output
    return int(m.group(1))


def stored_calls(db: Path) -> int:
    """Calls committed in a SQLite store, read while a scan may be writing (0 before the schema)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def assert_consistent(db: Path, call_ids: list[str]) -> None:
    """integrity_check ok, every call exactly once, and its rows agree with its stored JSON."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        rows = conn.execute("SELECT call_id, analysis_json FROM calls ORDER BY call_id").fetchall()
        assert [r[0] for r in rows] == call_ids
        for call_id, doc_text in rows:
            doc = json.loads(doc_text)
            n_find = conn.execute("SELECT count(*) FROM findings WHERE call_id=?", (call_id,)).fetchone()[0]
            n_legs = conn.execute("SELECT count(*) FROM tracks WHERE call_id=?", (call_id,)).fetchone()[0]
            n_speech = conn.execute("SELECT count(*) FROM speech_segments WHERE call_id=?", (call_id,)).fetchone()[0]
            assert (n_find, n_legs, n_speech) == (len(doc["findings"]), len(doc["legs"]),
                                                  sum(len(g["speech"]) for g in doc["legs"].values()))
        assert conn.execute("SELECT count(*) FROM claims").fetchone()[0] == 0
    finally:
        conn.close()


def copy_calls(src: Path, dst: Path, call_ids: list[str]) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for cid in call_ids:
        for f in src.glob(f"{cid}-*"):
            shutil.copy2(f, dst / f.name)
    return dst


def children_of(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- scans -----------------------------------------------------------------------------------------------
def test_scan_corpus_once_then_nothing(corpus_dir, call_ids, settings, tmp_path):
    db = tmp_path / "store.db"
    first = scan_folder(settings, corpus_dir, store_url=str(db), quality=False)
    assert (first.total, first.analysed, first.cached, first.failed, first.exit_code) == (
        len(call_ids), len(call_ids), 0, (), 0)
    assert first.audio_s > 0 and first.throughput > 0
    second = scan_folder(settings, corpus_dir, store_url=str(db), quality=False)
    assert (second.analysed, second.cached, second.exit_code) == (0, len(call_ids), 0)
    assert_consistent(db, call_ids)
    with open_store(str(db)) as store:
        df = q.list_calls(store, order="oldest", limit=None)
    assert list(df["call_id"]) == call_ids
    assert df["call_time"].iloc[0] == datetime(2026, 11, 7, 8, 0, 0)  # from the FULLDATE prefix
    assert set(df["source_kind"]) == {"folder"}
    assert not list((tmp_path / "tmp").iterdir())  # the run folders are gone


def test_changed_bytes_reanalyse_exactly_that_call(corpus_dir, call_ids, settings, tmp_path):
    folder = copy_calls(corpus_dir, tmp_path / "corpus", call_ids)
    db = tmp_path / "store.db"
    assert scan_folder(settings, folder, store_url=str(db), quality=False).analysed == len(call_ids)
    with open_store(str(db)) as store:
        keys = {cid: store.stored_key(cid) for cid in call_ids}
    target = call_ids[4]
    out_wav = folder / f"{target}-out.wav"
    data = bytearray(out_wav.read_bytes())
    for i in range(len(data) - 800, len(data), 2):  # a short click near the end of the agent leg
        data[i] ^= 0x40
    out_wav.write_bytes(bytes(data))
    report = scan_folder(settings, folder, store_url=str(db), quality=False)
    assert (report.analysed, report.cached) == (1, len(call_ids) - 1)
    with open_store(str(db)) as store:
        after = {cid: store.stored_key(cid) for cid in call_ids}
    assert [cid for cid in call_ids if after[cid] != keys[cid]] == [target]


def test_since_until_and_limit(corpus_dir, call_ids, settings, tmp_path):
    db = tmp_path / "store.db"
    since, until = datetime(2026, 11, 7, 9, 0), datetime(2026, 11, 7, 10, 0)
    window = [c for c in call_ids if since <= datetime.strptime(c[:15], "%Y%m%d-%H%M%S") < until]
    assert len(window) == 4
    first = scan_folder(settings, corpus_dir, store_url=str(db), quality=False, since=since, until=until, limit=3)
    assert (first.total, first.analysed, first.limited) == (4, 3, True)
    second = scan_folder(settings, corpus_dir, store_url=str(db), quality=False, since=since, until=until, limit=3)
    assert (second.analysed, second.cached, second.limited) == (1, 3, False)
    with open_store(str(db)) as store:
        assert sorted(q.list_calls(store, limit=None)["call_id"]) == window


def test_scan_into_postgresql(corpus_dir, call_ids, settings, tmp_path, pg_url):  # noqa: F811
    folder = copy_calls(corpus_dir, tmp_path / "some", call_ids[:3])
    first = scan_folder(settings, folder, store_url=pg_url, quality=False, metadata={"campaign": "SALES"})
    assert (first.analysed, first.exit_code) == (3, 0)
    assert scan_folder(settings, folder, store_url=pg_url, quality=False).cached == 3
    with open_store(pg_url) as store:
        df = q.list_calls(store, limit=None)
        assert sorted(df["call_id"]) == call_ids[:3] and set(df["campaign"]) == {"SALES"}
        assert q.fleet_trend(store, bucket="hour")["calls"].sum() == 3


def test_bad_recordings_are_stored_as_errors_and_exit_3(corpus_dir, call_ids, env, tmp_path):
    folder = copy_calls(corpus_dir, tmp_path / "rec", call_ids[:2])
    (folder / "20261107-120000_1111111111-in.wav").write_text("this is not audio\n")
    (folder / "20261107-120000_1111111111-out.wav").write_text("neither is this\n")
    good = (folder / f"{call_ids[0]}-in.wav").read_bytes()
    (folder / "20261107-121500_2222222222-all.wav").write_bytes(good[:30])  # truncated inside the header
    db = tmp_path / "store.db"

    run = callqa("--store", str(db), "scan", str(folder), "--no-quality", env=env)
    assert run.returncode == 3, run.stdout + run.stderr
    assert analysed_count(run.stdout) == 2
    assert "Failed calls:" in run.stdout
    assert re.search(r"20261107-120000_1111111111: .*-(in|out)\.wav", run.stdout)
    assert re.search(r"20261107-121500_2222222222: .*-all\.wav", run.stdout)
    with open_store(str(db)) as store:
        errors = q.list_errors(store)
    assert sorted(errors["call_id"]) == ["20261107-120000_1111111111", "20261107-121500_2222222222"]
    assert all(errors["reason"].str.len() > 10)

    again = callqa("--store", str(db), "scan", str(folder), "--no-quality", env=env)
    assert again.returncode == 3 and analysed_count(again.stdout) == 0
    assert again.stdout.count("(unchanged since it failed)") == 2

    listed = callqa("--store", str(db), "calls", "--json", env=env)
    assert listed.returncode == 0
    assert sorted(c["call_id"] for c in json.loads(listed.stdout)) == call_ids[:2]
    shown = callqa("--store", str(db), "show", call_ids[0], "--json", env=env)
    with open_store(str(db)) as store:
        assert json.loads(shown.stdout) == store.get_analysis(call_ids[0])
    missing = callqa("--store", str(db), "show", "no-such-call", env=env)
    assert missing.returncode == 1 and "callqa: error: call no-such-call is not in the store" in missing.stderr


def test_usage_errors_exit_2(tmp_path):
    runner = CliRunner()
    reserved = runner.invoke(cli, ["--store", str(tmp_path / "s.db"), "scan", "vicidial"], standalone_mode=False)
    assert "[vicidial]" in str(reserved.exception) and reserved.exception.exit_code == 2
    bad = runner.invoke(cli, ["scan", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "not a folder of recordings" in bad.output
    when = runner.invoke(cli, ["scan", str(tmp_path), "--since", "last tuesday"])
    assert when.exit_code == 2 and "cannot read the time" in when.output


def test_parse_when():
    now = datetime(2026, 11, 7, 15, 30)
    assert parse_when("2026-11-06", now=now) == datetime(2026, 11, 6)
    assert parse_when("2026-11-06 08:15", now=now) == datetime(2026, 11, 6, 8, 15)
    assert parse_when("today", now=now) == datetime(2026, 11, 7)
    assert parse_when("yesterday", now=now) == datetime(2026, 11, 6)
    assert parse_when("12h", now=now) == datetime(2026, 11, 7, 3, 30)
    assert parse_when("7d", now=now) == datetime(2026, 10, 31, 15, 30)


def test_quality_identity_is_remembered_until_the_weights_change(tmp_path, monkeypatch):
    from core.quality import manager

    weights = tmp_path / "nisqa.tar"
    weights.write_bytes(b"weights")
    monkeypatch.setenv("CALLQA_NISQA_WEIGHTS", str(weights))
    monkeypatch.setenv("CALLQA_DATA", str(tmp_path / "data"))
    loads = []

    class Model:
        name, version = "nisqa", "v2.0"

    def fake_get_quality_model(settings=None, **_kw):
        loads.append(1)
        return Model()

    monkeypatch.setattr(manager, "get_quality_model", fake_get_quality_model)
    settings = Settings()
    assert manager.quality_identity(settings, False) is None
    assert manager.quality_identity(settings, True) == "nisqa-v2.0" and len(loads) == 1
    assert manager.quality_identity(settings, True) == "nisqa-v2.0" and len(loads) == 1  # remembered
    os.utime(weights, (1, 1))  # other weights: load again
    Model.version = "v2.1"
    assert manager.quality_identity(settings, True) == "nisqa-v2.1" and len(loads) == 2


def test_cleanup_removes_old_leftovers_only(tmp_path, env):
    tmp = tmp_path / "tmp"
    live = make_run_dir(tmp)  # this process: alive, kept however old
    dead = tmp / f"{RUN_PREFIX}999999-1-abc"
    dead.mkdir()
    (dead / "x.wav").write_bytes(b"1")
    stray = tmp / "fetch-123.mp3"
    stray.write_bytes(b"2")
    fresh = tmp / "fresh.wav"
    fresh.write_bytes(b"3")
    old = time.time() - 3600
    for p in (live, dead, dead / "x.wav", stray):
        os.utime(p, (old, old))
    assert sorted(cleanup_tmp(tmp, older_than_s=900)) == sorted([dead, stray])
    assert live.exists() and fresh.exists()
    run = callqa("cleanup", "--older-than-min", "0", env=env)
    assert run.returncode == 0 and "leftovers removed" in run.stdout
    assert not fresh.exists()


def fetch_copy(item: WorkItem, tmp_dir: Path, settings: Settings) -> CallFiles:
    """A stand-in for the ViciDial resolver: 'fetch' (copy) the call's files into the run folder."""
    source = Path(item.ref)
    with open(source.parent / "fetches.log", "a") as log:
        log.write(item.call_id + "\n")
    files = {}
    for role in ("in", "out"):
        target = tmp_dir / f"{item.call_id}-{role}.wav"
        shutil.copyfile(source.parent / f"{item.call_id}-{role}.wav", target)
        files[role] = target
    return CallFiles(item.call_id, files)


def test_remote_items_are_fetched_in_workers_and_refetched_after_the_ttl(corpus_dir, call_ids, settings,
                                                                        tmp_path, monkeypatch):
    folder = copy_calls(corpus_dir, tmp_path / "remote", call_ids[:2])
    monkeypatch.setitem(work_module.RESOLVERS, "vicidial", f"{__name__}:fetch_copy")
    items = [WorkItem(cid, "vicidial", str(folder / cid), metadata={"agent": "6001", "lead_id": 7})
             for cid in call_ids[:2]]
    db = str(tmp_path / "store.db")
    fetches = folder / "fetches.log"

    def scan():
        return run_scan(settings, items, store_url=db, quality=False)

    assert scan().analysed == 2 and len(fetches.read_text().split()) == 2
    assert scan().cached == 2 and len(fetches.read_text().split()) == 2  # within the TTL: not fetched again
    monkeypatch.setenv("CALLQA_SCAN_REMOTE_TTL_S", "0.001")
    with open_store(db) as store:
        keys = {cid: store.stored_key(cid) for cid in call_ids[:2]}
    again = scan()  # fetched again, same bytes: nothing to analyse
    assert (again.analysed, again.cached) == (0, 2) and len(fetches.read_text().split()) == 4
    wav = folder / f"{call_ids[1]}-in.wav"
    data = bytearray(wav.read_bytes())
    data[-4000:-3000] = bytes(1000)  # the remote file was rewritten
    wav.write_bytes(bytes(data))
    changed = scan()
    assert (changed.analysed, changed.cached, changed.failed) == (1, 1, ()), changed.failed
    with open_store(db) as store:
        assert store.stored_key(call_ids[0]) == keys[call_ids[0]] != store.stored_key(call_ids[1])
        df = q.list_calls(store, limit=None)
    wav.write_bytes(bytes(data[:-4000]))  # ... and then truncated
    truncated = scan()
    assert [f.call_id for f in truncated.failed] == [call_ids[1]] and "truncated" in truncated.failed[0].reason
    assert set(df["source_kind"]) == {"vicidial"} and set(df["agent"]) == {"6001"}
    assert not list((tmp_path / "tmp").iterdir())  # fetched files went with the run folder


def test_analyze_or_reuse_follows_the_remote_ttl_override(corpus_dir, call_ids, settings, tmp_path, monkeypatch):
    """The dashboard and the API (analyze_or_reuse) honour CALLQA_SCAN_REMOTE_TTL_S as scans do."""
    from core.analysis_service import Models, analyze_or_reuse

    folder = copy_calls(corpus_dir, tmp_path / "remote", call_ids[:1])
    monkeypatch.setitem(work_module.RESOLVERS, "vicidial", f"{__name__}:fetch_copy")
    item = WorkItem(call_ids[0], "vicidial", str(folder / call_ids[0]), metadata={"agent": "6001"})
    with open_store(str(tmp_path / "store.db")) as store:
        outcomes = [analyze_or_reuse(item, store, Models(), settings).outcome]
        outcomes.append(analyze_or_reuse(item, store, Models(), settings).outcome)  # within the TTL: not fetched
        monkeypatch.setenv("CALLQA_SCAN_REMOTE_TTL_S", "0.001")
        again = analyze_or_reuse(item, store, Models(), settings)  # fetched again: same bytes, nothing analysed
        outcomes.append(again.outcome)
        assert store.get_analysis(call_ids[0]) == again.document and again.reused
    assert outcomes == ["stored", "fresh", "unchanged"]
    assert len((folder / "fetches.log").read_text().split()) == 2


def fetch_or_crash(item: WorkItem, tmp_dir: Path, settings: Settings) -> CallFiles:
    """Like :func:`fetch_copy`, but the worker process dies (as on a decoder segfault) for a 'crash' item."""
    if item.metadata.get("crash"):
        os._exit(139)
    return fetch_copy(item, tmp_dir, settings)


@pytest.mark.slow
def test_a_worker_crash_fails_only_its_call(corpus_dir, call_ids, settings, tmp_path, monkeypatch):
    folder = copy_calls(corpus_dir, tmp_path / "remote", call_ids[:4])
    monkeypatch.setitem(work_module.RESOLVERS, "vicidial", f"{__name__}:fetch_or_crash")
    items = [WorkItem(cid, "vicidial", str(folder / cid), metadata={"crash": i == 1})
             for i, cid in enumerate(call_ids[:4])]
    report = run_scan(settings, items, store_url=str(tmp_path / "store.db"), workers=2, quality=False)
    assert report.analysed == 3
    assert [(f.call_id, f.reason) for f in report.failed] == [
        (call_ids[1], "the worker process died while analysing this call")]
    assert_consistent(tmp_path / "store.db", sorted(set(call_ids[:4]) - {call_ids[1]}))


# --- kills and concurrency (subprocesses) -----------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_mid_scan_then_rescan(corpus_dir, call_ids, env, tmp_path):
    db = tmp_path / "store.db"
    proc = start_callqa("--store", str(db), "scan", str(corpus_dir), "--no-quality", env=env, log=tmp_path / "log")
    deadline = time.monotonic() + 120
    while stored_calls(db) < 2:
        assert proc.poll() is None, (tmp_path / "log").read_text()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    workers = children_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    killed_at = stored_calls(db)
    assert 2 <= killed_at < len(call_ids)

    deadline = time.monotonic() + 20  # the workers notice their parent died and exit
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers and not any(alive(pid) for pid in workers)
    leftovers = list((tmp_path / "tmp").glob(f"{RUN_PREFIX}*"))
    assert len(leftovers) == 1  # the killed run could not clean up

    with open_store(str(db)) as store:  # opens cleanly; the dead scanner's claims are dropped by the next scan
        assert store.revision() is not None
    rescan = callqa("--store", str(db), "scan", str(corpus_dir), "--no-quality", env=env)
    assert rescan.returncode == 0, rescan.stdout + rescan.stderr
    assert analysed_count(rescan.stdout) == len(call_ids) - killed_at  # each call analysed once in all
    assert_consistent(db, call_ids)
    cleanup = callqa("cleanup", "--older-than-min", "0", env=env)
    assert cleanup.returncode == 0 and not leftovers[0].exists()


@pytest.mark.slow
def test_sigterm_finishes_calls_in_flight(corpus_dir, call_ids, env, tmp_path):
    db = tmp_path / "store.db"
    proc = start_callqa("--store", str(db), "scan", str(corpus_dir), "--no-quality", env=env, log=tmp_path / "log")
    deadline = time.monotonic() + 120
    while stored_calls(db) < 1:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    log = (tmp_path / "log").read_text()
    assert "SIGTERM: finishing the calls in flight" in log and "interrupted" in log
    done = stored_calls(db)
    assert 1 <= done < len(call_ids)
    assert not list((tmp_path / "tmp").iterdir())  # the run folder was removed
    rescan = callqa("--store", str(db), "scan", str(corpus_dir), "--no-quality", env=env)
    assert rescan.returncode == 0 and analysed_count(rescan.stdout) == len(call_ids) - done
    assert_consistent(db, call_ids)


@pytest.mark.slow
def test_two_concurrent_scans_share_one_store(corpus_dir, call_ids, env, tmp_path):
    db = tmp_path / "store.db"  # fresh: both processes also race to create the schema
    procs = [start_callqa("--store", str(db), "scan", str(corpus_dir), "--no-quality", env=env,
                          log=tmp_path / f"log{i}") for i in range(2)]
    codes = [p.wait(timeout=300) for p in procs]
    logs = [(tmp_path / f"log{i}").read_text() for i in range(2)]
    assert codes == [0, 0], logs
    counts = [analysed_count(log) for log in logs]
    assert sum(counts) == len(call_ids), logs  # no call analysed twice
    assert_consistent(db, call_ids)
