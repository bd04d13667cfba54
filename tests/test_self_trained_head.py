"""SelfTrainedHead: a fitted model's features kept, a new head self-trained on new inputs."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression

from sktransfer import SelfTrainedHead, TextClassifier


class FeatureModel(ClassifierMixin, BaseEstimator):
    """A stand-in for a fitted sktransfer classifier: features are the inputs themselves,
    predictions a logistic regression's (or ``proba`` as given)."""

    def __init__(self, proba=None):
        self.proba = proba

    def fit(self, X, y):
        self.head_ = LogisticRegression().fit(X, y)
        self.classes_ = self.head_.classes_
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64)

    def predict_proba(self, X):
        return self.head_.predict_proba(X) if self.proba is None else self.proba

    def predict(self, X):
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def two_clusters(n=400, seed=0, classes=(0, 1)):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, 5)) + 3.0 * y[:, None] * np.eye(5)[0]
    return X, np.asarray(classes)[y]


def test_the_new_head_follows_the_new_inputs():
    X_source, y_source = two_clusters()
    model = FeatureModel().fit(X_source, y_source)
    X_new, y_new = two_clusters(seed=1)
    rotation = np.eye(5)
    rotation[:2, :2] = [[np.cos(0.8), -np.sin(0.8)], [np.sin(0.8), np.cos(0.8)]]
    X_new = X_new @ rotation  # the classes drifted: rotated by 46 degrees
    before = model.score(X_new, y_new)
    updated = SelfTrainedHead(model).fit(X_new)
    assert updated.score(X_new, y_new) > before + 0.05
    assert updated.n_labelled_ == 0 and list(updated.classes_) == [0, 1]
    np.testing.assert_allclose(updated.predict_proba(X_new).sum(axis=1), 1.0)
    assert model.score(X_new, y_new) == before  # the model itself is untouched


@pytest.mark.parametrize("certainty", [0.6, 1 - 1e-7], ids=["hesitant", "saturated"])
def test_labels_set_their_rows_starting_point(certainty):
    X, y = two_clusters(classes=("neg", "pos"))
    coin = np.random.default_rng(0).random(len(X)) < 0.5
    # Predictions at random, hesitant or as sure as a saturated softmax: labelled rows
    # must still come first.
    first = np.where(coin, certainty, 1 - certainty)[:, None]
    clueless = FeatureModel(proba=np.hstack([first, 1 - first])).fit(X, y)
    assert abs(clueless.score(X, y) - 0.5) < 0.1
    partial = np.array([label if i % 5 < 2 else None for i, label in enumerate(y)], dtype=object)
    guided = SelfTrainedHead(clueless).fit(X, partial)  # 40 % labelled, the rest None
    assert guided.n_labelled_ == 160 and guided.score(X, y) > 0.9
    # Without the labels the head learns the model's random guesses, no better than chance.
    assert SelfTrainedHead(clueless).fit(X).score(X, y) < 0.7
    # The other marks of an unlabelled row: -1, NaN, pandas' missing values.
    for marked in (
        np.where(np.arange(len(y)) % 5 < 2, y.astype(object), -1),
        pd.Series(partial),  # pandas turns None into NaN
        pd.Series(partial, dtype="string"),  # pd.NA
    ):
        np.testing.assert_array_equal(SelfTrainedHead(clueless).fit(X, marked).predict(X), guided.predict(X))


def test_minus_one_is_a_label_when_it_is_a_class():
    X, y = two_clusters(classes=(-1, 1))
    model = FeatureModel().fit(X, y)
    assert SelfTrainedHead(model).fit(X, y).n_labelled_ == len(y)
    partial = pd.Series(np.where(np.arange(len(y)) % 2, y, np.nan))  # NaN marks the unlabelled
    assert SelfTrainedHead(model).fit(X, partial).n_labelled_ == len(y) // 2
    with pytest.raises(
        ValueError, match=r"mark unlabelled rows with None or NaN \(-1 is one of model's classes\)"
    ):
        SelfTrainedHead(model).fit(X, np.r_[[0], y[1:]])


def test_clear_errors():
    X, y = two_clusters()
    with pytest.raises(ValueError, match="model=FeatureModel is not fitted.*FrozenEstimator"):
        SelfTrainedHead(FeatureModel()).fit(X)
    model = FeatureModel().fit(X, y)
    with pytest.raises(ValueError, match=r"y holds 'maybe', which is not one of model's classes \[0, 1\]"):
        SelfTrainedHead(model).fit(X, np.r_[["maybe"], -np.ones(len(X) - 1)].astype(object))
    with pytest.raises(ValueError, match=r"y has shape \(3,\); it needs one entry per input \(400,\)"):
        SelfTrainedHead(model).fit(X, [0, 1, -1])


def test_cross_validates_with_a_frozen_model():
    from sklearn.model_selection import cross_val_score

    X, y = two_clusters()
    model = FeatureModel().fit(X, y)
    assert not hasattr(clone(SelfTrainedHead(model)).model, "classes_")  # clone copies it unfitted
    scores = cross_val_score(SelfTrainedHead(FrozenEstimator(model)), X, y, cv=3)
    assert scores.min() > 0.9


def test_updates_a_fitted_text_classifier():
    texts = ["good film", "great plot", "bad film", "awful plot"] * 4
    labels = np.array([1, 1, 0, 0] * 4)
    model = TextClassifier("tiny_text", max_epochs=1, batch_size=8, random_state=0).fit(texts, labels)
    assert len(set(model.predict(texts))) == 2
    updated = SelfTrainedHead(model).fit(texts)
    assert updated.predict(texts).shape == (16,) and set(updated.predict(texts)) <= {0, 1}
    # The head reads the classifier's own features, those its head sees.
    features = model.transform(texts)
    np.testing.assert_allclose(updated.predict_proba(texts), updated.head_.predict_proba(features), rtol=1e-6)
    assert updated.__sklearn_tags__().input_tags.string  # it takes texts, as the model does


def test_a_model_that_predicts_one_class_is_kept_with_a_warning():
    X, y = two_clusters()
    always_first = FeatureModel(proba=np.tile([0.9, 0.1], (len(X), 1))).fit(X, y)
    with pytest.warns(UserWarning, match="predicted class 0 for every input") as caught:
        updated = SelfTrainedHead(always_first).fit(X)
    assert caught[0].filename == __file__
    assert updated.head_ is None and (updated.predict(X) == 0).all()


def test_pickles():
    X, y = two_clusters()
    updated = SelfTrainedHead(FeatureModel().fit(X, y)).fit(X)
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(updated)).predict_proba(X), updated.predict_proba(X)
    )


@pytest.mark.parametrize("frozen", [False, True])
def test_a_pipeline_gives_the_features_before_its_last_step(frozen):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    class CountingScaler(StandardScaler):
        calls = 0

        def transform(self, X, copy=None):
            CountingScaler.calls += 1
            return super().transform(X, copy=copy)

    X, y = two_clusters()
    pipeline = make_pipeline(CountingScaler(), LogisticRegression()).fit(X, y)
    model = FrozenEstimator(pipeline) if frozen else pipeline
    CountingScaler.calls = 0
    updated = SelfTrainedHead(model).fit(X)
    assert CountingScaler.calls == 1  # the features once: the last step predicts from them
    assert updated.head_.coef_.shape == (1, 5) and updated.score(X, y) > 0.9
    with pytest.raises(ValueError, match="model=LogisticRegression has no transform giving the features"):
        SelfTrainedHead(LogisticRegression().fit(X, y)).fit(X)
