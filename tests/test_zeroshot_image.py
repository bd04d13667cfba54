"""ZeroShotImageClassifier on a tiny random CLIP: the code path end to end (the weights
are random, so no accuracy is claimed here)."""

import pickle
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import ZeroShotImageClassifier
from sktransfer.exceptions import ImageReadError
from sktransfer.zeroshot._image import PHOTO_TEMPLATES

from ._clip import save_tiny_clip, save_tiny_open_clip, save_tiny_siglip

pytest.importorskip("transformers")

IMAGES = np.random.default_rng(0).integers(0, 256, (6, 40, 48, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    return save_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def embeddings_by_hand(folder, images, labels, **padding):
    """Unit image embeddings and class prototypes, written directly with transformers and
    the model's own image processor."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    model, tokenizer = AutoModel.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    processor = AutoImageProcessor.from_pretrained(folder)
    with torch.inference_mode():
        prototypes = []
        for name in labels:
            tokens = tokenizer(
                [t.format(name) for t in PHOTO_TEMPLATES],
                **(padding or {"padding": True}),
                return_tensors="pt",
            )
            text = model.get_text_features(**tokens)
            text = text if torch.is_tensor(text) else text.pooler_output
            mean = torch.nn.functional.normalize(text, dim=-1).mean(0)
            prototypes.append(torch.nn.functional.normalize(mean, dim=0))
        pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]
        image = model.get_image_features(pixel_values=pixels)
        image = torch.nn.functional.normalize(
            image if torch.is_tensor(image) else image.pooler_output, dim=-1
        )
        return image, torch.stack(prototypes), model.logit_scale.exp()


def by_hand(folder, images, labels):
    """CLIP's zero-shot recipe written directly with transformers."""
    image, prototypes, scale = embeddings_by_hand(folder, images, labels)
    return (scale * image @ prototypes.T).softmax(-1).numpy()


def test_matches_clip_written_by_hand(clip_folder):
    model = ZeroShotImageClassifier(clip_folder, labels=["red square", "blue thing"]).fit()
    assert list(model.classes_) == ["blue thing", "red square"]  # sorted, as scikit-learn expects
    assert len(model.descriptions_["red square"]) == len(PHOTO_TEMPLATES)
    proba = model.predict_proba(IMAGES)
    expected = by_hand(clip_folder, IMAGES, ["blue thing", "red square"])
    # The library resizes with its own pipeline (torchvision, antialiased) where the
    # processor uses PIL: the same recipe, pixels a level or two apart.
    np.testing.assert_allclose(proba, expected, atol=0.02)
    assert np.ptp(expected[:, 0]) > 0.1  # the images differ by more than the tolerance
    np.testing.assert_array_equal(model.predict(IMAGES), model.classes_[proba.argmax(1)])
    assert model.transform(IMAGES).shape == (len(IMAGES), 8)


def test_never_reads_the_labels_of_y(clip_folder):
    y = np.array([0, 1] * 3)
    model = ZeroShotImageClassifier(clip_folder, labels={0: "red square", 1: "blue thing"})
    first = model.fit(IMAGES, y).predict_proba(IMAGES)
    again = clone(model).fit(IMAGES, 1 - y).predict_proba(IMAGES)
    np.testing.assert_array_equal(first, again)
    scores = cross_val_score(model, IMAGES, y, cv=2)
    assert scores.shape == (2,)
    named = ZeroShotImageClassifier(clip_folder).fit(None, ["red", "blue", "red"])
    assert list(named.classes_) == ["blue", "red"]


def test_pickles(clip_folder):
    model = ZeroShotImageClassifier(clip_folder, labels=["red", "blue"]).fit()
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(IMAGES), model.predict_proba(IMAGES))


def test_a_missing_model_says_how_to_get_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json.*save one once"):
        ZeroShotImageClassifier(tmp_path, labels=["a", "b"]).fit()
    with pytest.raises(FileNotFoundError, match="could not load a CLIP model.*save one once"):
        ZeroShotImageClassifier(str(tmp_path / "nowhere" / "clip"), labels=["a", "b"]).fit()


def test_bad_input_names_the_culprit(clip_folder):
    with pytest.raises(InvalidParameterError, match="at least two classes"):
        ZeroShotImageClassifier(clip_folder, labels=["only"]).fit()
    with pytest.raises(InvalidParameterError, match="has no"):
        ZeroShotImageClassifier(clip_folder, labels=["a", "b"], templates=["no slot"]).fit()
    model = ZeroShotImageClassifier(clip_folder, labels=["a", "b"]).fit()
    with pytest.raises(ImageReadError, match=r"Image 1 \('/no/such/picture.jpg'\) does not exist"):
        model.predict([IMAGES[0], "/no/such/picture.jpg"])


@pytest.fixture(scope="module")
def open_clip_folder(tmp_path_factory):
    pytest.importorskip("open_clip")
    return save_tiny_open_clip(tmp_path_factory.mktemp("tiny_open_clip"))


def open_clip_by_hand(folder, images, labels):
    """The zero-shot recipe written directly with open_clip and its own preprocessing."""
    import open_clip
    from PIL import Image

    name = f"local-dir:{folder}"
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    with torch.inference_mode():
        prototypes = []
        for label in labels:
            text = model.eval().encode_text(tokenizer([t.format(label) for t in PHOTO_TEMPLATES]))
            mean = torch.nn.functional.normalize(text, dim=-1).mean(0)
            prototypes.append(torch.nn.functional.normalize(mean, dim=0))
        pixels = torch.stack([preprocess(Image.fromarray(image)) for image in images])
        image = torch.nn.functional.normalize(model.encode_image(pixels), dim=-1)
        return (model.logit_scale.exp() * image @ torch.stack(prototypes).T).softmax(-1).numpy()


def test_open_clip_checkpoint_matches_open_clip_written_by_hand(open_clip_folder):
    model = ZeroShotImageClassifier(open_clip_folder, labels=["red square", "blue thing"]).fit()
    proba = model.predict_proba(IMAGES)
    expected = open_clip_by_hand(open_clip_folder, IMAGES, ["blue thing", "red square"])
    np.testing.assert_allclose(proba, expected, atol=0.02)  # two image resizers, as above
    assert np.ptp(expected[:, 0]) > 0.05  # the images differ by more than the tolerance
    assert model.data_config_.input_size == 32 and model.transform(IMAGES).shape == (len(IMAGES), 8)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_proba(IMAGES), proba)


