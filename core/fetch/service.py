"""Fetching one ViciDial recording for analysis, preferring separate legs.

Where the files of a recording can be (``../shared/docs/vicidial.md`` section 4):

1. **separate legs** ``NAME-in.wav`` / ``NAME-out.wav`` below a configured local or SFTP
   root laid out like ``monitorDONE``: in ``ORIG/YYYY-MM-DD/``, ``ORIG/`` or the root itself
   (channel recordings keep them in ``monitorDONE/ORIG/`` after mixing; a ``monitorS`` root
   holds stereo CUSTOMER legs); for recording-gateway calls ``ORIG/CARRIER_NAME.wav``
   (customer, saved as ``-in``) and ``ORIG/DIALER_NAME.wav`` (agent, saved as ``-out``);
2. **stereo**: ``NAME-stereo.wav``, or a gateway recording's merged 2-channel file;
3. **the mix**: the lossless ``NAME-all.wav`` on disk if still there, else the file
   ``recording_log.location`` names (on disk below the root, or over HTTP) -- with a warning,
   because each leg is 6 dB down in it and directional checks are limited.

Agent-conference recordings (channel ``Local/5<conference>@...``) never have caller/agent
legs: their ``-in`` is already the conference mix and ``-out`` is silent by design. That is
reported in ``warnings`` and ``metadata['recording_kind']`` so it is not mistaken for one-way
audio.

Files are saved under ``dest_dir`` with ViciDial naming (``NAME-in.wav``, ``NAME-all.mp3``...)
so :func:`core.audio.layout.call_files_for` recognises the layout from what is beside them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import CallNotFoundError, ConfigError, FetchError, UnsafeLocationError
from core.fetch.cache import FetchCache, place
from core.fetch.http import fetch_http
from core.fetch.local import LocalRoot
from core.fetch.locations import (
    DiskSource,
    RemoteFile,
    check_host,
    expand_root,
    host_allowed,
    http_location,
    recordings_relpath,
    safe_filename,
)
from core.fetch.sftp import SftpRoot, SftpSession
from core.jsonable import json_value
from core.vicidial.lookup import get_recording
from core.vicidial.settings import RecordingAccess
from core.work import LocalCall, WorkItem

METADATA_KEYS = (
    "recording_id", "lead_id", "uniqueid", "vicidial_id", "closecallid", "direction", "user", "full_name",
    "campaign_id", "campaign_name", "ingroup", "group_name", "phone_code", "phone_number", "server_ip", "server_id",
    "call_date", "start_time", "length_in_sec", "call_length_in_sec", "status", "status_name", "term_reason",
    "hangup_cause", "sip_hangup_cause", "sip_hangup_reason", "dialstatus", "location", "filename",
    "recording_channel",
)
_CONFERENCE_CHANNEL = re.compile(r"^Local/5\d{7}@")  # silent-join prefix 5 + MeetMe/ConfBridge room
_TRUNK_CHANNEL = re.compile(r"^(SIP|PJSIP|IAX2|DAHDI|Zap)/")
_FULLDATE = re.compile(r"^(?:.*_)?(\d{4})(\d{2})(\d{2})-\d{6}(?:_|$)")


@dataclass(frozen=True)
class FetchedRecording:
    """The local files of one ViciDial recording, ready for analysis.

    Attributes
    ----------
    call_id : str
        The recording's ``filename`` (ViciDial naming, e.g. ``FULLDATE_CUSTPHONE``).
    paths : dict of str to Path
        Keys among ``in``, ``out`` (separate legs), ``stereo`` and ``all`` (the mix); the
        files are in ``dest_dir`` named ``<call_id>-<key>.<ext>``.
    warnings : list of str
        Fallbacks taken (mix instead of legs), conference-recording notes, sources that could
        not be checked.
    metadata : dict
        The ViciDial row's identifiers and call data (JSON-ready) plus ``recording_kind``
        (``conference``, ``channel``, ``gateway`` or ``unknown``).
    sources : dict of str to str
        Where each file came from (URL or ``sftp://``/``local:`` path).
    cached : frozenset of str
        Keys served from the cache without downloading.
    """

    call_id: str
    paths: dict[str, Path]
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    cached: frozenset[str] = frozenset()

    @property
    def primary(self) -> Path:
        """The file to hand to the analysis (its siblings are found by name)."""
        for key in ("in", "stereo", "all", "out"):
            if key in self.paths:
                return self.paths[key]
        raise FetchError(f"{self.call_id}: no file was fetched")


def recording_kind(row: Mapping[str, Any]) -> str:
    """``gateway``, ``conference``, ``channel`` or ``unknown``, from the recording row."""
    if str(row.get("user") or "") == "GATEWAY" or str(row.get("vicidial_id") or "").startswith("G"):
        return "gateway"
    channel = str(row.get("recording_channel") or row.get("channel") or "")
    if _CONFERENCE_CHANNEL.match(channel):
        return "conference"
    if _TRUNK_CHANNEL.match(channel):
        return "channel"
    return "unknown"


def _day(row: Mapping[str, Any], filename: str) -> str | None:
    """``YYYY-MM-DD`` of the recording start (the ORIG/<date>/ folder), if known."""
    text = str(row.get("start_time") or "")
    if re.match(r"^\d{4}-\d{2}-\d{2}", text) and not text.startswith("0000"):
        return text[:10]
    m = _FULLDATE.match(filename)
    return f"{m.group(1)}-{m.group(2)}-{m.group(3)}" if m else None


def _groups(name: str, day: str | None, kind: str, location_rel: str | None) -> list[tuple[str, dict[str, str]]]:
    """Candidate file sets below a monitorDONE-like root, best first: (what, {role: relpath})."""
    folders = [f"ORIG/{day}/", "ORIG/", ""] if day else ["ORIG/", ""]
    groups: list[tuple[str, dict[str, str]]] = [
        ("legs", {"in": f"{d}{name}-in.wav", "out": f"{d}{name}-out.wav"}) for d in folders
    ]
    if kind == "gateway":
        groups += [("legs", {"in": f"{d}CARRIER_{name}.wav", "out": f"{d}DIALER_{name}.wav"}) for d in folders]
        groups += [("stereo", {"stereo": f"{d}{name}.wav"}) for d in ("", *folders[:-1])]
        if location_rel:
            groups.append(("stereo", {"stereo": location_rel}))
    groups += [("stereo", {"stereo": f"{d}{name}-stereo.wav"}) for d in ("", *folders[:-1])]
    groups += [("mix", {"all": f"{d}{name}-all.wav"}) for d in ("", *folders[:-1])]
    if location_rel and kind != "gateway":
        groups.append(("mix", {"all": location_rel}))
    seen, unique = set(), []
    for what, rels in groups:
        key = tuple(sorted(rels.items()))
        if key not in seen:
            seen.add(key)
            unique.append((what, rels))
    return unique


def _suffix(name: str) -> str:
    if name.lower().endswith(".gpg"):
        raise FetchError(f"{name}: GPG-encrypted recordings cannot be analysed (decrypt them on the dialer)")
    return Path(name).suffix.lower() or ".wav"


class _Fetcher:
    """The state of one :func:`fetch_recording` call: sources, cache, what was found."""

    def __init__(self, access: RecordingAccess, row: Mapping[str, Any], dest_dir: Path, stack: ExitStack) -> None:
        self.access = access
        self.row = row
        self.dest_dir = dest_dir
        self.name = safe_filename(row.get("filename"))
        self.cache = FetchCache(access.cache_path(), max_bytes=access.cache_max_bytes)
        self.warnings: list[str] = []
        self.broken: dict[str, str] = {}  # connection -> error
        self.paths: dict[str, Path] = {}
        self.sources: dict[str, str] = {}
        self.cached: set[str] = set()
        self.roots = self._disk_sources(stack)

    def _disk_sources(self, stack: ExitStack) -> list[DiskSource]:
        access, server_ip = self.access, self.row.get("server_ip")
        uses_ip = any("{server_ip}" in t for t in (*access.local_roots, *access.sftp_roots, access.sftp_host))
        if uses_ip and not server_ip:
            self.warnings.append(f"{self.name}: server_ip is empty; roots using {{server_ip}} were skipped")
        roots: list[DiskSource] = []
        for template in access.local_roots:
            if "{server_ip}" in template and not server_ip:
                continue
            roots.append(LocalRoot(Path(expand_root(template, server_ip=server_ip)).expanduser()))
        if access.sftp_host and not ("{server_ip}" in access.sftp_host and not server_ip):
            host = check_host(expand_root(access.sftp_host, server_ip=server_ip), what="sftp host")
            if "{server_ip}" in access.sftp_host and not host_allowed(host, None, access):
                raise UnsafeLocationError(f"server_ip {host} is not in [recordings] allowed_hosts; refusing SFTP to it")
            session = stack.enter_context(SftpSession(host=host, port=access.sftp_port, access=access))
            for template in access.sftp_roots:
                if "{server_ip}" in template and not server_ip:
                    continue
                roots.append(SftpRoot(session, expand_root(template, server_ip=server_ip)))
        return roots

    def looked_in(self) -> str:
        labels = [root.label for root in self.roots]
        return ", ".join(labels) if labels else "no local_roots/sftp_host configured"

    def _find(self, rels: dict[str, str]) -> tuple[DiskSource, dict[str, RemoteFile]] | None:
        """The first root holding every file of ``rels``; a failing connection is noted and skipped."""
        for root in self.roots:
            if root.connection in self.broken:
                continue
            try:
                found: dict[str, RemoteFile] = {}
                for role, rel in rels.items():
                    file = root.stat(rel)
                    if file is None:
                        break
                    found[role] = file
                else:
                    return root, found
            except UnsafeLocationError:
                raise
            except FetchError as exc:
                self.broken[root.connection] = str(exc)
        return None

    def _transfer(self, root: DiskSource, file: RemoteFile, dest: Path) -> bool:
        """Copy one file to ``dest`` (through the cache for remote roots); True if served from cache."""
        max_bytes = self.access.max_bytes
        if not root.cacheable:
            root.download(file, dest, max_bytes=max_bytes)
            return False
        key = root.origin(file)
        hit = self.cache.match(key, size_bytes=file.size_bytes, mtime_s=file.mtime_s)
        if hit is not None:
            place(hit.path, dest)
            return True
        tmp = self.cache.begin(key)
        try:
            root.download(file, tmp, max_bytes=max_bytes)
            entry = self.cache.commit(key, tmp, name=posixpath.basename(file.path), mtime_s=file.mtime_s)
        finally:
            self.cache.discard(tmp)
        place(entry.path, dest)
        return False

    def from_disk(self, groups: list[tuple[str, dict[str, str]]]) -> str | None:
        """Fetch the first candidate set found on a root; return its kind (legs/stereo/mix) or None."""
        for what, rels in groups:
            hit = self._find(rels)
            if hit is None:
                continue
            root, files = hit
            for role, file in files.items():
                dest = self.dest_dir / f"{self.name}-{role}{_suffix(file.path)}"
                if self._transfer(root, file, dest):
                    self.cached.add(role)
                self.paths[role], self.sources[role] = dest, root.origin(file)
            return what
        return None

    def from_location(self, location: str, *, role: str) -> None:
        """Fetch the file ``recording_log.location`` names, over HTTP, as ``role``."""
        if "://" not in location:
            reasons = "; ".join(self.broken.values())
            raise FetchError(
                f"recording {self.row.get('recording_id')} ({self.name}): no audio found in {self.looked_in()}"
                f"{' (' + reasons + ')' if reasons else ''}, and its location is empty or not a URL "
                f"({location or 'NULL'}): the dialer may not have processed it yet"
            )
        target = http_location(location, self.access)
        download = fetch_http(target, access=self.access, cache=self.cache)
        dest = self.dest_dir / f"{self.name}-{role}{_suffix(target.leaf)}"
        self.paths[role], self.sources[role] = place(download.path, dest), download.url
        if download.cached:
            self.cached.add(role)


def _notes(what: str, kind: str, name: str, mix_source: str | None, looked_in: str) -> list[str]:
    """Warnings about what was fetched: the mix fallback and the conference-recording fact."""
    if what == "mix" and kind == "conference":
        return [f"{name} is an agent-conference recording: ViciDial keeps no separate caller/agent legs for it, "
                f"so the mix {mix_source} is analysed (both talkers on one track)"]
    if what == "mix":
        return [f"separate legs not found for {name} (looked in {looked_in}); falling back to the mix {mix_source}: "
                "each leg is 6 dB down and per-leg checks (one-way audio, talk balance, echo) are limited"]
    if what == "legs" and kind == "conference":
        return [f"{name} is an agent-conference recording: -in holds the whole conversation as the bridge mixed it "
                "and -out is silent by design, which is not one-way audio"]
    return []


def fetch_recording(settings: Settings | RecordingAccess, row: Mapping[str, Any], dest_dir: Path) -> FetchedRecording:
    """Fetch the audio of one ViciDial recording into ``dest_dir``.

    Parameters
    ----------
    settings : Settings or RecordingAccess
        The ``[recordings]`` configuration (roots, SFTP login, allowed hosts, limits).
    row : mapping
        A recording row from :func:`core.vicidial.get_recording` or
        :func:`core.vicidial.search_recordings` (needs ``filename``; uses ``location``,
        ``server_ip``, ``start_time``, ``recording_channel``, ``user``, ``vicidial_id``).
    dest_dir : Path
        Where the files are saved (created if needed).

    Returns
    -------
    FetchedRecording
        Separate legs when found, else a stereo file, else the mix with a warning.

    Raises
    ------
    UnsafeLocationError
        The filename, location or server_ip from the database is unsafe, or the location's
        host is not allowed.
    FetchError
        Nothing could be fetched (with every reason), or a transfer failed.
    """
    access = settings if isinstance(settings, RecordingAccess) else RecordingAccess.from_settings(settings)
    row = {key: json_value(value) for key, value in row.items()}  # NaN/NaT/NA from a DataFrame row -> None
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    kind = recording_kind(row)
    location = str(row.get("location") or "").strip()
    location_rel = recordings_relpath(location)
    with ExitStack() as stack:
        fetcher = _Fetcher(access, row, dest_dir, stack)
        what = fetcher.from_disk(_groups(fetcher.name, _day(row, fetcher.name), kind, location_rel))
        if what is None:
            what = "stereo" if kind == "gateway" else "mix"
            fetcher.from_location(location, role="stereo" if kind == "gateway" else "all")
    warnings = fetcher.warnings + [f"could not check {conn}: {error}" for conn, error in fetcher.broken.items()]
    warnings += _notes(what, kind, fetcher.name, fetcher.sources.get("all"), fetcher.looked_in())
    metadata = {key: row.get(key) for key in METADATA_KEYS}
    metadata["recording_kind"] = kind
    return FetchedRecording(call_id=fetcher.name, paths=fetcher.paths, warnings=warnings, metadata=metadata,
                            sources=fetcher.sources, cached=frozenset(fetcher.cached))


def fetch_vicidial_recording(settings: Settings, recording_id: int, dest_dir: Path) -> FetchedRecording:
    """Look up one recording in ViciDial and fetch its audio: what ``callqa analyze
    --recording-id``, ``callqa scan vicidial`` and the dashboard share.

    Parameters
    ----------
    settings : Settings
        The configuration (``[vicidial]`` and ``[recordings]``).
    recording_id : int
        ``recording_log.recording_id``.
    dest_dir : Path
        Where the files are saved.

    Raises
    ------
    CallNotFoundError
        No such recording.
    ViciDialError, FetchError, UnsafeLocationError
        As :func:`core.vicidial.get_recording` and :func:`fetch_recording`.
    """
    return fetch_recording(settings, get_recording(settings, recording_id), dest_dir)


def store_metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ViciDial metadata to store with an analysis of this recording's call.

    Keys :meth:`core.store.store.ResultStore.save_analysis` indexes (``call_time``, ``lead_id``,
    ``uniqueid``, ``agent``, ``campaign``, ``server_ip``, ``hangup_cause``) plus the rest of
    :data:`METADATA_KEYS`; ``campaign`` is the in-group for inbound calls. JSON-ready values.
    """
    clean = {key: json_value(value) for key, value in row.items()}
    meta = {key: clean.get(key) for key in METADATA_KEYS}
    meta.update(
        call_time=clean.get("call_date") or clean.get("start_time"),
        agent=clean.get("user"),
        campaign=clean.get("campaign_id") or clean.get("ingroup"),
        recording_kind=recording_kind(clean),
    )
    return meta


def vicidial_item(row: Mapping[str, Any]) -> WorkItem:
    """The work item of one ``recording_log`` row: ``call_id`` its filename, ``ref`` its
    recording id, the metadata of :func:`store_metadata`; fetched where it is analysed.

    Raises
    ------
    CallNotFoundError
        The row has no filename or recording id (nothing to fetch).
    """
    if not row.get("filename") or row.get("recording_id") is None:
        raise CallNotFoundError(f"recording {row.get('recording_id')} has no file name in recording_log yet")
    return WorkItem(call_id=str(row["filename"]), kind="vicidial", ref=str(row["recording_id"]),
                    metadata=store_metadata(row))


def recording_item(settings: Settings, recording_id: int) -> WorkItem:
    """The work item of ViciDial recording ``recording_id``, looked up now.

    Raises
    ------
    CallNotFoundError
        No such recording (or it has no file yet).
    ViciDialError, ConfigError
        As :func:`core.vicidial.get_recording`.
    """
    return vicidial_item(get_recording(settings, int(recording_id)))


def items_from_vicidial_rows(rows: Iterable[Mapping[str, Any]]) -> list[WorkItem]:
    """Work items for ``recording_log`` rows (rows without a filename are not analysable)."""
    return [vicidial_item(row) for row in rows if row.get("filename") and row.get("recording_id") is not None]


def vicidial_items(settings: Settings, *, since: datetime | None = None, until: datetime | None = None,
                   campaign: str | None = None, ingroup: str | None = None, agent: str | None = None,
                   limit: int = 5000) -> list[WorkItem]:
    """Work items for the ViciDial recordings matching the filters (``callqa scan vicidial``).

    Raises
    ------
    ConfigError
        ViciDial is not configured.
    ViciDialError
        The database cannot be reached or refuses the query.
    """
    from core.vicidial import LookupFilters, ViciDialSettings, search_recordings, to_records

    vicidial = ViciDialSettings.from_settings(settings)
    if not vicidial.configured:
        raise ConfigError("scanning ViciDial needs a [vicidial] section in callqa.toml (host, user, password, "
                          "database) or CALLQA_VICIDIAL_HOST and friends; see callqa.toml.example")
    filters = LookupFilters(since=since, until=until, campaign=campaign, ingroup=ingroup, agent=agent)
    return items_from_vicidial_rows(to_records(search_recordings(vicidial, filters, limit=limit)))


def resolve_vicidial_item(item: WorkItem, tmp_dir: Path, settings: Settings) -> LocalCall:
    """Resolver of ``vicidial`` work items (``item.ref`` = recording_id): look the recording up again
    (its location may have changed since it was listed), fetch it, and group its files.

    The fetch warnings (e.g. "falling back to the mix") and the ViciDial row (``vicidial`` in the
    analysis JSON) travel with the files. Meant for ``core.work.RESOLVERS["vicidial"]``.
    """
    from core.audio.layout import call_files_for  # the pipeline, only where a worker needs it

    fetched = fetch_vicidial_recording(settings, int(item.ref), Path(tmp_dir) / "vicidial")
    return LocalCall(call_files_for(fetched.primary), warnings=tuple(fetched.warnings),
                     extra={"vicidial": dict(fetched.metadata)})
