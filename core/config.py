"""Configuration: one TOML file plus environment overrides, with working local defaults.

Where the file comes from, highest first: an explicit path (``--config``), ``CALLQA_CONFIG``,
``./callqa.toml`` when it exists. Without any file every section is empty and the defaults
below apply, which is what ``make run`` relies on.

Each subsystem reads its own section (``settings.section("vicidial")``) and applies its own
environment overrides; this module owns only the shared paths and the analysis thresholds.
Secrets (database passwords, API keys) are read here or in the app layer and passed inward;
they are never logged.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else default


@dataclass(frozen=True)
class AnalysisConfig:
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

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> AnalysisConfig:
        """Build from a ``[analysis]`` section, rejecting unknown keys and wrong types."""
        values = dict(values or {})
        defaults = {f.name: getattr(cls, f.name) for f in dataclasses.fields(cls)}
        check_keys("analysis", values, set(defaults))
        clean = {name: coerce_setting("analysis", name, value, defaults[name]) for name, value in values.items()}
        cfg = cls(**clean)
        if cfg.stereo_left not in ("agent", "caller"):
            raise ConfigError(f"[analysis] stereo_left={cfg.stereo_left!r} must be 'agent' or 'caller'")
        return cfg


@dataclass(frozen=True)
class Settings:
    """The loaded configuration file (or none) and the shared paths."""

    path: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"[{name}] in {self.path} must be a table")
        return dict(value)

    @property
    def analysis(self) -> AnalysisConfig:
        return AnalysisConfig.from_mapping(self.section("analysis"))

    @property
    def data_dir(self) -> Path:
        default = Path(self.section("paths").get("data_dir", PROJECT_ROOT / "data"))
        return _env_path("CALLQA_DATA", default)

    @property
    def models_dir(self) -> Path:
        default = Path(self.section("paths").get("models_dir", PROJECT_ROOT / "models"))
        return _env_path("CALLQA_MODELS", default)

    @property
    def tmp_dir(self) -> Path:
        default = Path(self.section("paths").get("tmp_dir", self.data_dir / "tmp"))
        return _env_path("CALLQA_TMP", default)

    def store_url(self, override: str | None = None) -> str:
        """The result store: ``--store``, then ``CALLQA_STORE``, then ``[store] url``, then data/callqa.db."""
        value = override or os.environ.get("CALLQA_STORE") or self.section("store").get("url")
        if not value:
            value = str(self.data_dir / "callqa.db")
        return str(value)


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


def env_overrides(section: dict[str, Any], prefix: str, keys: dict[str, type]) -> dict[str, Any]:
    """Return ``section`` with ``{prefix}{KEY}`` environment variables applied (e.g. CALLQA_VICIDIAL_HOST)."""
    out = dict(section)
    for key, kind in keys.items():
        value = os.environ.get(f"{prefix}{key.upper()}")
        if value is None or value == "":
            continue
        try:
            out[key] = kind(value)
        except ValueError:
            raise ConfigError(f"{prefix}{key.upper()}={value!r} must be a {kind.__name__}") from None
    return out


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def check_keys(section: str, values: dict[str, Any], known: set[str] | frozenset[str]) -> None:
    """Raise :class:`ConfigError` naming any key of ``[section]`` that is not a setting."""
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown [{section}] setting(s): {', '.join(unknown)}")


def coerce_setting(section: str, name: str, value: Any, default: Any, *, secret: bool = False) -> Any:
    """A TOML or environment value converted to the type of the setting's default.

    Booleans accept true/false and the strings 1/0, yes/no, on/off; tuples accept a list or one
    string; integers refuse booleans and fractions. The error is one line naming the setting
    (and, unless ``secret``, the offending value).
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
        raise ConfigError(f"[{section}] {name}{shown} must be a {type(default).__name__}") from None
