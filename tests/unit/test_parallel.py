"""The stages that spread a call over threads give the same answer on one thread, and survive a fork."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import numpy as np
import pytest

from core.audio.diarize import _embed, detect_mix_speech
from core.audio.io import AudioClip
from core.audio.speakers import VoiceEncoder, get_encoder, onnx_path
from core.audio.vad import (
    FULL_GATE_NOISE_DB,
    SileroVAD,
    active_frames,
    detect_speech,
    whole_track_probabilities,
)
from core.config import AnalysisConfig
from core.parallel import parallel_map, thread_pool
from tests.support import synth_calls as sc

CFG = AnalysisConfig()


@pytest.fixture(scope="module")
def call():
    sc.requires_espeak()
    return sc.two_talker_call(seed=7)


def _clips(call) -> dict[str, AudioClip]:
    return {side: AudioClip(x, sc.RATE, Path(f"c-{side}.wav")) for side, x in call.legs.items()}


def test_vad_stretches_on_two_threads_match_one_thread(call):
    clips = _clips(call)
    serial, threaded = SileroVAD(parallel=1), SileroVAD(parallel=2)
    stretches = {name: active_frames(c, frame_s=serial.frame_s) for name, c in clips.items()}
    assert all(len(s) > 3 for s in stretches.values())  # turn-taking: many gated stretches per leg
    a = serial.tracks_probabilities([(clips[n], stretches[n]) for n in clips])
    b = threaded.tracks_probabilities([(clips[n], stretches[n]) for n in clips])
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)
        assert x.max() > 0.9  # the model did run on the speech


def test_full_probabilities_are_the_warmed_whole_track_pass(call):
    mix = AudioClip(call.mix, sc.RATE, Path("c-all.wav"))
    vad = SileroVAD(parallel=2)
    speech = detect_speech({"mixed": mix}, vad=vad, full=("mixed",))
    full = speech["mixed"].full_probs
    assert np.array_equal(full, whole_track_probabilities(mix, vad))
    gated_only = detect_speech({"mixed": mix}, vad=vad)
    assert gated_only["mixed"].full_probs is None
    assert speech["mixed"].segments == gated_only["mixed"].segments  # the mixed leg itself is unchanged
    # each stretch starts warmed up: its first frames are not those of a cold start
    stretches = active_frames(mix, frame_s=vad.frame_s, noise_db=FULL_GATE_NOISE_DB)
    cold = vad.tracks_probabilities([(mix, stretches)])[0]
    assert not np.array_equal(full, cold)
    a, b = stretches[0]
    assert np.abs(full[a:b] - cold[a:b]).max() < 0.5  # same model on the same audio otherwise
    # the side split given those probabilities finds what it finds computing them itself
    assert detect_mix_speech(mix, vad=vad, cfg=CFG, probs=full) == detect_mix_speech(mix, vad=vad, cfg=CFG)


def test_embeddings_on_two_threads_match_one_thread(call):
    mix = AudioClip(call.mix, sc.RATE, Path("c-all.wav"))
    speech = detect_mix_speech(mix, vad=SileroVAD(parallel=1), cfg=CFG)
    one = VoiceEncoder(onnx_path=onnx_path(), parallel=1)
    two = VoiceEncoder(onnx_path=onnx_path(), parallel=2)
    assert one.backend == "onnx"
    a, b = _embed(mix, speech, one, CFG), _embed(mix, speech, two, CFG)
    assert len(a.emb) > 20
    assert np.array_equal(a.emb, b.emb)
    mels = np.random.default_rng(3).random((40, 100, 40)).astype(np.float32) * 1e-3
    assert np.array_equal(one.embed_mels(mels), two.embed_mels(mels))


def test_parallel_map_keeps_order_and_uses_threads():
    seen: set[str] = set()
    barrier = threading.Barrier(2, timeout=10)

    def work(i: int) -> int:
        seen.add(threading.current_thread().name)
        if i < 2:
            barrier.wait()  # both first items must be running at once
        return i * i

    assert list(parallel_map(work, range(10), 2)) == [i * i for i in range(10)]
    assert len(seen) == 2
    assert list(parallel_map(lambda i: i + 1, [1], 2)) == [2]


def _child(queue) -> None:
    queue.put(list(parallel_map(lambda i: i * 2, range(6), 2)))


def test_pool_made_before_a_fork_works_in_the_child():
    barrier = threading.Barrier(2, timeout=10)
    list(thread_pool(2).map(lambda _: barrier.wait(), range(2)))  # the parent's pool: two idle threads
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_child, args=(queue,))
    child.start()
    child.join(30)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the child hung on the parent's thread pool"
    assert queue.get(timeout=5) == [0, 2, 4, 6, 8, 10]


def test_process_encoder_follows_the_thread_setting():
    from core.audio import speakers

    before = get_encoder().parallel
    try:
        speakers.set_threads(1)
        assert get_encoder().parallel == 1
        speakers.set_threads(2)
        assert get_encoder().parallel == 2
    finally:
        speakers.set_threads(before)


def test_nisqa_passes_on_two_threads_match_one_thread():
    from core.quality.manager import weights_path
    from core.quality.nisqa_onnx import NisqaOnnxModel, onnx_path_for

    path = onnx_path_for(weights_path())
    if not path.is_file():
        pytest.fail(f"{path} missing: run `python -m core.quality.manager install` (make setup)")
    rng = np.random.default_rng(11)
    t = np.arange(8000 * 10) / 8000
    clips = [((0.1 * np.sin(2 * np.pi * (200 + 40 * i) * t) * (1 + np.sin(2 * np.pi * 3 * t))
               + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 8000) for i in range(6)]
    one, two = NisqaOnnxModel(path, threads=1), NisqaOnnxModel(path, threads=2)
    a, b = one.score_batch(clips), two.score_batch(clips)
    assert len({round(s.mos, 4) for s in a}) > 1  # different clips, different scores
    assert a == b  # six 10 s clips make three passes: on two threads, the same scores in the same order


def test_importing_core_keeps_blas_to_one_thread_unless_told_otherwise():
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    code = "import core, os; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root, env=env)
    assert out.stdout.strip() == "1"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root,
                         env={**env, "OPENBLAS_NUM_THREADS": "4"})
    assert out.stdout.strip() == "4"
