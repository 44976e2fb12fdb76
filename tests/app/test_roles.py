"""What each role sees, as the app renders it (AppTest). Open mode with ``[access] open_role`` gives
every session one role, which is how these tests choose it."""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

import pytest
from streamlit.testing.v1 import AppTest

from core.llm.chat import TurnFinished
from core.llm.client import TokenUsage
from tests.app.conftest import APP, TIMEOUT_S

WORST = "overview.worst_table"
CALL = "20261107-083314_2985954634"
MASKED = re.compile(r"\d{8}-\d{6}_•+\d{2}")


@pytest.fixture
def role(monkeypatch: pytest.MonkeyPatch):
    def set_role(name: str) -> None:
        monkeypatch.setenv("CALLQA_ACCESS_OPEN_ROLE", name)

    return set_role


PAGE_TITLES = {"overview.py": "Overview", "lookup.py": "Call lookup", "deep_dive.py": "Deep dive",
               "fleet.py": "Fleet trends", "chat.py": "Chat", "settings.py": "Settings & health",
               "audit.py": "Audit log"}


def _pages(at: AppTest) -> list[str]:
    """The pages the navigation registered for this session's role (in order)."""
    files = [Path(str(info.get("script_path"))).name for info in at._registered_pages.values()]
    return [PAGE_TITLES[f] for f in files if f in PAGE_TITLES]


def test_a_viewer_sees_masked_numbers_and_no_recordings(role, open_page, select_row, all_text, call_ids):
    role("viewer")
    at = open_page()
    assert _pages(at) == ["Overview", "Call lookup", "Deep dive", "Fleet trends"]
    worst = at.dataframe(key=WORST).value
    assert all(MASKED.fullmatch(c) for c in worst["call_id"]), list(worst["call_id"])
    phones = {c.split("_")[1] for c in call_ids}
    assert not any(p in all_text(at) for p in phones)
    select_row(at, WORST, 0)
    assert at.query_params["call"].startswith("ref-")  # the link names the call without its number
    assert MASKED.fullmatch(at.title[0].value)
    assert not at.get("audio") and not any(s.value == "AI summary" for s in at.subheader)
    assert any("need the analyst role (you are viewer)" in c.value for c in at.caption)
    text = all_text(at)
    assert not any(p in text for p in phones)


def test_a_viewer_is_refused_pages_and_sources_it_lacks(role, open_page):
    role("viewer")
    at = open_page()
    with pytest.raises(ValueError):  # not registered for this role
        at.switch_page("pages/chat.py")
    for page in ("pages/settings.py", "pages/chat.py", "pages/audit.py"):
        direct = AppTest.from_file(str(APP).replace("app.py", page), default_timeout=TIMEOUT_S)
        direct.run()  # the page on its own, as Streamlit's legacy handling may run it
        assert any("needs the" in e.value and "(you are viewer)" in e.value for e in direct.error), page
        assert not direct.chat_input and not direct.get("audio")
    lookup = open_page("pages/lookup.py")
    assert lookup.segmented_control(key="lookup.source").options == ["Result store"]


def test_an_analyst_hears_the_call_and_chats_without_sql(role, open_page, monkeypatch):
    role("analyst")
    at = open_page(call=CALL)
    assert at.title[0].value == CALL and len(at.get("audio")) == 2
    assert "Chat" in _pages(at) and "Settings & health" not in _pages(at) and "Audit log" not in _pages(at)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    seen = {}

    def fake_ask(conversation, question, *, toolbox, **kwargs):
        seen["tools"] = toolbox.names
        yield TurnFinished(text="Nothing.", stop_reason="end_turn", rounds=1, usage=TokenUsage(), cost_usd=0.0,
                           call_ids=())

    with mock.patch("core.llm.chat.ask", fake_ask):
        chat = open_page("pages/chat.py")
        chat.chat_input[0].set_value("How are things?").run()
    assert not chat.exception
    assert seen["tools"] == ("search_calls", "get_call", "fleet_stats")  # the SQL tools are for admins


def test_an_admin_gets_the_sql_tools_and_the_audit_page(role, open_page, monkeypatch):
    role("admin")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key")
    seen = {}

    def fake_ask(conversation, question, *, toolbox, **kwargs):
        seen["tools"] = toolbox.names
        yield TurnFinished(text="Nothing.", stop_reason="end_turn", rounds=1, usage=TokenUsage(), cost_usd=0.0,
                           call_ids=())

    with mock.patch("core.llm.chat.ask", fake_ask):
        chat = open_page("pages/chat.py")
        chat.chat_input[0].set_value("How are things?").run()
    assert "query_store" in seen["tools"]
    audit = open_page("pages/audit.py")
    assert audit.title[0].value == "Audit log" and not audit.exception


def test_a_deep_link_to_a_purged_call_says_so(open_page, monkeypatch, tmp_path, corpus_store, call_ids):
    import shutil

    from core.config import Settings
    from core.retention import RetentionSettings, apply_retention
    from core.store import open_store

    copy = tmp_path / "store.db"
    shutil.copy(corpus_store, copy)
    monkeypatch.setenv("CALLQA_STORE", str(copy))
    keep_nothing = RetentionSettings.from_mapping({"analyses_days": 1, "summaries_days": 1, "chat_days": 1,
                                                   "audio_cache_days": 1, "audit_days": 2})
    with open_store(str(copy)) as store:
        assert apply_retention(store, Settings(), retention=keep_nothing).deleted["calls"] == len(call_ids)
    at = open_page(call=call_ids[0])
    assert any(w.value.startswith("**This call was deleted on ") and "retention" in w.value for w in at.warning)
    assert not at.get("audio")
    unknown = open_page(call="20991231-000000_0000000000")
    assert any(w.value.startswith("**Call not found**") for w in unknown.warning)


CONFERENCE = "20261107-104610_8228237954"  # a mix split into two sides by voice


def test_marking_the_agent_side_needs_the_analyst_role_and_is_audited(role, open_page, monkeypatch, tmp_path,
                                                                       corpus_store):
    import shutil

    from core.audit import entries
    from core.store import open_store

    copy = tmp_path / "store.db"
    shutil.copy(corpus_store, copy)
    monkeypatch.setenv("CALLQA_STORE", str(copy))
    role("viewer")
    viewer = open_page(call=CONFERENCE)
    assert not [b for b in viewer.button if b.key and b.key.startswith("deep.mark_agent.")]
    role("analyst")
    at = open_page(call=CONFERENCE)
    buttons = [b for b in at.button if b.key and b.key.startswith("deep.mark_agent.")]
    assert buttons
    buttons[-1].click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    with open_store(str(copy)) as store:
        (marked,) = entries(store, action="side.mark")
        with store.engine.connect() as conn:
            set_by = conn.exec_driver_sql("SELECT set_by FROM side_overrides WHERE call_id = ?", (CONFERENCE,)).scalar()
    assert (marked["actor"], marked["role"], marked["target"]) == ("anonymous", "analyst", CONFERENCE)
    assert set_by == "anonymous"
