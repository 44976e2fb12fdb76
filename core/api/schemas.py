"""Request and response models of the HTTP API: what ``/openapi.json`` and ``/docs`` show.

Requests are validated strictly (unknown fields are refused, so a typo is a 422 rather than a
silently ignored option). Responses are documented with the same models; analysis documents
allow extra keys because the ``callqa analyze --json`` contract only ever gains keys.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.results import LAYOUTS

Layout = Literal["channel", "conference", "stereo", "mixed"]
assert set(Layout.__args__) == set(LAYOUTS)  # type: ignore[attr-defined]

CALL_ID_PATTERN = r"^[A-Za-z0-9_+][A-Za-z0-9._+-]{0,254}$"
#: Every integer a request may carry is bounded: ids fit a signed 64-bit column (SQLite,
#: PostgreSQL BIGINT, MySQL) and an offset stays far below anything a store could hold, so no
#: value can overflow a driver (a 500 that also dropped the keep-alive connection).
MAX_DB_INT = 2**63 - 1
MAX_OFFSET = 1_000_000_000


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- errors ----------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    type: str = Field(description="Error kind: the callqa error class in snake_case (`audio_not_found`, "
                                  "`path_not_allowed`, `authentication`...), or `validation`, `body_too_large`, "
                                  "`server_busy`, `not_found`, `internal`.",
                      examples=["audio_not_found"])
    message: str = Field(description="One readable line; never a traceback or a secret.")


class ErrorResponse(BaseModel):
    """Every error answer has this shape."""

    error: ErrorBody


# --- health ----------------------------------------------------------------------------------
class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


class ReadyCheck(BaseModel):
    name: str = Field(description="`store`, `weights`, `vicidial` or `claude`.")
    status: Literal["ok", "fail", "skipped"]
    detail: str


class ReadyResponse(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: list[ReadyCheck]


# --- analysis requests -----------------------------------------------------------------------
class LookupKeys(_Strict):
    """ViciDial search keys that must match exactly one recording (``callqa lookup`` semantics)."""

    uniqueid: str | None = Field(None, max_length=64, description="Asterisk uniqueid of the call.")
    lead_id: int | None = Field(None, ge=0, le=MAX_DB_INT)
    phone: str | None = Field(None, max_length=40, description="Customer number in any spelling.")
    agent: str | None = Field(None, max_length=40, description="ViciDial user id of the agent.")
    campaign: str | None = Field(None, max_length=40)
    ingroup: str | None = Field(None, max_length=40)
    status: str | None = Field(None, max_length=20, description="Call disposition (SALE, NA...).")
    direction: Literal["outbound", "inbound", "unlinked"] | None = None
    since: datetime | None = Field(None, description="Call time from (server-local).")
    until: datetime | None = Field(None, description="Call time before (server-local).")

    @model_validator(mode="after")
    def _not_empty(self) -> LookupKeys:
        keys = ("uniqueid", "lead_id", "phone", "agent", "campaign", "ingroup", "status")
        if all(getattr(self, k) in (None, "") for k in keys):
            raise ValueError("lookup needs at least one of uniqueid, lead_id, phone, agent, campaign, ingroup, status")
        return self


class AnalyzeRequest(_Strict):
    """Exactly one of ``path``, ``url``, ``recording_id`` or ``lookup`` names the call."""

    path: str | None = Field(None, max_length=4096,
                             description="Absolute path of any file of the call, below [api] allowed_roots.",
                             examples=["/var/lib/callqa/demo/recordings/20261124-090000_3125550101-in.wav"])
    url: str | None = Field(None, max_length=2048,
                            description="http(s) URL of a recording on a host in [recordings] allowed_hosts.")
    recording_id: int | None = Field(None, ge=0, le=MAX_DB_INT, description="ViciDial recording_log.recording_id.")
    lookup: LookupKeys | None = None
    layout: Layout | None = Field(None, description="Force the layout instead of detecting it.")
    quality: bool | None = Field(None, description="Score NISQA speech quality (default: [api] quality).")
    agent: str | None = Field(None, pattern=r"^[\w.@-]{1,100}$",
                              description="ViciDial user of the call's agent: its voiceprint names the sides of a "
                                          "mixed recording (a ViciDial recording carries its user already).",
                              examples=["6001"])

    @model_validator(mode="after")
    def _one_source(self) -> AnalyzeRequest:
        given = [k for k in ("path", "url", "recording_id", "lookup") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of path, url, recording_id or lookup"
                             + (f" (got {', '.join(given)})" if given else ""))
        return self


class AiAnalyzeRequest(AnalyzeRequest):
    force: bool = Field(False, description="Ask Claude again even when this analysis was summarised before.")


class InvestigateRequest(_Strict):
    call_id: str = Field(pattern=CALL_ID_PATTERN, description="A call in the result store (analyse it first).",
                         examples=["20261107-083314_2985954634"])


class AskRequest(_Strict):
    question: str = Field(min_length=1, max_length=4000, examples=["Which carrier had the most one-way calls?"])


# --- analysis responses ----------------------------------------------------------------------
class Span(BaseModel):
    start_s: float
    end_s: float


class TrackStatsDoc(_Open):
    rms_db: float | None
    peak_db: float | None
    duration_s: float
    dc_offset: float | None
    clipped_samples: int
    clip_ratio: float


class LegDoc(_Open):
    stats: TrackStatsDoc
    silences: list[Span]
    speech: list[Span]
    speech_ratio: float
    quality: dict[str, Any] | None = Field(description="NISQA scores, windows and worst window; null without quality.")
    quality_reason: str | None
    sample_rate: int
    encoding: str
    source: str


class FindingDoc(BaseModel):
    code: str
    leg: str | None
    start_s: float
    end_s: float
    severity: Literal["info", "warning", "critical"]
    detail: str


class AnalysisDoc(_Open):
    """The ``callqa analyze --json`` object. Non-finite numbers (``-inf`` dB of digital silence)
    are sent as ``null``; the response header ``X-Callqa-Cache`` is ``hit`` or ``miss``."""

    call_id: str
    layout: Layout
    duration_s: float
    legs: dict[str, LegDoc]
    findings: list[FindingDoc]
    warnings: list[str]
    config: dict[str, Any]
    timings_s: dict[str, float]
    sources: dict[str, str]
    analysis_version: str
    quality_model: str | None


class SummaryDoc(_Open):
    call_id: str
    verdict: str
    severity: str
    summary: str
    suspected_cause: str
    model: str
    prompt_version: str
    analysis_key: str
    cached: bool = Field(description="True when the stored summary was reused (nothing was sent to Claude).")
    input_tokens: int
    output_tokens: int
    cost_usd: float


class AiAnalyzeResponse(BaseModel):
    analysis: AnalysisDoc
    analysis_cached: bool
    summary: SummaryDoc


class EvidenceDoc(BaseModel):
    source: str
    detail: str


class InvestigationDoc(_Open):
    call_id: str
    root_cause: str
    narrative: str
    evidence: list[EvidenceDoc]
    next_steps: list[str]
    confidence: str
    model: str
    prompt_version: str
    context_rows: dict[str, int]
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ToolCallDoc(BaseModel):
    name: str
    input: dict[str, Any]
    sql: str | None
    is_error: bool
    row_count: int
    first_rows: list[dict[str, Any]]
    error: str | None


class AskResponse(BaseModel):
    answer: str
    tools: list[ToolCallDoc]
    call_ids: list[str]
    notices: list[str]
    rounds: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class CallsResponse(BaseModel):
    source: Literal["store", "vicidial"]
    count: int = Field(description="Rows in this page.")
    total: int | None = Field(description="Rows matching the filters without limit (store only).")
    calls: list[dict[str, Any]] = Field(description="Store: the `callqa calls --json` rows. ViciDial: the "
                                                    "`callqa lookup --json` rows (one per recording).")
