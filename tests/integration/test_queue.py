"""The task queue end to end: a real Redis, a real PostgreSQL store, real `callqa worker` processes.

Quality scoring is off (the queue treats the quality model as one more input of the cache key).
Each analysis written to ``calls`` is counted by a PostgreSQL trigger (``analysis_writes``),
committed with the write itself, so "analysed exactly once" is checked in the store, not in logs.
Each test uses its own queue names and store schema.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import psycopg
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.cli import main as cli_main
from core.config import load_settings
from core.privacy.mask import mask_call_id
from core.queue.app import ANALYZE_TASK, create_app
from core.queue.enqueue import enqueue_items
from core.queue.metrics import QueueCollector
from core.queue.settings import QueueSettings
from core.queue.tasks import item_to_payload
from core.queue.watch import WATERMARK, newest_recording_id
from core.store import open_store
from core.work import folder_items
from tests.support.http_server import RecordingServer, recording_server
from tests.support.redis_server import free_port
from tests.support.shared import PROJECT_ROOT, in_ci
from tests.support.vicidial_fixture import (
    CORPUS_CONFERENCE,
    ViciDialFixture,
    config_sections,
    vicidial_database,
)

VISIBILITY_S = 10  # a killed worker's call comes back after this long
OUTCOME = re.compile(r"INFO/ForkPoolWorker-\d+\] (stored|cached|busy|failed|dead letter|retry) (\S+?):? .*"
                     r"\[task ([\w-]+), ")
RECEIVED = re.compile(r"Task callqa\.analyze_call\[([\w-]+)\] received")


# --- helpers -------------------------------------------------------------------------------------------
def schema_of(url: str) -> str:
    return unquote(url).split("search_path=", 1)[1]


def install_write_counter(url: str) -> None:
    """A trigger recording every analysis written to ``calls`` (insert, or a new analysed_at)."""
    schema = schema_of(url)
    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{schema}".analysis_writes (call_id text NOT NULL, at timestamptz DEFAULT now())')
        conn.execute(f'''CREATE FUNCTION "{schema}".count_write() RETURNS trigger LANGUAGE plpgsql AS $$
                         BEGIN INSERT INTO "{schema}".analysis_writes (call_id) VALUES (NEW.call_id); RETURN NEW; END $$''')
        conn.execute(f'''CREATE TRIGGER count_write AFTER INSERT OR UPDATE OF analyzed_at ON "{schema}".calls
                         FOR EACH ROW EXECUTE FUNCTION "{schema}".count_write()''')


def sql(url: str, query: str) -> list[tuple]:
    schema = schema_of(url)
    with psycopg.connect(url.split("?", 1)[0], autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return conn.execute(query).fetchall()


def writes(url: str) -> Counter:
    return Counter(dict(sql(url, "SELECT call_id, count(*) FROM analysis_writes GROUP BY call_id")))


def wait_for(predicate: Callable[[], bool], *, timeout_s: float, what: str, logs: list[Path] = ()) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    tails = "\n".join(f"--- {p.name}\n" + "\n".join(p.read_text().splitlines()[-25:]) for p in logs if p.exists())
    pytest.fail(f"timed out after {timeout_s} s waiting for {what}\n{tails}")


def outcomes(log: Path) -> list[tuple[str, str, str]]:
    """(outcome, call_id, task_id) of every task a worker finished, from its log; the log masks the
    number in a call id ([privacy] mask_logs), so compare with :func:`mask_call_id`."""
    return [m.groups() for m in OUTCOME.finditer(log.read_text())] if log.exists() else []


class Workers:
    """`callqa worker` subprocesses (each in its own process group) and their logs."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *extra: str) -> Path:
        log = self.folder / f"{name}.log"
        handle = open(log, "w")  # a file, not a pipe: a full pipe would block the worker
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "worker", "--concurrency", "1", "--no-quality", "-n", f"{name}@%h",
             *extra], cwd=PROJECT_ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        return log

    def log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    def wait_ready(self, *names: str, timeout_s: float = 60) -> None:
        for name in names:
            wait_for(lambda n=name: " ready." in self.log(n).read_text(), timeout_s=timeout_s,
                     what=f"worker {name} to start", logs=[self.log(n) for n in names])

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def write_config(path: Path, broker: str, *, extra: str = "") -> Path:
    tag = uuid.uuid4().hex[:8]
    path.write_text(f"""
[queue]
broker_url = "{broker}"
analysis_queue = "t{tag}-analysis"
summary_queue = "t{tag}-summaries"
visibility_timeout_s = {VISIBILITY_S}
task_time_limit_s = 8
retry_max = 2
retry_backoff_s = 0.2
retry_backoff_max_s = 1
quality = false
max_memory_per_child_mb = 0
{extra}
""")
    return path


