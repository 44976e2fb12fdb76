"""A real Prometheus (Debian's ``/usr/bin/prometheus``) scrapes a real ``callqa serve``.

The scrape configuration is the shipped ``deploy/prometheus/prometheus.yml`` with only the
target and the intervals rewritten (1 s, so the test waits seconds, not minutes). One callqa
metric is read back through Prometheus's HTTP API, and every ``callqa_*`` series the Grafana
dashboard queries must exist in ``/metrics`` while every one of its PromQL expressions must be
accepted by Prometheus.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.mariadb import free_port
from tests.support.shared import PROJECT_ROOT, in_ci

PROMETHEUS = Path("/usr/bin/prometheus")
SHIPPED_CONFIG = PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA_JSON = PROJECT_ROOT / "deploy" / "grafana" / "callqa-dashboard.json"
API_KEY = "prometheus-test-key-0123456789abcdef"
CALL = "20261107-090628_2407982532"  # dead air
_METRIC_NAME = re.compile(r"\bcallqa_[a-z0-9_]+")


def _wait(url: str, *, what: str, log: Path, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(url, timeout=1.0, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what} not ready within {timeout_s} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, redis_url: str) -> Iterator[str]:
    """``callqa serve`` on a free port (temp store, quality off, a real Redis as the task broker so the
    queue gauges are exported); yields its base URL."""
    base = tmp_path_factory.mktemp("prom-api")
    config = base / "callqa.toml"
    config.write_text(f"[api]\nquality = false\nallowed_roots = [{json.dumps(str(corpus_dir))}]\n"
                      f"[queue]\nbroker_url = {json.dumps(redis_url)}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLQA_", "ANTHROPIC_"))}
    env.update({"CALLQA_CONFIG": str(config), "CALLQA_STORE": str(base / "store.db"), "CALLQA_DATA": str(base),
                "CALLQA_API_KEY": API_KEY})
    log = base / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port)], cwd=PROJECT_ROOT,
                                   env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(f"{url}/health", what="callqa serve", log=log, process=process)
        yield url
    finally:
        _stop(process)


def _scrape_config(api_url: str) -> str:
    """The shipped config aimed at the test server, scraping every second."""
    text = SHIPPED_CONFIG.read_text()
    target = api_url.removeprefix("http://")
    for old, new in (('"127.0.0.1:8084"', f'"{target}"'), ("scrape_interval: 15s", "scrape_interval: 1s"),
                     ("evaluation_interval: 15s", "evaluation_interval: 1s"), ("scrape_timeout: 5s", "scrape_timeout: 1s")):
        assert old in text, f"{old} not in {SHIPPED_CONFIG}: update the rewrite in this test"
        text = text.replace(old, new)
    return text


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, api: str) -> Iterator[str]:
    """Debian's Prometheus scraping the test API; yields its base URL."""
    if not PROMETHEUS.exists():
        message = f"{PROMETHEUS} is not installed (apt-get install prometheus; `make setup` does it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("prometheus")
    config = base / "prometheus.yml"
    config.write_text(_scrape_config(api))
    port = free_port()
    log = base / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(PROMETHEUS), f"--config.file={config}", f"--storage.tsdb.path={base / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=1h", "--log.level=warn"],
            cwd=base, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait(f"{url}/-/ready", what="prometheus", log=log, process=process)
        yield url
    finally:
        _stop(process)


def _query(prometheus: str, expr: str) -> dict:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10, trust_env=False)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]


def test_prometheus_scrapes_callqa_and_answers_a_callqa_query(api: str, prometheus: str, corpus_dir: Path) -> None:
    analysed = httpx.post(f"{api}/analyze", json={"path": str(corpus_dir / f"{CALL}-in.wav"), "quality": False},
                          headers={"X-API-Key": API_KEY}, timeout=120, trust_env=False)
    assert analysed.status_code == 200, analysed.text
    deadline = time.monotonic() + 30
    value, labels = None, {}
    while time.monotonic() < deadline:
        data = _query(prometheus, 'callqa_analyses_total{job="callqa-api",result="analysed"}')
        if data["result"] and float(data["result"][0]["value"][1]) >= 1:
            value = float(data["result"][0]["value"][1])
            labels = data["result"][0]["metric"]
            break
        time.sleep(0.5)
    assert value == 1.0, "Prometheus never saw the analysis"
    assert labels["service"] == "callqa"  # the static label of the shipped config
    up = _query(prometheus, 'up{job="callqa-api"}')["result"]
    assert [float(r["value"][1]) for r in up] == [1.0]
    findings = _query(prometheus, 'sum(callqa_findings_total{code="dead_air"})')["result"]
    assert findings and float(findings[0]["value"][1]) >= 1


def _grafana_expressions() -> list[tuple[str, str]]:
    dashboard = json.loads(GRAFANA_JSON.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def test_every_grafana_metric_exists_and_every_query_parses(api: str, prometheus: str) -> None:
    expressions = _grafana_expressions()
    assert len(expressions) >= 20
    used = {name for _, expr in expressions for name in _METRIC_NAME.findall(expr)}
    exposed = httpx.get(f"{api}/metrics", timeout=10, trust_env=False).text
    samples = {line.split("{", 1)[0].split(" ", 1)[0] for line in exposed.splitlines() if line and line[0] != "#"}
    missing = sorted(used - samples)
    assert not missing, f"the Grafana dashboard queries series callqa does not expose: {missing}"
    # the dashboard covers what the issue asks for: MOS, silence/dead air, one-way audio
    for needed in ("callqa_mos_bucket", "callqa_dead_air_seconds_sum", "callqa_silence_ratio_bucket",
                   "callqa_one_way_calls_total", "callqa_findings_total"):
        assert needed in used, needed
    for title, expr in expressions:
        assert "$" not in expr, (title, expr)  # no Grafana variables: the queries run as they are
        _query(prometheus, expr)  # Prometheus accepts (parses and evaluates) every panel query
