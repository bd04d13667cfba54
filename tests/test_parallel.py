"""Beyond one process: backbones loaded once per process, joblib and Dask workers, Accelerate."""

import pickle

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed, parallel_backend
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline

from sktransfer import ImageClassifier, ImageEmbedder, TextClassifier
from sktransfer.backbones import clear_loaded_backbones, load_backbone, register_backbone
from sktransfer.backbones._tiny import load_tiny_cnn

from .conftest import random_images

IMAGES = random_images(16, size=(32, 32))
LABELS = np.array([0, 1] * 8)


@pytest.fixture
def counted_backbone():
    """A backbone name whose loader counts its calls."""
    calls = []

    def loader(weights):
        calls.append(weights)
        return load_tiny_cnn(weights)

    register_backbone("counted_tiny_cnn", loader, modality="image", source="test", is_offline=lambda: True)
    clear_loaded_backbones()
    yield calls
    clear_loaded_backbones()


def test_a_process_loads_a_named_backbone_once_across_fits(counted_backbone):
    pipe = make_pipeline(ImageEmbedder("counted_tiny_cnn", weights=None), LogisticRegression())
    GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0]}, cv=2).fit(IMAGES, LABELS)
    ImageClassifier("counted_tiny_cnn", weights=None, max_epochs=1).fit(IMAGES, LABELS)
    assert counted_backbone == [None]  # 4 fits and a refit of the search, then the classifier


def test_each_fit_owns_its_weights(counted_backbone):
    first = ImageEmbedder("counted_tiny_cnn", weights=None).fit(IMAGES[:2])
    second = ImageEmbedder("counted_tiny_cnn", weights=None).fit(IMAGES[:2])
    before = second.transform(IMAGES[:4])
    with torch.no_grad():
        for p in first.backbone_.parameters():
            p.add_(1.0)  # changed in place, as a training step would
    np.testing.assert_array_equal(second.transform(IMAGES[:4]), before)
    assert not np.allclose(first.transform(IMAGES[:4]), before)
    assert load_backbone("counted_tiny_cnn", None) is not load_backbone("counted_tiny_cnn", None)
    assert len(counted_backbone) == 1


def test_a_rewritten_weights_file_is_read_again(tmp_path, counted_backbone):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    state = load_tiny_cnn(None).model.state_dict()  # the network's own keys, as a user saves them
    save_file({k: v.contiguous() for k, v in state.items()}, path)
    a = load_backbone("counted_tiny_cnn", path)
    save_file({k: v.contiguous() + 1 for k, v in state.items()}, path)
    b = load_backbone("counted_tiny_cnn", path)
    key = "model.stem.0.weight"
    assert torch.equal(b.state_dict()[key], a.state_dict()[key] + 1)


def test_an_unfitted_estimator_pickles_small():
    # What a scheduler ships to each worker per task: parameters, no weights.
    assert len(pickle.dumps(ImageClassifier())) < 4_000
    assert len(pickle.dumps(make_pipeline(ImageEmbedder(), LogisticRegression()))) < 4_000


def _torch_threads():
    return torch.get_num_threads()


