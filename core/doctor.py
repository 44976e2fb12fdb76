"""``callqa doctor``: is this machine ready to run callqa in production?

Each check gives ``pass``, ``warn`` or ``fail`` and one line of detail that says what to do.
Warnings are for optional parts (ViciDial or Claude not configured, no secrets file, a store
schema still to create); any failure means something callqa needs is missing or unsafe.

The checks, in order:

- ``python``: interpreter version, and whether it runs from a virtualenv (isolation);
- ``sox``, ``ffmpeg``: on ``PATH`` and their versions (reference tools, decoding of odd files);
- ``weights``: the NISQA weights file exists and its sha256 is the published one;
- ``vad``: the Silero VAD model ships with the installed package;
- ``data_dir``: the data folder exists and a file can be created in it;
- ``store``: the result store's folder is writable, the database can take the write lock,
  and its schema is current (SQLite); PostgreSQL: it answers and its schema is current;
- ``temp_space``: the temporary folder is writable and has room for two fetched recordings;
- ``vicidial``: reachable, the session is read-only, and the account has no write grants;
- ``recordings``: where recordings may be fetched from (``[recordings]``);
- ``api_key``: ``CALLQA_API_KEY`` is set and long enough;
- ``secrets_file``: the secrets file (``--secrets-file``, ``$CALLQA_SECRETS_FILE``, default
  ``/etc/callqa/secrets.env``) is mode 600 (readable by its owner only);
- ``claude``: an Anthropic key is configured (the AI features are optional);
- ``access``: how people sign in to the dashboard (open mode is a warning), and that
  ``[access]``, ``[privacy]`` and ``[retention]`` are valid.

Nothing here prints a secret: keys and passwords are reported as set or not set.

The dashboard's Settings & health page shows the same checks (each with a ``title`` for people);
its sidebar runs the quick ones without connecting to ViciDial (``live=False``).
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from core.errors import CallQAError

PASS, WARN, FAIL = "pass", "warn", "fail"
DEFAULT_SECRETS_FILE = Path("/etc/callqa/secrets.env")
TOOL_TIMEOUT_S = 10.0
# two recordings at the [recordings] max_mb cap: what two concurrent fetches (max_concurrency 2) may hold
FETCHES_IN_FLIGHT = 2
_WRITE_GRANTS = re.compile(r"\b(ALL PRIVILEGES|INSERT|UPDATE|DELETE|DROP|CREATE|ALTER|INDEX|GRANT OPTION|"
                           r"TRUNCATE|LOCK TABLES|EXECUTE|FILE|SUPER)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Check:
    """One line of the report (``title``: its name for people, not part of the JSON)."""

    name: str
    status: str
    detail: str
    title: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class DoctorReport:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return all(c.status != FAIL for c in self.checks)

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checks": [c.as_dict() for c in self.checks]}

    def lines(self) -> list[str]:
        """The readable report: one line per check, then a total."""
        width = max((len(c.name) for c in self.checks), default=0) + 2
        out = [f"{c.status.upper():5} {c.name.ljust(width)}{c.detail}" for c in self.checks]
        out.append(f"{len(self.checks)} checks: {self.count(PASS)} passed, {self.count(WARN)} warnings, "
                   f"{self.count(FAIL)} failed")
        return out


Outcome = tuple[str, str]


# --- individual checks ---------------------------------------------------------------------------
def check_python() -> Outcome:
    version = ".".join(str(v) for v in sys.version_info[:3])
    if sys.prefix == sys.base_prefix:
        return WARN, f"Python {version} outside a virtualenv: install callqa in its own venv (/opt/callqa/.venv)"
    return PASS, f"Python {version} in the virtualenv {sys.prefix}"


def _tool_version(argv: list[str], pattern: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"version unknown ({type(exc).__name__})"
    text = (done.stdout or "") + (done.stderr or "")
    m = re.search(pattern, text)
    return m.group(1) if m else "version unknown"


def check_tool(name: str, *, env_path: str | None) -> Outcome:
    """``name`` on PATH, with its version."""
    found = shutil.which(name, path=env_path)
    if found is None:
        return FAIL, f"{name} is not on PATH: install it (apt-get install {'sox libsox-fmt-all' if name == 'sox' else name})"
    if name == "sox":
        version = _tool_version([found, "--version"], r"SoX v?(\S+)")
    else:
        version = _tool_version([found, "-hide_banner", "-version"], r"ffmpeg version (\S+)")
    return PASS, f"{name} {version} ({found})"


def check_weights(settings: Settings) -> Outcome:
    from core.quality.manager import WEIGHTS_SHA256, sha256_of, weights_path

    path = weights_path(settings)
    if not path.is_file():
        return FAIL, f"NISQA weights missing at {path}: run `python -m core.quality.manager install`"
    try:
        digest = sha256_of(path)
    except OSError as exc:
        return FAIL, f"{path} cannot be read ({exc.strerror})"
    if digest != WEIGHTS_SHA256:
        return FAIL, (f"{path} is corrupt: sha256 {digest[:12]}... instead of {WEIGHTS_SHA256[:12]}...; "
                      "run `python -m core.quality.manager install`")
    from core.quality.manager import QualitySettings
    from core.quality.nisqa_onnx import onnx_path_for, stale_reason

    backend = QualitySettings.from_settings(settings).backend
    stale = stale_reason(onnx_path_for(path), digest)
    if backend == "torch":
        return PASS, f"{path} (sha256 {digest[:12]}... ok); [quality] backend = torch (PyTorch, slower start)"
    if stale is not None:
        level = FAIL if backend == "onnx" else WARN
        return level, (f"{path} (sha256 {digest[:12]}... ok) but {stale}: analysis falls back to PyTorch "
                       "(about 1 s more per process); run `python -m core.quality.manager install`"
                       if level == WARN else f"[quality] backend = onnx but {stale}: run "
                       "`python -m core.quality.manager install`")
    return PASS, f"{path} (sha256 {digest[:12]}... ok); ONNX export {onnx_path_for(path).name} matches (no torch at analysis)"


def _probe_write(folder: Path) -> str | None:
    """None when a file can be created in ``folder`` (a real write: root ignores mode bits)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".callqa-doctor-", dir=folder)
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    os.unlink(name)
    return None


