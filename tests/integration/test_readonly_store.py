"""A store on a read-only filesystem can still be read (issue #18, item 12).

The store folder is bind-mounted read-only in a private mount namespace (``unshare -m``: the
mount is visible to that one command only), then ``callqa calls`` and ``callqa show`` run on it.
SQLite cannot create the WAL index beside the file there; they used to fail with "unable to
open database file".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.config import AnalysisConfig
from core.pipeline import analyze_path
from core.store.store import open_store
from tests.support.shared import PROJECT_ROOT, in_ci
from tests.support.signals import write


def _read_only_runner() -> list[str]:
    """The command prefix that runs a shell with ``$1`` mounted read-only, or skip/fail."""
    unshare = shutil.which("unshare")
    reason = "unshare -m needs root (CAP_SYS_ADMIN) to bind-mount a folder read-only"
    if unshare and os.geteuid() == 0:
        probe = subprocess.run([unshare, "-m", "true"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return [unshare, "-m", "sh", "-c"]
        reason = f"unshare -m failed: {probe.stderr.decode(errors='replace').strip()}"
    if in_ci():
        pytest.fail(reason)
    pytest.skip(reason)


def test_calls_and_show_work_on_a_read_only_filesystem(tmp_path: Path) -> None:
    prefix = _read_only_runner()
    folder = tmp_path / "ro"
    folder.mkdir()
    t = np.arange(3 * 8000) / 8000
    rec = write(tmp_path / "20261205-101010_5557778888-all.wav",
                0.2 * np.sin(2 * np.pi * 220 * t) * (np.sin(2 * np.pi * 0.5 * t) > 0), sample_rate=8000)
    store = open_store(str(folder / "callqa.db"))
    analysis = analyze_path(rec, cfg=AnalysisConfig())
    store.save_analysis(analysis, cache_key="k" * 64, source_kind="folder", source_ref=str(rec))
    store.close()
    assert (folder / "callqa.db").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLQA_")}
    env["CALLQA_CONFIG"] = str(tmp_path / "none.toml")
    (tmp_path / "none.toml").write_text("")
    cli = f"{sys.executable} -m core.cli --store {folder / 'callqa.db'}"
    script = (f"mount --bind -o ro {folder} {folder} && touch {folder}/probe 2>/dev/null && echo WRITABLE; "
              f"{cli} calls --json && echo '<<>>' && {cli} show {analysis.call_id} --json")
    done = subprocess.run([*prefix, script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "WRITABLE" not in done.stdout  # the mount really was read-only
    listed, shown = done.stdout.split("<<>>")
    assert [c["call_id"] for c in json.loads(listed)] == [analysis.call_id]
    assert json.loads(shown)["call_id"] == analysis.call_id
    assert done.stderr == ""
    assert not (folder / "probe").exists()
