"""The HTTP API end to end: a real ``callqa serve`` (uvicorn) on 127.0.0.1 in a subprocess.

The server runs with a temporary SQLite store, ``CALLQA_API_KEY`` set, quality scoring off (the
tests are about the API, not NISQA), a throwaway ViciDial database on the local MariaDB, a
recording HTTP server over ``../shared/corpus`` and the Anthropic Messages API stub. Every
endpoint is exercised over real HTTP, including authentication failures, oversized and
malformed bodies, path confinement, and 20 concurrent analyses with the server's memory
measured from ``/proc``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.api.schemas import AnalysisDoc
from tests.support.anthropic_stub import AnthropicStub, json_reply, text_reply, valid_summary
from tests.support.http_server import RecordingServer, recording_server
from tests.support.mariadb import free_port
from tests.support.shared import PROJECT_ROOT, corpus_calls
from tests.support.vicidial_fixture import CORPUS_CHANNEL, CORPUS_FILENAMES, CORPUS_NOISY, vicidial_database

API_KEY = "callqa-test-key-6f1d2c9a8b7e4d3c2b1a0f9e8d7c6b5a"
CLEAN = "20261107-080000_9828963560"
NOISY = "20261107-081637_2496561430"
DEAD_AIR = "20261107-090628_2407982532"
INVESTIGATION = {
    "root_cause": "Packet loss on the carrier leg while the agent talked.",
    "narrative": "The caller leg lost speech in short holes across the call.",
    "evidence": [{"source": "analysis", "detail": "dropouts on the caller leg"}],
    "next_steps": ["Check the carrier's RTP statistics"],
    "confidence": "medium",
}
# Memory bound of the 20-request burst. Measured on this project (2 cores, quality off): the
# server holds ~250 MB after start-up and one analysis, ~360 MB after the earlier tests here
# (ViciDial, pandas, the Anthropic SDK loaded). The burst then peaks at +60..91 MB with
# [api] max_concurrency = 2 (two analyses' sample arrays and VAD buffers at a time), while the
# same 20 requests with 20 slots, i.e. without the limiter, peak at +300..324 MB. 150 MB of
# growth leaves room for allocator slack and still fails if the requests stop queueing; the
# absolute cap is the measured ~420 MB peak plus that margin.
BURST_GROWTH_MB = 150
ABSOLUTE_RSS_MB = 600


@dataclass
class ApiServer:
    """A running ``callqa serve`` subprocess."""

    process: subprocess.Popen
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, *, key: str | None = API_KEY, timeout: float = 120.0) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout, trust_env=False)

    def rss_mb(self, field: str = "VmRSS") -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise AssertionError(f"{field} not in /proc/{self.process.pid}/status")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(config: Path, base: Path, extra_env: dict[str, str]) -> ApiServer:
    """Start ``callqa serve`` on a free port and wait for /health (fails with the server log)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLQA_", "ANTHROPIC_"))}
    env.update({"CALLQA_CONFIG": str(config), "CALLQA_STORE": str(base / "store.db"),
                "CALLQA_DATA": str(base / "data"), "CALLQA_TMP": str(base / "data" / "tmp"), **extra_env})
    log_path = base / f"serve-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--host", "127.0.0.1", "--port",
                                    str(port)], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = ApiServer(process, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"callqa serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1.0, trust_env=False).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise AssertionError(f"callqa serve did not answer /health within 60 s:\n{server.log()}")


def stop_server(server: ApiServer) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)


@dataclass
class Env:
    server: ApiServer
    stub: AnthropicStub
    recordings: RecordingServer
    corpus: Path
    base: Path
    outside: Path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("api")
    allowed = base / "allowed"
    allowed.mkdir()
    outside = base / "outside"
    outside.mkdir()
    with AnthropicStub() as stub, vicidial_database() as vici, recording_server(corpus_dir) as rec:
        vs = vici.settings
        config = base / "callqa.toml"
        config.write_text(f"""
[api]
quality = false
docs = true
allowed_roots = [{json.dumps(str(corpus_dir))}, {json.dumps(str(allowed))}]
max_concurrency = 2
max_queue = 64

[vicidial]
host = {json.dumps(vs.host)}
port = {vs.port}
user = {json.dumps(vs.user)}
database = {json.dumps(vs.database)}

[recordings]
allowed_hosts = ["127.0.0.1"]
local_roots = [{json.dumps(str(corpus_dir))}]
cache_dir = {json.dumps(str(base / "fetch-cache"))}

[claude]
base_url = {json.dumps(stub.base_url)}
timeout_s = 10.0
max_retries = 0
""")
        server = start_server(config, base, {"CALLQA_API_KEY": API_KEY, "ANTHROPIC_API_KEY": stub.api_key,
                                             "CALLQA_VICIDIAL_PASSWORD": vs.password})
        try:
            yield Env(server, stub, rec, corpus_dir, base, outside)
        finally:
            stop_server(server)


