"""SelfTrainedHead: a fitted model's features kept, a new head self-trained on new inputs."""

import pickle

import numpy as np
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


def test_labels_set_their_rows_starting_point():
    X, y = two_clusters(classes=("neg", "pos"))
    coin = np.random.default_rng(0).random((len(X), 1))
    clueless = FeatureModel(proba=np.hstack([coin, 1 - coin])).fit(X, y)  # predictions at random
    assert abs(clueless.score(X, y) - 0.5) < 0.1
    partial = np.array([label if i % 5 < 2 else None for i, label in enumerate(y)], dtype=object)
    guided = SelfTrainedHead(clueless).fit(X, partial)  # 40 % labelled, the rest None
    assert guided.n_labelled_ == 160 and guided.score(X, y) > 0.9
    # Without the labels the head learns the model's random guesses, no better than chance.
    assert SelfTrainedHead(clueless).fit(X).score(X, y) < 0.7
    minus_one = np.where(np.arange(len(y)) % 5 < 2, y.astype(object), -1)
    np.testing.assert_array_equal(SelfTrainedHead(clueless).fit(X, minus_one).predict(X), guided.predict(X))


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
    assert updated.head_.coef_.shape[1] == model.transform(texts).shape[1]


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

    X, y = two_clusters()
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    model = FrozenEstimator(pipeline) if frozen else pipeline
    updated = SelfTrainedHead(model).fit(X)
    assert updated.head_.coef_.shape == (1, 5) and updated.score(X, y) > 0.9
    with pytest.raises(ValueError, match="model=LogisticRegression has no transform giving the features"):
        SelfTrainedHead(LogisticRegression().fit(X, y)).fit(X)
