"""SelfTrainedHead: a fitted model's features kept, its head learnt again on new inputs.

After drift, the features a model learnt often still separate the classes of the new
inputs while its head no longer fits them. Self-training a new head on the new inputs,
from the model's own predictions (and whatever labels there are), moves the boundary to
where the new inputs cluster, without training the network again.
"""

import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from .._domains import head_log_proba, self_train
from .._validation import user_stacklevel

UNLABELLED = -1  # scikit-learn's mark for an unlabelled row (sklearn.semi_supervised)


class SelfTrainedHead(ClassifierMixin, BaseEstimator):
    """A fitted classifier's features, with a new head self-trained on unlabelled inputs.

    ``fit(X)`` passes ``X`` through ``model`` (its ``transform``: the features its head
    sees) and starts from ``model``'s predictions on ``X``. A logistic regression is then
    self-trained on those features for ``rounds`` rounds, as the transductive zero-shot
    classifiers are: each round it learns from the half of ``X`` it is surest of, each
    class in the share the model first predicted. Labels given in ``y`` replace the
    model's predictions on their rows at the start (the first round learns from every
    labelled row); later rounds judge those rows like the others, so that a few hard
    labelled rows do not bend the boundary.

    ``model`` itself is neither trained nor changed; predictions pass through it
    (``fit`` passes ``X`` through it twice, for its features and its predictions, except
    a pipeline's, whose last step predicts from the features).

    Parameters
    ----------
    model : fitted classifier
        With ``predict_proba`` and features: its ``transform`` (for a fitted
        :class:`~sktransfer.TextClassifier` or :class:`~sktransfer.ImageClassifier`, the
        features its head sees),
        or for a ``Pipeline`` whose last step has no ``transform``, the steps before it
        (``make_pipeline(ImageEmbedder(...), LogisticRegression())``). It is used as it
        is: ``clone`` copies it unfitted, so to cross-validate, wrap it in
        ``sklearn.frozen.FrozenEstimator``.
    rounds : int, default=5
        Self-training rounds.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        ``model``'s classes.
    head_ : LogisticRegression or None
        The self-trained head on ``model``'s features, its classes the indices of
        ``classes_``; None when the model predicted a single class for every input
        (then predictions are ``model``'s).
    n_labelled_ : int
        The rows of ``y`` that carried a label.

    Examples
    --------
    >>> from sktransfer import SelfTrainedHead
    >>> updated = SelfTrainedHead(model).fit(new_texts)  # doctest: +SKIP
    >>> updated.predict(new_texts)  # doctest: +SKIP
    """

    _parameter_constraints = {
        "model": [HasMethods(["predict_proba"])],
        "rounds": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, model, *, rounds=5):
        self.model = model
        self.rounds = rounds

    def fit(self, X, y=None):
        """Self-train a new head on ``model``'s features of ``X``.

        Parameters
        ----------
        X : inputs of ``model``
            New inputs like those to classify, unlabelled (all of them, or all but a few).
        y : array-like of shape (n_samples,), default=None
            Labels of some rows; None, NaN (pandas' missing values) or ``-1`` on the
            unlabelled ones (``-1`` only when it is not one of ``model``'s classes).
            None: no label.

        Returns
        -------
        self : object
        """
        self._validate_params()
        owner = type(self).__name__
        try:
            check_is_fitted(self.model)
        except Exception:
            raise ValueError(
                f"{owner}: model={type(self.model).__name__} is not fitted; give the fitted model "
                "(after clone, as in cross-validation, wrap it in sklearn.frozen.FrozenEstimator)."
            ) from None
        featurizer, last_step = _feature_steps(self.model, owner)
        self.classes_ = np.asarray(self.model.classes_)
        features = np.asarray(featurizer.transform(X), dtype=np.float64)
        proba = self.model.predict_proba(X) if last_step is None else last_step.predict_proba(features)
        starting = np.log(np.asarray(proba, dtype=np.float64).clip(1e-12))
        labelled, codes = self._labels(y, len(features), owner)
        self.n_labelled_ = int(labelled.sum())
        # A label is certain, not predicted: its row starts from it, with an infinite margin
        # (a saturated softmax's would otherwise outrank it).
        starting[labelled] = np.where(np.eye(len(self.classes_), dtype=bool)[codes], 0.0, -np.inf)
        self.head_ = self_train(features, starting, self.rounds)
        if self.head_ is None:
            only = self.classes_.tolist()[starting.argmax(axis=1)[0]]
            warnings.warn(
                f"{owner}: model predicted class {only!r} for every input, so there is nothing to "
                "self-train from; predictions stay the model's. Label a few inputs of each class (y).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return self

    def _labels(self, y, n_samples, owner):
        """``(labelled mask, class indices of the labelled rows)``."""
        if y is None:
            return np.zeros(n_samples, dtype=bool), np.zeros(0, dtype=np.int64)
        y = np.asarray(y, dtype=object)
        if y.shape != (n_samples,):
            raise ValueError(f"{owner}: y has shape {y.shape}; it needs one entry per input ({n_samples},).")
        known = {c: i for i, c in enumerate(self.classes_.tolist())}
        minus_one_marks = UNLABELLED not in known  # else -1 is a class, and a label

        def unlabelled(v):
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                return True
            return minus_one_marks and not isinstance(v, str) and v == UNLABELLED

        labelled = np.array([not unlabelled(v) for v in y], dtype=bool)
        unknown = [v for v in y[labelled] if v not in known]
        if unknown:
            marks = "None, NaN or -1" if minus_one_marks else "None or NaN (-1 is one of model's classes)"
            raise ValueError(
                f"{owner}: y holds {unknown[0]!r}, which is not one of model's classes "
                f"{self.classes_.tolist()}; mark unlabelled rows with {marks}."
            )
        return labelled, np.array([known[v] for v in y[labelled]], dtype=np.int64)

    def predict_proba(self, X):
        """Class probabilities from the self-trained head (``model``'s own where the head
        could not be trained).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self, "classes_")
        if self.head_ is None:
            return np.asarray(self.model.predict_proba(X), dtype=np.float64)
        featurizer, _ = _feature_steps(self.model, type(self).__name__)
        features = np.asarray(featurizer.transform(X), dtype=np.float64)
        return np.exp(head_log_proba(self.head_, features, len(self.classes_)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags = get_tags(self.model).input_tags  # it takes what the model takes
        return tags

    def predict(self, X):
        """Class labels.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def _feature_steps(model, owner):
    """``(what gives model's features, what predicts from them or None)``: the model's
    ``transform`` (and the model itself from its inputs), or a pipeline's (frozen or not)
    steps before its last, and that last step."""
    if hasattr(model, "transform"):
        return model, None
    inner = model.estimator if isinstance(model, FrozenEstimator) else model
    if isinstance(inner, Pipeline) and len(inner) > 1:
        return inner[:-1], inner[-1]
    raise ValueError(
        f"{owner}: model={type(model).__name__} has no transform giving the features its head sees; "
        "give a fitted sktransfer classifier, or a Pipeline whose steps before the last make features."
    )
