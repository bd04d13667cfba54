"""Behaviour of the fine-tuning estimators, on tiny backbones and small images."""

import pickle
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils._param_validation import InvalidParameterError
from skorch.callbacks import Callback

import sktransfer.backbones._registry as registry
from sktransfer import ImageClassifier, ImageRegressor, TextClassifier, TextRegressor
from sktransfer.backbones import load_backbone
from sktransfer.finetune._probe import PROBE_PENALTIES, UNVALIDATED_PENALTY, fit_head_on_features

from .conftest import out_of_memory_above

FAST = dict(max_epochs=3, batch_size=8, random_state=0)


def dark_bright(n=24, size=24, seed=0):
    """Images whose label is their brightness: learnable in a few epochs by any network."""
    rng = np.random.default_rng(seed)
    labels = np.array(["dark", "bright"] * (n // 2))
    base = np.where(labels == "dark", 50, 200)[:, None, None, None]
    X = np.clip(rng.normal(base, 25, size=(n, size, size, 3)), 0, 255).astype(np.uint8)
    return X, labels


def initial_model():
    """The tiny backbone as every fit starts from it (random init is seeded)."""
    return SimpleNamespace(backbone=load_backbone("tiny_cnn"))


def block_params(model, name):
    backbone = model.backbone
    block = backbone.blocks[backbone.block_names().index(name)]
    return {n: p.detach().clone() for n, p in backbone.block_parameters(block)}


def changed(before, model, name):
    after = block_params(model, name)
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.fixture(scope="module")
def fitted():
    X, y = dark_bright()
    return ImageClassifier("tiny_cnn", freeze="none", lr=3e-3, **FAST).fit(X, y), X, y


def test_classifier_api_with_string_labels(fitted):
    clf, X, y = fitted
    assert list(clf.classes_) == ["bright", "dark"]
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert set(clf.predict(X)) <= {"bright", "dark"}
    scores = clf.decision_function(X)  # binary: the log-odds of classes_[1], as sklearn expects
    assert scores.shape == (len(X),)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[(scores > 0).astype(int)])
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba, rtol=1e-5, atol=1e-6)
    assert 0 <= clf.score(X, y) <= 1


def test_classifier_learns_a_separable_problem():
    X, y = dark_bright(n=32)
    clf = ImageClassifier(
        "tiny_cnn",
        freeze="none",
        lr=1e-2,
        augment="none",
        max_epochs=8,
        batch_size=8,
        random_state=0,
        label_smoothing=0.0,
    )
    assert clf.fit(X[:24], y[:24]).score(X[24:], y[24:]) == 1.0


