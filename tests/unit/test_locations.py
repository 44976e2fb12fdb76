"""Paths and URLs built from ViciDial database values are validated before anything is fetched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import ConfigError, UnsafeLocationError
from core.fetch.locations import (
    expand_root,
    http_location,
    path_under,
    recordings_relpath,
    remote_path_under,
    safe_filename,
    safe_relpath,
)
from core.fetch.service import _groups, recording_kind
from core.vicidial.settings import RecordingAccess, ViciDialSettings

ACCESS = RecordingAccess(allowed_hosts=("10.10.10.11", "rec.example.com:8080"),
                         host_map=(("10.10.10.12", "203.0.113.22:8443"),))


@pytest.mark.parametrize("name", [
    "20250829-101512_3125551212",
    "SALESOUT_250829101512_3125551212",
    "V8291015000001048573_20250829101500",
    "20250829-101512_3125551212-all.mp3",
])
def test_plain_vicidial_filenames_pass(name: str) -> None:
    assert safe_filename(name) == name


@pytest.mark.parametrize(("name", "problem"), [
    ("", "empty"),
    ("..", "'..'"),
    ("../../etc/passwd", "'..'"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("/etc/passwd", "path separator"),
    (".hidden", "characters outside"),
    ("name with space", "characters outside"),
    ("x\x00y", "characters outside"),
    ("x" * 300, "longer than"),
])
def test_unsafe_filenames_are_refused(name: str, problem: str) -> None:
    with pytest.raises(UnsafeLocationError, match=problem):
        safe_filename(name)


def test_relpaths_drop_empty_segments_and_refuse_traversal() -> None:
    assert safe_relpath("MP3//x-all.mp3") == "MP3/x-all.mp3"
    for bad in ("/abs/x.wav", "ORIG/../../x.wav", "./x.wav", "C:/x.wav", "a\\b.wav", "ORIG/\n.wav", "//"):
        with pytest.raises(UnsafeLocationError):
            safe_relpath(bad)
    assert remote_path_under("/var/spool/asterisk/monitorDONE", "ORIG/2025-08-29/x-in.wav") == (
        "/var/spool/asterisk/monitorDONE/ORIG/2025-08-29/x-in.wav"
    )


def test_local_paths_cannot_escape_their_root_through_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "monitorDONE"
    (root / "ORIG").mkdir(parents=True)
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"x")
    os.symlink(outside, root / "ORIG" / "x-in.wav")
    (root / "ok-in.wav").write_bytes(b"y")
    assert path_under(root, "ok-in.wav") == root / "ok-in.wav"
    with pytest.raises(UnsafeLocationError, match="outside"):
        path_under(root, "ORIG/x-in.wav")


def test_allowed_and_mapped_hosts_pass_with_the_url_to_contact() -> None:
    loc = http_location("http://10.10.10.11/RECORDINGS/MP3/20250829-101512_3125551212-all.mp3", ACCESS)
    assert loc.url == "http://10.10.10.11/RECORDINGS/MP3/20250829-101512_3125551212-all.mp3"
    assert loc.leaf == "20250829-101512_3125551212-all.mp3"
    mapped = http_location("https://10.10.10.12/RECORDINGS/x-all.wav", ACCESS)
    assert mapped.url == "https://203.0.113.22:8443/RECORDINGS/x-all.wav"
    assert http_location("http://REC.example.com:8080/RECORDINGS/x.wav", ACCESS).leaf == "x.wav"
    # the doubled slash the local archive script writes is real and harmless
    assert http_location("http://10.10.10.11//archive/RECORDINGS/2025-08-29/x-all.mp3", ACCESS).leaf == "x-all.mp3"


@pytest.mark.parametrize(("location", "problem"), [
    ("http://10.9.9.9/RECORDINGS/x-all.mp3", "not in \\[recordings\\] allowed_hosts"),
    ("http://rec.example.com:9999/RECORDINGS/x.wav", "not in \\[recordings\\] allowed_hosts"),
    ("http://10.10.10.11/RECORDINGS/../../etc/passwd", "unsafe path segment"),
    ("http://10.10.10.11/RECORDINGS/%2e%2e/%2e%2e/etc/passwd", "unsafe path segment"),
    ("http://10.10.10.11/RECORDINGS/a%2fb.wav", "unsafe path segment"),
    ("http://admin:pw@10.10.10.11/RECORDINGS/x.wav", "carries credentials"),
    ("http://10.10.10.11/RECORDINGS/x.wav?file=/etc/passwd", "query"),
    ("ftp://10.10.10.11/RECORDINGS/x.wav", "not an http"),
    ("file:///etc/passwd", "not an http"),
    ("/var/spool/asterisk/monitorDONE/x.wav", "not an http"),
    ("20250829-101512_3125551212", "not an http"),
    ("http://10.10.10.11/RECORDINGS/", "empty"),
    ("", "empty"),
])
def test_unsafe_or_unlisted_locations_are_refused(location: str, problem: str) -> None:
    with pytest.raises(UnsafeLocationError, match=problem):
        http_location(location, ACCESS)


def test_password_never_appears_in_a_refusal() -> None:
    with pytest.raises(UnsafeLocationError) as info:
        http_location("http://admin:s3cret-pw@10.10.10.11/RECORDINGS/x.wav", ACCESS)
    assert "s3cret-pw" not in str(info.value)


def test_location_maps_onto_the_monitordone_tree() -> None:
    assert recordings_relpath("http://10.10.10.11/RECORDINGS/MP3/x-all.mp3") == "MP3/x-all.mp3"
    assert recordings_relpath("http://10.10.10.50/RECORDINGS/2025-08-29/x-all.mp3") == "2025-08-29/x-all.mp3"
    assert recordings_relpath("http://10.10.10.11//archive/RECORDINGS/2025-08-29/x-all.mp3") == "2025-08-29/x-all.mp3"
    assert recordings_relpath("20250829-101512_3125551212") is None  # not processed yet
    assert recordings_relpath(None) is None
    with pytest.raises(UnsafeLocationError):
        recordings_relpath("http://10.10.10.11/RECORDINGS/%2e%2e/x.wav")


def test_server_ip_placeholder_is_filled_only_with_a_host() -> None:
    assert expand_root("/mnt/recordings/{server_ip}", server_ip="10.10.10.11") == "/mnt/recordings/10.10.10.11"
    assert expand_root("/var/spool/asterisk/monitorDONE", server_ip=None) == "/var/spool/asterisk/monitorDONE"
    for bad in ("../..", "10.10.10.11/../x", "a b", ""):
        with pytest.raises(UnsafeLocationError):
            expand_root("/mnt/{server_ip}", server_ip=bad)


def test_leg_candidates_put_separate_legs_first_and_the_mix_last() -> None:
    groups = _groups("N", "2025-08-29", "channel", "MP3/N-all.mp3")
    assert groups[0] == ("legs", {"in": "ORIG/2025-08-29/N-in.wav", "out": "ORIG/2025-08-29/N-out.wav"})
    kinds = [what for what, _ in groups]
    assert kinds == sorted(kinds, key=["legs", "stereo", "mix"].index)
    assert groups[-1] == ("mix", {"all": "MP3/N-all.mp3"})
    gateway = _groups("V8291015000001048573_20250829101500", None, "gateway", "MP3/V8291015000001048573_20250829101500.mp3")
    assert ("legs", {"in": "ORIG/CARRIER_V8291015000001048573_20250829101500.wav",
                     "out": "ORIG/DIALER_V8291015000001048573_20250829101500.wav"}) in gateway
    assert ("stereo", {"stereo": "MP3/V8291015000001048573_20250829101500.mp3"}) in gateway


@pytest.mark.parametrize(("row", "kind"), [
    ({"recording_channel": "Local/58600051@default"}, "conference"),
    ({"recording_channel": "Local/59600057@default"}, "conference"),
    ({"recording_channel": "SIP/carrierA-0000a1b2"}, "channel"),
    ({"user": "GATEWAY", "vicidial_id": "G52211", "recording_channel": "PJSIP/dialer1-00000a1f"}, "gateway"),
    ({"recording_channel": None}, "unknown"),
])
def test_recording_kind_from_the_recorded_channel(row: dict, kind: str) -> None:
    assert recording_kind(row) == kind


def test_settings_are_optional_and_env_overrides_apply(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"):
        monkeypatch.delenv(f"CALLQA_VICIDIAL_{name}", raising=False)
    assert not ViciDialSettings.from_settings(Settings()).configured
    assert RecordingAccess.from_settings(Settings()).sftp_roots == ("/var/spool/asterisk/monitorDONE",)
    monkeypatch.setenv("CALLQA_VICIDIAL_HOST", "10.0.0.5")
    monkeypatch.setenv("CALLQA_VICIDIAL_PORT", "3307")
    monkeypatch.setenv("CALLQA_VICIDIAL_USER", "callqa_ro")
    monkeypatch.setenv("CALLQA_VICIDIAL_PASSWORD", "pw-from-env")
    settings = ViciDialSettings.from_settings(Settings(raw={"vicidial": {"host": "ignored", "database": "asterisk"}}))
    assert (settings.host, settings.port, settings.user, settings.database) == ("10.0.0.5", 3307, "callqa_ro", "asterisk")
    assert "pw-from-env" not in repr(settings)
    monkeypatch.setenv("CALLQA_VICIDIAL_PORT", "not-a-port")
    with pytest.raises(ConfigError, match="CALLQA_VICIDIAL_PORT"):
        ViciDialSettings.from_settings(Settings())
    with pytest.raises(ConfigError, match="unknown \\[recordings\\] setting"):
        RecordingAccess.from_mapping({"allowed_host": ["x"]})
    access = RecordingAccess.from_mapping({"max_mb": 0.5, "host_map": {"10.10.10.11": "127.0.0.1:8080"}},
                                          data_dir=tmp_path)
    assert access.max_bytes == 512 * 1024
    assert access.mapped_host("10.10.10.11") == "127.0.0.1:8080"
    assert access.cache_dir == str(tmp_path / "recordings-cache")


def test_the_example_configuration_loads(project_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import load_settings

    for name in ("HOST", "PORT", "USER", "PASSWORD", "DATABASE"):
        monkeypatch.delenv(f"CALLQA_VICIDIAL_{name}", raising=False)
    settings = load_settings(project_root / "callqa.toml.example")
    vicidial = ViciDialSettings.from_settings(settings)
    assert vicidial.configured and (vicidial.user, vicidial.database) == ("callqa_ro", "asterisk")
    access = RecordingAccess.from_settings(settings)
    assert access.allowed_hosts and not access.sftp_configured and access.max_bytes == 200 * 1024 * 1024
