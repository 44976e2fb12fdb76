"""Alert rules: what is measured, over which calls, and when it is bad.

A rule is one ``[[alerts.rules]]`` table of ``callqa.toml``::

    [[alerts.rules]]
    name = "carrier one-way audio"
    metric = "one_way_rate"
    op = ">"
    threshold = 0.05
    group_by = "carrier"
    window_hours = 24
    min_calls = 20
    severity = "critical"

It is evaluated per group (every carrier, agent... with calls in the window, or the whole
fleet) over the calls whose ``call_time`` lies in the last ``window_hours``; a group with fewer
than ``min_calls`` counted calls neither fires nor resolves. :data:`DEFAULT_RULES` apply when
``[alerts]`` lists no rule; README ("Alerts") justifies each.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.config import coerce_setting
from core.errors import ConfigError
from core.results import FINDING_CODES

#: Metrics a rule can watch, with what they mean (shown by ``callqa alerts status`` and the dashboard).
METRICS: dict[str, str] = {
    "one_way_rate": "share of calls with one-way audio",
    "dead_air_rate": "share of calls with dead air",
    "problem_rate": "share of calls with a warning or critical finding",
    "mos_mean": "mean MOS of the calls' worst leg",
    "mos_p10": "10th percentile of the calls' worst-leg MOS",
    "failed_rate": "share of analyses that failed (by analysis time, whole fleet)",
    "calls": "calls in the window",
}
FINDING_RATE = "finding_rate:"
#: Comparison operators, by their spelling in a rule.
OPS: dict[str, Callable[[float, float], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                  "<=": operator.le}
#: What a rule can group by: the whole fleet or one ``calls`` column (see core.store.queries.GROUPS).
GROUP_BYS = ("fleet", "carrier", "agent", "campaign", "ingroup", "server", "layout")
SEVERITIES = ("info", "warning", "critical")
#: Metrics that count calls with a MOS (``min_calls`` applies to those).
MOS_METRICS = ("mos_mean", "mos_p10")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,120}$")


@dataclass(frozen=True)
class AlertRule:
    """One alert rule (see the module docstring for the TOML form).

    Attributes
    ----------
    name : str
        Unique; it keys the rule's state in the store (renaming a rule starts it afresh).
    metric : str
        A key of :data:`METRICS` or ``finding_rate:<code>`` (share of calls with that finding).
    op : str
        ``>``, ``>=``, ``<`` or ``<=``: the rule fires while ``value op threshold`` holds.
    threshold : float
        Rates are fractions (0.05 = 5 %), MOS on NISQA's 1-5 scale, ``calls`` a count.
    group_by : str
        ``fleet`` (all calls together) or a column of :data:`GROUP_BYS`.
    window_hours : float
        The calls of the last this many hours (by call time; ``failed_rate``: by analysis time).
    min_calls : int
        Fewer counted calls in a group: no new alert and no resolution (ignored by ``calls``).
    severity : str
        ``info``, ``warning`` or ``critical``.
    """

    name: str
    metric: str
    op: str
    threshold: float
    group_by: str = "fleet"
    window_hours: float = 24.0
    min_calls: int = 20
    severity: str = "warning"

    @property
    def finding_code(self) -> str | None:
        """The finding code of a ``finding_rate:<code>`` rule."""
        return self.metric[len(FINDING_RATE):] if self.metric.startswith(FINDING_RATE) else None

    @property
    def is_rate(self) -> bool:
        return self.metric.endswith("_rate") or self.finding_code is not None

    def holds(self, value: float) -> bool:
        """Whether ``value`` breaks the rule (``value op threshold``)."""
        return OPS[self.op](value, self.threshold)

    def describe(self) -> str:
        """``one_way_rate > 0.05 by carrier over 24 h (min 20 calls)``."""
        group = "fleet-wide" if self.group_by == "fleet" else f"by {self.group_by}"
        counted = "" if self.metric == "calls" else f" (min {self.min_calls} calls)"
        return (f"{self.metric} {self.op} {format_value(self, self.threshold)} {group} over "
                f"{self.window_hours:g} h{counted}")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "op": self.op, "threshold": self.threshold,
                "group_by": self.group_by, "window_hours": self.window_hours, "min_calls": self.min_calls,
                "severity": self.severity}


def format_value(rule: AlertRule, value: float | None) -> str:
    """A rule's value as a person reads it: rates in %, MOS with 2 decimals, counts whole."""
    if value is None:
        return "-"
    if rule.is_rate:
        return f"{value * 100:.1f} %"
    if rule.metric == "calls":
        return f"{value:.0f}"
    return f"{value:.2f}"


def group_label(group_by: str, group: str) -> str:
    """A rule's group as a person reads it: ``all calls`` (fleet-wide) or ``carrier FLOWROUTE``."""
    return "all calls" if group_by == "fleet" else f"{group_by} {group}"


_DEFAULTS = {"group_by": "fleet", "window_hours": 24.0, "min_calls": 20, "severity": "warning"}
_REQUIRED = ("name", "metric", "op", "threshold")


