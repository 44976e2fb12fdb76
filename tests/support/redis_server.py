"""A real Redis for the queue tests: a private ``redis-server``, else the one on 127.0.0.1:6379.

A private server is preferred (when ``redis-server`` is installed) so the tests own every key,
including kombu's shared ``unacked`` hash, and can restart it: it runs on a free 127.0.0.1 port
with ``--save "" --appendonly no`` in a temporary folder and is stopped when the test process
exits. ``CALLQA_TEST_REDIS_URL`` points the tests at a given server instead. Under ``CI=true``
a missing Redis fails the tests; elsewhere they skip with the reason.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.support.shared import in_ci

DEFAULT_URL = "redis://127.0.0.1:6379/0"


@dataclass(frozen=True)
class RedisServer:
    """Where a usable Redis listens; ``process`` is set when started here."""

    host: str
    port: int
    db: int = 0
    process: subprocess.Popen | None = None
    folder: Path | None = None

    def url(self, db: int | None = None) -> str:
        return f"redis://{self.host}:{self.port}/{self.db if db is None else db}"

    def client(self, db: int | None = None) -> redis.Redis:
        return redis.Redis.from_url(self.url(db), socket_timeout=5, socket_connect_timeout=5)


def _answers(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, ValueError):
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> RedisServer | None:
    """Start a private ``redis-server`` on a free port (None when the binary is missing or fails)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    folder = Path(tempfile.mkdtemp(prefix="callqa-redis-"))
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"],
        stdout=(folder / "redis.log").open("w"), stderr=subprocess.STDOUT)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    server = RedisServer("127.0.0.1", port, process=process, folder=folder)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _answers(server.url()):
            return server
        if process.poll() is not None:
            break
        time.sleep(0.05)
    stop()
    return None


_SERVER: list[RedisServer | None] = []


def redis_server() -> RedisServer | None:
    """The Redis to test against (found or started once per process), or None."""
    if not _SERVER:
        server = None
        given = os.environ.get("CALLQA_TEST_REDIS_URL")
        if given:
            if _answers(given):
                client = redis.Redis.from_url(given)
                kw = client.connection_pool.connection_kwargs
                server = RedisServer(kw.get("host", "127.0.0.1"), int(kw.get("port", 6379)), int(kw.get("db", 0)))
                client.close()
        else:
            server = start_redis()
            if server is None and _answers(DEFAULT_URL):
                server = RedisServer("127.0.0.1", 6379, 0)
        _SERVER.append(server)
    return _SERVER[0]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis owned by the test session. Fails under CI=true without one, skips elsewhere."""
    server = redis_server()
    if server is None:
        message = "no Redis: redis-server is not installed and nothing answers on 127.0.0.1:6379"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return server.url()
