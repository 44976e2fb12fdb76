"""``[alerts]`` settings: the rules, the delivery channels, retries and the report's recipients.

::

    [alerts]
    dashboard_url = "https://callqa.example.com"   # links in alerts and reports
    webhook_url = ""          # or CALLQA_ALERTS_WEBHOOK_URL (Slack/Teams URLs are secrets)
    webhook_format = "slack"  # slack | teams | generic
    smtp_host = "smtp.example.com"
    smtp_user = "callqa"      # the password only from CALLQA_ALERTS_SMTP_PASSWORD
    email_from = "callqa@example.com"
    email_to = ["noc@example.com"]

    [[alerts.rules]]
    name = "carrier one-way audio"
    ...

Read by the common section reader (:class:`core.config.SettingsSection`): every key can be
overridden from the environment as ``CALLQA_ALERTS_<KEY>`` (lists comma-separated; ``rules`` as a
JSON array of tables). The SMTP password is read from the environment only; the webhook URL and
the password never appear in a message (:meth:`AlertSettings.describe_webhook`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit

from core.alerts.rules import DEFAULT_RULES, AlertRule, parse_rules
from core.config import Settings, SettingsSection
from core.errors import ConfigError

WEBHOOK_FORMATS = ("slack", "teams", "generic")


@dataclass(frozen=True)
class AlertSettings(SettingsSection):
    """The ``[alerts]`` section; build with :meth:`from_settings`.

    Attributes
    ----------
    enabled : bool
        Evaluate the rules at all (``callqa alerts check`` says so and does nothing when off).
    check_after_scan : bool
        ``callqa scan`` and ``callqa watch`` evaluate the rules when they have stored calls.
    default_rules : bool
        Without any ``[[alerts.rules]]``, evaluate :data:`core.alerts.rules.DEFAULT_RULES`.
    rules : tuple of AlertRule
        The configured rules (see :mod:`core.alerts.rules`).
    dashboard_url : str
        Base URL of the dashboard, for the link in every alert and report.
    webhook_url : str
        An http(s) incoming-webhook URL; empty = no webhook. Never shown.
    webhook_format : str
        ``slack`` (text + blocks), ``teams`` (an Adaptive Card message, which Teams workflows and
        Power Automate accept) or ``generic`` (every field of the alert as JSON).
    smtp_host, smtp_port, smtp_starttls, smtp_user, smtp_password, smtp_ca_file : str, int, bool, str, str, str
        E-mail: the relay, STARTTLS (required unless false; the certificate is verified against
        ``smtp_ca_file`` or the system store), the login (password from
        ``CALLQA_ALERTS_SMTP_PASSWORD`` only).
    email_from : str
        Sender address.
    email_to : tuple of str
        Alert recipients; empty = no alert e-mail.
    report_to : tuple of str
        Recipients of ``callqa report`` when no ``--to`` is given.
    timeout_s : float
        One delivery attempt (connect + send).
    retry_attempts : int
        Attempts per message and channel before it is given up (recorded as failed).
    retry_backoff_s, retry_backoff_max_s : float
        Wait before the second attempt, doubled per attempt, capped.
    delivery_budget_s : float
        Time one check (or the hook after a scan) spends delivering at most; what is left
        waits for the next check.
    """

    enabled: bool = True
    check_after_scan: bool = True
    default_rules: bool = True
    rules: tuple[AlertRule, ...] = ()
    dashboard_url: str = "http://127.0.0.1:8501"
    webhook_url: str = field(default="", repr=False)
    webhook_format: str = "generic"
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_ca_file: str = ""
    email_from: str = ""
    email_to: tuple[str, ...] = ()
    report_to: tuple[str, ...] = ()
    timeout_s: float = 10.0
    retry_attempts: int = 6
    retry_backoff_s: float = 30.0
    retry_backoff_max_s: float = 3600.0
    delivery_budget_s: float = 30.0

    SECTION: ClassVar[str] = "alerts"
    SECRETS: ClassVar[frozenset[str]] = frozenset({"webhook_url", "smtp_password"})
    #: Keys read from the environment only (``CALLQA_ALERTS_<KEY>``), refused in the file.
    ENV_ONLY: ClassVar[frozenset[str]] = frozenset({"smtp_password"})

    # --- construction (core.config.SettingsSection) -------------------------------------------
    @classmethod
    def _from_file(cls, values: dict[str, Any], settings: Settings) -> dict[str, Any]:
        """The file's table, refusing keys that belong in the environment (the SMTP password)."""
        for key in sorted(cls.ENV_ONLY & set(values)):
            raise ConfigError(f"[alerts] {key} must not be written in {settings.path or 'callqa.toml'}: "
                              f"set {cls.env_names(key)[0]} in the environment")
        return values

    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        """``rules`` checked rule by rule (:func:`core.alerts.rules.parse_rules`); the rest by type."""
        if name == "rules":
            return {name: parse_rules(value)}
        return super()._clean(name, value, default, label=label)

    def _validate(self) -> None:
        if self.webhook_format not in WEBHOOK_FORMATS:
            raise ConfigError(f"[alerts] webhook_format={self.webhook_format!r}; choose one of "
                              f"{', '.join(WEBHOOK_FORMATS)}")
        if self.webhook_url:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError("[alerts] webhook_url must be an http:// or https:// URL")
        if self.dashboard_url and urlsplit(self.dashboard_url).scheme not in ("http", "https"):
            raise ConfigError(f"[alerts] dashboard_url={self.dashboard_url!r} must be an http:// or https:// URL")
        if not 0 < self.smtp_port < 65536:
            raise ConfigError(f"[alerts] smtp_port={self.smtp_port} must be 1..65535")
        for name in ("timeout_s", "delivery_budget_s", "retry_backoff_max_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[alerts] {name}={getattr(self, name)!r} must be > 0")
        if self.retry_backoff_s < 0:
            raise ConfigError(f"[alerts] retry_backoff_s={self.retry_backoff_s!r} must be >= 0")
        if self.retry_attempts < 1:
            raise ConfigError(f"[alerts] retry_attempts={self.retry_attempts} must be at least 1")
        for address in (*self.email_to, *self.report_to, *((self.email_from,) if self.email_from else ())):
            if "@" not in address or any(c in address for c in " \r\n,<>"):
                raise ConfigError(f"[alerts] {address!r} is not an e-mail address")
        if self.email_to and not (self.smtp_host and self.email_from):
            raise ConfigError("[alerts] email_to needs smtp_host and email_from")

    # --- derived -----------------------------------------------------------------------------
    @property
    def active_rules(self) -> tuple[AlertRule, ...]:
        """The rules evaluated: the configured ones, else the defaults (unless turned off)."""
        if self.rules:
            return self.rules
        return DEFAULT_RULES if self.default_rules else ()

    @property
    def channels(self) -> tuple[str, ...]:
        """The configured push channels: ``webhook``, ``email``."""
        out = []
        if self.webhook_url:
            out.append("webhook")
        if self.email_to:
            out.append("email")
        return tuple(out)

    @property
    def email_configured(self) -> bool:
        return bool(self.smtp_host and self.email_from)

    def describe_webhook(self) -> str:
        """The webhook as it may be shown: scheme and host, never the path (it holds the token)."""
        if not self.webhook_url:
            return "(none)"
        parts = urlsplit(self.webhook_url)
        return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/… ({self.webhook_format})"
