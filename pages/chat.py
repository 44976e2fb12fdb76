"""Chat: ask Claude about calls, agents and carriers; it looks things up in the store and ViciDial."""

from __future__ import annotations

import streamlit as st

from ui import access, cached, chat, errors, state

st.title("Chat")
access.require("use_ai", action="the analyst chat")
if not cached.claude_configured():
    st.info(
        "**The chat needs a Claude API key.** Set `ANTHROPIC_API_KEY` in the environment of the dashboard, or add "
        "`ANTHROPIC_API_KEY = \"sk-ant-…\"` at the top of `.streamlit/secrets.toml` (see "
        "`.streamlit/secrets.toml.example`), then restart the app. The key is never shown here.\n\n"
        "Everything else — overview, lookup, deep dives, fleet trends — works without it.",
        icon=":material/key:")
    st.stop()

services = errors.call_or_stop(cached.get_llm_services, cached.store_url())
conversation = state.get(state.CHAT_CONVERSATION)
if conversation is None:
    from core.llm.chat import Conversation

    conversation = Conversation()
    state.put(state.CHAT_CONVERSATION, conversation)
transcript = state.get(state.CHAT_MESSAGES, [])

top = st.columns([4, 1])
top[0].caption(f"Model {services.claude.chat_model} · reads the result store"
               + (" and ViciDial" if services.context is not None else "")
               + f" · spent ${conversation.cost_usd:.4f} in this conversation")
if top[1].button("New conversation", icon=":material/refresh:", disabled=not transcript):
    state.drop(state.CHAT_CONVERSATION)
    state.drop(state.CHAT_MESSAGES)
    st.rerun()
if not transcript:
    st.caption("For example: *Which agents had the most one-way audio this week?* · "
               "*Why did the worst call of yesterday sound bad?* — Claude sees calls by opaque references, never "
               "phone numbers or names" + ("; your role adds the SQL tools." if access.can("sql_tool") else "."))

for entry in transcript:
    chat.render_chat_entry(entry, app_base_url=services.claude.app_base_url, conversation=conversation)

question = st.chat_input("Ask about calls, agents, carriers…")
if question:
    user = {"role": "user", "text": question}
    chat.render_chat_entry(user)
    with st.chat_message("assistant"):
        answer = chat.chat_turn(conversation, question, services, toolbox=services.toolbox(
            sql=access.can("sql_tool"), audit=access.trail()))
    if answer is not None:
        state.put(state.CHAT_MESSAGES, [*transcript, user, answer])
