"""Prometheus metrics of the API (``GET /metrics``), one registry per app.

Every name starts with ``callqa_``. Analysis metrics count **fresh analyses** only (a cached
answer is counted by ``callqa_cache_hits_total`` and ``callqa_analyses_total{result="cached"}``),
so repeated requests for one call do not inflate findings, MOS or dead-air figures.

Counters (``_total``):

- ``callqa_analyses_total{result}``: /analyze and /ai-analyze outcomes, ``analysed``,
  ``cached`` or ``failed``;
- ``callqa_analysis_failures_total{reason}``: failed analyses by error type, the snake_case
  class name without ``Error`` (``audio_not_found``, ``invalid_audio``, ``fetch``,
  ``vici_dial``, ``call_not_found``...; ``internal`` for bugs);
- ``callqa_cache_hits_total``: analyses answered from the result store;
- ``callqa_audio_seconds_total``: seconds of call audio analysed;
- ``callqa_findings_total{code,severity}``: findings of fresh analyses;
- ``callqa_dead_air_calls_total``: analysed calls with at least one dead-air finding;
- ``callqa_one_way_calls_total{leg}``: analysed calls with one-way audio, by the silent leg
  (``mixed`` when the finding names no leg);
- ``callqa_llm_requests_total{kind,result}``: Claude features (``summary``, ``investigate``,
  ``chat``) by outcome (``ok``, ``cached``, ``error``);
- ``callqa_llm_cost_usd_total{kind}``, ``callqa_llm_tokens_total{kind,direction}``: what this
  process spent on Claude (``direction`` is ``input`` or ``output``);
- ``callqa_http_requests_total{route,status}``: answered requests by route template;
- ``callqa_queue_rejected_total``: requests refused with 503 (queue full or wait timed out).

Histograms (``_bucket``, ``_sum``, ``_count``):

- ``callqa_analysis_seconds``: wall time of one fresh analysis, fetch included;
- ``callqa_mos{leg}``: NISQA MOS per leg (``caller``, ``agent``, ``mixed``), 1..5;
- ``callqa_silence_ratio{leg}``: share of each leg in silence gaps, 0..1;
- ``callqa_dead_air_seconds``: dead air per analysed call (0 when none);
- ``callqa_http_request_seconds{route}``: request latency, queueing included.

Gauges:

- ``callqa_inflight_requests``: work items running (at most ``[api] max_concurrency``);
- ``callqa_queue_waiting``: requests waiting for a slot;
- ``callqa_build_info{version}``: always 1, labelled with the running version.

Label sets that are known in advance are created at start with zero values, so every series
the Grafana dashboard queries exists from the first scrape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from core import __version__
from core.errors import CallQAError
from core.results import FINDING_CODES, SEVERITIES

LEGS = ("caller", "agent", "mixed")
ANALYSIS_RESULTS = ("analysed", "cached", "failed")
# failure reasons shown from the first scrape (others appear when they happen)
FAILURE_REASONS = ("audio_not_found", "invalid_audio", "layout", "fetch", "unsafe_location", "vici_dial",
                   "call_not_found", "model_unavailable", "store", "config", "parameter", "internal")
LLM_KINDS = ("summary", "investigate", "chat")
LLM_RESULTS = ("ok", "cached", "error")
# MOS 1..5 in quarter steps: Grafana can show the share of calls under 2.5, 3.0, 3.5 ...
MOS_BUCKETS = (1.0, 1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.25, 4.5, 5.0)
ANALYSIS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)
DEAD_AIR_BUCKETS = (0.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
RATIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def error_reason(exc: BaseException) -> str:
    """A bounded label for an error: the snake_case class name without ``Error`` (else ``internal``)."""
    if not isinstance(exc, CallQAError):
        return "internal"
    name = type(exc).__name__.removesuffix("Error") or "call_qa"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _span_s(spans: list[Mapping[str, Any]]) -> float:
    return sum(float(s["end_s"]) - float(s["start_s"]) for s in spans)


class ApiMetrics:
    """The metric objects of one app and helpers that feed them from analysis documents."""

    def __init__(self) -> None:
        # no ``*_created`` series: they double the series count and no panel reads them
        # (a process-wide switch of prometheus_client; only the API process uses it)
        disable_created_metrics()
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.analyses = Counter("callqa_analyses", "Analysis requests by outcome (analysed, cached, failed).",
                                ["result"], registry=r)
        self.failures = Counter("callqa_analysis_failures", "Failed analyses by error type.", ["reason"],
                                registry=r)
        self.cache_hits = Counter("callqa_cache_hits", "Analyses answered from the result store.", registry=r)
        self.analysis_seconds = Histogram("callqa_analysis_seconds", "Wall time of one fresh analysis (fetch included).",
                                          buckets=ANALYSIS_BUCKETS, registry=r)
        self.audio_seconds = Counter("callqa_audio_seconds", "Seconds of call audio analysed.", registry=r)
        self.findings = Counter("callqa_findings", "Findings of fresh analyses.", ["code", "severity"], registry=r)
        self.mos = Histogram("callqa_mos", "NISQA MOS per leg of fresh analyses.", ["leg"], buckets=MOS_BUCKETS,
                             registry=r)
        self.silence_ratio = Histogram("callqa_silence_ratio", "Share of each leg in silence gaps (0..1).", ["leg"],
                                       buckets=RATIO_BUCKETS, registry=r)
        self.dead_air = Histogram("callqa_dead_air_seconds", "Dead air per analysed call, seconds (0 when none).",
                                  buckets=DEAD_AIR_BUCKETS, registry=r)
        self.dead_air_calls = Counter("callqa_dead_air_calls", "Analysed calls with a dead-air finding.", registry=r)
        self.one_way = Counter("callqa_one_way_calls", "Analysed calls with one-way audio, by the silent leg.",
                               ["leg"], registry=r)
        self.llm_requests = Counter("callqa_llm_requests", "Claude feature requests by kind and outcome.",
                                    ["kind", "result"], registry=r)
        self.llm_cost = Counter("callqa_llm_cost_usd", "USD spent on Claude by this process.", ["kind"], registry=r)
        self.llm_tokens = Counter("callqa_llm_tokens", "Claude tokens by kind and direction.", ["kind", "direction"],
                                  registry=r)
        self.http_requests = Counter("callqa_http_requests", "Answered HTTP requests by route template and status.",
                                     ["route", "status"], registry=r)
        self.http_seconds = Histogram("callqa_http_request_seconds", "HTTP request latency (queueing included).",
                                      ["route"], buckets=REQUEST_BUCKETS, registry=r)
        self.inflight = Gauge("callqa_inflight_requests", "Work items running now.", registry=r)
        self.waiting = Gauge("callqa_queue_waiting", "Requests waiting for a work slot.", registry=r)
        self.rejected = Counter("callqa_queue_rejected", "Requests refused with 503 because the queue was full "
                                "or the wait timed out.", registry=r)
        self.build_info = Gauge("callqa_build_info", "The running callqa version (always 1).", ["version"],
                                registry=r)
        self.build_info.labels(__version__).set(1)
        self._initialise()

    def _initialise(self) -> None:
        for result in ANALYSIS_RESULTS:
            self.analyses.labels(result)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)
        for leg in LEGS:
            self.mos.labels(leg)
            self.silence_ratio.labels(leg)
            self.one_way.labels(leg)
        for code in FINDING_CODES:
            for severity in SEVERITIES:
                self.findings.labels(code, severity)
        for kind in LLM_KINDS:
            self.llm_cost.labels(kind)
            for result in LLM_RESULTS:
                self.llm_requests.labels(kind, result)
            for direction in ("input", "output"):
                self.llm_tokens.labels(kind, direction)

    # --- feeding ---------------------------------------------------------------------------
    def record_analysis(self, doc: Mapping[str, Any], *, cached: bool, seconds: float) -> None:
        """Count one answered analysis; measurements only when it was freshly analysed."""
        if cached:
            self.analyses.labels("cached").inc()
            self.cache_hits.inc()
            return
        self.analyses.labels("analysed").inc()
        self.analysis_seconds.observe(seconds)
        duration = float(doc.get("duration_s") or 0.0)
        self.audio_seconds.inc(max(duration, 0.0))
        dead_air = 0.0
        for f in doc.get("findings", []):
            code, severity = str(f.get("code")), str(f.get("severity"))
            if code in FINDING_CODES and severity in SEVERITIES:
                self.findings.labels(code, severity).inc()
            if code == "dead_air":
                dead_air += float(f["end_s"]) - float(f["start_s"])
            if code == "one_way_audio":
                leg = f.get("leg") if f.get("leg") in LEGS else "mixed"
                self.one_way.labels(leg).inc()
        self.dead_air.observe(dead_air)
        if dead_air > 0:
            self.dead_air_calls.inc()
        for leg, data in (doc.get("legs") or {}).items():
            if leg not in LEGS:
                continue
            quality = data.get("quality") or {}
            if quality.get("mos") is not None:
                self.mos.labels(leg).observe(float(quality["mos"]))
            length = float((data.get("stats") or {}).get("duration_s") or duration or 0.0)
            if length > 0:
                self.silence_ratio.labels(leg).observe(min(1.0, _span_s(data.get("silences", [])) / length))

    def record_failure(self, exc: BaseException) -> None:
        self.analyses.labels("failed").inc()
        self.failures.labels(error_reason(exc)).inc()

    def record_llm(self, kind: str, *, result: str, cost_usd: float = 0.0, input_tokens: int = 0,
                   output_tokens: int = 0) -> None:
        self.llm_requests.labels(kind, result).inc()
        if cost_usd > 0:
            self.llm_cost.labels(kind).inc(cost_usd)
        if input_tokens > 0:
            self.llm_tokens.labels(kind, "input").inc(input_tokens)
        if output_tokens > 0:
            self.llm_tokens.labels(kind, "output").inc(output_tokens)

    def record_request(self, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(route, str(status)).inc()
        self.http_seconds.labels(route).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
