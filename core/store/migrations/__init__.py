"""Recorded schema migrations (Alembic), run from code: no ``alembic.ini`` is looked up.

Each migration is a file in ``versions/``; the applied one is recorded in the store's
``alembic_version`` table. :func:`upgrade` runs at start (``open_store(..., migrate=True)``) and
from ``callqa migrate``; it is one transaction that concurrent processes serialise on (SQLite
``BEGIN IMMEDIATE``, PostgreSQL advisory lock), so two scanners starting on a fresh store do not
both create the tables.

A new migration: change ``core/store/schema.py``, write ``versions/NNNN_<what>.py`` (the
``script.py.mako`` template; ``revision = "NNNN"``, ``down_revision`` = the previous one) and set
:data:`HEAD_REVISION` to it (a test checks it is Alembic's head). Alembic itself is imported
only when a store needs upgrading, so opening a current store stays cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from core.store.engine import PG_MIGRATION_LOCK, write_transaction

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
#: The newest migration in ``versions/``.
HEAD_REVISION = "0006"
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` built in Python, pointing at this folder."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The newest migration (:data:`HEAD_REVISION`)."""
    return HEAD_REVISION


def script_head() -> str | None:
    """The head as Alembic computes it from ``versions/`` (for the test that guards HEAD_REVISION)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(conn: Connection) -> str | None:
    """The migration recorded in the store (None for an empty database)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Apply every pending migration in one transaction.

    Returns
    -------
    tuple of (str or None, str)
        The revision before and after.
    """
    with write_transaction(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        before = current_revision(conn)
        if before != HEAD_REVISION:
            from alembic import command

            command.upgrade(alembic_config(conn), "head")
        return before, HEAD_REVISION
