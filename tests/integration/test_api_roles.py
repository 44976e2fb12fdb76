"""API keys with roles, over real HTTP: a real ``callqa serve`` with three keys (viewer, analyst and
the main admin key), the corpus as the allowed folder and the Anthropic stub."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from core.audit import entries
from core.store import open_store
from tests.integration.test_api import ApiServer, start_server, stop_server
from tests.support.anthropic_stub import AnthropicStub, text_reply, tool_reply

ADMIN_KEY = "callqa-admin-key-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
ANALYST_KEY = "callqa-analyst-key-1b2c3d4e5f60718293a4b5c6d7e8f90"
VIEWER_KEY = "callqa-viewer-key-2c3d4e5f60718293a4b5c6d7e8f90a1"
CALL = "20261107-090628_2407982532"  # the dead-air call of the corpus


@dataclass
class Env:
    server: ApiServer
    stub: AnthropicStub
    corpus: Path
    base: Path

    def client(self, key: str) -> httpx.Client:
        return self.server.client(key=key)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Iterator[Env]:
    base = tmp_path_factory.mktemp("api-roles")
    with AnthropicStub() as stub:
        config = base / "callqa.toml"
        config.write_text(f"""
[api]
quality = false
allowed_roots = [{json.dumps(str(corpus_dir))}]

[access.api_keys]
qa_bot = "analyst"
wallboard = "viewer"

[claude]
base_url = {json.dumps(stub.base_url)}
timeout_s = 10.0
max_retries = 0
""")
        server = start_server(config, base, {"CALLQA_API_KEY": ADMIN_KEY, "CALLQA_API_KEY_QA_BOT": ANALYST_KEY,
                                             "CALLQA_API_KEY_WALLBOARD": VIEWER_KEY,
                                             "ANTHROPIC_API_KEY": stub.api_key})
        try:
            yield Env(server, stub, corpus_dir, base)
        finally:
            stop_server(server)


def _forbidden(response: httpx.Response, role: str) -> str:
    assert response.status_code == 403, response.text
    body = response.json()["error"]
    assert body["type"] == "access_denied"
    assert f"needs the {role} role" in body["message"]
    return body["message"]


def test_a_viewer_key_is_refused_on_analyze_and_the_ai_endpoints(env: Env) -> None:
    body = {"path": str(env.corpus / f"{CALL}-in.wav")}
    with env.client(VIEWER_KEY) as viewer:
        assert "you are viewer" in _forbidden(viewer.post("/analyze", json=body), "analyst")
        _forbidden(viewer.post("/ai-analyze", json=body), "analyst")
        _forbidden(viewer.post("/investigate", json={"call_id": CALL}), "analyst")
        _forbidden(viewer.post("/ask", json={"question": "Which call was worst?"}), "analyst")
        _forbidden(viewer.get("/calls", params={"source": "vicidial"}), "analyst")
        assert viewer.get("/ready").status_code in (200, 503)
    assert env.stub.message_requests() == []  # nothing reached Claude
    with env.client("not-a-key-at-all-0000000000000000") as stranger:
        assert stranger.post("/analyze", json=body).status_code == 401


def test_an_analyst_key_analyses_and_a_viewer_sees_the_calls_masked(env: Env) -> None:
    with env.client(ANALYST_KEY) as analyst:
        analysed = analyst.post("/analyze", json={"path": str(env.corpus / f"{CALL}-in.wav")})
        assert analysed.status_code == 200, analysed.text
        assert analysed.json()["call_id"] == CALL
        (row,) = analyst.get("/calls").json()["calls"]
        assert row["call_id"] == CALL
    with env.client(VIEWER_KEY) as viewer:
        listed = viewer.get("/calls")
        assert listed.status_code == 200
        (row,) = listed.json()["calls"]
    assert row["call_id"] == "20261107-090628_••••••••32" and "2407982532" not in listed.text
    assert row["mos_min"] is None or isinstance(row["mos_min"], float)  # the numbers are still there


def test_only_an_admin_key_gives_the_chat_its_sql_tools_and_asks_are_audited(env: Env) -> None:
    for key, sql in ((ANALYST_KEY, False), (ADMIN_KEY, True)):
        env.stub.script(tool_reply(("fleet_stats", {"group_by": "layout"})), text_reply("Only a few calls so far."))
        with env.client(key) as client:
            answer = client.post("/ask", json={"question": f"How are calls going? Call me on 312 555 0101 ({key[:12]})"})
        assert answer.status_code == 200, answer.text
        tools = {t["name"] for t in env.stub.message_requests()[-2].body["tools"]}
        assert ("query_store" in tools) is sql and {"search_calls", "get_call", "fleet_stats"} <= tools
        first = env.stub.message_requests()[-2].body["messages"][0]["content"]
        assert "312 555 0101" not in first and "[phone]" in first
    with open_store(str(env.base / "store.db")) as store:
        questions = entries(store, action="chat.question", oldest_first=True)
    assert [(q["actor"], q["source"], q["role"]) for q in questions] == [
        ("api:qa_bot", "api", "analyst"), ("api:main", "api", "admin")]
    assert all(q["remote"] == "127.0.0.1" for q in questions)
