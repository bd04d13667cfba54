"""BackboneSelector: the backbone as a choice made by cross-validation, at one feature pass each.

No single pretrained network wins everywhere (on this library's benchmark data the
best one is worth 2 to 11 points and differs by data set), and transferability
scores such as LogME pick the best of similar networks unreliably. Cross-validating
a linear probe on each candidate's frozen features is reliable and cheap once the
features exist, so that is what this does: one feature pass per candidate over the
training data, a cross-validated probe on the features in memory, the winner refitted.
"""

import os
import time
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier, is_regressor
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import accuracy_score, check_scoring, r2_score
from sklearn.model_selection import check_cv
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from .._persistence import Portable
from ..backbones import backbone_modality, list_backbones
from ..embedding import ImageEmbedder, TextEmbedder

_EMBEDDERS = {"image": ImageEmbedder, "text": TextEmbedder}


def _probe_has(method):
    """For ``available_if``: the fitted probe has ``method`` (before fit, the given probe)."""

    def check(selector):
        probe = getattr(selector, "probe_", None)
        if probe is None:
            probe = selector.probe if selector.probe is not None else LogisticRegression()
        return hasattr(probe, method)

    return check


_SPEED_ORDER = {"fast": 0, "medium": 1, "slow": 2}


class BackboneSelector(Portable, MetaEstimatorMixin, BaseEstimator):
    """Choose the pretrained backbone by cross-validating a probe on each one's features.

    Each candidate embeds the training inputs once (frozen, batched, cached when
    ``cache`` is set); a probe (by default a standardised logistic regression, as a
    hand-written linear probe would be) is cross-validated on those features; the
    candidate with the best mean score wins and its probe is refitted on all the
    training data. Candidates run cheapest first; once ``time_budget`` seconds are
    spent, no new candidate starts. ``report_`` lists what each one scored and cost.

    Parameters
    ----------
    candidates : {"image", "text"} or list, default="image"
        The backbones to choose from: backbone names, or embedders (``ImageEmbedder``,
        ``TextEmbedder``, cloned, so their settings apply). ``"image"`` and ``"text"``
        mean every bundled backbone of that kind installed here
        (``list_backbones(offline=True)``).
    probe : estimator, default=None
        What learns from the features. None: ``StandardScaler`` + ``LogisticRegression``
        for image classification, ``LogisticRegression`` for text classification
        (sentence embeddings are normalised already), ``StandardScaler`` + ``RidgeCV``
        for regression.
    cv : int, cross-validation generator or iterable, default=5
        The inner splits, as in :func:`~sklearn.model_selection.cross_val_score`
        (an int means stratified folds for classifiers). Pass ``groups`` to
        :meth:`fit` to keep groups (patients...) within one side of each split.
    scoring : str or callable, default=None
        The choice criterion; None: the probe's ``score`` (accuracy, R²).
    time_budget : float, default=None
        Seconds after which no further candidate starts (the running one finishes);
        None: no limit.
    ensemble : bool, default=True
        Also score the soft vote of every scored candidate (the mean of their probes'
        probabilities), on the same folds; it wins only when its mean score is strictly
        higher, since predicting with it runs every backbone. Where the training data
        cannot tell similar backbones apart, averaging them is the better bet.
    cache : str or path, default=None
        A feature cache directory given to every candidate's embedder (see the
        embedders' ``cache``): a later fit or a grid search reads the features back.
    batch_size : int, default=32
        Passed to the embedders built from names.
    device : str or torch.device, default="auto"
        Passed to the embedders built from names.
    verbose : int, default=0
        1: one line per candidate; 2: also the embedders' progress bars.

    Attributes
    ----------
    best_backbone_ : str, object or tuple
        The winning candidate as given in ``candidates``; a tuple of every scored
        candidate when their ensemble won.
    embedders_ : list of ImageEmbedder or TextEmbedder
        The fitted embedders that ``predict`` runs: the winner's, or every scored one.
    probe_ : estimator
        The probe refitted on the winner's features of all the training data (for the
        ensemble, a soft vote of one refitted probe per backbone).
    report_ : pandas.DataFrame
        One row per candidate, and one for their ensemble: ``backbone``, ``score``
        (mean inner CV), ``score_std``, ``extract_seconds`` (embedding the training
        data), ``cv_seconds``, ``n_features`` and ``status`` ("best", "scored", or
        "skipped: time budget").
    classes_ : ndarray of shape (n_classes,)
        Classifiers only: the class labels.

    Examples
    --------
    >>> from sktransfer.selection import BackboneSelector
    >>> selector = BackboneSelector("image", cv=5).fit(paths, labels)  # doctest: +SKIP
    >>> selector.report_  # doctest: +SKIP
    """

    _parameter_constraints = {
        "candidates": [StrOptions({"image", "text"}), list, tuple],
        "probe": [None, HasMethods(["fit"])],
        "cv": ["cv_object"],
        "scoring": [None, str, callable],
        "time_budget": [None, Interval(Real, 0, None, closed="neither")],
        "ensemble": ["boolean"],
        "cache": [None, str, os.PathLike],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        candidates="image",
        probe=None,
        *,
        cv=5,
        scoring=None,
        time_budget=None,
        ensemble=True,
        cache=None,
        batch_size=32,
        device="auto",
        verbose=0,
    ):
        self.candidates = candidates
        self.probe = probe
        self.cv = cv
        self.scoring = scoring
        self.time_budget = time_budget
        self.ensemble = ensemble
        self.cache = cache
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    def fit(self, X, y, groups=None):
        """Embed ``X`` with each candidate, cross-validate the probes, refit the winner.

        Parameters
        ----------
        X : inputs
            Images or texts, as the candidates' embedders accept them.
        y : array-like of shape (n_samples,)
            Targets.
        groups : array-like of shape (n_samples,), default=None
            Group labels for the inner splits (with a group-aware ``cv``, such as
            ``GroupKFold``).

        Returns
        -------
        self : object
        """
        self._validate_params()
        y = np.asarray(y)
        candidates = self._candidates()  # bad names fail before any work
        classification = type_of_target(y) in ("binary", "multiclass")
        splits = list(check_cv(self.cv, y, classifier=classification).split(np.zeros((len(y), 1)), y, groups))
        start, rows, scored = time.perf_counter(), [], []
        for label, embedder in candidates:
            if scored and self.time_budget is not None and time.perf_counter() - start > self.time_budget:
                rows.append(_row(label, status="skipped: time budget"))
                continue
            tick = time.perf_counter()
            features = embedder.fit(X).transform(X)
            extract = time.perf_counter() - tick
            probe = self._probe(embedder, classification)
            folds = [clone(probe).fit(features[train], y[train]) for train, _ in splits]
            scorer = check_scoring(probe, scoring=self.scoring)
            scores = np.array([scorer(m, features[test], y[test]) for m, (_, test) in zip(folds, splits)])
            cv_seconds = time.perf_counter() - tick - extract
            rows.append(_row(label, scores, extract, cv_seconds, features.shape[1], "scored"))
            scored.append(_Scored(label, embedder, probe, features, folds, scores, len(rows) - 1))
            if self.verbose:
                print(f"[BackboneSelector] {label}: {scores.mean():.4f} ({extract:.1f} s to embed)")
        best = max(scored, key=lambda c: c.scores.mean())  # ties: the first, cheaper one
        chosen, best_row = [best], best.row
        # The soft vote averages probabilities: probes without predict_proba (LinearSVC) have none.
        if self.ensemble and len(scored) > 1 and hasattr(best.probe, "predict_proba"):
            tick = time.perf_counter()
            scores = self._ensemble_scores(scored, splits, y)
            rows.append(_row("ensemble of all", scores, 0.0, time.perf_counter() - tick, None, "scored"))
            if scores.mean() > best.scores.mean():  # strictly better: it costs every backbone
                chosen, best_row = scored, len(rows) - 1
        rows[best_row]["status"] = "best"
        self.report_ = pd.DataFrame(rows, columns=list(_row(None)))
        self.best_backbone_ = chosen[0].label if len(chosen) == 1 else tuple(c.label for c in chosen)
        self.embedders_ = [c.embedder for c in chosen]
        probes = [clone(c.probe).fit(c.features, y) for c in chosen]
        self.probe_ = (
            probes[0] if len(probes) == 1 else SoftVote(probes, [c.features.shape[1] for c in chosen])
        )
        if classification:
            self.classes_ = self.probe_.classes_
        return self

    def _ensemble_scores(self, scored, splits, y):
        """Fold scores of the soft vote of every candidate's fold probe: the same folds, the same
        scorer, so its mean compares with the single candidates'."""
        features = np.hstack([c.features for c in scored])
        widths = [c.features.shape[1] for c in scored]
        scorer = check_scoring(scored[0].probe, scoring=self.scoring)
        return np.array(
            [
                scorer(SoftVote([c.folds[k] for c in scored], widths), features[test], y[test])
                for k, (_, test) in enumerate(splits)
            ]
        )

    def _candidates(self):
        """``[(label, unfitted embedder)]``, cheapest first for the preset lists."""
        if isinstance(self.candidates, str):
            table = list_backbones(modality=self.candidates, offline=True)
            table = table[(table["source"] == "bundled") & ~table["name"].str.contains("/")]
            table = table.assign(order=table["speed"].map(_SPEED_ORDER)).sort_values("order", kind="stable")
            names = list(table["name"])
            if not names:
                raise InvalidParameterError(
                    f"BackboneSelector: no bundled {self.candidates} backbone is installed; "
                    "install them with pip install 'sktransfer[bundled]', or pass candidates=[...]."
                )
        else:
            names = list(self.candidates)
            if not names:
                raise InvalidParameterError("BackboneSelector: candidates is empty; give at least one.")
        return [(name, self._embedder(name, i)) for i, name in enumerate(names)]

    def _embedder(self, candidate, index):
        if isinstance(candidate, BaseEstimator):  # an embedder with its own settings
            return clone(candidate)
        modality = backbone_modality(candidate)
        if modality not in _EMBEDDERS:
            raise InvalidParameterError(
                f"BackboneSelector: candidates[{index}]={candidate!r} is not a known backbone nor an "
                "embedder; see sktransfer.list_backbones()."
            )
        kwargs = {"batch_size": self.batch_size, "device": self.device, "cache": self.cache}
        return _EMBEDDERS[modality](candidate, verbose=max(0, self.verbose - 1), **kwargs)

    def _probe(self, embedder, classification):
        if self.probe is not None:
            return clone(self.probe)
        if not classification:
            return make_pipeline(StandardScaler(), RidgeCV())
        if isinstance(embedder, TextEmbedder):
            return LogisticRegression(max_iter=5000)
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))

    def _features(self, X):
        check_is_fitted(self, "probe_")
        return np.hstack([embedder.transform(X) for embedder in self.embedders_])

    def transform(self, X):
        """The winning backbone's features of ``X`` (for the ensemble, every candidate's, side by side)."""
        return self._features(X)

    def predict(self, X):
        """The refitted probe's predictions on the winner's features of ``X``."""
        return self.probe_.predict(self._features(X))

    @available_if(_probe_has("predict_proba"))
    def predict_proba(self, X):
        """Class probabilities (probes that have ``predict_proba``)."""
        return self.probe_.predict_proba(self._features(X))

    @available_if(_probe_has("decision_function"))
    def decision_function(self, X):
        """Decision scores (probes that have ``decision_function``)."""
        return self.probe_.decision_function(self._features(X))

    def score(self, X, y, sample_weight=None):
        """The probe's ``score`` on the winner's features of ``X``."""
        return self.probe_.score(self._features(X), y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.probe is None or is_classifier(self.probe):
            tags.estimator_type = "classifier"
        elif is_regressor(self.probe):
            tags.estimator_type = "regressor"
        tags.input_tags.two_d_array = False
        return tags


@dataclass
class _Scored:
    """A candidate that was embedded and cross-validated."""

    label: object
    embedder: object
    probe: object
    features: np.ndarray
    folds: list  # the probe fitted on each inner training split
    scores: np.ndarray
    row: int  # its row in the report


def _label(candidate):
    if isinstance(candidate, BaseEstimator):
        inner = getattr(candidate, "backbone", None)
        inner = inner if isinstance(inner, str) else getattr(inner, "name", type(inner).__name__)
        return f"{type(candidate).__name__}({inner!r})"
    return candidate


def _row(label, scores=None, extract_seconds=np.nan, cv_seconds=np.nan, n_features=None, status=""):
    return {
        "backbone": _label(label),
        "score": np.nan if scores is None else float(np.mean(scores)),
        "score_std": np.nan if scores is None else float(np.std(scores)),
        "extract_seconds": extract_seconds,
        "cv_seconds": cv_seconds,
        "n_features": n_features,
        "status": status,
    }


class SoftVote(Portable, BaseEstimator):
    """Fitted probes, one per backbone, over features laid side by side: the mean of their
    probabilities (classifiers) or predictions (regressors)."""

    def __init__(self, probes, widths):
        self.probes = probes
        self.widths = widths

    def _parts(self, X):
        edges = np.cumsum([0, *self.widths])
        return [X[:, a:b] for a, b in zip(edges[:-1], edges[1:])]

    @property
    def classes_(self):
        return self.probes[0].classes_

    def predict_proba(self, X):
        return np.mean([p.predict_proba(part) for p, part in zip(self.probes, self._parts(X))], axis=0)

    def predict(self, X):
        if is_classifier(self.probes[0]):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return np.mean([p.predict(part) for p, part in zip(self.probes, self._parts(X))], axis=0)

    def score(self, X, y, sample_weight=None):
        metric = accuracy_score if is_classifier(self.probes[0]) else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = self.probes[0].__sklearn_tags__().estimator_type
        return tags
