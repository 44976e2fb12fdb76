"""Bulk summaries through the Message Batches API (half price, results within 24 h).

The flow is resumable at every step:

1. :func:`submit_batch` builds one request per call that has no stored summary yet, checks the
   whole batch against the daily budget, submits it and records the batch id in the store at
   once (``llm_batches``, status ``in_progress``).
2. :func:`poll_batch` asks the API for the batch's status and records it.
3. :func:`collect_batch` reads the results (JSONL, unordered) and joins them on ``custom_id``,
   which is ``<call reference>_<first 12 characters of the analysis key>`` (the opaque reference,
   never the call id, which holds the customer's number): a result whose call was
   re-analysed meanwhile is dropped as stale instead of being stored under the wrong analysis.
   Each summary is validated, stored and its usage recorded; a summary already stored is
   skipped, so collecting again after a crash neither duplicates rows nor double-counts cost.
   The batch is then marked ``collected``.
4. :func:`resume_batches` polls and collects every batch the store still lists as open.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from core.errors import CallNotFoundError, ConfigError, LLMError
from core.llm.client import TokenUsage, api_call, cost_usd, ensure_budget, estimate_cost_usd, today_utc
from core.llm.ports import CallReader, StoredCall, SummaryRepository
from core.llm.settings import ClaudeSettings
from core.llm.summary import PROMPT_VERSION, build_summary_params, make_record, params_chars, parse_summary
from core.privacy.redact import STRICT, Policy

USAGE_KIND = "summary-batch"
MAX_REQUESTS = 100_000  # per batch (claude-api.md section 5)
KEY_PREFIX_CHARS = 12
_CUSTOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class BatchSubmission:
    """What :func:`submit_batch` did."""

    batch_id: str | None
    submitted: tuple[str, ...]
    already_summarised: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]  # (call_id, reason)
    estimate_usd: float

    def as_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "submitted": len(self.submitted),
                "already_summarised": len(self.already_summarised),
                "skipped": [{"call_id": c, "reason": r} for c, r in self.skipped],
                "estimate_usd": round(self.estimate_usd, 6)}


@dataclass(frozen=True)
class BatchOutcome:
    """What :func:`collect_batch` stored."""

    batch_id: str
    status: str
    stored: tuple[str, ...] = ()
    already_stored: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    failed: tuple[tuple[str, str], ...] = ()  # (call_id or custom_id, reason)
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "status": self.status, "stored": len(self.stored),
                "already_stored": len(self.already_stored), "stale": len(self.stale),
                "failed": [{"id": c, "reason": r} for c, r in self.failed],
                "input_tokens": self.usage.total_input_tokens, "output_tokens": self.usage.output_tokens,
                "cost_usd": round(self.cost_usd, 6)}


def custom_id_for(call: StoredCall) -> str | None:
    """``<call reference>_<analysis key prefix>``, or None when the call has no reference."""
    if not call.ref:
        return None
    value = f"{call.ref}_{call.analysis_key[:KEY_PREFIX_CHARS]}"
    return value if _CUSTOM_ID.match(value) else None


def split_custom_id(custom_id: str) -> tuple[str, str]:
    """``(call reference, analysis key prefix)`` of a custom_id made by :func:`custom_id_for`."""
    call_id, _, prefix = custom_id.rpartition("_")
    return call_id, prefix


def submit_batch(call_ids: Iterable[str], *, client: Any, settings: ClaudeSettings, calls: CallReader,
                 repo: SummaryRepository, force: bool = False, day: date | None = None,
                 policy: Policy = STRICT) -> BatchSubmission:
    """Submit one Message Batch summarising every call of ``call_ids`` not summarised yet.

    Parameters
    ----------
    call_ids : iterable of str
        Stored calls; unknown ones are skipped with a reason.
    client, settings, calls, repo
        As for :func:`core.llm.summary.summarize_call`.
    force : bool
        Also resubmit calls whose summary is stored.
    day : date, optional
        Budget day (default today, UTC).
    policy : Policy
        What personal data may be sent (default none).

    Returns
    -------
    BatchSubmission
        ``batch_id`` is None when there was nothing to submit.

    Raises
    ------
    BudgetExceededError
        The batch's estimated cost (at the batch discount) does not fit in today's budget.
    ConfigError, LLMError
    """
    requests: list[dict[str, Any]] = []
    submitted: list[str] = []
    done: list[str] = []
    skipped: list[tuple[str, str]] = []
    estimate = 0.0
    seen: set[str] = set()
    for call_id in call_ids:
        if call_id in seen:
            continue
        seen.add(call_id)
        try:
            call = calls.get_call(call_id)
        except CallNotFoundError:
            skipped.append((call_id, "not in the store"))
            continue
        custom_id = custom_id_for(call)
        if custom_id is None:
            skipped.append((call_id, "the call has no reference yet: run `callqa migrate`"))
            continue
        params = build_summary_params(call, settings=settings, policy=policy, calls=calls)
        if not force and repo.get_summary(call.call_id, analysis_key=call.analysis_key, model=params["model"],
                                          prompt_version=PROMPT_VERSION):
            done.append(call_id)
            continue
        estimate += estimate_cost_usd(settings, params["model"], prompt_chars=params_chars(params),
                                      max_tokens=params["max_tokens"], batch=True)
        requests.append({"custom_id": custom_id, "params": params})
        submitted.append(call_id)
    if len(requests) > MAX_REQUESTS:
        raise ConfigError(f"{len(requests)} calls exceed the {MAX_REQUESTS} requests of one batch: use --limit")
    if not requests:
        return BatchSubmission(None, (), tuple(done), tuple(skipped), 0.0)
    ensure_budget(repo, settings, estimate_usd=estimate, day=day)
    with api_call(settings):
        batch = client.messages.batches.create(requests=requests)
    repo.save_batch(batch.id, status=batch.processing_status, submitted_count=len(requests))
    return BatchSubmission(batch.id, tuple(submitted), tuple(done), tuple(skipped), estimate)


def poll_batch(batch_id: str, *, client: Any, settings: ClaudeSettings, repo: SummaryRepository) -> str:
    """The batch's ``processing_status`` (``in_progress``, ``canceling``, ``ended``), recorded in the store."""
    with api_call(settings):
        batch = client.messages.batches.retrieve(batch_id)
    stored = repo.get_batch(batch_id)
    if stored is None:
        repo.save_batch(batch_id, status=batch.processing_status,
                        submitted_count=sum(batch.request_counts.model_dump().values()))
    elif stored.status != batch.processing_status:
        repo.update_batch(batch_id, status=batch.processing_status, finished_at=batch.ended_at)
    return batch.processing_status


