"""Recordings on a local or NFS-mounted directory laid out like ``monitorDONE``."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from core.errors import FetchError
from core.fetch.locations import RemoteFile, path_under

CHUNK_BYTES = 1024 * 1024


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.3g} MB"


class LocalRoot:
    """Files below one configured local root (``[recordings] local_roots``).

    Paths are validated and must stay below the root after symlinks are resolved, so a
    filename from the database cannot reach elsewhere on the machine.
    """

    cacheable = False

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.label = self.connection = f"local:{self.root}"

    @property
    def exists(self) -> bool:
        return self.root.is_dir()

    def origin(self, file: RemoteFile) -> str:
        return f"local:{file.path}"

    def stat(self, relpath: str) -> RemoteFile | None:
        """The regular file at ``relpath`` below the root, or None."""
        path = path_under(self.root, relpath)
        try:
            info = path.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise FetchError(f"{path}: cannot be read ({exc.strerror})") from None
        if not stat.S_ISREG(info.st_mode):
            return None
        return RemoteFile(path=str(path), size_bytes=info.st_size, mtime_s=info.st_mtime)

    def download(self, file: RemoteFile, dest: Path, *, max_bytes: int) -> int:
        """Copy the file to ``dest`` (refused above ``max_bytes``)."""
        if file.size_bytes > max_bytes:
            raise FetchError(f"{file.path}: {_mb(file.size_bytes)} is larger than the {_mb(max_bytes)} cap "
                             "([recordings] max_mb)")
        tmp = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        try:
            with open(file.path, "rb") as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out, CHUNK_BYTES)
            copied = tmp.stat().st_size
            if copied > max_bytes:
                raise FetchError(f"{file.path}: grew past the {_mb(max_bytes)} cap while copying")
            os.replace(tmp, dest)
        except OSError as exc:
            raise FetchError(f"{file.path}: cannot copy to {dest} ({exc.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)
        return copied
