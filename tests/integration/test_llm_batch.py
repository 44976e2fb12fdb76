"""Bulk summaries through the Message Batches API: submit, persist, poll, collect, resume after a crash."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from core.cli import main
from core.llm.adapters import StoreCallReader, StoreSummaryRepository
from core.llm.batch import collect_batch, custom_id_for, resume_batches, split_custom_id, submit_batch
from core.llm.client import make_client
from core.llm.summary import PROMPT_VERSION, summarize_call
from core.store import open_store
from tests.support.anthropic_stub import (
    CALL_CLEAN,
    CALL_NOISY,
    CALL_THIRD,
    AnthropicStub,
    ErrorReply,
    json_reply,
    sample_analysis,
    seed_store,
    stub_claude_settings,
    valid_summary,
)

DAY = date(2026, 11, 7)
SINCE = datetime(2026, 11, 7)


def _results_failing(failing_ref: str):
    """Batch outcomes: the call with reference ``failing_ref`` errors, the others succeed."""

    def outcome(custom_id: str, params: dict):
        ref, _ = split_custom_id(custom_id)
        if ref == failing_ref:
            return ErrorReply(500, "overloaded_error", "overloaded")
        return json_reply(valid_summary(severity="major"), input_tokens=1000, output_tokens=100)

    return outcome


def test_batch_submit_crash_resume_collect(tmp_path: Path) -> None:
    db = tmp_path / "callqa.db"
    store = seed_store(db)
    with AnthropicStub(batch_polls=1) as stub:
        settings = stub_claude_settings(stub)
        client = make_client(settings, strict_validation=True)
        repo, calls = StoreSummaryRepository(store), StoreCallReader(store)
        stub.batch_handler = _results_failing(calls.get_call(CALL_CLEAN).ref)
        # one call is already summarised synchronously: it is not resubmitted
        stub.script(json_reply(valid_summary()))
        summarize_call(CALL_THIRD, client=client, settings=settings, calls=calls, repo=repo, day=DAY)

        ids = calls.call_ids_between(since=SINCE, until=None, limit=10)
        sub = submit_batch(ids + ["no-such-call"], client=client, settings=settings, calls=calls, repo=repo, day=DAY)
        assert sorted(sub.submitted) == sorted([CALL_NOISY, CALL_CLEAN])
        assert sub.already_summarised == (CALL_THIRD,) and sub.skipped == (("no-such-call", "not in the store"),)
        assert sub.batch_id is not None
        assert (store.get_llm_batch(sub.batch_id) or {})["status"] == "in_progress"
        (create,) = [r for r in stub.requests if r.path == "/v1/messages/batches"]
        requests = create.body["requests"]
        assert {r["custom_id"] for r in requests} == {custom_id_for(calls.get_call(c)) for c in sub.submitted}
        sent = json.dumps(create.body)
        assert all(r["custom_id"].startswith("ref-") for r in requests)
        assert CALL_NOISY not in sent and CALL_CLEAN not in sent and CALL_NOISY[-10:] not in sent  # no phone sent
        assert all(r["params"]["model"] == "claude-haiku-5-5" and "output_config" in r["params"] for r in requests)

        # the process "crashes" here; the call is re-analysed meanwhile (its summary would be stale)
        store.close()
        store = open_store(str(db))
        repo, calls = StoreSummaryRepository(store), StoreCallReader(store)
        assert [b.batch_id for b in repo.open_batches()] == [sub.batch_id]

        first = resume_batches(client=client, settings=settings, calls=calls, repo=repo)
        assert [o.status for o in first] == ["in_progress"]  # the stub ends the batch at the next poll
        second = resume_batches(client=client, settings=settings, calls=calls, repo=repo)
        (outcome,) = second
        assert outcome.status == "collected"
        assert outcome.stored == (CALL_NOISY,)
        assert [c for c, _ in outcome.failed] == [CALL_CLEAN] and "errored" in outcome.failed[0][1]
        # 1000 in + 100 out at half the Haiku price
        assert outcome.cost_usd == pytest.approx((1000 * 0.10e-6 + 100 * 0.50e-6) * 0.5)
        noisy = calls.get_call(CALL_NOISY)
        saved = repo.get_summary(CALL_NOISY, analysis_key=noisy.analysis_key, model="claude-haiku-5-5",
                                 prompt_version=PROMPT_VERSION)
        assert saved is not None and saved.severity == "major"
        assert (store.get_llm_batch(sub.batch_id) or {})["status"] == "collected"
        assert repo.open_batches() == []
        usage = {(u["kind"]): u for u in store.llm_usage()}
        assert usage["summary-batch"]["calls"] == 1

        # collecting again (e.g. after a crash before the status update) stores nothing twice
        spend = store.llm_spend_usd(DAY)
        again = collect_batch(sub.batch_id, client=client, settings=settings, calls=calls, repo=repo, day=DAY)
        assert again.stored == () and again.already_stored == (CALL_NOISY,)
        assert store.llm_spend_usd(DAY) == pytest.approx(spend)
    store.close()


def test_results_of_a_reanalysed_call_are_dropped_as_stale(tmp_path: Path) -> None:
    store = seed_store(tmp_path / "callqa.db")
    with AnthropicStub(batch_polls=0) as stub:
        settings = stub_claude_settings(stub)
        client = make_client(settings)
        repo, calls = StoreSummaryRepository(store), StoreCallReader(store)
        stub.batch_handler = lambda cid, params: json_reply(valid_summary())
        sub = submit_batch([CALL_NOISY], client=client, settings=settings, calls=calls, repo=repo, day=DAY)
        assert sub.batch_id is not None
        store.save_analysis(sample_analysis(CALL_NOISY), cache_key="f" * 64, source_kind="file", source_ref="x")
        outcome = collect_batch(sub.batch_id, client=client, settings=settings, calls=calls, repo=repo, day=DAY)
    assert outcome.stale == (CALL_NOISY,) and outcome.stored == ()
    assert store.get_ai_summary(CALL_NOISY) is None
    store.close()


def test_cli_summarize_since_batch(tmp_path: Path, monkeypatch, capsys) -> None:
    store = seed_store(tmp_path / "callqa.db")
    db = store.engine.url.database
    store.close()
    config = tmp_path / "callqa.toml"
    config.write_text("[claude]\nbatch_poll_s = 0.01\nbatch_wait_s = 5\n")
    with AnthropicStub(batch_polls=2) as stub:
        stub.batch_handler = lambda cid, params: json_reply(valid_summary(severity="minor"))
        monkeypatch.setenv("ANTHROPIC_API_KEY", stub.api_key)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", stub.base_url)
        code = main(["--config", str(config), "--store", db, "summarize", "--since", "2026-11-07",
                     "--until", "2026-11-08", "--batch", "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0, out
        assert out["submission"]["submitted"] == 3
        assert out["outcome"]["status"] == "collected" and out["outcome"]["stored"] == 3
        assert stub.api_key not in json.dumps(out)
        code = main(["--config", str(config), "--store", db, "summarize", "--resume", "--json"])
        assert code == 0 and json.loads(capsys.readouterr().out) == {"batches": []}
