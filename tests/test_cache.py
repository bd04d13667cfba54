"""The embedding cache (``cache=``): hits equal fresh results, any change misses, entries are safe."""

import glob
import multiprocessing
import os
import pickle
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import ImageEmbedder, TextEmbedder
from sktransfer.embedding._cache import input_digest
from sktransfer.exceptions import ImageReadError

from ._vector import VectorImageEmbedder

TEXTS = ["a gripping, funny film", "dull", "null", "", "ünïcödé ✓", "a gripping, funny film!"]


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, size=(6, 32, 32, 3), dtype=np.uint8)


def image_embedder(**params):
    return ImageEmbedder("tiny_cnn", **{"weights": None, "device": "cpu", "batch_size": 4, **params})


def text_embedder(**params):
    return TextEmbedder("tiny_text", **{"weights": None, "device": "cpu", "batch_size": 4, **params})


def count_computed(embedder):
    """Count the samples that go through the backbone from now on."""
    counter = {"samples": 0}

    def hook(module, args, kwargs, output):
        counter["samples"] += output.shape[0]

    embedder.backbone_.register_forward_hook(hook, with_kwargs=True)
    return counter


def entries(directory):
    return sorted(glob.glob(os.path.join(directory, "*", "*", "*.emb")))


def write_pngs(folder, arrays):
    paths = []
    for i, array in enumerate(arrays):
        path = folder / f"image_{i}.png"
        Image.fromarray(array).save(path)
        paths.append(str(path))
    return paths


def as_inputs(kind, images, tmp_path):
    if kind == "array batch":
        return images
    if kind == "list of arrays":
        return list(images)
    if kind == "PIL images":
        return [Image.fromarray(a) for a in images]
    return write_pngs(tmp_path, images)


