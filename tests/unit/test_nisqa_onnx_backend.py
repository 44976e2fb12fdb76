"""NISQA on ONNX Runtime: the torch-free front end, the export's building blocks, the graph's
padding, and the ``[quality] backend`` setting.

The model tests use the installed export (``make models`` runs ``python -m core.quality.manager
install``, which writes ``models/nisqa.onnx``); the golden and corpus comparisons with PyTorch are
in ``tests/integration/test_nisqa_onnx.py`` (this file has another name: pytest imports test files by basename).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from core.config import Settings
from core.errors import ConfigError
from core.quality import nisqa_frontend, nisqa_onnx
from core.quality.manager import QualitySettings, get_quality_model
from tests.support.shared import PROJECT_ROOT


def tones(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * (300 + 100 * seed) * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return (tone + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


# --- torch stays out -------------------------------------------------------------------------
def test_the_front_end_and_the_onnx_model_do_not_import_torch() -> None:
    code = ("import sys; import core.quality.nisqa_frontend, core.quality.nisqa_onnx, core.quality.manager; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_nonempty_bands_are_numpy() -> None:
    bands, weights = nisqa_frontend._nonempty_bands(8000)
    assert isinstance(weights, np.ndarray) and weights.dtype == np.float32
    assert len(bands) == 30 and weights.shape == (2049, 30)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 48000])
def test_mel_product_by_layers_equals_the_dense_filterbank(rate: int, rng: np.random.Generator) -> None:
    magnitude = rng.random((37, 2049), dtype=np.float32) * 10
    out = np.zeros((48, 37), dtype=np.float32)
    nisqa_frontend._mel_product(magnitude, rate, out)
    want = nisqa_frontend.mel_filterbank(rate).astype(np.float64) @ magnitude.T.astype(np.float64)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


# --- the export's building blocks --------------------------------------------------------------
def test_static_adaptive_pooling_equals_torch() -> None:
    torch = pytest.importorskip("torch")
    from core.quality.nisqa_export import _adaptive_max_pool

    x = torch.randn(5, 3, 48, 15)
    for size_in, size_out in [((48, 15), (24, 7)), ((24, 7), (12, 5)), ((12, 5), (6, 3))]:
        part = x[:, :, : size_in[0], : size_in[1]]
        want = torch.nn.functional.adaptive_max_pool2d(part, size_out)
        assert torch.equal(_adaptive_max_pool(part, size_out), want)


def test_padded_index_lists_each_items_segments_then_minus_one() -> None:
    index = nisqa_onnx.padded_index([2, 3, 1])
    assert index.dtype == np.int64
    assert index.tolist() == [[0, 1, -1], [2, 3, 4], [5, -1, -1]]


# --- the installed export --------------------------------------------------------------------
@pytest.fixture(scope="module")
def onnx_model() -> nisqa_onnx.NisqaOnnxModel:
    model = get_quality_model(backend="onnx")
    assert isinstance(model, nisqa_onnx.NisqaOnnxModel)
    return model


def test_auto_picks_the_installed_export(onnx_model) -> None:
    assert get_quality_model().backend == "onnx"
    assert onnx_model.name == "nisqa" and onnx_model.version == "v2.0"


def test_a_batch_of_mixed_lengths_scores_as_one_by_one(onnx_model) -> None:
    clips = [(tones(0.14, 8000, 1), 8000), (tones(10.0, 8000, 2), 8000), (tones(2.5, 16000, 3), 16000),
             (tones(31.0, 8000, 4), 8000), (tones(4.0, 48000, 5), 48000)]
    batched = onnx_model.score_batch(clips)
    for clip, together in zip(clips, batched, strict=True):
        (alone,) = onnx_model.score_batch([clip])
        assert dataclasses.astuple(together) == pytest.approx(dataclasses.astuple(alone), abs=1e-5)


def test_padding_does_not_reach_the_scores(onnx_model, rng: np.random.Generator) -> None:
    # one graph pass: a short item padded to a long one's length, in either order
    short = (rng.standard_normal((3, 1, 48, 15)) * 10 - 40).astype(np.float32)
    long = (rng.standard_normal((40, 1, 48, 15)) * 10 - 40).astype(np.float32)
    alone = onnx_model._run(short, [3])[0]
    first = onnx_model._run(np.concatenate([short, long]), [3, 40])[0]
    last = onnx_model._run(np.concatenate([long, short]), [40, 3])[1]
    np.testing.assert_allclose(first, alone, atol=1e-5)
    np.testing.assert_allclose(last, alone, atol=1e-5)


def test_onnx_runtime_threads_follow_the_setting(onnx_model) -> None:
    one = get_quality_model(backend="onnx", threads=1)
    assert isinstance(one, nisqa_onnx.NisqaOnnxModel) and one.threads == 1
    again = get_quality_model(backend="onnx")
    assert isinstance(again, nisqa_onnx.NisqaOnnxModel) and again.threads == 2


# --- the setting -------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["auto", "onnx", "torch"])
def test_backend_setting_accepts_its_values(value: str) -> None:
    assert QualitySettings.from_settings(Settings(raw={"quality": {"backend": value}})).backend == value


def test_backend_setting_refuses_others(monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"\[quality\] backend='tensorflow' must be one of auto, onnx, torch"):
        QualitySettings.from_settings(Settings(raw={"quality": {"backend": "tensorflow"}}))
    monkeypatch.setenv("CALLQA_QUALITY_BACKEND", "torch")
    assert QualitySettings.from_settings(Settings(raw={})).backend == "torch"
