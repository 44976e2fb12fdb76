"""A real MariaDB for integration tests: use the one that answers, or start a private one.

Looks at ``CALLQA_TEST_MYSQL_HOST``/``_PORT``/``_USER``/``_PASSWORD`` (default
``127.0.0.1:3306`` as ``root`` with an empty password). When nothing answers there, a private
``mariadbd`` is started on a free 127.0.0.1 port with a temporary datadir made by
``mariadb-install-db``, and stopped when the test process exits. Tests get a throwaway
database per session (:func:`throwaway_database`), dropped afterwards.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql
import pytest

from tests.support.shared import in_ci

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"


@dataclass(frozen=True)
class MariaDBServer:
    """Where a usable server listens, with an account that may create databases."""

    host: str
    port: int
    user: str
    password: str = field(default="", repr=False)

    def connect(self, database: str | None = None, **kwargs: object) -> pymysql.connections.Connection:
        """An administrative (read-write) connection, for setting up fixtures."""
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               database=database, autocommit=True, connect_timeout=5, **kwargs)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(server: MariaDBServer) -> bool:
    try:
        server.connect().close()
        return True
    except pymysql.err.Error:
        return False


def _start_private() -> MariaDBServer:
    if not (os.path.exists(MARIADBD) and os.path.exists(INSTALL_DB)):
        raise RuntimeError("no MariaDB answers and mariadbd/mariadb-install-db are not installed")
    base = Path(tempfile.mkdtemp(prefix="callqa-mariadb-"))
    datadir = base / "data"
    user_args = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(
        [INSTALL_DB, "--no-defaults", f"--datadir={datadir}", "--auth-root-authentication-method=normal",
         "--skip-test-db", *user_args],
        check=True, capture_output=True, timeout=120,
    )
    port = free_port()
    log = base / "mariadbd.log"
    proc = subprocess.Popen(
        [MARIADBD, "--no-defaults", f"--datadir={datadir}", f"--port={port}", "--bind-address=127.0.0.1",
         f"--socket={base / 'mysqld.sock'}", f"--pid-file={base / 'mysqld.pid'}", f"--log-error={log}",
         "--skip-name-resolve", "--innodb-buffer-pool-size=16M", *user_args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)

    atexit.register(stop)
    server = MariaDBServer("127.0.0.1", port, "root", "")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mariadbd exited early; see {log}")
        if _answers(server):
            return server
        time.sleep(0.2)
    raise RuntimeError(f"mariadbd did not answer on 127.0.0.1:{port} within 30 s; see {log}")


_SERVER: MariaDBServer | None = None


def mariadb_server() -> MariaDBServer:
    """The MariaDB the tests use (found or started once per test process).

    Fails under CI=true when none can be had, skips with the reason elsewhere.
    """
    global _SERVER
    if _SERVER is not None:
        return _SERVER
    env = os.environ
    candidate = MariaDBServer(
        env.get("CALLQA_TEST_MYSQL_HOST", "127.0.0.1"),
        int(env.get("CALLQA_TEST_MYSQL_PORT", "3306")),
        env.get("CALLQA_TEST_MYSQL_USER", "root"),
        env.get("CALLQA_TEST_MYSQL_PASSWORD", ""),
    )
    if _answers(candidate):
        _SERVER = candidate
        return _SERVER
    try:
        _SERVER = _start_private()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        message = f"no MariaDB for the integration tests: {exc}"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return _SERVER


@contextmanager
def throwaway_database(server: MariaDBServer, *, prefix: str = "callqa_test") -> Iterator[str]:
    """Create an empty database with a unique name, yield its name, drop it afterwards."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb3 COLLATE utf8mb3_unicode_ci")
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()
