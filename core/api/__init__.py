"""The HTTP API (``callqa serve``): FastAPI over the same core services as the CLI.

- :mod:`core.api.app` -- :func:`~core.api.app.create_app`, the endpoints, the work limiter;
- :mod:`core.api.schemas` -- request and response models (what ``/openapi.json`` documents);
- :mod:`core.api.security` -- the ``X-API-Key`` check, the bind rule, the path roots;
- :mod:`core.api.metrics` -- the Prometheus metrics behind ``GET /metrics``.

This module holds only :class:`ApiSettings` (the ``[api]`` section), so ``callqa doctor`` can
read it without importing FastAPI.

``[api]`` keys (each can be overridden as ``CALLQA_API_<KEY>``; the usual ones in brackets). The
key is a secret: keep it in the environment (``/etc/callqa/secrets.env`` under systemd), not in
callqa.toml.

- ``api_key`` [``CALLQA_API_KEY``]: the shared key clients send as ``X-API-Key``. Without one,
  ``callqa serve`` starts only on a loopback address and every endpoint is open;
- ``host``, ``port`` [``CALLQA_API_HOST``, ``CALLQA_API_PORT``]: where ``callqa serve`` listens
  (127.0.0.1:8084);
- ``max_concurrency`` [``CALLQA_API_MAX_CONCURRENCY``]: analyses and Claude calls running at
  once (2);
- ``max_queue`` [``CALLQA_API_MAX_QUEUE``]: requests that may wait for a slot; one more is
  answered 503 with ``Retry-After`` (64);
- ``queue_timeout_s``: the longest wait for a slot before 503 (120);
- ``retry_after_s``: the ``Retry-After`` of those 503 answers (5);
- ``max_body_bytes`` [``CALLQA_API_MAX_BODY_BYTES``]: the largest request body; larger is 413,
  refused before anything is parsed (65536);
- ``allowed_roots``: folders ``"path"`` inputs must lie below (default: the data folder and the
  demo recordings);
- ``quality``: load NISQA at start and score speech quality unless a request says
  ``"quality": false`` (true);
- ``docs``: serve ``/docs`` and ``/openapi.json`` without a key (false: the Swagger UI page
  loads its scripts from a public CDN, which a locked-down site cannot reach, and the schema
  is not needed in production; the same schema is in the repository's tests and README);
- ``root_path`` [``CALLQA_API_ROOT_PATH``]: the prefix a reverse proxy serves the API under,
  e.g. ``/api`` ("");
- ``forwarded_allow_ips``: proxies whose ``X-Forwarded-*`` headers are trusted (127.0.0.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.config import Settings, SettingsSection
from core.errors import ConfigError

SECTION = "api"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8084
MIN_KEY_LENGTH = 16
# an HTTP header value: visible ASCII, no spaces (openssl rand -hex 32 gives 64 of these)
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")


def api_key_problem(key: str) -> str | None:
    """Why ``key`` is unusable as the API key, or None when it is fine (the key is never quoted)."""
    if len(key) < MIN_KEY_LENGTH:
        return f"the API key is shorter than {MIN_KEY_LENGTH} characters (generate one with `openssl rand -hex 32`)"
    if not _KEY_CHARS.match(key):
        return "the API key must be visible ASCII characters without spaces (it travels in an HTTP header)"
    return None


@dataclass(frozen=True)
class ApiSettings(SettingsSection):
    """The ``[api]`` section with its environment overrides (``CALLQA_API_<KEY>`` for every key);
    build with :meth:`from_settings`."""

    api_key: str = field(default="", repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_concurrency: int = 2
    max_queue: int = 64
    queue_timeout_s: float = 120.0
    retry_after_s: int = 5
    max_body_bytes: int = 64 * 1024
    allowed_roots: tuple[str, ...] = ()
    quality: bool = True
    docs: bool = False
    root_path: str = ""
    forwarded_allow_ips: str = "127.0.0.1"

    SECTION: ClassVar[str] = SECTION
    ENV_ALIASES: ClassVar[dict[str, str]] = {"api_key": "CALLQA_API_KEY"}
    SECRETS: ClassVar[frozenset[str]] = frozenset({"api_key"})

    @property
    def auth_enabled(self) -> bool:
        """True when a key is configured (every endpoint but health and metrics then needs it)."""
        return bool(self.api_key)

    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        out = super()._clean(name, value, default, label=label)
        return {name: out[name].strip()} if name == "api_key" else out

    def roots(self, settings: Settings) -> tuple[Path, ...]:
        """The folders ``"path"`` inputs must lie below, resolved (symlinks followed).

        Configured ``allowed_roots`` (relative ones are relative to the config file), else the
        data folder and the demo recordings.
        """
        if self.allowed_roots:
            base = settings.path.parent if settings.path is not None else Path.cwd()
            paths = [Path(r).expanduser() for r in self.allowed_roots]
            paths = [p if p.is_absolute() else base / p for p in paths]
        else:
            from core.demo import demo_recordings_dir

            paths = [settings.data_dir, demo_recordings_dir(settings)]
        out: list[Path] = []
        for p in paths:
            resolved = p.resolve()
            if resolved not in out:
                out.append(resolved)
        return tuple(out)

    def _validate(self) -> None:
        if self.api_key:
            problem = api_key_problem(self.api_key)
            if problem:
                raise ConfigError(f"CALLQA_API_KEY / [{SECTION}] api_key: {problem}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"[{SECTION}] port={self.port} must be between 1 and 65535")
        if self.max_concurrency < 1:
            raise ConfigError(f"[{SECTION}] max_concurrency={self.max_concurrency} must be >= 1")
        if self.max_queue < 0:
            raise ConfigError(f"[{SECTION}] max_queue={self.max_queue} must be >= 0")
        if self.queue_timeout_s <= 0:
            raise ConfigError(f"[{SECTION}] queue_timeout_s={self.queue_timeout_s} must be > 0")
        if self.retry_after_s < 1:
            raise ConfigError(f"[{SECTION}] retry_after_s={self.retry_after_s} must be >= 1")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"[{SECTION}] max_body_bytes={self.max_body_bytes} must be >= 1024")
        if self.root_path and (not self.root_path.startswith("/") or self.root_path.endswith("/")):
            raise ConfigError(f"[{SECTION}] root_path={self.root_path!r} must look like /api (leading, no trailing /)")


__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ApiSettings", "api_key_problem"]
