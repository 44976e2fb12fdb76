"""Retention on real stores (SQLite and PostgreSQL): old rows and cached recordings go, new ones stay,
a second run deletes nothing, a dry run changes nothing; the migration gives stored calls references."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from core.audit import AuditTrail, cli_identity, record_chat
from core.cli import main
from core.config import Settings
from core.errors import ConfigError
from core.fetch.cache import FetchCache
from core.retention import RetentionSettings, apply_retention, purged_on
from core.store import open_store
from core.store.schema import (
    ai_summaries,
    analysis_errors,
    audit_log,
    calls,
    chat_log,
    findings,
    purged_calls,
    side_overrides,
    tracks,
)
from core.store.store import utcnow
from tests.support.anthropic_stub import sample_analysis
from tests.support.postgres import pg_database, pg_url  # noqa: F401  (fixtures)

NOW = datetime.now().replace(microsecond=0)
OLD_CALLS = [f"{(NOW - timedelta(days=400 + i)):%Y%m%d-%H%M%S}_31255501{i:02d}" for i in range(7)]
NEW_CALLS = [f"{(NOW - timedelta(days=i)):%Y%m%d-%H%M%S}_77355501{i:02d}" for i in range(1, 4)]
POLICY = RetentionSettings.from_mapping({"analyses_days": 365, "summaries_days": 180, "chat_days": 30,
                                         "audio_cache_days": 7, "audit_days": 730, "batch_size": 3})
TABLES = (calls, tracks, findings, ai_summaries, analysis_errors, chat_log, audit_log, side_overrides)


def _fill(store, cache: FetchCache) -> None:
    for call_id in OLD_CALLS + NEW_CALLS:
        when = datetime.strptime(call_id[:15], "%Y%m%d-%H%M%S")
        store.save_analysis(sample_analysis(call_id), cache_key=f"key-{call_id}", source_kind="file",
                            source_ref=call_id, metadata={"call_time": when, "phone_number": call_id[-10:]})
        store.save_ai_summary(call_id, analysis_key=f"key-{call_id}", model="claude-haiku-5-5",
                              prompt_version="summary-v2", summary="s", verdict="v", severity="minor")
    store.save_error("20200101-000000_1234567890", cache_key="k", source_ref="x", reason="damaged")
    trail = AuditTrail(store, cli_identity(), "cli")
    for i in range(4):
        trail.record("audio.play", target=NEW_CALLS[0])
        record_chat(store, cli_identity(), source="cli", question=f"q{i}", answer="a", tools=[], cost_usd=0.0)
    now = utcnow()
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO side_overrides (call_id, agent_start_s, set_by, set_at) "
                          "VALUES (:c, 1.0, 'ann', :t)"), {"c": OLD_CALLS[0], "t": now})
        # ages: a summary of a new call written 200 days ago, old chat and audit entries, an old error
        conn.execute(update(ai_summaries).where(ai_summaries.c.call_id == NEW_CALLS[2])
                     .values(created_at=now - timedelta(days=200)))
        conn.execute(update(analysis_errors).values(created_at=now - timedelta(days=400)))
        conn.execute(update(chat_log).where(chat_log.c.question.in_(["q0", "q1"]))
                     .values(at=now - timedelta(days=31)))
        first = conn.execute(select(func.min(audit_log.c.id))).scalar()
        conn.execute(update(audit_log).where(audit_log.c.id == first).values(at=now - timedelta(days=800)))
    for i, days in enumerate((1, 3, 8, 30)):  # cached recordings last used that long ago
        tmp = cache.begin(f"http://rec/{i}.wav")
        tmp.write_bytes(b"RIFF" + bytes(1000 * (i + 1)))
        entry = cache.commit(f"http://rec/{i}.wav", tmp, name=f"{i}.wav", size_bytes=1000 * (i + 1) + 4)
        stamp = time.time() - days * 86400
        os.utime(entry.path.parent / "meta.json", (stamp, stamp))


def _counts(store) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in TABLES}


def _ids(store) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.execute(select(calls.c.call_id)).scalars())


@pytest.fixture(params=["sqlite", "postgresql"])
def setup(request, tmp_path: Path):
    url = str(tmp_path / "store.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    settings = Settings(raw={"recordings": {"cache_dir": str(tmp_path / "cache")}})
    store = open_store(url)
    cache = FetchCache(tmp_path / "cache", max_bytes=10**9)
    _fill(store, cache)
    yield store, settings, cache
    store.close()


def test_dry_run_counts_and_changes_nothing(setup) -> None:
    store, settings, cache = setup
    before, files = _counts(store), sorted(p.name for p in cache.root.rglob("*.wav"))
    report = apply_retention(store, settings, retention=POLICY, dry_run=True)
    assert report.deleted == {"calls": 7, "analysis_errors": 1, "dead_letters": 0, "summaries": 1, "chat": 2,
                              "audit": 1, "tombstones": 0, "audio_cache": 2}
    old_entries = [f.parent for f in cache.root.rglob("*.wav") if f.name in ("2.wav", "3.wav")]
    assert report.cache_bytes == sum(f.stat().st_size for d in old_entries for f in d.iterdir())  # file + meta.json
    assert _counts(store) == before and sorted(p.name for p in cache.root.rglob("*.wav")) == files
    assert store.get_watermark("privacy.tombstone_key") is None  # not even the tombstone key is made


def test_apply_deletes_exactly_the_old_rows_and_a_second_run_nothing(setup) -> None:
    store, settings, cache = setup
    report = apply_retention(store, settings, retention=POLICY)
    assert report.deleted == {"calls": 7, "analysis_errors": 1, "dead_letters": 0, "summaries": 1, "chat": 2,
                              "audit": 1, "tombstones": 0, "audio_cache": 2}
    assert _ids(store) == set(NEW_CALLS)
    with store.engine.connect() as conn:
        # the old calls' rows went with them (tracks, findings, their summaries, the side mark)
        for table in (tracks, findings, ai_summaries):
            kept = set(conn.execute(select(table.c.call_id).distinct()).scalars())
            assert kept <= set(NEW_CALLS), table.name
        assert conn.execute(select(func.count()).select_from(side_overrides)).scalar() == 0
        assert set(conn.execute(select(ai_summaries.c.call_id)).scalars()) == set(NEW_CALLS[:2])
        assert sorted(conn.execute(select(chat_log.c.question)).scalars()) == ["q2", "q3"]
        assert conn.execute(select(func.count()).select_from(purged_calls)).scalar() == 7
        stones = conn.execute(select(purged_calls.c.id_hash)).scalars().all()
    assert not any(c[-10:] in "".join(stones) for c in OLD_CALLS)  # tombstones keep no number
    assert sorted(p.name for p in cache.root.rglob("*.wav")) == ["0.wav", "1.wav"]
    # a deep link to a purged call can say so; a call that never existed is simply unknown
    assert purged_on(store, OLD_CALLS[3]) is not None
    assert purged_on(store, NEW_CALLS[0]) is None and purged_on(store, "20200101-000000_0000000000") is None

    again = apply_retention(store, settings, retention=POLICY)
    assert again.total == 0 and _ids(store) == set(NEW_CALLS)


def test_retention_settings_keep_the_audit_longest(tmp_path: Path) -> None:
    default = RetentionSettings()
    assert default.audit_days > max(getattr(default, name) for name in RetentionSettings.PERIODS)
    with pytest.raises(ConfigError, match="audit_days=100 must be the longest period"):
        RetentionSettings.from_mapping({"audit_days": 100})
    with pytest.raises(ConfigError, match="analyses_days=forever"):
        RetentionSettings.from_mapping({"analyses_days": 0, "audit_days": 730})
    forever = RetentionSettings.from_mapping({k: 0 for k in (*RetentionSettings.PERIODS, "audit_days")})
    with open_store(str(tmp_path / "s.db")) as store:
        store.save_analysis(sample_analysis(OLD_CALLS[0]), cache_key="k", source_kind="file", source_ref="x",
                            metadata={"call_time": datetime(2001, 1, 1)})
        report = apply_retention(store, Settings(), retention=forever)
        assert report.deleted == {} and _ids(store) == {OLD_CALLS[0]}  # 0 keeps everything


def test_cli_retention_apply(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "cli.db")
    config = tmp_path / "callqa.toml"
    config.write_text(f'[retention]\nanalyses_days = 365\nbatch_size = 2\n\n'
                      f'[recordings]\ncache_dir = {json.dumps(str(tmp_path / "cache"))}\n')
    with open_store(db) as store:
        _fill(store, FetchCache(tmp_path / "cache", max_bytes=10**9))
    assert main(["--config", str(config), "--store", db, "retention", "apply", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("would delete: 7 calls, 1 analysis errors") and "analyses: older than" in out
    assert main(["--config", str(config), "--store", db, "retention", "apply", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["deleted"]["calls"] == 7
    assert main(["--config", str(config), "--store", db, "retention", "apply", "--json"]) == 0
    assert sum(json.loads(capsys.readouterr().out)["deleted"].values()) == 0
    assert main(["--store", db, "audit", "--action", "retention.apply", "--json"]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [json.loads(r["detail"])["calls"] for r in runs] == [0, 7]  # each run is in the audit log


def test_migration_gives_every_stored_call_a_reference(tmp_path: Path) -> None:
    from alembic import command

    from core.store.engine import make_engine, normalize_url, write_transaction
    from core.store.migrations import alembic_config

    url = normalize_url(str(tmp_path / "old.db"))
    engine = make_engine(url)
    with write_transaction(engine) as conn:
        command.upgrade(alembic_config(conn), "0004")  # a store as the previous release left it
    with write_transaction(engine) as conn:
        for i in range(5):
            conn.execute(text(
                "INSERT INTO calls (call_id, cache_key, source_kind, source_ref, layout, duration_s, call_time, "
                "n_findings, severity_rank, finding_codes, dead_air_s, one_way, n_warnings, analysis_version, "
                "analyzed_at, analysis_json) VALUES (:c, 'k', 'file', 'x', 'channel', 1.0, :t, 0, 0, '', 0, 0, 0, "
                "'v', :t, '{}')"), {"c": f"20261107-08000{i}_555000000{i}", "t": datetime(2026, 11, 7)})
    engine.dispose()
    with open_store(str(tmp_path / "old.db")) as store, store.engine.connect() as conn:
        refs = conn.execute(select(calls.c.ref)).scalars().all()
    assert len(refs) == 5 and len(set(refs)) == 5 and all(r.startswith("ref-") and len(r) == 20 for r in refs)
