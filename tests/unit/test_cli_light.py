"""The CLI starts fast: importing it loads no heavy library (models load only when a command needs them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from core.cli import cli

HEAVY = ("torch", "onnxruntime", "scipy.signal", "pandas", "streamlit", "anthropic", "sqlalchemy", "paramiko")


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, core.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == ""


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, cmd in group.commands.items():
        out.append((prefix + name, cmd))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + name + " ")
    return out


def test_every_command_has_help_and_is_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, cmd in _commands(cli):
        assert (cmd.help or "").strip(), f"callqa {name} has no help text"
        assert f"callqa {name}" in readme, f"callqa {name} is not documented in README.md"