def collect_batch(batch_id: str, *, client: Any, settings: ClaudeSettings, calls: CallReader,
                  repo: SummaryRepository, day: date | None = None) -> BatchOutcome:
    """Store the results of an ended batch (idempotent; see the module docstring).

    Raises
    ------
    LLMError
        The batch has not ended, or the API failed.
    """
    day = day or today_utc()
    stored, already, stale, failed = [], [], [], []
    billed = TokenUsage()  # usage of results not stored as summaries (errors, stale, invalid)
    total = TokenUsage()
    total_cost = 0.0
    with api_call(settings):
        lines = list(client.messages.batches.results(batch_id))
    for line in lines:
        ref, prefix = split_custom_id(line.custom_id)
        result = line.result
        try:
            call = calls.get_call(ref)
        except CallNotFoundError:
            call = None
        if result.type != "succeeded":
            failed.append((call.call_id if call else ref or line.custom_id, _result_reason(result)))
            continue
        message = result.message
        usage = TokenUsage.of(message.usage)
        model = message.model if any(m == message.model for m, _ in settings.prices) else settings.summary_model
        if call is None:
            failed.append((ref, "no longer in the store"))
            billed += usage
            continue
        call_id = call.call_id
        if not call.analysis_key.startswith(prefix):
            stale.append(call_id)
            billed += usage
            continue
        if repo.get_summary(call.call_id, analysis_key=call.analysis_key, model=model, prompt_version=PROMPT_VERSION):
            already.append(call_id)
            continue
        cost = cost_usd(settings, model, usage, batch=True)
        try:
            output = parse_summary(message, call_id=call_id)
        except LLMError as exc:
            failed.append((call_id, str(exc)))
            billed += usage
            continue
        repo.save_summary(make_record(call, output, model=model, usage=usage, cost=cost))
        repo.record_usage(day=day, kind=USAGE_KIND, model=model, input_tokens=usage.total_input_tokens,
                          output_tokens=usage.output_tokens, cost_usd=cost)
        stored.append(call_id)
        total += usage
        total_cost += cost
    if billed.input_tokens or billed.output_tokens:
        extra = cost_usd(settings, settings.summary_model, billed, batch=True)
        repo.record_usage(day=day, kind=USAGE_KIND, model=settings.summary_model,
                          input_tokens=billed.total_input_tokens, output_tokens=billed.output_tokens,
                          cost_usd=extra, calls=0)
        total += billed
        total_cost += extra
    error = "; ".join(f"{c}: {r}" for c, r in failed[:5]) or None
    if repo.get_batch(batch_id) is None:
        repo.save_batch(batch_id, status="ended", submitted_count=len(lines))
    repo.update_batch(batch_id, status="collected", finished_at=datetime.now(UTC), error=error)
    return BatchOutcome(batch_id=batch_id, status="collected", stored=tuple(stored), already_stored=tuple(already),
                        stale=tuple(stale), failed=tuple(failed), usage=total, cost_usd=round(total_cost, 8))


