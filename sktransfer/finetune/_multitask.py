"""Multi-task targets: one backbone, one head whose outputs are split among several tasks.

Each task owns a slice of the head's outputs (a class's logit per class, or one value for
a regression), its own loss on that slice, and its own rows: a missing label (NaN, None)
drops the row from that task's loss only, so tasks labelled on different rows share a
backbone. Because the head stays one ``nn.Linear``, everything that works for one task
(the probe head, the frozen-backbone shortcut, warm starts) works for several.
"""

from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import MultiOutputMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils._param_validation import Interval
from torch import nn

from ._net import LossTerm

KINDS = ("classification", "regression")
MAX_INFERRED_CLASSES = 20  # whole-number floats with more distinct values are read as a regression


@dataclass
class Task:
    """A fitted task: its kind, its slice of the head's outputs and how its labels are coded.

    ``classes`` (classification) are the labels in output order; ``mean`` and ``scale``
    (regression) standardise the target for training and are undone by ``predict``.
    """

    name: object
    kind: str
    start: int
    stop: int
    weight: float = 1.0
    classes: np.ndarray = None
    mean: float = 0.0
    scale: float = 1.0


class MultiTaskLoss(nn.Module):
    """The weighted sum of each task's mean loss over the rows that have its label.

    Targets are a float matrix (n_samples, n_tasks): class indices or standardised values,
    NaN where a label is missing. Sample weights weigh the rows within each task's mean.
    """

    def __init__(self, tasks, label_smoothing=0.0):
        super().__init__()
        self.tasks = [(t.kind, t.start, t.stop, float(t.weight)) for t in tasks]
        self.label_smoothing = label_smoothing

    def task_losses(self, logits, target):
        """Per task: ``(loss of each row (0 where unlabelled), labelled mask)``."""
        out = []
        for column, (kind, start, stop, _) in enumerate(self.tasks):
            y = target[:, column]
            present = ~torch.isnan(y)
            filled = torch.where(present, y, torch.zeros_like(y))
            if kind == "classification":
                loss = nn.functional.cross_entropy(
                    logits[:, start:stop],
                    filled.long(),
                    reduction="none",
                    label_smoothing=self.label_smoothing,
                )
            else:
                loss = (logits[:, start] - filled) ** 2
            out.append((loss * present, present))
        return out

    takes_sample_weight = True  # weighted_loss hands the weights over (see forward)

    def forward(self, logits, target, sample_weight=None):
        """``sum_t weight_t * (sum_i w_i loss_ti) / (sum of w_i over the rows labelled for t)``:
        integer sample weights act as repeated rows within every task."""
        w = torch.ones(len(logits), device=logits.device) if sample_weight is None else sample_weight
        total = logits.new_zeros(())
        for (loss, present), (*_, weight) in zip(self.task_losses(logits, target), self.tasks):
            labelled = (w * present).sum().clamp_min(torch.finfo(w.dtype).tiny)
            total = total + weight * (w * loss).sum() / labelled
        return total


class TaskLoss:
    """One task's mean loss over its labelled rows in a batch: recorded in ``history`` as
    ``train_<task>_loss`` (a loss term of weight 0: the criterion already counts it)."""

    def __init__(self, criterion, column):
        self.criterion = criterion
        self.column = column

    def __call__(self, logits, features, y_true):
        target = y_true["target"] if isinstance(y_true, dict) else y_true
        loss, present = self.criterion.task_losses(logits, target.to(logits.device))[self.column]
        return loss.sum() / present.sum().clamp_min(1)


