"""Findings: the problems an analyst acts on, derived from the per-track measurements.

Each detector is a small function from measurements to a list of :class:`Finding`; every
threshold comes from :class:`core.config.AnalysisConfig`. Directional checks (one-way audio
between legs, echo, talk imbalance, talk-over) need separate legs; on a mixed track only the
mix-specific one-way pattern, dead air, clipping, low volume, noise and dropouts are checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from core.audio.dropouts import DropoutResult
from core.audio.echo import EchoResult
from core.audio.levels import LevelResult
from core.audio.vad import SpeechResult
from core.config import AnalysisConfig
from core.results import Finding, Interval, TrackQuality, TrackStats

LEG_ORDER = ("caller", "agent", "mixed")


@dataclass(frozen=True)
class TrackMeasurements:
    """Everything the detectors need about one track."""

    stats: TrackStats
    speech: SpeechResult
    levels: LevelResult
    dropouts: DropoutResult
    duration_s: float
    quality: TrackQuality | None = None


def _merge(intervals: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start_s):
        if out and iv.start_s <= out[-1].end_s:
            out[-1] = Interval(out[-1].start_s, max(out[-1].end_s, iv.end_s))
        else:
            out.append(iv)
    return out


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i].start_s, b[j].start_s), min(a[i].end_s, b[j].end_s)
        if e > s:
            out.append(Interval(s, e))
        if a[i].end_s < b[j].end_s:
            i += 1
        else:
            j += 1
    return out


def one_way_between_legs(tracks: Mapping[str, TrackMeasurements], cfg: AnalysisConfig) -> list[Finding]:
    """A leg that carries (almost) no speech while the other leg talks."""
    found = []
    for leg, other in (("caller", "agent"), ("agent", "caller")):
        if leg not in tracks or other not in tracks:
            continue
        mine, theirs = tracks[leg].speech, tracks[other].speech
        if mine.speech_ratio <= cfg.one_way_max_speech_ratio and theirs.speech_s >= cfg.one_way_other_min_speech_s:
            found.append(Finding(
                "one_way_audio", leg, 0.0, tracks[leg].duration_s, "critical",
                f"no {leg} audio: {mine.speech_s:.1f} s of speech on the {leg} leg while the {other} "
                f"talks for {theirs.speech_s:.1f} s (leg level {tracks[leg].stats.rms_db:.0f} dBFS)",
            ))
    return found


def unanswered_runs(segments: Sequence[Interval], duration_s: float, cfg: AnalysisConfig
                    ) -> tuple[list[list[float]], list[float]] | None:
    """The unanswered-talker pattern of a mix: speech runs (bursts joined across gaps shorter than
    ``mixed_one_way_join_gap_s``) and the long gaps after them, or None when the mix does not
    show it.

    A conversation yields long runs; an unanswered talker yields only short runs (at most
    ``mixed_one_way_max_run_s``), at least two of them followed by a gap of
    ``mixed_one_way_min_gap_s`` (the last one by the end of the recording: the caller hung up).
    """
    if len(segments) < cfg.mixed_one_way_min_bursts:
        return None
    runs: list[list[float]] = []
    for s in segments:
        if runs and s.start_s - runs[-1][1] < cfg.mixed_one_way_join_gap_s:
            runs[-1][1] = s.end_s
        else:
            runs.append([s.start_s, s.end_s])
    after = [b[0] - a[1] for a, b in zip(runs, runs[1:], strict=False)] + [duration_s - runs[-1][1]]
    long_gaps = [g for g in after if g >= cfg.mixed_one_way_min_gap_s]
    if len(long_gaps) < 2 or max(e - s for s, e in runs) > cfg.mixed_one_way_max_run_s:
        return None
    return runs, long_gaps


def one_way_in_mix(track: MixedSpeech, cfg: AnalysisConfig, *, layout: str) -> list[Finding]:
    """In a mix: one talker repeating short phrases into long silences (:func:`unanswered_runs`).

    In a ViciDial conference recording the agent's own audio is always captured by the bridge,
    so the side that is missing is the caller's.
    """
    segs = track.segments
    pattern_found = unanswered_runs(segs, track.duration_s, cfg)
    if pattern_found is None:
        return []
    runs, long_gaps = pattern_found
    longest_run = max(e - s for s, e in runs)
    pattern = (f"one voice repeats short phrases into silence ({len(segs)} bursts, longest exchange "
               f"{longest_run:.1f} s, {len(long_gaps)} unanswered gaps of {min(long_gaps):.0f}-{max(long_gaps):.0f} s)")
    if layout == "conference":  # the bridge always captures the agent: the caller is missing
        return [Finding("one_way_audio", "caller", 0.0, track.duration_s, "critical",
                        f"{pattern}: the caller's audio is missing from the conference mix")]
    return [Finding("one_way_audio", None, 0.0, track.duration_s, "critical",
                    f"{pattern}: one side's audio is missing (a mix cannot tell which; in a ViciDial "
                    "conference recording it is usually the caller's)")]


@dataclass(frozen=True)
class MixedSpeech:
    segments: tuple[Interval, ...]
    duration_s: float


def talk_imbalance(tracks: Mapping[str, TrackMeasurements], cfg: AnalysisConfig) -> list[Finding]:
    """The seed's 70/30 rule: one side holds more than ``imbalance_share`` of the speech."""
    if "caller" not in tracks or "agent" not in tracks:
        return []
    c, a = tracks["caller"].speech.speech_s, tracks["agent"].speech.speech_s
    total = c + a
    if total <= 0:
        return []
    for leg, mine in (("caller", c), ("agent", a)):
        share = mine / total
        if share > cfg.imbalance_share:
            other = "agent" if leg == "caller" else "caller"
            return [Finding(
                "talk_imbalance", leg, 0.0, max(t.duration_s for t in tracks.values()), "info",
                f"the {leg} holds {share:.0%} of the speech ({mine:.0f} s vs {total - mine:.0f} s for the {other}); "
                "a monologue, not one-way audio",
            )]
    return []


