"""Fetching recordings from disk: a real sshd on 127.0.0.1 (SFTP) and local roots."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from core.errors import FetchError, UnsafeLocationError
from core.fetch import fetch_recording
from core.fetch.sftp import SftpSession
from core.vicidial.settings import RecordingAccess
from tests.support.sshd import SshServer, running_sshd

CHANNEL = "20261107-080000_9828963560"  # legs in ORIG/2026-11-07/
NOISY = "20261107-081637_2496561430"  # only the MP3 mix (and a stereo file, locally)
CONFERENCE = "20261107-104610_8228237954"  # conference legs left in ORIG/ by move_mix without --MIX
ESCAPE = "20261107-120000_5555550100"  # legs that are symlinks out of the spool


@pytest.fixture(scope="module")
def ssh(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        spool = server.spool
        day = spool / "ORIG" / "2026-11-07"
        day.mkdir(parents=True)
        (spool / "MP3").mkdir()
        for leg in ("in", "out"):
            shutil.copy(corpus_dir / f"{CHANNEL}-{leg}.wav", day / f"{CHANNEL}-{leg}.wav")
            shutil.copy(corpus_dir / f"{CONFERENCE}-{leg}.wav", spool / "ORIG" / f"{CONFERENCE}-{leg}.wav")
            outside = spool.parent / f"outside-{leg}.wav"
            outside.write_bytes(b"RIFF not a recording")
            os.symlink(outside, day / f"{ESCAPE}-{leg}.wav")
        shutil.copy(corpus_dir / f"{NOISY}-all.mp3", spool / "MP3" / f"{NOISY}-all.mp3")
        yield server


def access_for(ssh: SshServer, tmp_path: Path, **changes: Any) -> RecordingAccess:
    base = RecordingAccess(
        sftp_host=ssh.host, sftp_port=ssh.port, sftp_user=ssh.user, sftp_key_file=str(ssh.client_key),
        sftp_known_hosts=str(ssh.known_hosts), sftp_roots=(str(ssh.spool),), cache_dir=str(tmp_path / "cache"),
        connect_timeout_s=5.0, read_timeout_s=5.0,
    )
    return dataclasses.replace(base, **changes)


def row(name: str, *, location: str | None = None, channel: str = "SIP/carrierA-0000b001") -> dict:
    return {"recording_id": 9200001, "filename": name, "server_ip": "10.10.10.11",
            "start_time": f"{name[:4]}-{name[4:6]}-{name[6:8]} 08:00:00", "recording_channel": channel,
            "location": location}


def test_separate_legs_come_from_orig_date_folder(ssh: SshServer, corpus_dir: Path, tmp_path: Path) -> None:
    result = fetch_recording(access_for(ssh, tmp_path), row(CHANNEL), tmp_path / "out")
    assert set(result.paths) == {"in", "out"}
    for leg in ("in", "out"):
        assert result.paths[leg] == tmp_path / "out" / f"{CHANNEL}-{leg}.wav"
        assert result.paths[leg].read_bytes() == (corpus_dir / f"{CHANNEL}-{leg}.wav").read_bytes()
        assert result.sources[leg] == f"sftp://{ssh.user}@127.0.0.1:{ssh.port}{ssh.spool}/ORIG/2026-11-07/{CHANNEL}-{leg}.wav"
    assert result.warnings == []
    assert result.primary == result.paths["in"]


def test_cache_serves_unchanged_files_and_refetches_changed_ones(ssh: SshServer, tmp_path: Path) -> None:
    access = access_for(ssh, tmp_path)
    assert fetch_recording(access, row(CHANNEL), tmp_path / "a").cached == frozenset()
    assert fetch_recording(access, row(CHANNEL), tmp_path / "b").cached == frozenset({"in", "out"})
    remote_in = ssh.spool / "ORIG" / "2026-11-07" / f"{CHANNEL}-in.wav"
    stat = remote_in.stat()
    os.utime(remote_in, (stat.st_atime, stat.st_mtime + 60))  # the dialer rewrote the file
    assert fetch_recording(access, row(CHANNEL), tmp_path / "c").cached == frozenset({"out"})


def test_mix_named_by_location_is_read_from_disk(ssh: SshServer, corpus_dir: Path, tmp_path: Path) -> None:
    location = f"http://10.10.10.11/RECORDINGS/MP3/{NOISY}-all.mp3"  # host not allowed: HTTP is never used
    result = fetch_recording(access_for(ssh, tmp_path), row(NOISY, location=location), tmp_path / "out")
    assert result.paths == {"all": tmp_path / "out" / f"{NOISY}-all.mp3"}
    assert result.paths["all"].read_bytes() == (corpus_dir / f"{NOISY}-all.mp3").read_bytes()
    assert any("falling back to the mix" in w for w in result.warnings)


def test_conference_legs_are_flagged_not_one_way(ssh: SshServer, tmp_path: Path) -> None:
    result = fetch_recording(access_for(ssh, tmp_path), row(CONFERENCE, channel="Local/59600057@default"),
                             tmp_path / "out")
    assert set(result.paths) == {"in", "out"}
    assert result.metadata["recording_kind"] == "conference"
    assert any("-out is silent by design" in w for w in result.warnings)


def test_unknown_host_key_is_refused(ssh: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    access = access_for(ssh, tmp_path, sftp_known_hosts=str(empty))
    with pytest.raises(FetchError, match=rf"sftp://{ssh.user}@127\.0\.0\.1:{ssh.port}: unknown host key "
                                          r"ssh-ed25519 SHA256:\S+, not in .*refusing to connect"):
        SftpSession(host=ssh.host, port=ssh.port, access=access).stat("/")
    with pytest.raises(FetchError, match="no audio found.*unknown host key"):
        fetch_recording(access, row(CHANNEL), tmp_path / "out")


def test_changed_host_key_is_refused(ssh: SshServer, tmp_path: Path) -> None:
    other = (ssh.other_key.parent / "other_ed25519.pub").read_text().split()[:2]
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[127.0.0.1]:{ssh.port} {other[0]} {other[1]}\n")
    with pytest.raises(FetchError, match="does not match the one in"):
        SftpSession(host=ssh.host, port=ssh.port, access=access_for(ssh, tmp_path, sftp_known_hosts=str(wrong))).stat("/")


def test_unauthorised_key_fails_authentication(ssh: SshServer, tmp_path: Path) -> None:
    access = access_for(ssh, tmp_path, sftp_key_file=str(ssh.other_key))
    with pytest.raises(FetchError, match=rf"authentication failed for user '{ssh.user}' with key .*other_ed25519$"):
        SftpSession(host=ssh.host, port=ssh.port, access=access).stat("/")


def test_silent_ssh_port_times_out(tmp_path: Path, ssh: SshServer) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        access = access_for(ssh, tmp_path, sftp_port=port, connect_timeout_s=1.0)
        with pytest.raises(FetchError, match=rf"127\.0\.0\.1:{port}: unreachable \(no SSH banner within 1 s\)"):
            SftpSession(host="127.0.0.1", port=port, access=access).stat("/")


def test_oversized_file_is_refused(ssh: SshServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"larger than the 0\.0954 MB cap"):
        fetch_recording(access_for(ssh, tmp_path, max_bytes=100_000), row(CHANNEL), tmp_path / "out")
    assert not any((tmp_path / "out").glob("*.wav"))


def test_symlink_out_of_the_spool_is_refused(ssh: SshServer, tmp_path: Path) -> None:
    with pytest.raises(UnsafeLocationError, match="leads outside"):
        fetch_recording(access_for(ssh, tmp_path), row(ESCAPE), tmp_path / "out")


def test_nothing_found_and_no_location(ssh: SshServer, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"no audio found in sftp://.*location is empty or not a URL \(NULL\)"):
        fetch_recording(access_for(ssh, tmp_path), row("20261107-130000_5555550199"), tmp_path / "out")


def test_local_root_legs_then_stereo_then_mix(corpus_dir: Path, tmp_path: Path) -> None:
    access = RecordingAccess(local_roots=(str(corpus_dir),), cache_dir=str(tmp_path / "cache"))
    legs = fetch_recording(access, row(NOISY), tmp_path / "legs")
    assert set(legs.paths) == {"in", "out"} and legs.sources["in"] == f"local:{corpus_dir}{os.sep}{NOISY}-in.wav"
    assert legs.paths["out"].read_bytes() == (corpus_dir / f"{NOISY}-out.wav").read_bytes()

    only_stereo = tmp_path / "stereo_root"
    only_stereo.mkdir()
    for suffix in ("stereo.wav", "all.wav"):
        shutil.copy(corpus_dir / f"{NOISY}-{suffix}", only_stereo / f"{NOISY}-{suffix}")
    stereo = fetch_recording(dataclasses.replace(access, local_roots=(str(only_stereo),)), row(NOISY),
                             tmp_path / "stereo")
    assert set(stereo.paths) == {"stereo"} and stereo.warnings == []

    (only_stereo / f"{NOISY}-stereo.wav").unlink()
    mix = fetch_recording(dataclasses.replace(access, local_roots=(str(only_stereo),)), row(NOISY), tmp_path / "mix")
    assert set(mix.paths) == {"all"} and mix.paths["all"].suffix == ".wav"
    assert any("falling back to the mix" in w for w in mix.warnings)


def test_local_root_per_dialer(corpus_dir: Path, tmp_path: Path) -> None:
    dialer = tmp_path / "mnt" / "10.10.10.11"
    dialer.mkdir(parents=True)
    for leg in ("in", "out"):
        shutil.copy(corpus_dir / f"{CHANNEL}-{leg}.wav", dialer / f"{CHANNEL}-{leg}.wav")
    access = RecordingAccess(local_roots=(str(tmp_path / "mnt" / "{server_ip}"),), cache_dir=str(tmp_path / "c"))
    assert set(fetch_recording(access, row(CHANNEL), tmp_path / "out").paths) == {"in", "out"}
    with pytest.raises(UnsafeLocationError):
        fetch_recording(access, row(CHANNEL) | {"server_ip": "../../etc"}, tmp_path / "out")


def test_a_dataframe_row_with_missing_values_can_be_fetched(corpus_dir: Path, tmp_path: Path) -> None:
    """Rows straight from search_recordings() carry NaT/NA for missing values."""
    frame_row = {"recording_id": pd.NA, "filename": CHANNEL, "server_ip": None, "start_time": pd.NaT,
                 "recording_channel": None, "user": None, "location": float("nan"), "lead_id": pd.NA}
    access = RecordingAccess(local_roots=(str(corpus_dir),), cache_dir=str(tmp_path / "cache"))
    result = fetch_recording(access, frame_row, tmp_path / "out")
    assert set(result.paths) == {"in", "out"}
    assert result.metadata["recording_id"] is None and result.metadata["recording_kind"] == "unknown"
