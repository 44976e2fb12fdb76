"""Fetching recordings over HTTP from a real server that serves ../shared/corpus under /RECORDINGS/."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from core.errors import FetchError, UnsafeLocationError
from core.fetch import fetch_recording, fetch_vicidial_recording, resolve_vicidial_item, store_metadata
from core.vicidial import get_recording
from core.vicidial.settings import RecordingAccess
from tests.support import vicidial_fixture as fx
from tests.support.http_server import RecordingServer, recording_server, self_signed_cert
from tests.support.vicidial_fixture import ViciDialFixture, vicidial_database

CALL = "20261107-080000_9828963560"  # clean channel call of the corpus
DIALER = "10.10.10.11"


@pytest.fixture(scope="module")
def http(corpus_dir: Path) -> Iterator[RecordingServer]:
    with recording_server(corpus_dir, flatten=True, slow_s=1.5) as server:
        yield server


@pytest.fixture(scope="module")
def protected(corpus_dir: Path) -> Iterator[RecordingServer]:
    with recording_server(corpus_dir, auth=("callqa", "right-pw")) as server:
        yield server


@pytest.fixture(scope="module")
def vicidial() -> Iterator[ViciDialFixture]:
    with vicidial_database() as fixture:
        yield fixture


def access_for(server: RecordingServer, tmp_path: Path, **changes: Any) -> RecordingAccess:
    """Recording access whose dialer host 10.10.10.11 (and .12) is the test server."""
    base = RecordingAccess(host_map=((DIALER, server.netloc), ("10.10.10.12", server.netloc)),
                           cache_dir=str(tmp_path / "cache"), read_timeout_s=5.0, connect_timeout_s=2.0)
    return dataclasses.replace(base, **changes)


def row(location: str, **extra: object) -> dict:
    return {"recording_id": 9200001, "filename": CALL, "server_ip": DIALER, "start_time": "2026-11-07 08:00:00",
            "recording_channel": "SIP/carrierA-0000b001", "location": location, **extra}


def test_the_mix_is_fetched_from_location_with_a_warning(http: RecordingServer, corpus_dir: Path,
                                                          tmp_path: Path) -> None:
    location = f"http://{DIALER}/RECORDINGS/MP3/{CALL}-all.mp3"
    result = fetch_recording(access_for(http, tmp_path), row(location), tmp_path / "out")
    assert result.call_id == CALL
    assert result.paths == {"all": tmp_path / "out" / f"{CALL}-all.mp3"}
    assert result.paths["all"].read_bytes() == (corpus_dir / f"{CALL}-all.mp3").read_bytes()
    assert result.sources["all"] == http.url(f"MP3/{CALL}-all.mp3")
    assert any("separate legs not found" in w and "falling back to the mix" in w for w in result.warnings)
    assert result.metadata["location"] == location and result.metadata["recording_kind"] == "channel"
    assert result.cached == frozenset()


def test_a_repeat_view_is_revalidated_not_downloaded(http: RecordingServer, corpus_dir: Path, tmp_path: Path) -> None:
    location = f"http://{DIALER}/RECORDINGS/{CALL}-all.wav"
    access = access_for(http, tmp_path)
    first = fetch_recording(access, row(location), tmp_path / "a")
    second = fetch_recording(access, row(location), tmp_path / "b")
    assert (first.cached, second.cached) == (frozenset(), frozenset({"all"}))
    assert second.paths["all"].read_bytes() == (corpus_dir / f"{CALL}-all.wav").read_bytes()
    assert http.count(f"/RECORDINGS/{CALL}-all.wav", 200) == 1
    assert http.count(f"/RECORDINGS/{CALL}-all.wav", 304) == 1


def test_allowed_host_without_mapping(http: RecordingServer, tmp_path: Path) -> None:
    access = RecordingAccess(allowed_hosts=("127.0.0.1",), cache_dir=str(tmp_path / "cache"))
    result = fetch_recording(access, row(http.url(f"{CALL}-all.mp3")), tmp_path / "out")
    assert result.paths["all"].stat().st_size > 10_000


def test_basic_auth(protected: RecordingServer, tmp_path: Path) -> None:
    location = f"http://{DIALER}/RECORDINGS/{CALL}-all.mp3"
    good = access_for(protected, tmp_path, http_user="callqa", http_password="right-pw")
    assert fetch_recording(good, row(location), tmp_path / "ok").paths["all"].is_file()
    wrong = dataclasses.replace(good, http_password="wrong-pw", cache_dir=str(tmp_path / "cache2"))
    with pytest.raises(FetchError, match=r"HTTP 401 unauthorized \(the server refused \[recordings\] http_user") as info:
        fetch_recording(wrong, row(location), tmp_path / "wrong")
    assert "wrong-pw" not in str(info.value) and "right-pw" not in str(info.value)
    anonymous = access_for(protected, tmp_path / "anon")
    with pytest.raises(FetchError, match="wants a login"):
        fetch_recording(anonymous, row(location), tmp_path / "anon")


def test_missing_file_is_404(http: RecordingServer, tmp_path: Path) -> None:
    location = f"http://{DIALER}/RECORDINGS/MP3/20261107-999999_0000000000-all.mp3"
    with pytest.raises(FetchError, match=r"RECORDINGS/MP3/20261107-999999_0000000000-all\.mp3: HTTP 404 not found"):
        fetch_recording(access_for(http, tmp_path), row(location, filename="20261107-999999_0000000000"), tmp_path)


def test_a_server_that_does_not_answer_times_out(http: RecordingServer, tmp_path: Path) -> None:
    location = f"http://{DIALER}/slow/RECORDINGS/{CALL}-all.mp3"
    with pytest.raises(FetchError, match=r"timed out \(no data for 0\.3 s\)"):
        fetch_recording(access_for(http, tmp_path, read_timeout_s=0.3), row(location), tmp_path / "out")


def test_truncated_download_is_refused_and_not_kept(http: RecordingServer, tmp_path: Path) -> None:
    location = f"http://{DIALER}/truncated/RECORDINGS/{CALL}-all.wav"
    with pytest.raises(FetchError, match="truncated download"):
        fetch_recording(access_for(http, tmp_path), row(location), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_oversized_file_is_refused(http: RecordingServer, tmp_path: Path) -> None:
    location = f"http://{DIALER}/RECORDINGS/{CALL}-all.wav"
    with pytest.raises(FetchError, match=r"larger than the 0\.0477 MB cap \(\[recordings\] max_mb\)"):
        fetch_recording(access_for(http, tmp_path, max_bytes=50_000), row(location), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_unlisted_host_is_refused_before_any_request(http: RecordingServer, tmp_path: Path) -> None:
    before = len(http.requests)
    with pytest.raises(UnsafeLocationError, match="host 10.9.9.9 is not in \\[recordings\\] allowed_hosts"):
        fetch_recording(access_for(http, tmp_path), row(f"http://10.9.9.9/RECORDINGS/{CALL}-all.mp3"), tmp_path)
    assert len(http.requests) == before


def test_redirect_to_an_unlisted_host_is_refused(http: RecordingServer, tmp_path: Path) -> None:
    location = f"http://{DIALER}/redirect/10.9.9.9:80/RECORDINGS/{CALL}-all.mp3"
    with pytest.raises(UnsafeLocationError, match="redirect from .* host 10.9.9.9:80 is not in"):
        fetch_recording(access_for(http, tmp_path), row(location), tmp_path)


@pytest.mark.parametrize(("field", "value"), [
    ("filename", "../../etc/passwd"),
    ("filename", "/etc/passwd"),
    ("location", f"http://{DIALER}/RECORDINGS/../../../etc/passwd"),
])
def test_unsafe_database_values_are_refused(http: RecordingServer, tmp_path: Path, field: str, value: str) -> None:
    before = len(http.requests)
    bad = row(f"http://{DIALER}/RECORDINGS/{CALL}-all.mp3") | {field: value}
    with pytest.raises(UnsafeLocationError):
        fetch_recording(access_for(http, tmp_path), bad, tmp_path / "out")
    assert len(http.requests) == before


def test_database_row_to_files_end_to_end(vicidial: ViciDialFixture, http: RecordingServer, corpus_dir: Path,
                                          tmp_path: Path) -> None:
    recording = get_recording(vicidial.settings, fx.CORPUS_CHANNEL)
    result = fetch_recording(access_for(http, tmp_path), recording, tmp_path / "out")
    name = fx.CORPUS_FILENAMES[fx.CORPUS_CHANNEL]
    assert result.call_id == name
    assert result.paths["all"] == tmp_path / "out" / f"{name}-all.wav"
    assert result.paths["all"].read_bytes() == (corpus_dir / f"{name}-all.wav").read_bytes()
    meta = result.metadata
    assert (meta["recording_id"], meta["lead_id"], meta["uniqueid"]) == (fx.CORPUS_CHANNEL, 3000001, "1794038388.70112")
    assert (meta["user"], meta["full_name"], meta["campaign_name"]) == ("6001", "Maria Lopez", "Outbound Sales Q3")
    assert (meta["hangup_cause"], meta["sip_hangup_cause"], meta["dialstatus"]) == (16, 200, "ANSWER")
    assert (meta["call_date"], meta["length_in_sec"], meta["status"]) == ("2026-11-07 08:00:00", 65, "SALE")


def test_conference_recording_from_the_database_is_flagged(vicidial: ViciDialFixture, http: RecordingServer,
                                                           tmp_path: Path) -> None:
    recording = get_recording(vicidial.settings, fx.CORPUS_CONFERENCE)
    result = fetch_recording(access_for(http, tmp_path), recording, tmp_path / "out")
    assert set(result.paths) == {"all"} and result.paths["all"].suffix == ".mp3"
    assert result.metadata["recording_kind"] == "conference" and result.metadata["ingroup"] == "SUPPORT_IN"
    assert any("agent-conference recording" in w for w in result.warnings)


def test_recording_id_to_files_through_the_configuration(vicidial: ViciDialFixture, http: RecordingServer,
                                                          tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `callqa analyze --recording-id` and the scan use: [vicidial] + [recordings] -> files."""
    for name in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"):
        monkeypatch.delenv(f"CALLQA_VICIDIAL_{name}", raising=False)
    s = vicidial.settings
    settings = Settings(raw={
        "vicidial": {"host": s.host, "port": s.port, "user": s.user, "password": s.password, "database": s.database},
        "recordings": {"host_map": {"10.10.10.11": http.netloc}, "cache_dir": str(tmp_path / "cache")},
    })
    result = fetch_vicidial_recording(settings, fx.CORPUS_NOISY, tmp_path / "out")
    assert result.paths == {"all": tmp_path / "out" / f"{fx.CORPUS_FILENAMES[fx.CORPUS_NOISY]}-all.mp3"}
    assert result.metadata["full_name"] == fx.INJECTION_FULL_NAME
    assert result.metadata["recording_kind"] == "conference"

    # the scan's resolver for `vicidial` work items, and the metadata stored with each analysis
    from core.work import WorkItem

    name = fx.CORPUS_FILENAMES[fx.CORPUS_CHANNEL]
    recording = get_recording(s, fx.CORPUS_CHANNEL)
    item = WorkItem(call_id=name, kind="vicidial", ref=str(fx.CORPUS_CHANNEL), metadata=store_metadata(recording))
    local = resolve_vicidial_item(item, tmp_path / "run", settings)
    call = local.call
    assert any("falling back to the mix" in w for w in local.warnings)
    assert local.extra["vicidial"]["recording_id"] == fx.CORPUS_CHANNEL
    assert call.call_id == name and set(call.files) == {"all"}
    assert call.files["all"] == tmp_path / "run" / "vicidial" / f"{name}-all.wav"
    assert (item.metadata["call_time"], item.metadata["agent"], item.metadata["campaign"]) == (
        "2026-11-07 08:00:00", "6001", "SALESOUT")
    assert (item.metadata["hangup_cause"], item.metadata["lead_id"]) == (16, 3000001)


def test_https_certificate_is_verified(corpus_dir: Path, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    with recording_server(corpus_dir, tls=(cert, key)) as https:
        location = https.url(f"{CALL}-all.mp3")
        assert location.startswith("https://127.0.0.1:")
        access = RecordingAccess(allowed_hosts=("127.0.0.1",), cache_dir=str(tmp_path / "cache"))
        with pytest.raises(FetchError, match=r"TLS certificate verification failed \(set \[recordings\] tls_ca\)"):
            fetch_recording(access, row(location), tmp_path / "refused")
        trusted = dataclasses.replace(access, tls_ca=str(cert))
        assert fetch_recording(trusted, row(location), tmp_path / "ok").paths["all"].stat().st_size > 10_000
