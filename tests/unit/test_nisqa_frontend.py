"""NISQA front end and network against the known answers of ../shared/docs/nisqa.md (sections 3-7).

The front-end tests need only numpy; the golden-vector tests (PyTorch and the installed backend) load the installed weights
(``make setup``) and check the doc's "tones" / "tone_noise" outputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from core.audio.io import load_mono
from core.errors import InvalidAudioError
from core.quality import nisqa
from core.quality.manager import get_quality_model


@pytest.fixture(scope="module", params=["torch", "auto"])
def model(request: pytest.FixtureRequest) -> nisqa.NisqaModel:
    """The PyTorch model, and the one analysis uses (ONNX Runtime when the export is installed)."""
    return get_quality_model(backend=request.param)


@pytest.fixture(scope="module")
def torch_model() -> nisqa.NisqaModel:
    return get_quality_model(backend="torch")


def tones(sample_rate: int) -> np.ndarray:
    """The doc's "tones" input: three tones, 3 Hz amplitude modulation, 4 s, float64 -> float32."""
    t = np.arange(int(4.0 * sample_rate)) / sample_rate
    carrier = 0.25 * np.sin(2 * np.pi * 300 * t) + 0.15 * np.sin(2 * np.pi * 1200 * t) + 0.05 * np.sin(2 * np.pi * 3100 * t)
    return (carrier * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def as_tuple(scores) -> tuple[float, ...]:
    return dataclasses.astuple(scores)


# --- STFT geometry ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "hop", "win"),
    [(8000, 80, 160), (11025, 110, 220), (16000, 160, 320), (22050, 220, 441), (44100, 441, 882), (48000, 480, 960)],
)
def test_frame_params_truncate_like_python_int(rate: int, hop: int, win: int) -> None:
    assert nisqa.frame_params(rate) == (hop, win)


@pytest.mark.parametrize(("seconds", "segments"), [(10, 247), (30, 747), (50, 1247)])
def test_segment_counts_at_16k(seconds: int, segments: int) -> None:
    frames = nisqa.n_frames(seconds * 16000, 16000)
    assert frames == seconds * 100 + 1
    assert nisqa.n_segments(frames) == segments


def test_segments_are_15_frame_windows_every_4_frames() -> None:
    spec = np.arange(48 * 40, dtype=np.float32).reshape(48, 40)
    segments = nisqa.segment_spectrogram(spec)
    assert segments.shape == (7, 1, 48, 15)  # ceil((40 - 14) / 4); last start 24 <= 40 - 15
    for i in range(7):
        np.testing.assert_array_equal(segments[i, 0], spec[:, 4 * i : 4 * i + 15])


@pytest.mark.parametrize(("rate", "shortest"), [(8000, 1120), (16000, 2240), (48000, 6720)])
def test_min_length_is_fifteen_frames(rate: int, shortest: int) -> None:
    assert nisqa.min_samples(rate) == shortest
    nisqa.check_length(shortest, rate, source="x.wav")
    with pytest.raises(InvalidAudioError, match=r"x\.wav: .*too short.*0\.14 s"):
        nisqa.check_length(shortest - 1, rate, source="x.wav")


def test_max_length_is_1300_segments() -> None:
    assert nisqa.max_samples(16000) == 834_239  # section 5: 834,239 OK, 834,240 refused
    assert nisqa.n_segments(nisqa.n_frames(834_239, 16000)) == 1300
    nisqa.check_length(834_239, 16000, source="long.wav")
    with pytest.raises(InvalidAudioError, match=r"long\.wav: 52\.14 s is longer than the 52\.14 s"):
        nisqa.check_length(834_240, 16000, source="long.wav")
    # the hop is truncated to 220 samples at 22.05 kHz, so the limit is 52.02 s there
    assert round((nisqa.max_samples(22050) + 1) / 22050, 2) == 52.02


