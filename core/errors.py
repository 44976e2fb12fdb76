"""The one exception hierarchy of callqa.

Every error that reaches a user derives from :class:`CallQAError`. Adapters translate driver
exceptions (soundfile, pymysql, paramiko, httpx, sqlalchemy, anthropic) into these classes, so
the CLI can print one line and exit non-zero, the API can map them to HTTP statuses and the
dashboard can show a readable message. Messages name the object (file, host, call) and the
problem, and never contain secrets.
"""

from __future__ import annotations

import unicodedata

#: Characters that could break a one-line message or drive a terminal: C0/C1 controls (newline,
#: escape...), DEL, line/paragraph separators and the bidirectional overrides (Trojan Source).
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")


def escape_text(text: str) -> str:
    """``text`` with every control, separator or bidi character written as a visible escape.

    File names come from outside (a recording folder, a ViciDial row, an API request); a newline,
    an ANSI escape sequence or a right-to-left override in one must neither split the CLI's one
    error line nor reach the terminal as is. ``a\nb`` becomes ``a\\nb``, ESC becomes ``\\x1b``.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() and ch not in _BIDI:
            out.append(ch)
        elif ch == " ":
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif ord(ch) < 0x100:
            out.append(f"\\x{ord(ch):02x}")
        elif unicodedata.category(ch) in ("Zs",):  # visible as a blank: keep
            out.append(ch)
        else:
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
    return "".join(out)


class CallQAError(Exception):
    """Root of every callqa error. ``exit_code`` is what the CLI exits with.

    The message is escaped on construction (:func:`escape_text`): whatever file name or value
    it quotes, it stays one printable line in the CLI, the API, the dashboard and the store.
    """

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str) -> None:
        message = escape_text(str(message))
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# --- configuration and usage -------------------------------------------------------------
class ConfigError(CallQAError):
    """Invalid or missing configuration (file, environment, parameter values)."""

    exit_code = 2
    http_status = 400


class ParameterError(ConfigError):
    """A parameter value is out of range or malformed."""


# --- audio ---------------------------------------------------------------------------------
class AudioError(CallQAError):
    """Base for problems with recordings."""

    http_status = 422


class AudioNotFoundError(AudioError):
    """A recording path does not exist or cannot be read."""

    http_status = 404


class InvalidAudioError(AudioError):
    """A recording exists but cannot be decoded or is unusable (empty, truncated, too long...)."""


class LayoutError(AudioError):
    """The legs of a call cannot be resolved (missing leg, mismatched files, bad --layout)."""


# --- models --------------------------------------------------------------------------------
class ModelUnavailableError(CallQAError):
    """Model weights are missing, corrupt, or cannot be loaded."""

    http_status = 503


# --- storage -------------------------------------------------------------------------------
class StoreError(CallQAError):
    """The result store cannot be opened, migrated, read or written."""

    http_status = 503


class CallNotFoundError(CallQAError):
    """No call with the given identifier exists in the store or in ViciDial."""

    http_status = 404


# --- external systems ---------------------------------------------------------------------
class ViciDialError(CallQAError):
    """The ViciDial database is unreachable, refuses the credentials, or a query failed."""

    http_status = 502


class FetchError(CallQAError):
    """A recording could not be retrieved (HTTP, SFTP/SCP, local path)."""

    http_status = 502


class UnsafeLocationError(FetchError):
    """A path or URL built from database values was refused (traversal, unlisted host...)."""

    http_status = 400


class LLMError(CallQAError):
    """The Claude API failed, is not configured, or returned unusable output."""

    http_status = 502


class LLMTransientError(LLMError):
    """A temporary Claude API failure (429, 5xx, timeout): worth retrying, maybe after ``retry_after_s``."""

    http_status = 503
    retryable = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class LLMNotConfiguredError(LLMError):
    """No API key is configured."""

    http_status = 503


class BudgetExceededError(LLMError):
    """The configured daily spending budget for Claude calls is used up."""

    http_status = 429


class DeliveryError(CallQAError):
    """An alert or report could not be delivered (webhook, SMTP); retried with backoff."""

    http_status = 502


class QueryRefusedError(CallQAError):
    """A SQL statement from the chat tools was refused by the guardrails."""

    http_status = 400


class QueueError(CallQAError):
    """The task broker is unreachable or a task could not be enqueued."""

    http_status = 503


class ScanIncompleteError(CallQAError):
    """A batch ended with calls not analysed: some failed (exit status 3) or it was interrupted
    (128 + the signal number). Raised by the CLI after the report is printed."""

    def __init__(self, message: str, *, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class AuthenticationError(CallQAError):
    """An API request has no ``X-API-Key`` or a wrong one."""

    http_status = 401


class AccessDeniedError(CallQAError):
    """The signed-in user (or API key) lacks the role an action needs, or no one is signed in."""

    http_status = 403


class PathNotAllowedError(UnsafeLocationError):
    """A recording path given to the API lies outside ``[api] allowed_roots``."""

    http_status = 403


class ServerBusyError(CallQAError):
    """Every work slot is taken and the wait queue is full (or the wait took too long)."""

    http_status = 503

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
