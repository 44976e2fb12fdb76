"""A result store filled by scanning ../shared/corpus once per test session (app and browser tests)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

AGENTS = ("1001", "1002", "1003")
CAMPAIGNS = ("SALES", "SUPPORT")
SERVERS = ("10.10.10.11", "10.10.10.12")
CARRIERS = ("TELNYX", "BANDWIDTH")
#: Environment variables that would point the app elsewhere; unset for every app test.
FOREIGN_ENV = ("CALLQA_CONFIG", "CALLQA_STORE", "CALLQA_VICIDIAL_HOST", "CALLQA_VICIDIAL_PORT",
               "CALLQA_VICIDIAL_USER", "CALLQA_VICIDIAL_PASSWORD", "ANTHROPIC_API_KEY", "CALLQA_DASHBOARD_FOLDERS")


def corpus_metadata(index: int) -> dict[str, str]:
    """The ViciDial-like metadata given to the ``index``-th corpus call."""
    return {"agent": AGENTS[index % len(AGENTS)], "campaign": CAMPAIGNS[index % len(CAMPAIGNS)],
            "server_ip": SERVERS[index % len(SERVERS)], "carrier": CARRIERS[index % len(CARRIERS)]}


def build_corpus_store(base: Path, corpus: Path) -> Path:
    """Scan ``corpus`` into ``base/corpus.db`` once (a marker file says it is complete)."""
    from core.config import Settings
    from core.scan import run_scan
    from core.work import folder_items

    store = base / "corpus.db"
    done = base / "corpus.done"
    if done.is_file():
        return store
    base.mkdir(parents=True, exist_ok=True)
    store.unlink(missing_ok=True)
    items = [dataclasses.replace(item, metadata={**item.metadata, **corpus_metadata(i)})
             for i, item in enumerate(folder_items(corpus))]
    settings = Settings(raw={"paths": {"data_dir": str(base / "data")}})
    report = run_scan(settings, items, store_url=str(store), workers=2, quality=True, source=str(corpus))
    assert report.exit_code == 0, report.as_dict()
    done.write_text("ok\n")
    return store