# --- mel filterbank ---------------------------------------------------------------------------
def test_mel_band_edges_match_the_doc() -> None:
    edges = nisqa.mel_band_edges_hz()
    assert len(edges) == 50
    expected = {0: 0.0, 1: 79.7, 2: 159.4, 12: 956.3, 13: 1037.8, 49: 20000.0}
    for index, hz in expected.items():
        assert edges[index] == pytest.approx(hz, abs=0.05)
    for hz in (7459.8, 8098.8, 18422.1):  # consecutive log-scale edges quoted in the doc
        assert np.min(np.abs(edges - hz)) < 0.05


@pytest.mark.parametrize(
    ("rate", "non_empty"), [(8000, 30), (16000, 38), (22050, 42), (24000, 43), (32000, 47), (44100, 48), (48000, 48)]
)
def test_bands_above_nyquist_are_empty(rate: int, non_empty: int) -> None:
    fbank = nisqa.mel_filterbank(rate)
    assert fbank.shape == (48, 2049) and fbank.dtype == np.float32
    assert int(np.count_nonzero(fbank.sum(axis=1) > 0)) == non_empty


def test_slaney_triangles_have_unit_area() -> None:
    # 2 / (upper - lower) scaling gives every full triangle an area of 1 (weight x Hz)
    rate = 48000
    bin_hz = rate / nisqa.N_FFT
    areas = nisqa.mel_filterbank(rate).sum(axis=1) * bin_hz
    np.testing.assert_allclose(areas[:47], 1.0, rtol=0.02)  # the last band stops at 20 kHz < 24 kHz


def test_filterbank_is_cached_and_read_only() -> None:
    assert nisqa.mel_filterbank(8000) is nisqa.mel_filterbank(8000)
    with pytest.raises(ValueError):
        nisqa.mel_filterbank(8000)[0, 0] = 1.0


