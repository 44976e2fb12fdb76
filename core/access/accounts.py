"""Built-in accounts of the dashboard (when no reverse proxy signs people in) and their sessions.

Accounts live in the store's ``users`` table with a scrypt hash of their password
(:mod:`core.access.passwords`); ``callqa users add/list/remove/passwd`` manage them. Signing in
creates a session: a random token goes to the browser (an ``HttpOnly`` cookie), only its SHA-256
is stored, with an absolute end (``[access] session_hours``) and an idle end (``idle_minutes``).
Changing a password, the role or removing the account ends its sessions. After
``max_failed_logins`` wrong passwords within ``lockout_minutes`` an account refuses sign-ins for
that long (counted from the audit log's ``login.failed`` entries).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.access.passwords import dummy_verify, hash_password, needs_rehash, verify_password
from core.access.roles import Identity, check_role
from core.access.settings import AccessSettings
from core.errors import AccessDeniedError, CallNotFoundError, ParameterError, StoreError
from core.store.engine import first_line, write_transaction
from core.store.schema import sessions, users

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
#: How often a session's last use is written back (not on every rerun of a page).
TOUCH_EVERY = timedelta(minutes=1)
LOGIN_FAILED = "login.failed"


def _now() -> datetime:
    from core.store.store import utcnow

    return utcnow()


def check_name(name: str) -> str:
    """``name`` if it can be a user name (letters, digits, ``.``, ``_``, ``@``, ``-``; 1-100)."""
    if not _NAME.match(name or ""):
        raise ParameterError(f"user name {name!r} must be 1-100 letters, digits, '.', '_', '@' or '-'")
    return name


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@contextmanager
def _guard(store, action: str) -> Iterator[None]:
    """Driver errors become one :class:`StoreError` line naming the store and the action."""
    try:
        yield
    except SQLAlchemyError as exc:
        raise StoreError(f"store {store.display_url}: {action} failed: {first_line(exc)}") from None


# --- accounts ------------------------------------------------------------------------------------
def has_accounts(store) -> bool:
    """True when at least one built-in account exists (``[access] mode = "auto"`` then asks to sign in)."""
    with _guard(store, "reading accounts"), store.engine.connect() as conn:
        return conn.execute(select(users.c.name).limit(1)).first() is not None


def add_user(store, name: str, *, role: str, password: str) -> None:
    """Create an account.

    Raises
    ------
    ParameterError
        A malformed name, a weak password, or the name is taken.
    ConfigError
        An unknown role.
    """
    check_name(name)
    role = check_role(role, where="--role")
    digest = hash_password(password)
    now = _now()
    with _guard(store, "adding a user"), write_transaction(store.engine) as conn:
        if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
            raise ParameterError(f"user {name!r} exists already (change it with `callqa users passwd` or remove it)")
        conn.execute(insert(users).values(name=name, role=role, password_hash=digest, created_at=now, updated_at=now))


def list_users(store) -> list[dict[str, Any]]:
    """Every account: ``name``, ``role``, ``created_at``, ``last_login_at``, ``sessions`` (open ones)."""
    now = _now()
    live = (select(sessions.c.user_name, func.count().label("n")).where(sessions.c.expires_at > now)
            .group_by(sessions.c.user_name).subquery())
    stmt = (select(users.c.name, users.c.role, users.c.created_at, users.c.last_login_at,
                   func.coalesce(live.c.n, 0).label("sessions"))
            .select_from(users.outerjoin(live, live.c.user_name == users.c.name)).order_by(users.c.name))
    with _guard(store, "reading accounts"), store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def remove_user(store, name: str) -> None:
    """Delete an account and its sessions.

    Raises
    ------
    CallNotFoundError
        No such account.
    """
    with _guard(store, "removing a user"), write_transaction(store.engine) as conn:
        conn.execute(delete(sessions).where(sessions.c.user_name == name))
        if conn.execute(delete(users).where(users.c.name == name)).rowcount == 0:
            raise CallNotFoundError(f"no user {name!r}")


def set_password(store, name: str, password: str) -> None:
    """Replace an account's password and end its sessions (raises ``CallNotFoundError``)."""
    digest = hash_password(password)
    with _guard(store, "changing a password"), write_transaction(store.engine) as conn:
        n = conn.execute(update(users).where(users.c.name == name)
                         .values(password_hash=digest, updated_at=_now())).rowcount
        if n == 0:
            raise CallNotFoundError(f"no user {name!r}")
        conn.execute(delete(sessions).where(sessions.c.user_name == name))


