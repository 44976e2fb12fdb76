"""Retrieving recordings: HTTP(S) from ``recording_log.location``, SFTP or local/NFS roots.

Every path or URL built from database values is validated first (:mod:`core.fetch.locations`);
fetched files are cached (:mod:`core.fetch.cache`). The entry point is
:func:`fetch_recording`.
"""

from __future__ import annotations

from core.fetch.service import (
    FetchedRecording,
    fetch_recording,
    fetch_vicidial_recording,
    items_from_vicidial_rows,
    recording_kind,
    resolve_vicidial_item,
    store_metadata,
    vicidial_item,
    vicidial_items,
)

__all__ = [
    "FetchedRecording",
    "fetch_recording",
    "fetch_vicidial_recording",
    "recording_kind",
    "items_from_vicidial_rows",
    "resolve_vicidial_item",
    "store_metadata",
    "vicidial_item",
    "vicidial_items",
]
