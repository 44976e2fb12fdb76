"""Delivering the outbox: each pending message is tried once per pass, failures wait with backoff.

A pass (:func:`deliver_pending`) leases the due deliveries, sends each through its channel
and records the outcome: sent; pending again after ``retry_backoff_s * 2**(attempts-1)``
(capped at ``retry_backoff_max_s``); or failed for good after ``retry_attempts`` attempts. A
pass stops starting new attempts once ``delivery_budget_s`` is spent, and one attempt is
bounded by ``timeout_s``, so the hook after a scan returns in bounded time whatever a dead
webhook does; what is left is sent by the next check (the next scan, ``callqa watch``'s next
cycle or ``callqa-alerts.timer``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from core.alerts.channels import send_event
from core.alerts.settings import AlertSettings
from core.alerts.state import FAILED, PENDING, SENT, Delivery, finish_delivery, lease_due, release_leases
from core.errors import DeliveryError
from core.store.store import utcnow

if TYPE_CHECKING:
    from core.alerts.state import AlertEvent
    from core.store.store import ResultStore

Sender = Callable[[AlertSettings, str, "AlertEvent"], None]


@dataclass
class DeliveryReport:
    """What one pass did: counts per outcome and one line per failed attempt."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    left: int = 0  # due but not tried: the budget was spent
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"sent": self.sent, "retrying": self.retrying, "failed": self.failed, "left": self.left,
                "errors": list(self.errors)}


def backoff_s(settings: AlertSettings, attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt (1 = the first)."""
    return min(settings.retry_backoff_max_s, settings.retry_backoff_s * 2 ** max(0, attempts - 1))


def deliver_pending(store: ResultStore, settings: AlertSettings, *, sender: Sender = send_event,
                    now: Callable[[], datetime] = utcnow) -> DeliveryReport:
    """Try every due delivery once, within ``[alerts] delivery_budget_s``.

    Parameters
    ----------
    store : ResultStore
    settings : AlertSettings
    sender : callable
        ``sender(settings, channel, event)``; raises :class:`DeliveryError` on failure.
    now : callable
        UTC now without a zone (tests move it).

    Returns
    -------
    DeliveryReport
    """
    report = DeliveryReport()
    started = time.monotonic()
    lease_s = settings.timeout_s * 3 + 30
    due = lease_due(store, now_utc=now(), lease_s=lease_s)
    for index, delivery in enumerate(due):
        if time.monotonic() - started >= settings.delivery_budget_s:
            report.left = len(due) - index
            release_leases(store, [d.id for d in due[index:]])
            break
        _attempt(store, settings, delivery, sender, now, report)
    return report


def _attempt(store: ResultStore, settings: AlertSettings, delivery: Delivery, sender: Sender,
             now: Callable[[], datetime], report: DeliveryReport) -> None:
    try:
        sender(settings, delivery.channel, delivery.event)
        error = None
    except DeliveryError as exc:
        error = str(exc)
    attempts = delivery.attempts + 1
    retry_at = None
    if error is not None and attempts < settings.retry_attempts:
        retry_at = now() + timedelta(seconds=backoff_s(settings, attempts))
    status = finish_delivery(store, delivery, now_utc=now(), error=error, next_attempt_at=retry_at)
    if status == SENT:
        report.sent += 1
        return
    if status == PENDING:
        report.retrying += 1
        report.errors.append(f"{delivery.channel} (alert {delivery.event.id}, attempt {attempts} of "
                             f"{settings.retry_attempts}, next in {backoff_s(settings, attempts):g} s): {error}")
    elif status == FAILED:
        report.failed += 1
        report.errors.append(f"{delivery.channel} (alert {delivery.event.id}): given up after {attempts} "
                             f"attempts: {error}")