@pytest.fixture(scope="module")
def api(env: Env) -> Iterator[httpx.Client]:
    with env.server.client() as client:
        yield client


def _corpus_file(env: Env, call_id: str, role: str = "in", ext: str = "wav") -> str:
    return str(env.corpus / f"{call_id}-{role}.{ext}")


def _error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    if kind is not None:
        assert body["error"]["type"] == kind, body
    assert "Traceback" not in response.text
    return body["error"]["message"]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, value = line.rsplit(" ", 1)
        metric, _, raw = sample.partition("{")
        got = ",".join(sorted(raw.rstrip("}").split(","))) if raw else ""
        if metric == name and got == want:
            return float(value)
    return 0.0


# --- health, auth, docs --------------------------------------------------------------------------
def test_health_and_metrics_need_no_key(env: Env) -> None:
    with env.server.client(key=None) as anon:
        health = anon.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert anon.head("/health").status_code == 200  # load balancers may probe with HEAD
        metrics = anon.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
        assert "callqa_analyses_total" in metrics.text


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/analyze", {"path": "/nowhere-in.wav"}),
    ("POST", "/ai-analyze", {"recording_id": 1}),
    ("POST", "/investigate", {"call_id": CLEAN}),
    ("POST", "/ask", {"question": "hello"}),
    ("GET", "/calls", None),
    ("GET", "/ready", None),
], ids=["analyze", "ai-analyze", "investigate", "ask", "calls", "ready"])
@pytest.mark.parametrize("key", [None, "wrong-key-0000000000000000", API_KEY[:-1]], ids=["missing", "wrong", "prefix"])
def test_every_protected_endpoint_refuses_missing_or_wrong_key(env: Env, method: str, path: str, body, key) -> None:
    with env.server.client(key=key) as client:
        response = client.request(method, path, json=body)
    _error(response, 401, "authentication")
    assert API_KEY not in response.text and not (key and key in response.text)


def test_auth_is_checked_before_the_body_is_parsed(env: Env) -> None:
    with env.server.client(key=None) as anon:
        response = anon.post("/analyze", content=b"{not json", headers={"content-type": "application/json"})
    _error(response, 401, "authentication")


