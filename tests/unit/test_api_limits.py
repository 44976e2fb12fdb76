"""The API's own limits, without a server: the work queue under a burst, log redaction, integer bounds."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from pydantic import ValidationError

from core.api.app import WorkLimiter
from core.api.metrics import ApiMetrics
from core.api.schemas import AnalyzeRequest, LookupKeys
from core.api.security import AccessLogRedactor, redact_target, secret_query_parameters
from core.errors import ServerBusyError


def _in_thread(coro_fn):
    out: list = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(coro_fn())))
    worker.start()
    worker.join(timeout=60)
    assert out, "the scenario did not finish"
    return out[0]


def test_a_burst_in_one_event_loop_turn_admits_slots_plus_queue() -> None:
    """30 requests arriving together: 2 run, 5 wait, 23 are refused at once (27 used to wait)."""

    async def scenario() -> tuple[int, int, float]:
        gate = threading.Event()
        metrics = ApiMetrics()
        limiter = WorkLimiter(slots=2, max_queue=5, timeout_s=30, retry_after_s=3, metrics=metrics)
        tasks = [asyncio.ensure_future(limiter.run(gate.wait, 10)) for _ in range(30)]
        await asyncio.sleep(0.2)
        waiting = metrics.waiting._value.get()
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        limiter.close()
        busy = sum(isinstance(r, ServerBusyError) for r in results)
        ran = sum(r is True for r in results)
        return busy, ran, waiting

    busy, ran, waiting = _in_thread(scenario)
    assert (busy, ran, waiting) == (23, 7, 5)


def test_slots_free_again_after_the_burst() -> None:
    async def scenario() -> list[object]:
        limiter = WorkLimiter(slots=1, max_queue=0, timeout_s=5, retry_after_s=1, metrics=ApiMetrics())
        first = await limiter.run(lambda: "a")
        second = await limiter.run(lambda: "b")
        limiter.close()
        return [first, second, limiter._admitted]

    assert _in_thread(scenario) == ["a", "b", 0]


@pytest.mark.parametrize("query,names", [
    ("api_key=abc", ["api_key"]), ("X-API-Key=abc", ["X-API-Key"]), ("limit=5&token=x", ["token"]),
    ("limit=5&offset=10", []), ("key=", ["key"]), ("apikey=1&password=2", ["apikey", "password"]),
])
def test_secret_query_parameters(query: str, names: list[str]) -> None:
    assert secret_query_parameters(query.encode()) == names


def test_access_log_redaction() -> None:
    assert redact_target("/analyze?api_key=SECRET", 401) == "/analyze?[query omitted]"
    assert redact_target("/calls?limit=5&token=SECRET", 200) == "/calls?limit=5&token=[redacted]"
    assert redact_target("/calls?limit=5", 200) == "/calls?limit=5"
    assert redact_target("/health", 200) == "/health"
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "POST", "/analyze?api_key=SECRET", "1.1", 400), None)
    AccessLogRedactor().filter(record)
    assert "SECRET" not in record.getMessage() and "[query omitted]" in record.getMessage()


@pytest.mark.parametrize("body", [{"recording_id": 2**70}, {"recording_id": -1}, {"lookup": {"lead_id": 2**64}}])
def test_integers_are_bounded(body: dict) -> None:
    with pytest.raises(ValidationError):
        AnalyzeRequest.model_validate(body)
    assert AnalyzeRequest.model_validate({"recording_id": 2**63 - 1}).recording_id == 2**63 - 1
    assert LookupKeys.model_validate({"lead_id": 5}).lead_id == 5
