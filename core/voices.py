"""Agent voiceprints: enrolled from recordings that hold only the agent, refreshed automatically.

A voiceprint is the mean GE2E speaker embedding (:mod:`core.audio.speakers`) of an agent's
speech, kept in the store under the ViciDial user id (``voiceprints`` table). It tells which
side of a mixed recording is the agent (:mod:`core.audio.diarize`).

* ``callqa voices enroll USER FILE...`` sets it from recordings that hold only that agent (the
  ``-out`` leg of a channel recording, the agent channel of a stereo file: ``[analysis]
  stereo_left``).
* Every channel or stereo call analysed with a known ViciDial user refreshes it from the agent
  leg (speech where the caller is silent): a running mean weighted by seconds of speech, where
  the old voiceprint counts for at most :data:`MAX_WEIGHT_S` seconds, so it follows the voice
  over months without being swamped by one call.
* An analyst who marks the agent's side of a mixed call refreshes it from that side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select, update

from core.audio.diarize import VoiceContext, Voiceprint
from core.audio.speakers import MODEL_ID
from core.config import AnalysisConfig
from core.errors import ConfigError, InvalidAudioError, ParameterError
from core.store.schema import voiceprints

MAX_WEIGHT_S = 600.0
#: a refresh that moves the voiceprint less than this (cosine distance from the vector of its
#: last revision) keeps the revision, so the mixed calls attributed with it are not re-analysed
REVISION_DISTANCE = 0.01
MIN_ENROLL_SPEECH_S = 3.0  # in all the recordings together
MIN_FILE_SPEECH_S = 1.0
MIN_REFRESH_SPEECH_S = 5.0
KEEP_SOURCES = 5
USER_MAX_LEN = 100


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_user(user: str) -> str:
    """A ViciDial user id as stored: non-empty, printable, at most 100 characters."""
    value = str(user).strip()
    if not value or len(value) > USER_MAX_LEN or not value.isprintable():
        raise ParameterError(f"agent user {user!r} must be 1-{USER_MAX_LEN} printable characters")
    return value


@dataclass(frozen=True)
class VoiceprintInfo:
    """One stored voiceprint (the vector itself is in ``vector``)."""

    user: str
    model: str
    speech_s: float
    recordings: int
    origin: str
    updated_at: datetime
    vector: np.ndarray
    revision: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"user": self.user, "model": self.model, "speech_s": round(self.speech_s, 1),
                "recordings": self.recordings, "origin": self.origin, "revision": self.revision,
                "updated_at": self.updated_at.isoformat(timespec="seconds")}

    def voiceprint(self) -> Voiceprint:
        return Voiceprint(self.user, self.vector, self.model, revision=self.revision)


def _row_info(row: Any) -> VoiceprintInfo:
    return VoiceprintInfo(row.user, row.model, float(row.speech_s), int(row.recordings), row.origin,
                          row.updated_at, np.asarray(json.loads(row.vector_json), dtype=np.float32),
                          int(row.revision))


# --- the store ---------------------------------------------------------------------------------------
def get(store, user: str) -> VoiceprintInfo | None:
    with store._guard("reading a voiceprint"), store._read() as conn:
        row = conn.execute(select(voiceprints).where(voiceprints.c.user == user)).first()
    return _row_info(row) if row else None


def list_all(store) -> list[VoiceprintInfo]:
    """Every voiceprint of the current speaker model, by user."""
    with store._guard("listing voiceprints"), store._read() as conn:
        rows = conn.execute(select(voiceprints).order_by(voiceprints.c.user)).all()
    return [_row_info(r) for r in rows]


def remove(store, user: str) -> bool:
    """Delete a voiceprint; False when there was none."""
    with store._guard("removing a voiceprint"), store.engine.begin() as conn:
        return conn.execute(delete(voiceprints).where(voiceprints.c.user == user)).rowcount > 0


def save(store, user: str, vector: np.ndarray, speech_s: float, *, origin: str, source: str | None,
         merge: bool) -> VoiceprintInfo:
    """Store ``vector`` as ``user``'s voiceprint, or (``merge``) fold it into the stored one."""
    user = check_user(user)
    vector = np.asarray(vector, dtype=np.float64)
    now = _now()
    with store._guard("saving a voiceprint"), store.engine.begin() as conn:
        row = conn.execute(select(voiceprints).where(voiceprints.c.user == user)).first()
        revision, anchor = 0, None
        if row is not None:
            revision = int(row.revision)
            anchor = np.asarray(json.loads(row.revision_vector_json), dtype=np.float64)
        if row is not None and merge and row.model == MODEL_ID:
            old = np.asarray(json.loads(row.vector_json), dtype=np.float64)
            weight = min(float(row.speech_s), MAX_WEIGHT_S)
            vector = weight * old + speech_s * vector
            speech_total = float(row.speech_s) + speech_s
            recordings = int(row.recordings) + 1
            sources = json.loads(row.sources_json or "[]")
            origin = row.origin if row.origin == "enrolled" else origin
        else:
            speech_total, recordings, sources = speech_s, 1, []
            anchor = None  # a new or replaced voiceprint is always a new revision
        vector = vector / (np.linalg.norm(vector) + 1e-12)
        if anchor is None or row.model != MODEL_ID or 1.0 - float(vector @ anchor) > REVISION_DISTANCE:
            revision, anchor = revision + 1, vector
        if source:
            sources = (sources + [source])[-KEEP_SOURCES:]
        values = {"model": MODEL_ID, "vector_json": json.dumps([round(float(v), 6) for v in vector]),
                  "speech_s": speech_total, "recordings": recordings, "origin": origin,
                  "revision": revision, "revision_vector_json": json.dumps([round(float(v), 6) for v in anchor]),
                  "sources_json": json.dumps(sources), "updated_at": now}
        if row is None:
            conn.execute(insert(voiceprints).values(user=user, created_at=now, **values))
        else:
            conn.execute(update(voiceprints).where(voiceprints.c.user == user).values(**values))
    info = get(store, user)
    assert info is not None
    return info


