"""What every process that analyses calls shares: its identity as a claim owner and its temporary folders.

- **Claim owners** (``claims`` table): ``host/pid/start-token``. The start token (the process's
  start time since boot) tells a reused pid from the original, so the claims of a scanner or
  worker that died on this machine can be dropped at once (:func:`release_dead_claims`).
- **Temporary folders** live under ``Settings.tmp_dir``: one per run or worker process
  (:func:`make_run_dir`, named after the process so :func:`cleanup_tmp` keeps the folders of
  live runs) and short-lived ones removed on exit (:func:`run_tmp_dir`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.config import Settings
    from core.store.store import ResultStore

RUN_PREFIX = "callqa-run-"


# --- claim owners ----------------------------------------------------------------------------------
def _start_token(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (distinguishes a reused pid), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_OWNER: tuple[int, str] | None = None


def process_owner() -> str:
    """This process as a claim owner: ``host/pid/start-token`` (computed again after a fork)."""
    global _OWNER
    pid = os.getpid()
    if _OWNER is None or _OWNER[0] != pid:
        token = _start_token(pid) or uuid.uuid4().hex[:12]
        _OWNER = (pid, f"{socket.gethostname()}/{pid}/{token}")
    return _OWNER[1]


def owner_alive(owner: str) -> bool | None:
    """Whether the claim ``owner`` still runs: True/False on this machine, None for another host."""
    try:
        host, pid_text, token = owner.rsplit("/", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    if Path("/proc/self/stat").exists():
        return _start_token(pid) == token
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_dead_claims(store: ResultStore) -> int:
    """Drop the claims of scanners and workers on this machine that are no longer running."""
    n = 0
    for owner in store.claim_owners():
        if owner != process_owner() and owner_alive(owner) is False:
            n += store.release_owner(owner)
    return n


# --- temporary folders -------------------------------------------------------------------------------
def make_run_dir(tmp_dir: Path) -> Path:
    """A fresh per-run folder ``callqa-run-<pid>-<token>-<random>`` under ``tmp_dir``.

    Raises
    ------
    ConfigError
        The folder cannot be created.
    """
    try:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        token = _start_token(os.getpid()) or "0"
        return Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-{token}-", dir=tmp_dir))
    except OSError as exc:
        raise ConfigError(f"cannot create a temporary folder in {tmp_dir}: {exc.strerror}") from None


@contextmanager
def run_tmp_dir(settings: Settings, purpose: str) -> Iterator[Path]:
    """A private temporary folder under ``Settings.tmp_dir``, removed on exit (also on failure)."""
    base = settings.tmp_dir
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"callqa-{purpose}-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run_dir_alive(path: Path) -> bool:
    m = re.match(rf"^{re.escape(RUN_PREFIX)}(\d+)-(\d+)-", path.name)
    if not m:
        return False
    pid, token = int(m.group(1)), m.group(2)
    current = _start_token(pid)
    return current is not None and (token == "0" or current == token)


def _newest_mtime(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
    return newest


def cleanup_tmp(tmp_dir: Path, *, older_than_s: float = 900.0, now: float | None = None) -> list[Path]:
    """Remove leftovers in ``tmp_dir`` untouched for ``older_than_s`` seconds.

    The folder of a run whose process is still alive is kept, however old. Returns what was removed.

    Raises
    ------
    ConfigError
        A leftover cannot be removed.
    """
    if not tmp_dir.is_dir():
        return []
    now = now if now is not None else time.time()
    removed = []
    for entry in sorted(tmp_dir.iterdir()):
        try:
            if _run_dir_alive(entry) or now - _newest_mtime(entry) < older_than_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot remove {entry}: {exc.strerror}") from None
    return removed
