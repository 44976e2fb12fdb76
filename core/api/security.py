"""Who may call the API and what a request may make it read.

- **API key.** Every endpoint except ``/health`` and ``/metrics`` (and the docs, unless
  ``[api] docs = false``) needs the header ``X-API-Key`` equal to ``CALLQA_API_KEY`` (or
  ``[api] api_key``). The comparison is constant-time (:func:`hmac.compare_digest`); a missing
  or wrong key is 401 with the same message either way, and the key is never logged or echoed.
- **No key configured.** Then the API has no authentication at all, which is only acceptable
  when nothing but local processes can reach it: :func:`check_bind` makes ``callqa serve``
  refuse any address other than loopback (``127.0.0.1``, ``::1``, ``localhost``). Behind nginx
  the API is still reachable from outside through ``/api/``, so production sets a key
  (``callqa doctor`` fails without one).
- **Paths.** A ``"path"`` in a request may only name a file below ``[api] allowed_roots``
  (default: the data folder and the demo recordings), after symlinks are resolved; anything
  else is 403 (:func:`check_path`). URLs go through the recording fetch rules
  (:func:`core.fetch.locations.http_location`: ``[recordings] allowed_hosts``).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable
from pathlib import Path

from fastapi import Request
from fastapi.security import APIKeyHeader

from core.errors import AuthenticationError, ConfigError, PathNotAllowedError, UnsafeLocationError

API_KEY_HEADER = "X-API-Key"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")

#: Declares the header in the OpenAPI schema (the "Authorize" button of /docs); checked below.
api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="The key from CALLQA_API_KEY ([api] api_key).")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the usual names of the local host."""
    text = host.strip().strip("[]").lower()
    if text in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def check_bind(host: str, *, auth_enabled: bool) -> None:
    """Refuse to serve without a key on anything but loopback.

    Raises
    ------
    ConfigError
        No API key is configured and ``host`` is not a loopback address.
    """
    if not auth_enabled and not is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without an API key: set CALLQA_API_KEY (e.g. `openssl rand -hex 32` in "
            "/etc/callqa/secrets.env), or listen on 127.0.0.1"
        )


def key_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented key with the configured one."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def require_api_key(request: Request, presented: str | None) -> None:
    """Raise :class:`AuthenticationError` unless ``presented`` is the configured key (if one is)."""
    expected = request.app.state.api.config.api_key
    if expected and not key_matches(presented, expected):
        raise AuthenticationError(f"missing or wrong {API_KEY_HEADER} header")


def check_path(path: str, roots: Iterable[Path]) -> Path:
    """The resolved ``path`` if it lies below one of ``roots``.

    Parameters
    ----------
    path : str
        An absolute path from a request.
    roots : iterable of Path
        Resolved allowed folders (:meth:`core.api.ApiSettings.roots`).

    Raises
    ------
    UnsafeLocationError
        ``path`` is relative or has control characters (400).
    PathNotAllowedError
        ``path`` resolves (symlinks followed) outside every root (403).
    """
    if not path or any(ord(c) < 32 for c in path):
        raise UnsafeLocationError("path is empty or contains control characters")
    candidate = Path(path)
    if not candidate.is_absolute():
        raise UnsafeLocationError(f"path {path!r} must be absolute")
    resolved = candidate.resolve()
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    raise PathNotAllowedError(
        f"path {path} is outside the folders this API may read ([api] allowed_roots); "
        "copy the recording there or ask the operator to add its folder"
    )
