"""NISQA on ONNX Runtime against the official outputs and against PyTorch; export, selection,
corruption, and an analysis that never imports torch.

A fresh export is made once into a temporary models folder (``python -m core.quality.manager
install``'s code path, checked against PyTorch on the golden clips); the golden and corpus
comparisons need ``../shared`` (they fail under CI=true without it, skip elsewhere).
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.audio.io import load_mono
from core.config import Settings
from core.errors import ModelUnavailableError
from core.quality import manager, nisqa_onnx
from core.quality.windows import plan_windows
from tests.support.shared import PROJECT_ROOT, corpus_calls

FIELDS = ("mos", "noisiness", "discontinuity", "coloration", "loudness")
COLUMNS = dict(zip(("mos_pred", "noi_pred", "dis_pred", "col_pred", "loud_pred"), FIELDS, strict=True))


def table(scores) -> np.ndarray:
    return np.array([[getattr(s, f) for f in FIELDS] for s in scores])


def settings_for(models_dir: Path, **quality: object) -> Settings:
    return Settings(raw={"paths": {"models_dir": str(models_dir)}, "quality": dict(quality)})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CALLQA_NISQA_WEIGHTS", "CALLQA_QUALITY_WEIGHTS", "CALLQA_MODELS", "CALLQA_CONFIG",
                 "CALLQA_QUALITY_THREADS", "CALLQA_QUALITY_BACKEND"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, golden_dir: Path) -> Path:
    """A models folder with the weights and a fresh, checked export (``nisqa.onnx`` + metadata)."""
    folder = tmp_path_factory.mktemp("models")
    shutil.copy(manager.weights_path(), folder / manager.WEIGHTS_FILE)
    result = manager.install_onnx(settings_for(folder), golden_dir=golden_dir)
    assert result.action == "exported" and "38 golden clips" in result.source
    assert (folder / "nisqa.onnx").is_file() and (folder / "nisqa.onnx.json").is_file()
    return folder


def copy_models(source: Path, target: Path, *, onnx: bool = True) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    names = [manager.WEIGHTS_FILE] + (["nisqa.onnx", "nisqa.onnx.json"] if onnx else [])
    for name in names:
        shutil.copy2(source / name, target / name)
    return target


# --- scores -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden(golden_dir: Path) -> tuple[list, np.ndarray]:
    with (golden_dir / "nisqa_reference.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 38
    clips = [load_mono(golden_dir / "clips" / row["file"]) for row in rows]
    reference = np.array([[float(row[c]) for c in COLUMNS] for row in rows])
    return [(c.samples, c.sample_rate) for c in clips], reference


def test_onnx_reproduces_the_official_golden_scores(exported: Path, golden) -> None:
    clips, reference = golden
    model = manager.get_quality_model(settings_for(exported), backend="onnx")
    ours = table(model.score_batch(clips))
    assert np.abs(ours - reference).max() < 1e-4


def test_onnx_and_torch_agree_on_the_golden_clips(exported: Path, golden) -> None:
    clips, _ = golden
    onnx = table(manager.get_quality_model(settings_for(exported), backend="onnx").score_batch(clips))
    torch = table(manager.get_quality_model(settings_for(exported), backend="torch").score_batch(clips))
    assert np.abs(onnx - torch).max() < 1e-4


def test_onnx_and_torch_agree_on_corpus_windows(exported: Path, corpus_dir: Path) -> None:
    calls = [c for c in corpus_calls() if c["layout"] == "channel"][:2]
    assert len(calls) == 2
    signals = []
    for call in calls:
        for key in ("in", "out"):
            clip = load_mono(corpus_dir / call["files"][key])
            # 10 s windows every 5 s: spans that share the legs' STFT, plus the end-aligned last one
            signals.append((clip.samples, clip.sample_rate, plan_windows(len(clip.samples), clip.sample_rate,
                                                                           window_s=10.0, hop_s=5.0)))
    onnx = manager.get_quality_model(settings_for(exported), backend="onnx").score_spans(signals)
    torch = manager.get_quality_model(settings_for(exported), backend="torch").score_spans(signals)
    assert [len(x) for x in onnx] == [len(s) for _, _, s in signals]
    for ours, theirs in zip(onnx, torch, strict=True):
        assert np.abs(table(ours) - table(theirs)).max() < 1e-4


# --- export -----------------------------------------------------------------------------------
def test_a_second_install_finds_the_export_present_and_leaves_it(exported: Path) -> None:
    onnx = exported / "nisqa.onnx"
    before = (onnx.stat().st_mtime_ns, manager.sha256_of(onnx))
    result = manager.install_onnx(settings_for(exported))
    assert result.action == "present"
    assert (onnx.stat().st_mtime_ns, manager.sha256_of(onnx)) == before
    meta = json.loads((exported / "nisqa.onnx.json").read_text())
    assert meta["weights_sha256"] == manager.WEIGHTS_SHA256
    assert (meta["format"], meta["opset"]) == (nisqa_onnx.EXPORT_FORMAT, nisqa_onnx.OPSET)
    assert meta["max_abs_diff"] < 1e-4


def test_install_command_exports_then_says_present(clean_env, exported: Path, tmp_path: Path) -> None:
    folder = copy_models(exported, tmp_path / "m", onnx=False)
    env = {**os.environ, "CALLQA_MODELS": str(folder)}
    cmd = [sys.executable, "-m", "core.quality.manager", "install"]
    first = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300)
    assert first.returncode == 0, first.stderr
    assert f"NISQA exported to ONNX at {folder / 'nisqa.onnx'} (max difference to PyTorch" in first.stdout
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=PROJECT_ROOT, timeout=300)
    assert second.returncode == 0, second.stderr
    assert f"NISQA ONNX export present at {folder / 'nisqa.onnx'} (matches the weights)" in second.stdout


def test_a_stale_export_is_replaced_by_install(exported: Path, tmp_path: Path) -> None:
    folder = copy_models(exported, tmp_path / "m")
    meta_path = folder / "nisqa.onnx.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = nisqa_onnx.EXPORT_FORMAT - 1
    meta_path.write_text(json.dumps(meta))
    assert manager.install_onnx(settings_for(folder)).action == "exported"
    assert json.loads(meta_path.read_text())["format"] == nisqa_onnx.EXPORT_FORMAT


# --- selection --------------------------------------------------------------------------------
def test_auto_picks_onnx_when_the_export_matches(clean_env, exported: Path, tmp_path: Path) -> None:
    folder = copy_models(exported, tmp_path / "m")
    assert manager.get_quality_model(settings_for(folder)).backend == "onnx"
    assert manager.get_quality_model(settings_for(folder, backend="torch")).backend == "torch"


def test_auto_falls_back_to_torch_without_the_export(clean_env, exported: Path, tmp_path: Path, caplog) -> None:
    folder = copy_models(exported, tmp_path / "m", onnx=False)
    with caplog.at_level(logging.DEBUG, logger="callqa.quality"):
        model = manager.get_quality_model(settings_for(folder))
    assert model.backend == "torch"
    assert "no ONNX export at" in caplog.text and "manager install" in caplog.text


def test_auto_falls_back_to_torch_when_the_export_is_for_other_weights(clean_env, exported, tmp_path) -> None:
    folder = copy_models(exported, tmp_path / "m")
    meta = json.loads((folder / "nisqa.onnx.json").read_text())
    meta["weights_sha256"] = "0" * 64
    (folder / "nisqa.onnx.json").write_text(json.dumps(meta))
    assert manager.get_quality_model(settings_for(folder)).backend == "torch"
    with pytest.raises(ModelUnavailableError, match="exported from other weights"):
        manager.get_quality_model(settings_for(folder), backend="onnx")


def test_backend_onnx_without_the_export_names_the_fix(clean_env, exported: Path, tmp_path: Path) -> None:
    folder = copy_models(exported, tmp_path / "m", onnx=False)
    with pytest.raises(ModelUnavailableError) as info:
        manager.get_quality_model(settings_for(folder, backend="onnx"))
    message = str(info.value)
    assert 'backend = "onnx"' in message and str(folder / "nisqa.onnx") in message
    assert "python -m core.quality.manager install" in message


@pytest.mark.parametrize("backend", ["auto", "onnx"])
def test_a_truncated_export_is_a_clear_error(clean_env, exported: Path, tmp_path: Path, backend: str) -> None:
    folder = copy_models(exported, tmp_path / "m")
    data = (folder / "nisqa.onnx").read_bytes()
    (folder / "nisqa.onnx").write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelUnavailableError, match=r"nisqa\.onnx: corrupt ONNX export .*manager install"):
        manager.get_quality_model(settings_for(folder, backend=backend))


def test_an_export_onnx_runtime_cannot_load_is_a_clear_error(clean_env, exported: Path, tmp_path: Path) -> None:
    # garbage whose metadata was rewritten to match it: the sha256 passes, onnxruntime refuses it
    folder = copy_models(exported, tmp_path / "m")
    (folder / "nisqa.onnx").write_bytes(b"not an onnx model" * 100)
    meta = json.loads((folder / "nisqa.onnx.json").read_text())
    meta["onnx_sha256"] = manager.sha256_of(folder / "nisqa.onnx")
    (folder / "nisqa.onnx.json").write_text(json.dumps(meta))
    with pytest.raises(ModelUnavailableError, match=r"nisqa\.onnx: ONNX Runtime cannot load the NISQA export"):
        manager.get_quality_model(settings_for(folder))


# --- the analysis path ------------------------------------------------------------------------
def test_analysing_a_corpus_leg_does_not_import_torch(exported: Path, corpus_dir: Path, tmp_path: Path) -> None:
    leg = corpus_dir / next(c for c in corpus_calls() if c["layout"] == "channel")["files"]["in"]
    code = ("import json, sys\n"
            "from core.cli import main\n"
            f"code = main(['analyze', {str(leg)!r}, '--json'])\n"
            "print(json.dumps({'code': code, 'torch': 'torch' in sys.modules}), file=sys.stderr)\n")
    env = {**os.environ, "CALLQA_NISQA_WEIGHTS": str(exported / manager.WEIGHTS_FILE),
           "CALLQA_DATA": str(tmp_path / "data"), "CALLQA_QUALITY_BACKEND": "auto"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stderr.strip().splitlines()[-1])
    assert status == {"code": 0, "torch": False}
    result = json.loads(done.stdout)
    assert result["quality_model"] == "nisqa-v2.0"
    assert all(leg["quality"] is not None for leg in result["legs"].values() if leg["speech"])