def hermetic_env(tmp_path: Path, config: Path, store_url: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLQA_") or k == "CALLQA_SHARED"}
    env.update(CALLQA_CONFIG=str(config), CALLQA_STORE=store_url, CALLQA_DATA=str(tmp_path / "data"),
               CALLQA_TMP=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1", **more)
    return env


def broker_idle(qs: QueueSettings) -> bool:
    """No message of the analysis queue waiting, none taken and unacknowledged (kombu's ``unacked`` hash
    holds ``[message, exchange, routing_key]`` of every queue)."""
    import redis

    client = redis.Redis.from_url(qs.broker_url)
    try:
        taken = [json.loads(v)[2] for v in client.hvals("unacked")]
        return client.llen(qs.analysis_queue) == 0 and qs.analysis_queue not in taken
    finally:
        client.close()


@pytest.fixture(scope="module")
def call_ids(labels) -> list[str]:
    return sorted(c["call_id"] for c in labels["calls"])


@pytest.fixture
def use_env(monkeypatch):
    """Apply an environment to this process too (in-process enqueues and CLI calls)."""

    def apply(env: dict[str, str]) -> None:
        for key in [k for k in os.environ if k.startswith("CALLQA_") and k != "CALLQA_SHARED"]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("CALLQA_"):
                monkeypatch.setenv(key, value)

    return apply


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[[dict[str, str]], Workers]]:
    made: list[Workers] = []

    def make(env: dict[str, str]) -> Workers:
        made.append(Workers(env, tmp_path))
        return made[-1]

    yield make
    for w in made:
        w.stop()


@pytest.fixture
def corpus_setup(tmp_path, pg_url, redis_url, corpus_dir, use_env):  # noqa: F811
    """Config, environment, store with the write counter, and the corpus work items."""
    config = write_config(tmp_path / "callqa.toml", redis_url)
    env = hermetic_env(tmp_path, config, pg_url)
    use_env(env)
    open_store(pg_url).close()  # migrated
    install_write_counter(pg_url)
    settings = load_settings(config)
    return settings, env, folder_items(corpus_dir)


# --- tests ---------------------------------------------------------------------------------------------
def test_corpus_enqueued_twice_is_analysed_once_by_two_workers(corpus_setup, workers, pg_url, call_ids,  # noqa: F811
                                                                corpus_dir, capsys):
    settings, env, items = corpus_setup
    qs = QueueSettings.from_settings(settings)
    assert len(items) == 12
    assert enqueue_items(settings, items, store_url=pg_url, quality=False) == 12
    assert cli_main(["scan", str(corpus_dir), "--queue", "--no-quality"]) == 0  # the same calls again
    assert (f"12 calls: 0 enqueued on {qs.analysis_queue}, 0 already analysed, 12 already queued or in progress"
            in capsys.readouterr().out)
    # duplicates that bypass the enqueue checks (as a broker redelivery would): the workers skip them
    app = create_app(qs)
    for item in items:
        app.send_task(ANALYZE_TASK, kwargs={"item": item_to_payload(item), "quality": False},
                      queue=qs.analysis_queue)
    assert sql(pg_url, "SELECT count(*) FROM claims")[0][0] == 12  # every call marked as queued

    pool = workers(env)
    logs = [pool.start("w1"), pool.start("w2")]
    wait_for(lambda: sum(writes(pg_url).values()) >= 12 and broker_idle(qs)
             and len(outcomes(logs[0]) + outcomes(logs[1])) >= 24, timeout_s=90,
             what="the 24 messages to be processed (and their log lines written)", logs=logs)
    time.sleep(0.5)  # let a late duplicate write show up, if there were one

    assert writes(pg_url) == Counter(dict.fromkeys(call_ids, 1))  # each call written exactly once
    assert sql(pg_url, "SELECT count(*) FROM calls")[0][0] == 12
    done = outcomes(logs[0]) + outcomes(logs[1])
    assert sorted(c for o, c, _ in done if o == "stored") == sorted(mask_call_id(c) for c in call_ids)
    assert sum(1 for o, _, _ in done if o in ("cached", "busy")) == 12  # every duplicate skipped
    assert len(done) == 24
    assert all(outcomes(log) for log in logs), "both workers took calls"
    assert sql(pg_url, "SELECT count(*) FROM claims")[0][0] == 0
    assert sql(pg_url, "SELECT count(*) FROM dead_letters")[0][0] == 0
    assert enqueue_items(settings, items, store_url=pg_url, quality=False) == 0  # now: already analysed

    # /metrics: queue depth from Redis, throughput and dead letters from the store
    registry = CollectorRegistry()
    collector = QueueCollector(qs, pg_url)
    registry.register(collector)
    text = generate_latest(registry).decode()
    collector.close()
    assert f'callqa_queue_depth{{queue="{qs.analysis_queue}"}} 0.0' in text
    assert "callqa_queue_broker_up 1.0" in text and "callqa_queue_dead_letters 0.0" in text
    rate = float(re.search(r"^callqa_queue_analyses_per_minute (\S+)$", text, re.M).group(1))
    assert rate == pytest.approx(12 / 5)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(corpus_setup, workers, pg_url, call_ids):  # noqa: F811
    settings, env, items = corpus_setup
    qs = QueueSettings.from_settings(settings)
    pool = workers(env)
    logs = [pool.start("victim"), pool.start("survivor")]
    pool.wait_ready("victim", "survivor")
    assert enqueue_items(settings, items, store_url=pg_url, quality=False) == 12

    def victim_mid_call() -> bool:
        text = logs[0].read_text()
        received = RECEIVED.findall(text)
        finished = {t for _, _, t in outcomes(logs[0])}
        return len(finished) >= 1 and bool(received) and received[-1] not in finished

    wait_for(victim_mid_call, timeout_s=60, what="the victim to be analysing its second call", logs=logs)
    pool.kill("victim")
    received = RECEIVED.findall(logs[0].read_text())
    in_flight = [t for t in received if t not in {t for _, _, t in outcomes(logs[0])}]
    assert in_flight, "the victim was killed while holding a call"

    wait_for(lambda: len(writes(pg_url)) == 12 and broker_idle(qs), timeout_s=VISIBILITY_S + 60,
             what="every call to be analysed after the kill", logs=logs)
    time.sleep(0.5)
    assert writes(pg_url) == Counter(dict.fromkeys(call_ids, 1))  # each call written exactly once
    assert sql(pg_url, "SELECT count(*) FROM calls")[0][0] == 12
    survivor = {t: o for o, _, t in outcomes(logs[1])}
    assert all(survivor.get(t) in ("stored", "cached") for t in in_flight), "the survivor finished the lost call"
    assert sql(pg_url, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_scan_queue_without_a_broker_is_a_clear_error(tmp_path, corpus_dir, capsys, use_env):
    config = tmp_path / "callqa.toml"
    config.write_text("")
    use_env({"CALLQA_CONFIG": str(config), "CALLQA_DATA": str(tmp_path / "data"), "CALLQA_TMP": str(tmp_path)})
    for args in (["scan", str(corpus_dir), "--queue", "--no-quality"], ["worker"], ["requeue-dead", "--all"]):
        assert cli_main(["--store", str(tmp_path / "s.db"), *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "broker_url" in err and "CALLQA_BROKER_URL" in err, err
    assert not (tmp_path / "s.db").exists() or sql_lite_calls(tmp_path / "s.db") == 0


def sql_lite_calls(path: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


# --- ViciDial: the watcher, fetch retries and dead letters ----------------------------------------------
@pytest.fixture(scope="module")
def vicidial() -> Iterator[ViciDialFixture]:
    with vicidial_database() as fixture:
        yield fixture


@pytest.fixture(scope="module")
def http(corpus_dir: Path) -> Iterator[RecordingServer]:
    with recording_server(corpus_dir, flatten=True) as server:
        yield server


NEW_RECORDING = 9200004
NEW_CALL = "20261107-083314_2985954634"
UNREACHABLE_CALL = "20261107-104610_8228237954"  # CORPUS_CONFERENCE, on dialer 10.10.10.12


def add_recording(vicidial: ViciDialFixture) -> None:
    conn = vicidial.admin()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO recording_log (recording_id, channel, server_ip, extension, start_time, start_epoch, "
                "end_time, end_epoch, length_in_sec, length_in_min, filename, location, lead_id, user, vicidial_id) "
                "VALUES (%s, 'SIP/carrierA-0000b009', '10.10.10.11', '9828963561', '2026-11-07 08:33:14', "
                "1794040394, '2026-11-07 08:34:27', 1794040467, 73, 1.21, %s, %s, 3000001, '6001', "
                "'1794040390.70999')",
                (NEW_RECORDING, NEW_CALL, f"http://10.10.10.11/RECORDINGS/{NEW_CALL}-all.wav"))
    finally:
        conn.close()


def test_watcher_enqueues_new_recordings_and_dead_letters_unfetchable_ones(
        tmp_path, pg_url, redis_url, vicidial, http, workers, use_env, capsys):  # noqa: F811
    s = vicidial.settings
    config = write_config(tmp_path / "callqa.toml", redis_url, extra=config_sections(
        vicidial, tmp_path / "cache", dialer_11=http.netloc, dialer_12=f"127.0.0.1:{free_port()}",
        extra_recordings="connect_timeout_s = 1\n"))
    env = hermetic_env(tmp_path, config, pg_url, CALLQA_VICIDIAL_PASSWORD=s.password)
    use_env(env)
    open_store(pg_url).close()
    install_write_counter(pg_url)
    qs = QueueSettings.from_settings(load_settings(config))
    pool = workers(env)
    log = pool.start("w1")

    def status() -> dict:
        assert cli_main(["queue-status", "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    # first poll: the three corpus recordings after 9200000 (9200003's dialer cannot be reached)
    assert cli_main(["watch", "--once", "--from-id", "9200000"]) == 0
    out = capsys.readouterr().out
    assert "3 found, 3 queued" in out and "watermark: recording_id 9200003" in out
    wait_for(lambda: len(writes(pg_url)) == 2 and status()["dead_letters"] == 1 and broker_idle(qs),
             timeout_s=60, what="two calls stored and one dead letter", logs=[log])
    letter = status()["newest_dead_letters"][0]
    assert letter["call_id"] == UNREACHABLE_CALL and letter["attempts"] == qs.retry_max + 1
    assert letter["source_ref"] == str(CORPUS_CONFERENCE) and "gave up after 3 attempts" in letter["reason"]
    assert [o for o, c, _ in outcomes(log) if c == mask_call_id(UNREACHABLE_CALL)] == ["retry", "retry",
                                                                                     "dead letter"]

    # a new recording appears: the next poll enqueues only it and advances the watermark
    add_recording(vicidial)
    assert cli_main(["watch", "--once"]) == 0
    out = capsys.readouterr().out
    assert f"recordings {NEW_RECORDING}..{NEW_RECORDING}: 1 found, 1 queued" in out
    wait_for(lambda: NEW_CALL in writes(pg_url), timeout_s=30, what="the new recording to be analysed", logs=[log])
    assert cli_main(["watch", "--once"]) == 0
    assert "watermark: recording_id 9200004" in capsys.readouterr().out
    doc = status()
    assert doc["watch_watermark"] == NEW_RECORDING and doc["broker_up"] is True
    assert writes(pg_url) == Counter({"20261107-080000_9828963560": 1, "20261107-081637_2496561430": 1,
                                      NEW_CALL: 1})
    with open_store(pg_url) as store:
        assert store.get_watermark(WATERMARK) == str(NEW_RECORDING)
        meta = sql(pg_url, f"SELECT agent, server_ip FROM calls WHERE call_id = '{NEW_CALL}'")
        assert meta == [("6001", "10.10.10.11")]

    # requeue the dead letter: it is sent again (and fails again, the dialer is still unreachable)
    assert cli_main(["requeue-dead", "--all"]) == 0
    assert f"{UNREACHABLE_CALL}: queued" in capsys.readouterr().out
    wait_for(lambda: [o for o, c, _ in outcomes(log) if c == mask_call_id(UNREACHABLE_CALL)].count("dead letter") == 2,
             timeout_s=30, what="the requeued call to fail again", logs=[log])
    assert status()["dead_letters"] == 1


def test_watch_without_a_broker_analyses_in_process(tmp_path, vicidial, http, use_env, capsys):
    s = vicidial.settings
    config = tmp_path / "callqa.toml"
    config.write_text(config_sections(vicidial, tmp_path / "cache", dialer_11=http.netloc))
    store = tmp_path / "local.db"
    use_env(hermetic_env(tmp_path, config, str(store), CALLQA_VICIDIAL_PASSWORD=s.password))
    assert cli_main(["watch", "--once", "--no-quality", "--from-id", "9200002"]) == 0
    captured = capsys.readouterr()
    assert "analysed in this process" in captured.err
    found = re.search(r"recordings 9200003\.\.(\d+): (\d+) found, (\d+) analysed, 0 cached, 0 failed", captured.out)
    assert found and found.group(2) == found.group(3), captured.out  # 9200004 too when the test above added it
    with open_store(str(store)) as st:
        assert st.get_watermark(WATERMARK) == found.group(1) and st.has_call(UNREACHABLE_CALL)
    assert newest_recording_id(s) == int(found.group(1))  # where a watcher without --from-id starts


# --- Claude summaries: a second, rate-limited queue --------------------------------------------------------
def test_a_stored_analysis_is_summarised_through_the_summary_queue(
        tmp_path, pg_url, redis_url, corpus_dir, workers, use_env):  # noqa: F811
    from tests.support.anthropic_stub import AnthropicStub, ErrorReply, json_reply, valid_summary

    call = "20261107-080000_9828963560"
    with AnthropicStub() as stub:
        stub.script(ErrorReply(429, "rate_limit_error", "slow down", {"retry-after": "0.1"}),
                    # a verdict under 50 characters: ai_summaries.verdict is VARCHAR(50) in migration 0001
                    json_reply(valid_summary(verdict="Packet loss on the caller leg."), input_tokens=900,
                               output_tokens=120))
        config = write_config(tmp_path / "callqa.toml", redis_url, extra=f"""
summarize = true
summary_rate_limit = "10/s"

[claude]
base_url = "{stub.base_url}"
max_retries = 0
timeout_s = 5
""")
        env = hermetic_env(tmp_path, config, pg_url, ANTHROPIC_API_KEY=stub.api_key)
        use_env(env)
        open_store(pg_url).close()
        settings = load_settings(config)
        items = [i for i in folder_items(corpus_dir) if i.call_id == call]
        assert enqueue_items(settings, items, store_url=pg_url, quality=False) == 1
        pool = workers(env)
        log = pool.start("w1")  # consumes both queues
        wait_for(lambda: sql(pg_url, "SELECT count(*) FROM ai_summaries")[0][0] == 1, timeout_s=60,
                 what="the summary to be stored", logs=[log])
        assert len(stub.message_requests()) == 2  # the 429, then the answer
    (row,) = sql(pg_url, "SELECT call_id, severity, input_tokens FROM ai_summaries")
    assert row == (call, "critical", 900)
    text = log.read_text()
    shown = mask_call_id(call)  # the worker's log masks the customer's number ([privacy] mask_logs)
    assert f"retry summary of {shown}" in text and f"summarised {shown} ($" in text and call not in text


# --- RabbitMQ, when one runs: publishing and queue depth through AMQP ----------------------------------------
def test_rabbitmq_broker_publishes_and_reports_depth():
    from kombu import Connection

    url = os.environ.get("CALLQA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

    def reachable() -> Exception | None:
        try:
            with Connection(url, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
            return None
        except Exception as exc:  # noqa: BLE001 - any connection failure means: no RabbitMQ here
            return exc

    problem = reachable()
    server = shutil.which("rabbitmq-server") or ("/usr/sbin/rabbitmq-server" if os.path.exists(
        "/usr/sbin/rabbitmq-server") else None)
    if problem is not None and server and "CALLQA_TEST_AMQP_URL" not in os.environ:
        subprocess.run([server, "-detached"], capture_output=True, timeout=60)  # none answers: start one
        deadline = time.monotonic() + 60
        while (problem := reachable()) is not None and time.monotonic() < deadline:
            time.sleep(1)
    if problem is not None:
        message = f"no RabbitMQ at {url.rsplit('@', 1)[-1]} (start it with `rabbitmq-server -detached`): {problem}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    from core.queue.metrics import broker_stats

    tag = uuid.uuid4().hex[:8]
    qs = QueueSettings.from_mapping({"broker_url": url, "analysis_queue": f"t{tag}-analysis",
                                     "summary_queue": f"t{tag}-summaries"})
    try:
        assert broker_stats(qs).depths == {qs.analysis_queue: 0, qs.summary_queue: 0}  # not declared yet
        app = create_app(qs)
        for n in range(3):
            app.send_task(ANALYZE_TASK, kwargs={"item": {"call_id": f"c{n}"}}, queue=qs.analysis_queue)
        deadline = time.monotonic() + 5  # the broker counts published messages asynchronously
        stats = broker_stats(qs)
        while stats.depths.get(qs.analysis_queue) != 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            stats = broker_stats(qs)
        assert stats.up and stats.depths[qs.analysis_queue] == 3 and stats.unacked is None
    finally:
        with Connection(url) as conn:
            for name in (qs.analysis_queue, qs.summary_queue):
                channel = conn.channel()
                try:
                    channel.queue_delete(name)
                except conn.channel_errors:
                    pass