def dead_air(speech: Sequence[Sequence[Interval]], duration_s: float, cfg: AnalysisConfig) -> list[Finding]:
    """Both sides silent for at least ``dead_air_min_s`` between two stretches of speech.

    Leading and trailing silence (ringing, hold before the first word, hang-up tail) is not dead
    air. The reported interval starts ``dead_air_grace_s`` into the pause: a normal turn-taking
    gap is part of the conversation, dead air is the time beyond it.
    """
    union = _merge([iv for segs in speech for iv in segs])
    found = []
    for prev, nxt in zip(union, union[1:], strict=False):
        gap = nxt.start_s - prev.end_s
        if gap >= cfg.dead_air_min_s:
            start = prev.end_s + min(cfg.dead_air_grace_s, gap / 2)
            severity = "critical" if gap >= cfg.dead_air_critical_s else "warning"
            found.append(Finding(
                "dead_air", None, start, nxt.start_s, severity,
                f"{gap:.1f} s with nobody speaking ({prev.end_s:.1f}-{nxt.start_s:.1f} s)",
            ))
    return found


def clipping(leg: str, m: TrackMeasurements, cfg: AnalysisConfig, *, min_ratio: float | None = None,
             where: str | None = None) -> list[Finding]:
    """Samples at the encoding's full scale in runs (flat tops), above ``clip_min_ratio`` (or
    ``min_ratio``; ``where`` says what the rail is, for a side of a mix)."""
    st = m.stats
    if st.clip_ratio < (cfg.clip_min_ratio if min_ratio is None else min_ratio) or st.clipped_samples < cfg.clip_min_run:
        return []
    severity = "critical" if st.clip_ratio >= 0.01 else "warning"
    detail = where or f"at full scale, peak {st.peak_db:.1f} dBFS"
    return [Finding("clipping", leg, 0.0, m.duration_s, severity,
                    f"{st.clipped_samples} samples ({st.clip_ratio:.2%}) {detail}")]


