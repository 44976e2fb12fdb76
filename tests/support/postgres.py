"""A real PostgreSQL for the tests: the one on 127.0.0.1:5432, else one started here.

:func:`postgres_server` finds a server answering on 127.0.0.1:5432 (trust auth, user
``postgres`` or ``root``); when none does, it runs ``initdb`` + ``pg_ctl`` from
``/usr/lib/postgresql/*/bin`` in a temporary folder on a free port (as the ``postgres`` user
when the tests run as root, since PostgreSQL refuses to run as root) and stops it at exit.
:func:`throwaway_database` creates a database for one test session and drops it afterwards;
the ``pg_database`` / ``pg_url`` fixtures (import them into a test module) wrap both.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.support.shared import in_ci

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 5432
USERS = ("postgres", "root")


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    data_dir: Path | None = None  # set when started here

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=self.host, port=self.port, user=self.user, dbname=database,
                               autocommit=True, connect_timeout=3)


def _answering(host: str, port: int) -> PostgresServer | None:
    for user in USERS:
        try:
            with psycopg.connect(host=host, port=port, user=user, dbname="postgres", connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            return PostgresServer(host, port, user)
        except psycopg.Error:
            continue
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((DEFAULT_HOST, 0))
        return s.getsockname()[1]


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _start_server() -> PostgresServer | None:
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None
    data_dir = Path(tempfile.mkdtemp(prefix="callqa-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    try:
        subprocess.run([*prefix, initdb, "-D", str(data_dir / "db"), "-U", "postgres", "--auth=trust",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, pg_ctl, "-D", str(data_dir / "db"), "-l", str(data_dir / "log"), "-w",
                        "-o", f"-p {port} -k {data_dir} -c listen_addresses={DEFAULT_HOST} -c fsync=off",
                        "start"], check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError):
        shutil.rmtree(data_dir, ignore_errors=True)
        return None

    def stop() -> None:
        subprocess.run([*prefix, pg_ctl, "-D", str(data_dir / "db"), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)

    atexit.register(stop)
    for _ in range(50):
        server = _answering(DEFAULT_HOST, port)
        if server is not None:
            return PostgresServer(server.host, server.port, server.user, data_dir)
        time.sleep(0.1)
    return None


_SERVER: list[PostgresServer | None] = []


def postgres_server() -> PostgresServer | None:
    """The server to test against (found or started once per process), or None."""
    if not _SERVER:
        _SERVER.append(_answering(DEFAULT_HOST, DEFAULT_PORT) or _start_server())
    return _SERVER[0]


@contextmanager
def throwaway_database(server: PostgresServer, *, prefix: str = "callqa_test") -> Iterator[str]:
    """Create a uniquely named database, yield its ``postgresql://`` URL, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with server.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.url(name)
    finally:
        with server.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def throwaway_schema(server: PostgresServer, database_url: str) -> Iterator[str]:
    """A fresh schema in the database of ``database_url``; yields a URL whose search_path is that schema."""
    database = database_url.rsplit("/", 1)[1]
    schema = f"t_{uuid.uuid4().hex[:10]}"
    with server.connect(database) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{database_url}?options=-csearch_path%3D{schema}"
    finally:
        with server.connect(database) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="session")
def pg_database() -> Iterator[tuple[PostgresServer, str]]:
    """A throwaway database for the test session: (server, URL). Fails under CI=true without PostgreSQL."""
    server = postgres_server()
    if server is None:
        message = "no PostgreSQL on 127.0.0.1:5432 and none could be started (initdb/pg_ctl not found)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    with throwaway_database(server) as url:
        yield server, url


@pytest.fixture
def pg_url(pg_database: tuple[PostgresServer, str]) -> Iterator[str]:
    """A ``postgresql://`` store URL of a fresh, empty schema (dropped after the test)."""
    server, url = pg_database
    with throwaway_schema(server, url) as schema_url:
        yield schema_url