def parse_rule(table: Mapping[str, Any], index: int = 0) -> AlertRule:
    """Build and check one ``[[alerts.rules]]`` table.

    Raises
    ------
    ConfigError
        A missing or unknown key, a wrong type, an unknown metric/op/group/severity, or a value
        out of range (one line naming the rule).
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"[[alerts.rules]] #{index + 1} must be a table")
    where = f"[[alerts.rules]] #{index + 1}"
    if isinstance(table.get("name"), str) and table["name"].strip():
        where = f"[[alerts.rules]] {table['name'].strip()!r}"
    known = set(_REQUIRED) | set(_DEFAULTS)
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    missing = [k for k in _REQUIRED if k not in table]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    section = where.removeprefix("[").replace("]]", "]", 1)
    values = {"name": coerce_setting(section, "name", table["name"], ""),
              "metric": coerce_setting(section, "metric", table["metric"], ""),
              "op": coerce_setting(section, "op", table["op"], ""),
              "threshold": coerce_setting(section, "threshold", table["threshold"], 0.0)}
    for key, default in _DEFAULTS.items():
        values[key] = coerce_setting(section, key, table.get(key, default), default)
    rule = AlertRule(**{**values, "name": values["name"].strip()})
    _check(rule, where)
    return rule


def _check(rule: AlertRule, where: str) -> None:
    if not _NAME.match(rule.name):
        raise ConfigError(f"{where}: name must be 1-120 printable characters")
    code = rule.finding_code
    if code is not None and code not in FINDING_CODES:
        raise ConfigError(f"{where}: metric {rule.metric!r} names no finding code (one of {', '.join(FINDING_CODES)})")
    if code is None and rule.metric not in METRICS:
        raise ConfigError(f"{where}: metric {rule.metric!r}; choose one of {', '.join(METRICS)} or "
                          f"{FINDING_RATE}<code>")
    if rule.op not in OPS:
        raise ConfigError(f"{where}: op {rule.op!r}; choose one of {' '.join(OPS)}")
    if rule.group_by not in GROUP_BYS:
        raise ConfigError(f"{where}: group_by {rule.group_by!r}; choose one of {', '.join(GROUP_BYS)}")
    if rule.metric == "failed_rate" and rule.group_by != "fleet":
        raise ConfigError(f"{where}: failed_rate is fleet-wide (a failed analysis has no carrier or agent); "
                          "use group_by = \"fleet\"")
    if rule.severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity {rule.severity!r}; choose one of {', '.join(SEVERITIES)}")
    if not 0 < rule.window_hours <= 24 * 31:
        raise ConfigError(f"{where}: window_hours={rule.window_hours:g} must be > 0 and at most 744 (31 days)")
    if rule.min_calls < 1:
        raise ConfigError(f"{where}: min_calls={rule.min_calls} must be at least 1")
    if rule.is_rate and not 0 <= rule.threshold <= 1:
        raise ConfigError(f"{where}: threshold={rule.threshold:g} of a rate must lie in 0..1 (0.05 = 5 %)")
    if rule.metric in MOS_METRICS and not 1 <= rule.threshold <= 5:
        raise ConfigError(f"{where}: threshold={rule.threshold:g} of a MOS must lie in 1..5")
    if rule.metric == "calls" and rule.threshold < 0:
        raise ConfigError(f"{where}: threshold={rule.threshold:g} of a call count must be >= 0")


def parse_rules(tables: Any) -> tuple[AlertRule, ...]:
    """Every ``[[alerts.rules]]`` table, checked, with unique names.

    Raises
    ------
    ConfigError
        As :func:`parse_rule`, or two rules share a name.
    """
    if tables is None:
        return ()
    if isinstance(tables, Mapping) or not isinstance(tables, (list, tuple)):
        raise ConfigError("[alerts] rules must be an array of tables ([[alerts.rules]])")
    rules = tuple(parse_rule(t, i) for i, t in enumerate(tables))
    seen: set[str] = set()
    for rule in rules:
        if rule.name in seen:
            raise ConfigError(f"[[alerts.rules]]: two rules are named {rule.name!r} (names key their state)")
        seen.add(rule.name)
    return rules


#: The rules evaluated when ``[alerts]`` lists none (``default_rules = false`` turns them off).
#: README ("Alerts") gives the reason for every threshold.
DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("carrier one-way audio", "one_way_rate", ">", 0.05, group_by="carrier", window_hours=24,
              min_calls=20, severity="critical"),
    AlertRule("server one-way audio", "one_way_rate", ">", 0.05, group_by="server", window_hours=24,
              min_calls=20, severity="critical"),
    AlertRule("carrier low MOS", "mos_mean", "<", 2.5, group_by="carrier", window_hours=24, min_calls=20,
              severity="warning"),
    AlertRule("carrier packet loss", "finding_rate:packet_loss", ">", 0.10, group_by="carrier", window_hours=24,
              min_calls=20, severity="warning"),
    AlertRule("campaign dead air", "dead_air_rate", ">", 0.25, group_by="campaign", window_hours=24,
              min_calls=20, severity="warning"),
    AlertRule("agent clipping", "finding_rate:clipping", ">", 0.50, group_by="agent", window_hours=72,
              min_calls=10, severity="warning"),
    AlertRule("fleet problem rate", "problem_rate", ">", 0.30, group_by="fleet", window_hours=24, min_calls=50,
              severity="warning"),
    AlertRule("analyses failing", "failed_rate", ">", 0.10, group_by="fleet", window_hours=6, min_calls=20,
              severity="critical"),
)
