"""AppTest fixtures: one store filled by scanning ``../shared/corpus`` (once per session, NISQA on),
the app pointed at it through the environment, and Streamlit's caches cleared around every test.

The corpus has no ViciDial metadata; the scan gives each call an agent, campaign, server and
carrier (fixed round-robin, :data:`CORPUS_METADATA`) so fleet grouping and drill-down have
something to group.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.support.corpus_store import FOREIGN_ENV, build_corpus_store
from tests.support.shared import PROJECT_ROOT

APP = str(PROJECT_ROOT / "app.py")
#: Generous: the first run imports pandas/altair/torch-free core; later runs take well under 1 s.
TIMEOUT_S = 30
@pytest.fixture(scope="session")
def corpus_store(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    """The corpus scanned into a SQLite store (shared with the browser tests)."""
    return build_corpus_store(tmp_path_factory.getbasetemp() / "corpus-store", corpus_dir)


@pytest.fixture(scope="session")
def app_env(tmp_path_factory: pytest.TempPathFactory, corpus_store: Path, corpus_dir: Path) -> dict[str, str]:
    """Environment of the app under test: the corpus store, a private data folder, the corpus and a
    scratch folder as recording folders."""
    scratch = tmp_path_factory.mktemp("recordings")
    return {"CALLQA_STORE": str(corpus_store), "CALLQA_DATA": str(tmp_path_factory.mktemp("data")),
            "CALLQA_DASHBOARD_FOLDERS": os.pathsep.join([str(corpus_dir), str(scratch)]),
            "SCRATCH": str(scratch)}


@pytest.fixture(autouse=True)
def _app_environment(monkeypatch: pytest.MonkeyPatch, app_env: dict[str, str]) -> Iterator[None]:
    """Point the app at the corpus store and clear Streamlit's process-wide caches around each test."""
    for name in FOREIGN_ENV:
        # set first, so the original (usually absent) value is restored even if the app sets it
        # (Streamlit exports root-level secrets to the environment)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    for name, value in app_env.items():
        if name != "SCRATCH":
            monkeypatch.setenv(name, value)
    monkeypatch.chdir(PROJECT_ROOT)  # no stray ./callqa.toml or secrets from elsewhere
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def scratch(app_env: dict[str, str]) -> Iterator[Path]:
    """An allowed recording folder, emptied after the test."""
    path = Path(app_env["SCRATCH"])
    yield path
    for child in path.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


@pytest.fixture
def empty_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app at a new, empty store."""
    path = tmp_path / "empty.db"
    monkeypatch.setenv("CALLQA_STORE", str(path))
    return path


@pytest.fixture
def call_ids(corpus_store: Path) -> list[str]:
    """Stored call ids, newest first."""
    from core.store import open_store
    from core.store.queries import list_calls

    with open_store(str(corpus_store), read_only=True) as store:
        return list(list_calls(store, limit=None)["call_id"])


def new_app() -> AppTest:
    """A fresh AppTest of the entrypoint (not run yet)."""
    return AppTest.from_file(APP, default_timeout=TIMEOUT_S)


@pytest.fixture
def make_app():
    """``make_app()``: a fresh, not yet run AppTest of the entrypoint (to set secrets first)."""
    return new_app


@pytest.fixture
def open_page():
    """``open_page(page, **query)``: run the app, then show ``page`` (``pages/x.py``); with query
    parameters the app is opened on them instead (a deep link)."""

    def run(page: str = "pages/overview.py", **query: str) -> AppTest:
        at = new_app()
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        if page != "pages/overview.py" and not query:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return run


def rendered_text(at: AppTest) -> str:
    """Everything the app rendered (every element's protobuf as text), to search for leaks."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


@pytest.fixture
def all_text():
    """``all_text(at)``: see :func:`rendered_text`."""
    return rendered_text


@pytest.fixture
def select_row():
    """``select_row(at, key, row)``: click row ``row`` of the selectable table ``key`` and rerun."""

    def click(at: AppTest, key: str, row: int) -> AppTest:
        at.session_state[key] = {"selection": {"rows": [row], "columns": [], "cells": []}}
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return click
