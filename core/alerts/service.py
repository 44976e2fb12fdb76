"""One alert check: measure every rule, store what changed, deliver the outbox.

:func:`check_alerts` is what ``callqa alerts check`` runs, and what ``callqa scan`` and
``callqa watch`` run after storing calls (:func:`check_after_work`, which never raises: a broken
channel or rule costs a warning line, never the scan).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.alerts.delivery import DeliveryReport, Sender, deliver_pending
from core.alerts.evaluate import Clock, Transition, decide, measure
from core.alerts.metrics import LAST_CHECK_WATERMARK
from core.alerts.rules import AlertRule
from core.alerts.settings import AlertSettings
from core.alerts.state import AlertEvent, apply_transitions, stored_states
from core.errors import CallQAError

if TYPE_CHECKING:
    from core.config import Settings
    from core.store.store import ResultStore


@dataclass
class CheckResult:
    """What one check measured, changed and delivered."""

    checked_at: datetime  # UTC
    enabled: bool
    dry_run: bool
    rules: tuple[AlertRule, ...] = ()
    transitions: list[Transition] = field(default_factory=list)
    events: list[AlertEvent] = field(default_factory=list)
    delivery: DeliveryReport | None = None

    @property
    def changes(self) -> list[Transition]:
        """The transitions that fire or resolve an alert (in a dry run: that would)."""
        return [t for t in self.transitions if t.change is not None]

    @property
    def firing(self) -> list[Transition]:
        return [t for t in self.transitions if t.after == "firing"]

    def as_dict(self) -> dict[str, Any]:
        """The ``callqa alerts check --json`` document."""
        by_rule: dict[str, list[dict[str, Any]]] = {r.name: [] for r in self.rules}
        for t in self.transitions:
            m = t.measurement
            by_rule[m.rule.name].append({"group": m.group, "value": m.value, "calls": m.calls,
                                         "state": t.after, "previous": t.before, "change": t.change,
                                         "decided": m.decided, "note": t.reason})
        return {
            "checked_at": self.checked_at.isoformat() + "Z",
            "enabled": self.enabled,
            "dry_run": self.dry_run,
            "rules": [{**r.as_dict(), "groups": by_rule[r.name]} for r in self.rules],
            "changes": [{"rule": t.measurement.rule.name, "group": t.measurement.group, "change": t.change,
                         "value": t.measurement.value, "calls": t.measurement.calls} for t in self.changes],
            "events": [e.as_dict() for e in self.events],
            "deliveries": self.delivery.as_dict() if self.delivery else None,
        }


def evaluate(store: ResultStore, rules: tuple[AlertRule, ...], clock: Clock) -> list[Transition]:
    """Every rule measured per group and compared with its stored state (reads only)."""
    states = stored_states(store, [r.name for r in rules])
    out: list[Transition] = []
    for rule in rules:
        known = tuple(g for (name, g) in states if name == rule.name)
        for m in measure(store, rule, clock, known_groups=known):
            out.append(decide(m, (states.get((rule.name, m.group)) or {}).get("state")))
    return out


def check_alerts(store: ResultStore, settings: AlertSettings, *, dry_run: bool = False, deliver: bool = True,
                 when: datetime | None = None, sender: Sender | None = None) -> CheckResult:
    """Evaluate every rule, store the changes and deliver what is due.

    Parameters
    ----------
    store : ResultStore
    settings : AlertSettings
    dry_run : bool
        Measure and report what would change; store nothing, send nothing.
    deliver : bool
        Send due messages (this check's and earlier ones waiting for a retry).
    when : datetime, optional
        Evaluate as of this time (aware, or naive local); default now.
    sender : callable, optional
        Replaces :func:`core.alerts.channels.send_event` (tests).

    Returns
    -------
    CheckResult

    Raises
    ------
    StoreError
        The store cannot be read or written.
    """
    clock = Clock.at(when)
    rules = settings.active_rules
    result = CheckResult(checked_at=clock.utc, enabled=settings.enabled, dry_run=dry_run, rules=rules)
    if not settings.enabled:
        return result
    result.transitions = evaluate(store, rules, clock)
    if dry_run:
        return result
    result.events = apply_transitions(store, result.transitions, now_utc=clock.utc, channels=settings.channels,
                                      active_rules=[r.name for r in rules])
    store.set_watermark(LAST_CHECK_WATERMARK, clock.utc.isoformat())
    if deliver:
        kwargs: dict[str, Any] = {"sender": sender} if sender is not None else {}
        result.delivery = deliver_pending(store, settings, **kwargs)
    return result


def summary_lines(result: CheckResult) -> list[str]:
    """One line per change and per delivery problem (what the scan hook and the CLI print)."""
    lines = [("FIRING  " if e.kind == "firing" else "RESOLVED ") + e.message for e in result.events]
    if result.dry_run:
        lines = [("would fire:    " if t.change == "firing" else "would resolve: ") + _describe(t)
                 for t in result.changes]
    if result.delivery:
        lines += [f"delivery: {line}" for line in result.delivery.errors]
    return lines


def _describe(t: Transition) -> str:
    from core.alerts.state import event_message

    return event_message(t)


def check_after_work(settings: Settings, store: ResultStore, *, warn: Callable[[str], None]) -> CheckResult | None:
    """The alert check after a scan or a watch cycle, when ``[alerts] enabled`` and ``check_after_scan``.

    Never raises for a callqa error: a bad ``[alerts]`` section, a store problem or a failing
    channel becomes a ``warn`` line and the caller carries on.
    """
    try:
        alert_settings = AlertSettings.from_settings(settings)
        if not (alert_settings.enabled and alert_settings.check_after_scan):
            return None
        result = check_alerts(store, alert_settings)
    except CallQAError as exc:
        warn(f"alerts: {exc}")
        return None
    for line in summary_lines(result):
        warn(f"alerts: {line}")
    return result
