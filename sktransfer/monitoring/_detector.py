"""DriftDetector: has what the model sees moved away from what it was trained on?"""

import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted

from .._persistence import Portable
from ._two_sample import classifier_test, ks_test, mmd_test

METHODS = ("mmd", "classifier", "ks")


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one two-sample test.

    Attributes
    ----------
    method : str
    statistic : float
        Unbiased MMD^2 (``"mmd"``), held-out ROC AUC (``"classifier"``, 0.5 means
        indistinguishable) or the largest per-feature KS distance (``"ks"``).
    p_value : float
        Permutation p-value (``"mmd"``, ``"classifier"``); Bonferroni-corrected smallest
        per-feature p-value (``"ks"``).
    drift : bool
        ``p_value < alpha``.
    alpha : float
    n_reference, n_new : int
    details : dict
        Method specifics: the kernel bandwidth, per-feature p-values.
    """

    method: str
    statistic: float
    p_value: float
    drift: bool
    alpha: float
    n_reference: int
    n_new: int
    details: dict = field(default_factory=dict, repr=False, compare=False)


class DriftDetector(Portable, BaseEstimator):
    """Test whether new inputs come from the distribution of reference inputs.

    ``fit`` stores the reference (the features of the training data, say); ``test``
    compares a batch of new inputs to it and says whether they drifted. Inputs go
    through ``embedder`` first, so a detector on images or texts compares them where
    the model sees them; with ``embedder=None`` it takes feature matrices.

    Parameters
    ----------
    method : {"mmd", "classifier", "ks"}, default="mmd"
        - ``"mmd"``: kernel maximum mean discrepancy (Gaussian kernel, bandwidth by the
          median heuristic on the pooled sample) with a permutation test. Sensitive to
          any change of distribution; cost grows with ``(n_reference + n_new)**2``.
        - ``"classifier"``: a classifier learns to tell new rows from reference rows
          on one share of them; the statistic is its ROC AUC on the others
          (``test_size``), the p-value from permuting their labels (exact: the model
          never saw them). Strong when the shift lies in a few directions.
        - ``"ks"``: a Kolmogorov-Smirnov test on each feature, the smallest p-value
          corrected for the number of features (Bonferroni). Cheap; says which feature
          moved most (``details["most_shifted_feature"]``).
    embedder : transformer or None, default=None
        ``ImageEmbedder``, ``TextEmbedder`` or any transformer (cloned and fitted on the
        reference). None: inputs are numeric matrices of shape (n_samples, n_features).
    alpha : float, default=0.05
        Significance level: ``drift`` is ``p_value < alpha``. Each call to ``test`` is
        one test; over many windows, expect ``alpha`` of them to alarm without drift.
    n_permutations : int, default=500
        Permutations for ``"mmd"`` and ``"classifier"`` (the smallest p-value is
        ``1 / (n_permutations + 1)``).
    classifier : classifier or None, default=None
        For ``"classifier"``; cloned. None: standardised logistic regression
        (``C=0.1``: embeddings are wide and batches small) with balanced class weights
        (the new batch is usually much smaller than the reference).
    test_size : float, default=0.5
        For ``"classifier"``: the share of each side's rows held out to score the
        classifier on (stratified); it is fitted on the rest.
    random_state : int, RandomState or None, default=None
        Seeds permutations and the held-out rows; an int makes every ``test`` reproducible.

    Attributes
    ----------
    reference_ : ndarray of shape (n_reference, n_features)
        The reference features.
    embedder_ : the fitted embedder, or None
    n_features_in_ : int

    Examples
    --------
    >>> from sktransfer import TextEmbedder
    >>> from sktransfer.monitoring import DriftDetector
    >>> detector = DriftDetector("mmd", embedder=TextEmbedder()).fit(train_texts)  # doctest: +SKIP
    >>> detector.test(this_weeks_texts)  # doctest: +SKIP
    DriftResult(method='mmd', statistic=0.031, p_value=0.002, drift=True, ...)
    """

    _parameter_constraints = {
        "method": [StrOptions(set(METHODS))],
        "embedder": [None, HasMethods(["fit", "transform"])],
        "alpha": [Interval(Real, 0, 1, closed="neither")],
        "n_permutations": [Interval(Integral, 1, None, closed="left")],
        "classifier": [None, HasMethods(["fit"])],
        "test_size": [Interval(Real, 0, 1, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        method="mmd",
        *,
        embedder=None,
        alpha=0.05,
        n_permutations=500,
        classifier=None,
        test_size=0.5,
        random_state=None,
    ):
        self.method = method
        self.embedder = embedder
        self.alpha = alpha
        self.n_permutations = n_permutations
        self.classifier = classifier
        self.test_size = test_size
        self.random_state = random_state

    def fit(self, X, y=None):
        """Store the reference: ``X`` embedded (by a clone of ``embedder``, fitted on it)."""
        self._validate_params()
        if self.method != "ks" and 1 / (self.n_permutations + 1) >= self.alpha:
            warnings.warn(
                f"{type(self).__name__}: with n_permutations={self.n_permutations} the smallest p-value is "
                f"{1 / (self.n_permutations + 1):.3g}, not below alpha={self.alpha}: no test can alarm. "
                f"Use n_permutations >= {int(np.floor(1 / self.alpha))}.",
                UserWarning,
                stacklevel=2,
            )
        if hasattr(self, "n_features_in_"):  # a refit starts afresh
            del self.n_features_in_
        if hasattr(self, "reference_"):
            del self.reference_
        self.embedder_ = None if self.embedder is None else clone(self.embedder).fit(X)
        reference = self._features(X, "X")
        self._check_size(len(reference), "the reference (fit's X)")
        self.reference_ = reference
        self.n_features_in_ = reference.shape[1]
        return self

    def test(self, X):
        """Test whether ``X`` drifted from the reference.

        Parameters
        ----------
        X : inputs of ``embedder``, or array-like of shape (n_new, n_features)

        Returns
        -------
        DriftResult
        """
        check_is_fitted(self, "reference_")
        new = self._features(X, "X")
        self._check_size(len(new), "X")
        return self._test_features(new, self._rng())

    def test_windows(self, X, window, step=None):
        """Test consecutive windows of a stream of inputs (embedded once) against the reference.

        Parameters
        ----------
        X : inputs in arrival order
        window : int
            Rows per window.
        step : int or None, default=None
            Rows between window starts; None: ``window`` (windows do not overlap).

        Returns
        -------
        pandas.DataFrame
            One row per window: ``start``, ``stop``, ``statistic``, ``p_value``,
            ``drift``. ``plot_drift`` draws it.
        """
        check_is_fitted(self, "reference_")
        step = window if step is None else step
        for name, value in (("window", window), ("step", step)):
            if not isinstance(value, Integral) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name}={value!r} must be a positive integer.")
        new = self._features(X, "X")
        self._check_size(window, "window")
        if len(new) < window:
            raise ValueError(
                f"{type(self).__name__}: X has {len(new)} rows, fewer than one window of {window}; "
                "give more rows or a smaller window."
            )
        rng = self._rng()
        rows = []
        for start in range(0, len(new) - window + 1, step):
            result = self._test_features(new[start : start + window], rng)
            rows.append(
                {
                    "start": start,
                    "stop": start + window,
                    "statistic": result.statistic,
                    "p_value": result.p_value,
                    "drift": result.drift,
                }
            )
        frame = pd.DataFrame(rows)
        frame.attrs.update(method=self.method, alpha=self.alpha)
        return frame

    # ------------------------------------------------------------- helpers
    def _rng(self):
        seed = self.random_state
        if isinstance(seed, np.random.RandomState):
            seed = seed.randint(2**31 - 1)
        return np.random.default_rng(seed)

    def _features(self, X, name):
        if self.embedder_ is not None:
            X = self.embedder_.transform(X)
        features = check_array(X, dtype=np.float64, input_name=name)
        if hasattr(self, "n_features_in_") and features.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{type(self).__name__}: {name} has {features.shape[1]} features, but the reference "
                f"has {self.n_features_in_}."
            )
        return features

    def _check_size(self, n, what):
        if n < 2:
            raise ValueError(
                f"{type(self).__name__}: {what} has {n} rows; method={self.method!r} needs at least 2"
                + (" (one to fit the classifier on, one held out)." if self.method == "classifier" else ".")
            )

    def _make_classifier(self):
        if self.classifier is not None:
            return clone(self.classifier)
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000)
        )

    def _test_features(self, new, rng):
        reference = self.reference_
        if self.method == "mmd":
            statistic, p_value, details = mmd_test(reference, new, self.n_permutations, rng)
        elif self.method == "classifier":
            statistic, p_value, details = classifier_test(
                reference, new, self._make_classifier(), self.test_size, self.n_permutations, rng
            )
        else:
            statistic, p_value, details = ks_test(reference, new)
        return DriftResult(
            method=self.method,
            statistic=statistic,
            p_value=p_value,
            drift=bool(p_value < self.alpha),
            alpha=self.alpha,
            n_reference=len(reference),
            n_new=len(new),
            details=details,
        )
