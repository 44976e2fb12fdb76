"""Configuration: one TOML file plus environment overrides, with working local defaults.

Where the file comes from, highest first: an explicit path (``--config``), ``CALLQA_CONFIG``,
``./callqa.toml`` when it exists. Without any file every section is empty and the defaults
below apply, which is what ``make run`` relies on.

Every section is read the same way, by one reader (:class:`SettingsSection`): defaults, then
the file's ``[section]``, then the environment (``CALLQA_<SECTION>_<KEY>`` for every key, plus
the older names a section lists in ``ENV_ALIASES``, which win), then one-line errors for unknown
keys (with a "did you mean"), wrong types and out-of-range values. Each subsystem declares its
section as a frozen dataclass on that base (``ViciDialSettings``, ``QueueSettings``...); this
module declares the shared ones: paths, the store, the analysis thresholds and ``[scan]``.
The CLI, the API and the dashboard (which lays ``.streamlit/secrets.toml`` over the file) all
read through it, so an environment override works the same everywhere. Secrets (database
passwords, API keys) are read here or in the app layer and passed inward; they are never logged.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

S = TypeVar("S", bound="SettingsSection")


# --- the one section reader --------------------------------------------------------------------------
class SettingsSection:
    """Base of a frozen dataclass that is one ``[section]`` of callqa.toml.

    Subclasses declare their keys as dataclass fields with defaults and may set:

    - ``SECTION``: the table name;
    - ``ENV_ALIASES``: ``{key: variable}``, older environment names that set a key and win over
      ``CALLQA_<SECTION>_<KEY>`` (e.g. ``CALLQA_STORE`` for ``[store] url``);
    - ``ENV_SEPARATORS``: how a list arrives in one environment variable (default ``,``; a JSON
      array or table is read as JSON);
    - ``SECRETS``: keys whose values are never quoted in messages;

    and override the hooks ``_accepted`` (keys that are not fields), ``_from_file`` (e.g. paths
    relative to the file), ``_clean`` (one key's conversion), ``_complete`` (derived values) and
    ``_validate`` (checks across keys).
    """

    SECTION: ClassVar[str] = ""
    ENV_ALIASES: ClassVar[Mapping[str, str]] = {}
    ENV_SEPARATORS: ClassVar[Mapping[str, str]] = {}
    SECRETS: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def from_settings(cls: type[S], settings: Settings) -> S:
        """Read the section from ``settings`` with its environment overrides.

        Raises
        ------
        ConfigError
            Unknown keys, wrong types, out-of-range values (one line naming the key or the
            environment variable; secrets never quoted).
        """
        values, origins = read_section(settings, cls)
        return cls.from_mapping(values, origins=origins, **cls._context(settings))

    @classmethod
    def from_mapping(cls: type[S], values: Mapping[str, Any] | None = None, *,
                     origins: Mapping[str, str] | None = None, **context: Any) -> S:
        """Build from a table (no environment); ``origins`` names where a value came from.

        Raises
        ------
        ConfigError
            As :meth:`from_settings`.
        """
        values = dict(values or {})
        accepted = cls._accepted()
        check_keys(cls.SECTION, values, accepted)
        clean: dict[str, Any] = {}
        for name, value in values.items():
            clean.update(cls._clean(name, value, accepted[name], label=(origins or {}).get(name)))
        out = cls(**cls._complete(clean, **context))  # type: ignore[call-arg]
        out._validate()
        return out

    @classmethod
    def origin(cls, settings: Settings, key: str) -> str | None:
        """Where ``key`` gets its value: the environment variable, ``[section] key`` (the file or
        the dashboard's secrets), or None for the default."""
        values, origins = read_section(settings, cls)
        if key in origins:
            return origins[key]
        return f"[{cls.SECTION}] {key}" if values.get(key) not in (None, "") else None

    @classmethod
    def env_names(cls, key: str) -> list[str]:
        """The environment variables that set ``key``, weakest first."""
        names = [f"CALLQA_{cls.SECTION.upper()}_{key.upper()}"]
        alias = cls.ENV_ALIASES.get(key)
        return names + [alias] if alias and alias not in names else names

    # hooks ------------------------------------------------------------------------------------
    @classmethod
    def _accepted(cls) -> dict[str, Any]:
        """Every key the section accepts, with the default that gives its type."""
        return {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
                for f in dataclasses.fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def _from_file(cls, values: dict[str, Any], settings: Settings) -> dict[str, Any]:
        return values

    @classmethod
    def _context(cls, settings: Settings) -> dict[str, Any]:
        return {}

    @classmethod
    def _clean(cls, name: str, value: Any, default: Any, *, label: str | None = None) -> dict[str, Any]:
        return {name: coerce_setting(cls.SECTION, name, value, default, secret=name in cls.SECRETS, label=label)}

    @classmethod
    def _complete(cls, clean: dict[str, Any], **context: Any) -> dict[str, Any]:
        return clean

    def _validate(self) -> None:
        return None


def read_section(settings: Settings, cls: type[SettingsSection]) -> tuple[dict[str, Any], dict[str, str]]:
    """The file's ``[cls.SECTION]`` with the environment laid over it, and which keys the
    environment set (key -> variable name). Unknown keys are kept, for the reader to refuse."""
    values = cls._from_file(settings.section(cls.SECTION), settings)
    origins: dict[str, str] = {}
    for key, default in cls._accepted().items():
        for var in cls.env_names(key):
            raw = os.environ.get(var)
            if raw is None or raw == "":
                continue
            values[key] = _env_value(var, raw, default, cls.ENV_SEPARATORS.get(key, ","))
            origins[key] = var
    return values, origins


def _env_value(var: str, raw: str, default: Any, separator: str) -> Any:
    """An environment string as a TOML value would arrive: lists split (or JSON), tables as JSON."""
    if not isinstance(default, (tuple, list, dict)):
        return raw
    text = raw.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except ValueError:
            raise ConfigError(f"{var} is not valid JSON") from None
    return [part.strip() for part in text.split(separator) if part.strip()]


def check_keys(section: str, values: Mapping[str, Any], known: Mapping[str, Any] | set[str] | frozenset[str]) -> None:
    """Raise :class:`ConfigError` naming any key of ``[section]`` that is not a setting (with the
    closest known key as a suggestion)."""
    unknown = sorted(set(values) - set(known))
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hints.append(f"{key} (did you mean {close[0]}?)" if close else key)
    raise ConfigError(f"unknown [{section}] setting(s): {', '.join(hints)}")


def coerce_setting(section: str, name: str, value: Any, default: Any, *, secret: bool = False,
                   label: str | None = None) -> Any:
    """A TOML or environment value converted to the type of the setting's default.

    Booleans accept true/false and the strings 1/0, yes/no, on/off; tuples accept a list or one
    string; integers refuse booleans and fractions. The error is one line naming the setting
    (``label``, e.g. the environment variable it came from, else ``[section] name``) and, unless
    ``secret``, the offending value.
    """
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            if not isinstance(value, bool):
                raise TypeError(value)
            return value
        if isinstance(default, tuple):
            items = [value] if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise TypeError(value)
            return tuple(str(v) for v in items)
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError(value)
            return int(value)
        if isinstance(default, float):
            if isinstance(value, bool):
                raise TypeError(value)
            return float(value)
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    except (TypeError, ValueError):
        shown = "" if secret else f"={value!r}"
        raise ConfigError(f"{label or f'[{section}] {name}'}{shown} must be a {type(default).__name__}") from None


def positive(section: str, name: str, value: float, *, strict: bool = True) -> None:
    """Raise :class:`ConfigError` unless ``value`` is > 0 (``strict``) or >= 0."""
    if value <= 0 if strict else value < 0:
        raise ConfigError(f"[{section}] {name}={value!r} must be {'> 0' if strict else '>= 0'}")


# --- the shared sections -----------------------------------------------------------------------------
@dataclass(frozen=True)
class AnalysisConfig(SettingsSection):
    """Every threshold the analysis uses. Stored with each analysis and part of its cache key.

    Units are in the names. Defaults are telephony defaults justified in README ("Thresholds")
    from measurements on ``../shared/corpus``.
    """

    # loading
    max_duration_s: float = 7200.0
    # silence gaps, ffmpeg silencedetect semantics (noise in dBFS, minimum gap in s)
    silence_noise_db: float = -50.0
    silence_min_s: float = 0.5
    # Silero VAD; 250 ms minimum silence matches how the corpus labels bridge pauses
    vad_threshold: float = 0.5
    vad_min_speech_ms: int = 250
    vad_min_silence_ms: int = 250
    vad_speech_pad_ms: int = 0
    # conference detection: the -out leg's peak is below this (digital silence)
    conference_out_peak_db: float = -66.0
    # one-way audio between legs: a leg with at most this speech ratio while the other talks
    one_way_max_speech_ratio: float = 0.02
    one_way_other_min_speech_s: float = 3.0
    # one-way audio in a mix: only short exchanges separated by long unanswered gaps
    mixed_one_way_join_gap_s: float = 3.0
    mixed_one_way_max_run_s: float = 8.0
    mixed_one_way_min_gap_s: float = 5.0
    mixed_one_way_min_bursts: int = 3
    # talk imbalance (the seed's 70/30 rule)
    imbalance_share: float = 0.70
    # dead air: nobody speaks for at least this long between two stretches of speech
    dead_air_min_s: float = 5.0
    dead_air_grace_s: float = 1.0
    dead_air_critical_s: float = 20.0
    # clipping: samples within clip_level_db of the encoding's full scale
    clip_level_db: float = -0.1
    clip_min_ratio: float = 0.0005
    clip_min_run: int = 3
    # low volume: active speech level below this
    low_volume_speech_db: float = -35.0
    # echo: correlation of one leg with the other's delayed speech
    echo_min_delay_ms: float = 20.0
    echo_max_delay_ms: float = 600.0
    echo_min_corr: float = 0.25
    # packet loss: dropouts inside speech
    packet_loss_min_events: int = 3
    packet_loss_min_per_min: float = 6.0
    packet_loss_max_discontinuity: float = 1.6  # NISQA; concealed loss leaves no dropout to count
    # talk-over: overlap share of the quieter side's speech
    talk_over_min_share: float = 0.15
    talk_over_min_s: float = 1.0
    # noisy: speech-to-noise ratio below this
    noisy_snr_db: float = 15.0
    # quality (NISQA over windows)
    quality_window_s: float = 10.0
    quality_hop_s: float = 10.0
    quality_min_speech_s: float = 3.0
    poor_quality_mos: float = 2.0
    # stereo channel order: which leg the left channel holds
    stereo_left: str = "agent"
    # mixed recordings (conference / mix-only): split into caller and agent sides
    split_mixed_sides: bool = True
    mix_vad_threshold: float = 0.5
    mix_vad_min_speech_ms: int = 100
    mix_vad_min_silence_ms: int = 100
    mix_vad_onset_pad_ms: int = 100  # Silero marks speech late; the labels' onsets come earlier
    mix_vad_rescue_margin_db: float = 12.0  # re-score stretches this far above the floor alone
    diar_window_ms: int = 1000
    diar_hop_ms: int = 500
    diar_anchor_weight: float = 0.3
    diar_voiceprint_match: float = 0.90  # centroid similarity above which one voice is the enrolled agent
    diar_min_confidence: float = 0.5  # below: sides stay speaker_a / speaker_b
    diar_conference_single_confidence: float = 0.6
    mix_leg_gain_db: float = -6.02  # each leg's gain in a -all mix (sox -m of two legs halves each)
    conference_leg_gain_db: float = 0.0  # a conference bridge sums its members at unity
    mix_clip_min_ratio: float = 0.001  # side samples within 1 dB of the leg's rail in the mix
    mix_gap_min_events: int = 5
    mix_gap_min_per_min: float = 30.0  # abrupt holes per minute of a side's speech

    SECTION: ClassVar[str] = "analysis"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def _validate(self) -> None:
        if self.stereo_left not in ("agent", "caller"):
            raise ConfigError(f"[analysis] stereo_left={self.stereo_left!r} must be 'agent' or 'caller'")


@dataclass(frozen=True)
class PathSettings(SettingsSection):
    """``[paths]``: where data, models and temporary files live ("" = the default below)."""

    data_dir: str = ""  # default <project>/data
    models_dir: str = ""  # default <project>/models
    tmp_dir: str = ""  # default <data_dir>/tmp

    SECTION: ClassVar[str] = "paths"
    ENV_ALIASES: ClassVar[Mapping[str, str]] = {"data_dir": "CALLQA_DATA", "models_dir": "CALLQA_MODELS",
                                                "tmp_dir": "CALLQA_TMP"}


@dataclass(frozen=True)
class StoreSettings(SettingsSection):
    """``[store]``: the result store, a SQLite path or ``postgresql://`` URL ("" = data/callqa.db)."""

    url: str = field(default="", repr=False)

    SECTION: ClassVar[str] = "store"
    ENV_ALIASES: ClassVar[Mapping[str, str]] = {"url": "CALLQA_STORE"}
    SECRETS: ClassVar[frozenset[str]] = frozenset({"url"})


@dataclass(frozen=True)
class ScanSettings(SettingsSection):
    """``[scan]``: claims, the re-fetch TTL of remote recordings, progress lines.

    Attributes
    ----------
    claim_ttl_s : float
        A scanner's claim on a call expires after this long.
    remote_ttl_s : float
        A recording fetched from a remote server is fetched again after this long (it can be
        rewritten or truncated); until then its stored analysis is reused without fetching.
    progress_interval_s : float
        Plain progress lines when stderr is not a terminal.
    """

    claim_ttl_s: float = 1800.0
    remote_ttl_s: float = 86400.0
    progress_interval_s: float = 10.0

    SECTION: ClassVar[str] = "scan"

    def _validate(self) -> None:
        for f in dataclasses.fields(self):
            positive(self.SECTION, f.name, getattr(self, f.name))


@dataclass(frozen=True)
class Settings:
    """The loaded configuration file (or none) and the shared paths."""

    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        """The file's raw ``[name]`` table (read settings with a :class:`SettingsSection`, which adds
        the environment, the checks and the types)."""
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] in {self.path} must be a table")
        return dict(value)

    @property
    def analysis(self) -> AnalysisConfig:
        return AnalysisConfig.from_settings(self)

    @property
    def data_dir(self) -> Path:
        value = PathSettings.from_settings(self).data_dir
        return Path(value).expanduser() if value else PROJECT_ROOT / "data"

    @property
    def models_dir(self) -> Path:
        value = PathSettings.from_settings(self).models_dir
        return Path(value).expanduser() if value else PROJECT_ROOT / "models"

    @property
    def tmp_dir(self) -> Path:
        value = PathSettings.from_settings(self).tmp_dir
        return Path(value).expanduser() if value else self.data_dir / "tmp"

    def store_url(self, override: str | None = None) -> str:
        """The result store: ``--store``, then ``CALLQA_STORE``, then ``[store] url``, then data/callqa.db."""
        return str(override or StoreSettings.from_settings(self).url or self.data_dir / "callqa.db")


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read the configuration file: ``path``, else ``CALLQA_CONFIG``, else ``./callqa.toml`` if present."""
    candidate = path or os.environ.get("CALLQA_CONFIG")
    if not candidate:
        local = Path.cwd() / "callqa.toml"
        if not local.is_file():
            return Settings()
        candidate = local
    p = Path(candidate).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist (set --config or CALLQA_CONFIG)") from None
    except OSError as exc:
        raise ConfigError(f"config file {p} cannot be read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return Settings(path=p, raw=raw)
