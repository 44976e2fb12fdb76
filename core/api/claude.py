"""The Claude endpoints' work (``/ai-analyze``, ``/investigate``, ``/ask``), run on the limiter's threads.

Each one is recorded in the audit log under the API key's name (``api:<name>``) and sends Claude
only what ``[privacy] send_to_claude`` allows (:mod:`core.privacy.redact`); ``/ask`` gives the
chat its SQL tools only when the key's role has ``sql_tool`` (admin).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.access.roles import Identity
from core.errors import CallQAError

if TYPE_CHECKING:
    from core.api.app import ApiState
    from core.api.schemas import AiAnalyzeRequest


def _llm(state: ApiState, kind: str):
    """The Claude services and client, or LLMNotConfiguredError before any work is done."""
    try:
        return state.llm, state.llm.client()
    except CallQAError:
        state.metrics.record_llm(kind, result="error")
        raise


def ai_analyze_blocking(state: ApiState, request: AiAnalyzeRequest, who: Identity) -> dict[str, Any]:
    """Analyse (or reuse) the call, then summarise it with the summary model (stored, reused)."""
    from core.api.app import analyze_blocking
    from core.llm.summary import summarize_call

    llm, client = _llm(state, "summary")
    doc, cached = analyze_blocking(state, request)
    try:
        result = summarize_call(doc["call_id"], client=client, settings=llm.claude, calls=llm.calls, repo=llm.repo,
                                force=request.force, policy=llm.policy, audit=state.trail(who))
    except CallQAError:
        state.metrics.record_llm("summary", result="error")
        raise
    state.metrics.record_llm("summary", result="cached" if result.cached else "ok", cost_usd=result.cost_usd,
                             input_tokens=result.usage.total_input_tokens, output_tokens=result.usage.output_tokens)
    return {"analysis": doc, "analysis_cached": cached, "summary": result.as_dict()}


def investigate_blocking(state: ApiState, call_id: str, who: Identity) -> dict[str, Any]:
    """The root-cause investigation of a stored call, recorded in the audit log."""
    from core.llm.investigate import investigate_call

    llm, client = _llm(state, "investigate")
    try:
        result = investigate_call(call_id, client=client, settings=llm.claude, calls=llm.calls, context=llm.context,
                                  repo=llm.repo, policy=llm.policy, audit=state.trail(who))
    except CallQAError:
        state.metrics.record_llm("investigate", result="error")
        raise
    state.metrics.record_llm("investigate", result="ok", cost_usd=result.cost_usd,
                             input_tokens=result.usage.total_input_tokens, output_tokens=result.usage.output_tokens)
    return result.as_dict()


def ask_blocking(state: ApiState, question: str, who: Identity) -> dict[str, Any]:
    """One chat question; the SQL tools only for a key with the admin role."""
    from core.llm.chat import Conversation, Notice, ToolCallFinished, TurnFinished, ask, shown_text

    llm, client = _llm(state, "chat")
    tools: list[dict[str, Any]] = []
    notices: list[str] = []
    final = None
    conversation = Conversation()
    toolbox = llm.toolbox(sql=who.can("sql_tool"), audit=state.trail(who))
    try:
        for event in ask(conversation, question, client=client, settings=llm.claude, toolbox=toolbox, repo=llm.repo):
            if isinstance(event, ToolCallFinished):
                o = event.outcome
                tools.append({"name": o.name, "input": o.input, "sql": o.sql, "is_error": o.is_error,
                              "row_count": o.row_count, "first_rows": list(o.preview), "error": o.error})
            elif isinstance(event, Notice):
                notices.append(event.message)
            elif isinstance(event, TurnFinished):
                final = event
    except CallQAError:
        state.metrics.record_llm("chat", result="error")
        raise
    assert final is not None  # ask() always ends with TurnFinished unless it raised
    state.metrics.record_llm("chat", result="ok", cost_usd=final.cost_usd,
                             input_tokens=final.usage.total_input_tokens, output_tokens=final.usage.output_tokens)
    return {"answer": shown_text(final.text, conversation), "tools": tools, "call_ids": list(final.call_ids),
            "notices": notices,
            "rounds": final.rounds, "input_tokens": final.usage.total_input_tokens,
            "output_tokens": final.usage.output_tokens, "cost_usd": final.cost_usd}
