"""``[queue]`` settings, the Celery configuration they produce, task payloads and the metrics collector."""

from __future__ import annotations

from datetime import datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from core.config import Settings
from core.errors import ConfigError, ParameterError
from core.queue.settings import QueueSettings, redact_url

REDIS = "redis://:s3cret@10.0.0.9:6379/0"


def settings(**queue) -> Settings:
    return Settings(raw={"queue": queue})


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for key in ("CALLQA_BROKER_URL", "CALLQA_QUEUE_CONCURRENCY", "CALLQA_QUEUE_SUMMARIZE", "CALLQA_QUEUE_BROKER_URL"):
        monkeypatch.delenv(key, raising=False)


# --- settings ------------------------------------------------------------------------------------------
def test_defaults_mean_no_queue():
    qs = QueueSettings.from_settings(Settings())
    assert not qs.enabled and qs.broker_kind == "" and qs.display_broker == "none"
    assert (qs.analysis_queue, qs.summary_queue, qs.summary_rate_limit) == ("callqa-analysis", "callqa-summaries",
                                                                             "30/m")
    assert qs.hard_time_limit_s < qs.visibility_timeout_s
    with pytest.raises(ConfigError, match=r"scan --queue needs a task broker.*broker_url.*CALLQA_BROKER_URL"):
        qs.require_broker("scan --queue")


def test_values_from_the_file_and_the_environment(monkeypatch):
    qs = QueueSettings.from_settings(settings(broker_url=REDIS, concurrency=2, retry_backoff_s=1, watch_batch=100))
    assert qs.enabled and qs.broker_kind == "redis" and qs.concurrency == 2 and qs.retry_backoff_s == 1.0
    monkeypatch.setenv("CALLQA_BROKER_URL", "amqp://callqa:pw@rabbit:5672//")
    monkeypatch.setenv("CALLQA_QUEUE_CONCURRENCY", "3")
    monkeypatch.setenv("CALLQA_QUEUE_SUMMARIZE", "yes")
    qs = QueueSettings.from_settings(settings(broker_url=REDIS, concurrency=2))
    assert qs.broker_kind == "amqp" and qs.concurrency == 3 and qs.summarize is True
    assert qs.display_broker == "amqp://callqa:***@rabbit:5672//"
    assert "pw" not in repr(qs) and "s3cret" not in repr(QueueSettings.from_mapping({"broker_url": REDIS}))


@pytest.mark.parametrize(("values", "message"), [
    ({"brokerurl": REDIS}, "unknown \\[queue\\] setting"),
    ({"broker_url": "mysql://u:s3cret@db/x"}, "use redis://"),
    ({"concurrency": "two"}, "concurrency='two' must be a int"),
    ({"concurrency": -1}, "must not be negative"),
    ({"summarize": "maybe"}, "summarize='maybe' must be a bool"),
    ({"retry_backoff_s": 0}, "must be positive"),
    ({"summary_rate_limit": "fast"}, "like 30/m"),
    ({"analysis_queue": "a b"}, "letters, digits"),
    ({"analysis_queue": "same", "summary_queue": "same"}, "must differ"),
    ({"watch_batch": 6000}, "between 1 and 5000"),
    ({"task_time_limit_s": 3590}, "must stay below visibility_timeout_s"),
    ({"retry_backoff_max_s": 4000}, "retry_backoff_max_s=4000 must stay below"),
], ids=["unknown", "scheme", "int", "negative", "bool", "zero", "rate", "name", "same-queues", "batch",
        "time-limit", "backoff"])
def test_bad_values_are_one_line_errors_without_secrets(values, message):
    with pytest.raises(ConfigError, match=message) as err:
        QueueSettings.from_mapping(values)
    assert "\n" not in str(err.value) and "s3cret" not in str(err.value)


