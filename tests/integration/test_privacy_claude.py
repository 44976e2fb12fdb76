"""What leaves the building: a summary, an investigation and a chat answer about stored calls send no
customer phone number, no lead or caller name and no call id holding a phone number to the Messages
API. Asserted on what the local Messages-API stub received from the real SDK, with a real SQLite
store and a real (throwaway) MariaDB ViciDial whose rows hold those numbers and names.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from core.audit import AuditTrail, cli_identity, entries
from core.llm.adapters import (
    StoreCallReader,
    StoreSqlRunner,
    StoreSummaryRepository,
    ViciDialContextReader,
    ViciDialSqlRunner,
)
from core.llm.batch import submit_batch
from core.llm.chat import Conversation, ToolCallFinished, TurnFinished, ask, shown_text
from core.llm.client import make_client
from core.llm.guardrails import SqlLimits
from core.llm.investigate import investigate_call
from core.llm.settings import DEFAULT_STORE_TABLES, DEFAULT_VICIDIAL_TABLES
from core.llm.summary import summarize_call
from core.llm.tools import ToolBox
from tests.support.anthropic_stub import (
    AGENT_NAME,
    CALL_CLEAN,
    CALL_NOISY,
    CALL_THIRD,
    AnthropicStub,
    json_reply,
    seed_store,
    stub_claude_settings,
    text_reply,
    tool_reply,
    valid_summary,
)
from tests.support.vicidial_fixture import INJECTION_FULL_NAME, vicidial_database

DAY = date(2026, 11, 7)
CALLER_NAME = "MARGARET HAMILTON"  # the inbound caller's name, as the carrier sent it (vicidial_did_log)
LEAD = {"first_name": "Margaret", "last_name": "Hamilton", "email": "m.hamilton@example.com",
        "address1": "12 Elm Street"}
INVESTIGATION = {"root_cause": "Carrier loss.", "narrative": "The caller leg had holes.", "evidence": [],
                 "next_steps": ["Check the trunk"], "confidence": "low"}


@pytest.fixture(scope="module")
def vicidial():
    with vicidial_database() as fixture:
        conn = fixture.admin()
        with conn.cursor() as cur:  # the inbound conference call's DID entry, with the caller's name
            cur.execute("INSERT INTO vicidial_did_log (uniqueid, channel, server_ip, caller_id_number, caller_id_name, "
                        "extension, call_date, did_id, did_route) VALUES ('1794048356.80021', "
                        "'SIP/carrierB-0000d001', '10.10.10.12', '8228237954', %s, '8005551000', "
                        "'2026-11-07 10:45:46', '7', 'IN_GROUP')", (CALLER_NAME,))
        conn.commit()
        conn.close()
        yield fixture


@pytest.fixture
def store(tmp_path: Path):
    s = seed_store(tmp_path / "callqa.db")
    s.save_analysis(_third(), cache_key="third-" + "0" * 58, source_kind="vicidial", source_ref="9200003",
                    metadata={"recording_id": 9200003, "agent": "6007", "campaign": "SUPPORT_IN",
                              "call_time": "2026-11-07 10:46:10", "phone_number": "8228237954",
                              "full_name": "Kevin Osei", **LEAD})
    yield s
    s.close()


def _third():
    from tests.support.anthropic_stub import sample_analysis

    return sample_analysis(CALL_THIRD)


def _forbidden(vicidial) -> set[str]:
    """Every customer number, caller and agent name and call id the fixture and the store hold."""
    conn = vicidial.admin()
    found: set[str] = {CALL_NOISY, CALL_CLEAN, CALL_THIRD, CALLER_NAME, AGENT_NAME, INJECTION_FULL_NAME,
                       *LEAD.values(), "Hamilton", "hamilton"}
    with conn.cursor() as cur:
        for table, column in (("vicidial_log", "phone_number"), ("vicidial_closer_log", "phone_number"),
                              ("vicidial_did_log", "caller_id_number"), ("vicidial_did_log", "caller_id_name"),
                              ("vicidial_users", "full_name"), ("recording_log", "filename")):
            cur.execute(f"SELECT DISTINCT {column} AS v FROM {table} WHERE {column} IS NOT NULL")
            found |= {str(r["v"]) for r in cur.fetchall() if str(r["v"]).strip()}
    conn.close()
    for call_id in (CALL_NOISY, CALL_CLEAN, CALL_THIRD):
        found.add(call_id.split("_")[1])
    return {f for f in found if len(f) >= 4}


def _sent(stub) -> str:
    """Everything the SDK sent to the Messages API (every request body), as one text."""
    return "\n".join(json.dumps(r.body, ensure_ascii=False) for r in stub.requests if r.body is not None)


def _assert_nothing_personal(stub, forbidden: set[str]) -> None:
    sent = _sent(stub)
    leaked = sorted(f for f in forbidden if f in sent)
    assert not leaked, [sent[max(0, sent.find(f) - 80):sent.find(f) + 40] for f in leaked]


def test_summary_sends_a_reference_and_no_personal_data(vicidial, store) -> None:
    calls = StoreCallReader(store)
    with AnthropicStub() as stub:
        settings = stub_claude_settings(stub)
        stub.script(json_reply(valid_summary()))
        trail = AuditTrail(store, cli_identity(), "cli")
        summarize_call(CALL_THIRD, client=make_client(settings), settings=settings, calls=calls,
                       repo=StoreSummaryRepository(store), day=DAY, audit=trail)
        stub.batch_handler = lambda cid, params: json_reply(valid_summary())
        submit_batch([CALL_NOISY, CALL_CLEAN], client=make_client(settings), settings=settings, calls=calls,
                     repo=StoreSummaryRepository(store), day=DAY)
        _assert_nothing_personal(stub, _forbidden(vicidial))
        user = stub.message_requests()[0].body["messages"][0]["content"]
    ref = calls.get_call(CALL_THIRD).ref
    assert f'summary of call "{ref}"' in user and ref in user
    assert "SUPPORT_IN" in user and "6007" in user  # what the summary needs is still there
    (audited,) = entries(store, action="summary")
    assert audited["target"] == CALL_THIRD and audited["actor"].startswith("cli:")


def test_investigation_sends_redacted_vicidial_rows(vicidial, store) -> None:
    calls = StoreCallReader(store)
    with AnthropicStub() as stub:
        settings = stub_claude_settings(stub)
        stub.script(json_reply({**INVESTIGATION, "narrative": f"Call {calls.get_call(CALL_THIRD).ref} had holes."}))
        result = investigate_call(CALL_THIRD, client=make_client(settings), settings=settings, calls=calls,
                                  context=ViciDialContextReader(vicidial.settings), repo=StoreSummaryRepository(store),
                                  day=DAY, audit=AuditTrail(store, cli_identity(), "cli"))
        _assert_nothing_personal(stub, _forbidden(vicidial))
        user = stub.message_requests()[0].body["messages"][0]["content"]
    facts = json.loads(user.split("<call_data>\n", 1)[1].rsplit("\n</call_data>", 1)[0])
    rows = facts["vicidial_rows"]
    (did,) = rows["vicidial_did_log"]
    assert did["caller_id_name"] == "[withheld]" and did["caller_id_number"] == "[withheld]"
    assert did["channel"] == "SIP/carrierB-0000d001" and did["uniqueid"] == "1794048356.80021"  # evidence stays
    assert rows["vicidial_closer_log"][0]["status"] == "RESOLV"
    assert rows["recording_log"][0]["filename"] == "[withheld]"
    assert result.narrative == f"Call {CALL_THIRD} had holes."  # the analyst reads the call id again
    assert entries(store, action="investigate")[0]["target"] == CALL_THIRD


def test_chat_question_tools_and_sql_send_no_personal_data(vicidial, store, tmp_path: Path) -> None:
    calls = StoreCallReader(store)
    ref = calls.get_call(CALL_THIRD).ref
    limits = SqlLimits(max_rows=50)
    db = store.engine.url.database
    runners = [StoreSqlRunner(db, tables=DEFAULT_STORE_TABLES, limits=limits),
               ViciDialSqlRunner(vicidial.settings, tables=DEFAULT_VICIDIAL_TABLES, limits=limits)]
    trail = AuditTrail(store, cli_identity(), "cli")
    toolbox = ToolBox(calls=calls, runners=runners, audit=trail)
    conversation = Conversation()
    with AnthropicStub() as stub:
        settings = stub_claude_settings(stub, max_tool_rounds=8)
        stub.script(
            tool_reply(("search_calls", {"since": "2026-11-07"})),
            tool_reply(("get_call", {"call_id": ref})),
            tool_reply(("query_store", {"sql": "SELECT * FROM calls"}),
                       ("query_vicidial", {"sql": "SELECT * FROM vicidial_did_log"}),
                       ("query_vicidial", {"sql": "SELECT * FROM vicidial_closer_log"})),
            tool_reply(("query_vicidial", {"sql": "SELECT caller_id_name AS n FROM vicidial_did_log"}),
                       ("query_store", {"sql": "SELECT substr(call_id, 17) AS p FROM calls"}),
                       ("query_vicidial", {"sql": "SELECT channel, extension FROM call_log"})),
            text_reply(f"The worst call is {ref}: packet loss on the caller leg."),
        )
        question = (f"Why did call {CALL_THIRD} sound bad? Margaret called back from +1 822 823 7954 and "
                    f"m.hamilton@example.com wrote to us.")
        events = list(ask(conversation, question, client=make_client(settings), settings=settings,
                          toolbox=toolbox, repo=StoreSummaryRepository(store), day=DAY))
        _assert_nothing_personal(stub, _forbidden(vicidial) - {"Margaret"})
        first = stub.message_requests()[0].body["messages"][0]["content"]
    assert first == f"Why did call {ref} sound bad? Margaret called back from [phone] and [email] wrote to us."
    outcomes = [e.outcome for e in events if isinstance(e, ToolCallFinished)]
    refused = [o for o in outcomes if o.is_error]
    assert [o.input["sql"][:40] for o in refused] == ["SELECT caller_id_name AS n FROM vicidial",
                                                      "SELECT substr(call_id, 17) AS p FROM cal"]
    did = next(o for o in outcomes if o.sql and "vicidial_did_log" in o.sql and not o.is_error)
    assert did.rows and did.rows[-1]["caller_id_name"] == CALLER_NAME  # the UI's rows are not redacted...
    assert CALLER_NAME not in did.content  # ...what the model read is
    final = events[-1]
    assert isinstance(final, TurnFinished) and ref in final.text
    assert shown_text(final.text, conversation) == f"The worst call is {CALL_THIRD}: packet loss on the caller leg."
    audited = [(e["action"], e["target"]) for e in entries(store, oldest_first=True)]
    assert audited[0] == ("chat.question", None)
    assert audited.count(("chat.sql", "vicidial")) == 4 and audited.count(("chat.sql", "store")) == 2
    sql_details = [e["detail"] for e in entries(store, action="chat.sql")]
    assert "SELECT caller_id_name AS n FROM vicidial_did_log" in sql_details  # refused ones are recorded too
