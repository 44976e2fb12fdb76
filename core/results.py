"""Result types of the analysis and their JSON form (the ``callqa analyze --json`` contract).

The JSON keys here are a contract read by the store, the dashboard, the API and the Claude
prompts: add keys freely, never rename or drop one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")
FINDING_CODES = (
    "one_way_audio",
    "talk_imbalance",
    "dead_air",
    "clipping",
    "low_volume",
    "echo",
    "packet_loss",
    "talk_over",
    "noisy",
    "poor_quality",
)
LAYOUTS = ("channel", "conference", "stereo", "mixed")


@dataclass(frozen=True)
class Interval:
    """A time span in seconds from the start of the track."""

    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    def as_dict(self) -> dict[str, float]:
        return {"start_s": round(float(self.start_s), 3), "end_s": round(float(self.end_s), 3)}


@dataclass(frozen=True)
class TrackStats:
    """Amplitude statistics as ``sox FILE -n stat`` defines them (dB relative to full scale)."""

    rms_db: float
    peak_db: float
    duration_s: float
    dc_offset: float
    clipped_samples: int
    clip_ratio: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "rms_db": round(self.rms_db, 3),
            "peak_db": round(self.peak_db, 3),
            "duration_s": round(self.duration_s, 6),
            "dc_offset": round(self.dc_offset, 7),
            "clipped_samples": int(self.clipped_samples),
            "clip_ratio": round(self.clip_ratio, 7),
        }


@dataclass(frozen=True)
class Finding:
    """One detected problem: ``{code, leg, start_s, end_s, severity, detail}``."""

    code: str
    leg: str | None
    start_s: float
    end_s: float
    severity: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "leg": self.leg,
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "severity": self.severity,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class QualityScores:
    """NISQA outputs for one stretch of audio."""

    mos: float
    noisiness: float
    discontinuity: float
    coloration: float
    loudness: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class QualityWindow:
    start_s: float
    end_s: float
    scores: QualityScores
    speech_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3)}
        out.update(self.scores.as_dict())
        out["speech_s"] = round(self.speech_s, 3)
        return out


@dataclass(frozen=True)
class TrackQuality:
    """Call-level quality of one track: speech-weighted means over windows, the worst window."""

    scores: QualityScores
    windows: tuple[QualityWindow, ...]
    model: str

    @property
    def worst_window(self) -> QualityWindow | None:
        return min(self.windows, key=lambda w: w.scores.mos) if self.windows else None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.scores.as_dict()
        worst = self.worst_window
        out["worst_window"] = worst.as_dict() if worst else None
        out["windows"] = [w.as_dict() for w in self.windows]
        out["model"] = self.model
        return out


@dataclass
class LegResult:
    """Everything measured on one track."""

    stats: TrackStats
    silences: list[Interval]
    speech: list[Interval]
    speech_ratio: float
    sample_rate: int
    encoding: str
    source: str
    quality: TrackQuality | None = None
    quality_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "stats": self.stats.as_dict(),
            "silences": [s.as_dict() for s in self.silences],
            "speech": [s.as_dict() for s in self.speech],
            "speech_ratio": round(self.speech_ratio, 4),
            "quality": self.quality.as_dict() if self.quality else None,
            "quality_reason": self.quality_reason,
            "sample_rate": self.sample_rate,
            "encoding": self.encoding,
            "source": self.source,
        }
        out.update(self.extra)
        return out


@dataclass
class CallAnalysis:
    """The whole analysis of one call."""

    call_id: str
    layout: str
    duration_s: float
    legs: dict[str, LegResult]
    findings: list[Finding]
    warnings: list[str]
    config: dict[str, Any]
    timings_s: dict[str, float]
    sources: dict[str, str]
    version: str
    quality_model: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the agent's voice in this call, for refreshing their voiceprint: (unit embedding, speech s);
    #: set only when the analysis knew the agent (not part of the JSON)
    agent_voice: tuple[Any, float] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "layout": self.layout,
            "duration_s": round(self.duration_s, 3),
            "legs": {name: leg.as_dict() for name, leg in self.legs.items()},
            "findings": [f.as_dict() for f in self.findings],
            "warnings": list(self.warnings),
            "config": dict(self.config),
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "sources": dict(self.sources),
            "analysis_version": self.version,
            "quality_model": self.quality_model,
            **self.extra,
        }
