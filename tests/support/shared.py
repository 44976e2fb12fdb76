"""Locating ``../shared`` (corpus, golden outputs, models): fail in CI, skip with a reason elsewhere."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SHARED_DIR = Path(os.environ.get("CALLQA_SHARED", PROJECT_ROOT.parent / "shared"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_shared(*parts: str) -> Path:
    """Return ``../shared/<parts>``; fail under CI=true, skip with a reason otherwise."""
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        message = f"{path} not found: these tests need the shared corpus/golden data (set CALLQA_SHARED)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path


@cache
def _labels(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def corpus_labels() -> dict[str, Any]:
    """``labels.json`` of the corpus (read once)."""
    return _labels(str(require_shared("corpus", "labels.json")))


def corpus_calls() -> list[dict[str, Any]]:
    """The corpus calls as listed in labels.json, or [] when ../shared is absent (for parametrize)."""
    path = SHARED_DIR / "corpus" / "labels.json"
    if not path.exists():
        return []
    return list(_labels(str(path))["calls"])