def low_volume(leg: str, m: TrackMeasurements, cfg: AnalysisConfig) -> list[Finding]:
    """Active speech level below ``low_volume_speech_db``."""
    level = m.levels.speech_db
    if level is None or m.speech.speech_s < 1.0 or level >= cfg.low_volume_speech_db:
        return []
    return [Finding(
        "low_volume", leg, 0.0, m.duration_s, "warning",
        f"speech at {level:.1f} dBFS, below {cfg.low_volume_speech_db:.0f} dBFS (typical telephone speech is -26 to -16)",
    )]


def noisy(leg: str, m: TrackMeasurements, cfg: AnalysisConfig) -> list[Finding]:
    """Speech-to-noise ratio below ``noisy_snr_db``."""
    snr = m.levels.snr_db
    if snr is None or m.speech.speech_s < 1.0 or snr >= cfg.noisy_snr_db:
        return []
    return [Finding(
        "noisy", leg, 0.0, m.duration_s, "warning",
        f"speech-to-noise ratio {snr:.1f} dB (speech {m.levels.speech_db:.0f} dBFS, background "
        f"{m.levels.noise_db:.0f} dBFS)",
    )]


def packet_loss(leg: str, m: TrackMeasurements, cfg: AnalysisConfig) -> list[Finding]:
    """Dropouts (lost or frozen packets) inside speech; or, when the holes were concealed (filled
    with noise or interpolated, so no dropout shows), a NISQA discontinuity below
    ``packet_loss_max_discontinuity``."""
    d = m.dropouts
    q = m.quality
    if d.events >= cfg.packet_loss_min_events and d.events_per_min >= cfg.packet_loss_min_per_min:
        first = min([*d.dropouts, *d.frozen], key=lambda i: i.start_s)
        last = max([*d.dropouts, *d.frozen], key=lambda i: i.end_s)
        detail = (f"{d.events} dropouts in {d.speech_s:.0f} s of speech ({d.events_per_min:.0f}/min, "
                  f"{d.loss_ratio:.1%} of speech lost)")
        if q is not None:
            detail += f"; NISQA discontinuity {q.scores.discontinuity:.2f}"
        severity = "critical" if d.loss_ratio >= 0.05 else "warning"
        return [Finding("packet_loss", leg, first.start_s, last.end_s, severity, detail)]
    if q is not None and q.scores.discontinuity < cfg.packet_loss_max_discontinuity:
        bad = [w for w in q.windows if w.scores.discontinuity < cfg.packet_loss_max_discontinuity] or list(q.windows)
        return [Finding(
            "packet_loss", leg, bad[0].start_s, bad[-1].end_s, "warning",
            f"NISQA discontinuity {q.scores.discontinuity:.2f} (below {cfg.packet_loss_max_discontinuity:.1f}) with "
            f"{d.events} visible dropouts: interruptions concealed by the network or the phone",
        )]
    return []


def echo(tracks: Mapping[str, TrackMeasurements], results: Mapping[tuple[str, str], EchoResult | None],
         cfg: AnalysisConfig) -> list[Finding]:
    """A leg carries a delayed, attenuated copy of the other leg's speech."""
    found = []
    for (source, target), r in results.items():
        if r is None or r.correlation < cfg.echo_min_corr:
            continue
        erl = f", {r.erl_db:.0f} dB down" if r.erl_db is not None else ""
        severity = "critical" if r.erl_db is not None and r.erl_db < 10 else "warning"
        found.append(Finding(
            "echo", target, 0.0, tracks[target].duration_s, severity,
            f"the {source}'s speech returns on the {target} leg {r.delay_ms:.0f} ms later{erl} "
            f"(correlation {r.correlation:.2f})",
        ))
    return found


def talk_over(tracks: Mapping[str, TrackMeasurements], cfg: AnalysisConfig, *, echo_legs: set[str]) -> list[Finding]:
    """Both legs speak at once for a large share of the shorter talker's speech."""
    if "caller" not in tracks or "agent" not in tracks or echo_legs:
        return []  # an echo makes one leg "speak" whenever the other does
    a, b = tracks["caller"].speech, tracks["agent"].speech
    overlap = _intersect(list(a.segments), list(b.segments))
    overlap_s = sum(o.duration_s for o in overlap)
    shorter = min(a.speech_s, b.speech_s)
    if shorter <= 0 or overlap_s < cfg.talk_over_min_s or overlap_s / shorter < cfg.talk_over_min_share:
        return []
    return [Finding(
        "talk_over", None, overlap[0].start_s, overlap[-1].end_s, "info",
        f"both sides talk at once for {overlap_s:.1f} s ({overlap_s / shorter:.0%} of the quieter side's speech, "
        f"{len(overlap)} times)",
    )]