class MultiTaskTargets(MultiOutputMixin):
    """``y``: a DataFrame (or 2-D array) with one column per task, classification and
    regression mixed; missing labels allowed."""

    _target_constraints = {
        "tasks": [None, dict, list],
        "task_weights": [None, dict, list],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    # ------------------------------------------------------------ encoding
    def _encode_targets(self, y, reset, classes=None, sample_weight=None):
        owner = type(self).__name__
        if classes is not None:
            raise ValueError(
                f"{owner}: classes= is for single-task classifiers; each task's classes come from y."
            )
        frame = self._as_frame(y, owner)
        if reset:
            self.tasks_ = self._fit_tasks(frame, sample_weight, owner)
        elif list(frame.columns) != list(self.tasks_):
            raise ValueError(
                f"{owner}: y has the columns {list(frame.columns)}, but the fitted model predicts the tasks "
                f"{list(self.tasks_)}. Continuing a fit keeps the tasks; refit with warm_start=False."
            )
        coded = np.column_stack([self._code(frame[name], task, owner) for name, task in self.tasks_.items()])
        unlabelled = np.flatnonzero(np.isnan(coded).all(axis=1))
        if len(unlabelled):
            raise ValueError(
                f"{owner}: row {int(unlabelled[0])} of y has no label in any task; drop the rows without "
                f"labels ({len(unlabelled)} in all)."
            )
        return torch.as_tensor(coded, dtype=torch.float32)

    def _as_frame(self, y, owner):
        if isinstance(y, pd.DataFrame):
            frame = y.reset_index(drop=True)
        else:
            array = np.asarray(y, dtype=object)  # labels and numbers side by side; typed below
            if array.ndim != 2:
                raise ValueError(
                    f"{owner}: y must be a DataFrame or a 2-D array with one column per task, got shape "
                    f"{array.shape}. For one task use ImageClassifier / TextClassifier or a regressor."
                )
            names = self._array_task_names(array.shape[1], owner)
            frame = pd.DataFrame(array, columns=names).infer_objects()  # numbers mixed with labels
        if frame.shape[1] < 1:
            raise ValueError(f"{owner}: y has no column: give one per task.")
        return frame

    def _array_task_names(self, n_columns, owner):
        if isinstance(self.tasks, dict):
            names = list(self.tasks)
        else:
            names = [f"task_{i}" for i in range(n_columns)]
        if len(names) != n_columns:
            raise ValueError(f"{owner}: tasks names {len(names)} tasks but y has {n_columns} columns.")
        return names

    def _fit_tasks(self, frame, sample_weight, owner):
        kinds = self._task_kinds(frame, owner)
        weights = self._task_weights(list(frame.columns), owner)
        tasks, start = {}, 0
        for name in frame.columns:
            column = frame[name]
            present = column[~column.isna()]
            if present.empty:
                raise ValueError(f"{owner}: task {name!r} has no label in y; give some or drop the column.")
            if kinds[name] == "classification":
                classes = np.unique(present.to_numpy())
                if len(classes) < 2:
                    raise ValueError(
                        f"{owner}: task {name!r} has a single class ({classes[0]!r}); a classification "
                        "task needs at least two."
                    )
                tasks[name] = Task(
                    name, "classification", start, start + len(classes), weights[name], classes
                )
            else:
                values = self._numeric(present, name, owner)
                w = None if sample_weight is None else sample_weight.numpy()[present.index.to_numpy()]
                if w is not None and w.sum() <= 0:
                    raise ValueError(
                        f"{owner}: every row labelled for task {name!r} has sample weight 0; the task "
                        "would learn nothing. Give some of them weight, or drop the column."
                    )
                mean = float(np.average(values, weights=w))
                std = float(np.sqrt(np.average((values - mean) ** 2, weights=w)))
                tasks[name] = Task(
                    name, "regression", start, start + 1, weights[name], mean=mean, scale=std or 1.0
                )
            start = tasks[name].stop
        return tasks

    def _task_kinds(self, frame, owner):
        columns = list(frame.columns)
        if self.tasks is None:  # from the column types: numbers with a fraction are regressions
            return {name: _inferred_kind(frame[name]) for name in columns}
        kinds = dict(self.tasks) if isinstance(self.tasks, dict) else dict(zip(columns, self.tasks))
        if isinstance(self.tasks, list) and len(self.tasks) != len(columns):
            raise ValueError(
                f"{owner}: tasks lists {len(self.tasks)} kinds but y has {len(columns)} columns."
            )
        if set(kinds) != set(columns):
            raise ValueError(
                f"{owner}: tasks names {sorted(map(str, kinds))}, but y has the columns "
                f"{sorted(map(str, columns))}; name every column once."
            )
        for name, kind in kinds.items():
            if kind not in KINDS:
                raise ValueError(f"{owner}: tasks[{name!r}]={kind!r} is not one of {KINDS}.")
        return kinds

    def _task_weights(self, columns, owner):
        if self.task_weights is None:
            return dict.fromkeys(columns, 1.0)
        if isinstance(self.task_weights, list):
            if len(self.task_weights) != len(columns):
                raise ValueError(
                    f"{owner}: task_weights has {len(self.task_weights)} entries for {len(columns)} tasks."
                )
            weights = dict(zip(columns, self.task_weights))
        else:
            unknown = set(self.task_weights) - set(columns)
            if unknown:
                raise ValueError(
                    f"{owner}: task_weights names {sorted(map(str, unknown))}, which are not tasks."
                )
            weights = {name: self.task_weights.get(name, 1.0) for name in columns}
        for name, weight in weights.items():
            if not isinstance(weight, Real) or not np.isfinite(weight) or weight < 0:
                raise ValueError(f"{owner}: task_weights[{name!r}]={weight!r} must be a finite number >= 0.")
        return weights

    @staticmethod
    def _numeric(values, name, owner):
        try:
            numbers = values.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{owner}: task {name!r} is a regression but its labels are not numbers."
            ) from None
        if not np.isfinite(numbers).all():
            raise ValueError(f"{owner}: task {name!r} has an infinite value; drop or fill it.")
        return numbers

    def _code(self, column, task, owner):
        present = ~column.isna().to_numpy()
        coded = np.full(len(column), np.nan)
        values = column.to_numpy()[present]
        if task.kind == "classification":
            unknown = np.setdiff1d(np.asarray(values, dtype=task.classes.dtype), task.classes)
            if len(unknown):
                raise ValueError(
                    f"{owner}: task {task.name!r} has labels {unknown[:5].tolist()} not seen in the first "
                    f"fit {task.classes.tolist()}; refit with warm_start=False."
                )
            coded[present] = np.searchsorted(task.classes, values)
        else:
            coded[present] = (self._numeric(pd.Series(values), task.name, owner) - task.mean) / task.scale
        return coded

    # ------------------------------------------------------------- the loss
    def _n_outputs(self):
        return max(task.stop for task in self.tasks_.values())

    def _criterion(self, targets, label_smoothing=None, weights=None):
        smoothing = self.label_smoothing if label_smoothing is None else label_smoothing
        return MultiTaskLoss(list(self.tasks_.values()), smoothing)

    def _loss_terms(self):
        criterion = self._criterion(None)
        return tuple(LossTerm(str(name), TaskLoss(criterion, i), 0.0) for i, name in enumerate(self.tasks_))

    def _stratify(self, targets):
        return None

    def _check_adaptations(self, adaptations, owner):
        if adaptations:
            raise ValueError(
                f"{owner}: adaptation={self.adaptation!r} is not available with several tasks; use a "
                "single-task estimator for domain adaptation."
            )

    # ----------------------------------------------------------- predicting
    def predict(self, X):
        """One column per task: class labels, or values in the units of ``y``.

        Returns
        -------
        pandas.DataFrame of shape (n_samples, n_tasks)
        """
        outputs = self._raw_outputs(X)
        columns = {}
        for name, task in self.tasks_.items():
            block = outputs[:, task.start : task.stop]
            if task.kind == "classification":
                columns[name] = task.classes[block.argmax(axis=1)]
            else:
                columns[name] = block[:, 0].astype(np.float64) * task.scale + task.mean
        return pd.DataFrame(columns)

    def predict_proba(self, X):
        """Class probabilities of each classification task.

        Returns
        -------
        dict
            Task name -> ndarray of shape (n_samples, n_classes), columns in the order of
            ``tasks_[name].classes``.
        """
        outputs = torch.from_numpy(self._raw_outputs(X))
        return {
            name: torch.softmax(outputs[:, task.start : task.stop], dim=1).numpy()
            for name, task in self.tasks_.items()
            if task.kind == "classification"
        }

    def score_tasks(self, X, y):
        """Each task's score on the rows labelled for it: accuracy for classification,
        R² for regression.

        Returns
        -------
        pandas.Series
            Indexed by task.
        """
        frame = self._as_frame(y, type(self).__name__)
        predicted = self.predict(X)
        scores = {}
        for name, task in self.tasks_.items():
            present = ~frame[name].isna().to_numpy()
            if not present.any():
                raise ValueError(f"{type(self).__name__}: task {name!r} has no label in y to score against.")
            truth, guess = frame[name].to_numpy()[present], predicted[name].to_numpy()[present]
            if task.kind == "classification":
                scores[name] = accuracy_score(truth.astype(task.classes.dtype), guess)
            else:
                scores[name] = r2_score(truth.astype(np.float64), guess)
        return pd.Series(scores, name="score")

    def score(self, X, y, sample_weight=None):
        """The mean of the tasks' scores (see :meth:`score_tasks`)."""
        if sample_weight is not None:
            raise ValueError(
                f"{type(self).__name__}: score takes no sample_weight; use score_tasks per task."
            )
        return float(self.score_tasks(X, y).mean(skipna=False))  # an undefined task score shows

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags


def _inferred_kind(column):
    """Floats are a regression, unless they are a few whole numbers (integer labels that
    became floats when a NaN marked a missing one)."""
    present = column.dropna()
    if present.dtype.kind != "f":
        return "classification"
    values = present.to_numpy()
    whole = np.all(np.mod(values, 1) == 0)
    return "classification" if whole and len(np.unique(values)) <= MAX_INFERRED_CLASSES else "regression"
