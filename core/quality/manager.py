"""NISQA weights: where they live, how they get there, and loading them once per process.

Where the weights are read from, highest first:

1. ``CALLQA_NISQA_WEIGHTS`` (a file path);
2. ``[quality] weights = "..."`` in callqa.toml (relative paths are relative to that file);
3. ``models/nisqa.tar`` under ``Settings.models_dir`` (``[paths] models_dir``, ``CALLQA_MODELS``).

``python -m core.quality.manager install`` (run by ``make setup``) puts them there: it copies
``../shared/models/nisqa.tar`` (``$CALLQA_SHARED/models/nisqa.tar``) when that exists, otherwise
downloads the file from the NISQA project on GitHub, and checks the sha256 either way. It does
nothing when the right file is already in place. Nothing downloads at run time: a missing or
corrupt file makes :func:`get_quality_model` raise :class:`ModelUnavailableError`.

After the weights, ``install`` exports the network to ONNX: ``nisqa.onnx`` next to the weights,
with its metadata in ``nisqa.onnx.json`` (the weights' sha256, the export format and opset), checked
against PyTorch before it is moved into place (:mod:`core.quality.nisqa_export`). It does nothing
when a matching export is already there.

Backend: ``[quality] backend`` (env ``CALLQA_QUALITY_BACKEND``) is ``auto`` (default: ONNX Runtime
when a matching export sits next to the weights, else PyTorch, saying why at debug level),
``onnx`` (the export or :class:`ModelUnavailableError`) or ``torch``. The ONNX backend never
imports torch, which saves about a second per process. Both give the same scores (to < 1e-5)
under the same identity, ``nisqa-v2.0``.

Threads: ``[quality] threads`` (default 2, env ``CALLQA_QUALITY_THREADS``): ONNX Runtime intra-op
threads, or torch threads (applied by :func:`get_quality_model` when it is called, never at
import), and the front end's.

Licence: the NISQA weights are CC BY-NC-SA 4.0 (non-commercial, attribution, share-alike),
by Gabriel Mittag and the Quality and Usability Lab, TU Berlin.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from core.config import PROJECT_ROOT, Settings, SettingsSection, load_settings
from core.errors import CallQAError, ConfigError, ModelUnavailableError, ParameterError
from core.quality.base import model_identity

if TYPE_CHECKING:
    from core.quality.nisqa_frontend import NisqaScorer

WEIGHTS_FILE = "nisqa.tar"
WEIGHTS_SHA256 = "7ec4cf937514dd3f8860b21e66fabd8ca87a168572675ef8d979c4c4ad2e805c"
WEIGHTS_URL = "https://github.com/gabrielmittag/NISQA/raw/master/weights/nisqa.tar"
WEIGHTS_MAX_BYTES = 8 * 1024 * 1024  # the real file is 1,051,663 bytes
DEFAULT_THREADS = 2
BACKENDS = ("auto", "onnx", "torch")
_FIX = "run `make setup` or `python -m core.quality.manager install`"

log = logging.getLogger("callqa.quality")
_cache: dict[tuple[Path, str], NisqaScorer] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class InstallResult:
    """What :func:`install_weights` did (``action`` is ``present``, ``copied`` or ``downloaded``) or
    :func:`install_onnx` did (``present`` or ``exported``)."""

    path: Path
    action: str
    source: str


@dataclass(frozen=True)
class QualitySettings(SettingsSection):
    """``[quality]``: the weights file ("" = ``models/nisqa.tar``), threads and backend.

    ``CALLQA_NISQA_WEIGHTS`` (or ``CALLQA_QUALITY_WEIGHTS``), ``CALLQA_QUALITY_THREADS`` and
    ``CALLQA_QUALITY_BACKEND`` override them; a relative ``weights`` in the file is relative to
    the file. ``backend`` is ``auto``, ``onnx`` or ``torch`` (see the module docstring).
    """

    weights: str = ""
    threads: int = DEFAULT_THREADS
    backend: str = "auto"

    SECTION: ClassVar[str] = "quality"
    ENV_ALIASES: ClassVar[dict[str, str]] = {"weights": "CALLQA_NISQA_WEIGHTS"}

    @classmethod
    def _from_file(cls, values: dict[str, Any], settings: Settings) -> dict[str, Any]:
        weights = values.get("weights")
        if isinstance(weights, str) and weights and settings.path is not None:
            path = Path(weights).expanduser()
            values["weights"] = str(path if path.is_absolute() else settings.path.parent / path)
        return values

    def _validate(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"[quality] threads={self.threads} must be a positive integer")
        if self.backend not in BACKENDS:
            raise ConfigError(f"[quality] backend={self.backend!r} must be one of {', '.join(BACKENDS)}")


def weights_path(settings: Settings | None = None) -> Path:
    """Where the NISQA weights are read from (and installed to); see the module docstring."""
    settings = settings or load_settings()
    weights = QualitySettings.from_settings(settings).weights
    return Path(weights).expanduser() if weights else settings.models_dir / WEIGHTS_FILE


def shared_dir() -> Path:
    """The read-only data folder next to the project: ``$CALLQA_SHARED`` or ``../shared``."""
    shared = os.environ.get("CALLQA_SHARED")
    return Path(shared).expanduser() if shared else PROJECT_ROOT.parent / "shared"


def shared_weights() -> Path:
    """The copy the install step prefers: ``<shared_dir>/models/nisqa.tar``."""
    return shared_dir() / "models" / WEIGHTS_FILE


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _has_right_hash(path: Path) -> bool:
    try:
        return path.is_file() and sha256_of(path) == WEIGHTS_SHA256
    except OSError:
        return False


def install_weights(
    settings: Settings | None = None,
    *,
    source: Path | None = None,
    url: str = WEIGHTS_URL,
    timeout_s: float = 60.0,
) -> InstallResult:
    """Put verified NISQA weights at :func:`weights_path`; do nothing if they are already there.

    Parameters
    ----------
    settings : Settings, optional
        Selects the target path; loaded from the environment when omitted.
    source : Path, optional
        Local copy to install from; defaults to :func:`shared_weights`. Used when it exists.
    url : str
        Download location used when there is no local copy.
    timeout_s : float
        Network timeout of the download.

    Raises
    ------
    ModelUnavailableError
        The copy or download failed or its sha256 is wrong (the target is left untouched).
    """
    target = weights_path(settings)
    if _has_right_hash(target):
        return InstallResult(target, "present", str(target))
    source = source if source is not None else shared_weights()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelUnavailableError(f"{target.parent}: cannot create the models folder ({exc.strerror})") from None
    fd, tmp_name = tempfile.mkstemp(prefix=".nisqa-", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if source.is_file():
                action, origin = "copied", str(source)
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out)
            else:
                action, origin = "downloaded", url
                _download(url, out, timeout_s=timeout_s)
        digest = sha256_of(tmp)
        if digest != WEIGHTS_SHA256:
            raise ModelUnavailableError(
                f"{origin}: sha256 {digest[:12]}... does not match the NISQA v2.0 weights "
                f"({WEIGHTS_SHA256[:12]}...); {target} was not changed"
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the weights are not secret
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelUnavailableError(f"{target}: cannot install the NISQA weights ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return InstallResult(target, action, origin)


def _download(url: str, out: BinaryIO, *, timeout_s: float) -> None:
    """Stream ``url`` into the binary file object ``out``, refusing more than WEIGHTS_MAX_BYTES."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            total = 0
            while block := response.read(1 << 16):
                total += len(block)
                if total > WEIGHTS_MAX_BYTES:
                    raise ModelUnavailableError(f"{url}: larger than {WEIGHTS_MAX_BYTES} bytes; not the NISQA weights")
                out.write(block)
    except (urllib.error.URLError, TimeoutError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelUnavailableError(
            f"{url}: download failed ({reason}); copy nisqa.tar into the models folder by hand"
        ) from None


def _threads(settings: Settings, threads: int | None) -> int:
    if threads is None:
        return QualitySettings.from_settings(settings).threads
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ParameterError(f"[quality] threads={threads!r} must be a positive integer")
    return threads


def get_quality_model(
    settings: Settings | None = None, *, threads: int | None = None, backend: str | None = None
) -> NisqaScorer:
    """The NISQA v2.0 model, loaded on first use and then shared (thread-safe, one per weights file
    and backend).

    Parameters
    ----------
    settings : Settings, optional
        Configuration (weights path, ``[quality] threads`` and ``backend``); loaded from the
        environment when omitted.
    threads : int, optional
        Intra-op threads; overrides ``[quality] threads`` (default 2). Torch threads are applied
        on every call; an ONNX session is made again when the count changes.
    backend : str, optional
        ``auto``, ``onnx`` or ``torch``; overrides ``[quality] backend``.

    Returns
    -------
    NisqaScorer
        :class:`~core.quality.nisqa_onnx.NisqaOnnxModel` or :class:`~core.quality.nisqa.NisqaModel`
        (``.backend`` says which); both implement :class:`~core.quality.base.QualityModel`.

    Raises
    ------
    ModelUnavailableError
        The weights are missing, corrupt or not the NISQA v2.0 checkpoint; ``backend="onnx"``
        without a matching export; an export that is corrupt. The message names the path and
        the fix.
    """
    from core.quality import nisqa_frontend

    settings = settings or load_settings()
    n_threads = _threads(settings, threads)
    choice = backend if backend is not None else QualitySettings.from_settings(settings).backend
    if choice not in BACKENDS:
        raise ParameterError(f"backend={choice!r} must be one of {', '.join(BACKENDS)}")
    path = weights_path(settings).resolve()
    with _lock:
        model = _cache.get((path, choice))
        if model is None or (model.backend == "onnx" and getattr(model, "threads", n_threads) != n_threads):
            model = _cache[(path, choice)] = _load_verified(path, choice, n_threads)
    if model.backend == "torch":
        import torch

        if torch.get_num_threads() != n_threads:
            torch.set_num_threads(n_threads)
    nisqa_frontend.set_threads(n_threads)
    return model


def onnx_path(settings: Settings | None = None) -> Path:
    """Where the ONNX export of the weights lives: ``nisqa.onnx`` next to :func:`weights_path`."""
    from core.quality.nisqa_onnx import onnx_path_for

    return onnx_path_for(weights_path(settings))


def install_onnx(settings: Settings | None = None, *, golden_dir: Path | None = None,
                 force: bool = False) -> InstallResult:
    """Export the installed weights to ONNX next to them, unless a matching export is there.

    ``action`` is ``present`` or ``exported`` (``source`` then says what the export was checked
    on and the largest difference to PyTorch). The export is checked against PyTorch on the
    golden clips of ``golden_dir`` (default ``<shared>/golden/nisqa`` when present) and on
    synthetic clips of mixed lengths, and refused beyond 1e-4.

    Raises
    ------
    ModelUnavailableError
        The weights are missing or corrupt, or the export failed its check (no file is left).
    """
    from core.quality import nisqa_onnx

    settings = settings or load_settings()
    weights = weights_path(settings).resolve()
    digest = _verified_digest(weights)
    target = nisqa_onnx.onnx_path_for(weights)
    if not force and nisqa_onnx.stale_reason(target, digest) is None and _onnx_intact(target):
        return InstallResult(target, "present", str(target))
    from core.quality.nisqa import load_nisqa
    from core.quality.nisqa_export import export_onnx

    if golden_dir is None:
        golden_dir = shared_dir() / "golden" / "nisqa"
    check = export_onnx(load_nisqa(weights), target, weights_sha256=digest,
                        golden_dir=golden_dir if golden_dir.is_dir() else None,
                        threads=QualitySettings.from_settings(settings).threads)
    return InstallResult(target, "exported", f"max difference to PyTorch {check.max_abs_diff:.1e} "
                                             f"over {check.checked_on}")


# --- the model's identity without loading it ------------------------------------------------------
IDENTITY_MEMO = "quality-identity.json"


def _quality_fingerprint(settings: Settings) -> str | None:
    """What the quality model's identity depends on, from file metadata only (no torch import):
    the weights file (path, size, mtime) and the quality code (newest module)."""
    try:
        weights = weights_path(settings).expanduser().resolve()
        stat = weights.stat()
        code = [p.stat() for p in Path(__file__).parent.glob("*.py")]
    except OSError:
        return None
    newest = max((s.st_mtime_ns for s in code), default=0)
    return f"{weights}:{stat.st_size}:{stat.st_mtime_ns}:{len(code)}:{newest}"


def quality_identity(settings: Settings, enabled: bool) -> str | None:
    """The quality model's identity for cache keys (:func:`core.quality.base.model_identity`), or
    None when quality is off -- without loading the model when it is known.

    The identity is remembered in ``<data_dir>/quality-identity.json`` against a fingerprint of
    the weights file and the quality code, so a scan whose calls are all cached does not load
    torch. On a miss the model is loaded (once per process), which also checks it is usable
    before any worker starts.

    Raises
    ------
    ModelUnavailableError
        The weights are missing or corrupt.
    """
    if not enabled:
        return None
    memo_path = settings.data_dir / IDENTITY_MEMO
    fingerprint = _quality_fingerprint(settings)
    if fingerprint is not None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            memo = json.loads(memo_path.read_text())
            if memo["fingerprint"] == fingerprint:
                return str(memo["identity"])
    identity = model_identity(get_quality_model(settings))
    if fingerprint is not None:
        with contextlib.suppress(OSError):
            memo_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = memo_path.with_name(f".{IDENTITY_MEMO}.{os.getpid()}")
            tmp.write_text(json.dumps({"fingerprint": fingerprint, "identity": identity}))
            os.replace(tmp, memo_path)
    return identity


def _verified_digest(path: Path) -> str:
    """The sha256 of the weights at ``path`` when it is the NISQA v2.0 checkpoint's.

    Hashing the 1 MB file costs about 1 ms, so it is checked on every load (no trust in mtimes).
    """
    if not path.is_file():
        raise ModelUnavailableError(f"NISQA weights not found at {path}: {_FIX}")
    try:
        digest = sha256_of(path)
    except OSError as exc:
        raise ModelUnavailableError(f"{path}: cannot read the NISQA weights ({exc.strerror}): {_FIX}") from None
    if digest != WEIGHTS_SHA256:
        raise ModelUnavailableError(
            f"{path}: corrupt NISQA weights (sha256 {digest[:12]}... instead of {WEIGHTS_SHA256[:12]}...): {_FIX}"
        )
    return digest


def _onnx_intact(path: Path) -> bool:
    """The export's own sha256 is the one its metadata recorded (not truncated, not altered)."""
    from core.quality.nisqa_onnx import ExportMetadata, metadata_path

    meta = ExportMetadata.read(metadata_path(path))
    try:
        return meta is not None and sha256_of(path) == meta.onnx_sha256
    except OSError:
        return False


def _load_verified(path: Path, backend: str, threads: int) -> NisqaScorer:
    """Check the weights, then load the ONNX export (``auto`` when it matches them, ``onnx``) or
    the PyTorch model."""
    digest = _verified_digest(path)
    if backend in ("auto", "onnx"):
        from core.quality import nisqa_onnx

        target = nisqa_onnx.onnx_path_for(path)
        reason = nisqa_onnx.stale_reason(target, digest)
        if reason is None:
            if not _onnx_intact(target):
                raise ModelUnavailableError(
                    f"{target}: corrupt ONNX export of NISQA (its sha256 is not the one recorded in "
                    f"{nisqa_onnx.metadata_path(target).name}): delete it and run "
                    "`python -m core.quality.manager install`"
                )
            return nisqa_onnx.NisqaOnnxModel(target, threads=threads)
        if backend == "onnx":
            raise ModelUnavailableError(
                f'[quality] backend = "onnx" but {reason}: run `python -m core.quality.manager install`'
            )
        log.debug("NISQA runs on PyTorch: %s (`python -m core.quality.manager install` exports it)", reason)
    from core.quality.nisqa import load_nisqa

    return load_nisqa(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m core.quality.manager install|path``."""
    parser = argparse.ArgumentParser(prog="python -m core.quality.manager", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="callqa.toml (default: $CALLQA_CONFIG, ./callqa.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", help="copy or download the NISQA weights, check their sha256 and export them to "
                                   "ONNX (idempotent)")
    sub.add_parser("path", help="print where the weights are read from")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "path":
            print(weights_path(settings))
            return 0
        result = install_weights(settings)
        if result.action == "present":
            print(f"NISQA weights present at {result.path} (sha256 ok)")
        else:
            print(f"NISQA weights {result.action} from {result.source} to {result.path} (sha256 ok)")
            print("Licence: CC BY-NC-SA 4.0 (non-commercial use only), G. Mittag / TU Berlin QU Lab")
        exported = install_onnx(settings)
    except CallQAError as exc:
        print(f"callqa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    if exported.action == "present":
        print(f"NISQA ONNX export present at {exported.path} (matches the weights)")
    else:
        print(f"NISQA exported to ONNX at {exported.path} ({exported.source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
