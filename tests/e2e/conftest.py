"""Browser tests: ``streamlit run app.py`` on 127.0.0.1 against the scanned corpus, driven by
Playwright with Debian's Chromium (``/usr/bin/chromium``; ``playwright install`` is never run).

Without Chromium the tests are skipped, except under ``CI=true`` where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.corpus_store import FOREIGN_ENV, build_corpus_store
from tests.support.shared import PROJECT_ROOT, in_ci

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOTS = PROJECT_ROOT / "test-artifacts" / "screenshots"
STARTUP_S = 60.0
SOURCE_CALL = "20261107-090628_2407982532"  # the dead-air call of the corpus
NEW_CALL = "20261108-091500_5550001234"  # its copy under a name the store does not know


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch arguments, pointed at the system Chromium."""
    if not CHROMIUM.is_file():
        message = f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    return {**browser_context_args, "viewport": {"width": 1440, "height": 1000}}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except OSError:
        return False


@pytest.fixture(scope="session")
def new_recordings(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """A recording folder with one call that is not in the store (a renamed copy of a corpus call)."""
    folder = tmp_path_factory.mktemp("new-recordings")
    for role in ("in", "out"):
        shutil.copy(corpus_dir / f"{SOURCE_CALL}-{role}.wav", folder / f"{NEW_CALL}-{role}.wav")
    return folder


@contextlib.contextmanager
def serve_app(env: dict[str, str], log_path: Path) -> Iterator[str]:
    """``streamlit run server.py`` (the app with its sign-in and recording routes) on a free port of
    127.0.0.1 with ``env``; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    streamlit = Path(sys.executable).with_name("streamlit")
    command = [str(streamlit) if streamlit.exists() else shutil.which("streamlit") or "streamlit", "run", "server.py",
               "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
               "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with log_path.open("w") as log:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**env, "FORWARDED_ALLOW_IPS": ""}, stdout=log,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + STARTUP_S
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not start (exit {proc.poll()}):\n{log_path.read_text()[-3000:]}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, new_recordings: Path) -> Iterator[str]:
    """The dashboard served by ``streamlit run`` on a free port of 127.0.0.1, over the corpus store."""
    shared = build_corpus_store(tmp_path_factory.getbasetemp() / "corpus-store", corpus_dir)
    base = tmp_path_factory.mktemp("e2e")
    store = base / "callqa.db"
    shutil.copy(shared, store)  # the browser tests write to it (a call analysed on the spot)
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(CALLQA_STORE=str(store), CALLQA_DATA=str(base / "data"),
               CALLQA_DASHBOARD_FOLDERS=os.pathsep.join([str(corpus_dir), str(new_recordings)]))
    with serve_app(env, tmp_path_factory.getbasetemp() / "streamlit.log") as url:
        yield url


@pytest.fixture(scope="session")
def demo_app_url(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Iterator[str]:
    """The dashboard as ``make run`` starts it on a fresh machine: nothing configured, demo mode
    over the full demo month (``CALLQA_DATA`` holds ``demo/callqa.db`` and ``demo/recordings``)."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env["CALLQA_DATA"] = str(demo_data)
    with serve_app(env, tmp_path_factory.getbasetemp() / "streamlit-demo.log") as url:
        yield url


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def new_call(new_recordings: Path) -> tuple[str, Path]:
    """``(call_id, folder)`` of the call that is not in the store yet."""
    return NEW_CALL, new_recordings


#: Built-in accounts of :func:`accounts_app_url`: name -> role (one password for all).
ACCOUNTS = {"vera": "viewer", "ana": "analyst", "adam": "admin"}
ACCOUNT_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def accounts_store(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """A copy of the corpus store with the built-in accounts of :data:`ACCOUNTS` (sign-in required)."""
    from core.access.accounts import add_user
    from core.store import open_store

    shared = build_corpus_store(tmp_path_factory.getbasetemp() / "corpus-store", corpus_dir)
    store_path = tmp_path_factory.mktemp("e2e-accounts") / "callqa.db"
    shutil.copy(shared, store_path)
    with open_store(str(store_path)) as store:
        for name, role in ACCOUNTS.items():
            add_user(store, name, role=role, password=ACCOUNT_PASSWORD)
    return store_path


@pytest.fixture(scope="session")
def accounts_app_url(tmp_path_factory: pytest.TempPathFactory, accounts_store: Path, corpus_dir: Path) -> Iterator[str]:
    """The dashboard (``streamlit run server.py``) over :func:`accounts_store`: everyone signs in."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(CALLQA_STORE=str(accounts_store), CALLQA_DATA=str(accounts_store.parent / "data"),
               CALLQA_DASHBOARD_FOLDERS=str(corpus_dir))
    with serve_app(env, tmp_path_factory.getbasetemp() / "streamlit-accounts.log") as url:
        yield url


@pytest.fixture(scope="session")
def proxy_app_url(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[str]:
    """The dashboard in proxy mode: ``X-Forwarded-User`` from 127.0.0.1 names the user; ``ana`` is an
    analyst by ``[access.users]``, everyone else a viewer."""
    shared = build_corpus_store(tmp_path_factory.getbasetemp() / "corpus-store", corpus_dir)
    base = tmp_path_factory.mktemp("e2e-proxy")
    shutil.copy(shared, base / "callqa.db")
    config = base / "callqa.toml"
    config.write_text('[access]\nproxy_header = "X-Forwarded-User"\n\n[access.users]\nana = "analyst"\n')
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_ENV}
    env.update(CALLQA_CONFIG=str(config), CALLQA_STORE=str(base / "callqa.db"), CALLQA_DATA=str(base / "data"))
    with serve_app(env, tmp_path_factory.getbasetemp() / "streamlit-proxy.log") as url:
        yield url
