"""DomainAdaptedClassifier: a frozen-feature classifier adapted to an unlabelled target domain."""

import time

import numpy as np
import pandas as pd
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, has_fit_parameter

from .._domains import REFINE_AGREEMENT, check_sample_domain, cluster_refine, encode_source_labels
from .._persistence import Portable
from ._self_training import DomainNormalizer, is_unit_norm, self_train

ADAPTATIONS = ("auto", "none", "center", "self_training")


class DomainAdaptedClassifier(Portable, ClassifierMixin, BaseEstimator):
    """Classify an unlabelled target domain from a labelled source, on frozen features.

    ``fit(X, y, sample_domain=...)`` takes both domains at once, in skada's convention:
    ``sample_domain`` is a positive integer on each labelled source row and a negative
    one on each unlabelled target row. The labels of target rows are never read, so
    any placeholder will do (skada's ``-1``, ``None``, a string), and class labels may
    be strings. ``X`` is what ``embedder`` takes (images, texts), or a feature matrix
    when ``embedder`` is None.

    Parameters
    ----------
    embedder : ImageEmbedder, TextEmbedder or None, default=None
        Turns ``X`` into features (cloned; its cache makes a second fit cheap). None:
        ``X`` is already a numeric feature matrix.
    adaptation : {"auto", "self_training", "center", "none"} or a skada adapter, default="auto"
        - ``"none"``: the classifier on the source features (standardised unless they
          are unit-norm embeddings): the source-only baseline.
        - ``"center"``: each domain normalised by its own statistics (centred, and
          scaled to unit variance unless the features are unit-norm embeddings).
        - ``"self_training"``: ``"center"``, then class-balanced self-training: the
          classifier is refitted on the source plus its most confident target
          predictions, 10 % to 80 % of the target rows over eight rounds, each class
          in proportion to its predicted share.
        - ``"auto"``: ``"self_training"``, then the target rows are relabelled by
          their nearest class centre in the target's own feature space when that
          relabelling agrees with the classifier on at least 95 % of them (the
          target's clusters are its classes); otherwise the self-trained classifier
          stands. What was done is in ``report_``.
        - a skada adapter (``CORALAdapter(reg=1.0)``, ``EntropicOTMappingAdapter()``...):
          ``make_da_pipeline(StandardScaler(), adapter, classifier)`` (no scaler for
          unit-norm embeddings) with the labels encoded for skada; features an adapter
          turns into NaN or infinity raise an error naming the adapter.
    classifier : classifier with predict_proba, default=None
        Fitted on the (adapted) features; cloned. None:
        ``LogisticRegression(max_iter=5000)``. Self-training (``"auto"``,
        ``"self_training"``) needs one whose ``fit`` takes ``sample_weight``.

    Attributes
    ----------
    classes_ : ndarray
        The source's labels, sorted.
    embedder_ : the fitted embedder, or None
    classifier_ : the final fitted classifier (or skada pipeline)
    normalizer_ : per-domain statistics used to normalise features (None for
        ``"none"`` and skada adapters)
    report_ : pandas.Series
        What the fit did: the adaptation, the normalisation, the share of target
        predictions that differ from the source-only classifier's, the cluster
        agreement and whether the refinement was kept (``"auto"``), seconds.

    Examples
    --------
    >>> from sktransfer import ImageEmbedder
    >>> from sktransfer.adaptation import DomainAdaptedClassifier
    >>> clf = DomainAdaptedClassifier(ImageEmbedder("efficientnet_lite0"))
    >>> clf.fit(paths, labels, sample_domain=domains)  # doctest: +SKIP
    >>> clf.predict(target_paths)  # doctest: +SKIP
    """

    _parameter_constraints = {
        "embedder": [None, HasMethods(["fit", "transform"])],
        "adaptation": [StrOptions(set(ADAPTATIONS)), HasMethods(["fit_transform"])],
        "classifier": [None, HasMethods(["fit", "predict_proba"])],
    }

    def __init__(self, embedder=None, *, adaptation="auto", classifier=None):
        self.embedder = embedder
        self.adaptation = adaptation
        self.classifier = classifier

    # ----------------------------------------------------------------- fit
    def fit(self, X, y, sample_domain=None):
        """Fit on the labelled source rows and the unlabelled target rows together.

        Parameters
        ----------
        X : inputs of ``embedder``, or array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Labels of the source rows; target rows' entries are ignored.
        sample_domain : array-like of shape (n_samples,)
            Positive integers on source rows, negative ones on target rows.

        Returns
        -------
        self : object
        """
        owner = type(self).__name__
        self._validate_params()
        if sample_domain is None:
            raise ValueError(
                f"{owner}: fit needs sample_domain (a positive integer on each labelled source "
                "row, a negative one on each unlabelled target row)."
            )
        start = time.perf_counter()
        n_samples = len(X)
        if len(y) != n_samples:
            raise ValueError(f"{owner}: X has {n_samples} samples but y has {len(y)}; they must match.")
        domains = check_sample_domain(sample_domain, n_samples, owner)
        source = domains > 0
        codes, self.classes_ = encode_source_labels(y, domains)
        y_source = codes[source]
        if len(self.classes_) < 2:
            raise ValueError(
                f"{owner}: the source rows hold one class ({self.classes_[0]!r}); give two or more."
            )
        self.target_domains_ = np.unique(domains[~source])
        if self.adaptation in ("auto", "self_training") and not has_fit_parameter(
            self._make_classifier(), "sample_weight"
        ):
            raise ValueError(
                f"{owner}: adaptation={self.adaptation!r} weighs the pseudo-labelled rows, but "
                f"classifier={self.classifier!r} takes no sample_weight in fit. Use a classifier "
                "that does (LogisticRegression, SVC, ...; not a Pipeline) or adaptation='center'."
            )
        features = self._features(X, fit=True)
        self.report_ = pd.Series(self._fit_features(features, y_source, domains), dtype=object)
        self.report_["seconds"] = round(time.perf_counter() - start, 2)
        return self

    def _features(self, X, fit):
        owner = type(self).__name__
        if fit:
            self.embedder_ = None if self.embedder is None else clone(self.embedder).fit(X)
        if self.embedder_ is None:
            features = check_array(X, dtype=np.float64, input_name="X")
        else:
            features = np.asarray(self.embedder_.transform(X), dtype=np.float64)
        if fit:
            self.n_features_in_ = features.shape[1]
        elif features.shape[1] != self.n_features_in_:
            raise ValueError(
                f"{owner}: X has {features.shape[1]} features, but this classifier was fitted with "
                f"{self.n_features_in_}."
            )
        return features

    def _make_classifier(self):
        return LogisticRegression(max_iter=5000) if self.classifier is None else clone(self.classifier)

    def _fit_features(self, features, y_source, domains):
        source = domains > 0
        target = ~source
        scale = not is_unit_norm(features)
        baseline = make_source_only(self._make_classifier, features[source], y_source, scale)
        self.normalizer_ = None
        if not isinstance(self.adaptation, str):
            self.classifier_ = self._fit_skada(features, y_source, domains, scale)
            with routing():
                predicted = self.classifier_.predict(features[target], sample_domain=domains[target])
            report = {"adaptation": type(self.adaptation).__name__}
        elif self.adaptation == "none":
            self.classifier_ = baseline
            predicted = baseline.predict(features[target])
            report = {"adaptation": "none"}
        else:
            self.normalizer_ = DomainNormalizer(scale).fit(features, domains)
            z = self.normalizer_.transform(features, domains)
            report = {"adaptation": self.adaptation, "normalisation": "standardised" if scale else "centred"}
            if self.adaptation == "center":
                self.classifier_ = self._make_classifier().fit(z[source], y_source)
            else:
                self.classifier_ = self_train(self._make_classifier, z[source], y_source, z[target])
            predicted = self.classifier_.predict(z[target])
            if self.adaptation == "auto":
                refined = cluster_refine(self.classifier_.predict_proba(z[target]), z[target])
                agreement = float(np.mean(refined == predicted))
                report.update(cluster_agreement=round(agreement, 4), refined=agreement >= REFINE_AGREEMENT)
                if agreement >= REFINE_AGREEMENT:  # the final classifier learns the refined labels
                    labels = np.empty(len(z), dtype=np.int64)
                    labels[source], labels[target] = y_source, refined
                    self.classifier_ = self._make_classifier().fit(z, labels)
                    predicted = self.classifier_.predict(z[target])
        source_only = baseline.predict(features[target])
        report["changed_vs_source_only"] = round(float(np.mean(predicted != source_only)), 4)
        return report

    def _fit_skada(self, features, y_source, domains, scale):
        from skada import make_da_pipeline

        # skada masks target labels with -1 and cannot take strings: it gets class indices.
        y = np.full(len(domains), -1, dtype=np.int64)
        y[domains > 0] = y_source
        pipeline = make_da_pipeline(
            *([StandardScaler()] if scale else []),
            clone(self.adaptation),
            FiniteFeatures(f"{type(self).__name__}: adaptation={self.adaptation!r}"),
            self._make_classifier(),
        )
        with routing():
            return pipeline.fit(features, y, sample_domain=domains)

    # ----------------------------------------------------------- predicting
    def _target_features(self, X, sample_domain):
        check_is_fitted(self, "classes_")
        features = self._features(X, fit=False)
        if sample_domain is None:
            if len(self.target_domains_) > 1:
                raise ValueError(
                    f"{type(self).__name__}: fitted with target domains {self.target_domains_.tolist()}; "
                    "pass sample_domain to say which domain each row comes from."
                )
            domains = np.full(len(features), self.target_domains_[0])
        else:
            domains = check_array(np.asarray(sample_domain).reshape(-1, 1), dtype=np.int64).ravel()
            if len(domains) != len(features):
                raise ValueError(
                    f"{type(self).__name__}: sample_domain has {len(domains)} entries for "
                    f"{len(features)} rows."
                )
        return features, domains

    def predict_proba(self, X, sample_domain=None):
        """Class probabilities; rows are taken from the (single) target domain unless
        ``sample_domain`` says otherwise (a domain unseen in fit is normalised by its
        own statistics, so give it several rows at once).

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        features, domains = self._target_features(X, sample_domain)
        if not isinstance(self.adaptation, str):
            with routing():
                return self.classifier_.predict_proba(features, sample_domain=domains)
        if self.normalizer_ is not None:
            features = self.normalizer_.transform(features, domains)
        return self.classifier_.predict_proba(features)

    def predict(self, X, sample_domain=None):
        """Predicted labels (see :meth:`predict_proba`)."""
        return self.classes_[self.predict_proba(X, sample_domain).argmax(axis=1)]

    def score(self, X, y, sample_weight=None, sample_domain=None):
        """Accuracy on ``(X, y)``, the rows taken from the target domain by default."""
        from sklearn.metrics import accuracy_score

        return accuracy_score(y, self.predict(X, sample_domain), sample_weight=sample_weight)


def routing():
    """skada's pipelines route ``sample_domain`` by metadata routing: on while they run,
    whatever the user's setting (importing skada turns it on for the whole process)."""
    return sklearn.config_context(enable_metadata_routing=True)


class FiniteFeatures(Portable, TransformerMixin, BaseEstimator):
    """Passes features through, and fails when an adapter made some NaN or infinite
    (skada's ``CORALAdapter()`` does on large text sets) instead of handing them on."""

    def __init__(self, owner=""):
        self.owner = owner

    def fit(self, X, y=None):
        self.transform(X)
        return self

    def transform(self, X):
        bad = ~np.isfinite(np.asarray(X, dtype=np.float64))
        if bad.any():
            rows = np.flatnonzero(bad.any(axis=1))
            raise ValueError(
                f"{self.owner} turned the features of {len(rows)} rows (the first: row {rows[0]}) "
                "into NaN or infinity. Regularise the adapter (e.g. CORALAdapter(reg=1.0)) or "
                "choose another adaptation."
            )
        return X


def make_source_only(make_classifier, source, y_source, scale):
    """The source-only baseline: the classifier on source features, standardised unless
    they are unit-norm embeddings (the same rule as the per-domain normalisation)."""
    from sklearn.pipeline import make_pipeline

    steps = [StandardScaler()] if scale else []
    return make_pipeline(*steps, make_classifier()).fit(source, y_source)
