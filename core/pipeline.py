"""The per-call analysis: decode once, then every stage on the shared samples.

``analyze_call`` is the one function the CLI, the scan, the dashboard, the API and the workers
call. Models (VAD, quality) are passed in so they load once per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core import __version__
from core.audio.dropouts import detect_dropouts
from core.audio.echo import EchoResult, measure_echo
from core.audio.findings import TrackMeasurements, detect_findings, side_findings
from core.audio.io import AudioClip
from core.audio.layout import CallFiles, call_files_for, resolve_layout
from core.audio.levels import measure_levels
from core.audio.sides import leg_gain_db, measure_side, score_sides
from core.audio.silence import detect_silence
from core.audio.stats import compute_stats
from core.audio.vad import SileroVAD, SpeechResult, detect_speech, get_vad
from core.config import AnalysisConfig
from core.quality.base import model_identity
from core.results import CallAnalysis, Interval, LegResult

if TYPE_CHECKING:
    from core.audio.diarize import SideSplit, VoiceContext
    from core.audio.speakers import VoiceEncoder
    from core.quality.base import QualityModel

ANALYSIS_VERSION = f"{__version__}+a2"
STAGES = ("decode", "stats", "silence", "speech", "measure", "sides", "quality", "findings")
MIXED_LAYOUTS = ("conference", "mixed")

Progress = Callable[[str], None]


@dataclass
class _Clock:
    timings: dict[str, float] = field(default_factory=dict)
    progress: Progress | None = None
    _t: float = field(default_factory=time.perf_counter)

    def start(self, stage: str) -> None:
        if self.progress:
            self.progress(stage)
        self._t = time.perf_counter()

    def stop(self, stage: str) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - self._t


def analyze_call(
    call: CallFiles,
    *,
    cfg: AnalysisConfig | None = None,
    layout: str | None = None,
    quality_model: QualityModel | None = None,
    vad: SileroVAD | None = None,
    progress: Progress | None = None,
    voices: VoiceContext | Callable[[], VoiceContext] | None = None,
    encoder: VoiceEncoder | None = None,
) -> CallAnalysis:
    """Analyse one call.

    Parameters
    ----------
    call : CallFiles
        The call's recordings (:func:`core.audio.layout.call_files_for`).
    cfg : AnalysisConfig, optional
        Thresholds; defaults when omitted.
    layout : str, optional
        Force a layout instead of detecting it.
    quality_model : QualityModel, optional
        Scores speech quality over windows; ``None`` skips quality (``quality`` is null).
    vad : SileroVAD, optional
        The VAD session; the process-wide one by default.
    progress : callable, optional
        Called with each stage name in :data:`STAGES` as it starts.
    voices : VoiceContext or callable returning one, optional
        The call's agent and the enrolled voiceprints, used to tell the agent's side of a mixed
        recording (:mod:`core.audio.diarize`); without it sides are attributed only by layout.
        A callable is called only when the call turns out to be mixed (reading the voiceprints
        from the store is then skipped for every other call).
    encoder : VoiceEncoder, optional
        The speaker-embedding model; the process-wide one by default (loaded only for mixes).

    Raises
    ------
    AudioError, ModelUnavailableError
        With a one-line message naming the file and the problem.
    """
    cfg = cfg or AnalysisConfig()
    clock = _Clock(progress=progress)
    t0 = time.perf_counter()

    clock.start("decode")
    resolved = resolve_layout(call, cfg=cfg, layout=layout)
    clips = resolved.tracks
    clock.stop("decode")

    clock.start("stats")
    stats = {leg: compute_stats(c, clip_level_db=cfg.clip_level_db) for leg, c in clips.items()}
    clock.stop("stats")

    clock.start("silence")
    silences = {leg: detect_silence(c, noise_db=cfg.silence_noise_db, min_silence_s=cfg.silence_min_s)
                for leg, c in clips.items()}
    clock.stop("silence")

    clock.start("speech")
    will_split = resolved.layout in MIXED_LAYOUTS and cfg.split_mixed_sides and "mixed" in clips
    speech = detect_speech(
        clips, vad=vad or get_vad(), threshold=cfg.vad_threshold, min_speech_ms=cfg.vad_min_speech_ms,
        min_silence_ms=cfg.vad_min_silence_ms, speech_pad_ms=cfg.vad_speech_pad_ms,
        full=("mixed",) if will_split else (),  # the side split's ungated pass, alongside the gated one
    )
    clock.stop("speech")

    clock.start("measure")
    levels = {leg: measure_levels(c, speech[leg].segments) for leg, c in clips.items()}
    dropouts = {leg: detect_dropouts(c, speech[leg].segments) for leg, c in clips.items()}
    echoes: dict[tuple[str, str], EchoResult | None] = {}
    if "caller" in clips and "agent" in clips:
        for source, target in (("agent", "caller"), ("caller", "agent")):
            echoes[(source, target)] = measure_echo(
                clips[source], clips[target], speech[source].segments,
                min_delay_ms=cfg.echo_min_delay_ms, max_delay_ms=cfg.echo_max_delay_ms,
            )
    clock.stop("measure")

    split = None
    if will_split:
        clock.start("sides")
        mix_voices = voices() if callable(voices) else voices
        split = _split_sides(clips["mixed"], resolved.layout, vad=vad or get_vad(), encoder=encoder,
                             voices=mix_voices, cfg=cfg, probs=speech["mixed"].full_probs)
        gain = leg_gain_db(resolved.layout, cfg)
        sides = {name: measure_side(clips["mixed"], split.segments[name], levels["mixed"].noise_db, gain)
                 for name in split.names}
        clock.stop("sides")

    off = (None, "quality scoring disabled (--no-quality)")
    quality: dict[str, tuple] = {leg: off for leg in clips}
    side_quality: dict[str, tuple] = {name: off for name in (split.names if split else ())}
    if quality_model is not None:
        from core.quality.windows import score_tracks

        clock.start("quality")
        scored = {leg: c for leg, c in clips.items() if split is None or leg != "mixed"}
        quality.update(score_tracks(
            quality_model, scored, {leg: speech[leg].segments for leg in scored},
            window_s=cfg.quality_window_s, hop_s=cfg.quality_hop_s, min_speech_s=cfg.quality_min_speech_s,
        ))
        if split is not None:
            quality["mixed"] = (None, f"scored per side ({', '.join(split.names)})")
            side_quality = score_sides(quality_model, clips["mixed"], split.segments, cfg)
        clock.stop("quality")

    clock.start("findings")
    measurements = {
        leg: TrackMeasurements(stats[leg], speech[leg], levels[leg], dropouts[leg], c.duration_s, quality[leg][0])
        for leg, c in clips.items()
    }
    if split is None:
        findings = detect_findings(measurements, layout=resolved.layout, echo_results=echoes, cfg=cfg)
    else:
        mix = clips["mixed"]
        side_tracks = {
            name: TrackMeasurements(
                sides[name].stats, _side_speech(split.segments[name], mix.duration_s), sides[name].levels,
                sides[name].dropouts, mix.duration_s, side_quality[name][0])
            for name in split.names
        }
        findings = side_findings(side_tracks, measurements["mixed"], layout=resolved.layout,
                                 single_talker=split.single_talker, attributed=split.attributed,
                                 evidence=split.evidence, leg_gain_db=gain, cfg=cfg)
    clock.stop("findings")

    legs = {}
    for leg, c in clips.items():
        extra = {
            "speech_level_db": _round(levels[leg].speech_db),
            "noise_floor_db": _round(levels[leg].noise_db),
            "snr_db": _round(levels[leg].snr_db),
            "dropouts": dropouts[leg].events,
        }
        if c.declared_duration_s is not None:  # a truncated stream: what its header promised
            extra["declared_duration_s"] = c.declared_duration_s
        legs[leg] = LegResult(
            stats=stats[leg], silences=list(silences[leg].silences), speech=list(speech[leg].segments),
            speech_ratio=speech[leg].speech_ratio, sample_rate=c.sample_rate, encoding=c.encoding,
            source=resolved.sources.get(leg, str(c.path)), quality=quality[leg][0],
            quality_reason=quality[leg][1], extra=extra,
        )
    warnings = list(resolved.warnings)
    extra: dict = {}
    if split is not None:
        mix = clips["mixed"]
        for name in split.names:
            m = sides[name]
            legs[name] = LegResult(
                stats=m.stats, silences=[], speech=list(split.segments[name]),
                speech_ratio=_side_speech(split.segments[name], mix.duration_s).speech_ratio,
                sample_rate=mix.sample_rate, encoding=mix.encoding,
                source=f"{resolved.sources.get('mixed', str(mix.path))}#{name}", quality=side_quality[name][0],
                quality_reason=side_quality[name][1],
                extra={"speech_level_db": _round(m.levels.speech_db), "noise_floor_db": _round(m.levels.noise_db),
                       "snr_db": _round(m.levels.snr_db), "dropouts": m.dropouts.events, "side_of": "mixed"},
            )
        legs = {name: legs[name] for name in (*split.names, "mixed")}
        warnings = [w for w in warnings if not w.startswith("mixed layout:")] + list(split.warnings)
        extra["attribution"] = {**split.as_dict(), "voices": (mix_voices.identity() if mix_voices else "none")}
    elif resolved.layout == "conference":
        warnings.append("one track holds both talkers and [analysis] split_mixed_sides is off, so directional "
                        "checks (one-way audio, echo, talk imbalance, talk-over) are limited")
    agent_voice = None
    if split is not None:
        agent_voice = split.agent_voice
    elif not callable(voices) and voices is not None and voices.agent_user is not None and "agent" in clips and "caller" in clips:
        agent_voice = _agent_leg_voice(clips["agent"], speech["agent"].segments, speech["caller"].segments,
                                       encoder=encoder, cfg=cfg)
    clock.timings["total"] = time.perf_counter() - t0
    return CallAnalysis(
        call_id=resolved.call_id,
        layout=resolved.layout,
        duration_s=max(c.duration_s for c in clips.values()),
        legs=legs,
        findings=findings,
        warnings=warnings,
        config=cfg.as_dict(),
        timings_s=clock.timings,
        sources={role: str(p) for role, p in sorted(call.files.items())},
        version=ANALYSIS_VERSION,
        quality_model=model_identity(quality_model),
        extra=extra,
        agent_voice=agent_voice,
    )


def _agent_leg_voice(agent: AudioClip, agent_speech: tuple[Interval, ...], caller_speech: tuple[Interval, ...], *,
                     encoder: VoiceEncoder | None, cfg: AnalysisConfig):
    """The agent leg's voice where the caller is silent (no crosstalk or echo in it), for the voiceprint."""
    from core.audio.diarize import speaker_embedding
    from core.audio.speakers import get_encoder

    alone: list[Interval] = []
    for iv in agent_speech:
        pieces = [iv]
        for other in caller_speech:
            pieces = [p for q in pieces for p in (Interval(q.start_s, min(q.end_s, other.start_s)),
                                                    Interval(max(q.start_s, other.end_s), q.end_s))
                      if p.end_s - p.start_s >= 0.3]
        alone += pieces
    vector, seconds = speaker_embedding(agent, alone, encoder or get_encoder(), cfg)
    return None if vector is None else (vector, seconds)


def _side_speech(segments: tuple[Interval, ...], duration_s: float) -> SpeechResult:
    talk = sum(iv.duration_s for iv in segments)
    return SpeechResult(tuple(segments), talk / duration_s if duration_s else 0.0, 0.01, np.zeros(0, np.float32))


def _split_sides(mix: AudioClip, layout: str, *, vad: SileroVAD, encoder: VoiceEncoder | None,
                 voices: VoiceContext | None, cfg: AnalysisConfig, probs: np.ndarray | None = None) -> SideSplit:
    """The two sides of a mixed track (:mod:`core.audio.diarize`)."""
    from core.audio.diarize import detect_mix_speech, diarize_mix
    from core.audio.speakers import get_encoder

    speech = detect_mix_speech(mix, vad=vad, cfg=cfg, probs=probs)
    return diarize_mix(mix, speech, encoder=encoder or get_encoder(), voices=voices, layout=layout, cfg=cfg)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def analyze_path(path: str | Path, **kwargs) -> CallAnalysis:
    """Analyse the call that the recording at ``path`` belongs to (see :func:`analyze_call`)."""
    return analyze_call(call_files_for(path), **kwargs)
