"""Alert rule values and states for Prometheus, read from the store at every scrape.

Registered on the API's registry (``GET /metrics``) next to the queue collector. Whatever
process evaluated the rules (a scan, ``callqa watch``, the timer), the states are in the store,
so the API exports them. ``deploy/prometheus/callqa-alerts.yml`` turns them into Alertmanager
alerts for sites that route alerts there.

Gauges:

- ``callqa_alert_firing{rule,group_by,group,severity}``: 1 while the rule fires for the group, else 0;
- ``callqa_alert_value{rule,group_by,group,metric}``: the rule's value at the last check;
- ``callqa_alert_calls{rule,group_by,group}``: the calls it counted;
- ``callqa_alert_threshold{rule,metric,op,severity}``: every configured rule's threshold;
- ``callqa_alert_last_check_timestamp_seconds``: when the rules were last evaluated (0: never);
- ``callqa_alert_deliveries{status}``: outbox messages ``pending``, ``sent`` or ``failed`` (given up);
- ``callqa_alert_store_up``: 1 when the store answered this scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.alerts.settings import AlertSettings
from core.errors import CallQAError

if TYPE_CHECKING:
    from core.store.store import ResultStore

LAST_CHECK_WATERMARK = "alerts.last_check"
_HELP = {
    "firing": ("1 while the alert rule fires for the group.", ["rule", "group_by", "group", "severity"]),
    "value": ("The rule's value for the group at the last check.", ["rule", "group_by", "group", "metric"]),
    "calls": ("Calls the rule counted for the group at the last check.", ["rule", "group_by", "group"]),
    "threshold": ("Threshold of every configured alert rule.", ["rule", "metric", "op", "severity"]),
    "last_check_timestamp_seconds": ("When the alert rules were last evaluated (Unix time; 0 = never).", []),
    "deliveries": ("Alert messages in the outbox by status (pending, sent, failed).", ["status"]),
    "store_up": ("1 when the result store answered this scrape.", []),
}


class AlertCollector(Collector):
    """A prometheus-client collector of the alert states stored by the last check.

    Parameters
    ----------
    settings : AlertSettings
        The configured rules (thresholds, severities).
    store : ResultStore
        The store the checks write to.
    """

    def __init__(self, settings: AlertSettings, store: ResultStore) -> None:
        self.settings = settings
        self.store = store

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {name: GaugeMetricFamily(f"callqa_alert_{name}", doc, labels=labels or None)
                for name, (doc, labels) in _HELP.items()}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from core.alerts.state import delivery_counts, stored_states

        families = self._families()
        rules = {r.name: r for r in self.settings.active_rules}
        for rule in rules.values():
            families["threshold"].add_metric([rule.name, rule.metric, rule.op, rule.severity], rule.threshold)
        try:
            states = stored_states(self.store, list(rules))
            outbox = delivery_counts(self.store)
            last = self.store.get_watermark(LAST_CHECK_WATERMARK)
        except CallQAError:
            families["store_up"].add_metric([], 0.0)
            yield families["store_up"]
            yield families["threshold"]
            return
        families["store_up"].add_metric([], 1.0)
        for (name, group), row in sorted(states.items()):
            rule = rules[name]
            families["firing"].add_metric([name, rule.group_by, group, rule.severity],
                                          1.0 if row["state"] == "firing" else 0.0)
            if row["value"] is not None:
                families["value"].add_metric([name, rule.group_by, group, rule.metric], float(row["value"]))
            families["calls"].add_metric([name, rule.group_by, group], float(row["calls"]))
        for status, n in outbox.items():
            families["deliveries"].add_metric([status], float(n))
        stamp = datetime.fromisoformat(last).replace(tzinfo=UTC).timestamp() if last else 0.0
        families["last_check_timestamp_seconds"].add_metric([], stamp)
        yield from families.values()
