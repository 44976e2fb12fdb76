"""Read-only access to a ViciDial database: settings, sessions and call/recording lookups.

Facts about the schema, the joins and the recording files are in
``../shared/docs/vicidial.md``; this package never writes to ViciDial.
"""

from __future__ import annotations

from core.vicidial.connection import ViciDialSession, connect
from core.vicidial.lookup import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    RESULT_COLUMNS,
    LookupFilters,
    call_context,
    get_recording,
    phone_candidates,
    recordings_since,
    search_recordings,
    to_records,
)
from core.vicidial.settings import RecordingAccess, ViciDialSettings

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "RESULT_COLUMNS",
    "LookupFilters",
    "RecordingAccess",
    "ViciDialSession",
    "ViciDialSettings",
    "call_context",
    "connect",
    "get_recording",
    "phone_candidates",
    "recordings_since",
    "search_recordings",
    "to_records",
]
