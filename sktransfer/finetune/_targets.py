"""Targets: label encoding and losses for classifiers, scaling for regressors."""

from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import column_or_1d
from torch import nn


class ClassifierTargets(ClassifierMixin):
    """Single-label (any label type) or multilabel-indicator ``y``."""

    _target_constraints = {
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def _encode_targets(self, y, reset, classes=None, sample_weight=None):
        owner = type(self).__name__
        y = np.asarray(y)
        if y.dtype.kind == "f" and np.isnan(y).any():
            raise ValueError(
                f"{owner}: y has NaN at index {int(np.flatnonzero(np.isnan(y).ravel())[0])}; drop or fill it."
            )
        kind = type_of_target(y)
        if y.ndim == 2 and y.shape[1] == 1 and kind in ("binary", "multiclass"):
            y = column_or_1d(y, warn=True)  # a column of labels, read as scikit-learn reads it
        multilabel = kind == "multilabel-indicator"
        if not multilabel and (kind not in ("binary", "multiclass") or y.ndim != 1):
            raise ValueError(
                f"{owner}: y of type {kind!r} (shape {y.shape}) is not supported; pass one label per "
                "sample, or a 0/1 indicator matrix for multilabel data."
            )
        if reset:
            self._set_classes(y, multilabel, classes, owner)
        else:
            self._check_same_task(y, multilabel, classes, owner)
        if multilabel:
            return torch.as_tensor(y, dtype=torch.float32)
        unknown = np.setdiff1d(y, self.classes_)
        if len(unknown):
            raise ValueError(
                f"{owner}: y has labels {unknown[:5].tolist()} not seen in the first fit "
                f"{self.classes_.tolist()}. Pass every class to the first partial_fit (classes=...), "
                "or refit with warm_start=False."
            )
        return torch.as_tensor(np.searchsorted(self.classes_, y), dtype=torch.long)

    def _set_classes(self, y, multilabel, classes, owner):
        if multilabel:
            if classes is not None:
                raise ValueError(
                    f"{owner}: classes= is for single-label y; multilabel y has one column per label."
                )
            self.classes_ = np.arange(y.shape[1])
        else:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            if len(self.classes_) < 2:
                raise ValueError(
                    f"{owner}: y has a single class ({self.classes_[0]!r}); a classifier needs "
                    "at least two (or pass them all with partial_fit(..., classes=...))."
                )
        self.multilabel_ = multilabel

    def _check_same_task(self, y, multilabel, classes, owner):
        """warm_start and partial_fit continue the first fit's head: its task cannot change."""
        before = f"{len(self.classes_)} labels (multilabel)" if self.multilabel_ else "one label per sample"
        now = f"{y.shape[1]} labels (multilabel)" if multilabel else "one label per sample"
        if multilabel != self.multilabel_ or (multilabel and y.shape[1] != len(self.classes_)):
            raise ValueError(
                f"{owner}: the fitted model predicts {before}, but this y has {now}. Continuing a fit "
                "(warm_start=True or partial_fit) keeps the task; refit with warm_start=False."
            )
        if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise ValueError(
                f"{owner}: classes={list(classes)} differs from the first fit's classes_ "
                f"{self.classes_.tolist()}; classes are fixed by the first call."
            )

    def _n_outputs(self):
        return len(self.classes_)

    def _criterion(self, targets, label_smoothing=None, weights=None):
        """The training loss; ``label_smoothing`` overrides the estimator's (None: keep it).
        ``targets`` and their sample ``weights`` are those of the rows it trains on."""
        if self.multilabel_:
            if self.class_weight is not None:
                raise ValueError(
                    f"{type(self).__name__}: class_weight={self.class_weight!r} is not supported for "
                    "multilabel y (each label is its own binary problem); leave it None."
                )
            return nn.BCEWithLogitsLoss()
        weight = self._class_weights(targets, weights)
        weight = None if weight is None else torch.as_tensor(weight, dtype=torch.float32)
        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        return nn.CrossEntropyLoss(weight=weight, label_smoothing=smoothing)

    def _class_weights(self, targets, weights=None):
        """One weight per class of ``classes_`` from ``class_weight``, or None. "balanced"
        counts each row by its sample weight, as scikit-learn does (a zero-weight row is a
        dropped row); classes absent from these rows (declared by partial_fit's
        ``classes=``) weigh 1."""
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            y = np.asarray(targets)
            w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
            totals = np.bincount(y, weights=w, minlength=len(self.classes_))
            present = totals > 0
            balanced = np.ones(len(self.classes_))
            balanced[present] = totals.sum() / (present.sum() * totals[present])
            return balanced
        unknown = [c for c in self.class_weight if c not in set(self.classes_.tolist())]
        if unknown:
            raise ValueError(
                f"{type(self).__name__}: class_weight names {unknown}, which are not classes of "
                f"y {self.classes_.tolist()}; use the labels as they appear in y."
            )
        return np.array([self.class_weight.get(c, 1.0) for c in self.classes_])

    def _stratify(self, targets):
        return None if self.multilabel_ else targets.numpy()

    def decision_function(self, X, sample_domain=None):
        """Confidence scores, as scikit-learn's classifiers return them.

        Returns
        -------
        scores : ndarray of shape (n_samples,) for two classes, else (n_samples, n_classes)
            For two classes, the log-odds of ``classes_[1]`` (positive: that class),
            which ``roc_auc`` scoring and ``CalibratedClassifierCV`` expect; otherwise
            (and for multilabel ``y``) the logits.
        """
        logits = self._raw_outputs(X)
        if not self.multilabel_ and logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict_proba(self, X, sample_domain=None):
        """Class probabilities (softmax; independent sigmoids for multilabel ``y``).

        ``sample_domain`` is accepted, and not needed, for skada's label-free scorers:
        the fitted network serves every domain (after ``adaptation="adabn"``, with the
        target domain's BatchNorm statistics). The same holds for every predicting method.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        logits = torch.from_numpy(self._raw_outputs(X))
        if self.multilabel_:
            return torch.sigmoid(logits).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict_log_proba(self, X, sample_domain=None):
        """Logarithm of :meth:`predict_proba`, computed stably from the logits.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
        """
        logits = torch.from_numpy(self._raw_outputs(X))
        if self.multilabel_:
            return torch.nn.functional.logsigmoid(logits).numpy()
        return torch.log_softmax(logits, dim=1).numpy()

    def predict(self, X, sample_domain=None):
        """Predicted labels (the 0/1 indicator matrix for multilabel ``y``)."""
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba >= 0.5).astype(int)
        return self.classes_[proba.argmax(axis=1)]

    def _inner_score(self, logits, targets, weights):
        """Accuracy of ``logits`` on encoded ``targets`` (subset accuracy for multilabel
        ``y``), as ``score`` computes it: what ``freeze="auto"`` compares candidates by."""
        from sklearn.metrics import accuracy_score

        predicted = (logits >= 0).int() if self.multilabel_ else logits.argmax(dim=1)
        return _weighted_score(accuracy_score, targets.int(), predicted, weights)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class RegressorTargets(RegressorMixin):
    """One or several continuous targets, standardised for training, restored in ``predict``."""

    _target_constraints = {}

    def _encode_targets(self, y, reset, classes=None, sample_weight=None):
        owner = type(self).__name__
        if classes is not None:
            raise ValueError(f"{owner}: classes= is for classifiers; a regressor has no classes.")
        y = np.asarray(y, dtype=np.float64)
        if not np.isfinite(y).all():
            bad = int(np.flatnonzero(~np.isfinite(y).reshape(len(y), -1).all(axis=1))[0])
            raise ValueError(f"{owner}: y has a NaN or infinite value at index {bad}; drop or fill it.")
        if y.ndim not in (1, 2):
            raise ValueError(f"{owner}: y must be 1-D or 2-D, got shape {y.shape}.")
        if reset:
            self.n_targets_ = 1 if y.ndim == 1 else y.shape[1]
            self._y_1d = y.ndim == 1
            # Standardised with the sample weights, so that a weight acts as repeated rows.
            y2 = y.reshape(len(y), -1)
            weights = None if sample_weight is None else sample_weight.numpy().astype(np.float64)
            self.y_mean_ = np.average(y2, axis=0, weights=weights)
            std = np.sqrt(np.average((y2 - self.y_mean_) ** 2, axis=0, weights=weights))
            self.y_scale_ = np.where(std > 0, std, 1.0)
        elif (y.ndim == 1) != self._y_1d or y.reshape(len(y), -1).shape[1] != self.n_targets_:
            raise ValueError(
                f"{owner}: y has shape {y.shape}, but the fitted model predicts "
                f"{'one target (1-D y)' if self._y_1d else f'{self.n_targets_} targets'}. Continuing a "
                "fit (warm_start=True or partial_fit) keeps the targets; refit with warm_start=False."
            )
        scaled = (y.reshape(len(y), -1) - self.y_mean_) / self.y_scale_
        return torch.as_tensor(scaled, dtype=torch.float32)

    def _n_outputs(self):
        return self.n_targets_

    def _criterion(self, targets, label_smoothing=None, weights=None):
        return nn.MSELoss()

    def _inner_score(self, outputs, targets, weights):
        """R² of ``outputs`` on standardised ``targets``, averaged over the targets, as
        ``score`` computes it: what ``freeze="auto"`` compares candidates by."""
        from sklearn.metrics import r2_score

        return _weighted_score(r2_score, targets, outputs, weights)

    def predict(self, X, sample_domain=None):
        """Predicted targets, shape (n_samples,) or (n_samples, n_targets) as in ``fit``."""
        out = self._raw_outputs(X) * self.y_scale_ + self.y_mean_
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _weighted_score(metric, targets, predicted, weights):
    """scikit-learn's ``metric`` on tensors, sample-weighted; NaN when every weight is 0."""
    if weights is not None and not float(weights.sum()) > 0:
        return float("nan")
    w = None if weights is None else weights.numpy()
    return float(metric(targets.numpy(), predicted.numpy(), sample_weight=w))
