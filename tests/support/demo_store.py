"""The full demo month, built and analysed once per test session (story and browser tests).

The demo is laid out as ``make run`` lays it out (``<data>/demo/recordings`` and
``<data>/demo/callqa.db``), so the dashboard started with ``CALLQA_DATA=<data>`` runs in demo
mode. It needs the real demo speech folder (the stories' MOS figures are about real speech):
without it these tests fail under CI=true and skip elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.shared import in_ci


def require_demo_speech() -> Path:
    """The demo speech folder; fail under CI=true, skip with a reason otherwise."""
    from core.demo.speech import SPEECH_ENV, speech_dir

    found = speech_dir()
    if found is None:
        message = (f"the demo speech folder was not found (demo-speech/ beside the project or in ../shared, "
                   f"or ${SPEECH_ENV}): the demo would fall back to espeak-ng")
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found


def build_demo_data(base: Path) -> Path:
    """Build and scan the demo into ``base/demo`` once (a marker says it is complete); return ``base``."""
    from core.config import Settings
    from core.demo import build_demo

    require_demo_speech()
    done = base / "demo.done"
    if done.is_file():
        return base
    demo = build_demo(Settings(), force=True, recordings_dir=base / "demo" / "recordings",
                      store_url=str(base / "demo" / "callqa.db"))
    assert demo.speech_source == "recorded"
    done.write_text("ok\n")
    return base