@pytest.mark.parametrize("kind", ["array batch", "list of arrays", "PIL images", "png files"])
def test_images_second_transform_is_cached(kind, images, tmp_path):
    X = as_inputs(kind, images, tmp_path)
    expected = image_embedder().fit(X).transform(X)
    embedder = image_embedder(cache=tmp_path / "cache").fit(X)
    counter = count_computed(embedder)

    first = embedder.transform(X)
    assert counter["samples"] == len(images)
    second = embedder.transform(X)
    assert counter["samples"] == len(images)  # nothing recomputed
    np.testing.assert_allclose(first, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32 and second.shape == expected.shape
    assert len(entries(tmp_path / "cache")) == len(images)


def test_texts_second_transform_is_cached(tmp_path):
    expected = text_embedder().fit(TEXTS).transform(TEXTS)
    embedder = text_embedder(cache=str(tmp_path)).fit(TEXTS)
    counter = count_computed(embedder)
    np.testing.assert_allclose(embedder.transform(TEXTS), expected, rtol=1e-5, atol=1e-6)
    assert counter["samples"] == len(TEXTS)
    np.testing.assert_allclose(embedder.transform(TEXTS), expected, rtol=1e-5, atol=1e-6)
    assert counter["samples"] == len(TEXTS)


def test_only_misses_are_computed_and_order_is_kept(images, tmp_path):
    expected = image_embedder().fit(images).transform(images)
    embedder = image_embedder(cache=tmp_path).fit(images)
    embedder.transform(images[[1, 4]])
    counter = count_computed(embedder)
    order = [5, 4, 0, 1, 3, 2, 4]
    out = embedder.transform(images[order])
    assert counter["samples"] == 4  # images 0, 2, 3 and 5
    np.testing.assert_allclose(out, expected[order], rtol=1e-5, atol=1e-6)


def test_hits_are_shared_by_fresh_clones_and_unpickled_embedders(images, tmp_path):
    embedder = image_embedder(cache=tmp_path).fit(images)
    expected = embedder.transform(images)
    for other in [clone(embedder).fit(images), pickle.loads(pickle.dumps(embedder))]:
        counter = count_computed(other)
        np.testing.assert_array_equal(other.transform(images), expected)
        assert counter["samples"] == 0


def test_cache_set_after_fit(images, tmp_path):
    embedder = image_embedder().fit(images)
    embedder.set_params(cache=tmp_path)
    first = embedder.transform(images)
    counter = count_computed(embedder)
    np.testing.assert_array_equal(embedder.transform(images), first)
    assert counter["samples"] == 0


def _save_weights(embedder, path, scale):
    state = {
        k: v * scale if v.is_floating_point() else v for k, v in embedder.backbone_.model.state_dict().items()
    }
    torch.save(state, path)
    return path


@pytest.mark.parametrize(
    "change",
    [
        {"weights": "perturbed"},
        {"image_size": 24},
        {"pooling": "max"},
        {"layers": "stage1"},
        {"layers": ["stage1", "stage2"]},
        {"normalize": True},
        {"precision": "bf16"},
    ],
    ids=lambda change: "-".join(f"{k}={v}" for k, v in change.items()),
)
def test_image_setting_changes_miss(change, images, tmp_path):
    base = image_embedder(cache=tmp_path / "cache").fit(images)
    before = base.transform(images)
    if change.get("weights") == "perturbed":
        change = {"weights": _save_weights(base, tmp_path / "perturbed.pt", 1.1)}
    changed = image_embedder(cache=tmp_path / "cache", **change).fit(images)
    counter = count_computed(changed)
    out = changed.transform(images)
    assert counter["samples"] == len(images)
    expected = image_embedder(**change).fit(images).transform(images)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert out.shape != before.shape or not np.allclose(out, before)


def test_weights_are_keyed_by_content_not_by_path(images, tmp_path):
    base = image_embedder(cache=tmp_path / "cache").fit(images)
    expected = base.transform(images)
    same = image_embedder(cache=tmp_path / "cache", weights=_save_weights(base, tmp_path / "w.pt", 1.0))
    same.fit(images)
    counter = count_computed(same)
    np.testing.assert_array_equal(same.transform(images), expected)
    assert counter["samples"] == 0


@pytest.mark.parametrize(
    "change",
    [{"max_length": 4}, {"pooling": "max"}, {"layers": 0}, {"normalize": True}],
    ids=lambda change: "-".join(f"{k}={v}" for k, v in change.items()),
)
def test_text_setting_changes_miss(change, tmp_path):
    text_embedder(cache=tmp_path).fit(TEXTS).transform(TEXTS)
    changed = text_embedder(cache=tmp_path, **change).fit(TEXTS)
    counter = count_computed(changed)
    out = changed.transform(TEXTS)
    assert counter["samples"] == len(TEXTS)
    np.testing.assert_allclose(out, text_embedder(**change).fit(TEXTS).transform(TEXTS), rtol=1e-5, atol=1e-6)


def test_text_max_length_changed_after_fit_misses(tmp_path):
    embedder = text_embedder(cache=tmp_path).fit(TEXTS)
    embedder.transform(TEXTS)
    embedder.set_params(max_length=4)
    counter = count_computed(embedder)
    out = embedder.transform(TEXTS)
    assert counter["samples"] == len(TEXTS)
    np.testing.assert_allclose(out, text_embedder(max_length=4).fit(TEXTS).transform(TEXTS), atol=1e-6)


def test_a_different_text_misses(tmp_path):
    embedder = text_embedder(cache=tmp_path).fit(TEXTS)
    embedder.transform(TEXTS)
    counter = count_computed(embedder)
    embedder.transform(TEXTS[:2] + ["dull."])
    assert counter["samples"] == 1


def test_a_different_array_misses(images, tmp_path):
    embedder = image_embedder(cache=tmp_path).fit(images)
    embedder.transform(images)
    counter = count_computed(embedder)
    copies = [np.asfortranarray(a) for a in images]  # same pixels, other memory layout: hits
    embedder.transform(copies)
    assert counter["samples"] == 0
    changed = images.copy()
    changed[2, 0, 0, 0] ^= 1  # one bit of one pixel
    out = embedder.transform(changed)
    assert counter["samples"] == 1
    np.testing.assert_allclose(out, image_embedder().fit(images).transform(changed), rtol=1e-5, atol=1e-6)


def test_a_file_whose_bytes_change_at_the_same_path_misses(images, tmp_path):
    paths = write_pngs(tmp_path, images)
    embedder = image_embedder(cache=tmp_path / "cache").fit(paths)
    before = embedder.transform(paths)
    Image.fromarray(255 - images[3]).save(paths[3])  # same name, new content
    counter = count_computed(embedder)
    after = embedder.transform(paths)
    assert counter["samples"] == 1
    np.testing.assert_array_equal(np.delete(after, 3, axis=0), np.delete(before, 3, axis=0))
    np.testing.assert_allclose(after[3], image_embedder().fit(paths).transform([paths[3]])[0], atol=1e-6)
    # A renamed copy of a cached file is a hit: the key is the content, not the path.
    os.rename(paths[0], tmp_path / "renamed.png")
    embedder.transform([str(tmp_path / "renamed.png")])
    assert counter["samples"] == 1


def test_input_digests_separate_what_they_must():
    a = np.zeros((4, 4, 3), dtype=np.uint8)
    digests = {
        input_digest(a, "image"),
        input_digest(a.reshape(4, 12), "image"),  # same bytes, other shape
        input_digest(a.astype(np.int8), "image"),  # same bytes, other dtype
        input_digest(Image.fromarray(a), "image"),
        input_digest("some text", "text"),
    }
    assert len(digests) == 5
    palette = Image.fromarray(np.zeros((4, 4), dtype=np.uint8), mode="L").convert("P")
    other = palette.copy()
    other.putpalette([255, 0, 0] * 256)
    assert input_digest(palette, "image") != input_digest(other, "image")
    assert input_digest("/no/such/file.png", "image") is None
    # Same pixels, but decoded differently: rotated by its EXIF tag, or with a transparent colour.
    rotated = Image.fromarray(a)
    rotated.getexif()[0x0112] = 6
    transparent = Image.fromarray(a)
    transparent.info["transparency"] = (0, 0, 0)
    plain = input_digest(Image.fromarray(a), "image")
    assert len({plain, input_digest(rotated, "image"), input_digest(transparent, "image")}) == 3


def test_decoding_conventions_are_part_of_the_key(images, tmp_path, monkeypatch):
    import sktransfer.embedding._cache as cache_module

    embedder = ImageEmbedder("tiny_cnn", cache=tmp_path).fit(images)
    embedder.transform(images)
    monkeypatch.setattr(cache_module, "DECODING_VERSION", cache_module.DECODING_VERSION + 1)
    before = set(glob.glob(str(tmp_path / "**" / "*"), recursive=True))
    embedder.transform(images)  # new conventions: computed again, stored under a new key
    assert set(glob.glob(str(tmp_path / "**" / "*"), recursive=True)) > before


def test_corrupt_or_truncated_entries_are_recomputed(images, tmp_path):
    embedder = image_embedder(cache=tmp_path).fit(images)
    expected = embedder.transform(images)
    files = entries(tmp_path)
    size = os.path.getsize(files[0])
    with open(files[0], "wb") as f:  # garbage of the right length
        f.write(np.random.default_rng(1).bytes(size))
    with open(files[1], "r+b") as f:  # a half-written entry
        f.truncate(size // 2)
    with open(files[2], "r+b") as f:  # one flipped byte in the values
        f.seek(20)
        byte = f.read(1)
        f.seek(20)
        f.write(bytes([byte[0] ^ 0xFF]))
    counter = count_computed(embedder)
    np.testing.assert_allclose(embedder.transform(images), expected, rtol=1e-5, atol=1e-6)
    assert counter["samples"] == 3
    embedder.transform(images)  # the recomputed entries were stored again
    assert counter["samples"] == 3


def _transform_in_process(directory, X, rounds):
    torch.set_num_threads(1)
    embedder = image_embedder(cache=directory, batch_size=2).fit(X[:1])
    return [embedder.transform(X) for _ in range(rounds)]


def test_concurrent_processes_share_a_directory(tmp_path):
    X = np.random.default_rng(2).integers(0, 256, size=(24, 32, 32, 3), dtype=np.uint8)
    expected = image_embedder().fit(X).transform(X)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        jobs = [pool.submit(_transform_in_process, str(tmp_path), X, 3) for _ in range(2)]
        results = [out for job in jobs for out in job.result()]
    for out in results:
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert len(entries(tmp_path)) == len(X)
    assert not glob.glob(os.path.join(tmp_path, "**", "*.tmp"), recursive=True)


def test_an_unwritable_cache_warns_and_still_embeds(images, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    embedder = image_embedder(cache=blocker).fit(images)
    with pytest.warns(RuntimeWarning, match="could not store embeddings") as record:
        out = embedder.transform(images)
    assert record[0].filename == __file__
    np.testing.assert_allclose(out, image_embedder().fit(images).transform(images), rtol=1e-5, atol=1e-6)


def test_vector_backbone_with_cache(tmp_path):
    X = np.random.default_rng(3).normal(size=(10, 5)).astype(np.float32)
    embedder = VectorImageEmbedder("tiny_vector_mlp", device="cpu", cache=tmp_path).fit(X)
    first = embedder.transform(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(embedder.transform(X[::-1]), first[::-1])
    assert len(entries(tmp_path)) == len(X)


def test_cache_parameter_is_validated(images):
    with pytest.raises(InvalidParameterError, match="cache"):
        image_embedder(cache=3).fit(images)
    assert "cache" in TextEmbedder().get_params()


def test_unreadable_file_is_named_by_its_index_in_X_even_after_hits(tmp_path, image_files):
    paths, _ = image_files
    embedder = ImageEmbedder("tiny_cnn", cache=tmp_path / "cache").fit(paths)
    embedder.transform(paths[:3])  # the first three become hits
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(ImageReadError, match=r"Image 3 .*broken\.png"):
        embedder.transform(paths[:3] + [str(broken)])


def test_preprocessing_conventions_added_later_change_the_key_only_when_used(images):
    """``crop_mode`` and ``lowercase`` joined the key after caches existed: absent from it
    when off (earlier entries stay valid), present when on (no entry of the other
    convention is reused)."""
    from dataclasses import replace

    from sktransfer.embedding._cache import model_settings

    embedder = ImageEmbedder("tiny_cnn").fit(images)
    assert "crop_mode" not in model_settings(embedder)["preprocessing"]
    embedder.data_config_ = replace(embedder.data_config_, crop_mode="squash")
    assert model_settings(embedder)["preprocessing"]["crop_mode"] == "squash"
    text = TextEmbedder("tiny_text").fit(["a text", "another"])
    assert "lowercase" not in model_settings(text)
    text.backbone_.lowercase = True
    assert model_settings(text)["lowercase"] is True