def test_multilabel_indicator_targets():
    X, _ = dark_bright(n=16)
    Y = np.array([[i % 2, (i // 2) % 2] for i in range(16)])
    clf = ImageClassifier("tiny_cnn", **FAST).fit(X, Y)
    assert clf.predict(X).shape == (16, 2) and set(np.unique(clf.predict(X))) <= {0, 1}
    assert clf.predict_proba(X).shape == (16, 2)


def test_regressor_single_and_multi_output():
    X, _ = dark_bright(n=16)
    brightness = X.mean(axis=(1, 2, 3))
    reg = ImageRegressor("tiny_cnn", freeze="none", lr=3e-3, **FAST).fit(X, brightness)
    assert reg.predict(X).shape == (16,)
    Y = np.c_[brightness, -brightness]
    assert ImageRegressor("tiny_cnn", **FAST).fit(X, Y).predict(X).shape == (16, 2)


@pytest.mark.parametrize(
    "freeze, trains",
    [
        ("backbone", []),
        ("last:1", ["stage2"]),
        (2, ["stage1", "stage2"]),
        ("none", ["stem", "stage1", "stage2"]),
        ("first:1", ["stem"]),  # the input side: surgical fine-tuning
        ("first:2", ["stem", "stage1"]),
        (["stem.*", "stage1.*"], ["stage2"]),  # the backbone's own parameter names
        (["backbone.model.stem.*", "backbone.model.stage1.*"], ["stage2"]),
        (lambda name: not name.startswith("stage2."), ["stage2"]),  # True freezes
    ],
)
def test_freeze_specs_train_exactly_the_chosen_blocks(freeze, trains):
    X, y = dark_bright(n=16)
    reference = initial_model()
    before = {name: block_params(reference, name) for name in ("stem", "stage1", "stage2")}
    clf = ImageClassifier("tiny_cnn", freeze=freeze, lr=1e-2, lr_decay=1.0, **FAST).fit(X, y)
    model = clf.net_.module_
    assert [name for name in ("stem", "stage1", "stage2") if changed(before[name], model, name)] == trains


def test_trainable_parameters_are_listed():
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", freeze="last:1", max_epochs=1).fit(X, y)
    assert clf.trainable_parameters_ == [
        "stage2.0.weight",
        "stage2.0.bias",
        "stage2.1.weight",
        "stage2.1.bias",
        "head.linear.weight",
        "head.linear.bias",
    ]


@pytest.mark.parametrize(
    "params, match",
    [
        (
            {"freeze": ["no_such_block"]},
            r"'no_such_block' matches no parameter.*\['stem', 'stage1', 'stage2', 'classifier'\]",
        ),
        ({"freeze": ["stem.*", "stage3.*"]}, r"'stage3\.\*' matches no parameter.*Did you mean.*stage"),
        ({"unfreeze": {0: "backbone", 2: "last:9"}}, r"unfreeze\[2\]='last:9' asks for 9"),
        ({"freeze": "first:4"}, r"freeze='first:4' asks for the first 4 blocks.*has 3"),
        (
            {"unfreeze": {0: "backbone", 1: ["nope.*"]}},
            r"unfreeze\[1\] pattern 'nope\.\*' matches no parameter",
        ),
        ({"freeze": lambda name: "yes"}, "must return True"),
        ({"freeze": lambda name: name.foo}, "raised AttributeError.*'stem.0.weight'"),
    ],
)
def test_bad_freeze_specs_fail_before_any_forward_pass(monkeypatch, params, match):
    from sktransfer.backbones._tiny import _TinyCNN

    calls = []
    original = _TinyCNN.forward
    monkeypatch.setattr(_TinyCNN, "forward", lambda self, x: calls.append(1) or original(self, x))
    X, y = dark_bright(n=8)
    with pytest.raises(InvalidParameterError, match=match):
        ImageClassifier("tiny_cnn", max_epochs=3, **params).fit(X, y)
    assert calls == []  # not even the output-width probe ran


def test_batchnorm_statistics_stay_frozen_even_when_training_everything():
    X, y = dark_bright(n=16)
    clf = ImageClassifier("tiny_cnn", freeze="none", **FAST).fit(X, y)
    bn = clf.net_.module_.backbone.model.stem[1]
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))  # untouched since init
    assert int(bn.num_batches_tracked) == 0


def test_discriminative_learning_rates():
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", lr=1e-3, lr_decay=0.5, freeze="none", max_epochs=1).fit(X, y)
    groups = {g["name"]: g["initial_lr"] for g in clf.net_.optimizer_.param_groups}
    assert groups["head"] == pytest.approx(1e-3)
    assert groups["stage2"] == pytest.approx(5e-4) and groups["stem"] == pytest.approx(1.25e-4)
    explicit = ImageClassifier(
        "tiny_cnn", freeze="last:3", lr={"head": 1e-2, "backbone": 1e-4}, lr_decay=0.1, max_epochs=1
    )
    groups = {g["name"]: g["initial_lr"] for g in explicit.fit(X, y).net_.optimizer_.param_groups}
    assert groups["head"] == pytest.approx(1e-2) and groups["stage2"] == pytest.approx(1e-4)
    assert groups["stage1"] == pytest.approx(1e-5)


def test_the_top_trainable_block_gets_the_backbone_rate_whichever_end_it_is_at():
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", lr={"head": 1e-2, "backbone": 1e-4}, lr_decay=0.1, freeze="first:2")
    groups = {
        g["name"]: g["initial_lr"]
        for g in clf.set_params(max_epochs=1).fit(X, y).net_.optimizer_.param_groups
    }
    # stage1 is the highest block that trains: it starts at the backbone rate, stem below it
    # 10x less; stage2 (frozen) would train at the backbone rate if a schedule unfroze it.
    assert groups["stage1"] == pytest.approx(1e-4) and groups["stem"] == pytest.approx(1e-5)
    assert groups["stage2"] == pytest.approx(1e-4) and groups["head"] == pytest.approx(1e-2)


def test_gradual_unfreezing_trains_newly_unfrozen_blocks():
    X, y = dark_bright(n=16)
    reference = initial_model()
    stem_before = block_params(reference, "stem")
    only_head = ImageClassifier("tiny_cnn", unfreeze={0: "backbone"}, lr_decay=1.0, **FAST).fit(X, y)
    assert not changed(stem_before, only_head.net_.module_, "stem")
    later = ImageClassifier("tiny_cnn", unfreeze={0: "backbone", 2: "none"}, lr=1e-2, lr_decay=1.0, **FAST)
    later.fit(X, y)
    assert changed(stem_before, later.net_.module_, "stem")
    backbone = later.net_.module_.backbone
    assert all(p.requires_grad for block in backbone.blocks for _, p in backbone.block_parameters(block))


@pytest.mark.parametrize(
    "params, match",
    [
        ({"freeze": "lastt:2"}, r"'none', 'backbone', 'last:K'.*\['stem', 'stage1', 'stage2'\]"),
        ({"freeze": "last:7"}, "asks for 7 trainable blocks, but this backbone has 3"),
        ({"lr": 0.0}, "lr"),
        ({"lr": -1e-3}, "lr"),
        ({"lr": {"head": 1e-3}}, "'backbone'"),
        ({"unfreeze": {2: "none", 0: "backbone"}}, "out of order"),
        ({"unfreeze": {0: "bogus"}}, "not a freeze specification"),
        ({"augment": "heavy"}, "augment"),
        ({"pooling": "mean"}, "pooling"),
    ],
)
def test_bad_parameters(params, match):
    X, y = dark_bright(n=8)
    with pytest.raises(InvalidParameterError, match=match):
        ImageClassifier("tiny_cnn", max_epochs=1, **params).fit(X, y)


@pytest.mark.parametrize(
    "make_y, match",
    [
        (lambda n: np.array(["ants"] * n), "single class.*'ants'"),
        (lambda n: np.array(["a", "b"] * (n // 2))[:-1], "X has 8 samples but y has 7"),
        (lambda n: np.r_[np.nan, np.ones(n - 1)], "NaN at index 0"),
    ],
)
def test_bad_targets(make_y, match):
    X, _ = dark_bright(n=8)
    with pytest.raises(ValueError, match=match):
        ImageClassifier("tiny_cnn", max_epochs=1).fit(X, make_y(8))


def _fails(image):
    raise ZeroDivisionError("division by zero")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"class_weight": {"zz": 2.0}}, r"class_weight names \['zz'\], which are not classes of y"),
        (
            {"early_stopping": True, "validation_fraction": 0.01, "freeze": "last:3"},
            "cannot hold out validation_fraction=0.01",
        ),
        (
            {"augment": _fails, "freeze": "none"},
            r"Image \d+ \(ndarray\).*augment=.*_fails.*ZeroDivisionError",
        ),
        ({"augment": lambda image: "x", "freeze": "none"}, r"augment=.*returned a str; it must take a PIL"),
    ],
)
def test_errors_name_the_parameter_at_fault(params, match):
    X, y = dark_bright(n=8)
    with pytest.raises(ValueError, match=match):
        ImageClassifier("tiny_cnn", max_epochs=1, batch_size=4, **params).fit(X, y)


def test_regressor_rejects_nan_targets():
    X, _ = dark_bright(n=8)
    y = np.ones(8)
    y[5] = np.nan
    with pytest.raises(ValueError, match="index 5"):
        ImageRegressor("tiny_cnn", max_epochs=1).fit(X, y)


def test_early_stopping_restores_the_best_epoch():
    X, y = dark_bright(n=40)
    clf = ImageClassifier(
        "tiny_cnn",
        freeze="none",
        lr=0.5,
        early_stopping=True,
        patience=2,
        validation_fraction=0.25,
        max_epochs=15,
        batch_size=8,
        random_state=0,
    )
    clf.fit(X, y)
    valid_losses = clf.net_.history[:, "valid_loss"]
    assert len(valid_losses) < 15  # stopped early: lr=0.5 makes the validation loss blow up
    _, valid_idx = clf._split(torch.as_tensor(np.searchsorted(clf.classes_, y)), 0)
    logits = torch.from_numpy(clf.predict_log_proba(X[valid_idx]))  # logits up to a constant
    targets = torch.as_tensor(np.searchsorted(clf.classes_, y[valid_idx]))
    restored = torch.nn.functional.cross_entropy(logits, targets, label_smoothing=0.1).item()
    assert restored == pytest.approx(min(valid_losses), rel=1e-3)


def test_balanced_class_weight():
    X, _ = dark_bright(n=12)
    y = np.array(["a"] * 9 + ["b"] * 3)
    clf = ImageClassifier("tiny_cnn", class_weight="balanced", max_epochs=1).fit(X, y)
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), [12 / 18, 12 / 6])