def set_role(store, name: str, role: str) -> None:
    """Change an account's role and end its sessions (raises ``CallNotFoundError``)."""
    role = check_role(role, where="role")
    with _guard(store, "changing a role"), write_transaction(store.engine) as conn:
        if conn.execute(update(users).where(users.c.name == name).values(role=role, updated_at=_now())).rowcount == 0:
            raise CallNotFoundError(f"no user {name!r}")
        conn.execute(delete(sessions).where(sessions.c.user_name == name))


def account_role(settings: AccessSettings, name: str, stored_role: str | None) -> str | None:
    """``[access.users]`` wins over the role stored with the account."""
    return settings.user_role(name) or stored_role


# --- signing in ----------------------------------------------------------------------------------
def sign_in(store, name: str, password: str, *, settings: AccessSettings, remote: str | None = None,
            source: str = "dashboard") -> tuple[str, Identity]:
    """Check a password and open a session.

    Returns
    -------
    tuple of (str, Identity)
        The session token (for the cookie; never stored) and who signed in.

    Raises
    ------
    AccessDeniedError
        Wrong name or password (one message for both), or the account is locked after too many
        failures. Both outcomes are written to the audit log.
    """
    from core.audit import count_since, record

    who = Identity(name=name[:100], role=None, source="account", remote=remote)
    since = _now() - timedelta(minutes=settings.lockout_minutes)
    if count_since(store, actor=who.name, action=LOGIN_FAILED, since=since) >= settings.max_failed_logins:
        dummy_verify(password)
        record(store, who, LOGIN_FAILED, source=source, detail="locked")
        raise AccessDeniedError(f"too many failed sign-ins: try again in {settings.lockout_minutes:g} minutes")
    with _guard(store, "reading accounts"), store.engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
    if row is None:
        dummy_verify(password)
    if row is None or not verify_password(password, row["password_hash"]):
        record(store, who, LOGIN_FAILED, source=source)
        raise AccessDeniedError("wrong user name or password")
    role = account_role(settings, name, row["role"])
    token = secrets.token_urlsafe(32)
    now = _now()
    with _guard(store, "opening a session"), write_transaction(store.engine) as conn:
        conn.execute(delete(sessions).where(sessions.c.expires_at < now))
        conn.execute(insert(sessions).values(
            token_hash=_token_hash(token), user_name=name, created_at=now, last_seen_at=now, remote=remote,
            expires_at=now + timedelta(hours=settings.session_hours)))
        values: dict[str, Any] = {"last_login_at": now}
        if needs_rehash(row["password_hash"]):
            values["password_hash"] = hash_password(password)
        conn.execute(update(users).where(users.c.name == name).values(values))
    who = Identity(name=name, role=role, source="account", remote=remote)
    record(store, who, "login", source=source)
    return token, who


def session_identity(store, token: str | None, *, settings: AccessSettings,
                     remote: str | None = None) -> Identity | None:
    """Who holds the session ``token``; None when it is unknown, ended or expired (absolute or idle).

    A live session's last use is written back at most every :data:`TOUCH_EVERY`.
    """
    if not token or len(token) > 200:
        return None
    digest = _token_hash(token)
    now = _now()
    stmt = (select(sessions.c.user_name, sessions.c.expires_at, sessions.c.last_seen_at, users.c.role)
            .select_from(sessions.join(users, users.c.name == sessions.c.user_name))
            .where(sessions.c.token_hash == digest))
    with _guard(store, "reading sessions"), store.engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        return None
    idle_end = row["last_seen_at"] + timedelta(minutes=settings.idle_minutes)
    if now >= row["expires_at"] or now >= idle_end:
        with _guard(store, "ending a session"), write_transaction(store.engine) as conn:
            conn.execute(delete(sessions).where(sessions.c.token_hash == digest))
        return None
    if now - row["last_seen_at"] >= TOUCH_EVERY:
        with _guard(store, "touching a session"), write_transaction(store.engine) as conn:
            conn.execute(update(sessions).where(sessions.c.token_hash == digest).values(last_seen_at=now))
    return Identity(name=row["user_name"], role=account_role(settings, row["user_name"], row["role"]),
                    source="account", remote=remote)


def sign_out(store, token: str | None) -> bool:
    """End the session ``token``; False when there was none."""
    if not token:
        return False
    with _guard(store, "ending a session"), write_transaction(store.engine) as conn:
        return conn.execute(delete(sessions).where(sessions.c.token_hash == _token_hash(token))).rowcount > 0


def delete_expired_sessions(store, *, now: datetime | None = None) -> int:
    """Remove sessions past their absolute end; return how many."""
    with _guard(store, "ending sessions"), write_transaction(store.engine) as conn:
        return conn.execute(delete(sessions).where(sessions.c.expires_at < (now or _now()))).rowcount