def test_openapi_documents_endpoints_security_and_errors(env: Env) -> None:
    with env.server.client(key=None) as anon:
        spec = anon.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/ready", "/metrics", "/analyze", "/ai-analyze", "/investigate", "/ask", "/calls"):
        assert path in paths, path
    schemes = spec["components"]["securitySchemes"]
    (scheme,) = schemes.values()
    assert scheme == {**scheme, "type": "apiKey", "in": "header", "name": "X-API-Key"}
    analyze = paths["/analyze"]["post"]
    assert analyze["security"] and "security" not in paths["/health"]["get"]
    assert analyze["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/AnalyzeRequest")
    assert {"200", "401", "403", "404", "413", "422", "503"} <= set(analyze["responses"])
    assert analyze["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    request_schema = spec["components"]["schemas"]["AnalyzeRequest"]
    assert {"path", "url", "recording_id", "lookup", "layout", "quality"} <= set(request_schema["properties"])
    calls_params = {p["name"] for p in paths["/calls"]["get"]["parameters"]}
    assert {"source", "since", "until", "agent", "campaign", "phone", "uniqueid", "finding", "limit"} <= calls_params


# --- /ready ----------------------------------------------------------------------------------------
def test_ready_checks_store_weights_vicidial_and_claude(api: httpx.Client) -> None:
    response = api.get("/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    checks = {c["name"]: c for c in body["checks"]}
    assert body["status"] == "ready"
    assert checks["store"]["status"] == "ok" and "schema" in checks["store"]["detail"]
    assert checks["weights"]["status"] == "skipped"  # [api] quality = false in this server
    assert checks["vicidial"]["status"] == "ok" and "read-only" in checks["vicidial"]["detail"]
    assert checks["claude"]["status"] == "ok"


# --- /analyze --------------------------------------------------------------------------------------
def test_analyze_path_returns_the_cli_json_then_the_cached_copy(env: Env, api: httpx.Client) -> None:
    first = api.post("/analyze", json={"path": _corpus_file(env, DEAD_AIR), "quality": False})
    assert first.status_code == 200, first.text
    assert first.headers["x-callqa-cache"] == "miss"
    doc = first.json()
    AnalysisDoc.model_validate(doc)  # the documented response model matches the answer
    assert doc["call_id"] == DEAD_AIR and doc["layout"] == "channel" and set(doc["legs"]) == {"caller", "agent"}
    assert any(f["code"] == "dead_air" for f in doc["findings"])
    assert doc["quality_model"] is None and doc["legs"]["caller"]["quality"] is None
    second = api.post("/analyze", json={"path": _corpus_file(env, DEAD_AIR, "out")})
    assert second.status_code == 200 and second.headers["x-callqa-cache"] == "hit"
    assert second.json()["findings"] == doc["findings"]


def test_quality_cannot_be_requested_when_the_server_has_it_off(env: Env, api: httpx.Client) -> None:
    response = api.post("/analyze", json={"path": _corpus_file(env, CLEAN), "quality": True})
    assert "quality" in _error(response, 400, "config")


@pytest.mark.parametrize("size", [70_000, 1_000_000], ids=["just-over", "1MB"])
def test_oversized_body_is_413_before_parsing(api: httpx.Client, size: int) -> None:
    body = b'{"path": "' + b"a" * size + b'"}'
    message = _error(api.post("/analyze", content=body, headers={"content-type": "application/json"}), 413,
                     "body_too_large")
    assert "65536" in message


def test_oversized_chunked_body_is_413(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(20):
            yield b"x" * 8192
        yield b'"}'

    response = api.post("/ask", content=chunks(), headers={"content-type": "application/json"})
    _error(response, 413, "body_too_large")


@pytest.mark.parametrize("content,expected", [
    (b'{"path": ', "malformed JSON"),
    (b"[1, 2", "malformed JSON"),
    (b'{"path": "/a-in.wav", "recording_id": 5}', "exactly one of"),
    (b"{}", "exactly one of"),
    (b'{"path": "/a-in.wav", "colour": "red"}', "colour"),
    (b'{"recording_id": "many"}', "recording_id"),
    (b'{"lookup": {}}', "lookup needs at least one"),
    (b'{"path": "/a-in.wav", "layout": "quad"}', "layout"),
], ids=["truncated", "not-object", "two-sources", "no-source", "unknown-field", "bad-type", "empty-lookup",
        "bad-layout"])
def test_malformed_or_invalid_body_is_422(api: httpx.Client, content: bytes, expected: str) -> None:
    response = api.post("/analyze", content=content, headers={"content-type": "application/json"})
    assert expected in _error(response, 422, "validation")


def test_path_outside_the_allowed_roots_is_403(env: Env, api: httpx.Client) -> None:
    secret = env.outside / "20261107-000000_1-in.wav"
    secret.write_bytes(b"RIFF")
    message = _error(api.post("/analyze", json={"path": str(secret)}), 403, "path_not_allowed")
    assert "allowed_roots" in message and str(env.corpus) not in message  # roots are not disclosed
    _error(api.post("/analyze", json={"path": "/etc/passwd"}), 403, "path_not_allowed")
    # a symlink inside an allowed root that leads outside is refused too
    link = env.base / "allowed" / "20261107-000000_2-in.wav"
    link.symlink_to(secret)
    _error(api.post("/analyze", json={"path": str(link)}), 403, "path_not_allowed")
    # traversal out of a root
    _error(api.post("/analyze", json={"path": f"{env.corpus}/../../../etc/passwd"}), 403, "path_not_allowed")
    _error(api.post("/analyze", json={"path": "relative/x-in.wav"}), 400, "unsafe_location")


def test_unknown_recording_and_missing_file_are_404(env: Env, api: httpx.Client) -> None:
    message = _error(api.post("/analyze", json={"recording_id": 1, "quality": False}), 404, "call_not_found")
    assert "1" in message
    missing = env.corpus / "20261107-000000_0000000000-in.wav"
    _error(api.post("/analyze", json={"path": str(missing)}), 404, "audio_not_found")
    _error(api.post("/analyze", json={"lookup": {"uniqueid": "0000000000.00000"}}), 404, "call_not_found")


def test_analyze_by_recording_id_and_by_lookup_keys(api: httpx.Client) -> None:
    by_id = api.post("/analyze", json={"recording_id": CORPUS_CHANNEL})
    assert by_id.status_code == 200, by_id.text
    doc = by_id.json()
    assert doc["call_id"] == CORPUS_FILENAMES[CORPUS_CHANNEL] and doc["layout"] == "channel"
    by_lookup = api.post("/analyze", json={"lookup": {"lead_id": 3000002}})
    assert by_lookup.status_code == 200, by_lookup.text
    assert by_lookup.json()["call_id"] == CORPUS_FILENAMES[CORPUS_NOISY]
    ambiguous = api.post("/analyze", json={"lookup": {"campaign": "SALESOUT"}})
    assert "recordings" in _error(ambiguous, 400, "parameter")


def test_analyze_url_follows_the_fetch_rules(env: Env, api: httpx.Client) -> None:
    url = env.recordings.url(f"{NOISY}-all.mp3")
    response = api.post("/analyze", json={"url": url})
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["call_id"] == NOISY and doc["layout"] == "mixed"
    refused = api.post("/analyze", json={"url": f"http://192.0.2.10/RECORDINGS/{NOISY}-all.mp3"})
    assert "allowed_hosts" in _error(refused, 400, "unsafe_location")
    _error(api.post("/analyze", json={"url": "file:///etc/passwd"}), 400, "unsafe_location")


# --- /calls ----------------------------------------------------------------------------------------
def test_calls_lists_the_store_with_filters(env: Env, api: httpx.Client) -> None:
    for call in (CLEAN, DEAD_AIR):
        api.post("/analyze", json={"path": _corpus_file(env, call)}).raise_for_status()
    body = api.get("/calls", params={"limit": 50}).json()
    assert body["source"] == "store" and body["count"] == len(body["calls"]) and body["total"] >= body["count"] >= 1
    ids = {c["call_id"] for c in body["calls"]}
    assert CLEAN in ids and DEAD_AIR in ids
    row = next(c for c in body["calls"] if c["call_id"] == DEAD_AIR)
    assert "dead_air" in row["finding_codes"] and row["dead_air_s"] > 0
    only_dead_air = api.get("/calls", params={"finding": "dead_air"}).json()
    assert {c["call_id"] for c in only_dead_air["calls"]} == {DEAD_AIR}
    paged = api.get("/calls", params={"limit": 1, "order": "oldest"}).json()
    assert paged["count"] == 1 and paged["total"] == body["total"]
    _error(api.get("/calls", params={"since": "yesterday-ish"}), 422, "validation")
    _error(api.get("/calls", params={"phone": "3125551212"}), 400, "parameter")


def test_calls_searches_vicidial_with_the_lookup_filters(api: httpx.Client) -> None:
    body = api.get("/calls", params={"source": "vicidial", "lead_id": 3000002}).json()
    assert body["source"] == "vicidial" and body["total"] is None
    assert [c["recording_id"] for c in body["calls"]] == [CORPUS_NOISY]
    since = api.get("/calls", params={"source": "vicidial", "since": "2026-11-07T08:00:00",
                                      "until": "2026-11-07T09:00:00", "campaign": "SALESOUT"}).json()
    assert {CORPUS_CHANNEL, CORPUS_NOISY} <= {c["recording_id"] for c in since["calls"]}
    _error(api.get("/calls", params={"source": "vicidial", "min_mos": 3}), 400, "parameter")


# --- Claude endpoints (the Messages API stub) ------------------------------------------------------
def test_ai_analyze_adds_the_stored_summary(env: Env, api: httpx.Client) -> None:
    metrics_before = api.get("/metrics").text
    before = len(env.stub.message_requests())
    env.stub.script(json_reply(valid_summary(), input_tokens=900, output_tokens=120))
    response = api.post("/ai-analyze", json={"path": _corpus_file(env, NOISY)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["analysis"]["call_id"] == NOISY
    summary = body["summary"]
    assert summary["severity"] == "critical" and not summary["cached"] and summary["input_tokens"] == 900
    assert len(env.stub.message_requests()) == before + 1
    request = env.stub.message_requests()[-1]
    assert request.body["model"].startswith("claude-haiku")
    again = api.post("/ai-analyze", json={"path": _corpus_file(env, NOISY)}).json()
    assert again["analysis_cached"] and again["summary"]["cached"] and again["summary"]["verdict"] == summary["verdict"]
    assert len(env.stub.message_requests()) == before + 1  # nothing sent the second time
    metrics = api.get("/metrics").text
    for result in ("ok", "cached"):
        assert _metric(metrics, "callqa_llm_requests_total", kind="summary", result=result) == _metric(
            metrics_before, "callqa_llm_requests_total", kind="summary", result=result) + 1
    assert _metric(metrics, "callqa_llm_cost_usd_total", kind="summary") > _metric(
        metrics_before, "callqa_llm_cost_usd_total", kind="summary")
    assert _metric(metrics, "callqa_llm_tokens_total", kind="summary", direction="input") >= 900


def test_ai_analyze_maps_claude_failures(env: Env, api: httpx.Client) -> None:
    env.stub.script(text_reply("this is not JSON"))
    response = api.post("/ai-analyze", json={"path": _corpus_file(env, CLEAN), "force": True})
    message = _error(response, 502, "llm")
    assert env.stub.api_key not in message


def test_investigate_a_stored_call(env: Env, api: httpx.Client) -> None:
    api.post("/analyze", json={"path": _corpus_file(env, NOISY)})
    env.stub.script(json_reply(INVESTIGATION, input_tokens=3000, output_tokens=300))
    response = api.post("/investigate", json={"call_id": NOISY})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["call_id"] == NOISY and body["root_cause"] == INVESTIGATION["root_cause"]
    assert body["evidence"] == INVESTIGATION["evidence"] and body["input_tokens"] == 3000
    _error(api.post("/investigate", json={"call_id": "20991231-000000_0000000000"}), 404, "call_not_found")
    _error(api.post("/investigate", json={"call_id": "../etc/passwd"}), 422, "validation")


def test_ask_answers_one_question(env: Env, api: httpx.Client) -> None:
    env.stub.script(text_reply(f"Call {DEAD_AIR} had the longest dead air."))
    response = api.post("/ask", json={"question": "Which call had the most dead air?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert DEAD_AIR in body["answer"] and body["rounds"] == 1 and body["tools"] == []
    assert body["cost_usd"] > 0
    _error(api.post("/ask", json={"question": ""}), 422, "validation")


# --- concurrency and memory ------------------------------------------------------------------------
def test_twenty_concurrent_analyses_queue_and_memory_stays_bounded(env: Env, api: httpx.Client) -> None:
    calls = [c["call_id"] for c in corpus_calls()]
    assert len(calls) == 12
    # warm-up done by earlier tests (first analysis loads VAD); measure from here
    api.post("/analyze", json={"path": _corpus_file(env, calls[0])}).raise_for_status()
    baseline = env.server.rss_mb()
    try:  # reset the kernel's peak-RSS counter (VmHWM) so it measures only the burst
        Path(f"/proc/{env.server.process.pid}/clear_refs").write_text("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    # 20 fresh analyses: every corpus call under a new name (its -in/-out legs: the channel or
    # conference layout), and 8 of them again from the mp3 mix under a third name
    burst = env.base / "allowed" / "burst"
    burst.mkdir()
    requests = []
    for i, call in enumerate(calls):
        fresh = call.replace("20261107-", "20261109-", 1)
        for role in ("in", "out"):
            shutil.copyfile(_corpus_file(env, call, role), burst / f"{fresh}-{role}.wav")
        requests.append({"path": str(burst / f"{fresh}-in.wav")})
        if i < 8:
            mixed = call.replace("20261107-", "20261110-", 1)
            shutil.copyfile(_corpus_file(env, call, "all", "mp3"), burst / f"{mixed}-all.mp3")
            requests.append({"path": str(burst / f"{mixed}-all.mp3")})
    samples: list[float] = []
    waiting: list[float] = []
    inflight: list[float] = []
    done = threading.Event()

    def sample() -> None:
        with env.server.client(key=None, timeout=5) as anon:
            while not done.is_set():
                samples.append(env.server.rss_mb())
                text = anon.get("/metrics").text
                waiting.append(_metric(text, "callqa_queue_waiting"))
                inflight.append(_metric(text, "callqa_inflight_requests"))
                time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=20) as pool, env.server.client(timeout=300) as client:
            responses = list(pool.map(lambda body: client.post("/analyze", json=body), requests))
    finally:
        done.set()
        sampler.join(timeout=10)
    elapsed = time.monotonic() - started
    assert [r.status_code for r in responses] == [200] * 20, [r.text[:200] for r in responses if r.status_code != 200]
    assert [r.json()["call_id"] for r in responses] == [Path(b["path"]).name.rsplit("-", 1)[0] for b in requests]
    assert all(r.headers["x-callqa-cache"] == "miss" for r in responses)
    # they queued: never more than max_concurrency at once, and some waited
    assert max(inflight) <= 2 and max(waiting) >= 1, (max(inflight), max(waiting))
    peak = max([*samples, env.server.rss_mb("VmHWM") if hwm_reset else 0.0])
    print(f"\n20 analyses in {elapsed:.1f} s; RSS baseline {baseline:.0f} MB, peak {peak:.0f} MB "
          f"(+{peak - baseline:.0f} MB); max waiting {max(waiting):.0f}")
    assert peak - baseline < BURST_GROWTH_MB, (baseline, peak)
    assert peak < ABSOLUTE_RSS_MB, (baseline, peak)


def test_limiter_refuses_beyond_the_queue_with_retry_after() -> None:
    from core.api.app import WorkLimiter
    from core.api.metrics import ApiMetrics
    from core.errors import ServerBusyError

    async def scenario() -> list[object]:
        gate = threading.Event()
        limiter = WorkLimiter(slots=1, max_queue=1, timeout_s=5, retry_after_s=7, metrics=ApiMetrics())
        running = asyncio.ensure_future(limiter.run(gate.wait, 5))
        await asyncio.sleep(0.05)
        queued = asyncio.ensure_future(limiter.run(lambda: "queued ran"))
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusyError) as busy:
            await limiter.run(lambda: "never")
        assert busy.value.http_status == 503 and busy.value.retry_after_s == 7
        gate.set()
        results = await asyncio.gather(running, queued)
        impatient = WorkLimiter(slots=1, max_queue=5, timeout_s=0.1, retry_after_s=1, metrics=ApiMetrics())
        blocker = threading.Event()
        hold = asyncio.ensure_future(impatient.run(blocker.wait, 2))
        await asyncio.sleep(0.05)
        with pytest.raises(ServerBusyError, match="within"):
            await impatient.run(lambda: None)
        blocker.set()
        await hold
        limiter.close()
        impatient.close()
        return results

    # in a thread of its own: a browser test earlier in the session may leave an event loop running
    # in the main thread (Playwright's sync API), where asyncio.run() refuses to start
    out: list[object] = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(scenario())))
    worker.start()
    worker.join(timeout=30)
    assert out == [[True, "queued ran"]]


# --- metrics, logs, start-up rules -----------------------------------------------------------------
def test_metrics_count_analyses_failures_findings_and_requests(env: Env, api: httpx.Client) -> None:
    before = api.get("/metrics").text
    # a call the server has not seen: the dead-air corpus call under another name
    name = "20261108-090628_2407982532"
    for role in ("in", "out"):
        shutil.copyfile(_corpus_file(env, DEAD_AIR, role), env.base / "allowed" / f"{name}-{role}.wav")
    fresh = api.post("/analyze", json={"path": str(env.base / "allowed" / f"{name}-in.wav")})
    assert fresh.status_code == 200 and fresh.headers["x-callqa-cache"] == "miss"
    assert api.post("/analyze", json={"path": str(env.base / "allowed" / f"{name}-out.wav")}).status_code == 200
    api.post("/analyze", json={"path": str(env.base / "allowed" / "20261108-000000_1-in.wav")})
    with env.server.client(key=None) as anon:
        anon.post("/analyze", json={"path": "x"})
    api.post("/analyze", content=b"x" * 70_000, headers={"content-type": "application/json"})
    after = api.get("/metrics").text

    def delta(name: str, **labels: str) -> float:
        return _metric(after, name, **labels) - _metric(before, name, **labels)

    assert delta("callqa_analyses_total", result="analysed") == 1
    assert delta("callqa_analyses_total", result="cached") == 1 and delta("callqa_cache_hits_total") == 1
    assert delta("callqa_analyses_total", result="failed") == 1
    assert delta("callqa_analysis_failures_total", reason="audio_not_found") == 1
    dead_air = [f for f in fresh.json()["findings"] if f["code"] == "dead_air"]
    assert dead_air and sum(delta("callqa_findings_total", code="dead_air", severity=s)
                            for s in ("info", "warning", "critical")) == len(dead_air)
    assert delta("callqa_dead_air_calls_total") == 1 and delta("callqa_dead_air_seconds_count") == 1
    assert delta("callqa_dead_air_seconds_sum") == pytest.approx(sum(f["end_s"] - f["start_s"] for f in dead_air))
    assert delta("callqa_analysis_seconds_count") == 1
    assert delta("callqa_audio_seconds_total") == pytest.approx(fresh.json()["duration_s"], abs=0.01)
    assert delta("callqa_silence_ratio_count", leg="caller") == 1
    assert delta("callqa_http_requests_total", route="unauthenticated", status="401") == 1
    assert delta("callqa_http_requests_total", route="/analyze", status="413") == 1
    assert delta("callqa_http_requests_total", route="/analyze", status="200") == 2
    assert _metric(after, "callqa_inflight_requests") == 0 and _metric(after, "callqa_queue_waiting") == 0
    assert re.search(r'^callqa_build_info\{version="[^"]+"\} 1\.0$', after, re.MULTILINE)


def test_server_log_holds_no_secrets(env: Env) -> None:
    log = env.server.log()
    assert "Uvicorn running" in log or "Application startup complete" in log
    for secret in (API_KEY, env.stub.api_key):
        assert secret not in log
    assert "Traceback" not in log, log[log.find("Traceback") - 300:][:3000]


def test_serve_refuses_a_public_address_without_a_key(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLQA_")}
    env.update({"CALLQA_DATA": str(tmp_path), "CALLQA_STORE": str(tmp_path / "s.db")})
    done = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "without an API key" in done.stderr and "CALLQA_API_KEY" in done.stderr
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened
    short = subprocess.run([sys.executable, "-m", "core.cli", "serve", "--port", "1"], cwd=PROJECT_ROOT,
                           env={**env, "CALLQA_API_KEY": "tiny-k3y"}, capture_output=True, text=True, timeout=60)
    assert short.returncode == 2 and "shorter than 16" in short.stderr and "tiny-k3y" not in short.stderr


def test_an_agent_named_in_the_request_learns_and_names_the_sides_of_a_mix(env: Env, api: httpx.Client) -> None:
    labels = {c["condition"]: c for c in corpus_calls()}
    channel, mixed = labels["low_volume"], labels["clipping"]  # the same agent talker in both
    folder = env.base / "allowed" / "agent-6100"
    folder.mkdir()
    for role in ("in", "out"):  # a fresh call id: nothing stored under it yet
        shutil.copyfile(_corpus_file(env, channel["call_id"], role),
                        folder / f"20261111-090000_5550006100-{role}.wav")
    learned = api.post("/analyze", json={"path": str(folder / "20261111-090000_5550006100-in.wav"), "agent": "6100"})
    assert learned.status_code == 200, learned.text
    mix_folder = env.base / "allowed" / "agent-6100-mix"
    mix_folder.mkdir()
    shutil.copyfile(_corpus_file(env, mixed["call_id"], "all", "mp3"), mix_folder / "20261111-100000_5550006101-all.mp3")
    doc = api.post("/analyze", json={"path": str(mix_folder / "20261111-100000_5550006101-all.mp3"),
                                     "agent": "6100"}).json()
    assert doc["attribution"]["method"] == "voiceprint" and doc["attribution"]["agent_user"] == "6100"
    assert ("clipping", "agent") in {(f["code"], f["leg"]) for f in doc["findings"]}
    bad = api.post("/analyze", json={"path": str(mix_folder / "20261111-100000_5550006101-all.mp3"),
                                     "agent": "no spaces allowed"})
    assert bad.status_code == 422