def test_open_clip_errors_say_what_is_missing(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    no_weights = save_tiny_open_clip(tmp_path, weights=False)
    with pytest.raises(FileNotFoundError, match="could not load an open_clip model.*save one once"):
        ZeroShotImageClassifier(no_weights, labels=["a", "b"]).fit()
    monkeypatch.setitem(sys.modules, "open_clip", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"open_clip checkpoint.*sktransfer\[clip\]"):
        ZeroShotImageClassifier(no_weights, labels=["a", "b"]).fit()


def test_a_folder_with_both_formats_loads_through_transformers(tmp_path):
    pytest.importorskip("open_clip")
    folder = save_tiny_clip(tmp_path)
    save_tiny_open_clip(folder, weights=False)  # an open_clip config beside the transformers files
    model = ZeroShotImageClassifier(folder, labels=["red square", "blue thing"]).fit()
    expected = by_hand(folder, IMAGES, ["blue thing", "red square"])
    np.testing.assert_allclose(model.predict_proba(IMAGES), expected, atol=0.02)


def test_transductive_centres_on_the_unlabelled_images(clip_folder):
    labels = ["red square", "blue thing"]
    plain = ZeroShotImageClassifier(clip_folder, labels=labels).fit()
    assert plain.center_ is None and plain.head_ is None  # the default learns nothing from X
    model = ZeroShotImageClassifier(clip_folder, labels=labels, transductive=True, rounds=0).fit(IMAGES)
    E = model.transform(IMAGES)
    np.testing.assert_allclose(model.center_, E.mean(axis=0), rtol=1e-6)
    centred = E - E.mean(axis=0)
    prototypes = model.prototypes_ - model.prototypes_.mean(axis=0)
    cosine = (centred / np.linalg.norm(centred, axis=1, keepdims=True)) @ (
        prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
    ).T
    expected = torch.softmax(torch.as_tensor(model.logit_scale_ * cosine), dim=1).numpy()
    np.testing.assert_allclose(model.predict_proba(IMAGES), expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(model.predict_proba(IMAGES), plain.predict_proba(IMAGES), atol=1e-3)


def test_transductive_self_trains_without_reading_y(clip_folder):
    params = dict(labels={0: "red square", 1: "blue thing"}, transductive=True)
    y = np.array([0, 1] * 3)
    model = ZeroShotImageClassifier(clip_folder, **params).fit(IMAGES, y)
    again = ZeroShotImageClassifier(clip_folder, **params).fit(IMAGES, 1 - y)
    np.testing.assert_array_equal(model.predict_proba(IMAGES), again.predict_proba(IMAGES))
    assert model.head_ is not None and set(model.head_.classes_) <= {0, 1}
    with pytest.raises(ValueError, match="transductive=True adapts to the images.*got 3.*at least 4"):
        ZeroShotImageClassifier(clip_folder, **params).fit(IMAGES[:3])
    with pytest.raises(ValueError, match="got 0"):
        ZeroShotImageClassifier(clip_folder, **params).fit()


def test_siglip_squashes_images_and_pads_texts_as_it_was_trained(tmp_path):
    """SigLIP resizes both sides of an image to the square (no crop), and pools its text
    at the last position, trained on texts padded to a fixed length: either done the CLIP
    way changes every embedding (a centre crop of these 40 x 48 images, or a padding to
    the batch's longest text)."""
    folder = save_tiny_siglip(tmp_path)
    labels = ["blue thing", "red square"]
    model = ZeroShotImageClassifier(folder, labels=labels).fit()
    assert model.data_config_.crop_mode == "squash" and model.data_config_.input_size == 32
    image, prototypes, _ = embeddings_by_hand(folder, IMAGES, labels, padding="max_length", max_length=16)
    np.testing.assert_allclose(model.transform(IMAGES), image.numpy(), atol=1e-5)
    np.testing.assert_allclose(model.prototypes_, prototypes.numpy(), atol=1e-5)
    _, longest, _ = embeddings_by_hand(folder, IMAGES, labels)
    assert np.abs(longest.numpy() - model.prototypes_).max() > 1e-3  # the padding matters


@pytest.mark.parametrize(
    "resize_mode, crop_mode, preprocess",
    [("squash", "squash", {}), ("longest", "border", {}), ("longest", "border", {"fill_color": 255})],
)
def test_open_clip_resize_modes_match_open_clip_written_by_hand(tmp_path, resize_mode, crop_mode, preprocess):
    pytest.importorskip("open_clip")
    folder = save_tiny_open_clip(tmp_path, resize_mode=resize_mode, **preprocess)
    model = ZeroShotImageClassifier(folder, labels=["red square", "blue thing"]).fit()
    assert model.data_config_.crop_mode == crop_mode
    expected = open_clip_by_hand(folder, IMAGES, ["blue thing", "red square"])
    np.testing.assert_allclose(model.predict_proba(IMAGES), expected, atol=0.01)
    # The usual centre crop is further away on these 40 x 48 images.
    centred = replace(model.data_config_, crop_mode="center")
    model.data_config_ = centred
    assert np.abs(model.predict_proba(IMAGES) - expected).max() > 0.02


def test_unsupported_resizes_name_the_model(tmp_path):
    pytest.importorskip("open_clip")
    oblong = save_tiny_open_clip(tmp_path, size=[32, 48])
    with pytest.raises(ValueError, match=r"resize_mode='shortest' to \[32, 48\]; only a square input"):
        ZeroShotImageClassifier(oblong, labels=["a", "b"]).fit()
    from transformers import CLIPImageProcessor

    folder = save_tiny_clip(tmp_path / "oblong")
    CLIPImageProcessor(size={"height": 32, "width": 48}, do_center_crop=False).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"oblong.*resizes its images to.*only a square input"):
        ZeroShotImageClassifier(folder, labels=["a", "b"]).fit()
    CLIPImageProcessor(size={"shortest_edge": 32}, do_center_crop=False).save_pretrained(folder)
    with pytest.raises(ValueError, match=r"without cropping them.*only square inputs"):
        ZeroShotImageClassifier(folder, labels=["a", "b"]).fit()
    from transformers import Siglip2ImageProcessor

    Siglip2ImageProcessor().save_pretrained(folder)  # NaFlex: any size
    with pytest.raises(ValueError, match=r"no fixed image size.*NaFlex"):
        ZeroShotImageClassifier(folder, labels=["a", "b"]).fit()


def test_a_processor_that_squashes_then_crops_matches_it(tmp_path):
    from transformers import CLIPImageProcessor

    folder = save_tiny_clip(tmp_path)
    CLIPImageProcessor(
        size={"height": 40, "width": 40}, crop_size={"height": 32, "width": 32}, do_center_crop=True
    ).save_pretrained(folder)
    model = ZeroShotImageClassifier(folder, labels=["red square", "blue thing"]).fit()
    config = model.data_config_
    assert (config.crop_mode, config.resize_size, config.input_size) == ("squash", 40, 32)
    expected = by_hand(folder, IMAGES, ["blue thing", "red square"])
    np.testing.assert_allclose(model.predict_proba(IMAGES), expected, atol=0.02)