# --- computing voiceprints ------------------------------------------------------------------------------------
def _agent_track(path: Path, cfg: AnalysisConfig):
    from core.audio.io import load_audio

    clips = load_audio(path, max_duration_s=cfg.max_duration_s)
    if len(clips) == 1:
        return clips[0]
    if len(clips) == 2:  # a stereo recording: the agent's channel
        return clips[0] if cfg.stereo_left == "agent" else clips[1]
    raise InvalidAudioError(f"{path}: {len(clips)} channels; enroll from a mono agent leg or a stereo recording")


def embed_recordings(paths: Sequence[str | Path], *, cfg: AnalysisConfig | None = None, vad=None,
                     encoder=None) -> tuple[np.ndarray, float]:
    """The speech-weighted mean embedding of recordings that hold one voice, and its speech seconds.

    Raises
    ------
    AudioError
        A file cannot be read.
    InvalidAudioError
        A file holds less than 1 s of speech, or all of them less than 3 s.
    """
    from core.audio.diarize import speaker_embedding
    from core.audio.speakers import get_encoder
    from core.audio.vad import detect_speech, get_vad

    cfg = cfg or AnalysisConfig()
    vad = vad or get_vad()
    encoder = encoder or get_encoder()
    total = np.zeros(256)
    speech_total = 0.0
    for p in paths:
        clip = _agent_track(Path(p), cfg)
        speech = detect_speech({"agent": clip}, vad=vad, threshold=cfg.vad_threshold,
                               min_speech_ms=cfg.vad_min_speech_ms, min_silence_ms=cfg.vad_min_silence_ms,
                               speech_pad_ms=cfg.vad_speech_pad_ms)["agent"]
        vector, seconds = speaker_embedding(clip, speech.segments, encoder, cfg)
        if vector is None or seconds < MIN_FILE_SPEECH_S:
            raise InvalidAudioError(f"{p}: only {seconds:.1f} s of speech; each recording needs at least "
                                    f"{MIN_FILE_SPEECH_S:.0f} s of the agent speaking")
        total += seconds * vector
        speech_total += seconds
    if not paths:
        raise ParameterError("give at least one recording of the agent")
    if speech_total < MIN_ENROLL_SPEECH_S:
        raise InvalidAudioError(f"only {speech_total:.1f} s of speech in {len(paths)} recording(s); a voiceprint "
                                f"needs at least {MIN_ENROLL_SPEECH_S:.0f} s of the agent speaking")
    return (total / (np.linalg.norm(total) + 1e-12)).astype(np.float32), speech_total


def enroll(store, user: str, paths: Sequence[str | Path], *, cfg: AnalysisConfig | None = None) -> VoiceprintInfo:
    """Set ``user``'s voiceprint from recordings that hold only that agent (replacing any)."""
    user = check_user(user)
    if not paths:
        raise ParameterError("give at least one recording of the agent")
    vector, seconds = embed_recordings(paths, cfg=cfg)
    return save(store, user, vector, seconds, origin="enrolled", source=", ".join(Path(p).name for p in paths),
                merge=False)


