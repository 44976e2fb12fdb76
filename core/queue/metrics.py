"""Queue metrics for Prometheus: broker queue depth, dead letters and worker throughput.

Worker processes cannot share in-memory counters with the API process that serves
``/metrics``, so throughput is read from where the workers write: the result store
(``calls.analyzed_at``, ``analysis_errors.created_at``, ``dead_letters``); queue depth is read
from the broker (Redis ``LLEN``, RabbitMQ passive ``queue.declare``). Register a
:class:`QueueCollector` on the API's registry; every scrape queries both, with short timeouts.
Without a broker configured the broker gauges are absent and the store figures still report
what in-process scans analyse.

Gauges (all prefixed ``callqa_queue_``):

- ``callqa_queue_broker_up``: 1 when the broker answered this scrape;
- ``callqa_queue_depth{queue}``: messages waiting in each queue (analysis, summaries);
- ``callqa_queue_unacked``: Redis only: messages taken by workers and not yet acknowledged
  (calls in flight, plus those a dead worker left for redelivery);
- ``callqa_queue_store_up``: 1 when the store answered this scrape;
- ``callqa_queue_dead_letters``: dead letters recorded (calls that failed every retry);
- ``callqa_queue_analyses_per_minute``, ``callqa_queue_audio_minutes_per_minute``,
  ``callqa_queue_failures_per_minute``: calls analysed, call-minutes analysed and calls failed
  per minute over the last ``window_s`` (5 minutes), by every worker and scanner together.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.errors import CallQAError, QueueError
from core.queue.settings import QueueSettings, redact_url

if TYPE_CHECKING:
    from core.store.store import ResultStore

PREFIX = "callqa_queue_"
#: kombu's Redis transport keeps messages of priority N > 0 in ``<queue>\x06\x16<N>``.
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
REDIS_UNACKED_KEY = "unacked"

_HELP = {
    "broker_up": "1 when the task broker answered this scrape.",
    "depth": "Messages waiting in each queue.",
    "unacked": "Redis: messages taken by workers and not yet acknowledged (in flight or awaiting redelivery).",
    "store_up": "1 when the result store answered this scrape.",
    "dead_letters": "Dead letters recorded (calls that failed every retry).",
    "analyses_per_minute": "Calls analysed per minute over the last window, all workers together.",
    "audio_minutes_per_minute": "Call-minutes analysed per minute over the last window, all workers together.",
    "failures_per_minute": "Calls whose analysis failed, per minute over the last window.",
}


@dataclass(frozen=True)
class BrokerStats:
    """What the broker said: ``up``, messages waiting per queue, unacknowledged (Redis), ``error``."""

    up: bool
    depths: dict[str, int] = field(default_factory=dict)
    unacked: int | None = None
    error: str = ""


def broker_stats(qs: QueueSettings, *, timeout_s: float = 2.0) -> BrokerStats:
    """Queue depths of ``qs``'s analysis and summary queues (never raises: ``up`` False with ``error``)."""
    queues = (qs.analysis_queue, qs.summary_queue)
    try:
        if qs.broker_kind == "redis":
            return _redis_stats(qs.broker_url, queues, timeout_s)
        if qs.broker_kind == "amqp":
            return _amqp_stats(qs.broker_url, queues, timeout_s)
        return BrokerStats(up=False, error="no broker configured")
    except QueueError as exc:
        return BrokerStats(up=False, error=str(exc))


def _redis_stats(url: str, queues: Iterable[str], timeout_s: float) -> BrokerStats:
    import redis

    client = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
    try:
        names = list(queues)
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
            for step in REDIS_PRIORITY_STEPS:
                pipe.llen(f"{name}{REDIS_PRIORITY_SEP}{step}")
        pipe.hlen(REDIS_UNACKED_KEY)
        values = pipe.execute()
    except redis.RedisError as exc:
        raise QueueError(f"broker {redact_url(url)}: {_first_line(exc)}") from None
    finally:
        client.close()
    per = 1 + len(REDIS_PRIORITY_STEPS)
    depths = {name: int(sum(values[i * per:(i + 1) * per])) for i, name in enumerate(names)}
    return BrokerStats(up=True, depths=depths, unacked=int(values[-1]))


