"""The analyst chat end to end: streamed SSE from the stub, two tools in one round, append-only history."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from core.errors import LLMError
from core.llm.adapters import StoreCallReader, StoreSqlRunner, StoreSummaryRepository, sql_limits
from core.llm.chat import (
    Conversation,
    Notice,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
    TurnFinished,
    ask,
)
from core.llm.client import LLMTransientError, make_client
from core.llm.render import safe_markdown
from core.llm.tools import ToolBox
from tests.support.anthropic_stub import (
    CALL_NOISY,
    INJECTION,
    AnthropicStub,
    ErrorReply,
    StreamErrorReply,
    seed_store,
    stub_claude_settings,
    text_reply,
    tool_reply,
)

DAY = date(2026, 11, 7)
SQL = "SELECT call_id, agent, mos_min FROM calls WHERE worst_severity = 'critical' ORDER BY mos_min"


@pytest.fixture
def env(tmp_path: Path):
    store = seed_store(tmp_path / "callqa.db")
    with AnthropicStub() as stub:
        settings = stub_claude_settings(stub, app_base_url="https://qa.example.com/")
        toolbox = ToolBox(calls=StoreCallReader(store), runners=[
            StoreSqlRunner(store.engine.url.database, tables=settings.store_tables, limits=sql_limits(settings))])
        yield stub, settings, toolbox, StoreSummaryRepository(store), store
    store.close()


def _ask(env, conversation: Conversation, question: str, **settings_overrides):
    stub, settings, toolbox, repo, _ = env
    if settings_overrides:
        settings = stub_claude_settings(stub, **settings_overrides)
    client = make_client(settings, strict_validation=True)
    return list(ask(conversation, question, client=client, settings=settings, toolbox=toolbox, repo=repo, day=DAY))


def test_chat_calls_two_tools_and_streams_the_answer(env) -> None:
    stub, settings, toolbox, repo, store = env
    first = tool_reply(("search_calls", {"finding_code": "packet_loss", "limit": 5}), ("query_store", {"sql": SQL}),
                       text="Looking that up.", input_tokens=2000, output_tokens=80)
    answer = f"The worst call is {CALL_NOISY} (MOS 2.1, 25 dropouts). ![x](https://evil.example/p.png?d=1)"
    stub.script(first, text_reply(answer, input_tokens=3000, output_tokens=60))
    conversation = Conversation()
    events = _ask(env, conversation, "Which calls had packet loss?")

    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolCallStarted") > kinds.index("TextDelta")
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    finished = [e for e in events if isinstance(e, ToolCallFinished)]
    assert [e.name for e in started] == ["search_calls", "query_store"]
    assert started[1].sql == SQL
    search, sql = (f.outcome for f in finished)
    assert not search.is_error and {r["call_id"] for r in search.rows} >= {CALL_NOISY}
    assert not sql.is_error and (sql.sql or "").startswith(SQL) and sql.row_count == 2 and sql.preview[0]["call_id"]
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed == "Looking that up." + answer
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.rounds == 2 and done.stop_reason == "end_turn"
    assert CALL_NOISY in done.call_ids
    assert done.cost_usd == pytest.approx((5000 * 2.0 + 140 * 10.0) / 1e6)  # Sonnet 5.5 list price
    assert conversation.cost_usd == done.cost_usd
    assert [u["kind"] for u in store.llm_usage()] == ["chat"] and store.llm_usage()[0]["calls"] == 2

    # what the SDK sent: the thinking block and tool_use ids round-trip unchanged
    bodies = [r.body for r in stub.message_requests()]
    assert all(b["stream"] is True and b["model"] == "claude-sonnet-5-5" for b in bodies)
    assert [t["name"] for t in bodies[0]["tools"]] == ["search_calls", "get_call", "fleet_stats", "query_store"]
    assistant, results = bodies[1]["messages"][1], bodies[1]["messages"][2]
    assert assistant["content"][0] == first.content[0]  # thinking block with its signature
    assert [b for b in assistant["content"] if b["type"] == "tool_use"] == first.content[2:]
    assert [r["tool_use_id"] for r in results["content"]] == [b["id"] for b in first.content[2:]]
    assert all(r["type"] == "tool_result" and "is_error" not in r for r in results["content"])
    assert "tool_choice" not in bodies[1]

    # rendering for the UI: the image is gone, the call id links to the deep dive
    shown = safe_markdown(done.text, app_base_url=settings.app_base_url, known_ids=conversation.call_ids)
    assert "evil.example" not in shown.replace("[image removed: x]", "")
    assert f"[{CALL_NOISY}](https://qa.example.com/?call={CALL_NOISY})" in shown

    # a second question sends the first exchange back byte for byte (append-only history)
    stub.script(text_reply("No other calls."))
    before = json.dumps(conversation.messages)
    _ask(env, conversation, "Any others?")
    third = stub.message_requests()[-1].body
    assert len(json.loads(before)) == 4  # question, tool_use turn, tool results, answer
    assert json.dumps(third["messages"][:4]) == before
    assert third["messages"][4] == {"role": "user", "content": "Any others?"}
    assert len(conversation.messages) == 6


def test_tool_errors_are_returned_to_the_model(env) -> None:
    stub, *_ = env
    stub.script(tool_reply(("query_store", {"sql": "DELETE FROM calls"}), ("get_call", {"call_id": "nope"})),
                text_reply("I cannot do that."))
    events = _ask(env, Conversation(), "Delete everything")
    outcomes = [e.outcome for e in events if isinstance(e, ToolCallFinished)]
    assert [o.is_error for o in outcomes] == [True, True]
    assert "query refused" in (outcomes[0].error or "") and "not in the store" in (outcomes[1].error or "")
    results = stub.message_requests()[1].body["messages"][2]["content"]
    assert all(r["is_error"] is True for r in results)


def test_round_cap_forces_an_answer(env) -> None:
    stub, *_ = env
    stub.script(tool_reply(("fleet_stats", {"group_by": "agent"})), tool_reply(("fleet_stats", {"group_by": "day"})))
    conversation = Conversation()
    events = _ask(env, conversation, "Loop forever", max_tool_rounds=2)
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["fleet_stats"]  # second call not run
    assert any(isinstance(e, Notice) and "max_tool_rounds" in e.message for e in events)
    bodies = [r.body for r in stub.message_requests()]
    assert "tool_choice" not in bodies[0] and bodies[1]["tool_choice"] == {"type": "none"}
    last = conversation.messages[-1]
    assert last["role"] == "user" and last["content"][0]["is_error"] is True  # history stays valid


def test_injected_rows_reach_the_model_only_as_data(env) -> None:
    stub, *_ = env
    stub.script(tool_reply(("get_call", {"call_id": CALL_NOISY})), text_reply("Done."))
    events = _ask(env, Conversation(), f"Summarise {CALL_NOISY}")
    assert [e.name for e in events if isinstance(e, ToolCallStarted)] == ["get_call"]
    content = stub.message_requests()[1].body["messages"][2]["content"][0]["content"]
    assert "untrusted data" in content
    assert content.count("<tool_result>") == 1 and content.count("</tool_result>") == 1
    payload = json.loads(content.split("<tool_result>\n", 1)[1].rsplit("\n</tool_result>", 1)[0])
    assert payload["vicidial"]["sip_hangup_reason"] == INJECTION
    assert "full_name" not in payload["vicidial"] and payload["call_id"].startswith("ref-")
    assert len(stub.message_requests()) == 2  # the injected "DELETE" ran nothing


def test_api_failures_leave_the_conversation_unchanged(env) -> None:
    stub, *_ = env
    conversation = Conversation()
    stub.script(ErrorReply(429, "rate_limit_error", "slow", {"retry-after": "7"}))
    with pytest.raises(LLMTransientError, match=r"rate limit \(429\): retry in 7 s"):
        _ask(env, conversation, "Hello?")
    stub.script(StreamErrorReply(text="Partial ans", type="overloaded_error"))
    with pytest.raises(LLMError, match="529 overloaded"):
        _ask(env, conversation, "Hello?")
    assert conversation.messages == [] and conversation.cost_usd == 0
    stub.script(text_reply("Hello."))
    events = _ask(env, conversation, "Hello?")
    assert isinstance(events[-1], TurnFinished) and len(conversation.messages) == 2


def test_cli_ask_streams_and_reports_tools(env, monkeypatch, capsys) -> None:
    from core.cli import main

    stub, _, _, _, store = env
    for name in ("CALLQA_CONFIG", "CALLQA_VICIDIAL_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANTHROPIC_API_KEY", stub.api_key)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
    stub.script(tool_reply(("query_store", {"sql": SQL})), text_reply(f"Worst: {CALL_NOISY}."))
    assert main(["--store", store.engine.url.database, "ask", "Worst call?"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"Worst: {CALL_NOISY}."
    assert f"[tool] query_store: {SQL}" in captured.err and "[tool] -> 2 rows" in captured.err
    stub.script(text_reply("Nothing."))
    assert main(["--store", store.engine.url.database, "ask", "Anything?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"] == "Nothing." and out["tools"] == [] and out["cost_usd"] > 0
