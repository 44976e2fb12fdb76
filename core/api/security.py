"""Who may call the API and what a request may make it read.

- **API keys and their roles.** Every endpoint except ``/health`` and ``/metrics`` (and the
  docs, unless ``[api] docs = false``) needs the header ``X-API-Key`` equal to one of the keys
  (:func:`api_keys`): ``CALLQA_API_KEY`` (or ``[api] api_key``) with the role ``[access]
  api_key_role`` (admin), and each ``[access.api_keys] <name> = "<role>"`` whose key is in
  ``CALLQA_API_KEY_<NAME>``. The comparison is constant-time (:func:`hmac.compare_digest`); a
  missing or wrong key is 401 with the same message either way, and keys are never logged or
  echoed. An endpoint the key's role lacks answers 403 (:func:`core.access.roles.require`).
- **No key configured.** Then the API has no authentication at all, which is only acceptable
  when nothing but local processes can reach it: :func:`check_bind` makes ``callqa serve``
  refuse any address other than loopback (``127.0.0.1``, ``::1``, ``localhost``). Behind nginx
  the API is still reachable from outside through ``/api/``, so production sets a key
  (``callqa doctor`` fails without one).
- **Keys never travel in URLs.** A request whose query string carries a key-like parameter
  (``api_key``, ``key``, ``token``...) is refused with 400 before anything else
  (:func:`secret_query_parameters`), and the access log never records the query string of a
  refused request nor the value of such a parameter (:class:`AccessLogRedactor`): URLs end up
  in proxy logs, browser histories and the journal.
- **Paths.** A ``"path"`` in a request may only name a file below ``[api] allowed_roots``
  (default: the data folder and the demo recordings), after symlinks are resolved; anything
  else is 403 (:func:`check_path`). The other files of that call, found beside it, are held
  to the same roots one by one (:func:`core.audio.layout.call_files_for`). URLs go through the
  recording fetch rules (:func:`core.fetch.locations.http_location`: ``[recordings] allowed_hosts``).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qsl

from fastapi.security import APIKeyHeader

from core.errors import ConfigError, PathNotAllowedError, UnsafeLocationError

API_KEY_HEADER = "X-API-Key"
_LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")

#: Declares the header in the OpenAPI schema (the "Authorize" button of /docs); checked below.
api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="CALLQA_API_KEY ([api] api_key), or a named key CALLQA_API_KEY_<NAME>.")


#: Query parameters that look like credentials (compared lower-case, ``-`` read as ``_``).
SECRET_PARAMETERS = frozenset({"api_key", "apikey", "key", "x_api_key", "token", "access_token", "auth",
                               "authorization", "password", "passwd", "secret", "session"})
_SECRET_IN_QUERY = re.compile(r"(?i)(^|&)((?:x[-_])?api[-_]?key|key|token|access[-_]token|auth|authorization|"
                              r"password|passwd|secret|session)=[^&]*")


def secret_query_parameters(query_string: bytes | str) -> list[str]:
    """The key-like parameter names in a raw query string (empty when there are none)."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    names = []
    for name, _value in parse_qsl(text, keep_blank_values=True):
        if name.strip().lower().replace("-", "_") in SECRET_PARAMETERS:
            names.append(name)
    return names


def redact_target(target: str, status: int) -> str:
    """A request target fit for a log line: no query string when refused, no secret values ever.

    ``/analyze?api_key=abc`` answered 400 is logged as ``/analyze?[query omitted]``; a served
    ``/calls?limit=5&token=abc`` as ``/calls?limit=5&token=[redacted]``.
    """
    path, sep, query = target.partition("?")
    if not sep:
        return target
    if status >= 400:
        return f"{path}?[query omitted]"
    return f"{path}?" + _SECRET_IN_QUERY.sub(lambda m: f"{m.group(1)}{m.group(2)}=[redacted]", query)


class AccessLogRedactor(logging.Filter):
    """A filter for uvicorn's access logger that rewrites the request target (:func:`redact_target`).

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with (client, method, target, version, status).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            try:
                status = int(str(args[4]))
            except (TypeError, ValueError):
                status = 500
            record.args = (args[0], args[1], redact_target(args[2], status), args[3], args[4])
        return True


def install_access_log_redactor() -> AccessLogRedactor:
    """Attach one :class:`AccessLogRedactor` to ``uvicorn.access`` (idempotent); return it."""
    logger = logging.getLogger("uvicorn.access")
    for existing in logger.filters:
        if isinstance(existing, AccessLogRedactor):
            return existing
    redactor = AccessLogRedactor()
    logger.addFilter(redactor)
    return redactor


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


def api_keys(config, access) -> list[tuple[str, str, str]]:
    """``(name, role, key)`` of every configured API key.

    Parameters
    ----------
    config : ApiSettings
        ``[api] api_key`` / ``CALLQA_API_KEY``: the key named ``main``.
    access : AccessSettings
        ``[access] api_key_role`` (the main key's role) and ``[access.api_keys]``.

    Raises
    ------
    ConfigError
        A named key is unusable (too short, spaces...); the variable is named, the key never.
    """
    from core.access.settings import API_KEY_ENV_PREFIX
    from core.api import api_key_problem

    out = [("main", access.api_key_role, config.api_key)] if config.api_key else []
    for name, role, key in access.named_api_keys():
        problem = api_key_problem(key)
        if problem:
            raise ConfigError(f"{API_KEY_ENV_PREFIX}{name.upper()}: {problem}")
        out.append((name, role, key))
    return out


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
    from core.audio.layout import resolve_inside

    resolved = resolve_inside(candidate, roots)
    if resolved is not None:
        return resolved
    raise PathNotAllowedError(
        f"path {path} is outside the folders this API may read ([api] allowed_roots); "
        "copy the recording there or ask the operator to add its folder"
    )
