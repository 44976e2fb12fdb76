"""Masking for people and files that need to tell calls apart but not read numbers.

Viewers, CSV exports of roles without ``see_personal`` and log lines get phone numbers with only
their last digits visible (``••••••••30``); a call id keeps its date and time
(``20261107-081637_••••••••30``), enough to find the call again with an analyst. Names in name
columns are dropped. Unlike :mod:`core.privacy.redact` (what Claude gets), masking keeps the
shape so a row still reads naturally.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from core.privacy.redact import CALL_ID_RE, EMAIL_RE, PERSONAL_COLUMNS, PHONE_RE

DOT = "•"
_DIGIT = re.compile(r"\d")
#: Columns shown to a viewer only masked (phone numbers, call ids, recording names).
MASKED_COLUMNS = PERSONAL_COLUMNS["phone_numbers"] | frozenset({"call_id"})
#: Columns a viewer never sees (names, addresses, emails).
HIDDEN_COLUMNS = PERSONAL_COLUMNS["names"] | PERSONAL_COLUMNS["addresses"] | PERSONAL_COLUMNS["emails"]


def mask_phone(value: Any, *, visible: int = 2) -> Any:
    """``3125551212`` as ``••••••••12``: every digit but the last ``visible`` replaced.

    Non-text values (None, numbers) are masked as their text; None stays None.
    """
    if value is None:
        return None
    text = str(value)
    digits = len(_DIGIT.findall(text))
    keep_from = digits - visible
    seen = 0
    out = []
    for ch in text:
        if ch.isdigit():
            out.append(ch if seen >= keep_from else DOT)
            seen += 1
        else:
            out.append(ch)
    return "".join(out)


def mask_call_id(call_id: Any, *, visible: int = 2) -> Any:
    """A call id with its phone part masked: ``20261107-081637_2496561430`` -> ``20261107-081637_••••••••30``.

    Ids of other shapes have their phone-like digit runs masked.
    """
    if call_id is None:
        return None
    return mask_text(str(call_id), visible=visible)


_UUID_RE = re.compile(r"(?<![0-9A-Za-z-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                      r"(?![0-9A-Za-z-])")


def mask_text(text: str, *, visible: int = 2) -> str:
    """``text`` with the number part of call ids, phone numbers and emails masked.

    UUIDs (task and request ids) are left whole: a last group of twelve decimal digits is not a
    phone number, and an operator needs the id to follow a task through the logs.
    """
    if not text:
        return text
    if _UUID_RE.search(text) is None:
        return _mask_plain(text, visible=visible)
    out, last = [], 0
    for m in _UUID_RE.finditer(text):
        out += [_mask_plain(text[last:m.start()], visible=visible), m.group(0)]
        last = m.end()
    out.append(_mask_plain(text[last:], visible=visible))
    return "".join(out)


def _mask_plain(text: str, *, visible: int) -> str:
    if not text:
        return text

    def call(m: re.Match[str]) -> str:
        head, _, number = m.group(1).partition("_")
        return f"{head}_{mask_phone(number, visible=visible)}"

    text = CALL_ID_RE.sub(call, text)
    text = PHONE_RE.sub(lambda m: mask_phone(m.group(0), visible=visible), text)
    return EMAIL_RE.sub(lambda m: DOT * 3 + "@" + m.group(0).rsplit("@", 1)[1], text)


def mask_record(row: dict[str, Any], *, visible: int = 2) -> dict[str, Any]:
    """One row (``column -> value``) as a viewer may see it: names gone, numbers masked."""
    out = {}
    for key, value in row.items():
        name = str(key).lower()
        if name in HIDDEN_COLUMNS:
            continue
        if name in MASKED_COLUMNS or isinstance(value, str):
            value = mask_text(str(value), visible=visible) if value is not None else None
        out[key] = value
    return out


def mask_frame(frame, *, visible: int = 2):
    """A pandas DataFrame as :func:`mask_record` masks rows (a copy; text columns masked,
    name/address/email columns dropped)."""
    from pandas.api.types import is_datetime64_any_dtype, is_numeric_dtype

    out = frame.drop(columns=[c for c in frame.columns if str(c).lower() in HIDDEN_COLUMNS])
    for column in out.columns:
        if not (is_numeric_dtype(out[column]) or is_datetime64_any_dtype(out[column])):
            out[column] = out[column].map(lambda v: mask_text(v, visible=visible) if isinstance(v, str) else v)
    return out


class MaskingFilter(logging.Filter):
    """A logging filter that masks phone numbers and call ids in every record it sees.

    The message template and each text argument are masked one by one, so formatters that
    unpack the arguments themselves (uvicorn's access log) keep working; exception text is
    left to the handler.
    """

    def __init__(self, *, visible: int = 2) -> None:
        super().__init__()
        self.visible = visible

    def _mask(self, value: Any) -> Any:
        return mask_text(value, visible=self.visible) if isinstance(value, str) else value

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._mask(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._mask(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: self._mask(v) for k, v in record.args.items()}
        return True


def install_log_masking(*, visible: int = 2) -> MaskingFilter:
    """Mask every log record of this process from now on (idempotent); return the filter used.

    Installed as the record factory, so records of every logger (callqa, uvicorn, celery) are
    masked when they are created, whatever handlers are configured later.
    """
    current = logging.getLogRecordFactory()
    installed = getattr(current, "masking_filter", None)
    if installed is not None:
        return installed
    shared = MaskingFilter(visible=visible)

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        shared.filter(record)
        return record

    factory.masking_filter = shared  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
    return shared
