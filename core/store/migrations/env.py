"""Alembic environment for the result store.

Run only through :func:`core.store.migrations.upgrade` (``callqa migrate``), which hands over an
open connection already inside a transaction in ``config.attributes["connection"]``: the whole
upgrade is one transaction, and concurrent processes wait for each other (SQLite write lock,
PostgreSQL advisory lock) instead of racing to create tables.
"""

from __future__ import annotations

from alembic import context

from core.store.schema import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the store migrations with `callqa migrate` (core.store.migrations.upgrade)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # ALTER TABLE through table copies on SQLite
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run `callqa migrate`")
run_migrations()
