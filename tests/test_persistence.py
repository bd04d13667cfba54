"""skops: fitted estimators and pipelines stored without pickle, weights as safetensors."""

import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import (
    ImageClassifier,
    ImageEmbedder,
    ImageRegressor,
    TextClassifier,
    TextEmbedder,
    skops_trusted_types,
)

from .conftest import random_images

sio = pytest.importorskip("skops.io")

IMAGES = random_images(8, size=(32, 32))
LABELS = np.array(["ant", "bee"] * 4)
TEXTS = ["a good film", "a bad film", "great fun", "dull and long"] * 2


def _fitted(name):
    if name == "image pipeline":
        model = make_pipeline(ImageEmbedder("tiny_cnn", weights=None), StandardScaler(), LogisticRegression())
        return model.fit(IMAGES, LABELS), IMAGES
    if name == "text pipeline":
        return make_pipeline(TextEmbedder("tiny_text", weights=None), LogisticRegression()).fit(
            TEXTS, LABELS
        ), TEXTS
    if name == "ImageClassifier":
        return ImageClassifier("tiny_cnn", weights=None, freeze="none", max_epochs=1, random_state=0).fit(
            IMAGES, LABELS
        ), IMAGES
    if name == "ImageRegressor":
        y = np.linspace(0, 1, len(IMAGES))
        return ImageRegressor("tiny_cnn", weights=None, max_epochs=1, random_state=0).fit(IMAGES, y), IMAGES
    return TextClassifier("tiny_text", weights=None, max_epochs=1, random_state=0).fit(TEXTS, LABELS), TEXTS


MODELS = ["image pipeline", "text pipeline", "ImageClassifier", "ImageRegressor", "TextClassifier"]


@pytest.mark.parametrize("name", MODELS)
def test_skops_round_trip_predicts_the_same(tmp_path, name):
    model, X = _fitted(name)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert untrusted and set(untrusted) <= set(skops_trusted_types())
    loaded = sio.load(path, trusted=skops_trusted_types())
    assert np.array_equal(loaded.predict(X), model.predict(X))
    if hasattr(model, "predict_proba"):
        np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(X), rtol=1e-6, atol=1e-7)


def test_untrusted_sktransfer_types_are_refused_until_trusted(tmp_path):
    model, _ = _fitted("ImageClassifier")
    sio.dump(model, tmp_path / "m.skops")
    with pytest.raises(Exception, match="ImageClassifier") as info:
        sio.load(tmp_path / "m.skops")
    assert type(info.value).__name__ == "UntrustedTypesFoundException"


def test_weights_are_stored_as_safetensors_and_nothing_is_pickled(tmp_path):
    from safetensors.torch import load as load_tensors

    model, _ = _fitted("ImageClassifier")
    sio.dump(model, tmp_path / "m.skops")
    with zipfile.ZipFile(tmp_path / "m.skops") as archive:
        schema = archive.read("schema.json").decode()
        blobs = [archive.read(n) for n in archive.namelist() if n.endswith(".bin")]
    assert "pickle" not in schema.lower()
    stored = load_tensors(max(blobs, key=len))  # the weights: the largest blob
    expected = model.net_.module_.state_dict()
    assert set(stored) == set(expected)
    for key, tensor in stored.items():
        assert torch.equal(tensor, expected[key].cpu()), key


def _rewrite(path, edit):
    """Copy the skops zip at ``path`` with ``edit(name, data) -> data`` applied to each member."""
    out = path.with_name("tampered.skops")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, edit(name, src.read(name)))
    return out


def test_a_tampered_file_naming_another_type_is_refused(tmp_path):
    model, _ = _fitted("image pipeline")
    sio.dump(model, tmp_path / "m.skops")

    def swap_class(name, data):
        if name != "schema.json":
            return data
        return data.replace(b'"ImageEmbedder"', b'"system"').replace(b'"sktransfer.embedding.image"', b'"os"')

    tampered = _rewrite(tmp_path / "m.skops", swap_class)
    with pytest.raises(Exception, match="os.system") as info:
        sio.load(tampered, trusted=skops_trusted_types())
    assert type(info.value).__name__ == "UntrustedTypesFoundException"


