"""sample_weight in every fit: integer weights act as repeated rows, zeros as dropped rows.

Exact equality needs the same optimisation steps on both sides, so the fits below put
every row in one batch (one step per epoch) and start from a random head; the probe
head is checked on its own with a fixed penalty (its cross-validation folds depend on
the number of rows).
"""

import numpy as np
import pytest
import sklearn
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sktransfer import ImageClassifier, ImageRegressor, TextClassifier, TextRegressor
from sktransfer.finetune._model import Head
from sktransfer.finetune._probe import fit_head_on_features

ONE_BATCH = dict(batch_size=64, max_epochs=2, head_init="random", random_state=0)


def images(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)
    return X, np.array(["a", "b", "c"] * (n // 3)), X.mean(axis=(1, 2, 3))


TEXTS = ["good film", "bad film", "great plot", "awful plot", "fine acting", "poor acting"]


def cases():
    X, labels, brightness = images()
    return [
        (ImageClassifier("tiny_cnn", freeze="none", lr=1e-2, augment="none", **ONE_BATCH), X, labels),
        (ImageRegressor("tiny_cnn", freeze="none", lr=1e-2, augment="none", **ONE_BATCH), X, brightness),
        (TextClassifier("tiny_text", lr=1e-2, **ONE_BATCH), TEXTS, [1, 0] * 3),
        (TextRegressor("tiny_text", lr=1e-2, **ONE_BATCH), TEXTS, np.arange(6.0)),
    ]


def outputs(model, X):
    return model.predict_proba(X) if hasattr(model, "predict_proba") else model.predict(X)


def take(X, index):
    return X[index] if isinstance(X, np.ndarray) else [X[i] for i in index]


@pytest.mark.parametrize("model, X, y", cases(), ids=lambda v: type(v).__name__ if hasattr(v, "fit") else "")
def test_integer_weights_equal_repeated_rows_and_zeros_dropped_rows(model, X, y):
    n = len(y)
    y = np.asarray(y)
    weights = np.ones(n)
    weights[0], weights[1], weights[2] = 3, 0, 2
    weighted = model.__class__(**model.get_params()).fit(X, y, sample_weight=weights)
    repeat = np.repeat(np.arange(n), weights.astype(int))
    repeated = model.__class__(**model.get_params()).fit(take(X, repeat), y[repeat])
    np.testing.assert_allclose(outputs(weighted, X), outputs(repeated, X), rtol=1e-4, atol=1e-5)
    unweighted = model.__class__(**model.get_params()).fit(X, y)
    assert not np.allclose(outputs(weighted, X), outputs(unweighted, X), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("scale", [1e38, 1e-46], ids=["huge", "tiny"])
def test_weights_beyond_float32_range_fit_as_their_ratios(scale):
    # Weights only count relative to each other: 1e38 would overflow a float32 sum, 1e-46
    # would round to 0; both must fit as the same weights at a scale of one.
    model, X, y = cases()[0]
    weights = np.ones(len(y))
    weights[0], weights[1], weights[2] = 3, 0, 2
    scaled = model.__class__(**model.get_params()).fit(X, y, sample_weight=weights * scale)
    plain = model.__class__(**model.get_params()).fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(outputs(scaled, X), outputs(plain, X), rtol=1e-4, atol=1e-5)


def test_probe_head_weights_equal_repeated_rows():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(30, 8, generator=generator)
    targets = torch.arange(30) % 3
    weights = torch.ones(30)
    weights[:5] = 0
    weights[5:10] = 2
    criterion = torch.nn.CrossEntropyLoss()

    def fitted(f, t, w):
        head = Head(8, 3)
        with torch.no_grad():
            head.linear.weight.zero_()
            head.linear.bias.zero_()
        fit_head_on_features(head, f, t, criterion, seed=0, penalties=(1.0,), sample_weight=w)
        return head.linear.weight.detach()

    repeat = torch.repeat_interleave(torch.arange(30), weights.long())
    torch.testing.assert_close(
        fitted(features, targets, weights),
        fitted(features[repeat], targets[repeat], None),
        rtol=1e-3,
        atol=1e-4,
    )


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.ones(5), r"shape \(5,\); it needs one weight per sample \(12,\)"),
        (np.r_[np.ones(11), -1.0], r"sample_weight\[11\] = -1.0; weights must be finite and >= 0"),
        (np.zeros(12), "sums to 0"),
    ],
)
def test_bad_sample_weight(weights, match):
    X, y, _ = images()
    with pytest.raises(ValueError, match=match):
        ImageClassifier("tiny_cnn", max_epochs=1).fit(X, y, sample_weight=weights)


def test_sample_weight_routed_through_a_pipeline():
    X, y, _ = images()
    weights = np.ones(len(y))
    weights[:3] = 0
    with sklearn.config_context(enable_metadata_routing=True):
        clf = ImageClassifier("tiny_cnn", freeze="none", lr=1e-2, augment="none", **ONE_BATCH)
        clf.set_fit_request(sample_weight=True)
        pipe = make_pipeline(FunctionTransformer(), clf).fit(X, y, sample_weight=weights)
    direct = ImageClassifier("tiny_cnn", freeze="none", lr=1e-2, augment="none", **ONE_BATCH)
    direct.fit(X, y, sample_weight=weights)
    np.testing.assert_allclose(pipe.predict_proba(X), direct.predict_proba(X), rtol=1e-5, atol=1e-6)
    unweighted = ImageClassifier("tiny_cnn", freeze="none", lr=1e-2, augment="none", **ONE_BATCH).fit(X, y)
    assert not np.allclose(pipe.predict_proba(X), unweighted.predict_proba(X), rtol=1e-4, atol=1e-5)
