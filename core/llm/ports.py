"""What the Claude features need from the rest of callqa, as small protocols.

The services in :mod:`core.llm` depend only on these; :mod:`core.llm.adapters` implements
them over the result store (:mod:`core.store`) and ViciDial (:mod:`core.vicidial`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable

from core.llm.guardrails import SqlResult


@dataclass(frozen=True)
class StoredCall:
    """One stored analysis and what is known about the call.

    Attributes
    ----------
    call_id : str
    analysis : dict
        The ``callqa analyze --json`` document.
    analysis_key : str
        Identifies this exact analysis (the store's cache key); summaries are keyed by it.
    metadata : dict
        ViciDial metadata kept with the call (``call_time``, ``agent``, ``campaign``,
        ``carrier``, ``hangup_cause``, ``server_ip``, ``lead_id``, ``uniqueid``...), JSON-ready.
    recording_id : int or None
        ``recording_log.recording_id`` when the call came from ViciDial.
    ref : str
        The opaque reference Claude sees instead of ``call_id`` (``calls.ref``,
        :mod:`core.privacy.refs`); empty when unknown (the id is then sent with its number
        removed).
    """

    call_id: str
    analysis: dict[str, Any]
    analysis_key: str
    metadata: dict[str, Any] = field(default_factory=dict)
    recording_id: int | None = None
    ref: str = ""


@dataclass(frozen=True)
class CallQuery:
    """Filters of the chat's ``search_calls`` tool (all optional, ANDed)."""

    since: datetime | None = None
    until: datetime | None = None
    agent: str | None = None
    campaign: str | None = None
    carrier: str | None = None
    finding_code: str | None = None
    min_severity: str | None = None  # info | warning | critical
    max_mos: float | None = None
    limit: int = 20


@dataclass(frozen=True)
class SummaryRecord:
    """A stored executive summary of one analysis."""

    call_id: str
    analysis_key: str
    model: str
    prompt_version: str
    verdict: str
    severity: str
    summary: str
    suspected_cause: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    created_at: datetime | None = None


@dataclass(frozen=True)
class BatchRecord:
    """A submitted Message Batch as recorded in the store."""

    batch_id: str
    status: str  # in_progress | canceling | ended | collected | failed
    submitted_count: int
    created_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None


class SummaryRepository(Protocol):
    """Where summaries, usage and batches are kept (the result store)."""

    def get_summary(self, call_id: str, *, analysis_key: str, model: str,
                    prompt_version: str) -> SummaryRecord | None: ...

    def save_summary(self, record: SummaryRecord) -> None: ...

    def record_usage(self, *, day: date, kind: str, model: str, input_tokens: int, output_tokens: int,
                     cost_usd: float, calls: int = 1) -> None: ...

    def spend_usd(self, day: date) -> float: ...

    def save_batch(self, batch_id: str, *, status: str, submitted_count: int) -> None: ...

    def update_batch(self, batch_id: str, *, status: str, finished_at: datetime | None = None,
                     error: str | None = None) -> None: ...

    def get_batch(self, batch_id: str) -> BatchRecord | None: ...

    def open_batches(self) -> list[BatchRecord]: ...


class CallReader(Protocol):
    """Read side of the result store."""

    def get_call(self, call_id: str) -> StoredCall:
        """The stored call by its id or its opaque reference; raises :class:`~core.errors.CallNotFoundError`."""
        ...

    def refs_for(self, call_ids: list[str]) -> dict[str, str]:
        """``{call_id: ref}`` of the stored calls among ``call_ids`` (others are absent)."""
        ...

    def search_calls(self, query: CallQuery) -> list[dict[str, Any]]: ...

    def fleet_stats(self, *, since: datetime | None, until: datetime | None,
                    group_by: str) -> list[dict[str, Any]]: ...

    def call_ids_between(self, *, since: datetime, until: datetime | None, limit: int) -> list[str]: ...


class ContextReader(Protocol):
    """Related ViciDial rows of a call (carrier, dial, call, agent, closer logs...)."""

    def call_context(self, call: StoredCall) -> dict[str, list[dict[str, Any]]]:
        """Rows keyed by table; empty when ViciDial does not know the call."""
        ...


@runtime_checkable
class SqlRunner(Protocol):
    """Guarded read-only SQL over one database (see :mod:`core.llm.guardrails`)."""

    name: str  # "store" | "vicidial"
    dialect: str
    tables: tuple[str, ...]

    def run(self, sql: str) -> SqlResult:
        """Run one validated statement; raises :class:`~core.errors.QueryRefusedError`."""
        ...
