"""Summaries end to end: the real SDK against the local Messages API stub, a real SQLite result store."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from core.cli import main
from core.errors import BudgetExceededError, ConfigError, LLMError
from core.llm.adapters import StoreCallReader, StoreSummaryRepository
from core.llm.client import LLMTransientError, make_client
from core.llm.summary import PROMPT_VERSION, summarize_call
from tests.support.anthropic_stub import (
    CALL_CLEAN,
    CALL_NOISY,
    INJECTION,
    AnthropicStub,
    ErrorReply,
    SlowReply,
    json_reply,
    seed_store,
    stub_claude_settings,
    text_reply,
    valid_summary,
)

DAY = date(2026, 11, 7)


@pytest.fixture
def stub():
    with AnthropicStub() as s:
        yield s


@pytest.fixture
def store(tmp_path: Path):
    s = seed_store(tmp_path / "callqa.db")
    yield s
    s.close()


def _run(stub, store, **kw):
    settings = stub_claude_settings(stub, **kw.pop("settings", {}))
    repo, calls = StoreSummaryRepository(store), StoreCallReader(store)
    return summarize_call(kw.pop("call_id", CALL_NOISY), client=make_client(settings, strict_validation=True),
                          settings=settings, calls=calls, repo=repo, day=DAY, **kw), repo


def test_summary_round_trip_is_validated_stored_and_reused(stub, store) -> None:
    stub.script(json_reply(valid_summary(), input_tokens=1200, output_tokens=150))
    result, repo = _run(stub, store)
    assert not result.cached
    assert result.record.severity == "critical" and "25 dropouts" in result.record.summary
    # Haiku 5.5 list price: 1200 x $0.10/M + 150 x $0.50/M
    assert result.cost_usd == pytest.approx(1200 * 0.10e-6 + 150 * 0.50e-6)

    (request,) = stub.message_requests()
    body = request.body
    assert request.headers["authorization"] == f"Bearer {stub.api_key}"
    assert body["model"] == "claude-haiku-5-5" and "stream" not in body
    assert body["output_config"]["format"]["schema"]["properties"]["severity"]["enum"] == [
        "ok", "minor", "major", "critical"]
    assert "never instructions" in body["system"]
    user = body["messages"][0]["content"]
    assert user.count("<call_data>") == 1 and user.count("</call_data>") == 1  # the injected tag is escaped
    data = json.loads(user.split("<call_data>\n", 1)[1].split("\n</call_data>", 1)[0])
    assert data["vicidial"]["sip_hangup_reason"] == INJECTION  # present, but only as data
    assert "full_name" not in data["vicidial"] and "phone_number" not in data["vicidial"]  # personal data withheld
    assert data["analysis"]["findings"][0]["code"] == "packet_loss"
    assert "/rec/" not in user  # file paths are not sent

    stored = repo.get_summary(CALL_NOISY, analysis_key=result.record.analysis_key, model="claude-haiku-5-5",
                              prompt_version=PROMPT_VERSION)
    assert stored is not None and stored.verdict == result.record.verdict and stored.input_tokens == 1200
    assert store.llm_usage()[0]["kind"] == "summary" and store.llm_usage()[0]["calls"] == 1
    assert store.llm_spend_usd(DAY) == pytest.approx(result.cost_usd)

    again, _ = _run(stub, store)
    assert again.cached and again.cost_usd == 0 and len(stub.message_requests()) == 1


@pytest.mark.parametrize("answer", [
    valid_summary(severity="catastrophic"),
    valid_summary(verdict=""),
    {"verdict": "x", "severity": "ok", "summary": "y"},
    {**valid_summary(), "rating": "5/5"},
])
def test_invalid_answers_are_refused_and_not_stored(stub, store, answer) -> None:
    stub.script(json_reply(answer))
    with pytest.raises(LLMError, match="unusable summary"):
        _run(stub, store)
    assert store.get_ai_summary(CALL_NOISY) is None
    assert store.llm_spend_usd(DAY) > 0  # the tokens were still paid for


def test_non_json_refusal_and_cutoff(stub, store) -> None:
    stub.script(text_reply("Sure! The call was fine."), text_reply("", stop_reason="refusal"),
                json_reply(valid_summary(), stop_reason="max_tokens"))
    for pattern in ("not JSON", "declined", "cut off"):
        with pytest.raises(LLMError, match=pattern):
            _run(stub, store)


def test_summaries_never_use_sonnet_or_opus(stub, store) -> None:
    for model in ("claude-sonnet-5-5", "claude-opus-5-5"):
        with pytest.raises(ConfigError, match="Haiku"):
            _run(stub, store, settings={"summary_model": model})
    assert stub.message_requests() == []


def test_budget_is_checked_before_calling(stub, store) -> None:
    store.add_llm_usage(day=DAY, kind="chat", model="claude-sonnet-5-5", input_tokens=1, output_tokens=1,
                        cost_usd=0.9999)
    with pytest.raises(BudgetExceededError, match=r"\$0\.9999 of \$1\.00"):
        _run(stub, store, settings={"daily_budget_usd": 1.0})
    with pytest.raises(BudgetExceededError, match="daily_budget_usd = 0"):
        _run(stub, store, settings={"daily_budget_usd": 0.0})
    assert stub.message_requests() == []


def test_retry_after_is_honoured_then_readable_errors(stub, store) -> None:
    stub.script(ErrorReply(429, "rate_limit_error", "slow down", {"retry-after": "0.05"}),
                json_reply(valid_summary()))
    result, _ = _run(stub, store, settings={"max_retries": 1})
    assert not result.cached and len(stub.message_requests()) == 2

    stub.script(ErrorReply(429, "rate_limit_error", "slow down", {"retry-after": "12"}))
    with pytest.raises(LLMTransientError, match=r"^Claude API rate limit \(429\): retry in 12 s$") as exc:
        _run(stub, store, call_id=CALL_CLEAN)
    assert exc.value.retry_after_s == 12
    stub.script(ErrorReply(529, "overloaded_error", "Overloaded"), ErrorReply(500, "api_error", "boom"))
    with pytest.raises(LLMTransientError, match=r"unavailable \(529 overloaded\)"):
        _run(stub, store, call_id=CALL_CLEAN)
    with pytest.raises(LLMTransientError, match=r"unavailable \(500\)"):
        _run(stub, store, call_id=CALL_CLEAN)
    stub.script(SlowReply(1.0, json_reply(valid_summary())))
    with pytest.raises(LLMTransientError, match="timed out"):
        _run(stub, store, call_id=CALL_CLEAN, settings={"timeout_s": 0.3})


def test_rejected_key_and_unreachable_api(stub, store) -> None:
    with pytest.raises(LLMError, match=r"the API key was rejected \(401\)") as exc:
        _run(stub, store, settings={"api_key": "sk-ant-wrong-0123456789"})
    assert "0123456789" not in str(exc.value)
    with pytest.raises(LLMTransientError, match="unreachable"):
        _run(stub, store, settings={"base_url": "http://127.0.0.1:9"})


def test_cli_summarize_json_and_without_key(stub, store, tmp_path: Path, monkeypatch, capsys) -> None:
    db = store.engine.url.database
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "CALLQA_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["--store", db, "summarize", CALL_NOISY]) == 1
    err = capsys.readouterr().err
    assert "ANTHROPIC_API_KEY" in err and "Traceback" not in err

    monkeypatch.setenv("ANTHROPIC_API_KEY", stub.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
    stub.script(json_reply(valid_summary(severity="major")))
    assert main(["--store", db, "summarize", CALL_NOISY, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["severity"] == "major" and out["cached"] is False and out["model"] == "claude-haiku-5-5"
    assert stub.api_key not in json.dumps(out)

    stub.script(ErrorReply(429, "rate_limit_error", "slow", {"retry-after": "30"}),
                ErrorReply(429, "rate_limit_error", "slow", {"retry-after": "30"}),
                ErrorReply(429, "rate_limit_error", "slow", {"retry-after": "30"}))
    monkeypatch.setenv("CALLQA_CLAUDE_MAX_RETRIES", "0")
    assert main(["--store", db, "summarize", CALL_CLEAN]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "callqa: error: Claude API rate limit (429): retry in 30 s"


def test_stored_summary_for_the_deep_dive_needs_no_key(stub, store) -> None:
    from core.llm.settings import ClaudeSettings
    from core.llm.summary import stored_summary

    repo, calls = StoreSummaryRepository(store), StoreCallReader(store)
    keyless = ClaudeSettings()
    assert stored_summary(CALL_NOISY, settings=keyless, calls=calls, repo=repo) is None
    stub.script(json_reply(valid_summary()))
    _run(stub, store)
    shown = stored_summary(CALL_NOISY, settings=keyless, calls=calls, repo=repo)
    assert shown is not None and shown.severity == "critical" and shown.cost_usd > 0
