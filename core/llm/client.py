"""The Anthropic client factory, SDK error translation, and usage/cost accounting.

Every call into the SDK goes through :func:`api_call` (or :func:`translate_error`), so a rate
limit, an overloaded API, a timeout or a refused key reaches the CLI and the dashboard as one
line such as ``Claude API rate limit (429): retry in 12 s``, never as a traceback, and never
with the API key in it. Costs are computed from the configured price table and checked
against the daily budget before a request is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import anthropic
import httpx2

from core.errors import BudgetExceededError, LLMError, LLMNotConfiguredError, LLMTransientError
from core.llm.settings import ClaudeSettings

if TYPE_CHECKING:
    from core.llm.ports import SummaryRepository

NOT_CONFIGURED = (
    "Claude is not configured: set ANTHROPIC_API_KEY (or api_key in the [claude] section of callqa.toml) "
    "to enable summaries, investigations and chat"
)
_MAX_DETAIL = 200


def make_client(settings: ClaudeSettings, *, strict_validation: bool = False) -> anthropic.Anthropic:
    """Build the SDK client from the settings.

    Parameters
    ----------
    settings : ClaudeSettings
        Must be :attr:`~ClaudeSettings.configured`.
    strict_validation : bool
        Validate every response against the SDK's types (tests use it to catch stub drift).

    Returns
    -------
    anthropic.Anthropic
        Thread-safe; share one per process (``st.cache_resource`` in the dashboard).

    Raises
    ------
    LLMNotConfiguredError
        No API key. The message says how to configure one.
    """
    if not settings.configured:
        raise LLMNotConfiguredError(NOT_CONFIGURED)
    timeout = httpx2.Timeout(settings.timeout_s, connect=settings.connect_timeout_s)
    kwargs: dict = {}
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    return anthropic.Anthropic(api_key=settings.api_key, timeout=timeout, max_retries=settings.max_retries,
                               _strict_response_validation=strict_validation, **kwargs)


def retry_after_s(headers) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, else ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _seconds(value: float) -> str:
    return f"{max(1, math.ceil(value))} s"


def _one_line(text: str | None, secret: str) -> str:
    if not text:
        return ""
    if secret:
        text = text.replace(secret, "***")
    text = re.sub(r"(sk-ant-[A-Za-z0-9_\-]{4})[A-Za-z0-9_\-]+", r"\1***", text)
    line = " ".join(text.split())
    return line[:_MAX_DETAIL] + ("..." if len(line) > _MAX_DETAIL else "")


def translate_error(exc: BaseException, *, settings: ClaudeSettings | None = None) -> LLMError:
    """Turn an SDK exception into a one-line :class:`LLMError` (or :class:`LLMTransientError`).

    Parameters
    ----------
    exc : BaseException
        Raised by the SDK (``anthropic.APIError`` and its subclasses, ``AnthropicError``).
    settings : ClaudeSettings, optional
        Used to scrub the key from any server-provided text and to name timeouts.

    Returns
    -------
    LLMError
        Never contains the API key.
    """
    secret = settings.api_key if settings else ""
    if isinstance(exc, LLMError):
        return exc
    if isinstance(exc, anthropic.APITimeoutError):
        limit = f" after {settings.timeout_s:g} s" if settings else ""
        return LLMTransientError(f"Claude API timed out{limit}: try again")
    if isinstance(exc, anthropic.APIConnectionError):
        where = settings.resolved_base_url if settings else "the Claude API"
        return LLMTransientError(f"Claude API unreachable at {where}: check the network and try again")
    if isinstance(exc, anthropic.APIStatusError):
        return _status_error(exc, secret)
    if isinstance(exc, anthropic.CredentialsError):
        return LLMNotConfiguredError(NOT_CONFIGURED)
    if isinstance(exc, anthropic.AnthropicError):
        return LLMError(f"Claude API error: {_one_line(str(exc), secret) or type(exc).__name__}")
    return LLMError(f"Claude call failed: {type(exc).__name__}")


def _status_error(exc: anthropic.APIStatusError, secret: str) -> LLMError:
    status = exc.status_code
    kind = exc.type or ""
    detail = _one_line(exc.api_message, secret)
    wait = retry_after_s(exc.response.headers if exc.response is not None else None)
    if kind == "overloaded_error" or status == 529:
        return LLMTransientError("Claude API unavailable (529 overloaded): try again in a minute", retry_after_s=wait)
    if status == 429 or kind == "rate_limit_error":
        hint = f"retry in {_seconds(wait)}" if wait is not None else "retry shortly"
        return LLMTransientError(f"Claude API rate limit (429): {hint}", retry_after_s=wait)
    if status == 401 or kind == "authentication_error":
        return LLMError("the API key was rejected (401): check ANTHROPIC_API_KEY or [claude] api_key")
    if status == 403 or kind == "permission_error":
        return LLMError(f"the API key may not use this model or feature (403){': ' + detail if detail else ''}")
    if status == 402 or kind == "billing_error":
        return LLMError("the Claude account has no credit left (402): check billing in the Console")
    if status == 404 or kind == "not_found_error":
        return LLMError(f"Claude API: not found (404){': ' + detail if detail else ''} (check the model ids in [claude])")
    if status == 413 or kind == "request_too_large":
        return LLMError("Claude API: the request is too large (413)")
    if status in (408, 504) or kind == "timeout_error":
        return LLMTransientError(f"Claude API timed out ({status}): try again", retry_after_s=wait)
    if status >= 500 or kind == "api_error":
        return LLMTransientError(f"Claude API unavailable ({status}): try again", retry_after_s=wait)
    return LLMError(f"Claude API refused the request ({status}){': ' + detail if detail else ''}")


@contextmanager
def api_call(settings: ClaudeSettings | None = None) -> Iterator[None]:
    """Translate any SDK error raised inside the block into an :class:`LLMError` (without chaining)."""
    try:
        yield
    except LLMError:
        raise
    except anthropic.AnthropicError as exc:
        raise translate_error(exc, settings=settings) from None


# --- usage accounting --------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one or more requests (``usage`` of a Message), for cost and the ``llm_usage`` table."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @classmethod
    def of(cls, usage: Any) -> TokenUsage:
        """From an SDK ``Usage`` (or None)."""
        if usage is None:
            return cls()
        return cls(
            input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            cache_creation_input_tokens=int(getattr(usage, "cache_creation_input_tokens", 0) or 0),
            cache_read_input_tokens=int(getattr(usage, "cache_read_input_tokens", 0) or 0),
        )

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def cost_usd(settings: ClaudeSettings, model: str, usage: TokenUsage, *, batch: bool = False) -> float:
    """What ``usage`` on ``model`` costs at the configured prices (``batch``: Message Batches discount).

    Raises
    ------
    ConfigError
        The model has no price.
    """
    price = settings.price(model)
    total = (usage.input_tokens * price.input_usd_per_mtok
             + usage.output_tokens * price.output_usd_per_mtok
             + usage.cache_creation_input_tokens * price.cache_write
             + usage.cache_read_input_tokens * price.cache_read) / 1_000_000
    if batch:
        total *= settings.batch_discount
    return round(total, 8)


def estimate_cost_usd(settings: ClaudeSettings, model: str, *, prompt_chars: int, max_tokens: int,
                      batch: bool = False) -> float:
    """A deliberately high estimate of one request, for the budget check before sending it.

    Input tokens are taken as one per three characters (above what current tokenizers produce
    for JSON) and output as the whole ``max_tokens``.
    """
    usage = TokenUsage(input_tokens=math.ceil(prompt_chars / 3), output_tokens=max_tokens)
    return cost_usd(settings, model, usage, batch=batch)


def today_utc() -> date:
    """The budget day (UTC)."""
    return datetime.now(UTC).date()


def ensure_budget(repo: SummaryRepository, settings: ClaudeSettings, *, estimate_usd: float,
                  day: date | None = None) -> None:
    """Refuse when today's recorded spend plus ``estimate_usd`` would pass the daily budget.

    Raises
    ------
    BudgetExceededError
        With what was spent and how to raise the cap.
    """
    day = day or today_utc()
    budget = settings.daily_budget_usd
    if budget <= 0:
        raise BudgetExceededError("Claude features are disabled by [claude] daily_budget_usd = 0")
    spent = repo.spend_usd(day)
    if spent + estimate_usd > budget:
        raise BudgetExceededError(
            f"Claude daily budget reached: ${spent:.4f} of ${budget:.2f} spent on {day.isoformat()} (UTC); "
            "raise [claude] daily_budget_usd or wait until tomorrow"
        )
