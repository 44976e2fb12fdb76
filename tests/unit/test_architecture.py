"""The layering rules of docs/architecture.md, checked on the source tree.

- ``core`` never imports streamlit, ``ui`` or ``pages`` (every import statement of every module,
  also the ones inside functions; and importing every ``core`` module loads none of them);
- settings sections are read only through the one reader (``core.config.SettingsSection``);
- pages and ``ui`` spell no session-state or widget key: they come from ``ui.state``;
- no file of ``core``, ``ui`` or ``pages`` grows past 800 lines.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.shared import PROJECT_ROOT

FORBIDDEN_IN_CORE = ("streamlit", "ui", "pages")
MAX_LINES = 800


def sources(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (PROJECT_ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module an ``import`` or ``from ... import`` of ``path`` names (at any depth)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
    return out


def test_core_never_imports_the_app_layer():
    offenders = {}
    for path in sources("core"):
        bad = sorted(m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN_IN_CORE)
        if bad:
            offenders[str(path.relative_to(PROJECT_ROOT))] = bad
    assert not offenders, offenders


def test_importing_all_of_core_loads_no_app_module():
    script = (
        "import importlib, json, pkgutil, sys\n"
        "import core\n"
        "names = [m.name for m in pkgutil.walk_packages(core.__path__, 'core.')\n"
        "         if m.name != 'core.store.migrations.env']  # runs only inside alembic\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps([names, sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_IN_CORE!r})]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    names, loaded = json.loads(done.stdout.splitlines()[-1])
    assert "core.analysis_service" in names and "core.api.app" in names  # the walk saw the whole package
    assert loaded == []


def test_sections_are_read_only_through_the_settings_reader():
    offenders = []
    for path in sources("core", "ui", "pages"):
        if path == PROJECT_ROOT / "core" / "config.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "section":
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert not offenders, f"read settings with a SettingsSection, not Settings.section(): {offenders}"


def _literal_keys(path: Path) -> list[int]:
    """Lines of ``path`` that spell a widget or session-state key as a string literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        spelled: list[ast.AST] = []
        if isinstance(node, ast.Call):
            spelled += [kw.value for kw in node.keywords if kw.arg == "key"]
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "form" and node.args:
                spelled.append(node.args[0])  # st.form("key")
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "session_state":
            spelled.append(node.slice)
        for value in spelled:
            literal = isinstance(value, ast.Constant) and isinstance(value.value, str)
            fstring = isinstance(value, ast.JoinedStr) and isinstance(value.values[0], ast.Constant)
            if literal or fstring:
                found.append(node.lineno)
    return found


def test_pages_take_every_key_from_ui_state():
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{line}" for path in [*sources("pages", "ui"), PROJECT_ROOT / "app.py"]
                 if path.name != "state.py" for line in _literal_keys(path)]
    assert not offenders, f"use a constant of ui/state.py: {offenders}"


def test_the_key_check_notices_a_literal(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nst.text_input("x", key="page.x")\nst.session_state["page.y"] = 1\n'
                    'with st.form("page.form"):\n    st.button("b", key=f"page.{1}")\n'
                    'st.button("ok", key=KEY)\n')
    assert _literal_keys(page) == [2, 3, 4, 5]


@pytest.mark.parametrize("folder", ["core", "ui", "pages"])
def test_no_file_is_longer_than_800_lines(folder):
    long = {str(p.relative_to(PROJECT_ROOT)): n for p in sources(folder)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
