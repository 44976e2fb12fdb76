"""Store URLs and SQLAlchemy engines: SQLite by default, PostgreSQL when several machines share.

A store is named by a plain path (``data/callqa.db``), a ``sqlite:///`` URL or a
``postgresql://`` URL (the psycopg 3 driver is used). SQLite connections get WAL journaling
(readers never block the writer), foreign keys and a busy timeout, and their transactions are
begun by us rather than by the driver so that writers can take the write lock up front
(``BEGIN IMMEDIATE``): with several scanner processes writing one file, a deferred transaction
that later upgrades to a write lock can fail at once with "database is locked" instead of
waiting for the busy timeout.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from core.errors import StoreError

#: How long a SQLite connection waits for another writer before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Key of the PostgreSQL advisory lock serialising migrations between processes.
PG_MIGRATION_LOCK = 0x63616C6C  # "call"
_IMMEDIATE = "callqa_immediate"


def normalize_url(value: str | os.PathLike[str], *, create_dirs: bool = True) -> str:
    """Turn a store location into a SQLAlchemy URL string.

    Parameters
    ----------
    value : str or path-like
        A filesystem path (``data/callqa.db``, ``~/x.db``), a ``sqlite:///`` URL, or a
        ``postgresql://`` / ``postgres://`` / ``postgresql+psycopg://`` URL.
    create_dirs : bool
        Create the parent folders of a SQLite file.

    Returns
    -------
    str
        ``sqlite:////abs/path.db`` or ``postgresql+psycopg://...``.

    Raises
    ------
    StoreError
        An unsupported URL scheme (MySQL, ...) or a malformed URL.
    """
    raw = os.fspath(value).strip()
    if not raw:
        raise StoreError("empty store location (give a SQLite path or a postgresql:// URL)")
    if "://" not in raw:
        path = Path(raw).expanduser().resolve()
        if create_dirs:
            _make_parent(path)
        return f"sqlite:///{path}"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StoreError(f"malformed store URL {_redact(raw)!r}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        db = url.database or ""
        if db and db != ":memory:" and not db.startswith("file:"):
            path = Path(db).expanduser().resolve()
            if create_dirs:
                _make_parent(path)
            url = url.set(drivername="sqlite", database=str(path))
        return url.render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise StoreError(f"unsupported store URL scheme {url.drivername!r}: use a SQLite path or postgresql://")


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store folder {path.parent}: {exc.strerror}") from None


def _redact(raw: str) -> str:
    try:
        return make_url(raw).render_as_string(hide_password=True)
    except ArgumentError:
        return raw.split("@")[-1]


def redact_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***`` (for messages and logs)."""
    return _redact(str(url)) if isinstance(url, str) else url.render_as_string(hide_password=True)


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (None for other backends and in-memory databases)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    db = parsed.database
    if db.startswith("file:"):
        db = db[5:].split("?", 1)[0]
    return Path(db)


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """Create the engine for a normalised store URL (see :func:`normalize_url`).

    Parameters
    ----------
    url : str
        A URL returned by :func:`normalize_url`.
    read_only : bool
        SQLite: open the file with ``mode=ro`` (it must exist); PostgreSQL: every transaction
        is ``READ ONLY``.

    Raises
    ------
    StoreError
        A read-only SQLite store whose file does not exist.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, read_only=read_only)
    engine = create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if read_only:
        engine = engine.execution_options(postgresql_readonly=True)
    return engine


def _sqlite_engine(url: URL, *, read_only: bool) -> Engine:
    db = url.database or ":memory:"
    memory = db == ":memory:"
    kwargs: dict = {}
    if read_only and not memory:
        path = Path(db)
        if not path.is_file():
            raise StoreError(f"store {path} does not exist (run `callqa migrate` or a scan first)")
        kwargs = {"creator": lambda: connect_sqlite_readonly(path)}
    if memory:
        from sqlalchemy.pool import StaticPool

        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # pragma: no cover - exercised through every test
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see the module docstring)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if not read_only and not memory:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; WAL keeps it consistent
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False) and not read_only
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def connect_sqlite_readonly(path: Path, *, timeout_s: float = SQLITE_BUSY_TIMEOUT_MS / 1000) -> sqlite3.Connection:
    """A ``mode=ro`` connection to an existing SQLite file, also on a read-only filesystem.

    A WAL database opened read-only still needs its ``-shm`` file, which SQLite cannot create
    in a read-only folder ("unable to open database file"). Nobody can write such a store, so
    it is then opened ``immutable=1`` (no locking, no shared memory), which reads it as it is.

    Raises
    ------
    sqlite3.Error
        The file cannot be opened even so.
    """
    base = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(base, uri=True, timeout=timeout_s, check_same_thread=False)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the WAL index, if any
        return conn
    except sqlite3.OperationalError as exc:
        conn.close()
        if "unable to open" not in str(exc):
            raise
    return sqlite3.connect(base + "&immutable=1", uri=True, timeout=timeout_s, check_same_thread=False)


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success and rolled back on error.

    On SQLite the transaction takes the write lock at once (``BEGIN IMMEDIATE``), so concurrent
    writers queue on the busy timeout instead of failing.
    """
    with engine.connect() as conn:
        conn.execution_options(**{_IMMEDIATE: True})
        with conn.begin():
            yield conn


def check_connection(engine: Engine, *, display_url: str) -> None:
    """Open one connection and run ``SELECT 1``; raise :class:`StoreError` naming the store otherwise."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store {display_url}: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    """The first line of a driver error, without SQLAlchemy's background link."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return lines[0] if lines else type(orig).__name__
