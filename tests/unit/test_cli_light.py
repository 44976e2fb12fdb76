"""The CLI starts fast: importing it loads no heavy library (models load only when a command needs them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click

from core.cli import cli

HEAVY = ("torch", "onnxruntime", "scipy.signal", "pandas", "streamlit", "anthropic", "sqlalchemy", "paramiko",
         "numpy", "soundfile")
ROOT = Path(__file__).resolve().parents[2]


def test_importing_the_cli_loads_no_heavy_library():
    code = f"import sys, core.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
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


def test_analysing_a_two_leg_call_reads_no_store(tmp_path):
    """Without --agent or --save, a channel call's analysis opens no store (voiceprints are read
    only when the call turns out to be a mix), so SQLAlchemy stays unloaded."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(5)
    for leg in ("in", "out"):
        tone = 0.1 * np.sin(2 * np.pi * 440 * np.arange(8000 * 3) / 8000) + 0.01 * rng.standard_normal(8000 * 3)
        sf.write(tmp_path / f"20261201-100000_5551234567-{leg}.wav", tone.astype(np.float32), 8000, subtype="PCM_16")
    code = ("import sys, json\nfrom core.cli import main\n"
            f"rc = main(['analyze', {str(tmp_path / '20261201-100000_5551234567-in.wav')!r}, '--json', '--no-quality'])\n"
            "print(json.dumps({'rc': rc, 'sqlalchemy': 'sqlalchemy' in sys.modules}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**__import__("os").environ, "CALLQA_DATA": str(tmp_path / "data")})
    import json

    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last == {"rc": 0, "sqlalchemy": False}, out.stderr[-2000:]
    analysis = json.loads("\n".join(out.stdout.strip().splitlines()[:-1]))
    assert analysis["layout"] == "channel" and set(analysis["legs"]) == {"caller", "agent"}


def test_console_script_ends_analyze_quickly_with_all_its_output(tmp_path):
    """The console script skips the interpreter's teardown after a successful analyze
    (core.cli.run): the JSON must still arrive whole through a pipe, and errors keep their status."""
    import json
    import os

    import numpy as np
    import soundfile as sf

    script = Path(sys.executable).with_name("callqa")
    assert script.exists(), "the console script is installed by `make setup`"
    rng = np.random.default_rng(9)
    t = np.arange(8000 * 40) / 8000
    for leg in ("in", "out"):
        x = 0.2 * np.sin(2 * np.pi * 300 * t) * (np.sin(2 * np.pi * 0.3 * t) > 0) + 0.003 * rng.standard_normal(t.size)
        sf.write(tmp_path / f"20261201-110000_5559876543-{leg}.wav", x.astype(np.float32), 8000, subtype="PCM_16")
    env = {**os.environ, "CALLQA_DATA": str(tmp_path / "data")}
    out = subprocess.run([str(script), "analyze", str(tmp_path / "20261201-110000_5559876543-in.wav"), "--json"],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # complete: a truncated document would not parse
    assert set(doc["legs"]) == {"caller", "agent"} and out.stderr == ""
    bad = subprocess.run([str(script), "analyze", str(tmp_path / "missing-in.wav")], capture_output=True, text=True,
                         cwd=ROOT, env=env)
    assert bad.returncode != 0 and "callqa: error:" in bad.stderr
