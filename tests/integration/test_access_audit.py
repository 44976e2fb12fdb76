"""Built-in accounts, sessions and the audit log on real stores (SQLite and PostgreSQL), and their CLI."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update

from core.access.accounts import (
    add_user,
    list_users,
    remove_user,
    session_identity,
    set_password,
    set_role,
    sign_in,
)
from core.access.settings import AccessSettings
from core.audit import AuditTrail, cli_identity, entries, record, verify
from core.cli import main
from core.errors import AccessDeniedError, CallNotFoundError, ParameterError, QueryRefusedError
from core.llm.guardrails import validate_select
from core.llm.settings import DEFAULT_STORE_TABLES
from core.store import open_store
from core.store.schema import sessions
from core.store.store import utcnow
from tests.support.postgres import pg_database, pg_url  # noqa: F401  (fixtures)

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase"
ACCESS = AccessSettings.from_mapping({"max_failed_logins": 3, "idle_minutes": 30, "session_hours": 8})


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path):
    url = str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = open_store(url)
    yield s
    s.close()


def test_accounts_sign_in_and_sessions_expire(store) -> None:
    add_user(store, "alice", role="analyst", password=PASSWORD)
    with pytest.raises(ParameterError, match="exists already"):
        add_user(store, "alice", role="viewer", password=PASSWORD)
    token, who = sign_in(store, "alice", PASSWORD, settings=ACCESS, remote="10.0.0.7")
    assert (who.name, who.role, who.source) == ("alice", "analyst", "account")
    with store.engine.connect() as conn:  # only the token's hash is stored
        assert conn.execute(text("SELECT token_hash FROM sessions")).scalar() != token
    assert session_identity(store, token, settings=ACCESS).role == "analyst"
    assert session_identity(store, token + "x", settings=ACCESS) is None
    # [access.users] wins over the stored role
    assert session_identity(store, token, settings=AccessSettings.from_mapping({"users": {"alice": "admin"}})).role == "admin"

    # idle: no use for longer than idle_minutes ends the session (and deletes it)
    with store.engine.begin() as conn:
        conn.execute(update(sessions).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    assert session_identity(store, token, settings=ACCESS) is None
    assert list_users(store)[0]["sessions"] == 0

    # absolute: session_hours after sign-in, however active
    token, _ = sign_in(store, "alice", PASSWORD, settings=ACCESS)
    with store.engine.begin() as conn:
        conn.execute(update(sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert session_identity(store, token, settings=ACCESS) is None

    # a new password, a new role or removing the account ends every session
    token, _ = sign_in(store, "alice", PASSWORD, settings=ACCESS)
    set_password(store, "alice", NEW_PASSWORD)
    assert session_identity(store, token, settings=ACCESS) is None
    with pytest.raises(AccessDeniedError):
        sign_in(store, "alice", PASSWORD, settings=ACCESS)
    token, _ = sign_in(store, "alice", NEW_PASSWORD, settings=ACCESS)
    set_role(store, "alice", "viewer")
    assert session_identity(store, token, settings=ACCESS) is None
    token, who = sign_in(store, "alice", NEW_PASSWORD, settings=ACCESS)
    assert who.role == "viewer"
    remove_user(store, "alice")
    assert session_identity(store, token, settings=ACCESS) is None
    with pytest.raises(CallNotFoundError):
        remove_user(store, "alice")
    assert list_users(store) == []
    assert [e["action"] for e in entries(store, actor="alice", oldest_first=True)] == [
        "login", "login", "login", "login.failed", "login", "login"]


def test_wrong_passwords_are_audited_and_lock_the_account(store) -> None:
    add_user(store, "bob", role="viewer", password=PASSWORD)
    for guess in ("guess-number-1", "guess-number-2"):
        with pytest.raises(AccessDeniedError, match="wrong user name or password"):
            sign_in(store, "bob", guess, settings=ACCESS, remote="192.0.2.9")
    with pytest.raises(AccessDeniedError, match="wrong user name or password"):  # unknown user: same message
        sign_in(store, "mallory", PASSWORD, settings=ACCESS)
    with pytest.raises(AccessDeniedError, match="wrong user name or password"):
        sign_in(store, "bob", "guess-number-3", settings=ACCESS)
    with pytest.raises(AccessDeniedError, match="too many failed sign-ins"):  # even with the right password
        sign_in(store, "bob", PASSWORD, settings=ACCESS)
    failed = entries(store, actor="bob", action="login.failed")
    assert len(failed) == 4 and failed[-1]["remote"] == "192.0.2.9" and failed[0]["detail"] == "locked"
    assert entries(store, actor="mallory")[0]["action"] == "login.failed"


def test_audit_log_is_a_hash_chain_that_reveals_edits(store) -> None:
    trail = AuditTrail(store, cli_identity(), "cli")
    ids = [trail.record("audio.play", target=f"call-{i}", detail={"leg": "caller"}) for i in range(5)]
    assert ids == sorted(ids)
    check = verify(store)
    assert check.ok and check.checked == 5
    rows = entries(store, action="audio.")
    assert [r["target"] for r in rows] == [f"call-{i}" for i in reversed(range(5))]  # newest first
    assert json.loads(rows[0]["detail"]) == {"leg": "caller"}

    with store.engine.begin() as conn:  # someone edits an entry in the database
        conn.execute(text("UPDATE audit_log SET target = 'call-x' WHERE id = :i"), {"i": ids[2]})
    broken = verify(store)
    assert not broken.ok and broken.broken_at == ids[2] and "content" in broken.reason
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET target = 'call-2' WHERE id = :i"), {"i": ids[2]})
        conn.execute(text("DELETE FROM audit_log WHERE id = :i"), {"i": ids[3]})  # or removes one
    broken = verify(store)
    assert not broken.ok and broken.broken_at == ids[4] and "removed" in broken.reason


def test_the_chat_cannot_read_accounts_or_the_audit_log() -> None:
    for table in ("audit_log", "users", "sessions", "chat_log", "purged_calls"):
        assert table not in DEFAULT_STORE_TABLES
        with pytest.raises(QueryRefusedError, match="allow-list"):
            validate_select(f"SELECT * FROM {table}", allowed_tables=DEFAULT_STORE_TABLES, dialect="sqlite")


def test_cli_users_and_audit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    db = str(tmp_path / "cli.db")
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["--store", db, "users", "add", "carol", "--role", "admin", "--password-stdin"]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("too-short\n"))
    assert main(["--store", db, "users", "add", "dave", "--role", "viewer", "--password-stdin"]) == 2
    assert "callqa: error: the password is shorter than 10 characters" in capsys.readouterr().err
    assert main(["--store", db, "users", "role", "carol", "analyst"]) == 0
    capsys.readouterr()
    assert main(["--store", db, "users", "list", "--json"]) == 0
    (carol,) = json.loads(capsys.readouterr().out)
    assert (carol["name"], carol["role"], carol["sessions"]) == ("carol", "analyst", 0)
    assert "password_hash" not in carol

    assert main(["--store", db, "audit", "--json", "--action", "user."]) == 0
    actions = [(e["action"], e["target"], e["source"]) for e in json.loads(capsys.readouterr().out)]
    assert actions == [("user.role", "carol", "cli"), ("user.add", "carol", "cli")]
    assert main(["--store", db, "audit", "--user", "nobody"]) == 0
    assert "no audit entries match" in capsys.readouterr().out
    assert main(["--store", db, "audit", "--verify"]) == 0
    assert "audit log intact: 2 entries checked" in capsys.readouterr().out
    with open_store(db) as store:
        record(store, cli_identity(), "settings.change", source="cli", target="[privacy]")
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE action = 'user.add'"))
    assert main(["--store", db, "audit", "--verify"]) == 1
    assert "callqa: error: audit log broken at entry 1" in capsys.readouterr().err
    assert main(["--store", db, "users", "remove", "zed"]) == 1