def test_joblib_workers_share_the_cores_instead_of_each_taking_all():
    # joblib starts each worker with cores // n_jobs threads (OMP_NUM_THREADS), which torch
    # follows: two workers on two cores do not start two threads each.
    import os

    threads = Parallel(n_jobs=2)(delayed(_torch_threads)() for _ in range(2))
    assert threads == [max(os.cpu_count() // 2, 1)] * 2


def test_dask_backend_runs_a_search_like_one_process(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    cache = tmp_path / "cache"
    pipe = make_pipeline(ImageEmbedder("tiny_cnn", weights=None, cache=cache), LogisticRegression())
    grid = {"imageembedder__pooling": ["avg", "max"], "logisticregression__C": [0.1, 1.0]}
    local = GridSearchCV(pipe, grid, cv=2).fit(IMAGES, LABELS)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            assert sorted(client.run(_torch_threads).values()) == [1, 1]
            with parallel_backend("dask"):
                remote = GridSearchCV(pipe, grid, cv=2, n_jobs=-1).fit(IMAGES, LABELS)
                scores = cross_validate(pipe, IMAGES, LABELS, cv=2, return_estimator=True, n_jobs=-1)
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])
    assert remote.best_params_ == local.best_params_
    # fitted estimators come back from the workers and predict here
    for fitted in scores["estimator"]:
        assert fitted.predict(IMAGES).shape == (16,)
    assert any(cache.rglob("*.emb"))  # the workers wrote to the shared cache


def test_accelerate_trains_like_the_plain_path(fresh_accelerate):
    accelerate = fresh_accelerate
    kwargs = dict(weights=None, freeze="none", max_epochs=2, batch_size=4, random_state=0)
    plain = ImageClassifier("tiny_cnn", **kwargs).fit(IMAGES, LABELS)
    accelerator = accelerate.Accelerator(cpu=True)
    users_own = accelerator.prepare(torch.nn.Linear(2, 2))
    accelerated = ImageClassifier("tiny_cnn", accelerator=accelerator, **kwargs)
    accelerated.fit(IMAGES, LABELS)
    np.testing.assert_allclose(accelerated.predict_proba(IMAGES), plain.predict_proba(IMAGES), atol=1e-5)
    assert type(accelerated.net_.module_).__name__ == "TransferModel"  # unwrapped after training
    # the accelerator lets go of what the fit prepared, and of nothing else
    assert accelerator._models == [users_own] and accelerator._optimizers == []
    again = pickle.loads(pickle.dumps(accelerated))
    np.testing.assert_allclose(again.predict_proba(IMAGES), accelerated.predict_proba(IMAGES))


def test_accelerate_with_loss_terms_and_text(fresh_accelerate):
    accelerate = fresh_accelerate
    texts = ["good", "bad", "fine fun", "dull"] * 4
    kwargs = dict(weights=None, max_epochs=2, batch_size=4, random_state=0, freeze="none")
    plain = TextClassifier("tiny_text", **kwargs).fit(texts, LABELS)
    accelerated = TextClassifier("tiny_text", accelerator=accelerate.Accelerator(cpu=True), **kwargs)
    accelerated.fit(texts, LABELS)
    np.testing.assert_allclose(accelerated.predict_proba(texts), plain.predict_proba(texts), atol=1e-5)
    assert len(accelerated.net_.history) == 2


def test_accelerator_must_be_an_accelerator():
    with pytest.raises(ValueError, match="accelerator"):
        ImageClassifier("tiny_cnn", weights=None, accelerator="yes").fit(IMAGES, LABELS)


def test_ray_backend_runs_a_search_like_one_process():
    ray = pytest.importorskip("ray")
    from ray.util.joblib import register_ray

    pipe = make_pipeline(ImageEmbedder("tiny_cnn", weights=None), LogisticRegression())
    grid = {"imageembedder__pooling": ["avg", "max"], "logisticregression__C": [0.1, 1.0]}
    local = GridSearchCV(pipe, grid, cv=2).fit(IMAGES, LABELS)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        register_ray()
        with parallel_backend("ray"):
            remote = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(IMAGES, LABELS)
        assert ray.get(ray.remote(_torch_threads).remote()) == 1
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(remote.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])


def test_a_name_registered_again_is_loaded_again(counted_backbone):
    load_backbone("counted_tiny_cnn", None)
    replaced = []
    register_backbone(
        "counted_tiny_cnn",
        lambda w: replaced.append(w) or load_tiny_cnn(w),
        modality="image",
        source="test",
        is_offline=lambda: True,
    )
    load_backbone("counted_tiny_cnn", None)
    load_backbone("counted_tiny_cnn", None)
    assert len(counted_backbone) == 1 and replaced == [None]  # the new loader, once, not the old copy


def test_a_model_folder_changed_in_place_is_read_again(tmp_path):
    from sktransfer.backbones._memo import memo_key

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"a")
    before = memo_key(str(folder), "default", 0)
    (folder / "model.safetensors").write_bytes(b"bb")  # the folder's own mtime may not change
    assert memo_key(str(folder), "default", 0) != before


def test_two_processes_train_one_model_data_parallel(tmp_path):
    # What `accelerate launch` does on a machine with two GPUs, with two CPU processes.
    import json
    import socket
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("accelerate")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).with_name("_data_parallel.py")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
    ]
    result = subprocess.run(
        [*command, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads((tmp_path / f"run{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["processes"] for r in runs] == [2, 2]
    # 32 rows, batches of 4, 3 epochs: 24 steps in one process, 12 in each of two.
    assert [r["steps"] for r in runs] == [12, 12]
    # the gradients are averaged across the processes: both end with the same network
    np.testing.assert_array_equal(np.load(tmp_path / "proba0.npy"), np.load(tmp_path / "proba1.npy"))
    assert (np.load(tmp_path / "proba0.npy").argmax(1) == np.arange(32) % 2).mean() == 1.0
    assert all("early_stopping" in r["refused"] for r in runs)
