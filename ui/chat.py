"""Helpers of the Chat page (:mod:`pages.chat`): the transcript and one streamed turn."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.errors import CallQAError
from ui.errors import show_error


def render_chat_entry(entry: dict[str, Any], *, app_base_url: str = "", conversation: Any = None) -> None:
    """One stored chat message (user or assistant) inside its ``st.chat_message``; the call
    references in an answer are shown as the call ids they stand for (``conversation``)."""
    from core.llm.chat import shown_text
    from core.llm.render import safe_markdown

    with st.chat_message(entry["role"]):
        for tool in entry.get("tools", []):
            with st.expander(tool["label"], icon=":material/build:"):
                if tool.get("sql"):
                    st.code(tool["sql"], language="sql")
                if tool.get("error"):
                    st.caption(f":material/error: {tool['error']}")
        if entry["role"] == "user":
            st.text(entry["text"])
        else:
            text = shown_text(entry["text"], conversation) if conversation is not None else entry["text"]
            st.markdown(safe_markdown(text, app_base_url=app_base_url, known_ids=entry.get("call_ids", ())))
        for notice in entry.get("notices", []):
            st.caption(f":material/info: {notice}")
        if entry.get("cost_usd") is not None:
            st.caption(f"{entry.get('rounds', 1)} round(s) · ${entry['cost_usd']:.4f}")


def chat_turn(conversation: Any, question: str, services: Any, *, toolbox: Any) -> dict[str, Any] | None:
    """Ask one question and stream the answer into the current ``st.chat_message``; return the
    entry to keep in the transcript, or None when it failed (the error is shown).

    ``toolbox`` is the user's (:meth:`core.llm.adapters.LLMServices.toolbox`: the SQL tools for
    admins only, the audit trail). Call references in the answer are shown as call ids.
    """
    from core.llm.chat import (
        Notice,
        TextDelta,
        ToolCallFinished,
        ToolCallStarted,
        TurnFinished,
        ask,
        shown_text,
    )
    from core.llm.render import safe_markdown

    base = services.claude.app_base_url
    tools_box = st.container()
    placeholder = st.empty()
    text = ""
    tools: list[dict[str, Any]] = []
    notices: list[str] = []
    statuses: dict[str, Any] = {}
    final = None
    try:
        for event in ask(conversation, question, client=services.client(), settings=services.claude,
                         toolbox=toolbox, repo=services.repo):
            if isinstance(event, TextDelta):
                text += event.text
                placeholder.markdown(safe_markdown(shown_text(text, conversation), app_base_url=base) + " ▌")
            elif isinstance(event, ToolCallStarted):
                box: Any = tools_box.status(f"Running {event.name}…", expanded=False)
                if event.sql:
                    box.code(event.sql, language="sql")
                statuses[event.tool_use_id] = box
                tools.append({"id": event.tool_use_id, "label": event.name, "sql": event.sql})
            elif isinstance(event, ToolCallFinished):
                outcome = event.outcome
                label = (f"{outcome.name}: {outcome.error}" if outcome.is_error
                         else f"{outcome.name}: {outcome.row_count} row(s)")
                box = statuses.get(event.tool_use_id)
                if box is not None:
                    box.update(label=label, state="error" if outcome.is_error else "complete")
                for t in tools:
                    if t["id"] == event.tool_use_id:
                        t.update(label=label, sql=outcome.sql or t.get("sql"), error=outcome.error)
            elif isinstance(event, Notice):
                notices.append(event.message)
                st.caption(f":material/info: {event.message}")
            elif isinstance(event, TurnFinished):
                final = event
    except CallQAError as exc:
        placeholder.empty()
        show_error(exc)
        return None
    answer = final.text if final is not None else text
    ids = final.call_ids if final is not None else ()
    placeholder.markdown(safe_markdown(shown_text(answer, conversation), app_base_url=base, known_ids=ids))
    entry = {"role": "assistant", "text": answer, "tools": tools, "notices": notices, "call_ids": list(ids),
             "cost_usd": final.cost_usd if final is not None else None,
             "rounds": final.rounds if final is not None else 1}
    if entry["cost_usd"] is not None:
        st.caption(f"{entry['rounds']} round(s) · ${entry['cost_usd']:.4f}")
    return entry
