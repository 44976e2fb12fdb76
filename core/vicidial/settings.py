"""Settings for the ViciDial database (``[vicidial]``) and recording access (``[recordings]``).

Both are read from ``callqa.toml`` (see ``callqa.toml.example``) by the common section reader
(:class:`core.config.SettingsSection`): every key can be overridden from the environment as
``CALLQA_VICIDIAL_<KEY>`` / ``CALLQA_RECORDINGS_<KEY>`` (e.g. ``CALLQA_VICIDIAL_PASSWORD``,
``CALLQA_RECORDINGS_SFTP_KEY_PASSPHRASE``; lists comma-separated, ``host_map`` as JSON).

Without a ``host`` ViciDial is simply not configured (:attr:`ViciDialSettings.configured` is
false) and the rest of callqa works on folders of recordings. Passwords are kept out of
``repr`` so they never reach a log line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from core.config import Settings, SettingsSection, coerce_setting, positive, read_section
from core.errors import ConfigError

DEFAULT_SPOOL_ROOT = "/var/spool/asterisk/monitorDONE"  # Apache maps /RECORDINGS/ here (vicidial.md 4.5)
_SQL_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def vicidial_configured(settings: Settings) -> bool:
    """True when a ViciDial host is set (file, secrets or ``CALLQA_VICIDIAL_HOST``), whether or not
    the rest of ``[vicidial]`` is valid (a page can then say what is wrong)."""
    return bool(str(read_section(settings, ViciDialSettings)[0].get("host") or "").strip())


@dataclass(frozen=True)
class ViciDialSettings(SettingsSection):
    """How to reach the ViciDial database (a replica is fine: callqa only reads).

    Attributes
    ----------
    host, port, user, password, database
        Connection target; ``host`` empty means ViciDial is not configured.
    tls : bool
        Require TLS. The server certificate is verified against ``tls_ca`` (or the system
        store) unless ``tls_verify`` is false. Without ``tls`` the driver still tries TLS
        opportunistically, without verification.
    connect_timeout_s, read_timeout_s : float
        Socket timeouts for connecting and for waiting on a query result.
    max_statement_time_s : float
        Server-side cap per statement (MariaDB ``max_statement_time``, MySQL
        ``max_execution_time``).
    charset : str
        Connection character set.
    collation : str
        Collation to compare ``recording_log.vicidial_id`` with; empty = read it from
        ``information_schema`` (see the collation pitfall in vicidial.md section 6).
    include_archive : bool
        Also search the ``*_archive`` twins of the log tables.
    """

    host: str = ""
    port: int = 3306
    user: str = ""
    password: str = field(default="", repr=False)
    database: str = "asterisk"
    tls: bool = False
    tls_ca: str = ""
    tls_verify: bool = True
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_statement_time_s: float = 20.0
    charset: str = "utf8mb4"
    collation: str = ""
    include_archive: bool = True

    SECTION: ClassVar[str] = "vicidial"
    SECRETS: ClassVar[frozenset[str]] = frozenset({"password"})

    @property
    def configured(self) -> bool:
        """True when a database host is set."""
        return bool(self.host)

    @property
    def address(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    def _validate(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"[vicidial] port={self.port} must be between 1 and 65535")
        for name in ("connect_timeout_s", "read_timeout_s", "max_statement_time_s"):
            positive(self.SECTION, name, getattr(self, name))
        for name in ("charset", "collation"):
            value = getattr(self, name)
            if value and not _SQL_NAME.match(value):
                raise ConfigError(f"[vicidial] {name}={value!r} must be a plain name like utf8mb4_unicode_ci")
        if self.configured and not self.user:
            raise ConfigError("[vicidial] user is empty (set it in callqa.toml or CALLQA_VICIDIAL_USER)")


@dataclass(frozen=True)
class RecordingAccess(SettingsSection):
    """Where recordings may be fetched from, and how.

    Every path or URL built from database values is checked against these settings
    (:mod:`core.fetch.locations`): HTTP only to ``allowed_hosts`` (or hosts remapped by
    ``host_map``), files only below ``local_roots`` / ``sftp_roots``.

    Attributes
    ----------
    allowed_hosts : tuple of str
        Hosts (``name`` or ``name:port``) that ``recording_log.location`` URLs may point to.
    host_map : tuple of (str, str)
        ``location host -> host[:port]`` to contact instead (NAT, ``external_server_ip``);
        a mapped host counts as allowed.
    http_user, http_password : str
        Optional basic auth for the ``/RECORDINGS/`` alias.
    tls_verify : bool
        Verify HTTPS certificates (against ``tls_ca`` when set, else the system store).
    connect_timeout_s, read_timeout_s, download_timeout_s : float
        Connect timeout, per-read stall timeout and whole-transfer deadline.
    max_bytes : int
        Size cap of one file (``max_mb`` in the file).
    local_roots : tuple of str
        Local or NFS directories laid out like ``monitorDONE``; may contain ``{server_ip}``.
    sftp_host : str
        SSH host holding the recordings; ``{server_ip}`` means the recording's own dialer
        (then that address must be in ``allowed_hosts`` or ``host_map``). Empty = no SFTP.
    sftp_port, sftp_user, sftp_key_file, sftp_key_passphrase : str | int
        SSH login with a private key.
    sftp_known_hosts : str
        known_hosts file the host key must be listed in.
    sftp_host_key_check : bool
        Refuse unknown host keys (default). ``false`` accepts them with a warning.
    sftp_roots : tuple of str
        Remote directories laid out like ``monitorDONE``; may contain ``{server_ip}``.
    cache_dir : str
        Where fetched files are cached; empty = ``<data_dir>/recordings-cache``.
    cache_max_mb : int
        Cache size; the least recently used files are evicted beyond it.
    """

    allowed_hosts: tuple[str, ...] = ()
    host_map: tuple[tuple[str, str], ...] = ()
    http_user: str = ""
    http_password: str = field(default="", repr=False)
    tls_verify: bool = True
    tls_ca: str = ""
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    download_timeout_s: float = 600.0
    max_bytes: int = 200 * 1024 * 1024
    local_roots: tuple[str, ...] = ()
    sftp_host: str = ""
    sftp_port: int = 22
    sftp_user: str = ""
    sftp_key_file: str = ""
    sftp_key_passphrase: str = field(default="", repr=False)
    sftp_known_hosts: str = "~/.ssh/known_hosts"
    sftp_host_key_check: bool = True
    sftp_roots: tuple[str, ...] = (DEFAULT_SPOOL_ROOT,)
    cache_dir: str = ""
    cache_max_mb: int = 2048

    SECTION: ClassVar[str] = "recordings"
    SECRETS: ClassVar[frozenset[str]] = frozenset({"http_password", "sftp_key_passphrase"})

    @property
    def sftp_configured(self) -> bool:
        return bool(self.sftp_host)

    @property
    def cache_max_bytes(self) -> int:
        return self.cache_max_mb * 1024 * 1024

    def mapped_host(self, host: str) -> str | None:
        """The ``host_map`` target for ``host`` (case-insensitive), or None."""
        for source, target in self.host_map:
            if source.lower() == host.lower():
                return target
        return None

    # reading (core.config.SettingsSection) --------------------------------------------------
    @classmethod
    def _accepted(cls) -> dict[str, Any]:
        accepted = super()._accepted()
        del accepted["max_bytes"]
        return {**accepted, "max_mb": 1.0}  # the file says megabytes

    @classmethod
    def _context(cls, settings: Settings) -> dict[str, Any]:
        return {"data_dir": settings.data_dir}

    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        if name == "max_mb":
            mb = coerce_setting(cls.SECTION, name, value, 1.0, label=label)
            positive(cls.SECTION, name, mb)
            return {"max_bytes": int(mb * 1024 * 1024)}
        if name == "host_map":
            if not isinstance(value, dict):
                raise ConfigError('[recordings] host_map must be a table like {"10.10.10.11" = "dialer1:8080"}')
            return {name: tuple((str(k), str(v)) for k, v in value.items())}
        return super()._clean(name, value, default, label=label)

    @classmethod
    def _complete(cls, clean: dict[str, Any], *, data_dir: Path | None = None) -> dict[str, Any]:
        if not clean.get("cache_dir") and data_dir is not None:
            clean["cache_dir"] = str(data_dir / "recordings-cache")
        return clean

    def _validate(self) -> None:
        for name in ("connect_timeout_s", "read_timeout_s", "download_timeout_s", "cache_max_mb"):
            positive(self.SECTION, name, getattr(self, name))
        if self.sftp_host and not self.sftp_user:
            raise ConfigError("[recordings] sftp_host is set but sftp_user is empty")
        if self.sftp_host and not self.sftp_key_file:
            raise ConfigError("[recordings] sftp_host is set but sftp_key_file is empty (key authentication only)")

    def cache_path(self) -> Path:
        """Where fetched recordings are cached (``cache_dir``, else ``data/recordings-cache``)."""
        return Path(self.cache_dir).expanduser() if self.cache_dir else Settings().data_dir / "recordings-cache"