def test_random_state_makes_cpu_fits_reproducible_and_leaves_global_rng_alone():
    X, y = dark_bright(n=16)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the legacy global RNG is what we check)
    a = ImageClassifier("tiny_cnn", freeze="none", **FAST).fit(X, y).predict_proba(X)
    b = ImageClassifier("tiny_cnn", freeze="none", **FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])  # noqa: NPY002
    c = ImageClassifier("tiny_cnn", freeze="none", **{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_frozen_backbone_features_are_computed_once_with_the_same_result(monkeypatch):
    import sktransfer.finetune._base as base

    X, y = dark_bright(n=16)
    params = dict(freeze="backbone", augment="none", lr=1e-2, **FAST)
    calls = []
    shortcut = ImageClassifier("tiny_cnn", **params)
    slow = ImageClassifier("tiny_cnn", precompute_features=False, **params)

    def counting_load(*args, _original=base.load_backbone, **kwargs):
        backbone = _original(*args, **kwargs)  # this fit's own copy: the hook stays with it
        backbone.register_forward_hook(lambda *a: calls.__setitem__(-1, calls[-1] + 1))
        return backbone

    monkeypatch.setattr(base, "load_backbone", counting_load)
    for clf in (shortcut, slow):
        calls.append(0)
        clf.fit(X, y)
    assert shortcut.used_precomputed_features_ and not slow.used_precomputed_features_
    batches_per_epoch = 2
    assert calls[0] == 1 + batches_per_epoch  # sample forward + one pass, shared with the probe head
    assert calls[1] == 1 + batches_per_epoch * (1 + FAST["max_epochs"])  # probe pass + every epoch
    np.testing.assert_allclose(shortcut.predict_proba(X), slow.predict_proba(X), rtol=1e-5, atol=1e-6)
    # skorch trained the head alone; the fitted net holds the whole model, which keeps training
    assert (
        type(shortcut.net_.module_).__name__ == "TransferModel"
        and shortcut.net_.module is shortcut.net_.module_
    )
    head = shortcut.net_.module_.head.linear.weight.detach().clone()
    shortcut.partial_fit(X, y)
    assert shortcut.used_precomputed_features_ and len(shortcut.net_.history) == FAST["max_epochs"] + 1
    assert not torch.equal(head, shortcut.net_.module_.head.linear.weight)


def test_warm_start_and_partial_fit_continue_from_the_fitted_head():
    X, y = dark_bright(n=16)
    clf = ImageClassifier("tiny_cnn", freeze="last:3", **FAST).fit(X, y)
    head = clf.net_.module_.head.linear.weight.detach().clone()
    clf.set_params(lr=1e-12)  # almost no update: the weights must be the fitted ones
    clf.partial_fit(X, y)
    assert clf.n_epochs_ == FAST["max_epochs"] + 1
    torch.testing.assert_close(clf.net_.module_.head.linear.weight, head, rtol=1e-5, atol=1e-6)
    clf.set_params(warm_start=True, max_epochs=2).fit(X, y)
    assert clf.n_epochs_ == FAST["max_epochs"] + 3
    torch.testing.assert_close(clf.net_.module_.head.linear.weight, head, rtol=1e-5, atol=1e-6)
    cold = clf.set_params(warm_start=False).fit(X, y)
    assert cold.n_epochs_ == 2


def test_pickle_roundtrip_predicts_identically(fitted):
    clf, X, _ = fitted
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


def test_safetensors_weights_roundtrip(fitted, tmp_path):
    clf, X, y = fitted
    clf.save_weights(tmp_path / "model.safetensors")
    other = ImageClassifier("tiny_cnn", weights=None, max_epochs=1, random_state=5).fit(X, y)
    assert not np.allclose(other.predict_proba(X), clf.predict_proba(X))
    other.load_weights(tmp_path / "model.safetensors")
    np.testing.assert_allclose(other.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_clone_never_loads_weights(fitted, monkeypatch):
    clf, _, _ = fitted
    monkeypatch.setattr(registry, "remembered", lambda *a: pytest.fail("clone loaded weights"))
    cloned = clone(clf)
    assert not hasattr(cloned, "net_") and cloned.get_params()["freeze"] == "none"


def test_grid_search_over_freezing_strategies_and_cross_validation():
    X, y = dark_bright(n=24)
    search = GridSearchCV(
        ImageClassifier("tiny_cnn", **FAST),
        {"freeze": ["backbone", "last:1", "none"], "lr": [1e-2, 1e-3]},
        cv=2,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 6
    assert search.cv_results_["rank_test_score"].min() == 1
    assert hasattr(search.best_estimator_, "net_")
    assert cross_val_score(ImageClassifier("tiny_cnn", **FAST), X, y, cv=2).shape == (2,)


def test_augmentation_presets_and_callables(tmp_path):
    from torchvision.transforms import v2

    X, y = dark_bright(n=8)
    paths = []
    for i, array in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(array).save(paths[-1])
    for augment in ("light", "standard", v2.RandomRotation(10)):
        clf = ImageClassifier("tiny_cnn", augment=augment, max_epochs=1, batch_size=4).fit(paths, y)
        assert clf.predict(paths).shape == (8,)


@pytest.mark.parametrize("crop_mode", ["center", "border"])
@pytest.mark.parametrize(
    "returns",
    [
        lambda image: np.asarray(image),
        lambda image: torch.as_tensor(np.array(image)).permute(2, 0, 1) / 255.0,
    ],
    ids=["array", "float tensor"],
)
def test_a_callable_may_return_an_array_or_a_float_tensor(returns, crop_mode):
    from sktransfer.backbones import DataConfig
    from sktransfer.data._augment import train_transform

    config = DataConfig(input_size=16, crop_pct=1.0, crop_mode=crop_mode)
    picture = Image.fromarray(np.full((32, 96, 3), 200, dtype=np.uint8))
    out = train_transform(returns, config)(picture)
    assert out.shape == (3, 16, 16) and out.dtype == torch.uint8  # resized and cropped, whatever came
    if crop_mode == "border":  # 5 picture rows, padded with the mean's grey, not white
        assert (out[0, :, 8] == 200).sum() == 5 and (out[0, :, 8] == 124).sum() == 11


def test_auto_augmentation_is_light_only_when_backbone_blocks_train():
    X, y = dark_bright(n=16)
    head_only = ImageClassifier("tiny_cnn", freeze="backbone", **FAST).fit(X, y)
    assert head_only.augment_ == "none" and head_only.used_precomputed_features_
    unfrozen = ImageClassifier("tiny_cnn", freeze="last:1", **FAST).fit(X, y)
    assert unfrozen.augment_ == "light" and not unfrozen.used_precomputed_features_
    scheduled = ImageClassifier("tiny_cnn", freeze="backbone", unfreeze={0: "backbone", 1: "none"}, **FAST)
    assert scheduled.fit(X, y).augment_ == "light"
    asked = ImageClassifier("tiny_cnn", freeze="backbone", augment="light", **FAST).fit(X, y)
    assert asked.augment_ == "light" and not asked.used_precomputed_features_
    asked.set_params(freeze="last:1", augment="none", warm_start=True).fit(X, y)
    assert asked.augment_ == "none"


def test_fp16_training_scales_the_loss_and_callbacks_see_true_gradients():
    from skorch.callbacks import Callback

    class FirstGradients(Callback):
        def initialize(self):
            self.norms, self.scales = [], []
            return self

        def on_grad_computed(self, net, named_parameters, **kwargs):
            grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
            self.norms.append(float(torch.stack(grads).norm()))
            self.scales.append(None if net.grad_scaler_ is None else net.grad_scaler_.get_scale())

    X, y = dark_bright(n=16)
    spies = {}
    for precision in ("fp32", "bf16", "fp16"):
        spies[precision] = FirstGradients()
        clf = ImageClassifier(
            "tiny_cnn", freeze="none", precision=precision, callbacks=[("spy", spies[precision])], **FAST
        ).fit(X, y)
        assert np.isfinite(clf.predict_proba(X)).all()
    assert spies["fp32"].scales[0] is None and spies["bf16"].scales[0] is None  # bf16 needs no scaling
    assert spies["fp16"].scales[0] > 1
    assert spies["fp16"].norms[0] == pytest.approx(spies["fp32"].norms[0], rel=0.05)
    assert clf.net_.grad_scaler_ is None  # not kept: a CUDA scaler would not unpickle on a CPU


def test_verbose_controls_the_epoch_table(capsys):
    X, y = dark_bright(n=8)
    ImageClassifier("tiny_cnn", max_epochs=1, verbose=0).fit(X, y)
    assert capsys.readouterr().out == ""
    ImageClassifier("tiny_cnn", freeze="last:3", max_epochs=2, verbose=1).fit(X, y)
    assert "train_loss" in capsys.readouterr().out
    ImageClassifier("tiny_cnn", max_epochs=2, verbose=1).fit(X, y)  # freeze="auto" says what it chose
    assert "freeze='auto' chose" in capsys.readouterr().out


TEXTS = [
    "good fun film",
    "great acting",
    "loved it",
    "wonderful",
    "bad plot",
    "awful acting",
    "boring",
    "hated it",
]
SENTIMENT = np.array([1, 1, 1, 1, 0, 0, 0, 0])


def test_text_classifier_and_regressor():
    clf = TextClassifier(
        "tiny_text", lr=1e-2, lr_decay=1.0, max_epochs=20, batch_size=4, random_state=0, label_smoothing=0.0
    ).fit(TEXTS, SENTIMENT)
    assert clf.score(TEXTS, SENTIMENT) == 1.0
    reg = TextRegressor("tiny_text", max_epochs=2, batch_size=4, random_state=0).fit(TEXTS, SENTIMENT * 2.0)
    assert reg.predict(TEXTS).shape == (8,)


def test_text_lr_auto_follows_the_labelled_texts(monkeypatch):
    import sktransfer.finetune._inputs as inputs

    params = dict(max_epochs=1, batch_size=4, random_state=0)
    few = TextClassifier("tiny_text", **params).fit(TEXTS, SENTIMENT)
    assert few.lr == "auto" and few.lr_ == inputs.FEW_TEXTS_LR
    rates = {g["initial_lr"] for g in few.net_.optimizer_.param_groups}
    assert rates == set(inputs.FEW_TEXTS_LR)  # the encoder trains at the few-texts rate
    monkeypatch.setattr(inputs, "AUTO_LR_TEXTS", 8)
    assert TextRegressor("tiny_text", **params).fit(TEXTS, SENTIMENT * 1.0).lr_ == inputs.MANY_TEXTS_LR
    # Rows of weight 0 teach nothing, so they do not count towards the threshold.
    weights = np.r_[np.ones(7), 0.0]
    assert few.fit(TEXTS, SENTIMENT, sample_weight=weights).lr_ == inputs.FEW_TEXTS_LR
    # A fitted model with lr="auto" survives pickling (skops files: test_persistence.py).
    again = pickle.loads(pickle.dumps(few))
    np.testing.assert_allclose(again.predict_proba(TEXTS), few.predict_proba(TEXTS), rtol=1e-5)
    X, y = dark_bright(n=8)
    with pytest.raises(InvalidParameterError, match="lr"):
        ImageClassifier("tiny_cnn", lr="auto", max_epochs=1).fit(X, y)


def test_counting_labelled_texts_leaves_the_source_mask_alone():
    from sktransfer.finetune._base import _count_labelled

    source = np.array([True, True, False, True])  # the fit goes on using it: not to be edited
    assert _count_labelled(torch.zeros(4), torch.tensor([1.0, 0.0, 1.0, 1.0]), source) == 2
    assert source.tolist() == [True, True, False, True]
    assert _count_labelled(torch.zeros(3), None, None) == 3


def test_text_frozen_shortcut_matches_full_path():
    params = dict(freeze="backbone", lr=1e-2, max_epochs=2, batch_size=4, random_state=0)
    a = TextClassifier("tiny_text", **params).fit(TEXTS, SENTIMENT)
    b = TextClassifier("tiny_text", precompute_features=False, **params).fit(TEXTS, SENTIMENT)
    assert a.used_precomputed_features_ and not b.used_precomputed_features_
    np.testing.assert_allclose(a.predict_proba(TEXTS), b.predict_proba(TEXTS), rtol=1e-4, atol=1e-5)


def test_learning_rate_pair_and_multilabel_class_weight_error():
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", lr=(1e-2, 1e-4), lr_decay=0.5, freeze="none", max_epochs=1).fit(X, y)
    groups = {g["name"]: g["initial_lr"] for g in clf.net_.optimizer_.param_groups}
    assert groups["head"] == pytest.approx(1e-2) and groups["stage1"] == pytest.approx(5e-5)
    with pytest.raises(InvalidParameterError, match="pair"):
        ImageClassifier("tiny_cnn", lr=(1e-2, -1.0), max_epochs=1).fit(X, y)
    Y = np.array([[i % 2, 1 - i % 2] for i in range(8)])
    with pytest.raises(ValueError, match="multilabel"):
        ImageClassifier("tiny_cnn", class_weight="balanced", max_epochs=1).fit(X, Y)


def test_frozen_blocks_run_without_dropout_while_trainable_ones_train():
    model = TextClassifier("tiny_text", freeze="last:1", max_epochs=1)._fit(
        TEXTS, SENTIMENT, epochs=1, keep=False
    )
    module = model.net_.module_.train()
    backbone = module.backbone
    assert not backbone.model.embeddings.training and not backbone.model.layers[0].training
    assert backbone.model.layers[1].training and module.head.training


def test_single_block_backbones_can_be_unfrozen():
    from torch import nn

    from sktransfer.backbones import Block, from_module

    custom = from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    custom.blocks = [Block("all", [""])]
    X, y = dark_bright(n=8)
    clf = ImageClassifier(custom, freeze="none", max_epochs=1).fit(X, y)
    assert not clf.used_precomputed_features_
    assert all(p.requires_grad for p in clf.net_.module_.backbone.parameters())


@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_probe_head_init_fits_the_head_before_training(freeze):
    X, y = dark_bright(n=24)
    frozen_lr = dict(lr=1e-12, freeze=freeze, max_epochs=1, batch_size=8, random_state=0)
    probe = ImageClassifier("tiny_cnn", head_init="probe", **frozen_lr).fit(X, y)
    random = ImageClassifier("tiny_cnn", head_init="random", **frozen_lr).fit(X, y)
    assert probe.score(X, y) == 1.0  # the head was fitted on frozen features first
    assert random.score(X, y) < 0.8  # a random head, barely trained
    assert probe.probe_penalty_ in PROBE_PENALTIES and random.probe_penalty_ is None


def test_probe_penalty_is_chosen_by_cross_validation():
    rng = torch.Generator().manual_seed(0)
    features = torch.randn(60, 16, generator=rng)
    separable = (features[:, 0] > 0).long()
    noise = torch.randint(0, 2, (60,), generator=rng)
    chosen = {}
    for name, targets in {"separable": separable, "noise": noise}.items():
        head = torch.nn.Linear(16, 2)
        chosen[name] = fit_head_on_features(head, features, targets, torch.nn.CrossEntropyLoss(), seed=0)
    assert chosen["separable"] <= 1e-2  # held-out loss keeps falling as the margin grows
    assert chosen["noise"] == max(PROBE_PENALTIES)  # nothing to learn: shrink the weights
    head = torch.nn.Linear(16, 2)
    fit_head_on_features(head, features, separable, torch.nn.CrossEntropyLoss(), seed=0)
    assert (head(features).argmax(1) == separable).float().mean() > 0.95
    rare = torch.zeros(60, dtype=torch.long)
    rare[:2] = 1  # two samples of a class cannot fill three folds: no validation, a fixed penalty
    penalty = fit_head_on_features(
        torch.nn.Linear(16, 2), features, rare, torch.nn.CrossEntropyLoss(), seed=0
    )
    assert penalty == UNVALIDATED_PENALTY


def test_probe_penalty_cross_validation_keeps_groups_apart():
    """Each row three times, as one group (one patient's images): folds that split a group
    let a weak penalty memorise noise and score well; folds by group choose the strongest."""
    rng = torch.Generator().manual_seed(0)
    features = torch.randn(30, 16, generator=rng).repeat_interleave(3, dim=0)
    noise = torch.randint(0, 2, (30,), generator=rng).repeat_interleave(3)
    groups = np.repeat(np.arange(30), 3)
    chosen = {
        grouped: fit_head_on_features(
            torch.nn.Linear(16, 2),
            features,
            noise,
            torch.nn.CrossEntropyLoss(),
            seed=0,
            groups=groups if grouped else None,
        )
        for grouped in (False, True)
    }
    assert chosen[False] < 1e-2 and chosen[True] == max(PROBE_PENALTIES)


def test_fit_groups_reach_the_probe_penalty_search(monkeypatch):
    import sktransfer.finetune._base as base

    seen = []

    def spy(*args, groups=None, **kwargs):
        seen.append(groups)
        return fit_head_on_features(*args, groups=groups, **kwargs)

    monkeypatch.setattr(base, "fit_head_on_features", spy)
    X, y = dark_bright(n=24)
    groups = np.repeat(np.arange(12), 2)
    ImageClassifier("tiny_cnn", **FAST).fit(X, y, groups=groups)
    np.testing.assert_array_equal(seen[-1], groups)  # every row trains: every group


def test_one_labelled_image_a_class():
    X, y = dark_bright(n=2)  # few-shot at its limit: one dark picture, one bright
    model = ImageClassifier("tiny_cnn", **FAST).fit(X, y)
    assert model.probe_penalty_ == UNVALIDATED_PENALTY  # no fold to validate on: the fixed penalty
    assert model.predict_proba(X).shape == (2, 2)
    # freeze="auto" has nothing to hold out: it says so and trains the fixed default.
    with pytest.warns(
        UserWarning, match="freeze='auto'.*class '(dark|bright)' has a single labelled row"
    ) as record:
        auto = ImageClassifier("tiny_cnn", freeze="auto", **FAST).fit(X, y)
    assert record[0].filename == __file__
    fixed = ImageClassifier("tiny_cnn", freeze=auto.freeze_, **FAST).fit(X, y)
    np.testing.assert_allclose(auto.predict_proba(X), fixed.predict_proba(X), rtol=1e-5, atol=1e-6)
    assert len(auto.auto_report_) == 1 and auto.auto_report_["chosen"].all()
    assert auto.auto_report_["pruned_at"].iloc[0].startswith("not validated: class")
    with pytest.raises(ValueError, match="early_stopping=True cannot hold out.*set early_stopping=False"):
        ImageClassifier("tiny_cnn", early_stopping=True, **FAST).fit(X, y)


def test_default_fine_tuning_resolution():
    from sktransfer.finetune._inputs import finetune_size

    assert finetune_size(load_backbone("efficientnet_lite0", weights=None)) == 288
    assert finetune_size(load_backbone("vit_b_16", weights=None)) == 224  # fixed position embeddings
    X, y = dark_bright(n=8)
    assert ImageClassifier("tiny_cnn", max_epochs=1).fit(X, y).data_config_.input_size == 32
    assert ImageClassifier("tiny_cnn", image_size=48, max_epochs=1).fit(X, y).data_config_.input_size == 48


def test_light_augmentation_keeps_the_evaluation_scale():
    from torchvision.transforms import v2

    from sktransfer.backbones import DataConfig
    from sktransfer.data._augment import train_transform

    steps = train_transform("light", DataConfig(input_size=64, crop_pct=0.8)).transforms
    assert isinstance(steps[0], v2.Resize) and steps[0].size == [80]
    assert isinstance(steps[1], v2.RandomResizedCrop) and steps[1].scale == (0.8, 1.0)
    out = train_transform("light", DataConfig(input_size=64))(Image.new("RGB", (300, 200)))
    assert out.shape == (3, 64, 64) and out.dtype == torch.uint8


@pytest.mark.parametrize("crop_mode", ["squash", "border"])
@pytest.mark.parametrize("augment", ["none", "light", lambda image: image])
def test_squashed_or_padded_inputs_keep_the_whole_picture(augment, crop_mode):
    from sktransfer.backbones import DataConfig
    from sktransfer.data._augment import train_transform

    torch.manual_seed(0)  # the light preset's random crop and flip
    picture = np.zeros((32, 96, 3), dtype=np.uint8)
    picture[:, :32, 0] = 255  # the left third red, the rest black
    image = Image.fromarray(picture)
    centred = train_transform(augment, DataConfig(input_size=16, crop_pct=1.0))(image)
    whole = train_transform(augment, DataConfig(input_size=16, crop_pct=1.0, crop_mode=crop_mode))(image)
    assert centred.shape == whole.shape == (3, 16, 16)

    def red_columns(image):
        return int((image[0].float().amax(dim=0) > 200).sum())  # padding is the mean's grey

    if augment != "light":  # whose random crop may reach past the centre
        assert red_columns(centred) == 0  # the centre crop cut the red third off
    # Squashed or padded, a third of the columns stay red (the light preset flips and
    # crops a little).
    assert 3 <= red_columns(whole) <= 6
    if crop_mode == "border" and augment != "light":  # 5 picture rows, padded to 16 with grey
        assert (whole[0, :, 8] == 124).sum() == 11


def test_partial_fit_with_classes_accepts_a_class_absent_from_the_first_batch():
    X, _ = dark_bright(n=12)
    clf = ImageClassifier("tiny_cnn", max_epochs=1, batch_size=4, random_state=0)
    clf.partial_fit(X[:6], ["a", "b"] * 3, classes=["c", "a", "b"])
    assert clf.classes_.tolist() == ["a", "b", "c"]
    clf.partial_fit(X[6:], ["c"] * 6, classes=["a", "b", "c"])
    assert clf.predict_proba(X).shape == (12, 3)
    with pytest.raises(ValueError, match=r"classes=\['a', 'd'\] differs from the first fit's classes_"):
        clf.partial_fit(X[6:], ["a"] * 6, classes=["a", "d"])
    with pytest.raises(ValueError, match="regressor has no classes"):
        ImageRegressor("tiny_cnn", max_epochs=1).partial_fit(X, np.arange(12.0), classes=[0, 1])


@pytest.mark.parametrize(
    "estimator, first, second, match",
    [
        (ImageClassifier, ["a", "b"] * 6, np.eye(2, dtype=int)[np.arange(12) % 2], "predicts one label per"),
        (ImageClassifier, ["a", "b"] * 6, ["a", "b", "c"] * 4, r"labels \['c'\] not seen in the first fit"),
        (
            ImageRegressor,
            np.arange(12.0),
            np.ones((12, 2)),
            r"shape \(12, 2\), but the fitted model predicts",
        ),
    ],
)
def test_warm_start_refuses_a_changed_task(estimator, first, second, match):
    X, _ = dark_bright(n=12)
    model = estimator("tiny_cnn", max_epochs=1, batch_size=4, warm_start=True).fit(X, first)
    with pytest.raises(ValueError, match=match):
        model.fit(X, second)


def test_max_length_beyond_the_position_embeddings_is_refused():
    texts, y = ["good", "bad"] * 4, [1, 0] * 4
    with pytest.raises(InvalidParameterError, match=r"max_length=1000 exceeds .*'tiny_text' can read \(128"):
        TextClassifier("tiny_text", max_length=1000, max_epochs=1).fit(texts, y)
    long_text = ["word " * 400]  # longer than the limit: truncated, not a crash
    assert TextClassifier("tiny_text", max_length=128, max_epochs=1).fit(texts, y).predict(
        long_text
    ).shape == (1,)


def test_predict_retries_out_of_memory_batches_in_halves():
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", batch_size=8, max_epochs=1, random_state=0).fit(X, y)
    expected = clf.predict_proba(X)
    sizes = []
    handle = clf.net_.module_.backbone.register_forward_pre_hook(out_of_memory_above(2, sizes))
    with pytest.warns(RuntimeWarning) as record:
        got = clf.predict_proba(X)
    handle.remove()
    assert [str(w.message).split(";")[0] for w in record] == [
        "ImageClassifier: a batch of 8 did not fit on cpu",
        "ImageClassifier: a batch of 4 did not fit on cpu",
        "ImageClassifier: a batch of 4 did not fit on cpu",
    ]
    assert {w.filename for w in record} == {__file__}  # each retry, however deep, at the caller's line
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert sizes[:3] == [8, 4, 2]


def test_verbose_shows_progress_for_features_probe_and_predict(capsys):
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", freeze="backbone", max_epochs=1, batch_size=4, verbose=1).fit(X, y)
    clf.predict(X)
    err = capsys.readouterr().err
    assert "frozen features" in err and "probe head" in err and "predicting" in err


class _Spy(Callback):
    """Records ``read(net)`` at the end of each training batch, as a user's callback would."""

    def __init__(self, read):
        self.read = read

    def initialize(self):
        self.seen = []
        return self

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.seen.append(self.read(net))


def test_a_callback_reads_each_batch_loss_during_the_epoch():
    X, y = dark_bright(n=16)
    spy = _Spy(lambda net: net.history[-1, "batches", -1, "train_loss"])
    clf = ImageClassifier("tiny_cnn", freeze="none", max_epochs=2, batch_size=4, callbacks=[("spy", spy)])
    clf.fit(X, y)
    assert len(spy.seen) == 8 and all(isinstance(v, float) and np.isfinite(v) for v in spy.seen)
    assert spy.seen[-4:] == clf.net_.history[-1, "batches", :, "train_loss"]


def test_batch_losses_recorded_at_epoch_end_equal_those_recorded_per_batch(monkeypatch):
    from sktransfer.finetune._net import TransferNet

    X, y = dark_bright(n=16)
    params = dict(freeze="none", max_epochs=2, batch_size=4, random_state=0, early_stopping=True)
    eager = ImageClassifier("tiny_cnn", validation_fraction=0.25, **params).fit(X, y).net_.history
    monkeypatch.setattr(TransferNet, "_record_each_batch", lambda self: False)  # what a GPU does
    deferred = ImageClassifier("tiny_cnn", validation_fraction=0.25, **params).fit(X, y).net_.history
    for key in ("train_loss", "valid_loss", "train_batch_count", "valid_batch_count"):
        np.testing.assert_allclose(deferred[:, key], eager[:, key], rtol=1e-6)
    np.testing.assert_allclose(
        deferred[-1, "batches", :, "train_loss"], eager[-1, "batches", :, "train_loss"]
    )


def test_progress_bar_shows_the_running_training_loss():
    X, y = dark_bright(n=16)
    spy = _Spy(lambda net: dict(net.callbacks_)["progress_bar"].pbar_.postfix)
    clf = ImageClassifier("tiny_cnn", freeze="none", max_epochs=1, batch_size=4, verbose=2)
    clf.set_params(callbacks=[("spy", spy)]).fit(X, y)
    assert len(spy.seen) == 4
    assert all(re.fullmatch(r"train_loss=\d+\.\d+", postfix) for postfix in spy.seen)


def test_image_networks_run_channels_last_on_the_cpu():
    X, y = dark_bright(n=8)
    clf = ImageClassifier("tiny_cnn", freeze="none", max_epochs=1, batch_size=4).fit(X, y)
    conv = clf.net_.module_.backbone.model.stem[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    seen = []
    clf.net_.module_.backbone.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    clf.predict(X)
    assert seen and all(x.is_contiguous(memory_format=torch.channels_last) for x in seen)


def test_balanced_class_weight_with_a_class_absent_from_the_first_batch():
    X, _ = dark_bright(n=12)
    clf = ImageClassifier("tiny_cnn", class_weight="balanced", max_epochs=1, batch_size=4)
    clf.partial_fit(X, ["a"] * 9 + ["b"] * 3, classes=["a", "b", "c"])
    np.testing.assert_allclose(clf.net_.criterion_.weight.numpy(), [12 / 18, 12 / 6, 1.0])


def _feature_norm(logits, features, y_true):
    return features.pow(2).mean()


def _with_feature_norm(weight):
    from sktransfer.finetune._net import LossTerm

    class Penalised(ImageClassifier):
        def _loss_terms(self):
            return (LossTerm("feature_norm", _feature_norm, weight),)

    return Penalised


def test_loss_terms_see_the_features_train_them_and_reach_history():
    X, y = dark_bright(n=24)
    params = dict(freeze="none", lr=1e-2, max_epochs=4, batch_size=8, random_state=0, head_init="random")
    params.update(early_stopping=True, validation_fraction=0.25, patience=10)
    recorded = _with_feature_norm(0.0)("tiny_cnn", **params).fit(X, y)
    penalised = _with_feature_norm(10.0)("tiny_cnn", **params).fit(X, y)
    for model in (recorded, penalised):
        batches = model.net_.history[-1, "batches"]
        train = [b for b in batches if "train_loss" in b]
        assert all(isinstance(b["train_feature_norm_loss"], float) for b in train)
        assert any("valid_feature_norm_loss" in b for b in batches)

    def last_norm(model):
        return np.mean(
            [b["train_feature_norm_loss"] for b in model.net_.history[-1, "batches"] if "train_loss" in b]
        )

    assert last_norm(penalised) < 0.5 * last_norm(recorded)  # the term's gradient reached the backbone


def test_a_fitted_model_keeps_no_training_state():
    # gradients and optimiser moments would triple the size of a pickled model
    texts, y = ["good film", "bad film"] * 6, [1, 0] * 6
    model = TextClassifier("tiny_text", weights=None, max_epochs=1).fit(texts, y)
    assert all(p.grad is None for p in model.net_.module_.parameters())
    assert len(model.net_.optimizer_.state) == 0
    # the network is pickled once (skorch's device stream holds everything that shares it)
    network = len(pickle.dumps(model.net_.module_))
    assert len(pickle.dumps(model)) < 1.5 * network
    again = pickle.loads(pickle.dumps(model))
    assert again.net_.module is again.net_.module_
    np.testing.assert_allclose(again.predict_proba(texts), model.predict_proba(texts))
    before = model.predict_proba(texts)
    model.set_params(warm_start=True).fit(texts, y)  # a warm start still trains on
    assert model.n_epochs_ == 2 and not np.allclose(model.predict_proba(texts), before)


class _FailsInTraining(Callback):
    def on_epoch_begin(self, net, **kwargs):
        raise RuntimeError("the machine went away")


def test_a_failed_fit_leaves_an_earlier_fit_as_it_was():
    X, y = dark_bright(24)
    clf = ImageClassifier("tiny_cnn", freeze="backbone", **FAST).fit(X, y)
    classes, expected = clf.classes_.copy(), clf.predict_proba(X)
    with pytest.raises(RuntimeError, match="went away"):  # long after y is encoded
        clf.set_params(freeze="last:1", callbacks=[_FailsInTraining()]).fit(X, np.array(["a", "b", "c"] * 8))
    np.testing.assert_array_equal(clf.classes_, classes)
    np.testing.assert_allclose(clf.predict_proba(X), expected)

    reg = ImageRegressor("tiny_cnn", freeze="backbone", **FAST).fit(X, np.linspace(0, 1, 24))
    expected = reg.predict(X)
    with pytest.raises(RuntimeError, match="went away"):
        reg.set_params(freeze="last:1", callbacks=[_FailsInTraining()]).fit(
            X, 1000 + 50 * np.linspace(0, 1, 24)
        )
    np.testing.assert_allclose(reg.predict(X), expected)  # not in the new targets' units


def test_balanced_class_weights_count_rows_by_their_sample_weight():
    X, y = dark_bright(30)
    w = np.ones(30)
    w[np.flatnonzero(y == "dark")[:10]] = 0  # a weightless row is a dropped row
    kw = dict(freeze="backbone", class_weight="balanced", max_epochs=1, random_state=0)
    weighted = ImageClassifier("tiny_cnn", **kw).fit(X, y, sample_weight=w)
    dropped = ImageClassifier("tiny_cnn", **kw).fit(X[w > 0], y[w > 0])
    torch.testing.assert_close(weighted.net_.criterion_.weight, dropped.net_.criterion_.weight)
    torch.testing.assert_close(
        weighted.net_.criterion_.weight, torch.tensor([2 / 3, 2.0])
    )  # 20 bright, 5 dark


def test_unit_sample_weights_equal_none_with_class_weights():
    X, y = dark_bright(24)
    kw = dict(freeze="backbone", class_weight={"dark": 1.0, "bright": 3.0}, **FAST)
    plain = ImageClassifier("tiny_cnn", **kw).fit(X, y)
    with warnings.catch_warnings():  # a Series (read-only under copy-on-write) is copied, not viewed
        warnings.filterwarnings("error", message=".*not writable")
        ones = ImageClassifier("tiny_cnn", **kw).fit(X, y, sample_weight=pd.Series(np.ones(24)))
    # the weighted and unweighted code paths differ by rounding (2e-4 with or without class
    # weights); dividing by the sum of the weights alone made it 1e-2
    np.testing.assert_allclose(ones.predict_proba(X), plain.predict_proba(X), atol=1e-3)


def test_a_column_of_labels_is_read_as_scikit_learn_reads_it():
    from sklearn.exceptions import DataConversionWarning

    X, y = dark_bright(24)
    expected = ImageClassifier("tiny_cnn", freeze="backbone", **FAST).fit(X, y).predict_proba(X)
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        clf = ImageClassifier("tiny_cnn", freeze="backbone", **FAST).fit(X, pd.DataFrame({"label": y}))
    assert clf.classes_.tolist() == ["bright", "dark"] and not clf.multilabel_
    np.testing.assert_allclose(clf.predict_proba(X), expected, atol=1e-6)
