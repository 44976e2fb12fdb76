"""The result store: analyses, errors and fleet data in SQLite (default) or PostgreSQL.

- :mod:`core.store.store` — :func:`open_store` and :class:`ResultStore` (write side, one call's JSON);
- :mod:`core.store.queries` — read models for the dashboard, returning DataFrames;
- :mod:`core.store.schema` — the tables; :mod:`core.store.migrations` — recorded Alembic migrations;
- :mod:`core.store.engine` — store URLs, SQLite pragmas, engines;
- :mod:`core.store.cachekey` — the content hash that decides whether a call needs analysing.

``core.store.queries`` is not imported here so that writers do not pay for pandas.
"""

from __future__ import annotations

from core.store.cachekey import cache_key
from core.store.store import ResultStore, open_store

__all__ = ["ResultStore", "cache_key", "open_store"]