def poor_quality(leg: str, m: TrackMeasurements, cfg: AnalysisConfig) -> list[Finding]:
    """Quality windows whose NISQA MOS is below ``poor_quality_mos`` (consecutive ones merged)."""
    q = m.quality
    if q is None:
        return []
    bad = [Interval(w.start_s, w.end_s) for w in q.windows if w.scores.mos < cfg.poor_quality_mos]
    # one finding per stretch: poor windows less than a window apart belong together
    bridge = cfg.quality_window_s
    stretches = _merge([Interval(iv.start_s, iv.end_s + bridge) for iv in bad])
    stretches = [Interval(s.start_s, max(iv.end_s for iv in bad if s.start_s <= iv.start_s < s.end_s))
                 for s in stretches]
    found = []
    for iv in stretches:
        inside = [w for w in q.windows if w.start_s >= iv.start_s and w.end_s <= iv.end_s]
        poor = [w for w in inside if w.scores.mos < cfg.poor_quality_mos]
        worst = min(inside, key=lambda w: w.scores.mos)
        found.append(Finding(
            "poor_quality", leg, iv.start_s, iv.end_s, "warning",
            f"{len(poor)} of {len(q.windows)} windows below MOS {cfg.poor_quality_mos:.1f}; worst "
            f"{worst.scores.mos:.2f} at {worst.start_s:.0f}-{worst.end_s:.0f} s (noisiness "
            f"{worst.scores.noisiness:.1f}, discontinuity {worst.scores.discontinuity:.1f}, coloration "
            f"{worst.scores.coloration:.1f}, loudness {worst.scores.loudness:.1f})",
        ))
    return found


def detect_findings(
    tracks: Mapping[str, TrackMeasurements],
    *,
    layout: str,
    echo_results: Mapping[tuple[str, str], EchoResult | None],
    cfg: AnalysisConfig,
) -> list[Finding]:
    """Run every detector that applies to ``layout`` and return the findings in time order."""
    found: list[Finding] = []
    two_legs = "caller" in tracks and "agent" in tracks
    duration = max(t.duration_s for t in tracks.values())
    one_way: list[Finding] = []
    if two_legs:
        one_way = one_way_between_legs(tracks, cfg)
    elif "mixed" in tracks:
        m = tracks["mixed"]
        one_way = one_way_in_mix(MixedSpeech(m.speech.segments, m.duration_s), cfg, layout=layout)
    found += one_way
    dead_legs = {f.leg for f in one_way}
    if two_legs and not one_way:
        found += talk_imbalance(tracks, cfg)
    if not one_way:  # silence on a one-way call is the missing audio, not dead air
        found += dead_air([t.speech.segments for t in tracks.values()], duration, cfg)
    for leg, m in tracks.items():
        found += clipping(leg, m, cfg)
        if leg not in dead_legs:
            found += low_volume(leg, m, cfg)
            found += noisy(leg, m, cfg)
            found += packet_loss(leg, m, cfg)
            found += poor_quality(leg, m, cfg)
    echoes = echo(tracks, echo_results, cfg) if two_legs else []
    found += echoes
    if two_legs and not one_way:
        found += talk_over(tracks, cfg, echo_legs={f.leg for f in echoes if f.leg})
    order = {leg: i for i, leg in enumerate(LEG_ORDER)}
    return sorted(found, key=lambda f: (f.start_s, order.get(f.leg or "", 9), f.code))


