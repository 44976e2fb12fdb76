"""Every ``CallQAError`` as a readable message: a headline, the error's own line and what to do.

Pages call :func:`call_or_stop` / :func:`call_or_none` around ``core`` and ``ui.cached`` calls so
that an error becomes a message instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from core.errors import (
    AudioError,
    AudioNotFoundError,
    BudgetExceededError,
    CallNotFoundError,
    CallQAError,
    ConfigError,
    FetchError,
    LLMError,
    LLMNotConfiguredError,
    ModelUnavailableError,
    ParameterError,
    QueryRefusedError,
    StoreError,
    UnsafeLocationError,
    ViciDialError,
)

T = TypeVar("T")


#: (error class, level, headline, what to do) — first match wins, so subclasses come first.
ERROR_VIEWS: tuple[tuple[type[CallQAError], str, str, str], ...] = (
    (CallNotFoundError, "warning", "Call not found",
     "Check the link, or find the call in **Call lookup**."),
    (LLMNotConfiguredError, "info", "Claude is not configured",
     "Set `ANTHROPIC_API_KEY` in the environment or in `.streamlit/secrets.toml`."),
    (BudgetExceededError, "warning", "Today's Claude budget is used up",
     "Raise `[claude] daily_budget_usd` or try again tomorrow (UTC)."),
    (LLMError, "error", "The Claude request failed", "Try again in a moment."),
    (QueryRefusedError, "warning", "Query refused", "Only single read-only SELECT statements are allowed."),
    (ViciDialError, "error", "ViciDial lookup failed",
     "Check `[vicidial]` in callqa.toml (host, port, user) and the network. Stored results and recording "
     "folders still work."),
    (UnsafeLocationError, "error", "Recording location refused",
     "The recording's path or URL is not in `[recordings]` allowed_hosts / local_roots."),
    (FetchError, "error", "The recording could not be fetched", "Check `[recordings]` in callqa.toml."),
    (AudioNotFoundError, "error", "Recording not found", "The file was moved or deleted since it was analysed."),
    (AudioError, "error", "The recording cannot be analysed",
     "The file is damaged, truncated or not audio. Other calls are not affected."),
    (ModelUnavailableError, "error", "A model is unavailable",
     "Install the models with `make models` (or `python -m core.quality.manager install`)."),
    (StoreError, "error", "The result store is unavailable",
     "Check `CALLQA_STORE` / `[store] url`; `callqa migrate` upgrades an old store."),
    (ParameterError, "warning", "Invalid input", ""),
    (ConfigError, "error", "Configuration problem", "Fix callqa.toml, `.streamlit/secrets.toml` or the environment."),
    (CallQAError, "error", "Something went wrong", ""),
)


def describe_error(exc: CallQAError) -> tuple[str, str, str]:
    """``(level, headline, text)`` for an error: level is ``error``, ``warning`` or ``info``."""
    for cls, level, headline, hint in ERROR_VIEWS:
        if isinstance(exc, cls):
            message = str(exc).strip()
            text = f"{message[0].upper()}{message[1:]}" if message else headline
            if hint:
                text = f"{text}{'' if text.endswith(('.', '!', '?', ')')) else '.'}\n\n{hint}"
            return level, headline, text
    return "error", "Something went wrong", str(exc)


def show_error(exc: CallQAError) -> None:
    level, headline, text = describe_error(exc)
    render = {"error": st.error, "warning": st.warning, "info": st.info}[level]
    render(f"**{headline}** — {text}", icon={"error": ":material/error:", "warning": ":material/warning:",
                                              "info": ":material/info:"}[level])


def call_or_stop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``; on a callqa error show it and stop the page."""
    try:
        return fn(*args, **kwargs)
    except CallQAError as exc:
        show_error(exc)
        st.stop()
        raise  # unreachable: st.stop raises


def call_or_none(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """``fn(*args, **kwargs)``; on a callqa error show it and return None (the page goes on)."""
    try:
        return fn(*args, **kwargs)
    except CallQAError as exc:
        show_error(exc)
        return None
