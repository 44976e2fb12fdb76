"""Validation of paths and URLs built from database values.

``recording_log.filename``, ``recording_log.location`` and ``server_ip`` come from the ViciDial
database, which callqa does not control. Before anything is fetched they are checked here:

- a filename is one plain name (letters, digits, ``.``, ``_``, ``-``, ``+``; ViciDial's
  admin form allows only letters, digits, ``-``, ``.`` and ``_`` in the template);
- a path is relative, has no ``..``, no backslash, no control characters, and a local path
  still lies below its root after symlinks are resolved;
- a URL is ``http``/``https`` without credentials, query or fragment, to a host listed in
  ``[recordings] allowed_hosts`` (or remapped by ``host_map``).

Anything else raises :class:`~core.errors.UnsafeLocationError`.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

from core.errors import UnsafeLocationError
from core.vicidial.settings import RecordingAccess

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9._+-]*$")
_SAFE_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$|^[0-9A-Fa-f:.]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RECORDINGS_SEGMENT = "RECORDINGS"  # Apache: Alias /RECORDINGS/ -> /var/spool/asterisk/monitorDONE/
MAX_NAME_LENGTH = 255


@dataclass(frozen=True)
class RemoteFile:
    """A file found on a disk source: its full path there, size and modification time."""

    path: str
    size_bytes: int
    mtime_s: float


class DiskSource(Protocol):
    """A directory laid out like ``monitorDONE`` (local/NFS or over SFTP).

    ``label`` names it in messages, ``connection`` the login it shares with other roots (a
    failing connection is not retried for them); ``cacheable`` says whether fetched files are
    worth caching (remote) or can be copied straight from the source (local).
    """

    label: str
    connection: str
    cacheable: bool

    def origin(self, file: RemoteFile) -> str:
        """Where ``file`` comes from (``sftp://user@host:port/path`` or ``local:/path``): cache key and report."""

    def stat(self, relpath: str) -> RemoteFile | None:
        """The file at ``relpath`` below the root, or None when absent."""

    def download(self, file: RemoteFile, dest: Path, *, max_bytes: int) -> int:
        """Copy ``file`` to ``dest`` (at most ``max_bytes``); return the byte count."""


def safe_filename(name: object, *, what: str = "recording filename") -> str:
    """Return ``name`` if it is one plain file name, else raise.

    Examples
    --------
    >>> safe_filename("20250829-101512_3125551212")
    '20250829-101512_3125551212'
    """
    text = "" if name is None else str(name)
    if not text:
        raise UnsafeLocationError(f"{what} is empty")
    if len(text) > MAX_NAME_LENGTH:
        raise UnsafeLocationError(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if text in (".", "..") or ".." in text:
        raise UnsafeLocationError(f"{what} {text!r} contains '..'")
    if "/" in text or "\\" in text:
        raise UnsafeLocationError(f"{what} {text!r} contains a path separator")
    if not _SAFE_NAME.match(text):
        raise UnsafeLocationError(f"{what} {text!r} has characters outside letters, digits and . _ - +")
    return text


def safe_relpath(path: str, *, what: str = "path") -> str:
    """Return ``path`` as a normalised relative POSIX path of safe segments, else raise.

    Empty segments (``a//b``) are dropped; ``.``/``..`` segments, absolute paths, backslashes
    and control characters are refused.
    """
    if not path:
        raise UnsafeLocationError(f"{what} is empty")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UnsafeLocationError(f"{what} {path!r} is absolute")
    if "\\" in path or _CONTROL.search(path):
        raise UnsafeLocationError(f"{what} {path!r} contains a backslash or control character")
    segments = [s for s in path.split("/") if s]
    for segment in segments:
        if segment in (".", ".."):
            raise UnsafeLocationError(f"{what} {path!r} contains '{segment}'")
        safe_filename(segment, what=f"{what} segment")
    if not segments:
        raise UnsafeLocationError(f"{what} {path!r} names no file")
    return "/".join(segments)


def check_host(host: object, *, what: str = "server_ip") -> str:
    """Return ``host`` if it is a plain host name or IP address, else raise."""
    text = "" if host is None else str(host).strip()
    if not text or len(text) > 253 or not _SAFE_HOST.match(text) or ".." in text:
        raise UnsafeLocationError(f"{what} {text!r} is not a host name or IP address")
    return text


def expand_root(template: str, *, server_ip: str | None) -> str:
    """Fill ``{server_ip}`` in a configured root (e.g. ``/mnt/recordings/{server_ip}``)."""
    if "{server_ip}" not in template:
        return template
    if not server_ip:
        raise UnsafeLocationError(f"root {template!r} needs the recording's server_ip, which is empty")
    return template.replace("{server_ip}", check_host(server_ip))


def path_under(root: Path, relpath: str) -> Path:
    """``root / relpath``, refused if it resolves (through symlinks) outside ``root``."""
    rel = safe_relpath(relpath)
    candidate = root / rel
    base = root.resolve()
    resolved = candidate.resolve()
    if resolved != base and not resolved.is_relative_to(base):
        raise UnsafeLocationError(f"{candidate} leads outside {root} (symlink)")
    return candidate


def remote_path_under(root: str, relpath: str) -> str:
    """``root/relpath`` on a POSIX server, with ``relpath`` validated."""
    return posixpath.join(root, safe_relpath(relpath))


def _host_port(netloc: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:
        raise UnsafeLocationError(f"host entry {netloc!r} has an invalid port") from None
    return (parts.hostname or "").lower(), port


def host_allowed(host: str, port: int | None, access: RecordingAccess) -> bool:
    """True when ``host[:port]`` is in ``allowed_hosts`` (an entry without port allows any port)."""
    for entry in access.allowed_hosts:
        allowed_host, allowed_port = _host_port(entry)
        if allowed_host == host.lower() and allowed_port in (None, port):
            return True
    return False


@dataclass(frozen=True)
class HttpLocation:
    """A validated recording URL.

    Attributes
    ----------
    location : str
        The value from the database.
    url : str
        What is contacted: ``location`` with the host replaced per ``host_map``.
    leaf : str
        The file name at the end of the path (validated).
    """

    location: str
    url: str
    leaf: str


def http_location(location: object, access: RecordingAccess, *, what: str = "recording location",
                  trusted_host: str | None = None) -> HttpLocation:
    """Validate a ``recording_log.location`` URL against ``[recordings]``.

    ``trusted_host`` is also accepted as is (a redirect back to the host being contacted).

    Raises
    ------
    UnsafeLocationError
        Not http(s), credentials/query/fragment present, traversal in the path, or a host
        that is neither in ``allowed_hosts`` nor in ``host_map``.
    """
    text = "" if location is None else str(location).strip()
    if not text:
        raise UnsafeLocationError(f"{what} is empty")
    if "\\" in text or _CONTROL.search(text):
        raise UnsafeLocationError(f"{what} {text!r} contains a backslash or control character")
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeLocationError(f"{what} {text!r} is not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeLocationError(f"{what} for host {parts.hostname} carries credentials; put them in [recordings]")
    if parts.query or parts.fragment:
        raise UnsafeLocationError(f"{what} {text!r} has a query or fragment")
    host, port = _host_port(parts.netloc)
    if not host:
        raise UnsafeLocationError(f"{what} {text!r} has no host")
    segments = [unquote(s) for s in parts.path.split("/")]
    for segment in segments:
        if segment in (".", "..") or "/" in segment or "\\" in segment or _CONTROL.search(segment):
            raise UnsafeLocationError(f"{what} {text!r} has an unsafe path segment {segment!r}")
    leaf = safe_filename(segments[-1] if segments else "", what=f"file name in {what}")
    target = access.mapped_host(f"{host}:{port}" if port else host) or access.mapped_host(host)
    trusted = trusted_host is not None and host == trusted_host.lower()
    if target is None and not trusted and not host_allowed(host, port, access):
        shown = f"{host}:{port}" if port else host
        raise UnsafeLocationError(
            f"{what} host {shown} is not in [recordings] allowed_hosts (or host_map); refusing {text}"
        )
    netloc = target or parts.netloc
    url = urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))
    return HttpLocation(location=text, url=url, leaf=leaf)


def recordings_relpath(location: object) -> str | None:
    """The part of a location URL after its ``RECORDINGS/`` segment, validated, or None.

    ``http://10.10.10.11/RECORDINGS/MP3/x-all.mp3`` gives ``MP3/x-all.mp3``: the same file
    below ``monitorDONE`` on the dialer's disk (and ``2025-08-29/x-all.mp3`` below an
    archive server's ``RECORDINGS`` folder).
    """
    text = "" if location is None else str(location)
    if "://" not in text:
        return None
    path = urlsplit(text).path
    segments = [unquote(s) for s in path.split("/")]
    if RECORDINGS_SEGMENT not in segments:
        return None
    rest = segments[len(segments) - 1 - segments[::-1].index(RECORDINGS_SEGMENT) + 1:]
    return safe_relpath("/".join(rest), what="recording location path") if any(rest) else None
