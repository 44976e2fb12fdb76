"""Work items: one call to analyse, small and picklable, and how it becomes local files.

A :class:`WorkItem` names a call without holding audio: local recordings (``folder`` and
``file`` items list their files) or a ViciDial recording (``vicidial``: ``ref`` is its
``recording_id``, fetched where it is analysed). Every entry point builds items -- a folder
listing (:func:`folder_items`), one recording the user named (:func:`path_item`), ViciDial
rows (:func:`core.fetch.service.vicidial_items`) -- and hands them to
:mod:`core.analysis_service`, which resolves them with :func:`resolve_item`.

Also here, because scans, the queue, the API and the dashboard all need them: when a call
happened (:func:`call_time_of`) and reading ``--since``/``--until`` values (:func:`parse_when`).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.audio.layout import CallFiles, call_files_for, discover_calls
from core.errors import ConfigError, ParameterError

if TYPE_CHECKING:
    from core.config import Settings

#: ``folder``: local recordings found by a scan or named by a user; ``file``: a local copy of a
#: recording from elsewhere (an URL given to the API); ``vicidial``: fetched where it is analysed.
KINDS = ("folder", "file", "vicidial")
LOCAL_KINDS = ("folder", "file")
#: How each kind of work item becomes local files, as ``module:function`` so spawned workers can
#: import it (the table is handed to scan workers when a scan starts). A resolver takes
#: ``(item, tmp_dir: Path, settings)`` and returns :class:`LocalCall` (or just ``CallFiles``);
#: it may download into ``tmp_dir``.
RESOLVERS: dict[str, str] = {
    "folder": "core.work:resolve_local_item",
    "file": "core.work:resolve_local_item",
    "vicidial": "core.fetch.service:resolve_vicidial_item",  # item.ref = recording_log.recording_id
}
_FULLDATE = re.compile(r"^(\d{8})-(\d{6})")
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")


@dataclass(frozen=True)
class WorkItem:
    """One call to analyse, small and picklable (for worker processes and task queues).

    Attributes
    ----------
    call_id : str
        The call's identity in the store.
    kind : str
        One of :data:`KINDS`.
    ref : str
        Where the call comes from, stored as ``source_ref`` (the folder and call name, a
        recording id, an URL...).
    metadata : mapping
        Call metadata for the store (``call_time``, ``agent``, ``campaign``... see
        :meth:`core.store.store.ResultStore.save_analysis`).
    files : tuple of (role, path)
        The recordings of a local item.
    cache_key : str, optional
        Set when the caller already hashed the bytes (local files); remote items are hashed
        where they are fetched.
    given : str, optional
        The file a person named (``callqa analyze PATH``): checked first, so its problems are
        reported before its siblings'. Not sent to other processes.
    extras : mapping of str to str
        Further inputs of the analysis beyond the files (e.g. the agent's ViciDial user id for
        a stored voiceprint); :func:`core.analysis_service.analysis_inputs` turns them into
        pipeline options and cache-key identities. Travel with the item to workers.
    """

    call_id: str
    kind: str
    ref: str
    metadata: Mapping[str, Any] = field(default_factory=dict)
    files: tuple[tuple[str, str], ...] = ()
    cache_key: str | None = None
    given: str | None = None
    extras: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ParameterError(f"work item kind={self.kind!r}; one of {', '.join(KINDS)}")

    @property
    def local(self) -> bool:
        """True when the files are already on this machine (hashable before any fetch)."""
        return self.kind in LOCAL_KINDS

    @classmethod
    def from_call_files(cls, call: CallFiles, *, metadata: Mapping[str, Any] | None = None, kind: str = "folder",
                        ref: str | None = None) -> WorkItem:
        """A local item, with ``call_time`` from the name or the files' mtime; ``ref`` defaults to
        the folder and the call name."""
        meta = dict(metadata or {})
        meta.setdefault("call_time", call_time_of(call))
        folder = call.paths[0].parent
        return cls(call_id=call.call_id, kind=kind, ref=ref or str(folder / call.call_id), metadata=meta,
                   files=tuple((role, str(path)) for role, path in sorted(call.files.items())),
                   given=str(call.given) if call.given is not None else None)

    def call_files(self) -> CallFiles:
        """The files of a local item."""
        return CallFiles(call_id=self.call_id, files={role: Path(p) for role, p in self.files},
                         given=Path(self.given) if self.given else None)


@dataclass(frozen=True)
class LocalCall:
    """A work item made local: its files, and what resolving it found out.

    Attributes
    ----------
    call : CallFiles
        The recordings to analyse.
    warnings : tuple of str
        Put before the analysis' own warnings (e.g. "fell back to the mix").
    extra : mapping
        Added to the analysis JSON (``vicidial``: the recording's ViciDial row).
    """

    call: CallFiles
    warnings: tuple[str, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


def resolve_local_item(item: WorkItem, tmp_dir: Path, settings: Settings) -> LocalCall:
    """Resolver of ``folder`` and ``file`` items: the files are already local."""
    return LocalCall(item.call_files())


def resolve_item(item: WorkItem, tmp_dir: Path, settings: Settings,
                 resolvers: Mapping[str, str] | None = None) -> LocalCall:
    """Make ``item`` local with the resolver of its kind (:data:`RESOLVERS`, or ``resolvers``).

    Raises
    ------
    ConfigError
        No resolver for the item's kind.
    FetchError, UnsafeLocationError, CallNotFoundError, AudioNotFoundError
        As the resolver raises them.
    """
    target = (resolvers if resolvers is not None else RESOLVERS).get(item.kind)
    if target is None:
        raise ConfigError(f"no resolver for {item.kind!r} work items")
    module, _, name = target.partition(":")
    local = getattr(importlib.import_module(module), name)(item, tmp_dir, settings)
    return local if isinstance(local, LocalCall) else LocalCall(local)


def path_item(path: str | Path, *, kind: str = "folder", ref: str | None = None,
              metadata: Mapping[str, Any] | None = None, roots: Iterable[Path] | None = None) -> WorkItem:
    """The work item of the call that the local recording ``path`` belongs to (its siblings are
    found by ViciDial naming); ``ref`` defaults to the resolved path. With ``roots`` every file
    of the call must lie below one of them (:func:`core.audio.layout.call_files_for`).

    Raises
    ------
    AudioNotFoundError
        ``path`` does not exist or is a folder, or a file of the call is not a regular file.
    PathNotAllowedError
        A file of the call lies outside ``roots``.
    """
    call = call_files_for(path, roots=roots)
    return WorkItem.from_call_files(call, metadata=metadata, kind=kind, ref=ref or str(Path(path).resolve()))


def folder_items(folder: str | Path, *, since: datetime | None = None, until: datetime | None = None,
                 metadata: Mapping[str, Any] | None = None) -> list[WorkItem]:
    """The calls in ``folder`` (recursively), as work items in call-id order, filtered by call time
    (``since`` inclusive, ``until`` exclusive)."""
    items = []
    for call in discover_calls(folder):
        item = WorkItem.from_call_files(call, metadata=metadata)
        when = item.metadata["call_time"]
        if (since is not None and when < since) or (until is not None and when >= until):
            continue
        items.append(item)
    return items


# --- time ----------------------------------------------------------------------------------------
def call_time_of(call: CallFiles) -> datetime:
    """When the call happened: the ViciDial FULLDATE prefix ``YYYYMMDD-HHMMSS`` of its id, else the
    oldest modification time of its files (local time, no zone)."""
    m = _FULLDATE.match(call.call_id)
    if m:
        with contextlib.suppress(ValueError):
            return datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S")
    mtimes = []
    for p in call.paths:
        with contextlib.suppress(OSError):
            mtimes.append(p.stat().st_mtime)
    return datetime.fromtimestamp(min(mtimes)) if mtimes else datetime.now()


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """Parse a ``--since``/``--until`` value: ISO date or date-time, ``today``, ``yesterday``, or an age
    like ``30m``, ``12h``, ``7d``, ``2w`` (that long before now). Local time, no zone.

    Raises
    ------
    ParameterError
        Anything else; the message lists the accepted forms.
    """
    now = now or datetime.now()
    value = text.strip().lower()
    if value == "today":
        return datetime(now.year, now.month, now.day)
    if value == "yesterday":
        return datetime(now.year, now.month, now.day) - timedelta(days=1)
    m = _RELATIVE.match(value)
    if m:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[m.group(2)]
        return now - timedelta(**{unit: int(m.group(1))})
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParameterError(
            f"cannot read the time {text!r}: use 2026-11-07, '2026-11-07 08:00', today, yesterday, 12h or 7d"
        ) from None
    return parsed.astimezone().replace(tzinfo=None) if parsed.tzinfo else parsed


def as_datetime(value: datetime | date | None) -> datetime | None:
    """A date as its midnight; datetimes and None unchanged."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)
