"""The Celery application, built from ``[queue]`` settings (the one place Celery is configured).

Delivery guarantees come from the broker and these settings, not from home-made bookkeeping:

- ``task_acks_late``: a message is acknowledged after its task returns, so a worker killed
  mid-call (even ``kill -9``, even the whole machine) leaves it unacknowledged and the broker
  delivers it again (Redis: after ``visibility_timeout_s``; RabbitMQ: when the connection drops);
- ``task_reject_on_worker_lost``: when a pool process dies (segfault, OOM kill) its message is
  requeued rather than marked failed;
- ``worker_prefetch_multiplier = 1``: a worker process holds one message at a time, so a dead
  worker strands at most ``concurrency`` calls and a slow call does not hold others hostage;
- JSON only (``task_serializer``/``accept_content``): tasks carry a call reference, never audio
  or pickles;
- no result backend: results go to the result store, keyed by the cache key (idempotent), so a
  redelivered call is skipped or overwritten with the same analysis, never stored twice.

On Redis the unacknowledged-message sweep runs every ``visibility_timeout_s / 10`` seconds
(between 1 and 60) instead of kombu's default of about 100 s, so a dead worker's call comes
back about ``visibility_timeout_s`` after it was taken.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.queue.settings import QueueSettings

if TYPE_CHECKING:
    from celery import Celery

ANALYZE_TASK = "callqa.analyze_call"
SUMMARY_TASK = "callqa.summarize_call"


def celery_config(qs: QueueSettings) -> dict:
    """The Celery configuration for ``qs`` (a plain dict, for tests and ``queue-status``)."""
    transport: dict = {"socket_timeout": 30, "socket_connect_timeout": 10}
    if qs.broker_kind == "redis":
        vt = int(qs.visibility_timeout_s)
        transport.update(
            visibility_timeout=vt,
            unacked_restore_interval=max(1, min(60, vt // 10)),
            unacked_restore_throttle=1,
            unacked_mutex_expire=max(5, min(300, vt)),  # a sweeper killed mid-sweep blocks others this long
            health_check_interval=25,
        )
    elif qs.broker_kind == "amqp":
        transport = {"connect_timeout": 10}
    return {
        "broker_url": qs.broker_url,
        "broker_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "result_backend": None,
        "task_ignore_result": True,
        "task_store_errors_even_if_ignored": False,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "event_serializer": "json",
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_default_queue": qs.analysis_queue,
        "task_create_missing_queues": True,
        "task_routes": {ANALYZE_TASK: {"queue": qs.analysis_queue}, SUMMARY_TASK: {"queue": qs.summary_queue}},
        "task_soft_time_limit": qs.task_time_limit_s,
        "task_time_limit": qs.hard_time_limit_s,
        "worker_concurrency": qs.worker_concurrency(),
        "worker_max_tasks_per_child": qs.max_tasks_per_child or None,
        # Celery counts KiB of resident memory
        "worker_max_memory_per_child": qs.max_memory_per_child_mb * 1024 or None,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": True,
        "worker_redirect_stdouts": False,
        "enable_utc": True,
        "timezone": "UTC",
    }


def create_app(qs: QueueSettings) -> Celery:
    """A Celery app for the broker in ``qs``, with callqa's tasks registered.

    Raises
    ------
    ConfigError
        No broker is configured.
    """
    from celery import Celery

    from core.queue import tasks

    qs.require_broker("the task queue")
    app = Celery("callqa", set_as_current=False)
    app.conf.update(celery_config(qs))
    tasks.register(app, qs)
    return app
