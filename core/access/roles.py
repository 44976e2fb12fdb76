"""Roles and what each may do.

Three roles, each including the one before it:

- ``viewer``: headline numbers and findings of stored calls, fleet trends; phone numbers and
  call ids are masked, no audio, no AI features;
- ``analyst``: everything a viewer sees unmasked, audio (players and downloads), the full deep
  dive, analysing calls, AI summaries, investigations and the chat with the call tools, marking
  which side of a mixed call is the agent;
- ``admin``: also the settings page, the chat's SQL tools, voiceprints, users and the audit log.

Pages and actions check a :data:`PERMISSIONS` name with :func:`allows` (to hide what a role
lacks) and :func:`require` (to refuse it server-side, whatever the browser sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from core.errors import AccessDeniedError, ConfigError

ROLES = ("viewer", "analyst", "admin")

#: Every permission and the least role that has it.
PERMISSIONS: dict[str, str] = {
    "view_calls": "viewer",  # overview, store lookup, fleet trends, headline deep dive
    "see_personal": "analyst",  # phone numbers, call ids and caller names unmasked (UI, CSV, API)
    "play_audio": "analyst",  # players and downloads of recordings
    "deep_dive": "analyst",  # the whole deep dive: timeline, ViciDial context, NISQA details
    "analyze": "analyst",  # analyse a call (deep dive on the spot, API /analyze)
    "lookup_sources": "analyst",  # search ViciDial and recording folders, not only the store
    "use_ai": "analyst",  # summaries, investigations, the chat with the call tools
    "mark_sides": "analyst",  # mark which side of a mixed call is the agent
    "sql_tool": "admin",  # the chat's guarded SQL over the store and ViciDial
    "settings": "admin",  # the settings & health page
    "voiceprints": "admin",  # enrol and remove agent voiceprints
    "manage_users": "admin",  # built-in accounts
    "audit": "admin",  # read the audit log
}


def check_role(role: str, *, where: str = "role") -> str:
    """``role`` lower-cased if it is one of :data:`ROLES`.

    Raises
    ------
    ConfigError
        Another value (the message names ``where`` it came from).
    """
    value = str(role).strip().lower()
    if value not in ROLES:
        raise ConfigError(f"{where}={role!r} must be one of {', '.join(ROLES)}")
    return value


def role_rank(role: str | None) -> int:
    """0 for no role, 1 viewer, 2 analyst, 3 admin."""
    return ROLES.index(role) + 1 if role in ROLES else 0


def highest(roles) -> str | None:
    """The strongest of ``roles`` (None when empty or none is a role)."""
    best = max((r for r in roles if r in ROLES), key=role_rank, default=None)
    return best


@dataclass(frozen=True)
class Identity:
    """Who is asking, and with which role.

    Attributes
    ----------
    name : str
        The user name (``alice``), ``api:<key name>`` for an API key, ``cli:<os user>`` for the
        command line, ``anonymous`` in open mode.
    role : str or None
        One of :data:`ROLES`; None means signed in but not allowed anything.
    source : str
        ``open``, ``proxy``, ``account``, ``api_key`` or ``cli``.
    groups : tuple of str
        The proxy's groups, when it sent some.
    remote : str or None
        The client address as the server saw it.
    """

    name: str
    role: str | None
    source: str
    groups: tuple[str, ...] = field(default=())
    remote: str | None = None

    def can(self, permission: str) -> bool:
        """True when this identity's role includes ``permission``."""
        return allows(self.role, permission)


class HasRole(Protocol):
    @property
    def role(self) -> str | None: ...


def allows(role: str | None, permission: str) -> bool:
    """True when ``role`` has ``permission`` (a key of :data:`PERMISSIONS`).

    Raises
    ------
    KeyError
        An unknown permission (a typo must not silently deny or allow).
    """
    needed = PERMISSIONS[permission]
    return role_rank(role) >= role_rank(needed)


def require(who: HasRole | str | None, permission: str, *, action: str | None = None) -> None:
    """Refuse unless ``who`` (an :class:`Identity`, a role or None) has ``permission``.

    This is the server-side check every page, endpoint and action calls before doing the work;
    hiding a button is never enough.

    Raises
    ------
    AccessDeniedError
        With the role needed, e.g. ``playing recordings needs the analyst role (you are viewer)``.
    """
    role = who if isinstance(who, str) or who is None else who.role
    if allows(role, permission):
        return
    what = action or permission.replace("_", " ")
    have = f"you are {role}" if role else "you have no role"
    raise AccessDeniedError(f"{what} needs the {PERMISSIONS[permission]} role ({have})")


def can_mark_sides(who: HasRole | str | None) -> bool:
    """True when ``who`` may mark which side of a mixed call is the agent (analyst and up)."""
    return allows(who if isinstance(who, str) or who is None else who.role, "mark_sides")
