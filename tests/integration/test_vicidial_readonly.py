"""The lookup session cannot write, is capped in time, and fails with clear one-line errors."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from core.errors import ViciDialError
from core.vicidial import LookupFilters, ViciDialSettings, connect, search_recordings
from tests.support.mariadb import free_port
from tests.support.vicidial_fixture import ViciDialFixture, vicidial_database


@pytest.fixture(scope="module")
def vicidial() -> Iterator[ViciDialFixture]:
    with vicidial_database() as fixture:
        yield fixture


def recording_count(fixture: ViciDialFixture) -> int:
    admin = fixture.admin()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM recording_log")
            return int(cur.fetchone()["n"])
    finally:
        admin.close()


@pytest.mark.parametrize("statement", [
    "INSERT INTO recording_log (recording_id, filename, location) VALUES (1, 'x', 'http://evil/x.wav')",
    "UPDATE recording_log SET location = 'http://evil/x.wav'",
    "DELETE FROM recording_log",
])
def test_lookup_session_cannot_write(vicidial: ViciDialFixture, statement: str) -> None:
    """The fixture account is root (all grants): only the read-only session stops the write."""
    before = recording_count(vicidial)
    with connect(vicidial.settings) as session:
        with pytest.raises(ViciDialError, match="refused to write: the lookup session is read-only"):
            session.query(statement)
        assert session.query("SELECT COUNT(*) AS n FROM recording_log LIMIT 1")[0]["n"] == before
    assert recording_count(vicidial) == before
    admin = vicidial.admin()
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT COUNT(*) AS n FROM recording_log WHERE location LIKE 'http://evil/%%'")
            assert cur.fetchone()["n"] == 0
    finally:
        admin.close()


def test_statement_time_is_capped_by_the_server(vicidial: ViciDialFixture) -> None:
    with connect(vicidial.with_settings(max_statement_time_s=0.3)) as session:
        with pytest.raises(ViciDialError, match=r"stopped by the server after 0\.3 s \(max_statement_time\)"):
            session.query("SELECT SLEEP(5) AS s LIMIT 1")
        assert session.query("SELECT 1 AS ok LIMIT 1") == [{"ok": 1}]  # the session survives


def test_read_timeout_gives_a_clear_error(vicidial: ViciDialFixture) -> None:
    with connect(vicidial.with_settings(read_timeout_s=0.5)) as session:
        with pytest.raises(ViciDialError, match=r"no answer within the read timeout of 0\.5 s"):
            session.query("SELECT SLEEP(3) AS s LIMIT 1")


def test_wrong_password_names_host_and_user_not_the_password(vicidial: ViciDialFixture) -> None:
    settings = vicidial.with_settings(user="callqa_ro", password="wrong-Secret-123")
    with pytest.raises(ViciDialError) as info:
        connect(settings)
    message = str(info.value)
    assert message == f"ViciDial {settings.address}: access denied for user 'callqa_ro'"
    assert "wrong-Secret-123" not in message


def test_unknown_database(vicidial: ViciDialFixture) -> None:
    with pytest.raises(ViciDialError, match="unknown database 'no_such_vicidial'"):
        connect(vicidial.with_settings(database="no_such_vicidial"))


def test_refused_port_is_unreachable() -> None:
    settings = ViciDialSettings(host="127.0.0.1", port=free_port(), user="callqa_ro", password="x")
    with pytest.raises(ViciDialError, match=rf"^ViciDial 127\.0\.0\.1:{settings.port}: unreachable \(connection refused\)$"):
        search_recordings(settings, LookupFilters())


def test_silent_server_times_out() -> None:
    """A port that accepts TCP but never greets, like a firewalled or hung server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        settings = ViciDialSettings(host="127.0.0.1", port=port, user="callqa_ro", connect_timeout_s=1)
        with pytest.raises(ViciDialError, match=rf"^ViciDial 127\.0\.0\.1:{port}: unreachable \(timed out after 1 s\)$"):
            connect(settings)


def test_not_configured() -> None:
    with pytest.raises(ViciDialError, match="not configured"):
        connect(ViciDialSettings())