def test_corrupted_weights_fail_with_a_message_naming_the_estimator(tmp_path):
    model, _ = _fitted("ImageClassifier")
    sio.dump(model, tmp_path / "m.skops")
    with zipfile.ZipFile(tmp_path / "m.skops") as archive:
        largest = max(
            (n for n in archive.namelist() if n.endswith(".bin")), key=lambda n: archive.getinfo(n).file_size
        )
    tampered = _rewrite(tmp_path / "m.skops", lambda name, data: data[:100] if name == largest else data)
    with pytest.raises(ValueError, match="ImageClassifier: the stored weights are not valid safetensors"):
        sio.load(tampered, trusted=skops_trusted_types())


def test_weights_of_another_architecture_are_refused(tmp_path):
    model, _ = _fitted("ImageClassifier")
    sio.dump(model, tmp_path / "m.skops")
    other = ImageClassifier("tiny_cnn", weights=None, freeze="none", max_epochs=1, random_state=0)
    other.fit(IMAGES, np.array(["a", "b", "c", "d"] * 2))  # four outputs instead of two
    sio.dump(other, tmp_path / "other.skops")
    with zipfile.ZipFile(tmp_path / "other.skops") as archive:
        name = max(
            (n for n in archive.namelist() if n.endswith(".bin")), key=lambda n: archive.getinfo(n).file_size
        )
        wrong = archive.read(name)
    with zipfile.ZipFile(tmp_path / "m.skops") as archive:
        target = max(
            (n for n in archive.namelist() if n.endswith(".bin")), key=lambda n: archive.getinfo(n).file_size
        )
    tampered = _rewrite(tmp_path / "m.skops", lambda n, data: wrong if n == target else data)
    with pytest.raises(ValueError, match="do not fit the network built from backbone="):
        sio.load(tampered, trusted=skops_trusted_types())