# --- spectrogram ------------------------------------------------------------------------------
def brute_force_frame(samples: np.ndarray, rate: int, frame: int) -> np.ndarray:
    """One frame the textbook way: 2048-sample reflect padding, 4096 samples, Hann centred."""
    hop, win = nisqa.frame_params(rate)
    padded = np.pad(samples.astype(np.float64), 2048, mode="reflect")
    window = np.zeros(4096)
    left = (4096 - win) // 2
    window[left : left + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    magnitude = np.abs(np.fft.rfft(padded[frame * hop : frame * hop + 4096] * window))
    mel = nisqa.mel_filterbank(rate).astype(np.float64) @ magnitude
    return 20 * np.log10(np.maximum(mel, 1e-4))


@pytest.mark.parametrize("rate", [8000, 22050])
def test_spectrogram_matches_a_brute_force_stft(rate: int, rng: np.random.Generator) -> None:
    # 0.2 s: shorter than the 2048-sample pad at 8 kHz, where torch's reflect padding fails
    samples = (0.3 * rng.standard_normal(int(0.2 * rate))).astype(np.float32)
    spec = nisqa.melspectrogram_db(samples, rate)
    assert spec.shape == (48, nisqa.n_frames(len(samples), rate))
    for frame in (0, 1, spec.shape[1] // 2, spec.shape[1] - 1):
        expected = np.maximum(brute_force_frame(samples, rate, frame), spec.max() - 80.0)
        np.testing.assert_allclose(spec[:, frame], expected, atol=2e-3)


def test_digital_silence_sits_at_the_floor() -> None:
    spec = nisqa.melspectrogram_db(np.zeros(16000, dtype=np.float32), 16000)
    np.testing.assert_array_equal(spec, np.full_like(spec, -80.0))


def test_top_db_clamp_is_relative_to_the_files_maximum() -> None:
    spec = nisqa.melspectrogram_db(tones(16000), 16000)
    assert spec.max() == pytest.approx(11.5545, abs=1e-3)
    assert spec.min() == pytest.approx(spec.max() - 80.0, abs=1e-4)


def test_tones_spectrogram_spot_values() -> None:
    spec = nisqa.melspectrogram_db(tones(16000), 16000)
    assert spec.shape == (48, 401)
    assert (spec.min(), spec.max(), spec.mean()) == pytest.approx((-68.4455, 11.5545, -53.2678), abs=2e-4)
    assert spec[0, 0] == pytest.approx(-1.5400, abs=1e-3)
    assert spec[10, 100] == pytest.approx(-58.4375, abs=1e-3)
    assert spec[47, 50] == pytest.approx(-68.4455, abs=1e-3)  # an empty band = max - 80


# --- network and golden vectors (need the weights) ---------------------------------------------
def test_checkpoint_loads_into_the_module_tree(torch_model: nisqa.NisqaModel) -> None:
    trainable = sum(p.numel() for p in torch_model.net.parameters())
    assert trainable == 252_458
    assert len(torch_model.net.state_dict()) == 100


TONES = {
    16000: ((-68.4455, 11.5545, -53.2678), (0.953131, 1.354038, 2.446373, 1.148257, 1.295372)),
    8000: ((-68.4435, 11.5565, -53.2914), (0.953819, 1.354088, 2.447136, 1.148545, 1.296231)),
    48000: ((-68.4380, 11.5620, -53.2442), (0.952222, 1.352606, 2.447551, 1.148108, 1.295381)),
}


@pytest.mark.parametrize("rate", sorted(TONES), ids=lambda r: f"{r // 1000}kHz")
def test_golden_tones(model: nisqa.NisqaModel, rate: int) -> None:
    stats, outputs = TONES[rate]
    samples = tones(rate)
    spec = nisqa.melspectrogram_db(samples, rate)
    assert spec.shape == (48, 401) and nisqa.n_segments(401) == 97
    assert (spec.min(), spec.max(), spec.mean()) == pytest.approx(stats, abs=2e-4)
    (scores,) = model.score_batch([(samples, rate)])
    assert as_tuple(scores) == pytest.approx(outputs, abs=1e-4)


def test_golden_tone_noise_from_a_pcm16_wav(model: nisqa.NisqaModel, tmp_path) -> None:
    t = np.arange(48000) / 16000
    signal = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * np.random.default_rng(0).standard_normal(48000)
    path = tmp_path / "tone_noise.wav"
    sf.write(path, signal, 16000, subtype="PCM_16")
    clip = load_mono(path)
    spec = nisqa.melspectrogram_db(clip.samples, clip.sample_rate)
    assert spec.shape == (48, 301)
    assert (spec.min(), spec.max(), spec.mean()) == pytest.approx((-68.3695, 11.6305, -33.0358), abs=2e-4)
    (scores,) = model.score_batch([(clip.samples, clip.sample_rate)])
    assert as_tuple(scores) == pytest.approx((1.179484, 1.740451, 3.177677, 1.376079, 1.837693), abs=1e-4)


def test_batching_clips_of_different_lengths_and_rates_changes_nothing(model: nisqa.NisqaModel) -> None:
    clips = [(tones(16000)[:40000], 16000), (tones(8000), 8000), (tones(48000)[:9000], 48000)]
    batched = model.score_batch(clips)
    for clip, together in zip(clips, batched, strict=True):
        (alone,) = model.score_batch([clip])
        assert as_tuple(together) == pytest.approx(as_tuple(alone), abs=1e-5)


def test_score_batch_names_the_clip_that_is_too_short(model: nisqa.NisqaModel) -> None:
    with pytest.raises(InvalidAudioError, match=r"^beep\.wav: 0\.100 s is too short"):
        model.score_batch([(tones(8000), 8000), (np.zeros(800, np.float32), 8000)], names=["ok.wav", "beep.wav"])


def test_the_shortest_accepted_clip_is_one_segment(model: nisqa.NisqaModel, rng: np.random.Generator) -> None:
    samples = (0.1 * rng.standard_normal(nisqa.min_samples(8000))).astype(np.float32)  # 0.14 s < the 2048 pad
    assert nisqa.segment_spectrogram(nisqa.melspectrogram_db(samples, 8000)).shape == (1, 1, 48, 15)
    (scores,) = model.score_batch([(samples, 8000)])
    assert np.isfinite(as_tuple(scores)).all()
