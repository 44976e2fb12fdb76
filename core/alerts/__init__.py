"""Alerts: rules over the result store that tell admins when the fleet goes wrong.

- :mod:`core.alerts.rules`: what a rule is (``[[alerts.rules]]``) and the default rules;
- :mod:`core.alerts.settings`: the ``[alerts]`` section (channels, retries, recipients);
- :mod:`core.alerts.evaluate`: measuring a rule per group and deciding fire / resolve;
- :mod:`core.alerts.state`: states, history and the delivery outbox in the store;
- :mod:`core.alerts.channels` and :mod:`core.alerts.delivery`: webhook and e-mail, with backoff;
- :mod:`core.alerts.service`: one check (``callqa alerts check``, after scans, in ``callqa watch``);
- :mod:`core.alerts.metrics`: rule values and states for Prometheus.
"""

from __future__ import annotations

from core.alerts.rules import DEFAULT_RULES, METRICS, AlertRule
from core.alerts.service import CheckResult, check_after_work, check_alerts
from core.alerts.settings import AlertSettings

__all__ = ["DEFAULT_RULES", "METRICS", "AlertRule", "AlertSettings", "CheckResult", "check_after_work",
           "check_alerts"]
