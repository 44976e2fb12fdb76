"""Read-only pymysql sessions to the ViciDial database, with driver errors translated.

Every session is opened with ``SET SESSION TRANSACTION READ ONLY`` (each autocommitted
statement is then a read-only transaction, so even an account with write grants cannot
change anything, and a replica with ``read_only=1`` is fine), a per-statement cap
(``max_statement_time`` on MariaDB, ``max_execution_time`` on MySQL) and socket timeouts.
pymysql errors become :class:`~core.errors.ViciDialError` with one-line messages that name
``host:port`` and never the password.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import Any

import pymysql
import pymysql.cursors

from core.errors import ViciDialError
from core.vicidial.settings import ViciDialSettings
from core.vicidial.sql import SchemaInfo, detect_schema

# MySQL/MariaDB error numbers used below (server: include/mysqld_error.h, client: errmsg.h).
ER_DBACCESS_DENIED = 1044
ER_ACCESS_DENIED = 1045
ER_BAD_DB = 1049
ER_TABLEACCESS_DENIED = 1142
ER_COLUMNACCESS_DENIED = 1143
ER_NO_SUCH_TABLE = 1146
ER_CANT_AGGREGATE_COLLATIONS = 1267
ER_CANT_AGGREGATE_NCOLLATIONS = 1271
ER_READ_ONLY_TRANSACTION = 1792
ER_STATEMENT_TIMEOUT_MARIADB = 1969
ER_QUERY_TIMEOUT_MYSQL = 3024
CR_CONN_HOST_ERROR = 2003
CR_SERVER_GONE = 2006
CR_SERVER_LOST = 2013


def _seconds(value: float) -> str:
    return f"{value:g}"


def _reason(text: str) -> str:
    """A short reason from a socket-level error text."""
    lowered = text.lower()
    if "timed out" in lowered:
        return "timed out"
    if "refused" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "nodename nor servname" in lowered or "getaddrinfo" in lowered:
        return "unknown host"
    if "no route" in lowered or "unreachable" in lowered:
        return "no route to host"
    if "ssl" in lowered or "certificate" in lowered:
        return f"TLS failed: {text}"
    return text


def translate_error(exc: BaseException, settings: ViciDialSettings, *, connecting: bool) -> ViciDialError:
    """Turn a pymysql/socket error into a one-line :class:`ViciDialError`.

    Parameters
    ----------
    exc : BaseException
        The driver error.
    settings : ViciDialSettings
        Gives the ``host:port``, user and timeouts named in the message.
    connecting : bool
        True while connecting (a lost connection then means the server never answered).
    """
    where = f"ViciDial {settings.address}"
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if code == ER_ACCESS_DENIED:
        return ViciDialError(f"{where}: access denied for user '{settings.user}'")
    if code == ER_DBACCESS_DENIED:
        return ViciDialError(f"{where}: user '{settings.user}' may not use database '{settings.database}'")
    if code == ER_BAD_DB:
        return ViciDialError(f"{where}: unknown database '{settings.database}'")
    if code == CR_CONN_HOST_ERROR or (connecting and code in (CR_SERVER_LOST, CR_SERVER_GONE)) or (
        connecting and isinstance(exc, OSError)
    ):
        reason = _reason(text)
        if reason == "timed out":
            reason = f"timed out after {_seconds(settings.connect_timeout_s)} s"
        return ViciDialError(f"{where}: unreachable ({reason})")
    if code in (CR_SERVER_LOST, CR_SERVER_GONE):
        if "timed out" in text.lower():
            return ViciDialError(
                f"{where}: no answer within the read timeout of {_seconds(settings.read_timeout_s)} s"
            )
        return ViciDialError(f"{where}: connection lost during a query")
    if code in (ER_STATEMENT_TIMEOUT_MARIADB, ER_QUERY_TIMEOUT_MYSQL):
        return ViciDialError(
            f"{where}: query stopped by the server after {_seconds(settings.max_statement_time_s)} s "
            "(max_statement_time); narrow the search, e.g. with a date range"
        )
    if code == ER_READ_ONLY_TRANSACTION:
        return ViciDialError(f"{where}: refused to write: the lookup session is read-only")
    if code in (ER_TABLEACCESS_DENIED, ER_COLUMNACCESS_DENIED):
        return ViciDialError(f"{where}: permission denied: {text}")
    if code == ER_NO_SUCH_TABLE:
        return ViciDialError(f"{where}: {text} (is '{settings.database}' a ViciDial database?)")
    if code in (ER_CANT_AGGREGATE_COLLATIONS, ER_CANT_AGGREGATE_NCOLLATIONS):
        return ViciDialError(f"{where}: {text} (set [vicidial] collation to the tables' collation)")
    if code is None:
        return ViciDialError(f"{where}: {text or type(exc).__name__}")
    return ViciDialError(f"{where}: query failed ({code}): {text}")


def _tls_context(settings: ViciDialSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=settings.tls_ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise ViciDialError(f"ViciDial {settings.address}: cannot read tls_ca {settings.tls_ca}: {exc}") from None
    if not settings.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ViciDialSession:
    """One open read-only connection and what was learnt about the schema.

    Use as a context manager, or call :meth:`close`. Queries go through :meth:`query`, which
    returns rows as dicts and raises :class:`ViciDialError` on failure.
    """

    def __init__(self, conn: pymysql.connections.Connection, settings: ViciDialSettings, *, flavor: str) -> None:
        self._conn = conn
        self.settings = settings
        self.flavor = flavor
        self._schema: SchemaInfo | None = None

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one statement and return its rows (``%s`` placeholders, pymysql quoting)."""
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, tuple(args))
                return list(cur.fetchall())
        except (pymysql.err.Error, OSError) as exc:
            raise translate_error(exc, self.settings, connecting=False) from None

    @property
    def schema(self) -> SchemaInfo:
        """Which ViciDial tables exist and the collation of ``recording_log.vicidial_id``."""
        if self._schema is None:
            self._schema = detect_schema(self.query, database=self.settings.database,
                                         collation=self.settings.collation,
                                         include_archive=self.settings.include_archive)
        return self._schema

    def close(self) -> None:
        try:
            self._conn.close()
        except pymysql.err.Error:
            pass  # already closed by the server

    def __enter__(self) -> ViciDialSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(settings: ViciDialSettings) -> ViciDialSession:
    """Open a read-only session to the ViciDial database.

    Parameters
    ----------
    settings : ViciDialSettings
        Connection target and limits; must be :attr:`~ViciDialSettings.configured`.

    Returns
    -------
    ViciDialSession
        Read-only (``SET SESSION TRANSACTION READ ONLY``), autocommit, with the statement
        time cap applied.

    Raises
    ------
    ViciDialError
        Unreachable server, refused credentials, unknown database, TLS failure.
    """
    if not settings.configured:
        raise ViciDialError("ViciDial is not configured: set [vicidial] host in callqa.toml or CALLQA_VICIDIAL_HOST")
    try:
        conn = pymysql.connect(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password,
            database=settings.database,
            charset=settings.charset,
            connect_timeout=settings.connect_timeout_s,
            # the server greeting is read with the read timeout: bound it by the connect timeout
            read_timeout=min(settings.connect_timeout_s, settings.read_timeout_s),
            write_timeout=settings.read_timeout_s,
            ssl=_tls_context(settings),
            autocommit=True,
            local_infile=False,
            cursorclass=pymysql.cursors.DictCursor,
        )
    except (TimeoutError, pymysql.err.Error, OSError) as exc:
        raise translate_error(exc, settings, connecting=True) from None
    # from now on queries may take read_timeout_s (pymysql re-applies _read_timeout before each read)
    conn._read_timeout = settings.read_timeout_s
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION READ ONLY")
            cur.execute("SELECT VERSION() AS v LIMIT 1")
            version = str(cur.fetchone()["v"])
            if "mariadb" in version.lower():
                cur.execute("SET SESSION max_statement_time = %s", (float(settings.max_statement_time_s),))
                flavor = "mariadb"
            else:
                cur.execute("SET SESSION max_execution_time = %s", (int(settings.max_statement_time_s * 1000),))
                flavor = "mysql"
    except (pymysql.err.Error, OSError) as exc:
        conn.close()
        raise translate_error(exc, settings, connecting=False) from None
    return ViciDialSession(conn, settings, flavor=flavor)
