"""Recordings on a dialer's (or archive server's) disk, over SSH with paramiko.

Files are read through the SFTP subsystem, which every OpenSSH server offers; "SCP access"
in the configuration means this same SSH login (paramiko has no SCP client, and SFTP gives
the ``stat`` that leg discovery and the cache need). Authentication is by private key only.
The server's host key must be listed in the configured ``known_hosts`` file: an unknown or
changed key is refused (``paramiko.RejectPolicy``) unless ``sftp_host_key_check = false``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import posixpath
import socket
import stat
from pathlib import Path

import paramiko
from paramiko.ssh_exception import NoValidConnectionsError

from core.errors import FetchError, UnsafeLocationError
from core.fetch.locations import RemoteFile, remote_path_under
from core.vicidial.settings import RecordingAccess

CHUNK_BYTES = 64 * 1024


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.3g} MB"


def fingerprint(key: paramiko.PKey) -> str:
    """``SHA256:...`` fingerprint of a host key, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, key: paramiko.PKey) -> None:
        super().__init__("unknown host key")
        self.key = key


class _Reject(paramiko.MissingHostKeyPolicy):
    """RejectPolicy that keeps the offered key, so the message can show its fingerprint."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise _UnknownHostKey(key)


class SftpSession:
    """One SSH/SFTP login to ``host:port``, opened on first use.

    Use as a context manager or call :meth:`close`. ``warnings`` collects notes such as a
    disabled host key check.
    """

    def __init__(self, *, host: str, port: int, access: RecordingAccess) -> None:
        self.host = host
        self.port = int(port)
        self.access = access
        self.label = f"sftp://{access.sftp_user}@{host}:{self.port}"
        self.warnings: list[str] = []
        self._ssh: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    def _connect(self) -> paramiko.SFTPClient:
        access = self.access
        ssh = paramiko.SSHClient()
        known_hosts = Path(access.sftp_known_hosts).expanduser()
        if access.sftp_host_key_check:
            if not known_hosts.is_file():
                raise FetchError(
                    f"{self.label}: known_hosts file {known_hosts} does not exist; add the server's key "
                    f"(ssh-keyscan -p {self.port} {self.host}, after checking its fingerprint) "
                    "or set [recordings] sftp_known_hosts"
                )
            try:
                ssh.get_host_keys().load(str(known_hosts))
            except (OSError, paramiko.SSHException) as exc:
                raise FetchError(f"{self.label}: cannot read known_hosts file {known_hosts}: {exc}") from None
            ssh.set_missing_host_key_policy(_Reject())
        else:
            ssh.set_missing_host_key_policy(paramiko.WarningPolicy())
            self.warnings.append(f"{self.label}: host key not checked ([recordings] sftp_host_key_check = false)")
        key_file = Path(access.sftp_key_file).expanduser()
        if not key_file.is_file():
            raise FetchError(f"{self.label}: key file {key_file} does not exist ([recordings] sftp_key_file)")
        timeout = access.connect_timeout_s
        try:
            ssh.connect(
                hostname=self.host, port=self.port, username=access.sftp_user, key_filename=str(key_file),
                passphrase=access.sftp_key_passphrase or None, timeout=timeout, banner_timeout=timeout,
                auth_timeout=timeout, channel_timeout=timeout, allow_agent=False, look_for_keys=False,
            )
            sftp = ssh.open_sftp()
            sftp.get_channel().settimeout(access.read_timeout_s)
        except _UnknownHostKey as exc:
            ssh.close()
            raise FetchError(
                f"{self.label}: unknown host key {exc.key.get_name()} {fingerprint(exc.key)}, not in "
                f"{known_hosts}; refusing to connect (add it after checking the fingerprint)"
            ) from None
        except paramiko.BadHostKeyException as exc:
            ssh.close()
            raise FetchError(
                f"{self.label}: host key {fingerprint(exc.key)} does not match the one in {known_hosts}; "
                "refusing to connect (server reinstalled, or someone in between)"
            ) from None
        except paramiko.PasswordRequiredException:
            ssh.close()
            raise FetchError(f"{self.label}: key file {key_file} is encrypted; set sftp_key_passphrase") from None
        except paramiko.AuthenticationException:
            ssh.close()
            raise FetchError(
                f"{self.label}: authentication failed for user '{access.sftp_user}' with key {key_file}"
            ) from None
        except TimeoutError:
            ssh.close()
            raise FetchError(f"{self.label}: unreachable (timed out after {timeout:g} s)") from None
        except NoValidConnectionsError:
            ssh.close()
            raise FetchError(f"{self.label}: unreachable (connection refused)") from None
        except socket.gaierror:
            ssh.close()
            raise FetchError(f"{self.label}: unreachable (unknown host)") from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            transport = ssh.get_transport()
            silent = transport is not None and not getattr(transport, "remote_version", None)
            ssh.close()
            if silent:  # TCP connected but no "SSH-2.0-..." greeting: a hung server or not sshd
                raise FetchError(f"{self.label}: unreachable (no SSH banner within {timeout:g} s)") from None
            raise FetchError(f"{self.label}: SSH failed ({exc or type(exc).__name__})") from None
        self._ssh = ssh
        return sftp

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self._connect()
        return self._sftp

    def stat(self, path: str) -> RemoteFile | None:
        """The regular file at ``path``, or None when absent."""
        try:
            info = self.sftp.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if getattr(exc, "errno", None) == 2:
                return None
            raise FetchError(f"{self.label}{path}: cannot stat ({exc})") from None
        except (paramiko.SSHException, EOFError) as exc:
            raise FetchError(f"{self.label}{path}: SSH failed ({exc})") from None
        if info.st_mode is not None and not stat.S_ISREG(info.st_mode):
            return None
        return RemoteFile(path=path, size_bytes=int(info.st_size or 0), mtime_s=float(info.st_mtime or 0))

    def realpath(self, path: str) -> str:
        """The server's canonical path (symlinks resolved)."""
        try:
            return self.sftp.normalize(path)
        except (OSError, paramiko.SSHException) as exc:
            raise FetchError(f"{self.label}{path}: cannot resolve ({exc})") from None

    def download(self, path: str, dest: Path, *, max_bytes: int) -> int:
        """Read ``path`` into ``dest`` (refused above ``max_bytes``); return the byte count."""
        received = 0
        try:
            with self.sftp.open(path, "rb") as remote, dest.open("wb") as out:
                remote.prefetch()
                while True:
                    chunk = remote.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > max_bytes:
                        raise FetchError(f"{self.label}{path}: larger than the {_mb(max_bytes)} cap ([recordings] max_mb)")
                    out.write(chunk)
        except TimeoutError:
            raise FetchError(f"{self.label}{path}: timed out (no data for {self.access.read_timeout_s:g} s)") from None
        except OSError as exc:
            raise FetchError(f"{self.label}{path}: read failed ({exc})") from None
        except (paramiko.SSHException, EOFError) as exc:
            raise FetchError(f"{self.label}{path}: SSH failed after {received} bytes ({exc})") from None
        return received

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        if self._ssh is not None:
            self._ssh.close()
        self._sftp = self._ssh = None

    def __enter__(self) -> SftpSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SftpRoot:
    """Files below one remote root (``[recordings] sftp_roots``) of an :class:`SftpSession`."""

    cacheable = True

    def __init__(self, session: SftpSession, root: str) -> None:
        if not root.startswith("/"):
            raise FetchError(f"[recordings] sftp_roots entry {root!r} must be an absolute path")
        self.session = session
        self.root = posixpath.normpath(root)
        self.label = f"{session.label}{self.root}"
        self.connection = session.label

    def origin(self, file: RemoteFile) -> str:
        return f"{self.session.label}{file.path}"

    def stat(self, relpath: str) -> RemoteFile | None:
        return self.session.stat(remote_path_under(self.root, relpath))

    def download(self, file: RemoteFile, dest: Path, *, max_bytes: int) -> int:
        """Download after checking the file's real path is still below the root."""
        if file.size_bytes > max_bytes:
            raise FetchError(f"{self.session.label}{file.path}: {_mb(file.size_bytes)} is larger than the "
                             f"{_mb(max_bytes)} cap ([recordings] max_mb)")
        real_root = self.session.realpath(self.root).rstrip("/")
        real = self.session.realpath(file.path)
        if not real.startswith(real_root + "/"):
            raise UnsafeLocationError(f"{self.session.label}{file.path} leads outside {self.root} (symlink)")
        try:
            return self.session.download(file.path, dest, max_bytes=max_bytes)
        except FetchError:
            if dest.exists():
                os.unlink(dest)
            raise
