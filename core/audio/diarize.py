"""Who spoke when in a mixed recording: speech on the mix, two talkers, and which one is the agent.

Most ViciDial sites keep only the mono mix of a call (``NAME-all.mp3``, or a conference ``-in``
that holds the bridge's mix). This module splits such a track into two sides:

1. **Speech on the mix** (:func:`detect_mix_speech`). Silero runs over the whole mix without the
   energy gate of the per-leg VAD (a fresh model state after every pause misses short words).
   Loud talkers make Silero deaf to a quiet one, so stretches well above the noise floor that
   the first pass left out are scored again on their own, brought to a normal level (a second
   opinion). Silero starts a segment late: segments begin ``mix_vad_onset_pad_ms`` earlier.
2. **Embeddings**: 1 s windows every 0.5 s over the speech, each embedded by the GE2E encoder
   (:mod:`core.audio.speakers`), level-normalised.
3. **One talker or two**: an unanswered talker repeating short phrases into long silences (the
   same temporal pattern as the mixed one-way rule) is one talker; otherwise there are two.
   Embedding distances alone cannot tell a one-talker mix from a two-talker one on telephone
   audio: same-voice clusters and different-voice clusters overlap in similarity, even against
   an enrolled voiceprint (two VCTK talkers matched one agent's voiceprint at 0.95 and 0.99 on
   the dev set), and a false "only one voice" would report one-way audio on a working call. So a
   split is the default and a single talker needs the temporal evidence; a one-voice mix without
   it keeps two sides whose attribution is too weak to name them (and says so).
4. **Two clusters**: average-linkage agglomerative clustering on cosine distance (robust to a
   dominant talker, unlike 2-means), clusters smaller than 5 % of the windows set aside, then
   nearest-centroid refinement. With the agent's voiceprint, the cluster closest to it is the
   agent and a 2-means anchored on the voiceprint refines the split.
5. **Attribution** (``attribution.method``): ``voiceprint`` when the call's agent is enrolled
   (or, with the agent unknown, when one side matches an enrolled agent unambiguously);
   ``heuristic`` for a single voice in a conference recording (the bridge always records the
   agent); ``manual`` when an analyst marked which voice is the agent's (kept in the store and
   applied on every re-analysis); otherwise ``none``: the sides are ``speaker_a`` (who speaks
   first) and ``speaker_b`` and a warning says so. Below ``diar_min_confidence`` the sides are
   not named either.
6. **Frames** take the side that most windows covering them voted for; each frame belongs to
   one side (overlapping speech is not separated; ``overlap_s`` reports none).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import soxr

from core.audio.io import AudioClip
from core.audio.levels import frame_energy_db
from core.audio.speakers import FRAMES_PER_S, MODEL_ID, VoiceEncoder, mel_power, to_model_rate, window_mels
from core.audio.vad import SileroVAD, segments_from_probs, whole_track_probabilities
from core.config import AnalysisConfig
from core.parallel import parallel_map
from core.results import Interval

DIARIZATION_VERSION = "d1"
SIDES_ATTRIBUTED = ("caller", "agent")
SIDES_UNATTRIBUTED = ("speaker_a", "speaker_b")
METHODS = ("voiceprint", "heuristic", "manual", "none")


# --- voiceprints as the pipeline sees them -----------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Voiceprint:
    """An enrolled agent voice: the mean GE2E embedding of their speech, unit length."""

    user: str
    vector: np.ndarray
    model: str = MODEL_ID
    revision: int | None = None  # the store's revision: a refresh that barely moves it keeps it

    @property
    def digest(self) -> str:
        """Identity for the reuse of stored analyses: changes with the voiceprint's revision (or,
        without one, with its vector)."""
        data = (str(self.revision).encode() if self.revision is not None
                else np.round(np.asarray(self.vector, dtype=np.float64), 5).tobytes())
        return hashlib.sha256(self.user.encode() + b"\0" + self.model.encode() + b"\0" + data).hexdigest()[:16]


@dataclass(frozen=True)
class VoiceContext:
    """What the pipeline knows about the call's agent.

    ``agent_user``: the call's ViciDial user when known; ``agent``: that user's voiceprint (None
    when not enrolled); ``enrolled``: every enrolled voiceprint, searched when the agent is
    unknown.
    """

    agent_user: str | None = None
    agent: Voiceprint | None = None
    enrolled: tuple[Voiceprint, ...] = ()
    agent_at_s: float | None = None  # an analyst marked the voice speaking at this time as the agent's

    def identity(self) -> str:
        """What a split mix depends on beyond its bytes and thresholds: the speaker model and the
        split's version, and the voiceprints (or an analyst's mark) it was attributed with. A
        stored split mix is reused only while this stays the same
        (:func:`core.analysis_service.reuse_reason`)."""
        if self.agent_at_s is not None:
            voices = f"manual:{self.agent_at_s:.2f}"
        elif self.agent is not None:
            voices = f"agent:{self.agent.user}:{self.agent.digest}"
        elif self.agent_user is not None:
            voices = f"agent:{self.agent_user}:none"
        else:
            joined = ",".join(sorted(v.digest for v in self.enrolled))
            voices = "enrolled:" + hashlib.sha256(joined.encode()).hexdigest()[:16] if joined else "enrolled:none"
        return f"{MODEL_ID}+{DIARIZATION_VERSION}/{voices}"


# --- the result ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SideSplit:
    """A mixed track split into two sides.

    Attributes
    ----------
    names : (str, str)
        ``("caller", "agent")`` when attributed, else ``("speaker_a", "speaker_b")``.
    segments : dict of side name to tuple of Interval
        Each side's speech on the mix's time axis; disjoint between sides.
    method : str
        ``voiceprint``, ``heuristic`` or ``none``.
    agent_user : str or None
        Whose voiceprint attributed the sides.
    confidence : float or None
        0..1, how sure the attribution is (None when nothing was attributed).
    single_talker : bool
        Only one voice is in the mix (the other side's audio is missing).
    evidence : str
        One sentence on how the sides were attributed, for the analyst.
    """

    names: tuple[str, str]
    segments: dict[str, tuple[Interval, ...]]
    method: str
    agent_user: str | None
    confidence: float | None
    single_talker: bool
    evidence: str
    overlap_s: float = 0.0
    model: str = MODEL_ID
    warnings: tuple[str, ...] = ()
    speech: tuple[Interval, ...] = field(default=(), repr=False)
    agent_voice: tuple[np.ndarray, float] | None = field(default=None, repr=False, compare=False)

    @property
    def attributed(self) -> bool:
        return self.names == SIDES_ATTRIBUTED

    def speaking_at(self, t: float) -> str | None:
        """The side whose speech is closest to time ``t`` (None when no side speaks)."""
        best = min(((0.0 if iv.start_s <= t <= iv.end_s else min(abs(iv.start_s - t), abs(iv.end_s - t)), name)
                    for name in self.names for iv in self.segments[name]), default=None)
        return None if best is None else best[1]

    def as_dict(self) -> dict:
        """The ``attribution`` object of the analysis JSON."""
        return {
            "method": self.method,
            "agent_user": self.agent_user,
            "confidence": None if self.confidence is None else round(float(self.confidence), 3),
            "sides": list(self.names),
            "single_talker": self.single_talker,
            "evidence": self.evidence,
            "diarization": {"model": f"{self.model}+{DIARIZATION_VERSION}", "overlap_s": round(self.overlap_s, 3)},
        }


# --- speech on the mix ---------------------------------------------------------------------------------
def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _second_opinion(clip: AudioClip, vad: SileroVAD, probs: np.ndarray, cfg: AnalysisConfig) -> np.ndarray:
    """Re-score loud-enough stretches the first pass ignored, each alone at a normal level."""
    sr = clip.sample_rate
    energy = frame_energy_db(clip.samples, sr, frame_s=0.01)
    if energy.size == 0:
        return probs
    floor = float(np.percentile(energy, 10))
    candidate = energy > floor + cfg.mix_vad_rescue_margin_db
    stretches: list[list[int]] = []
    for a, b in _runs(candidate):
        if stretches and a - stretches[-1][1] < 15:  # bridge gaps under 150 ms
            stretches[-1][1] = b
        else:
            stretches.append([a, b])
    fs = vad.frame_s
    covered = np.zeros(energy.size, dtype=bool)
    for i in np.flatnonzero(probs >= cfg.mix_vad_threshold):
        covered[int(i * fs * 100): int((i + 1) * fs * 100) + 1] = True
    out = probs.copy()
    warm = int(0.5 * vad.rate)  # half a second of silence lets the model settle first
    for a, b in stretches:
        if b - a < 15 or covered[a:b].mean() > 0.5:
            continue
        lo, hi = max(0, a - 30), min(energy.size, b + 30)
        gain = 10 ** ((-20.0 - float(energy[a:b].max())) / 20)
        piece = np.clip(clip.samples[lo * sr // 100: hi * sr // 100] * gain, -1.0, 1.0)
        piece16 = np.asarray(soxr.resample(piece, sr, vad.rate), dtype=np.float32) if sr != vad.rate else piece
        p = vad.probabilities(np.concatenate((np.zeros(warm, np.float32), piece16)))[int(round(0.5 / fs)):]
        k0 = int(round(lo / 100 / fs))
        k1 = min(out.size, k0 + p.size)
        if k1 > k0:
            out[k0:k1] = np.maximum(out[k0:k1], p[: k1 - k0])
    return out


def detect_mix_speech(clip: AudioClip, *, vad: SileroVAD, cfg: AnalysisConfig,
                      probs: np.ndarray | None = None) -> tuple[Interval, ...]:
    """Speech segments of a mixed track at the mix's operating point (see the module docstring).

    ``probs``: the track's whole-track VAD probabilities when already computed
    (:func:`core.audio.vad.detect_speech` with ``full``); computed here otherwise
    (:func:`core.audio.vad.whole_track_probabilities`).
    """
    if probs is None:
        probs = whole_track_probabilities(clip, vad)
    if cfg.mix_vad_rescue_margin_db > 0:
        probs = _second_opinion(clip, vad, probs, cfg)
    segs = segments_from_probs(probs, frame_s=vad.frame_s, duration_s=clip.duration_s,
                               threshold=cfg.mix_vad_threshold, min_speech_ms=cfg.mix_vad_min_speech_ms,
                               min_silence_ms=cfg.mix_vad_min_silence_ms, speech_pad_ms=0)
    pad = cfg.mix_vad_onset_pad_ms / 1000
    out: list[Interval] = []
    for s in segs:
        start = max(0.0, s.start_s - pad)
        if out and start <= out[-1].end_s:
            out[-1] = Interval(out[-1].start_s, s.end_s)
        else:
            out.append(Interval(start, s.end_s))
    return tuple(out)


# --- clustering --------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)


def window_starts(mask: np.ndarray, width: int, hop: int, *, min_frames: int = 20) -> list[tuple[int, int, int]]:
    """Windows ``(start, run_start, run_end)`` over each run of speech frames.

    Runs at least ``width`` long get windows every ``hop`` frames (the last one flush with the
    run's end); shorter runs (but ``min_frames`` or more) get one window centred on them.
    """
    n = len(mask)
    out = []
    for a, b in _runs(mask):
        if b - a < min_frames or n < width:
            continue
        if b - a >= width:
            starts = list(range(a, b - width + 1, hop))
            if starts[-1] + width < b:
                starts.append(b - width)
        else:
            starts = [max(0, min(n - width, (a + b) // 2 - width // 2))]
        out += [(s, a, b) for s in starts]
    return out


def cluster_two(emb: np.ndarray, *, min_share: float = 0.05, max_windows: int = 1500) -> np.ndarray:
    """Two clusters of unit embeddings (labels 0/1; all 0 when no two sizeable clusters exist)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    n = len(emb)
    if n < 4:
        return np.zeros(n, dtype=int)
    idx = np.arange(n) if n <= max_windows else np.linspace(0, n - 1, max_windows).astype(int)
    tree = linkage(emb[idx], method="average", metric="cosine")
    for k in range(2, 7):
        cut = fcluster(tree, k, "maxclust") - 1
        sizes = np.bincount(cut, minlength=k)
        big = np.flatnonzero(sizes >= max(3, min_share * len(idx)))
        if len(big) >= 2:
            break
    else:
        return np.zeros(n, dtype=int)
    big = big[np.argsort(-sizes[big])][:2]
    cents = _unit(np.stack([emb[idx][cut == k].mean(axis=0) for k in big]))
    labels = np.zeros(n, dtype=int)
    for _ in range(3):
        labels = np.argmax(emb @ cents.T, axis=1)
        if labels.min() == labels.max():
            break
        cents = _unit(np.stack([emb[labels == k].mean(axis=0) for k in (0, 1)]))
    return labels


def anchored_two_means(emb: np.ndarray, agent: np.ndarray, voiceprint: np.ndarray, *, weight: float,
                       iterations: int = 10) -> np.ndarray:
    """Refine an agent/other split (``agent`` boolean per window) with the agent centroid pulled
    towards the voiceprint by ``weight`` (in windows per agent window)."""
    labels = agent.astype(int)
    for _ in range(iterations):
        ca = emb[labels == 1].sum(axis=0) + weight * max(1, int((labels == 1).sum())) * voiceprint
        co = emb[labels == 0].sum(axis=0) if (labels == 0).any() else -voiceprint
        new = np.argmax(emb @ _unit(np.stack([co, ca])).T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
    return labels.astype(bool)


def unanswered_pattern(segments: Sequence[Interval], duration_s: float, cfg: AnalysisConfig) -> bool:
    """One voice repeating short phrases into long silences (nobody answers): the pattern of the
    mixed one-way rule (:func:`core.audio.findings.unanswered_runs`)."""
    from core.audio.findings import unanswered_runs

    return unanswered_runs(segments, duration_s, cfg) is not None


def _clamp(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


# --- the split ----------------------------------------------------------------------------------------------
_WINDOWS_PER_GROUP = 256  # windows embedded together: 256 x 1 s of mels is 4 MB


@dataclass
class _Windows:
    emb: np.ndarray
    starts: list[tuple[int, int, int]]
    mask: np.ndarray
    width: int


def _embed(clip: AudioClip, speech: Sequence[Interval], encoder: VoiceEncoder, cfg: AnalysisConfig) -> _Windows:
    """Embed 1 s windows over the speech, span by span: only the audio under the windows is
    brought to 16 kHz and turned into a mel spectrogram, never the whole call (a 60-minute mix
    would need 230 MB at 16 kHz)."""
    n_frames = int(clip.duration_s * FRAMES_PER_S) + 1
    mask = np.zeros(n_frames, dtype=bool)
    for iv in speech:
        mask[int(iv.start_s * FRAMES_PER_S): int(np.ceil(iv.end_s * FRAMES_PER_S))] = True
    width = max(20, int(round(cfg.diar_window_ms / 10)))
    hop = max(1, int(round(cfg.diar_hop_ms / 10)))
    starts = window_starts(mask, width, hop)
    sr = clip.sample_rate

    def span_mels(span: tuple[int, int, int, int]) -> np.ndarray:
        lo, hi, first, last = span
        a, b = max(0, lo * sr // FRAMES_PER_S - sr // 40), min(len(clip.samples), hi * sr // FRAMES_PER_S + sr // 40)
        piece16 = to_model_rate(clip.samples[a:b], sr)
        mel = mel_power(piece16)
        offset = int(round(a / sr * FRAMES_PER_S))  # mel frame 0 of the piece is call frame ``offset``
        local = [min(s - offset, len(mel) - width) for s, _, _ in starts[first:last]]
        return window_mels(mel, piece16, local, width)

    # spans a group at a time (bounded memory); the mels of a group's spans, then its windows'
    # batches, run on the encoder's threads (the result does not depend on how many)
    threads = getattr(encoder, "parallel", 1)
    parts: list[np.ndarray] = []
    spans = _window_spans(starts, width)
    group: list[tuple[int, int, int, int]] = []
    for i, span in enumerate(spans):
        group.append(span)
        if i + 1 == len(spans) or sum(e - f for _, _, f, e in group) >= _WINDOWS_PER_GROUP:
            mels = np.concatenate(list(parallel_map(span_mels, group, threads)))
            parts.append(encoder.embed_mels(mels))
            group = []
    emb = np.concatenate(parts) if parts else np.zeros((0, 256), dtype=np.float32)
    return _Windows(emb, starts, mask, width)


def _window_spans(starts: Sequence[tuple[int, int, int]], width: int, *, max_frames: int = 6000
                  ) -> list[tuple[int, int, int, int]]:
    """Consecutive windows grouped into spans of overlapping audio, each at most about a minute:
    ``(first frame, end frame, first window, end window)``."""
    spans: list[list[int]] = []
    for i, (s, _, _) in enumerate(starts):
        if spans and s <= spans[-1][1] and s + width - spans[-1][0] <= max_frames:
            spans[-1][1] = max(spans[-1][1], s + width)
            spans[-1][3] = i + 1
        else:
            spans.append([s, s + width, i, i + 1])
    return [(a, b, f, e) for a, b, f, e in spans]


def speaker_embedding(clip: AudioClip, speech: Sequence[Interval], encoder: VoiceEncoder,
                      cfg: AnalysisConfig | None = None) -> tuple[np.ndarray | None, float]:
    """The mean embedding of a one-talker track's speech and the seconds it covers (for enrollment)."""
    cfg = cfg or AnalysisConfig()
    w = _embed(clip, speech, encoder, cfg)
    if len(w.emb) == 0:
        return None, 0.0
    return _unit(w.emb.mean(axis=0)), float(w.mask.sum()) / FRAMES_PER_S


def _frames_to_segments(labels: np.ndarray, w: _Windows, n_sides: int = 2) -> list[list[Interval]]:
    votes = np.zeros((len(w.mask), n_sides))
    for (s, a, b), lab in zip(w.starts, labels, strict=True):
        votes[max(a, s): min(b, s + w.width), lab] += 1
    side = np.argmax(votes, axis=1)
    out: list[list[Interval]] = [[] for _ in range(n_sides)]
    for a, b in _runs(w.mask):
        cur = a
        for i in range(a + 1, b + 1):
            if i == b or side[i] != side[cur]:
                out[int(side[cur])].append(Interval(cur / FRAMES_PER_S, i / FRAMES_PER_S))
                cur = i
    return out


def _first_start(segs: Sequence[Interval]) -> float:
    return segs[0].start_s if segs else float("inf")


def diarize_mix(
    clip: AudioClip,
    speech: Sequence[Interval],
    *,
    encoder: VoiceEncoder,
    voices: VoiceContext | None = None,
    layout: str = "mixed",
    cfg: AnalysisConfig | None = None,
) -> SideSplit:
    """Split the speech of a mixed track into two sides and attribute them.

    Parameters
    ----------
    clip : AudioClip
        The mix.
    speech : sequence of Interval
        :func:`detect_mix_speech` of the mix.
    encoder : VoiceEncoder
        :func:`core.audio.speakers.get_encoder` ``()``.
    voices : VoiceContext, optional
        The call's agent and the enrolled voiceprints.
    layout : str
        ``conference`` or ``mixed``: a single voice in a conference recording is the agent's.
    cfg : AnalysisConfig, optional

    Returns
    -------
    SideSplit
    """
    cfg = cfg or AnalysisConfig()
    voices = voices or VoiceContext()
    speech = tuple(speech)
    w = _embed(clip, speech, encoder, cfg)
    model = encoder.model_id
    if len(w.emb) == 0:
        names = SIDES_UNATTRIBUTED
        return SideSplit(names, {n: () for n in names}, "none", None, None, False,
                         "no speech to attribute", model=model, speech=speech,
                         warnings=("no speech found in the mix; sides are empty",))
    single = unanswered_pattern(speech, clip.duration_s, cfg)
    if single:
        return _single_talker(w, speech, voices, layout, cfg, model)
    labels = cluster_two(w.emb)
    if labels.min() == labels.max():  # no second sizeable voice: keep one side, the other empty
        return _single_talker(w, speech, voices, layout, cfg, model, reason="one voice in the whole mix")
    cents = _unit(np.stack([w.emb[labels == k].mean(axis=0) for k in (0, 1)]))
    if voices.agent_at_s is not None:
        return _marked(w, labels, speech, voices, model)
    agent_k, method, user, conf, evidence = _attribute_two(cents, voices, cfg)
    if agent_k is not None and method == "voiceprint" and voices.agent is not None:
        agent = anchored_two_means(w.emb, labels == agent_k, _unit(voices.agent.vector), weight=cfg.diar_anchor_weight)
        labels = np.where(agent, 1, 0)
        agent_k = 1
    segs = _frames_to_segments(labels, w)
    if agent_k is not None and conf is not None and conf >= cfg.diar_min_confidence:
        sides = {"agent": tuple(segs[agent_k]), "caller": tuple(segs[1 - agent_k])}
        return SideSplit(SIDES_ATTRIBUTED, sides, method, user, conf, False, evidence, model=model, speech=speech)
    first = 0 if _first_start(segs[0]) <= _first_start(segs[1]) else 1
    sides = {"speaker_a": tuple(segs[first]), "speaker_b": tuple(segs[1 - first])}
    warning = ("sides not attributed to caller and agent: " + evidence +
               ("" if voices.agent is not None else "; enroll the agent with `callqa voices enroll USER FILE...`"))
    return SideSplit(SIDES_UNATTRIBUTED, sides, method if agent_k is not None else "none", user, conf, False,
                     evidence, model=model, speech=speech, warnings=(warning,))


def _marked(w: _Windows, labels: np.ndarray, speech: tuple[Interval, ...], voices: VoiceContext, model: str
            ) -> SideSplit:
    """The analyst's mark decides: the voice speaking at ``agent_at_s`` is the agent's."""
    segs = _frames_to_segments(labels, w)
    t = float(voices.agent_at_s or 0.0)
    probe = SideSplit(("a", "b"), {"a": tuple(segs[0]), "b": tuple(segs[1])}, "manual", None, None, False, "")
    agent_k = 0 if probe.speaking_at(t) == "a" else 1
    sides = {"agent": tuple(segs[agent_k]), "caller": tuple(segs[1 - agent_k])}
    vector = _unit(w.emb[labels == agent_k].mean(axis=0))
    seconds = sum(iv.duration_s for iv in sides["agent"])
    return SideSplit(SIDES_ATTRIBUTED, sides, "manual", voices.agent_user, 1.0, False,
                     f"an analyst marked the voice speaking at {t:.1f} s as the agent's", model=model, speech=speech,
                     agent_voice=(vector, seconds))


def _attribute_two(cents: np.ndarray, voices: VoiceContext, cfg: AnalysisConfig
                   ) -> tuple[int | None, str, str | None, float | None, str]:
    """Which of two cluster centroids is the agent: (index, method, user, confidence, evidence)."""
    if voices.agent is not None:
        sims = cents @ _unit(voices.agent.vector)
        k = int(np.argmax(sims))
        margin = float(sims[k] - sims[1 - k])
        conf = min(_clamp((margin - 0.02) / 0.13), _clamp((float(sims[k]) - 0.65) / 0.2))
        return k, "voiceprint", voices.agent.user, conf, (
            f"agent {voices.agent.user}'s voiceprint matches one voice at {sims[k]:.2f} and the other at "
            f"{sims[1 - k]:.2f}")
    best: tuple[float, float, int, str] | None = None
    for vp in voices.enrolled:
        sims = cents @ _unit(vp.vector)
        k = int(np.argmax(sims))
        if best is None or sims[k] > best[0]:
            best = (float(sims[k]), float(sims[1 - k]), k, vp.user)
    if best is not None and best[0] >= cfg.diar_voiceprint_match:
        s_hi, s_lo, k, user = best
        conf = min(_clamp((s_hi - s_lo - 0.02) / 0.13), _clamp(0.5 + (s_hi - cfg.diar_voiceprint_match) / 0.1))
        return k, "voiceprint", user, conf, (
            f"the call's agent is unknown; one voice matches enrolled agent {user} at {s_hi:.2f} (other voice {s_lo:.2f})")
    who = f"agent {voices.agent_user} has no voiceprint" if voices.agent_user else "the call's agent is unknown"
    return None, "none", None, None, f"{who} and no enrolled voice matches"


def _single_talker(w: _Windows, speech: tuple[Interval, ...], voices: VoiceContext, layout: str,
                   cfg: AnalysisConfig, model: str, reason: str = "one voice repeats short phrases into silence"
                   ) -> SideSplit:
    centroid = _unit(w.emb.mean(axis=0))
    talk = tuple(Interval(a / FRAMES_PER_S, b / FRAMES_PER_S) for a, b in _runs(w.mask))
    if voices.agent_at_s is not None:  # the analyst's mark: near the voice, it is the agent; else the caller
        t = voices.agent_at_s
        is_agent = any(iv.start_s - 1.0 <= t <= iv.end_s + 1.0 for iv in talk)
        sides = {"agent": talk if is_agent else (), "caller": () if is_agent else talk}
        seconds = sum(iv.duration_s for iv in talk)
        return SideSplit(SIDES_ATTRIBUTED, sides, "manual", voices.agent_user, 1.0, True,
                         f"{reason}; an analyst marked it as the {'agent' if is_agent else 'caller'}'s", model=model,
                         speech=speech, agent_voice=(centroid, seconds) if is_agent else None)
    candidates = [voices.agent] if voices.agent is not None else list(voices.enrolled)
    match = max(((float(centroid @ _unit(v.vector)), v.user) for v in candidates), default=None)
    if match is not None and (voices.agent is not None or match[0] >= cfg.diar_voiceprint_match):
        sim, user = match
        is_agent = sim >= cfg.diar_voiceprint_match
        conf = _clamp(0.5 + abs(sim - cfg.diar_voiceprint_match) / 0.1)
        who = "agent" if is_agent else "caller"
        evidence = (f"{reason}; it {'matches' if is_agent else 'does not match'} agent {user}'s voiceprint "
                    f"({sim:.2f}, threshold {cfg.diar_voiceprint_match:.2f}), so it is the {who}'s")
        if conf >= cfg.diar_min_confidence:
            sides = {"agent": talk if is_agent else (), "caller": () if is_agent else talk}
            return SideSplit(SIDES_ATTRIBUTED, sides, "voiceprint", user, conf, True, evidence, model=model,
                             speech=speech)
    if layout == "conference":
        evidence = f"{reason}; a conference bridge always records the agent, so the voice is the agent's"
        return SideSplit(SIDES_ATTRIBUTED, {"agent": talk, "caller": ()}, "heuristic", None,
                         cfg.diar_conference_single_confidence, True, evidence, model=model, speech=speech)
    evidence = f"{reason}; no voiceprint says whose voice it is"
    return SideSplit(SIDES_UNATTRIBUTED, {"speaker_a": talk, "speaker_b": ()}, "none", None, None, True, evidence,
                     model=model, speech=speech,
                     warnings=("sides not attributed to caller and agent: " + evidence,))
