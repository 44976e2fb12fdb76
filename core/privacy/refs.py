"""Opaque call references: what Claude reads instead of a call id.

A ViciDial call id is ``YYYYMMDD-HHMMSS_<customer phone>``. Every stored call gets a random
reference (``ref-`` and 16 hex digits, :func:`new_ref`) when it is first stored, kept in
``calls.ref``; prompts, tool results and batch requests name calls only by it. It is random, not
derived from the id, so nothing about the call can be computed back from it; the store maps it
back for the people allowed to see the id (:func:`reveal`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

REF_RE = re.compile(r"\bref-[0-9a-f]{16}\b")


def new_ref() -> str:
    """A fresh random reference, e.g. ``ref-3f9a0c1d7e2b4a65`` (64 bits: no collision in practice)."""
    return f"ref-{secrets.token_hex(8)}"


def is_ref(value: str) -> bool:
    """True when ``value`` is exactly a reference."""
    return bool(REF_RE.fullmatch(value or ""))


def reveal(text: str, refs: Mapping[str, str]) -> str:
    """``text`` with each known reference replaced by its call id.

    Parameters
    ----------
    text : str
        Model output (a summary, an answer).
    refs : mapping of str to str
        ``call_id -> ref`` (as :class:`core.privacy.redact.Redactor` collects them).
    """
    back = {ref: call_id for call_id, ref in refs.items()}
    return REF_RE.sub(lambda m: back.get(m.group(0), m.group(0)), text or "")
