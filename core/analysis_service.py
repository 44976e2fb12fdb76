"""Analyse or reuse, then store: the one path from a call reference to a stored analysis.

Every entry point goes through here -- ``callqa analyze [--save]``, ``callqa scan`` (its parent
checks and stores, its workers analyse), queue workers, the HTTP API and the dashboard -- so a
new input of the analysis is added in one place (:func:`analysis_inputs`).

The names say what each step does:

- :func:`core.pipeline.analyze_call` -- the pure pipeline: local files in, ``CallAnalysis`` out;
- :func:`analyze_item` -- a work item made local (fetched if need be) and analysed; no store;
- :func:`analyze_or_reuse` -- the stored analysis of a work item, or :func:`analyze_item` and
  store it;
- :class:`AnalysisJob` -- the steps of both (resolve, hash, check the store, analyse, save) for
  callers that run them apart: the scan analyses in worker processes and stores in the parent,
  a queue worker claims the call between the cheap check and the fetch;
- ``core.queue.tasks.analyze_call_task`` -- the Celery task ``callqa.analyze_call``.

Reuse rules, the same for every caller: a call is not analysed again while the store holds an
analysis with the same cache key (same bytes, thresholds, layout, versions, quality model and
extra identities); a ViciDial recording is not even fetched again while its stored analysis is
younger than ``[scan] remote_ttl_s`` and was scored by the same quality model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from core.config import AnalysisConfig, ScanSettings, Settings
from core.errors import CallNotFoundError, ConfigError
from core.quality.base import model_identity
from core.work import LocalCall, WorkItem, resolve_item

if TYPE_CHECKING:
    from core.audio.diarize import VoiceContext
    from core.audio.layout import CallFiles
    from core.audio.vad import SileroVAD
    from core.quality.base import QualityModel
    from core.results import CallAnalysis
    from core.store.store import ResultStore

    # the voices of a mixed call's sides, or a callable reading them only when a call turns out mixed
    Voices: TypeAlias = VoiceContext | Callable[[], VoiceContext]

Progress = Callable[[str], None]
#: What :meth:`AnalysisJob.run` can end with: ``stored`` (analysed and written), ``cached`` (the
#: store holds this cache key), ``fresh`` (a remote recording fetched within the TTL, not
#: fetched again), ``unchanged`` (fetched again, same bytes), ``busy`` (``before_work`` declined).
OUTCOMES = ("stored", "cached", "fresh", "unchanged", "busy")


@dataclass(frozen=True)
class Models:
    """The models one process analyses with, and the quality model's identity for cache keys.

    ``Models(quality_id=...)`` (no models) is what a scan's parent process holds: it checks the
    store while its workers hold the models.
    """

    quality: QualityModel | None = None
    vad: SileroVAD | None = None
    quality_id: str | None = None

    def __post_init__(self) -> None:
        if self.quality is not None and self.quality_id is None:
            object.__setattr__(self, "quality_id", model_identity(self.quality))


def load_models(settings: Settings, *, quality: bool = True, threads: int | None = None) -> Models:
    """The process-wide VAD and, when ``quality``, the quality model (each loaded once per process).

    Raises
    ------
    ModelUnavailableError
        The quality weights are missing or corrupt.
    """
    from core.audio import speakers
    from core.audio.vad import get_vad

    model = None
    if quality:
        from core.quality.manager import get_quality_model

        model = get_quality_model(settings, threads=threads)
    vad = get_vad()
    if threads is not None:  # a scan or worker sharing the cores with others: fewer threads each
        vad.parallel = threads
        speakers.set_threads(threads)
    return Models(quality=model, vad=vad)


@dataclass(frozen=True)
class AnalysisInputs:
    """Everything an analysis depends on besides the recordings' bytes.

    Attributes
    ----------
    cfg : AnalysisConfig
        The thresholds.
    quality_id : str or None
        The quality model's identity (None: quality scoring off).
    layout : str, optional
        A forced layout (``--layout``).
    extra_ids : mapping of str to str
        Identities of further inputs (a voiceprint, a model version...), part of the cache key.
    options : mapping
        Further keyword arguments of :func:`core.pipeline.analyze_call`.
    """

    cfg: AnalysisConfig
    quality_id: str | None = None
    layout: str | None = None
    extra_ids: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)

    def cache_key(self, call: CallFiles) -> str:
        """:func:`core.store.cachekey.cache_key` of ``call`` analysed with these inputs."""
        from core.store.cachekey import cache_key

        return cache_key(call, self.cfg, self.quality_id, layout=self.layout, extra=self.extra_ids)


def call_item(settings: Settings, *, path: str | Path | None = None, recording_id: int | None = None,
              roots: Iterable[Path] | None = None) -> WorkItem:
    """The work item of a call a person names: a local recording (its siblings are found beside it;
    with ``roots`` every file of the call must lie below one of them) or a ViciDial
    ``recording_id`` (looked up now, fetched when analysed).

    Raises
    ------
    ConfigError
        Neither or both given.
    AudioNotFoundError, CallNotFoundError, ViciDialError
        The recording does not exist.
    PathNotAllowedError
        A file of the call lies outside ``roots``.
    """
    if (path is None) == (recording_id is None):
        raise ConfigError("give either a recording path or a ViciDial recording_id")
    if path is not None:
        from core.work import path_item

        return path_item(path, roots=roots)
    from core.fetch.service import recording_item

    assert recording_id is not None
    return recording_item(settings, recording_id)


def analysis_inputs(item: WorkItem, settings: Settings, models: Models, *, layout: str | None = None,
                    voices: Voices | None = None) -> AnalysisInputs:
    """What the analysis of ``item`` depends on besides its bytes: the one place to add an input.

    An input the pipeline takes beyond the thresholds and models goes into ``options``, and its
    identity into ``extra_ids`` so the cache key changes with it. The voices that tell the
    agent's side of a mixed recording (``voices``, :class:`core.audio.diarize.VoiceContext`:
    the voiceprint of ``--agent`` or of the item's ViciDial user, an analyst's mark) are the
    exception: only a split mix depends on them, and a voiceprint refreshed by every channel call
    of its agent would otherwise re-analyse all of that agent's calls. A stored split mix keeps
    the identity of the voices it used (``calls.voice_key``) and :func:`reuse_reason` compares it.
    """
    options: dict[str, Any] = {}
    extra_ids: dict[str, str] = {}
    if voices is not None:  # not in the cache key: only mixed calls depend on them (see reuse_reason)
        options["voices"] = voices
    return AnalysisInputs(cfg=settings.analysis, quality_id=models.quality_id, layout=layout, extra_ids=extra_ids,
                          options=options)


def remote_ttl_s(settings: Settings) -> float:
    """``[scan] remote_ttl_s`` with its environment override."""
    return ScanSettings.from_settings(settings).remote_ttl_s


def reuse_reason(store: ResultStore, item: WorkItem, key: str | None, *, quality_id: str | None,
                 ttl_s: float, voices: Voices | None = None) -> str | None:
    """Why ``item`` needs no analysis now: ``cached`` (the store holds ``key``), ``fresh`` (a
    remote item, not hashed yet, fetched within ``ttl_s`` and scored by the same quality
    model), or None. A stored split mix is reused only while the voices it was split with are
    still the current ones (``voices``; a new or changed voiceprint, or an analyst's mark,
    re-analyses the mixed calls it concerns and nothing else)."""
    if key is not None:
        reason = "cached" if store.cached(item.call_id, key) else None
    elif not item.local and store.fresh(item.call_id, max_age_s=ttl_s, quality_model=quality_id):
        reason = "fresh"
    else:
        return None
    if voices is not None:
        used = store.voice_key(item.call_id)
        if used is not None and used != (voices() if callable(voices) else voices).identity():
            return None
    return reason


def save_result(store: ResultStore, item: WorkItem, analysis: CallAnalysis, *, cache_key: str,
                fetched_at: datetime | None = None) -> bool:
    """Store the analysis of ``item`` with its source and metadata, and fold the agent's voice it
    heard into the agent's voiceprint (:func:`core.voices.refresh_from_analysis`); False when
    that key was stored already."""
    from core.voices import refresh_from_analysis

    saved = store.save_analysis(analysis, cache_key=cache_key, source_kind=item.kind, source_ref=item.ref,
                                metadata=item.metadata, fetched_at=fetched_at)
    if saved:
        refresh_from_analysis(store, item, analysis)
    return saved


def record_failure(store: ResultStore, item: WorkItem, key: str | None, reason: str) -> None:
    """Store why analysing ``item`` (these bytes: ``key``) failed, so the same bytes are not retried."""
    store.save_error(item.call_id, cache_key=key or "unreadable", source_ref=item.ref, reason=reason,
                     source_kind=item.kind)


class AnalysisJob:
    """One work item on its way to the store: resolve, hash, check, analyse, save.

    Parameters
    ----------
    item : WorkItem
        The call.
    settings : Settings
        Configuration (thresholds, ``[scan] remote_ttl_s``, ``[recordings]``, ``tmp_dir``).
    models : Models
        The models (or, in a scan's parent, only the quality identity).
    layout : str, optional
        A forced layout.
    voices : VoiceContext or callable returning one, optional
        The voices of a mixed recording's sides (:func:`analysis_inputs`); a callable is called
        only when they are needed (a mixed call, or reuse checks against the store).

    Attributes
    ----------
    key : str or None
        The cache key, once known (``item.cache_key`` when the caller hashed already).
    local : LocalCall or None
        The item's local files, once resolved.
    fetched_at : datetime or None
        When a remote item was fetched (UTC, naive).
    """

    def __init__(self, item: WorkItem, settings: Settings, models: Models, *, layout: str | None = None,
                 voices: Voices | None = None) -> None:
        self.item = item
        self.settings = settings
        self.models = models
        self.layout = layout
        self.voices = voices
        self.inputs = analysis_inputs(item, settings, models, layout=layout, voices=voices)
        self.key: str | None = item.cache_key
        self.local: LocalCall | None = None
        self.fetched_at: datetime | None = None

    def resolve(self, tmp_dir: Path | None, *, progress: Progress | None = None,
                resolvers: Mapping[str, str] | None = None) -> LocalCall:
        """Make the item local (a remote one is fetched into ``tmp_dir``, which it then needs)."""
        if not self.item.local:
            if tmp_dir is None:
                raise RuntimeError(f"{self.item.call_id}: a remote work item needs a folder to be fetched into")
            if progress:
                progress("fetch")
        self.local = resolve_item(self.item, tmp_dir or Path(self.settings.tmp_dir), self.settings, resolvers)
        if not self.item.local:
            self.fetched_at = datetime.now(UTC).replace(tzinfo=None)
        return self.local

    def cache_key(self) -> str:
        """The cache key (hashing the files on first use; a local item is resolved for it).

        Raises
        ------
        AudioNotFoundError
            A file cannot be read.
        """
        if self.key is None:
            if self.local is None:
                self.resolve(None)
            assert self.local is not None
            self.key = self.inputs.cache_key(self.local.call)
        return self.key

    def local_key(self) -> str | None:
        """The cache key of a local item, None for a remote one (hashed where it is fetched)."""
        return self.cache_key() if self.item.local else None

    def run_pipeline(self, progress: Progress | None = None) -> CallAnalysis:
        """Run the pipeline on the resolved files; resolving added its warnings and JSON keys."""
        from core.pipeline import analyze_call

        local = self.local if self.local is not None else self.resolve(None, progress=progress)
        inputs = self.inputs
        result = analyze_call(local.call, cfg=inputs.cfg, layout=inputs.layout, quality_model=self.models.quality,
                              vad=self.models.vad, progress=progress, **inputs.options)
        result.warnings[:0] = list(local.warnings)
        result.extra.update(local.extra)
        return result

    def use_voices(self, voices: VoiceContext) -> None:
        """Analyse with these voices (the store's, read by :meth:`run` when none were given)."""
        self.voices = voices
        self.inputs = analysis_inputs(self.item, self.settings, self.models, layout=self.layout, voices=voices)

    def save(self, store: ResultStore, analysis: CallAnalysis) -> bool:
        """Store ``analysis``; False when the store already held this key."""
        return save_result(store, self.item, analysis, cache_key=self.cache_key(), fetched_at=self.fetched_at)

    def run(self, store: ResultStore, *, force: bool = False, progress: Progress | None = None,
            tmp_dir: Path | None = None,
            before_work: Callable[[AnalysisJob], bool] | None = None) -> tuple[str, CallAnalysis | None]:
        """Analyse or reuse, then store.

        Parameters
        ----------
        store : ResultStore
        force : bool
            Analyse even when the store holds the same key.
        progress : callable, optional
            Called with ``fetch`` and each pipeline stage as it starts.
        tmp_dir : Path, optional
            Where a remote item is fetched to; a temporary folder (removed afterwards) by default.
        before_work : callable, optional
            Called once the cheap checks found work to do, before any fetch; returning False
            ends with ``busy`` (a queue worker claims the call here).

        Returns
        -------
        (str, CallAnalysis or None)
            One of :data:`OUTCOMES`, and the analysis when one was run.
        """
        ttl = remote_ttl_s(self.settings)
        if self.voices is None:
            from core.voices import voices_for

            self.use_voices(voices_for(store, self.item))
        if not force:
            reason = reuse_reason(store, self.item, self.local_key(), quality_id=self.models.quality_id, ttl_s=ttl,
                                  voices=self.voices)
            if reason is not None:
                return reason, None
        if before_work is not None and not before_work(self):
            return "busy", None
        with contextlib.ExitStack() as stack:
            if not self.item.local and self.local is None:
                if tmp_dir is None:
                    from core.runtime import run_tmp_dir

                    tmp_dir = stack.enter_context(run_tmp_dir(self.settings, "fetch"))
                self.resolve(tmp_dir, progress=progress)
                key = self.cache_key()  # hashed while the fetched files exist
                if not force and store.stored_key(self.item.call_id) == key:
                    store.touch_fetched(self.item.call_id, fetched_at=self.fetched_at)
                    return "unchanged", None
            self.cache_key()
            analysis = self.run_pipeline(progress)
        return ("stored" if self.save(store, analysis) else "cached"), analysis


@dataclass(frozen=True)
class StoredAnalysis:
    """The analysis of one call as the store holds it.

    Attributes
    ----------
    call_id : str
    document : dict
        The ``callqa analyze --json`` object.
    outcome : str
        One of :data:`OUTCOMES` (never ``busy``).
    reused : bool
        True when it came from the store (nothing was analysed now).
    cache_key : str or None
        The key it was stored under (None when reused without fetching).
    """

    call_id: str
    document: dict[str, Any]
    outcome: str
    reused: bool
    cache_key: str | None = None


def analyze_or_reuse(item: WorkItem, store: ResultStore, models: Models, settings: Settings, *,
                     layout: str | None = None, force: bool = False, progress: Progress | None = None,
                     tmp_dir: Path | None = None, voices: VoiceContext | None = None) -> StoredAnalysis:
    """The stored analysis of ``item``, or analysed now and stored.

    Parameters
    ----------
    item : WorkItem
        The call (:func:`core.work.path_item`, :func:`core.fetch.service.vicidial_item`...).
    store : ResultStore
    models : Models
        Loaded models (:func:`load_models`).
    settings : Settings
    layout : str, optional
        A forced layout (part of the cache key).
    force : bool
        Analyse even when a matching analysis is stored.
    progress : callable, optional
        Called with ``fetch`` and each pipeline stage as it starts.
    tmp_dir : Path, optional
        Where a remote recording is fetched to (a temporary folder by default).
    voices : VoiceContext, optional
        The voices of a mixed recording's sides (part of the cache key).

    Returns
    -------
    StoredAnalysis

    Raises
    ------
    AudioError, FetchError, UnsafeLocationError, ModelUnavailableError, StoreError
        With a one-line message; nothing is stored.
    """
    job = AnalysisJob(item, settings, models, layout=layout, voices=voices)
    outcome, analysis = job.run(store, force=force, progress=progress, tmp_dir=tmp_dir)
    if analysis is None:
        return StoredAnalysis(item.call_id, store.get_analysis(item.call_id), outcome, True, job.key)
    return StoredAnalysis(item.call_id, analysis.as_dict(), outcome, False, job.key)


def analyze_item(item: WorkItem, settings: Settings, models: Models, *, layout: str | None = None,
                 progress: Progress | None = None, voices: Voices | None = None) -> CallAnalysis:
    """Analyse ``item`` without a store: resolve it (a remote recording is fetched into a temporary
    folder, removed afterwards), run the pipeline, add what resolving found (``callqa analyze``).

    Raises
    ------
    AudioError, FetchError, UnsafeLocationError, CallNotFoundError, ModelUnavailableError
        With a one-line message.
    """
    job = AnalysisJob(item, settings, models, layout=layout, voices=voices)
    if item.local:
        return job.run_pipeline(progress)
    from core.runtime import run_tmp_dir

    with run_tmp_dir(settings, "fetch") as tmp:
        job.resolve(tmp, progress=progress)
        return job.run_pipeline(progress)


def stored_item(store: ResultStore, settings: Settings, call_id: str, *,
                roots: Iterable[Path] | None = None) -> WorkItem:
    """The work item of a stored call, to analyse it again: its ViciDial recording (looked up
    again) or its local files (where the stored analysis found them), with its stored metadata.

    Raises
    ------
    CallNotFoundError
        The call is not stored.
    AudioNotFoundError, PathNotAllowedError, ViciDialError
        Its recordings cannot be reached any more.
    """
    from core.store.queries import call_metadata

    meta = call_metadata(store, call_id)
    keep = {k: v for k, v in meta.items() if k not in ("call_id", "source_kind", "source_ref", "analyzed_at",
                                                        "fetched_at", "cache_key") and v is not None}
    if meta["source_kind"] == "vicidial":
        from core.fetch.service import recording_item

        item = recording_item(settings, int(meta["source_ref"]))
        return replace(item, metadata={**keep, **item.metadata})
    from core.work import path_item

    sources = store.get_analysis(call_id).get("sources") or {}
    if not sources:
        raise CallNotFoundError(f"call {call_id}: the stored analysis does not say where its recordings are")
    return path_item(next(iter(sources.values())), kind=meta["source_kind"], ref=meta["source_ref"],
                     metadata=keep, roots=roots)


def mark_agent_side(store: ResultStore, settings: Settings, models: Models, call_id: str, side: str, *,
                    set_by: str | None = None, roots: Iterable[Path] | None = None,
                    progress: Progress | None = None) -> StoredAnalysis:
    """An analyst says which side of a split mix is the agent: remember it and analyse the call
    again (the sides are named by the mark, ``attribution.method`` becomes ``manual``, and the
    agent's voiceprint learns from that side).

    Parameters
    ----------
    side : str
        The side of the stored analysis that is the agent (``speaker_a``, ``speaker_b``, or
        ``caller`` to swap an attribution).

    Raises
    ------
    ParameterError
        The call is not a split mix, or ``side`` is not one of its sides or has no speech.
    """
    from core.errors import ParameterError
    from core.voices import mark_agent

    doc = store.get_analysis(call_id)
    sides = (doc.get("attribution") or {}).get("sides") or []
    if side not in sides:
        raise ParameterError(f"call {call_id}: {side!r} is not one of its sides ({', '.join(sides) or 'none'})")
    speech = doc["legs"][side]["speech"]
    if not speech:
        raise ParameterError(f"call {call_id}: the {side} side has no speech to mark")
    first = speech[0]
    mark_agent(store, call_id, (first["start_s"] + first["end_s"]) / 2, set_by=set_by)
    return analyze_or_reuse(stored_item(store, settings, call_id, roots=roots), store, models, settings,
                            progress=progress)
