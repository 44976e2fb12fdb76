"""The cache key of an analysis: what was analysed, with which thresholds, by which code and model.

Two analyses with the same key would be identical, so a scan skips a call whose stored key
matches. The key covers the bytes of every file of the call (so a rewritten or truncated
recording is analysed again), every threshold in :class:`~core.config.AnalysisConfig`, a forced
layout, :data:`core.pipeline.ANALYSIS_VERSION` and the quality model's version. File names and
folders are not part of it: a recording moved or copied elsewhere is still the same recording.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from core.audio.layout import CallFiles
from core.config import AnalysisConfig
from core.errors import AudioNotFoundError

#: Bump when the key's recipe changes (every stored analysis is then analysed again).
KEY_SCHEME = "callqa-key-1"
_CHUNK_BYTES = 1 << 20


def _analysis_version() -> str:
    # imported here: core.pipeline pulls in the audio stack, which a cached scan never needs
    from core.pipeline import ANALYSIS_VERSION

    return ANALYSIS_VERSION


def cache_key(
    call: CallFiles,
    cfg: AnalysisConfig,
    quality_version: str | None,
    *,
    layout: str | None = None,
    analysis_version: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> str:
    """Hash a call's recordings and everything else its analysis depends on.

    Parameters
    ----------
    call : CallFiles
        The call; every file is read in full, in sorted role order.
    cfg : AnalysisConfig
        The thresholds the analysis will use.
    quality_version : str or None
        The quality model's identity (:func:`core.quality.base.model_identity`); None when
        quality scoring is off.
    layout : str, optional
        A forced layout (``--layout``); None for detection.
    analysis_version : str, optional
        Defaults to :data:`core.pipeline.ANALYSIS_VERSION`.
    extra : mapping of str to str, optional
        Identities of further inputs the analysis depends on (e.g. a voiceprint's, a model's
        version), from :func:`core.analysis_service.analysis_inputs`. Empty or None leaves the
        key as it was without them.

    Returns
    -------
    str
        64 hex characters (BLAKE2b, 32-byte digest).

    Raises
    ------
    AudioNotFoundError
        A file of the call cannot be read, or is not a regular file (a FIFO or a device
        would block the read or never end; it is refused without waiting).
    """
    h = hashlib.blake2b(digest_size=32)
    settings = {
        "scheme": KEY_SCHEME,
        "analysis_version": analysis_version or _analysis_version(),
        "quality": quality_version,
        "layout": layout,
        "config": cfg.as_dict(),
    }
    if extra:
        settings["extra"] = {str(k): str(v) for k, v in extra.items()}
    h.update(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode())
    for role in sorted(call.files):
        _hash_file(h, role, call.files[role])
    return h.hexdigest()


def _hash_file(h: hashlib.blake2b, role: str, path: Path) -> None:
    h.update(b"\0file\0" + role.encode() + b"\0")
    try:
        # O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting for one
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise AudioNotFoundError(f"{path}: cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise AudioNotFoundError(f"{path}: is not a regular file (a FIFO, device or socket); not read")
        os.set_blocking(fd, True)
        size = 0
        try:
            while chunk := f.read(_CHUNK_BYTES):
                h.update(chunk)
                size += len(chunk)
        except OSError as exc:
            raise AudioNotFoundError(f"{path}: cannot be read ({exc.strerror})") from None
    h.update(b"\0size\0" + str(size).encode())