def test_a_module_backbone_cannot_go_to_skops_and_the_error_says_what_to_do(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    embedder = ImageEmbedder(module).fit(IMAGES[:2])
    with pytest.raises(TypeError, match="register_backbone"):
        sio.dump(embedder, tmp_path / "m.skops")
    # pickle stores any module, as before
    again = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_allclose(again.transform(IMAGES[:2]), embedder.transform(IMAGES[:2]))


def test_an_unfitted_estimator_keeps_its_parameters(tmp_path):
    clf = ImageClassifier("tiny_cnn", weights=None, lr={"head": 1e-3, "backbone": 1e-4}, freeze="last:1")
    sio.dump(clf, tmp_path / "m.skops")
    loaded = sio.load(tmp_path / "m.skops", trusted=skops_trusted_types())
    assert loaded.get_params() == clf.get_params()
    assert not hasattr(loaded, "net_")


def test_a_loaded_model_keeps_its_history_and_trains_on(tmp_path):
    model, X = _fitted("TextClassifier")
    sio.dump(model, tmp_path / "m.skops")
    loaded = sio.load(tmp_path / "m.skops", trusted=skops_trusted_types())
    assert json.dumps(list(loaded.net_.history)) == json.dumps(list(model.net_.history), default=float)
    loaded.partial_fit(X, LABELS)
    assert len(loaded.net_.history) == len(model.net_.history) + 1


def _meta_estimator(name):
    import pandas as pd

    from sktransfer import BackboneSelector, DomainAdaptedClassifier, ImageMultiTask, ZeroShotTextClassifier
    from sktransfer.monitoring import DriftDetector

    if name == "ImageMultiTask":
        Y = pd.DataFrame({"kind": LABELS, "size": np.linspace(0, 1, len(IMAGES))})
        return ImageMultiTask("tiny_cnn", weights=None, max_epochs=1, random_state=0).fit(IMAGES, Y), IMAGES
    if name == "ZeroShotTextClassifier":
        return ZeroShotTextClassifier("tiny_text", labels=["bad", "good"]).fit(TEXTS), TEXTS
    if name == "BackboneSelector":
        return BackboneSelector(["tiny_cnn"], cv=2).fit(IMAGES, LABELS), IMAGES
    if name == "DriftDetector":
        return DriftDetector("mmd", n_permutations=20, random_state=0).fit(
            IMAGES.reshape(8, -1)[:, :50]
        ), None
    domains = np.r_[[1] * 4, [-1] * 4]
    model = DomainAdaptedClassifier(ImageEmbedder("tiny_cnn", weights=None), adaptation="center")
    return model.fit(IMAGES, LABELS, sample_domain=domains), IMAGES


@pytest.mark.parametrize(
    "name",
    [
        "ImageMultiTask",
        "ZeroShotTextClassifier",
        "BackboneSelector",
        "DomainAdaptedClassifier",
        "DriftDetector",
    ],
)
def test_skops_round_trip_of_the_other_estimators(tmp_path, name):
    import pandas as pd

    if name == "DomainAdaptedClassifier":
        pytest.importorskip("skada")
    model, X = _meta_estimator(name)
    sio.dump(model, tmp_path / "m.skops")
    assert set(sio.get_untrusted_types(file=tmp_path / "m.skops")) <= set(skops_trusted_types())
    loaded = sio.load(tmp_path / "m.skops", trusted=skops_trusted_types())
    if name == "DriftDetector":
        new = IMAGES.reshape(8, -1)[:, :50] + 30
        assert loaded.test(new).p_value == model.test(new).p_value
        return
    assert np.array_equal(np.asarray(loaded.predict(X)), np.asarray(model.predict(X)))
    if hasattr(model, "report_"):  # pandas reports travel as JSON tables
        expected = model.report_ if isinstance(model.report_, pd.DataFrame) else model.report_.to_frame()
        actual = loaded.report_ if isinstance(loaded.report_, pd.DataFrame) else loaded.report_.to_frame()
        pd.testing.assert_frame_equal(actual, expected, check_dtype=False, check_index_type=False)


def test_the_trusted_list_names_every_class_a_file_can_hold():
    import importlib
    import pkgutil

    import sktransfer
    from sktransfer._persistence import Portable

    for module in pkgutil.walk_packages(sktransfer.__path__, "sktransfer."):
        importlib.import_module(module.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    portable = {
        f"{c.__module__}.{c.__name__}"
        for c in subclasses(Portable)
        if c.__module__.startswith("sktransfer.") and not c.__name__.startswith(("_", "Base"))
    }
    trusted = set(skops_trusted_types())
    assert portable <= trusted, f"add to SKOPS_TRUSTED: {sorted(portable - trusted)}"
    for name in trusted:  # every entry names a class that exists
        module, _, cls = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), name


@pytest.mark.parametrize("backbone", ["sentence-transformers/some-repo", "/tmp"])
def test_a_file_naming_a_hub_repo_or_a_folder_is_refused_before_anything_loads(
    tmp_path, monkeypatch, backbone
):
    import sktransfer.backbones._registry as registry

    model, _ = _fitted("text pipeline")
    sio.dump(model, tmp_path / "m.skops")
    # schema.json holds the name as a JSON string inside a JSON string: escaped twice
    old, new = (json.dumps(json.dumps(name))[1:-1].encode() for name in ("tiny_text", backbone))

    def point_elsewhere(name, data):
        assert name != "schema.json" or old in data
        return data.replace(old, new) if name == "schema.json" else data

    tampered = _rewrite(tmp_path / "m.skops", point_elsewhere)
    monkeypatch.setattr(registry, "remembered", lambda *a: pytest.fail("a backbone was loaded"))
    with pytest.raises(ValueError, match="a skops file must not choose"):
        sio.load(tampered, trusted=skops_trusted_types())


def test_a_weight_preset_other_than_the_default_cannot_go_to_skops(tmp_path):
    embedder = ImageEmbedder("resnet18", weights=None).fit(IMAGES[:2])
    embedder.weights = "IMAGENET1K_V1"  # as if fitted with that preset (no download here)
    with pytest.raises(ValueError, match="weights='IMAGENET1K_V1'"):
        sio.dump(embedder, tmp_path / "m.skops")


def test_loading_leaves_the_callers_random_state_alone(tmp_path):
    model, _ = _fitted("ImageClassifier")
    sio.dump(model, tmp_path / "m.skops")
    state = torch.random.get_rng_state()
    sio.load(tmp_path / "m.skops", trusted=skops_trusted_types())
    assert torch.equal(state, torch.random.get_rng_state())


def test_the_accelerator_is_machine_settings_not_model(tmp_path, fresh_accelerate):
    accelerate = fresh_accelerate
    clf = ImageClassifier(
        "tiny_cnn", weights=None, max_epochs=1, accelerator=accelerate.Accelerator(cpu=True)
    )
    clf.fit(IMAGES, LABELS)
    sio.dump(clf, tmp_path / "m.skops")
    assert set(sio.get_untrusted_types(file=tmp_path / "m.skops")) <= set(skops_trusted_types())
    loaded = sio.load(tmp_path / "m.skops", trusted=skops_trusted_types())
    assert loaded.accelerator is None and clf.accelerator is not None
    assert np.array_equal(loaded.predict(IMAGES), clf.predict(IMAGES))
