"""Who may do what: identities, roles, built-in accounts and sessions.

- :mod:`core.access.roles` -- the roles (viewer, analyst, admin), their permissions and
  :func:`require`, the server-side check before any action;
- :mod:`core.access.identity` -- who is asking: a trusted proxy's header, a session, an API key,
  or nobody (open mode);
- :mod:`core.access.accounts` -- built-in accounts (``callqa users``) and their sessions;
- :mod:`core.access.passwords` -- scrypt password hashes;
- :mod:`core.access.settings` -- ``[access]``.
"""

from core.access.roles import PERMISSIONS, ROLES, Identity, allows, can_mark_sides, require

__all__ = ["PERMISSIONS", "ROLES", "Identity", "allows", "can_mark_sides", "require"]
