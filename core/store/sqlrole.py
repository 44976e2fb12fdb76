"""The PostgreSQL role the chat's SQL runs as: it may read the allow-listed tables and nothing else.

The validator (:func:`core.llm.guardrails.validate_select`) is the first layer; this is the
second, enforced by the database itself. :func:`ensure_sql_role` (run by ``callqa migrate``)
creates the ``NOLOGIN`` role :data:`SQL_ROLE` when missing, makes the store user a member of it,
and gives it ``USAGE`` on the store's schema and ``SELECT`` on exactly the allow-listed tables
of that schema (every other table of the schema is revoked), with a role-level
``statement_timeout``. :func:`core.llm.guardrails.run_postgres_readonly` then runs each statement
after ``SET LOCAL ROLE``, inside a ``READ ONLY`` transaction with its own ``statement_timeout``.

When the store user may not create roles (no ``CREATEROLE``), ``callqa migrate`` says so and
prints the statements for an administrator (:func:`setup_statements`); until they are run, the
chat's SQL runs as the store user behind the validator and the read-only transaction, and a
warning is logged once per process.

The system catalogs (``pg_catalog``, ``information_schema``) stay readable by every role, as
PostgreSQL grants them to PUBLIC; the validator refuses them by name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger("callqa.store")

#: Name of the role (cluster-wide; grants are per schema).
SQL_ROLE = "callqa_sql_reader"
#: Role-level cap; each statement also gets the chat's own ``[claude] sql_timeout_s``.
ROLE_STATEMENT_TIMEOUT = "30s"


@dataclass(frozen=True)
class RoleStatus:
    """What :func:`ensure_sql_role` did: ``ok`` (role ready) or not, and a one-line message."""

    ok: bool
    message: str


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def setup_statements(schema: str, tables: Iterable[str], store_user: str) -> list[str]:
    """The SQL an administrator runs to create the role by hand (what :func:`ensure_sql_role` runs)."""
    role = _ident(SQL_ROLE)
    out = [
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SQL_ROLE}') "
        f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$",
        f"ALTER ROLE {role} SET statement_timeout = '{ROLE_STATEMENT_TIMEOUT}'",
        f"GRANT {role} TO {_ident(store_user)}",
        f"GRANT USAGE ON SCHEMA {_ident(schema)} TO {role}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {_ident(schema)} FROM {role}",
    ]
    out += [f"GRANT SELECT ON {_ident(schema)}.{_ident(t)} TO {role}" for t in tables]
    return out


def ensure_sql_role(engine, tables: Iterable[str]) -> RoleStatus:
    """Create or update :data:`SQL_ROLE` for the store behind ``engine`` (PostgreSQL only).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store's engine (read-write).
    tables : iterable of str
        The tables the chat may read (``[claude] store_tables``); those missing from the
        schema are skipped.

    Returns
    -------
    RoleStatus
        Not ``ok`` when the store user lacks the privilege; the message then holds the
        statements to run as an administrator. SQLite stores need no role (``ok``).
    """
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    if engine.dialect.name != "postgresql":
        return RoleStatus(True, "SQLite store: the chat's SQL is confined by a read-only connection and an authorizer")
    wanted = [t.lower() for t in tables]
    with engine.connect() as conn:
        schema, user = conn.execute(text("SELECT current_schema(), current_user")).one()
        present = set(conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"))
                      .scalars())
    grant = [t for t in wanted if t in present]
    statements = setup_statements(schema, grant, user)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.exec_driver_sql(statement)
    except DBAPIError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        manual = "; ".join(statements)
        return RoleStatus(False, f"chat SQL role {SQL_ROLE} not set up ({first}); the chat's SQL runs as the store "
                                 f"user behind the validator and a read-only transaction. As an administrator, run: "
                                 f"{manual}")
    return RoleStatus(True, f"chat SQL role {SQL_ROLE}: SELECT on {len(grant)} table(s) of schema {schema}, "
                            f"statement_timeout {ROLE_STATEMENT_TIMEOUT}")


_WARNED: set[str] = set()


def usable_role(conn) -> str | None:
    """:data:`SQL_ROLE` when this connection's user may ``SET ROLE`` to it and it can use the schema.

    ``conn`` is a SQLAlchemy connection inside the transaction that will run the statement.
    Logs a warning once per schema when the role is not usable.
    """
    row = conn.exec_driver_sql(
        "SELECT current_schema(), CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(r)s) "
        "THEN pg_has_role(current_user, %(r)s, 'MEMBER') AND has_schema_privilege(%(r)s, current_schema(), 'USAGE') "
        "ELSE false END",
        {"r": SQL_ROLE},
    ).one()
    schema, ok = row[0], bool(row[1])
    if ok:
        return SQL_ROLE
    if schema not in _WARNED:
        _WARNED.add(schema)
        log.warning("the chat's SQL runs as the store user: role %s is missing or not granted for schema %s "
                    "(run `callqa migrate` as a user that may create roles)", SQL_ROLE, schema)
    return None
