"""A small on-disk cache of fetched recordings, keyed by source and validated by size/mtime/ETag.

Each entry is a folder named by the SHA-256 of its key (the URL or ``sftp://user@host:port/path``
that was fetched) holding the file under its own name and ``meta.json`` with what identifies
that version: ``size_bytes`` plus ``mtime_s`` (SFTP/local) or ``etag``/``last_modified``
(HTTP). A repeat view of an unchanged recording is served from here without downloading again.
Files are written to a temporary name and renamed into place, so concurrent readers never see
a partial file. Least recently used entries are evicted beyond the size cap.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import FetchError

META = "meta.json"


@dataclass(frozen=True)
class CacheEntry:
    """A cached file and the validators it was stored with."""

    path: Path
    meta: dict[str, Any]

    @property
    def size_bytes(self) -> int:
        return int(self.meta.get("size_bytes", -1))


class FetchCache:
    """The recordings cache rooted at ``root``, holding at most ``max_bytes``."""

    def __init__(self, root: Path, *, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = int(max_bytes)

    def _dir(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return self.root / digest[:2] / digest

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` if its file is intact (present, recorded size), else None."""
        folder = self._dir(key)
        try:
            meta = json.loads((folder / META).read_text(encoding="utf-8"))
            path = folder / str(meta["name"])
            if meta.get("key") != key or path.stat().st_size != int(meta["size_bytes"]):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return CacheEntry(path=path, meta=meta)

    def match(self, key: str, **validators: Any) -> CacheEntry | None:
        """The entry for ``key`` if every given validator (``size_bytes=``, ``mtime_s=`` ...) is equal."""
        entry = self.get(key)
        if entry is None:
            return None
        for name, value in validators.items():
            if value is None or entry.meta.get(name) != value:
                return None
        self.touch(entry)
        return entry

    def touch(self, entry: CacheEntry) -> None:
        """Mark an entry as just used (for eviction)."""
        with contextlib.suppress(OSError):
            os.utime(entry.path.parent / META)

    def begin(self, key: str) -> Path:
        """A fresh temporary file inside the entry's folder to download into."""
        folder = self._dir(key)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".part-", dir=folder)
        except OSError as exc:
            raise FetchError(f"recordings cache {self.root}: cannot write ({exc.strerror})") from None
        os.close(fd)
        return Path(name)

    def commit(self, key: str, tmp: Path, *, name: str, **validators: Any) -> CacheEntry:
        """Move a completed download into place and record its validators."""
        folder = self._dir(key)
        path = folder / name
        meta = {"key": key, "name": name, "size_bytes": tmp.stat().st_size, "stored_at": time.time(), **validators}
        try:
            for old in folder.iterdir():  # a previous version under another name
                if old.name not in (META, name) and not old.name.startswith("."):  # dot names: in-flight temps
                    old.unlink(missing_ok=True)
            os.replace(tmp, path)
            fd, meta_tmp = tempfile.mkstemp(prefix=".meta-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(meta, fh)
            os.replace(meta_tmp, folder / META)
        except OSError as exc:
            raise FetchError(f"recordings cache {self.root}: cannot store {name} ({exc.strerror})") from None
        self.evict(keep=folder)
        return CacheEntry(path=path, meta=meta)

    @staticmethod
    def discard(tmp: Path) -> None:
        """Remove an unfinished download."""
        tmp.unlink(missing_ok=True)

    def evict(self, *, keep: Path | None = None) -> None:
        """Delete least recently used entries until the cache fits ``max_bytes``."""
        entries = []
        total = 0
        for meta in self.root.glob(f"*/*/{META}"):
            folder = meta.parent
            try:
                size = sum(p.stat().st_size for p in folder.iterdir())
                used = meta.stat().st_mtime
            except OSError:
                continue
            entries.append((used, size, folder))
            total += size
        for _, size, folder in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            if folder == keep:
                continue
            shutil.rmtree(folder, ignore_errors=True)
            total -= size


    def expire(self, *, before_s: float, dry_run: bool = False) -> tuple[int, int]:
        """Delete entries last used before ``before_s`` (epoch seconds); ``dry_run`` only counts.

        Returns
        -------
        tuple of (int, int)
            Entries and bytes removed (or that would be).
        """
        count = size = 0
        for meta in self.root.glob(f"*/*/{META}"):
            folder = meta.parent
            try:
                if meta.stat().st_mtime >= before_s:
                    continue
                bytes_ = sum(p.stat().st_size for p in folder.iterdir())
            except OSError:
                continue
            if not dry_run:
                shutil.rmtree(folder, ignore_errors=True)
            count, size = count + 1, size + bytes_
        return count, size


def place(source: Path, dest: Path) -> Path:
    """Put a copy of ``source`` at ``dest`` (a hard link when possible), replacing ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"cannot write {dest}: {exc.strerror}") from None
    return dest
