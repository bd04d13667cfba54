"""The fine-tuning estimators inside scikit-learn's meta-estimators, on tiny backbones.

Each test here would have caught a silent wrong result: a NaN score that makes a
search pick its first candidate, a calibrator that crashes, a parameter from a numpy
grid that torch refuses.
"""

import numpy as np
import pytest
from scipy.stats import randint
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
)

from sktransfer import ImageClassifier, ImageRegressor, TextClassifier

QUICK = dict(max_epochs=2, batch_size=8, random_state=0, freeze="none", lr=3e-3)


def shaded(n=24, n_classes=2, size=20, seed=0):
    """Images whose class sets their brightness (noisy, so scores are not all ties)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    base = 40 + 170 * labels / max(1, n_classes - 1)
    X = np.clip(rng.normal(base[:, None, None, None], 40, size=(n, size, size, 3)), 0, 255)
    return X.astype(np.uint8), np.array(["cat", "dog", "eel"])[labels]


def tiny(**params):
    return ImageClassifier("tiny_cnn", **{**QUICK, **params})


def test_binary_decision_function_is_one_column_of_log_odds():
    X, y = shaded()
    clf = tiny().fit(X, y)
    scores = clf.decision_function(X)
    assert scores.shape == (len(X),)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(scores, np.log(proba[:, 1] / proba[:, 0]), rtol=1e-4, atol=1e-4)
    text = TextClassifier("tiny_text", max_epochs=1, random_state=0).fit(["good", "bad"] * 4, [1, 0] * 4)
    assert text.decision_function(["good", "bad"]).shape == (2,)


def test_multiclass_decision_function_keeps_one_column_per_class():
    X, y = shaded(n=18, n_classes=3)
    assert tiny().fit(X, y).decision_function(X).shape == (18, 3)


def test_roc_auc_scoring_is_a_number_in_cross_validation_and_search():
    X, y = shaded()
    scores = cross_val_score(tiny(), X, y, cv=2, scoring="roc_auc")
    assert np.isfinite(scores).all() and (scores > 0.5).all()
    search = GridSearchCV(tiny(), {"lr": [1e-5, 3e-3]}, cv=2, scoring="roc_auc").fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    X3, y3 = shaded(n=18, n_classes=3)
    assert np.isfinite(cross_val_score(tiny(), X3, y3, cv=2, scoring="roc_auc_ovr")).all()


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "temperature"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_calibrated_classifier(method, n_classes):
    X, y = shaded(n=24, n_classes=n_classes)
    calibrated = CalibratedClassifierCV(tiny(max_epochs=1), method=method, cv=2).fit(X, y)
    proba = calibrated.predict_proba(X)
    assert proba.shape == (24, n_classes)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-6)
    if n_classes == 2:
        assert roc_auc_score(y, proba[:, 1]) > 0.5


def test_stacking_and_voting():
    X, y = shaded()
    base = [("a", tiny()), ("b", tiny(random_state=1))]
    stack = StackingClassifier(base, final_estimator=LogisticRegression(), cv=2).fit(X, y)
    assert stack.predict_proba(X).shape == (24, 2) and stack.score(X, y) > 0.5
    vote = VotingClassifier(base, voting="soft").fit(X, y)
    assert vote.predict_proba(X).shape == (24, 2) and vote.score(X, y) > 0.5


def test_cross_val_predict_probabilities():
    X, y = shaded(n=18, n_classes=3)
    proba = cross_val_predict(tiny(), X, y, cv=StratifiedKFold(3), method="predict_proba")
    assert proba.shape == (18, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    log_proba = cross_val_predict(tiny(), X, y, cv=StratifiedKFold(3), method="predict_log_proba")
    np.testing.assert_allclose(np.exp(log_proba), proba, atol=1e-5)


def test_halving_grid_search():
    X, y = shaded(n=32)
    search = HalvingGridSearchCV(
        tiny(), {"lr": [1e-5, 1e-3, 3e-3]}, resource="max_epochs", max_resources=3, min_resources=1, cv=2
    )
    assert search.fit(X, y).best_params_["lr"] in (1e-5, 1e-3, 3e-3)
    assert np.isfinite(search.best_score_)


def test_parallel_grid_search_with_dataloader_workers():
    X, y = shaded(n=16)
    search = GridSearchCV(tiny(max_epochs=1, num_workers=2), {"lr": [1e-3, 3e-3]}, cv=2, n_jobs=2)
    search.set_params(error_score="raise").fit(X, y)
    serial = GridSearchCV(tiny(max_epochs=1, num_workers=0), {"lr": [1e-3, 3e-3]}, cv=2).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"])


def test_transformed_target_regressor():
    X, _ = shaded()
    brightness = X.mean(axis=(1, 2, 3))
    model = TransformedTargetRegressor(
        ImageRegressor("tiny_cnn", **QUICK), func=np.log1p, inverse_func=np.expm1
    ).fit(X, brightness)
    predicted = model.predict(X)
    assert predicted.shape == (24,) and np.isfinite(predicted).all()
    assert np.corrcoef(predicted, brightness)[0, 1] > 0.5


def test_numpy_scalar_parameters_from_grids_and_distributions():
    X, y = shaded(n=16)
    grid = {
        "batch_size": np.arange(4, 9, 4),  # numpy int64 values
        "max_epochs": np.array([1]),
        "lr": np.array([3e-3]),
        "patience": np.array([2]),
        "label_smoothing": np.array([0.1]),
    }
    search = GridSearchCV(tiny(early_stopping=True, validation_fraction=0.25), grid, cv=2)
    search.set_params(error_score="raise").fit(X, y)
    assert isinstance(search.best_params_["batch_size"], np.integer)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    random = RandomizedSearchCV(
        tiny(max_epochs=1), {"batch_size": randint(2, 9), "num_workers": [np.int64(0)]}, n_iter=2, cv=2
    )
    random.set_params(random_state=0, error_score="raise").fit(X, y)
    text = TextClassifier("tiny_text", max_epochs=np.int64(1), batch_size=np.int64(4), max_length=np.int64(8))
    assert text.fit(["good", "bad"] * 4, [1, 0] * 4).predict(["good"]).shape == (1,)
