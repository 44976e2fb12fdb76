"""``[queue]`` settings: the task broker, queue names, worker limits, retries and the watcher.

Without ``broker_url`` (the default) there is no queue: scans analyse in-process as always and
``callqa watch`` analyses new recordings itself. With one (``redis://...`` or ``amqp://...``)
``callqa scan --queue`` and ``callqa watch`` enqueue calls and ``callqa worker`` processes
analyse them, on as many machines as needed.

Every key can be overridden from the environment as ``CALLQA_QUEUE_<KEY>`` (the common section
reader, :class:`core.config.SettingsSection`); the broker URL also as ``CALLQA_BROKER_URL`` (which wins), so a password in it can live in
``/etc/callqa/secrets.env`` rather than in ``callqa.toml``. The URL is only ever shown
through :func:`redact_url`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from core.config import SettingsSection
from core.errors import ConfigError

BROKER_SCHEMES = {"redis": "redis", "rediss": "redis", "amqp": "amqp", "amqps": "amqp", "pyamqp": "amqp"}
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_RATE = re.compile(r"^\d+(\.\d+)?(/[smh])?$")


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages, logs and ``queue-status``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}:***@{host}{port}", parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class QueueSettings(SettingsSection):
    """The ``[queue]`` section.

    Attributes
    ----------
    broker_url : str
        ``redis://[:password@]host:6379/0`` or ``amqp://user:password@host:5672//``; empty means
        no queue (everything in-process). Kept out of ``repr``.
    analysis_queue, summary_queue : str
        Queue names for call analyses and for Claude summaries.
    summary_rate_limit : str
        Celery rate limit of summaries *per worker process pool* (``30/m``, ``1/s``, ``""`` for none).
    summarize : bool
        After storing an analysis a worker enqueues its Claude summary on ``summary_queue``.
    quality : bool
        Score NISQA quality in queued analyses (``callqa watch``'s default; ``scan --queue``
        follows ``--no-quality``) and preload the model in workers.
    concurrency : int
        Worker processes per ``callqa worker`` (0 = one per CPU core).
    max_memory_per_child_mb : int
        A worker process using more resident memory than this after a task is replaced (0 = no limit).
    max_tasks_per_child : int
        A worker process is replaced after this many tasks (0 = never).
    retry_max : int
        Retries of a call whose fetch (or another transient step) fails, before its dead letter.
    retry_backoff_s, retry_backoff_max_s : float
        First retry delay, doubled per retry (with jitter), capped.
    visibility_timeout_s : float
        Redis: a message taken by a worker that dies is delivered again after this long.
    task_time_limit_s : float
        An analysis running longer is stopped and dead-lettered; must be well under
        ``visibility_timeout_s`` (or Redis would deliver the call again meanwhile).
    claim_ttl_s : float
        How long an enqueued call is remembered as queued, so enqueuing it again does nothing.
    watch_interval_s : float
        Seconds between the watcher's polls of ``recording_log``.
    watch_batch : int
        Recordings enqueued per poll at most (1..5000); a full batch polls again at once.
    watch_grace_s : float
        How long the watcher waits for the dialer to process a recording (``location`` filled)
        before enqueuing it anyway.
    """

    broker_url: str = field(default="", repr=False)
    analysis_queue: str = "callqa-analysis"
    summary_queue: str = "callqa-summaries"
    summary_rate_limit: str = "30/m"
    summarize: bool = False
    quality: bool = True
    concurrency: int = 0
    max_memory_per_child_mb: int = 2048
    max_tasks_per_child: int = 1000
    retry_max: int = 5
    retry_backoff_s: float = 10.0
    retry_backoff_max_s: float = 600.0
    visibility_timeout_s: float = 3600.0
    task_time_limit_s: float = 1800.0
    claim_ttl_s: float = 86400.0
    watch_interval_s: float = 30.0
    watch_batch: int = 500
    watch_grace_s: float = 3600.0

    SECTION: ClassVar[str] = "queue"
    ENV_ALIASES: ClassVar[dict[str, str]] = {"broker_url": "CALLQA_BROKER_URL"}
    SECRETS: ClassVar[frozenset[str]] = frozenset({"broker_url"})

    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        """As the common reader, strings stripped."""
        out = super()._clean(name, value, default, label=label)
        return {k: v.strip() if isinstance(v, str) else v for k, v in out.items()}

    def _validate(self) -> None:
        if self.broker_url:
            scheme = self.broker_url.split("://", 1)[0].lower() if "://" in self.broker_url else ""
            if scheme not in BROKER_SCHEMES:
                raise ConfigError(f"[queue] broker_url {redact_url(self.broker_url)!r}: use redis://, rediss:// "
                                  "or amqp:// (RabbitMQ)")
        for name in ("analysis_queue", "summary_queue"):
            if not _QUEUE_NAME.match(getattr(self, name)):
                raise ConfigError(f"[queue] {name}={getattr(self, name)!r}: letters, digits and _.:- only")
        if self.analysis_queue == self.summary_queue:
            raise ConfigError("[queue] analysis_queue and summary_queue must differ (summaries have their own "
                              "rate limit)")
        if self.summary_rate_limit and not _RATE.match(self.summary_rate_limit):
            raise ConfigError(f"[queue] summary_rate_limit={self.summary_rate_limit!r}: like 30/m, 2/s or 100/h")
        for name in ("concurrency", "max_memory_per_child_mb", "max_tasks_per_child", "retry_max"):
            if getattr(self, name) < 0:
                raise ConfigError(f"[queue] {name}={getattr(self, name)} must not be negative")
        for name in ("retry_backoff_s", "retry_backoff_max_s", "visibility_timeout_s", "task_time_limit_s",
                     "claim_ttl_s", "watch_interval_s", "watch_grace_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[queue] {name}={getattr(self, name)} must be positive")
        if not 1 <= self.watch_batch <= 5000:
            raise ConfigError(f"[queue] watch_batch={self.watch_batch} must be between 1 and 5000")
        if self.hard_time_limit_s >= self.visibility_timeout_s:
            raise ConfigError(
                f"[queue] task_time_limit_s={self.task_time_limit_s:g} must stay below visibility_timeout_s="
                f"{self.visibility_timeout_s:g}, with its hard limit (+10%, at most +60 s), or a slow call is "
                "delivered twice")
        if self.retry_backoff_max_s >= self.visibility_timeout_s:
            raise ConfigError(f"[queue] retry_backoff_max_s={self.retry_backoff_max_s:g} must stay below "
                              f"visibility_timeout_s={self.visibility_timeout_s:g}")

    # --- derived -----------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        """True when a broker is configured (otherwise everything runs in-process)."""
        return bool(self.broker_url)

    @property
    def broker_kind(self) -> str:
        """``redis``, ``amqp`` or ``""`` (no broker)."""
        if not self.enabled:
            return ""
        return BROKER_SCHEMES[self.broker_url.split("://", 1)[0].lower()]

    @property
    def display_broker(self) -> str:
        """The broker URL without its password (``none`` when not configured)."""
        return redact_url(self.broker_url) if self.enabled else "none"

    @property
    def hard_time_limit_s(self) -> float:
        """When a task is killed outright: the soft limit plus 10% (at least 1 s, at most 60 s)."""
        return self.task_time_limit_s + min(60.0, max(1.0, 0.1 * self.task_time_limit_s))

    def worker_concurrency(self, cpus: int | None = None) -> int:
        """Processes of one worker: ``concurrency``, or one per CPU core when 0."""
        return self.concurrency or max(1, cpus if cpus is not None else (os.cpu_count() or 1))

    def backoff_s(self, retries: int) -> float:
        """Delay before retry number ``retries + 1``: ``retry_backoff_s * 2**retries``, capped."""
        return min(self.retry_backoff_max_s, self.retry_backoff_s * (2 ** max(0, retries)))

    def require_broker(self, what: str) -> QueueSettings:
        """Return self, or raise :class:`ConfigError` saying ``what`` needs a broker."""
        if not self.enabled:
            raise ConfigError(f"{what} needs a task broker: set [queue] broker_url in callqa.toml (e.g. "
                              "redis://127.0.0.1:6379/0) or CALLQA_BROKER_URL; without one, run without the queue")
        return self