@pytest.mark.parametrize(("url", "shown"), [
    (REDIS, "redis://:***@10.0.0.9:6379/0"),
    ("amqp://guest:guest@127.0.0.1:5672//", "amqp://guest:***@127.0.0.1:5672//"),
    ("redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/1"),
    ("rediss://u:p%40ss@[::1]:6380/0", "rediss://u:***@[::1]:6380/0"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_backoff_doubles_and_is_capped():
    qs = QueueSettings.from_mapping({"retry_backoff_s": 10, "retry_backoff_max_s": 60})
    assert [qs.backoff_s(n) for n in range(5)] == [10, 20, 40, 60, 60]
    assert qs.worker_concurrency(cpus=8) == 8 and QueueSettings(concurrency=3).worker_concurrency(cpus=8) == 3


# --- the Celery app --------------------------------------------------------------------------------------
def test_celery_config_delivers_at_least_once_and_json_only():
    from core.queue.app import celery_config

    qs = QueueSettings.from_mapping({"broker_url": REDIS, "visibility_timeout_s": 600, "task_time_limit_s": 300,
                                     "retry_backoff_max_s": 120,
                                     "max_memory_per_child_mb": 1024, "max_tasks_per_child": 0, "concurrency": 2})
    conf = celery_config(qs)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"] and conf["worker_prefetch_multiplier"] == 1
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"] and conf["result_backend"] is None
    assert conf["broker_transport_options"]["visibility_timeout"] == 600
    assert conf["broker_transport_options"]["unacked_restore_interval"] == 60
    assert (conf["task_soft_time_limit"], conf["task_time_limit"]) == (300, 330)
    assert conf["worker_max_memory_per_child"] == 1024 * 1024 and conf["worker_max_tasks_per_child"] is None
    assert conf["worker_concurrency"] == 2
    amqp = celery_config(QueueSettings.from_mapping({"broker_url": "amqp://guest:guest@127.0.0.1//"}))
    assert "visibility_timeout" not in amqp["broker_transport_options"]


def test_app_registers_the_tasks_on_their_queues_with_the_rate_limit():
    from core.queue.app import ANALYZE_TASK, SUMMARY_TASK, create_app

    qs = QueueSettings.from_mapping({"broker_url": REDIS, "summary_rate_limit": "12/m"})
    app = create_app(qs)
    analyze, summary = app.tasks[ANALYZE_TASK], app.tasks[SUMMARY_TASK]
    assert analyze.acks_late and analyze.reject_on_worker_lost and summary.rate_limit == "12/m"
    assert app.conf.task_routes == {ANALYZE_TASK: {"queue": "callqa-analysis"},
                                    SUMMARY_TASK: {"queue": "callqa-summaries"}}
    with pytest.raises(ConfigError, match="needs a task broker"):
        create_app(QueueSettings())


# --- payloads --------------------------------------------------------------------------------------------
def test_work_items_travel_as_plain_json():
    import json

    from core.queue.tasks import item_from_payload, item_to_payload
    from core.work import WorkItem

    item = WorkItem(call_id="c1", kind="folder", ref="/rec/c1", metadata={"call_time": datetime(2026, 11, 7, 8, 0)},
                    files=(("in", "/rec/c1-in.wav"), ("out", "/rec/c1-out.wav")))
    payload = json.loads(json.dumps(item_to_payload(item)))
    back = item_from_payload(payload)
    assert back.files == item.files and back.metadata == {"call_time": "2026-11-07T08:00:00"}
    assert (back.call_id, back.kind, back.ref) == ("c1", "folder", "/rec/c1")
    for bad in (None, {"call_id": "x"}, {"call_id": "x", "kind": "ftp", "ref": "r"},
                {"call_id": "x", "kind": "folder", "ref": "r", "metadata": "x"}):
        with pytest.raises(ParameterError):
            item_from_payload(bad)


# --- metrics ---------------------------------------------------------------------------------------------
def test_collector_reports_a_down_broker_and_store_figures(tmp_path):
    import socket

    from core.api.metrics import ApiMetrics
    from core.queue.metrics import QueueCollector
    from core.store import open_store

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store_url = str(tmp_path / "s.db")
    with open_store(store_url) as store:
        store.save_dead_letter(task_id="t1", task="analyze_call", queue="callqa-analysis", call_id="c1",
                               reason="unreachable", attempts=6, payload={"item": {"call_id": "c1"}})
    qs = QueueSettings.from_mapping({"broker_url": f"redis://127.0.0.1:{port}/0"})
    collector = QueueCollector(qs, store_url, timeout_s=0.5)
    metrics = ApiMetrics()  # the API's registry: names must not clash
    metrics.registry.register(collector)
    text = generate_latest(metrics.registry).decode()
    collector.close()
    assert "callqa_queue_broker_up 0.0" in text and "callqa_queue_store_up 1.0" in text
    assert "callqa_queue_dead_letters 1.0" in text and "callqa_queue_analyses_per_minute 0.0" in text
    names = {m.name for m in collector.describe()}
    assert all(n.startswith("callqa_queue_") for n in names) and len(names) == 8
    registry = CollectorRegistry()  # registering only describes: no broker (10.0.0.9) or store is contacted
    registry.register(QueueCollector(QueueSettings.from_mapping({"broker_url": REDIS}), str(tmp_path / "x.db")))
    assert not (tmp_path / "x.db").exists()


def test_collector_without_a_broker_reports_only_the_store(tmp_path):
    from core.queue.metrics import QueueCollector
    from core.store import open_store

    open_store(str(tmp_path / "s.db")).close()
    registry = CollectorRegistry()
    collector = QueueCollector(QueueSettings(), str(tmp_path / "s.db"))
    registry.register(collector)
    text = generate_latest(registry).decode()
    collector.close()
    assert "\ncallqa_queue_broker_up " not in text and "callqa_queue_depth{" not in text
    assert "callqa_queue_store_up 1.0" in text and "callqa_queue_dead_letters 0.0" in text
