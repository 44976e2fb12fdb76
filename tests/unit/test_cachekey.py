"""The cache key: the same recordings and settings give the same key, any change gives another."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest

from core.audio.layout import CallFiles
from core.config import AnalysisConfig
from core.errors import AudioNotFoundError
from core.store.cachekey import cache_key


@pytest.fixture
def call(tmp_path, rng):
    files = {}
    for role in ("in", "out", "all"):
        path = tmp_path / "rec" / f"20261107-080000_5551234567-{role}.wav"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(rng.integers(0, 256, 3 * (1 << 20) // 2, dtype="uint8").tobytes())  # 1.5 MiB: > 1 chunk
        files[role] = path
    return CallFiles("20261107-080000_5551234567", files)


def key(call, cfg=None, quality="nisqa-v2.0", **kw):
    return cache_key(call, cfg or AnalysisConfig(), quality, analysis_version="0.1.0+a1", **kw)


def test_stable_and_hex(call):
    k = key(call)
    assert re.fullmatch(r"[0-9a-f]{64}", k)
    assert key(call) == k
    reordered = CallFiles(call.call_id, dict(reversed(list(call.files.items()))))
    assert key(reordered) == k  # role order, not dict order


def test_one_byte_changes_the_key(call):
    before = key(call)
    path = call.files["out"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    assert key(call) != before


def test_truncation_changes_the_key(call):
    before = key(call)
    path = call.files["in"]
    path.write_bytes(path.read_bytes()[:-1])
    assert key(call) != before


def test_moved_files_keep_the_key(call, tmp_path):
    copy_dir = tmp_path / "elsewhere"
    copy_dir.mkdir()
    moved = {role: shutil.copy(p, copy_dir / p.name) for role, p in call.files.items()}
    assert key(CallFiles(call.call_id, moved)) == key(call)


def test_roles_are_part_of_the_key(call):
    swapped = CallFiles(call.call_id, {"in": call.files["out"], "out": call.files["in"], "all": call.files["all"]})
    assert key(swapped) != key(call)
    assert key(CallFiles(call.call_id, {k: v for k, v in call.files.items() if k != "all"})) != key(call)


@pytest.mark.parametrize("change", [
    {"silence_min_s": 0.6},
    {"dead_air_min_s": 4.0},
    {"stereo_left": "caller"},
])
def test_thresholds_change_the_key(call, change):
    assert key(call, dataclasses.replace(AnalysisConfig(), **change)) != key(call)


def test_versions_and_layout_change_the_key(call):
    base = key(call)
    assert key(call, quality=None) != base
    assert key(call, quality="nisqa-v2.1") != base
    assert cache_key(call, AnalysisConfig(), "nisqa-v2.0", analysis_version="0.1.0+a2") != base
    assert key(call, layout="mixed") != base


def test_default_analysis_version_is_the_pipelines(call):
    from core.pipeline import ANALYSIS_VERSION

    assert cache_key(call, AnalysisConfig(), None) == cache_key(call, AnalysisConfig(), None,
                                                                analysis_version=ANALYSIS_VERSION)


def test_missing_file(call):
    call.files["out"].unlink()
    with pytest.raises(AudioNotFoundError, match="-out.wav"):
        key(call)