def _amqp_stats(url: str, queues: Iterable[str], timeout_s: float) -> BrokerStats:
    from kombu import Connection

    depths: dict[str, int] = {}
    try:
        with Connection(url, connect_timeout=timeout_s) as conn:
            conn.ensure_connection(max_retries=1)
            for name in queues:
                channel = conn.channel()
                try:
                    depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except conn.channel_errors:  # NOT_FOUND: no worker declared it yet, nothing waits
                    depths[name] = 0
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
    except Exception as exc:  # amqp/socket errors of any kind: the broker is not usable
        if isinstance(exc, CallQAError):
            raise
        raise QueueError(f"broker {redact_url(url)}: {_first_line(exc)}") from None
    return BrokerStats(up=True, depths=depths)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def store_stats(store: ResultStore, *, window_s: float, now: datetime | None = None) -> dict[str, float]:
    """Per-minute throughput over the last ``window_s`` and the dead-letter count, from the store."""
    now = now or datetime.now(UTC)
    activity = store.activity_since(now - timedelta(seconds=window_s))
    minutes = window_s / 60.0
    return {
        "analyses_per_minute": activity["analysed"] / minutes,
        "audio_minutes_per_minute": activity["audio_s"] / 60.0 / minutes,
        "failures_per_minute": activity["failed"] / minutes,
        "dead_letters": float(store.count_dead_letters()),
    }


class QueueCollector(Collector):
    """A prometheus-client collector of queue depth and worker throughput.

    Parameters
    ----------
    qs : QueueSettings
        The broker and queue names.
    store_url : str
        The result store the workers write to (opened read-only on the first scrape).
    window_s : float
        Throughput window.
    timeout_s : float
        Broker timeout per scrape.

    Examples
    --------
    >>> registry.register(QueueCollector(QueueSettings.from_settings(settings), settings.store_url()))  # doctest: +SKIP
    """

    def __init__(self, qs: QueueSettings, store_url: str, *, window_s: float = 300.0, timeout_s: float = 2.0,
                 store: ResultStore | None = None) -> None:
        self.qs = qs
        self.store_url = store_url
        self.window_s = window_s
        self.timeout_s = timeout_s
        self._store = store
        self._own_store = store is None

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {name: GaugeMetricFamily(PREFIX + name, doc, labels=["queue"] if name == "depth" else None)
                for name, doc in _HELP.items()}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The metric names without values (so registering does not query anything)."""
        yield from self._families().values()

    def _open_store(self) -> ResultStore:
        if self._store is None:
            from core.store.store import open_store

            self._store = open_store(self.store_url, read_only=True)
        return self._store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        if self.qs.enabled:  # without a broker only the store figures (in-process scans write them too)
            broker = broker_stats(self.qs, timeout_s=self.timeout_s)
            families["broker_up"].add_metric([], 1.0 if broker.up else 0.0)
            for queue in (self.qs.analysis_queue, self.qs.summary_queue):
                if broker.up:
                    families["depth"].add_metric([queue], float(broker.depths.get(queue, 0)))
            if broker.unacked is not None:
                families["unacked"].add_metric([], float(broker.unacked))
        try:
            stats = store_stats(self._open_store(), window_s=self.window_s)
        except CallQAError:
            families["store_up"].add_metric([], 0.0)
            if self._own_store:  # reopen on the next scrape
                self.close()
        else:
            families["store_up"].add_metric([], 1.0)
            for name, value in stats.items():
                families[name].add_metric([], value)
        yield from families.values()

    def close(self) -> None:
        if self._store is not None and self._own_store:
            with contextlib.suppress(Exception):
                self._store.close()
            self._store = None
