"""``[access]``: where identities come from and which role each gets.

::

    [access]
    mode = "auto"                        # auto | open | proxy | accounts
    proxy_header = "X-Forwarded-User"    # set: identities come from a trusted reverse proxy
    proxy_groups_header = "X-Forwarded-Groups"
    trusted_proxies = ["127.0.0.1", "::1"]
    default_role = "viewer"              # signed-in users without a mapping ("" = refused)

    [access.users]                       # user -> role (wins over everything else)
    alice = "admin"

    [access.groups]                      # proxy group -> role (the strongest one counts)
    qa-team = "analyst"

    [access.api_keys]                    # named API keys: CALLQA_API_KEY_<NAME> holds the key
    grafana = "viewer"

``mode = "auto"`` picks ``proxy`` when ``proxy_header`` is set, else ``accounts`` when the store
holds a built-in account (``callqa users add``), else ``open``: no login, everyone gets
``open_role`` (``admin``, what a single-user install and the demo need).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from core.access.roles import ROLES, check_role
from core.config import SettingsSection
from core.errors import ConfigError

SECTION = "access"
MODES = ("auto", "open", "proxy", "accounts")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_KEY_NAME = re.compile(r"^[A-Za-z0-9_]{1,40}$")
#: The environment variable holding the key of ``[access.api_keys] <name>``.
API_KEY_ENV_PREFIX = "CALLQA_API_KEY_"


@dataclass(frozen=True)
class AccessSettings(SettingsSection):
    """The ``[access]`` section; build with :meth:`from_settings`.

    Attributes
    ----------
    mode : str
        ``auto``, ``open``, ``proxy`` or ``accounts`` (see the module docstring).
    proxy_header, proxy_groups_header : str
        Request headers carrying the user name and its comma-separated groups, honoured only
        from ``trusted_proxies``.
    trusted_proxies : tuple of str
        Addresses or networks (``10.0.0.0/8``) of the reverse proxies.
    users, groups, api_keys : tuple of (str, str)
        ``(name, role)`` pairs from ``[access.users]``, ``[access.groups]`` and
        ``[access.api_keys]``.
    default_role : str
        Role of a signed-in user that no mapping names ("" refuses them).
    open_role : str
        Everyone's role in open mode.
    api_key_role : str
        Role of the main API key (``CALLQA_API_KEY``).
    session_hours, idle_minutes : float
        A dashboard session ends this long after sign-in, or after this long without use.
    max_failed_logins, lockout_minutes : int, float
        That many wrong passwords for one user within ``lockout_minutes`` lock it for as long.
    """

    mode: str = "auto"
    proxy_header: str = ""
    proxy_groups_header: str = ""
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    users: tuple[tuple[str, str], ...] = ()
    groups: tuple[tuple[str, str], ...] = ()
    api_keys: tuple[tuple[str, str], ...] = ()
    default_role: str = "viewer"
    open_role: str = "admin"
    api_key_role: str = "admin"
    session_hours: float = 8.0
    idle_minutes: float = 60.0
    max_failed_logins: int = 5
    lockout_minutes: float = 15.0

    SECTION: ClassVar[str] = SECTION
    MAPPINGS: ClassVar[tuple[str, ...]] = ("users", "groups", "api_keys")

    # --- construction (core.config.SettingsSection) -------------------------------------------
    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        """The role tables become ``(name, role)`` pairs; roles and header names are checked."""
        if name in cls.MAPPINGS:
            return {name: _role_map(name, value)}
        return super()._clean(name, value, default, label=label)

    def _validate(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"[{SECTION}] mode={self.mode!r} must be one of {', '.join(MODES)}")
        if self.mode == "proxy" and not self.proxy_header:
            raise ConfigError(f"[{SECTION}] mode = \"proxy\" needs proxy_header (e.g. \"X-Forwarded-User\")")
        for name in ("proxy_header", "proxy_groups_header"):
            value = getattr(self, name)
            if value and not _HEADER.match(value):
                raise ConfigError(f"[{SECTION}] {name}={value!r} is not a header name")
        for value in self.trusted_proxies:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ConfigError(f"[{SECTION}] trusted_proxies: {value!r} is not an address or network") from None
        if self.default_role:
            check_role(self.default_role, where=f"[{SECTION}] default_role")
        for name in ("open_role", "api_key_role"):
            check_role(getattr(self, name), where=f"[{SECTION}] {name}")
        for name, _role in self.api_keys:
            if not _KEY_NAME.match(name):
                raise ConfigError(f"[{SECTION}.api_keys] {name!r}: key names are letters, digits and _")
        for name in ("session_hours", "idle_minutes", "lockout_minutes"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[{SECTION}] {name}={getattr(self, name)} must be > 0")
        if self.max_failed_logins < 1:
            raise ConfigError(f"[{SECTION}] max_failed_logins={self.max_failed_logins} must be >= 1")

    # --- derived -----------------------------------------------------------------------------
    def user_role(self, name: str) -> str | None:
        """The role ``[access.users]`` gives ``name`` (None when it names nobody)."""
        return dict(self.users).get(name)

    def group_roles(self, groups) -> list[str]:
        mapping = dict(self.groups)
        return [mapping[g] for g in groups if g in mapping]

    def trusts(self, address: str | None) -> bool:
        """True when ``address`` is one of ``trusted_proxies`` (None reads as the local host)."""
        text = (address or "127.0.0.1").strip().strip("[]")
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in ipaddress.ip_network(net, strict=False) for net in self.trusted_proxies)

    def named_api_keys(self) -> list[tuple[str, str, str]]:
        """``(name, role, key)`` of each ``[access.api_keys]`` name whose ``CALLQA_API_KEY_<NAME>`` is set."""
        out = []
        for name, role in self.api_keys:
            key = os.environ.get(API_KEY_ENV_PREFIX + name.upper(), "").strip()
            if key:
                out.append((name, role, key))
        return out


def _role_map(name: str, value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{SECTION}.{name}] must be a table of name = \"role\" ({', '.join(ROLES)})")
    out = []
    for key, role in value.items():
        if not isinstance(role, str):
            raise ConfigError(f"[{SECTION}.{name}] {key} must be a role name ({', '.join(ROLES)})")
        out.append((str(key), check_role(role, where=f"[{SECTION}.{name}] {key}")))
    return tuple(out)


__all__ = ["API_KEY_ENV_PREFIX", "MODES", "AccessSettings"]
