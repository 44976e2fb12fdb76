"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.demo_store import build_demo_data
from tests.support.postgres import pg_database, pg_url  # noqa: F401  (fixtures for every test)
from tests.support.redis_server import redis_url  # noqa: F401  (fixture for every test)
from tests.support.shared import PROJECT_ROOT, corpus_labels, require_shared


def pytest_configure(config: pytest.Config) -> None:
    """Keep tests out of the project's data/ folder: every test run gets its own data dir."""
    import os
    import tempfile

    if "CALLQA_DATA" not in os.environ:
        os.environ["CALLQA_DATA"] = tempfile.mkdtemp(prefix="callqa-test-data-")
    os.environ.pop("CALLQA_STORE", None)
    os.environ.pop("CALLQA_CONFIG", None)


@pytest.fixture(scope="session")
def project_root() -> Path:
    return PROJECT_ROOT


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """``../shared/corpus`` (fails under CI=true when absent, skips elsewhere)."""
    return require_shared("corpus")


@pytest.fixture(scope="session")
def labels() -> dict:
    return corpus_labels()


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    return require_shared("golden", "nisqa")


@pytest.fixture(scope="session")
def shared_models_dir() -> Path:
    return require_shared("models")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the full demo month, built and analysed once per session
    (``demo/recordings`` and ``demo/callqa.db``; fails under CI=true without the demo speech)."""
    return build_demo_data(tmp_path_factory.getbasetemp() / "demo-data")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator so synthetic signals are reproducible."""
    return np.random.default_rng(440)