def _result_reason(result: Any) -> str:
    if result.type == "errored":
        err = getattr(getattr(result, "error", None), "error", None)
        kind = getattr(err, "type", None) or "error"
        return f"errored ({kind})"
    return result.type  # canceled | expired


def wait_and_collect(batch_id: str, *, client: Any, settings: ClaudeSettings, calls: CallReader,
                     repo: SummaryRepository, wait_s: float | None = None, poll_s: float | None = None,
                     sleep: Callable[[float], None] = time.sleep,
                     on_poll: Callable[[str], None] | None = None) -> BatchOutcome | None:
    """Poll until the batch ends (then collect it) or ``wait_s`` passes (then return None).

    The batch stays recorded either way; ``callqa summarize --resume`` picks it up later.
    """
    wait_s = settings.batch_wait_s if wait_s is None else wait_s
    poll_s = settings.batch_poll_s if poll_s is None else poll_s
    deadline = time.monotonic() + wait_s
    while True:
        status = poll_batch(batch_id, client=client, settings=settings, repo=repo)
        if on_poll:
            on_poll(status)
        if status == "ended":
            return collect_batch(batch_id, client=client, settings=settings, calls=calls, repo=repo)
        if time.monotonic() + poll_s > deadline:
            return None
        sleep(poll_s)


def resume_batches(*, client: Any, settings: ClaudeSettings, calls: CallReader,
                   repo: SummaryRepository) -> list[BatchOutcome]:
    """Poll every open batch in the store once; collect those that ended.

    Returns
    -------
    list of BatchOutcome
        One per open batch: collected ones with their counts, others with their current status.
    """
    out = []
    for record in repo.open_batches():
        status = record.status
        if status != "ended":
            status = poll_batch(record.batch_id, client=client, settings=settings, repo=repo)
        if status == "ended":
            out.append(collect_batch(record.batch_id, client=client, settings=settings, calls=calls, repo=repo))
        else:
            out.append(BatchOutcome(batch_id=record.batch_id, status=status))
    return out
