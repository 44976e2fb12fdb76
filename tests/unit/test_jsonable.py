"""One JSON conversion for database and pandas values."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd

from core.jsonable import call_records, json_value


def test_values():
    assert [json_value(v) for v in (None, pd.NaT, pd.NA, float("nan"), float("inf"), np.int64(3), np.float32(1.5),
                                    pd.Timestamp("2026-11-07 08:00"), datetime(2026, 1, 2, 3, 4, 5), date(2026, 1, 2),
                                    timedelta(seconds=65), Decimal("1.25"), b"caf\xc3\xa9", True, "x")] == [
        None, None, None, None, None, 3, 1.5, "2026-11-07 08:00:00", "2026-01-02 03:04:05", "2026-01-02",
        "0:01:05", 1.25, "café", True, "x"]


def test_call_records_split_finding_codes():
    frame = pd.DataFrame({"call_id": ["a", "b"], "finding_codes": ["echo,dead_air", None],
                          "mos_min": [2.5, np.nan], "call_time": pd.to_datetime(["2026-11-07 08:00", None])})
    assert call_records(frame) == [
        {"call_id": "a", "finding_codes": ["echo", "dead_air"], "mos_min": 2.5, "call_time": "2026-11-07 08:00:00"},
        {"call_id": "b", "finding_codes": [], "mos_min": None, "call_time": None},
    ]
