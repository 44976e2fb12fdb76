"""Fuzz suite: mutated recordings through the real ``callqa analyze --json``, in-process.

Every case (:mod:`tests.support.mutations`: byte flips, truncations, wrong extensions, absurd
header fields, 0/8 channels, 0 Hz, one sample, NaN/inf/huge floats, 24-bit and float WAV, long
silence, DC, square waves, damaged MP3 frames and ID3 tags, hostile file names, a damaged leg
beside a good one) must end in exactly one of two ways, within :data:`TIME_BOUND_S`:

- exit 0, stdout one strict JSON document (no NaN/Infinity) of an analysis, stderr empty;
- a non-zero exit, stdout empty, stderr exactly one ``callqa: error:`` line that names a file
  of the case with its control characters escaped.

stdout/stderr are captured at the file-descriptor level, so anything a native decoder prints
counts. ``make test`` runs :data:`DEFAULT_CASES` cases; ``make fuzz`` runs 3,000
(``CALLQA_FUZZ_CASES``; ``CALLQA_FUZZ_SEED`` picks another deterministic set).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import pytest

from core.errors import escape_text
from tests.support.mutations import build_bases, make_case, write_case

DEFAULT_CASES = 320
CASES = int(os.environ.get("CALLQA_FUZZ_CASES", DEFAULT_CASES))
SEED = int(os.environ.get("CALLQA_FUZZ_SEED", "20261206"))
#: Longest a case may take (the slowest, 90 s of silence with NISQA on, takes ~1 s here).
TIME_BOUND_S = 60.0
#: One case in this many is analysed with NISQA on (it loads once per process).
QUALITY_EVERY = 4


@pytest.fixture(scope="module")
def bases() -> dict[str, tuple[str, bytes]]:
    return build_bases()


@pytest.fixture(scope="module", autouse=True)
def isolated_config(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No callqa.toml or CALLQA_* from the developer's shell reaches the in-process CLI."""
    config = tmp_path_factory.mktemp("fuzz-config") / "callqa.toml"
    config.write_text("")
    saved = {k: v for k, v in os.environ.items() if k.startswith("CALLQA_") and k not in ("CALLQA_FUZZ_CASES",
                                                                                           "CALLQA_FUZZ_SEED")}
    for k in saved:
        del os.environ[k]
    os.environ["CALLQA_CONFIG"] = str(config)
    yield
    del os.environ["CALLQA_CONFIG"]
    os.environ.update(saved)


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("index", range(CASES))
def test_mutated_recording_ends_in_json_or_one_error_line(index: int, bases, tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    from core.cli import main

    case = make_case(index, bases, seed=SEED)
    target = write_case(case, tmp_path / "call")
    args = ["analyze", "--json", str(target)]
    if index % QUALITY_EVERY:
        args.insert(2, "--no-quality")
    capfd.readouterr()
    started = time.monotonic()
    with warnings.catch_warnings(record=True) as caught:  # a Python warning would print on stderr
        warnings.simplefilter("always")
        code = main(args)
    elapsed = time.monotonic() - started
    out, err = capfd.readouterr()
    where = f"case {index} ({case.base}: {case.mutation}) -> exit {code}, {elapsed:.1f} s\nstderr: {err!r}"
    assert elapsed < TIME_BOUND_S, where
    assert not caught, f"{where}\nwarnings: {[str(w.message) for w in caught]}"
    if code == 0:
        assert err == "", where
        doc = _strict_json(out)
        assert doc["legs"] and doc["duration_s"] >= 0 and doc["call_id"], where
        assert all(leg["stats"]["peak_db"] is None or leg["stats"]["peak_db"] <= 0.01 for leg in doc["legs"].values()), where
    else:
        assert out == "", where
        lines = err.splitlines()
        assert len(lines) == 1 and err.endswith("\n"), where
        line = lines[0]
        assert line.startswith("callqa: error: "), where
        assert line.isprintable(), where
        assert any(escape_text(str(tmp_path / "call" / name)) in line or escape_text(name) in line
                   for name in case.files), where
