"""ClaudeSettings: config and environment, prices, limits, and the key never shown anywhere."""

from __future__ import annotations

import anthropic
import pytest

from core.config import Settings
from core.errors import ConfigError, LLMError, LLMNotConfiguredError
from core.llm.client import LLMTransientError, TokenUsage, cost_usd, make_client, translate_error
from core.llm.settings import DEFAULT_BASE_URL, ClaudeSettings, ModelPrice
from tests.support.anthropic_stub import AnthropicStub, ErrorReply, stub_claude_settings

SECRET = "sk-ant-api03-VERYSECRETKEYVALUE-1234567890"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE",
                 "CALLQA_CLAUDE_DAILY_BUDGET_USD", "CALLQA_CLAUDE_SUMMARY_MODEL"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_without_key_are_not_configured() -> None:
    s = ClaudeSettings.from_settings(Settings())
    assert not s.configured
    assert "haiku" in s.summary_model
    assert s.resolved_base_url == DEFAULT_BASE_URL
    with pytest.raises(LLMNotConfiguredError, match="ANTHROPIC_API_KEY"):
        make_client(s)


def test_key_from_environment_wins_over_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    s = ClaudeSettings.from_settings(Settings(raw={"claude": {"api_key": "sk-ant-from-config"}}))
    assert s.api_key == SECRET and s.configured
    s2 = ClaudeSettings.from_mapping({"api_key": "sk-ant-from-config"})
    assert s2.api_key == "sk-ant-from-config"


def test_key_never_in_repr_str_or_describe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    s = ClaudeSettings.from_settings(Settings())
    for text in (repr(s), str(s), str(s.describe()), f"{s}", repr([s])):
        assert SECRET not in text
        assert "VERYSECRET" not in text
    assert s.describe()["configured"] is True


def test_base_url_from_config_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    assert ClaudeSettings().resolved_base_url == "http://127.0.0.1:9"
    s = ClaudeSettings.from_mapping({"base_url": "http://127.0.0.1:8"})
    assert s.resolved_base_url == "http://127.0.0.1:8"
    with pytest.raises(ConfigError, match="/v1"):
        ClaudeSettings.from_mapping({"base_url": "https://api.anthropic.com/v1"})


def test_environment_overrides_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLQA_CLAUDE_DAILY_BUDGET_USD", "1.5")
    assert ClaudeSettings.from_settings(Settings()).daily_budget_usd == 1.5
    with pytest.raises(ConfigError, match="unknown"):
        ClaudeSettings.from_mapping({"temperature": 0.2})
    with pytest.raises(ConfigError, match="max_tool_rounds"):
        ClaudeSettings.from_mapping({"max_tool_rounds": 0})
    with pytest.raises(ConfigError, match="api_key must be a string") as err:
        ClaudeSettings.from_mapping({"api_key": 12345})
    assert "12345" not in str(err.value)


def test_prices_merge_and_cost() -> None:
    s = ClaudeSettings.from_mapping({"prices": {"claude-haiku-9": {"input": 0.2, "output": 1.0}}})
    assert s.price("claude-haiku-9") == ModelPrice(0.2, 1.0)
    assert s.price("claude-haiku-5-5").input_usd_per_mtok == 0.10  # defaults kept
    usage = TokenUsage(input_tokens=1_000_000, output_tokens=100_000)
    assert cost_usd(s, "claude-haiku-9", usage) == pytest.approx(0.2 + 0.1)
    assert cost_usd(s, "claude-haiku-9", usage, batch=True) == pytest.approx(0.15)
    with pytest.raises(ConfigError, match="no price"):
        s.price("claude-unknown")
    with pytest.raises(ConfigError, match="input and output"):
        ClaudeSettings.from_mapping({"prices": {"m": {"input": 1}}})


def test_api_errors_are_one_line_and_never_contain_the_key() -> None:
    with AnthropicStub(api_key=SECRET) as stub:
        settings = stub_claude_settings(stub)
        client = make_client(settings)
        stub.script(
            ErrorReply(429, "rate_limit_error", "slow down", {"retry-after": "12"}),
            ErrorReply(529, "overloaded_error", "Overloaded"),
            ErrorReply(400, "invalid_request_error", f"bad request for key {SECRET}"),
        )
        errors = []
        for _ in range(3):
            with pytest.raises(anthropic.APIStatusError) as exc:
                client.messages.create(model="claude-haiku-5-5", max_tokens=5, messages=[{"role": "user", "content": "x"}])
            errors.append(translate_error(exc.value, settings=settings))
        wrong = make_client(stub_claude_settings(stub, api_key="sk-ant-wrong-key-value"))
        with pytest.raises(anthropic.AuthenticationError) as exc:
            wrong.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}])
        errors.append(translate_error(exc.value, settings=settings))
    assert str(errors[0]) == "Claude API rate limit (429): retry in 12 s"
    assert isinstance(errors[0], LLMTransientError) and errors[0].retry_after_s == 12
    assert str(errors[1]).startswith("Claude API unavailable (529 overloaded)")
    assert str(errors[2]).startswith("Claude API refused the request (400)")
    assert str(errors[3]).startswith("the API key was rejected (401)")
    for err in errors:
        assert isinstance(err, LLMError)
        assert SECRET not in str(err) and SECRET not in repr(err) and "\n" not in str(err)
        assert "VERYSECRET" not in str(err)
