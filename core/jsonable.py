"""Database and pandas values as plain JSON: one conversion for the CLI, the API and the chat tools."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def json_value(value: Any) -> Any:
    """One value as JSON: times as ``YYYY-MM-DD HH:MM:SS``, NULL/NaN/NaT/inf as None, bytes decoded."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, datetime):  # pandas.Timestamp is a datetime
        return None if value != value else value.strftime("%Y-%m-%d %H:%M:%S")  # NaT != NaT
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):  # numpy scalars
        return json_value(value.item())
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value if isinstance(value, (list, tuple, dict)) else str(value)


def json_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a DataFrame as JSON-ready dicts."""
    return [{str(k): json_value(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def call_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of :func:`core.store.queries.list_calls` as JSON, ``finding_codes`` as a list."""
    out = json_records(frame)
    for row in out:
        if "finding_codes" in row:
            row["finding_codes"] = [c for c in (row["finding_codes"] or "").split(",") if c]
    return out
