"""A real OpenSSH server on 127.0.0.1 for the SFTP tests.

Everything lives in a temporary folder: a host key and two user keys made with
``ssh-keygen`` (one authorised, one not), ``authorized_keys``, ``sshd_config`` with
``StrictModes no`` and its own ``PidFile``, the log, a ``known_hosts`` file naming the host
key, and a tree laid out like ``/var/spool/asterisk/monitorDONE/`` for the test to fill.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.mariadb import free_port
from tests.support.shared import in_ci

SSHD = "/usr/sbin/sshd"  # sshd must be started by absolute path (it re-executes itself)
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"


@dataclass(frozen=True)
class SshServer:
    """A running test sshd and the files a client needs."""

    host: str
    port: int
    user: str
    client_key: Path  # authorised private key
    other_key: Path  # a valid key that is not authorised
    known_hosts: Path  # lists this server's host key
    spool: Path  # laid out like /var/spool/asterisk/monitorDONE
    log: Path


def _unavailable(message: str) -> None:
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _keygen(path: Path, comment: str) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)


def _wait_for_banner(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"sshd did not answer on 127.0.0.1:{port}; see {log}")


@contextmanager
def running_sshd(base: Path) -> Iterator[SshServer]:
    """Start sshd on a free 127.0.0.1 port with everything under ``base``; stop it afterwards."""
    if not (os.path.exists(SSHD) and os.path.exists(SSH_KEYGEN)):
        _unavailable(f"{SSHD} or ssh-keygen is not installed (apt-get install openssh-server)")
    try:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
    except OSError as exc:
        _unavailable(f"cannot create /run/sshd for sshd privilege separation: {exc}")
    base.mkdir(parents=True, exist_ok=True)
    host_key, client_key, other_key = base / "host_ed25519", base / "client_ed25519", base / "other_ed25519"
    _keygen(host_key, "callqa-test-host")
    _keygen(client_key, "callqa-test-client")
    _keygen(other_key, "callqa-test-other")
    (base / "authorized_keys").write_text((base / "client_ed25519.pub").read_text())
    user = pwd.getpwuid(os.getuid()).pw_name
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        "\n".join([
            f"Port {port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {base / 'sshd.pid'}",
            f"AuthorizedKeysFile {base / 'authorized_keys'}",
            "StrictModes no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {user}",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "",
        ])
    )
    log = base / "sshd.log"
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True, timeout=30)
    if check.returncode != 0:
        _unavailable(f"sshd rejects the test config: {check.stderr.strip()}")
    proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_banner(port, proc, log)
        key_type, key_b64 = (base / "host_ed25519.pub").read_text().split()[:2]
        known_hosts = base / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{port} {key_type} {key_b64}\n")
        spool = base / "spool" / "monitorDONE"
        spool.mkdir(parents=True)
        yield SshServer(host="127.0.0.1", port=port, user=user, client_key=client_key, other_key=other_key,
                        known_hosts=known_hosts, spool=spool, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