def refresh(store, user: str, vector: np.ndarray, speech_s: float, *, source: str, origin: str = "auto"
            ) -> VoiceprintInfo | None:
    """Fold one more recording's agent speech into ``user``'s voiceprint (None when too short)."""
    if speech_s < MIN_REFRESH_SPEECH_S:
        return None
    return save(store, user, vector, speech_s, origin=origin, source=source, merge=True)


def voice_context(store, agent_user: str | None, *, require: bool = False,
                  prints: Sequence[VoiceprintInfo] | None = None, agent_at_s: float | None = None) -> VoiceContext:
    """What an analysis needs to know about voices: the agent's voiceprint and all enrolled ones.

    ``prints`` saves reading the voiceprints again (a scan reads them once); ``agent_at_s`` is an
    analyst's mark on the call (:func:`agent_mark`).

    Raises
    ------
    ConfigError
        ``require`` and ``agent_user`` has no voiceprint (``callqa analyze --agent USER``).
    """
    if prints is None:
        prints = [] if store is None else list_all(store)
    enrolled = tuple(p.voiceprint() for p in prints if p.model == MODEL_ID)
    agent = None
    if agent_user is not None:
        agent_user = check_user(agent_user)
        agent = next((v for v in enrolled if v.user == agent_user), None)
        if agent is None and require:
            known = ", ".join(v.user for v in enrolled[:10]) or "none yet"
            raise ConfigError(f"no voiceprint for agent {agent_user!r} in the store (enrolled: {known}); "
                              f"enroll with `callqa voices enroll {agent_user} FILE...`")
    return VoiceContext(agent_user=agent_user, agent=agent, enrolled=enrolled, agent_at_s=agent_at_s)


def agent_user_of(item) -> str | None:
    """The ViciDial user of a work item's agent: ``extras["agent_user"]``, else its metadata's agent."""
    value = item.extras.get("agent_user") or item.metadata.get("agent") or item.metadata.get("user")
    if value in (None, ""):
        return None
    try:
        return check_user(str(value))
    except ParameterError:
        return None


def voices_for(store, item, *, prints: Sequence[VoiceprintInfo] | None = None) -> VoiceContext:
    """The voices of a work item's analysis, from the store: its agent's voiceprint (the item's
    ViciDial user), every enrolled one, and an analyst's mark on the call."""
    return voice_context(store, agent_user_of(item), prints=prints, agent_at_s=agent_mark(store, item.call_id))


def refresh_from_analysis(store, item, analysis) -> VoiceprintInfo | None:
    """After storing an analysis: fold its agent voice into the agent's voiceprint, if it has one.

    The pipeline hands over the agent's voice of channel and stereo calls whose agent is known
    (the agent leg where the caller is silent) and of mixed calls where an analyst marked the
    agent's side; nothing from a mix attributed automatically (a wrong split would teach the
    voiceprint the caller's voice).
    """
    user = agent_user_of(item)
    if user is None or analysis.agent_voice is None:
        return None
    vector, seconds = analysis.agent_voice
    method = (analysis.extra.get("attribution") or {}).get("method")
    return refresh(store, user, vector, seconds, source=item.call_id,
                   origin="manual" if method == "manual" else "auto")


# --- an analyst's mark on a mixed call ----------------------------------------------------------------
def mark_agent(store, call_id: str, agent_at_s: float, *, set_by: str | None = None) -> None:
    """Remember that the voice speaking at ``agent_at_s`` in ``call_id`` is the agent's."""
    from core.store.schema import side_overrides

    if not np.isfinite(agent_at_s) or agent_at_s < 0:
        raise ParameterError(f"agent_at_s={agent_at_s!r} must be a time in the call (seconds >= 0)")
    with store._guard("saving a side mark"), store.engine.begin() as conn:
        conn.execute(delete(side_overrides).where(side_overrides.c.call_id == call_id))
        conn.execute(insert(side_overrides).values(call_id=call_id, agent_start_s=float(agent_at_s), set_by=set_by,
                                                   set_at=_now()))


def agent_mark(store, call_id: str) -> float | None:
    """The time an analyst marked as the agent's voice in ``call_id`` (None: no mark)."""
    from core.store.schema import side_overrides

    with store._guard("reading a side mark"), store._read() as conn:
        row = conn.execute(select(side_overrides.c.agent_start_s).where(side_overrides.c.call_id == call_id)).first()
    return None if row is None else float(row[0])