def check_data_dir(settings: Settings) -> Outcome:
    folder = settings.data_dir
    if not folder.exists():
        return WARN, f"{folder} does not exist yet (created on first use; under systemd StateDirectory= makes it)"
    if not folder.is_dir():
        return FAIL, f"{folder} is not a folder"
    problem = _probe_write(folder)
    if problem:
        return FAIL, f"{folder} is not writable ({problem})"
    return PASS, f"{folder} writable"


def check_store(settings: Settings, store_url: str | None, *, live: bool = True) -> Outcome:
    """``live``: also prove a SQLite store writable (a file in its folder, the write lock)."""
    from core.store.engine import normalize_url, redact_url, sqlite_path

    url = normalize_url(settings.store_url(store_url), create_dirs=False)
    shown = redact_url(url)
    path = sqlite_path(url)
    if path is None or (not live and path.is_file()):
        return _schema_outcome(url, shown, writable=False)  # PostgreSQL: reachable and current
    folder = path.parent
    if not folder.is_dir():
        return FAIL, f"store {path}: its folder {folder} does not exist or is not a folder"
    problem = _probe_write(folder)
    if problem:
        return FAIL, f"store {path}: folder {folder} is not writable ({problem})"
    if not path.exists():
        return WARN, f"store {path} does not exist yet: run `callqa migrate` (the API and scans also create it)"
    try:
        conn = sqlite3.connect(str(path), timeout=2.0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return FAIL, f"store {path} cannot be written ({exc})"
    return _schema_outcome(url, shown, writable=True)


def _schema_outcome(url: str, shown: str, *, writable: bool) -> Outcome:
    from core.errors import StoreError
    from core.store import open_store

    try:
        store = open_store(url, migrate=False, read_only=True)
    except StoreError as exc:
        if "callqa migrate" in str(exc):
            return WARN, f"{exc}"
        return FAIL, str(exc)
    try:
        from core.store.queries import store_status

        status = store_status(store)
    finally:
        store.close()
    return PASS, (f"{shown} {'writable, ' if writable else ''}schema {status['schema']}: {status['calls']:,} calls, "
                  f"{status['errors']:,} failed analyses")


def check_temp_space(settings: Settings) -> Outcome:
    from core.vicidial.settings import RecordingAccess

    folder = settings.tmp_dir
    need = FETCHES_IN_FLIGHT * RecordingAccess.from_settings(settings).max_bytes
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if folder.exists():
        problem = _probe_write(folder)
        if problem:
            return FAIL, f"temporary folder {folder} is not writable ({problem})"
    free = shutil.disk_usage(existing).free
    mb = 1024 * 1024
    detail = f"{folder}: {free // mb} MB free (need {need // mb} MB for {FETCHES_IN_FLIGHT} recordings at [recordings] max_mb)"
    if free < need:
        return FAIL, detail
    if free < 4 * need:
        return WARN, detail + "; little headroom"
    return PASS, detail


def check_vad() -> Outcome:
    from core.audio.vad import model_path

    return PASS, f"Silero VAD installed ({model_path()})"


def check_speakers(settings: Settings) -> Outcome:
    """The speaker model that splits mixed recordings: its weights, and the ONNX export it runs on."""
    from core.audio.speakers import MODEL_ID, ONNX_FILE, weights_file

    weights_file()  # ModelUnavailableError (a fail) when resemblyzer is not installed
    export = settings.models_dir / ONNX_FILE
    if not export.is_file():
        return WARN, (f"{MODEL_ID} runs on PyTorch (slower to load): {export} is missing; run "
                      "`python -m core.audio.speakers install`")
    return PASS, f"{MODEL_ID} on ONNX Runtime ({export.name})"


def check_vicidial(settings: Settings, *, live: bool = True) -> Outcome:
    """``live``: connect and check the session; otherwise only whether it is configured."""
    from core.errors import ViciDialError
    from core.vicidial import ViciDialSettings, connect

    vs = ViciDialSettings.from_settings(settings)
    if not vs.configured:
        return WARN, "not configured ([vicidial] host): callqa works on folders and URLs only"
    login = f"{vs.user}@{vs.address}/{vs.database}, password {'set' if vs.password else 'not set'}"
    if not live:
        return PASS, f"configured: {login}"
    try:
        session = connect(vs)
    except ViciDialError as exc:
        return FAIL, f"{exc} ({login})"
    with session:
        read_only = None
        for variable in ("transaction_read_only", "tx_read_only"):
            try:
                row = session.query(f"SELECT @@session.{variable} AS ro")[0]
            except CallQAError:
                continue
            read_only = bool(int(row["ro"]))
            break
        grants = [next(iter(r.values())) for r in session.query("SHOW GRANTS")]
    if read_only is not True:
        return FAIL, f"{vs.address} reachable but the session is not read-only"
    writes = sorted({m.group(1).upper() for g in grants for m in _WRITE_GRANTS.finditer(str(g))
                     if "information_schema" not in str(g).lower()})
    if writes:
        return WARN, (f"{vs.address} reachable, read-only session, but user '{vs.user}' may {', '.join(writes)}: "
                      "give callqa a SELECT-only account")
    return PASS, f"{vs.address} reachable, read-only session, SELECT-only account ({session.flavor})"


def check_recordings(settings: Settings) -> Outcome:
    from core.vicidial.settings import RecordingAccess

    access = RecordingAccess.from_settings(settings)
    parts = []
    if access.local_roots:
        parts.append(f"{len(access.local_roots)} local root(s)")
    if access.sftp_configured:
        parts.append(f"SFTP {access.sftp_host}")
    if access.allowed_hosts:
        parts.append(f"HTTP from {len(access.allowed_hosts)} host(s)")
    if not parts:
        return WARN, "no [recordings] access configured: ViciDial recordings cannot be fetched (local files only)"
    return PASS, ", ".join(parts)


def check_api_key(settings: Settings) -> Outcome:
    from core.access.settings import AccessSettings
    from core.api import ApiSettings
    from core.api.security import api_keys

    config = ApiSettings.from_settings(settings)  # raises ConfigError for an unusable key
    keys = api_keys(config, AccessSettings.from_settings(settings))
    if not keys:
        return FAIL, ("no API key: set CALLQA_API_KEY in the secrets file (`openssl rand -hex 32`); without it the "
                      "API is open to anyone who reaches it, e.g. through nginx's /api/")
    return PASS, "API keys set: " + ", ".join(f"{name} ({role})" for name, role, _key in keys)


def check_secrets_file(path: Path) -> Outcome:
    try:
        st = path.stat()
    except FileNotFoundError:
        return WARN, f"no secrets file at {path} (fine when secrets come from the environment another way)"
    except OSError as exc:
        return FAIL, f"{path} cannot be inspected ({exc.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return FAIL, f"{path} is not a regular file"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return FAIL, f"{path} has mode {mode:04o}: others can read the secrets; run `chmod 600 {path}`"
    return PASS, f"{path} mode {mode:04o}"


def check_claude(settings: Settings) -> Outcome:
    from core.llm.settings import ClaudeSettings

    claude = ClaudeSettings.from_settings(settings)
    if not claude.configured:
        return WARN, "no Anthropic API key (ANTHROPIC_API_KEY not set): AI summaries, investigations and chat are off"
    return PASS, (f"API key present ({claude.summary_model} summaries, chat {claude.chat_model}, daily budget "
                  f"${claude.daily_budget_usd:g}; watch callqa_llm_cost_usd_total)")


def check_access(settings: Settings, store_url: str | None = None) -> Outcome:
    from core.access.identity import access_mode
    from core.access.settings import AccessSettings
    from core.privacy.settings import PrivacySettings
    from core.retention import RetentionSettings
    from core.store.store import open_store

    access = AccessSettings.from_settings(settings)
    privacy = PrivacySettings.from_settings(settings)
    RetentionSettings.from_settings(settings)
    try:  # read-only: the doctor creates no store (the store check reports why it cannot open)
        store = open_store(settings.store_url(store_url), read_only=True)
    except CallQAError:
        store = None
    try:
        mode = access_mode(access, store)
    finally:
        if store is not None:
            store.close()
    sent = ", ".join(privacy.send_to_claude) or "no personal data"
    if mode == "open":
        return WARN, (f"no sign-in: everyone who reaches the dashboard is {access.open_role} (add accounts with "
                      f"`callqa users add` or set [access] proxy_header); Claude gets {sent}")
    source = f"proxy header {access.proxy_header}" if mode == "proxy" else "built-in accounts"
    return PASS, f"sign-in by {source}; Claude gets {sent}"


# --- the report ----------------------------------------------------------------------------------
#: Every check in report order: name -> its title for people.
TITLES = {
    "python": "Python", "sox": "sox", "ffmpeg": "ffmpeg", "weights": "NISQA quality model",
    "vad": "Voice activity detector", "speakers": "Speaker model (mixed recordings)", "data_dir": "Data folder", "store": "Result store",
    "temp_space": "Temporary space", "vicidial": "ViciDial", "recordings": "Recording access",
    "api_key": "HTTP API key", "secrets_file": "Secrets file", "claude": "Claude API key",
    "access": "Sign-in and privacy",
}


def _run(name: str, fn: Callable[[], Outcome]) -> Check:
    try:
        status, detail = fn()
    except CallQAError as exc:
        status, detail = FAIL, str(exc)
    except Exception as exc:  # a doctor reports, it does not crash
        status, detail = FAIL, f"check crashed: {type(exc).__name__}: {exc}"
    return Check(name, status, detail, TITLES.get(name, name))


def secrets_file_path(explicit: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """``explicit``, else ``$CALLQA_SECRETS_FILE``, else ``/etc/callqa/secrets.env``."""
    env = os.environ if env is None else env
    value = explicit or env.get("CALLQA_SECRETS_FILE")
    return Path(value).expanduser() if value else DEFAULT_SECRETS_FILE


def run_doctor(settings: Settings, *, store_url: str | None = None,
               secrets_file: str | os.PathLike[str] | None = None, only: Iterable[str] | None = None,
               live: bool = True) -> DoctorReport:
    """Run the checks (see the module docstring) and return the report; never raises.

    Parameters
    ----------
    settings : Settings
    store_url : str, optional
        The store to check (default: the configured one).
    secrets_file : path, optional
        See :func:`secrets_file_path`.
    only : iterable of str, optional
        Names of :data:`TITLES` to run (default: all, in that order).
    live : bool
        Connect to ViciDial and prove the store writable (False: read-only and quick, for the
        dashboard's sidebar).
    """
    env_path = os.environ.get("PATH", os.defpath)
    checks: dict[str, Callable[[], Outcome]] = {
        "python": check_python,
        "sox": lambda: check_tool("sox", env_path=env_path),
        "ffmpeg": lambda: check_tool("ffmpeg", env_path=env_path),
        "weights": lambda: check_weights(settings),
        "vad": check_vad,
        "speakers": lambda: check_speakers(settings),
        "data_dir": lambda: check_data_dir(settings),
        "store": lambda: check_store(settings, store_url, live=live),
        "temp_space": lambda: check_temp_space(settings),
        "vicidial": lambda: check_vicidial(settings, live=live),
        "recordings": lambda: check_recordings(settings),
        "api_key": lambda: check_api_key(settings),
        "secrets_file": lambda: check_secrets_file(secrets_file_path(secrets_file)),
        "claude": lambda: check_claude(settings),
        "access": lambda: check_access(settings, store_url),
    }
    wanted = list(TITLES) if only is None else [name for name in TITLES if name in set(only)]
    return DoctorReport(tuple(_run(name, checks[name]) for name in wanted))