# --- the two sides of a mixed recording ----------------------------------------------------------------
def _mix_clipping(side: str, m: TrackMeasurements, cfg: AnalysisConfig, gain_db: float) -> list[Finding]:
    return clipping(side, m, cfg, min_ratio=cfg.mix_clip_min_ratio,
                    where=f"of the {side}'s speech reach the leg's full scale in the mix ({gain_db:.0f} dBFS): "
                          f"the {side}'s audio was clipped before mixing")


def _mix_noisy(sides: Mapping[str, TrackMeasurements], present: Sequence[str], cfg: AnalysisConfig,
               attributed: bool) -> list[Finding]:
    """Low speech-to-noise on the sides. The background is shared in a mix: when both sides are
    below the bound it is reported once, on the side whose speech stands out least (the caller's
    when they are within 3 dB: headsets in a contact centre are quieter than customers' lines)."""
    low = {s: sides[s].levels.snr_db for s in present if noisy(s, sides[s], cfg)}
    if len(low) == 2:
        a, b = sorted(low, key=lambda s: low[s] or 0.0)
        if attributed and abs((low[a] or 0.0) - (low[b] or 0.0)) < 3.0:
            a = "caller"
        low = {a: low[a]}
    found = []
    for side in low:
        f = noisy(side, sides[side], cfg)[0]
        found.append(Finding(f.code, f.leg, f.start_s, f.end_s, f.severity,
                             f.detail + "; in a mix the background sits under both talkers"))
    return found


def side_findings(
    sides: Mapping[str, TrackMeasurements],
    mixed: TrackMeasurements,
    *,
    layout: str,
    single_talker: bool,
    attributed: bool,
    evidence: str,
    leg_gain_db: float,
    cfg: AnalysisConfig,
) -> list[Finding]:
    """Findings of a mixed recording split into two sides (:mod:`core.audio.diarize`).

    The per-leg detectors run on each side with the mix's own bounds (``mix_*`` settings: a leg
    is at ``leg_gain_db`` in the mix; holes and clipping are measured on the mix);
    one-way audio comes from the split (one voice only), dead air and whole-track clipping stay
    with the mixed track.
    """
    names = list(sides)
    found: list[Finding] = []
    missing: set[str] = set()
    if single_talker:
        if attributed:
            talker = max(names, key=lambda s: sides[s].speech.speech_s)
            other = next(s for s in names if s != talker)
            missing.add(other)
            found.append(Finding(
                "one_way_audio", other, 0.0, mixed.duration_s, "critical",
                f"no {other} audio: only the {talker} speaks in the mix ({sides[talker].speech.speech_s:.1f} s); {evidence}",
            ))
        else:
            found += one_way_in_mix(MixedSpeech(mixed.speech.segments, mixed.duration_s), cfg, layout=layout)
    else:
        c, a = (sides[n].speech.speech_s for n in names)
        total = c + a
        for side, mine in zip(names, (c, a), strict=True):
            if total > 0 and mine / total > cfg.imbalance_share:
                found.append(Finding(
                    "talk_imbalance", side, 0.0, mixed.duration_s, "info",
                    f"the {side} holds {mine / total:.0%} of the speech ({mine:.0f} s of {total:.0f} s); a monologue, "
                    "not one-way audio",
                ))
        found += dead_air([mixed.speech.segments], mixed.duration_s, cfg)
    found += clipping("mixed", mixed, cfg)
    present = [s for s in names if s not in missing and sides[s].speech.speech_s > 0]
    side_cfg = replace(cfg, low_volume_speech_db=cfg.low_volume_speech_db + leg_gain_db,
                       packet_loss_min_events=cfg.mix_gap_min_events,
                       packet_loss_min_per_min=cfg.mix_gap_min_per_min)
    for side in present:
        m = sides[side]
        found += _mix_clipping(side, m, cfg, leg_gain_db)
        found += low_volume(side, m, side_cfg)
        found += packet_loss(side, m, side_cfg)
        found += poor_quality(side, m, cfg)
    found += _mix_noisy(sides, present, cfg, attributed)
    order = {leg: i for i, leg in enumerate((*LEG_ORDER, "speaker_a", "speaker_b"))}
    return sorted(found, key=lambda f: (f.start_s, order.get(f.leg or "", 9), f.code))
