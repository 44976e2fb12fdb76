"""Settings of the Claude features (``[claude]`` in ``callqa.toml`` plus the environment).

Model ids, prices and limits are configuration: the defaults below are the recommendations and
list prices of ``../shared/docs/claude-api.md`` (sections 1.2 and 1.3, checked 2026-11) and can
be overridden per deployment without a code change::

    [claude]
    summary_model = "claude-haiku-5-5"
    chat_model = "claude-sonnet-5-5"
    investigate_model = "claude-opus-5-5"
    daily_budget_usd = 5.0

    [claude.prices."claude-haiku-5-5"]
    input = 0.10     # USD per million input tokens
    output = 0.50    # USD per million output tokens

The API key is read from ``ANTHROPIC_API_KEY``, else from ``[claude] api_key``. The base URL is
``[claude] base_url`` when set, else whatever the SDK resolves (``ANTHROPIC_BASE_URL``, then
the public API). Every other value can be overridden with a ``CALLQA_CLAUDE_<KEY>`` variable (for
example ``CALLQA_CLAUDE_DAILY_BUDGET_USD``; lists comma-separated, ``prices`` as JSON). The key is kept out of ``repr``/``str`` and every
message; use :meth:`ClaudeSettings.describe` for anything shown to a person.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from core.config import SettingsSection, coerce_setting
from core.errors import ConfigError

SECTION = "claude"
DEFAULT_BASE_URL = "https://api.anthropic.com"

#: The result-store tables the chat may read with SQL (no claims, watermarks or batch bookkeeping).
DEFAULT_STORE_TABLES = (
    "calls", "tracks", "findings", "warnings", "silences", "speech_segments", "quality_windows",
    "ai_summaries", "analysis_errors", "llm_usage",
)
#: The ViciDial tables the chat may read with SQL: call and carrier logs only. ``vicidial_users``,
#: ``servers``, ``vicidial_list`` and ``system_settings`` hold passwords or customer data.
DEFAULT_VICIDIAL_TABLES = tuple(
    name
    for base in (
        "recording_log", "vicidial_log", "vicidial_closer_log", "vicidial_xfer_log", "vicidial_log_extended",
        "vicidial_carrier_log", "vicidial_dial_log", "call_log", "vicidial_did_log", "vicidial_agent_log",
    )
    for name in (base, f"{base}_archive")
) + ("recording_log_stereo", "routing_initiated_recordings", "vicidial_campaigns", "vicidial_inbound_groups",
     "vicidial_statuses", "vicidial_campaign_statuses")


@dataclass(frozen=True)
class ModelPrice:
    """List price of one model in USD per million tokens (first-party API, standard tier).

    Cache writes default to 1.25 x input and cache reads to 0.1 x input, the standard ratios
    (claude-api.md section 1.3).
    """

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cache_write_usd_per_mtok: float | None = None
    cache_read_usd_per_mtok: float | None = None

    @property
    def cache_write(self) -> float:
        return self.cache_write_usd_per_mtok if self.cache_write_usd_per_mtok is not None else 1.25 * self.input_usd_per_mtok

    @property
    def cache_read(self) -> float:
        return self.cache_read_usd_per_mtok if self.cache_read_usd_per_mtok is not None else 0.1 * self.input_usd_per_mtok


# claude-api.md section 1.3 (Haiku 5.5 at the <= 100k-token prompt tier, which covers our prompts)
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-haiku-5-5": ModelPrice(0.10, 0.50, 0.125, 0.01),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
    "claude-haiku-4-5-20251001": ModelPrice(1.0, 5.0),
    "claude-sonnet-5-5": ModelPrice(2.0, 10.0, 2.5, 0.20),
    "claude-sonnet-5": ModelPrice(2.0, 10.0, 2.5, 0.20),
    "claude-opus-5-5": ModelPrice(4.0, 20.0, 5.0, 0.20),
    "claude-opus-5": ModelPrice(5.0, 25.0, 6.25, 0.50),
}

_PRICE_KEYS = {"input": "input_usd_per_mtok", "output": "output_usd_per_mtok",
               "cache_write": "cache_write_usd_per_mtok", "cache_read": "cache_read_usd_per_mtok"}


@dataclass(frozen=True)
class ClaudeSettings(SettingsSection):
    """Everything the Claude features need; build with :meth:`from_settings`.

    Attributes
    ----------
    api_key : str
        The Anthropic API key; empty means the features are off (:attr:`configured`). Never
        shown in ``repr``/``str``.
    base_url : str
        ``[claude] base_url``; empty lets the SDK decide (``ANTHROPIC_BASE_URL``, then the
        public API).
    summary_model, chat_model, investigate_model : str
        Model ids per use. Summaries must use a Haiku model.
    prices : tuple of (str, ModelPrice)
        USD per million tokens for each model id (see :meth:`price`).
    batch_discount : float
        Fraction of the list price charged for Message Batches requests (0.5 = half price).
    daily_budget_usd : float
        Spending cap per UTC day over every Claude feature; 0 disables the features.
    max_tool_rounds : int
        Most model turns per chat question (tool calls plus the final answer).
    timeout_s, connect_timeout_s : float
        Whole-request and connect timeouts of one API request.
    max_retries : int
        SDK retries of 408/409/429/5xx/connection errors (with its backoff, honouring
        ``retry-after``).
    summary_max_tokens, investigate_max_tokens, chat_max_tokens : int
        Output caps per request.
    summary_effort : str
        ``output_config.effort`` for summaries (``low`` keeps Haiku cheap); empty = model default.
    sql_max_rows, sql_max_bytes : int
        Caps on one chat SQL result (rows fetched, bytes of JSON sent to the model).
    sql_timeout_s : float
        Statement timeout of one chat SQL query.
    store_tables, vicidial_tables : tuple of str
        The tables the chat's SQL tools may read.
    app_base_url : str
        Public base URL of the dashboard; links in model output pointing elsewhere are removed.
    batch_poll_s, batch_wait_s : float
        Poll interval and how long ``callqa summarize --batch`` waits for a batch.
    """

    api_key: str = field(default="", repr=False)
    base_url: str = ""
    summary_model: str = "claude-haiku-5-5"
    chat_model: str = "claude-sonnet-5-5"
    investigate_model: str = "claude-opus-5-5"
    prices: tuple[tuple[str, ModelPrice], ...] = tuple(DEFAULT_PRICES.items())
    batch_discount: float = 0.5
    daily_budget_usd: float = 5.0
    max_tool_rounds: int = 6
    timeout_s: float = 120.0
    connect_timeout_s: float = 5.0
    max_retries: int = 2
    summary_max_tokens: int = 1024
    investigate_max_tokens: int = 4096
    chat_max_tokens: int = 4096
    summary_effort: str = "low"
    sql_max_rows: int = 200
    sql_max_bytes: int = 60_000
    sql_timeout_s: float = 10.0
    store_tables: tuple[str, ...] = DEFAULT_STORE_TABLES
    vicidial_tables: tuple[str, ...] = DEFAULT_VICIDIAL_TABLES
    app_base_url: str = ""
    batch_poll_s: float = 30.0
    batch_wait_s: float = 3600.0

    SECTION: ClassVar[str] = SECTION
    ENV_ALIASES: ClassVar[dict[str, str]] = {"api_key": "ANTHROPIC_API_KEY"}
    SECRETS: ClassVar[frozenset[str]] = frozenset({"api_key"})

    def __str__(self) -> str:
        return repr(self)

    # --- derived ---------------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        """True when an API key is set (from ``ANTHROPIC_API_KEY`` or ``[claude] api_key``)."""
        return bool(self.api_key)

    @property
    def resolved_base_url(self) -> str:
        """The base URL requests go to, resolved as the SDK does (for display)."""
        return self.base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL

    def price(self, model: str) -> ModelPrice:
        """The price of ``model``.

        Raises
        ------
        ConfigError
            The model has no entry in the price table (add ``[claude.prices."<model>"]``).
        """
        for name, price in self.prices:
            if name == model:
                return price
        raise ConfigError(f'no price for model {model!r}: add [claude.prices."{model}"] input/output to callqa.toml')

    def describe(self) -> dict[str, Any]:
        """A display-safe view (no key): what the UI and ``doctor`` may show."""
        return {
            "configured": self.configured,
            "base_url": self.resolved_base_url,
            "summary_model": self.summary_model,
            "chat_model": self.chat_model,
            "investigate_model": self.investigate_model,
            "daily_budget_usd": self.daily_budget_usd,
            "max_tool_rounds": self.max_tool_rounds,
        }

    # --- construction (core.config.SettingsSection) -------------------------------------------
    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        """Strings stripped, table lists lower-case, the key never quoted, prices merged."""
        if name == "api_key":
            if not isinstance(value, str):
                raise ConfigError(f"[{SECTION}] api_key must be a string")
            return {name: value.strip()}
        if name == "prices":
            return {name: _prices(value)}
        if isinstance(default, bool) and not isinstance(value, (bool, str)):
            value = bool(value)
        out = coerce_setting(SECTION, name, value, default, label=label)
        if isinstance(default, tuple):
            return {name: tuple(v.strip().lower() for v in out if v.strip())}
        return {name: out.strip() if isinstance(out, str) else out}

    def _validate(self) -> None:
        for name in ("summary_model", "chat_model", "investigate_model"):
            if not getattr(self, name).strip():
                raise ConfigError(f"[{SECTION}] {name} is empty")
        if self.base_url and not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"[{SECTION}] base_url={self.base_url!r} must start with http:// or https://")
        if self.base_url.rstrip("/").endswith("/v1"):
            raise ConfigError(f"[{SECTION}] base_url must not end in /v1 (the SDK appends /v1/messages)")
        if not 0 < self.batch_discount <= 1:
            raise ConfigError(f"[{SECTION}] batch_discount={self.batch_discount} must be in (0, 1]")
        if self.daily_budget_usd < 0:
            raise ConfigError(f"[{SECTION}] daily_budget_usd={self.daily_budget_usd} must be >= 0")
        if self.max_retries < 0:
            raise ConfigError(f"[{SECTION}] max_retries={self.max_retries} must be >= 0")
        for name in ("max_tool_rounds", "summary_max_tokens", "investigate_max_tokens", "chat_max_tokens",
                     "sql_max_rows", "sql_max_bytes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"[{SECTION}] {name}={getattr(self, name)} must be >= 1")
        for name in ("timeout_s", "connect_timeout_s", "sql_timeout_s", "batch_poll_s", "batch_wait_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[{SECTION}] {name}={getattr(self, name)} must be > 0")
        if self.summary_effort not in ("", "low", "medium", "high", "xhigh", "max"):
            raise ConfigError(f"[{SECTION}] summary_effort={self.summary_effort!r} must be low, medium, high, xhigh or max")


def _prices(value: Any) -> tuple[tuple[str, ModelPrice], ...]:
    """Merge a ``[claude.prices]`` table over :data:`DEFAULT_PRICES`."""
    if not isinstance(value, Mapping):
        raise ConfigError(f'[{SECTION}.prices] must be a table of tables like [claude.prices."claude-haiku-5-5"]')
    merged = dict(DEFAULT_PRICES)
    for model, entry in value.items():
        if not isinstance(entry, Mapping):
            raise ConfigError(f'[{SECTION}.prices."{model}"] must be a table with input and output')
        unknown = sorted(set(entry) - set(_PRICE_KEYS))
        if unknown:
            raise ConfigError(f'unknown [{SECTION}.prices."{model}"] key(s): {", ".join(unknown)}')
        if "input" not in entry or "output" not in entry:
            raise ConfigError(f'[{SECTION}.prices."{model}"] needs both input and output (USD per million tokens)')
        kwargs = {}
        for key, attr in _PRICE_KEYS.items():
            if key in entry:
                try:
                    number = float(entry[key])
                except (TypeError, ValueError):
                    raise ConfigError(f'[{SECTION}.prices."{model}"] {key}={entry[key]!r} must be a number') from None
                if number < 0:
                    raise ConfigError(f'[{SECTION}.prices."{model}"] {key} must be >= 0')
                kwargs[attr] = number
        merged[str(model)] = ModelPrice(**kwargs)
    return tuple(merged.items())
