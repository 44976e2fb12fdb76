"""Who is asking: from a trusted reverse proxy's header, a built-in account's session, an API key,
or nobody (open mode).

The proxy pattern is the one of oauth2-proxy, Authelia or nginx ``auth_request``: the proxy
authenticates the person and passes the name (``[access] proxy_header``, e.g.
``X-Forwarded-User``) and optionally the groups (``proxy_groups_header``) to callqa. The header
is honoured only when the connection comes from one of ``[access] trusted_proxies``; from
anywhere else it is ignored, so a client talking to callqa directly cannot claim a name.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping

from core.access.roles import Identity, highest
from core.access.settings import AccessSettings

_GROUP_SPLIT = re.compile(r"[,;\s]+")
_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")


def access_mode(settings: AccessSettings, store=None) -> str:
    """``open``, ``proxy`` or ``accounts``: ``[access] mode``, or what ``auto`` finds.

    ``auto`` is ``proxy`` when ``proxy_header`` is set, else ``accounts`` when ``store`` holds
    an account, else ``open``.
    """
    if settings.mode != "auto":
        return settings.mode
    if settings.proxy_header:
        return "proxy"
    if store is not None:
        from core.access.accounts import has_accounts

        if has_accounts(store):
            return "accounts"
    return "open"


def open_identity(settings: AccessSettings, *, remote: str | None = None) -> Identity:
    """Everyone in open mode: ``anonymous`` with ``[access] open_role``."""
    return Identity(name="anonymous", role=settings.open_role, source="open", remote=remote)


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if str(key).lower() == wanted:
            return str(value).strip()
    return ""


def role_for(settings: AccessSettings, name: str, groups: tuple[str, ...] = ()) -> str | None:
    """``[access.users]`` for ``name``, else the strongest ``[access.groups]`` role of ``groups``,
    else ``default_role`` (None when that is empty)."""
    return settings.user_role(name) or highest(settings.group_roles(groups)) or settings.default_role or None


def proxy_identity(settings: AccessSettings, headers: Mapping[str, str], remote: str | None) -> Identity | None:
    """The identity a trusted proxy asserts, or None.

    Parameters
    ----------
    settings : AccessSettings
    headers : mapping
        The request headers (any case).
    remote : str or None
        The peer address of the connection (None reads as the local host).

    Returns
    -------
    Identity or None
        None when the connection does not come from ``trusted_proxies``, or the header is
        missing, empty or malformed.
    """
    if not settings.proxy_header or not settings.trusts(remote):
        return None
    name = _header(headers, settings.proxy_header)
    if not name or not _NAME_OK.match(name):
        return None
    groups: tuple[str, ...] = ()
    if settings.proxy_groups_header:
        raw = _header(headers, settings.proxy_groups_header)
        groups = tuple(g for g in _GROUP_SPLIT.split(raw) if g)[:100]
    return Identity(name=name, role=role_for(settings, name, groups), source="proxy", groups=groups, remote=remote)


def request_identity(settings: AccessSettings, store, *, headers: Mapping[str, str], remote: str | None,
                     session_token: str | None) -> Identity | None:
    """Who a dashboard request comes from, whatever the mode; None means "sign in first".

    Parameters
    ----------
    settings : AccessSettings
    store : ResultStore
        Where accounts and sessions live.
    headers : mapping
        Request headers (for the proxy mode).
    remote : str or None
        Peer address of the connection.
    session_token : str or None
        The session cookie (for the accounts mode).
    """
    mode = access_mode(settings, store)
    if mode == "open":
        return open_identity(settings, remote=remote)
    if mode == "proxy":
        return proxy_identity(settings, headers, remote)
    from core.access.accounts import session_identity

    return session_identity(store, session_token, settings=settings, remote=remote)


def api_key_identity(keys: list[tuple[str, str, str]], presented: str | None, *,
                     remote: str | None = None) -> Identity | None:
    """The identity of an ``X-API-Key``: ``api:<name>`` with the key's role, or None.

    Parameters
    ----------
    keys : list of (name, role, key)
        The configured keys (``core.api.security.api_keys``); every one is compared, in
        constant time, so the time taken does not tell which prefix matched.
    presented : str or None
    remote : str or None
    """
    if not presented:
        return None
    given = presented.encode("utf-8", "replace")
    found = None
    for name, role, key in keys:
        if hmac.compare_digest(given, key.encode("utf-8")) and found is None:
            found = Identity(name=f"api:{name}", role=role, source="api_key", remote=remote)
    return found
