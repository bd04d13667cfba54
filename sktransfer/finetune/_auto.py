"""``freeze="auto"``: what to train, and at which resolution, chosen on the training data.

The candidates (from the inputs mixin's ``_auto_candidates``) are recipes: the head alone on
frozen features at one or several resolutions, and fine-tuning recipes (``last:K``,
``first:K``, the whole network) each with its learning rates. They are judged on an inner
split of the training rows only (stratified; grouped when ``groups`` are given), sharing
the work:

- frozen features are computed once per resolution, for every training row, and serve
  every head-only candidate (cross-validated on them), the probe head that starts every
  fine-tuning candidate, and the refit of the winner;
- fine-tuning candidates start from the same probe head and race by successive halving:
  all train a few epochs, the best third goes on, the rest stop;
- a time budget, in units of one fit of the default recipe (timed on its first epoch),
  bounds the whole fit, refit of the winner included: a candidate stops
  (``pruned_at="budget"``) as soon as its remaining epochs and its refit would not fit,
  so no time goes to a candidate that could not win, and the fit overruns the budget
  by at most one epoch of one candidate (estimates err).

The winner is the best head-only candidate by cross-validated loss (unsmoothed: a head
alone is a logistic regression) unless a fine-tuning candidate that finished its epochs
does better on the shared holdout fold: a lower cross-entropy at each one's best
temperature for single-label classifiers (fine-tuning's label smoothing shrinks its
logits), a higher score otherwise (and where the holdout is perfectly separated); ties,
rare with losses, go to the cheaper recipe. The race's rungs rank alike.
"""

import copy
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .._device import fast_kernels, resolve_precision
from ..data import subset
from ._freeze import apply_trainable, resolve_trainable
from ._probe import PROBE_PENALTIES, ProbeLoss, kfold_splits

# Successive halving: a third of the racing fine-tuning candidates go on at each rung.
HALVING_RATE = 3
INNER_FOLDS = 5
# Unstratified (regression) folds hold out at least this many rows: R² needs two.
MIN_FOLD_ROWS = 2
# Temperatures at which a holdout's loss is taken (its minimum counts): 1/8 to 8.
TEMPERATURES = tuple(float(t) for t in np.geomspace(0.125, 8.0, 49))


@dataclass(frozen=True)
class Recipe:
    """What one fit trains: the freeze spec, its learning rates, the resolution (images;
    None: the estimator's) and the epochs (None: ``max_epochs``; 0: the probe head alone)."""

    freeze: object
    lr: object
    lr_decay: float
    image_size: int = None
    epochs: int = None


@dataclass
class Candidate:
    """One recipe in the search, and what the search learnt of it."""

    name: str
    recipe: Recipe
    cost: float = 1.0  # guessed cost of an epoch, relative to the default recipe's, until timed
    unit: bool = False  # the default recipe: its fit is the budget's unit (set by the search)
    score: float = math.nan  # on the shared holdout fold
    cv_score: float = math.nan  # head-only candidates: mean over the inner folds
    cv_loss: float = math.nan  # head-only candidates: mean held-out loss, what ranks them
    holdout_loss: float = math.nan  # on the shared holdout, at its best temperature (see _holdout_loss)
    epochs: int = 0
    seconds: float = 0.0
    pruned_at: str = None
    epoch_seconds: list = field(default_factory=list)
    finished: bool = False  # trained all its epochs: it may win
    state: object = None  # while racing: its skorch net and training rows

    @property
    def head_only(self):
        return self.recipe.freeze == "backbone"


@dataclass
class Choice:
    """The search's outcome: the winning recipe, the frozen features of every training row
    at its resolution (to reuse in the refit), the report rows."""

    recipe: Recipe
    features: torch.Tensor
    report: object
    budget_seconds: float
    search_seconds: float


def _strata(estimator, targets, weights):
    """The class of each row to stratify on (None: not stratified). Weightless rows are
    dropped rows: they count towards no class (they join the largest, where they change
    no fold's balance)."""
    stratify = estimator._stratify(targets)
    if stratify is None or weights is None:
        return stratify
    weighted = np.asarray(weights) > 0
    if not weighted.any():
        return stratify
    values, counts = np.unique(stratify[weighted], return_counts=True)
    return np.where(weighted, stratify, values[counts.argmax()])


def validation_shortfall(estimator, targets, groups, weights=None):
    """Why the training rows cannot be split into inner folds (fewer than 2 rows of some
    class, or fewer than 2 groups), or None when they can. Weightless rows do not count."""
    stratify = _strata(estimator, targets, weights)
    if groups is not None and len(np.unique(groups)) < 2:
        return "it needs at least 2 groups to hold one out"
    if stratify is not None:  # class indices
        values, counts = np.unique(stratify, return_counts=True)
        if counts.min() < 2:
            rare = estimator.classes_.tolist()[values[counts.argmin()]]
            return f"class {rare!r} has a single labelled row, none to hold out"
        if groups is not None:  # a group is held out whole: a class needs two groups
            for value in values:
                if len(np.unique(np.asarray(groups)[stratify == value])) < 2:
                    rare = estimator.classes_.tolist()[value]
                    return (
                        f"class {rare!r} lies in a single group, so no fold could both train on it "
                        "and hold it out"
                    )
    if stratify is None and len(targets) < 2 * MIN_FOLD_ROWS:
        return f"it needs at least {2 * MIN_FOLD_ROWS} rows ({MIN_FOLD_ROWS} to hold out in each of 2 folds)"
    return None


def inner_folds(estimator, targets, groups, seed, weights=None):
    """Inner cross-validation folds over the training rows: stratified for classes, grouped
    when ``groups`` are given (no group on both sides), ``INNER_FOLDS`` of them or fewer
    when a class or the groups are too few (at least 2: see ``validation_shortfall``)."""
    stratify = _strata(estimator, targets, weights)
    n = len(targets)
    limit = n if groups is None else len(np.unique(groups))
    if stratify is not None:
        limit = min(limit, np.unique(stratify, return_counts=True)[1].min())
    else:  # R² needs two held-out rows
        limit = min(limit, n // MIN_FOLD_ROWS)
    splits = kfold_splits(n, min(INNER_FOLDS, int(limit)), seed, stratify, groups)
    return [(np.sort(train), np.sort(test)) for train, test in splits]


def unvalidated_report(estimator, recipe, reason):
    """``auto_report_`` of a fit that could not validate: the fixed default, trained as is."""
    trained = Candidate(
        str(recipe.freeze),
        recipe,
        epochs=estimator.max_epochs,
        seconds=math.nan,
        pruned_at=f"not validated: {reason}",
    )
    return report_frame(estimator, [trained], trained)


def report_frame(estimator, candidates, winner):
    """``auto_report_``: one row per candidate (no ``image_size`` column for texts)."""
    import pandas as pd

    rows = [
        {
            "candidate": c.name,
            "freeze": c.recipe.freeze,
            "image_size": c.recipe.image_size,
            "score": c.score,
            "cv_score": c.cv_score,
            "cv_loss": c.cv_loss,
            "holdout_loss": c.holdout_loss,
            "epochs": c.epochs,
            "seconds": c.seconds,
            "pruned_at": c.pruned_at,
            "chosen": c is winner,
        }
        for c in candidates
    ]
    report = pd.DataFrame(rows)
    return report if estimator._modality == "image" else report.drop(columns="image_size")


class AutoSearch:
    """Run the candidates of ``estimator`` (fitting ``X``, ``targets``) within its budget."""

    def __init__(self, estimator, X, targets, weights, groups, seed, default):
        self.est = estimator
        self.X, self.targets, self.weights, self.seed = X, targets, weights, seed
        self.default = default
        self.groups = groups
        self.folds = inner_folds(estimator, targets, groups, seed, weights)
        self.fit_rows, self.holdout = self.folds[0]
        self.features = {}  # resolution -> features of every training row
        self.feature_seconds = {}
        self.budget = math.inf  # seconds; known once the default recipe's first epoch is timed

    # ------------------------------------------------------------------ driver
    def run(self):
        est = self.est
        self.start = time.perf_counter()
        est._apply_recipe(self.default)
        self.backbone = est._load_backbone()
        self.default = replace(self.default, image_size=getattr(est, "image_size_", None))
        self.base = est._build_model(self.backbone)
        est._place(self.base)
        self.base.autocast_dtype = resolve_precision(est.device_, est.precision)
        # A head alone is the whole model: judged by the plain (unsmoothed) loss.
        self.head_loss = ProbeLoss(
            est._head_criterion(self.targets, alone=True, weights=self.weights), self.weights
        )
        candidates = est._auto_candidates(self.backbone, self.default)
        heads = [c for c in candidates if c.head_only]
        tuned = [c for c in candidates if not c.head_only]
        # The budget's unit: the fixed default recipe (or the first fine-tuning candidate when
        # this backbone is too shallow for it to be one).
        unit = next((c for c in tuned if c.recipe == self.default), tuned[0] if tuned else None)
        if unit is not None:
            unit.unit, unit.cost = True, 1.0
        tuned_size = self.default.image_size
        # The probe head that starts every fine-tuning candidate, on the default resolution's
        # features: the first resolution computed, so the unit's first epoch times the budget.
        self._features_at(tuned_size)
        self.probe_state = self._probe_head(tuned_size)
        racing = self._start_race(tuned)
        for candidate in sorted(heads, key=lambda c: c.recipe.image_size != tuned_size):
            self._evaluate_head(candidate)
        self._race(racing)
        winner = self._winner(heads, tuned)
        report = report_frame(self.est, candidates, winner)
        features = self.features.get(winner.recipe.image_size)
        return Choice(winner.recipe, features, report, self.budget, self.elapsed())

    def elapsed(self):
        return time.perf_counter() - self.start

    # ------------------------------------------------------------ head-only
    def _use(self, recipe):
        """Make ``recipe`` the estimator's current one (its resolution for the next batches)."""
        self.est._apply_recipe(recipe)
        self.est._setup(self.backbone)

    def _features_at(self, size):
        if size not in self.features:
            est = self.est
            self._use(replace(self.default, image_size=size))
            apply_trainable(self.base, frozenset())
            start = time.perf_counter()
            self.features[size] = est._precomputed(self.base, self.X)
            self.feature_seconds[size] = time.perf_counter() - start
        return self.features[size]

    def _feature_cost(self, size):
        """Seconds to compute the features at ``size``, from the default resolution's pass
        (a CNN's cost grows with the number of pixels)."""
        if size in self.features:
            return 0.0
        known = self.default.image_size
        scale = 1.0 if size is None or known is None else (size / known) ** 2
        return self.feature_seconds[known] * scale

    def _probe_head(self, size):
        """The head fitted alone on the fitting rows' features (LP-FT), shared by every
        fine-tuning candidate."""
        est, rows = self.est, self.fit_rows
        est._fit_head(
            self.base.head,
            self._features_at(size),
            self.targets,
            self.weights,
            rows,
            self.seed,
            quiet=True,
            groups=self.groups,
        )
        return copy.deepcopy(self.base.head.state_dict())

    def _evaluate_head(self, candidate):
        size = candidate.recipe.image_size
        cost = self._feature_cost(size)
        if cost and self.elapsed() + cost > self.budget:  # the default resolution's are paid
            candidate.pruned_at = "budget"
            return
        start = time.perf_counter()
        features = self._features_at(size)
        scores, losses, sizes, penalties = [], [], [], PROBE_PENALTIES
        for fold, (train, test) in enumerate(self.folds):
            head = self._fresh_head()
            # The L2 penalty is cross-validated in the first fold and kept in the others
            # (a nested search in every fold would cost five times as many fits; the
            # first fold's rows include the others' test rows: cv_score is a little
            # optimistic, alike for every resolution).
            penalty = self.est._fit_head(
                head,
                features,
                self.targets,
                self.weights,
                train,
                self.seed,
                quiet=True,
                penalties=penalties,
                groups=self.groups,
                alone=True,
            )
            penalties = (penalty,)
            with torch.inference_mode():
                logits = head(features[test].to(self.est.device_)).float().cpu()
            if fold == 0:  # its test rows are the shared holdout
                candidate.holdout_loss = self._holdout_loss(logits)
            scores.append(self._score(logits, test))
            losses.append(self.head_loss.total(logits, self.targets[test], test))
            sizes.append(self.head_loss.weight_of(test))
        # Pooled over the folds, each row by its weight: a fold whose rows all weigh 0 adds
        # nothing (its score is NaN, its loss 0).
        sizes = np.asarray(sizes)
        scored = sizes > 0
        candidate.score = scores[0]
        if scored.any():
            candidate.cv_score = float(np.average(np.asarray(scores)[scored], weights=sizes[scored]))
            candidate.cv_loss = float(np.sum(losses) / sizes.sum())
        candidate.seconds = time.perf_counter() - start

    def _fresh_head(self):
        head = copy.deepcopy(self.base.head)
        head.linear.reset_parameters()
        return head

    # ---------------------------------------------------------- fine-tuning
    def _start_race(self, tuned):
        """The fine-tuning candidates, the default recipe first: it trains its first epoch
        now, which times the budget's unit."""
        racing = sorted(tuned, key=lambda c: not c.unit)
        if racing:
            self._train_epoch(racing[0])
            self._set_budget(racing[0])
        return racing

    def _set_budget(self, unit):
        """One default fit: its features and probe, then ``max_epochs`` epochs on every row."""
        est = self.est
        scale = len(self.targets) / len(self.fit_rows)
        one_fit = (
            self.feature_seconds[self.default.image_size] + est.max_epochs * unit.epoch_seconds[0] * scale
        )
        self.budget = math.inf if est.auto_budget is None else est.auto_budget * one_fit

    def _prepare(self, candidate):
        est = self.est
        model = copy.deepcopy(self.base)
        model.head.load_state_dict(self.probe_state)
        self._use(candidate.recipe)
        owner = type(est).__name__
        apply_trainable(model, resolve_trainable(model.backbone, candidate.recipe.freeze, owner))
        est._resolve_augment(True)
        train_ds = est._dataset(model, self.X, self.targets, self.weights, self.fit_rows, None, None, True)
        net = est._make_net(model, train_ds, None, {}, est.max_epochs, self.seed, False, quiet=True)
        return net, train_ds

    def _train_epoch(self, candidate):
        if candidate.state is None:  # built when it first trains; dropped when it stops
            start = time.perf_counter()
            candidate.state = self._prepare(candidate)
            candidate.seconds += time.perf_counter() - start
        net, train_ds = candidate.state
        start = time.perf_counter()
        with fast_kernels(self.est.device_):
            net.partial_fit(train_ds, None, epochs=1)
        seconds = time.perf_counter() - start
        candidate.epoch_seconds.append(seconds)
        candidate.seconds += seconds
        candidate.epochs += 1

    def _epoch_estimate(self, candidate, unit):
        if candidate.epoch_seconds:
            return float(np.median(candidate.epoch_seconds))
        return candidate.cost * unit.epoch_seconds[0]

    def _refit_estimate(self, candidate, unit):
        scale = len(self.targets) / len(self.fit_rows)
        return self.est.max_epochs * self._epoch_estimate(candidate, unit) * scale

    def _race(self, racing):
        """Successive halving: all train to the first rung, a third go on to the next..."""
        if not racing:
            return
        unit = next((c for c in racing if c.unit), racing[0])
        epochs = self.est.max_epochs
        rungs = sorted({max(1, epochs // HALVING_RATE**k) for k in range(_rounds(len(racing)), -1, -1)})
        alive = list(racing)
        for rung in rungs:
            for candidate in alive:
                while candidate.pruned_at is None and candidate.epochs < rung:
                    # Room for the rest of its epochs (it can only win once it has trained them
                    # all) and its refit, or a finished candidate's, which may still win; the
                    # other candidates are checked in their turn.
                    refits = [self._refit_estimate(c, unit) for c in racing if c is candidate or c.finished]
                    rest = (epochs - candidate.epochs) * self._epoch_estimate(candidate, unit)
                    need = rest + max(refits)
                    if self.elapsed() + need > self.budget:
                        candidate.pruned_at, candidate.state = "budget", None
                    else:
                        self._train_epoch(candidate)
                if candidate.epochs and candidate.pruned_at is None:  # the budget's prunes cannot win
                    self._evaluate_tuned(candidate)
                candidate.finished = candidate.pruned_at is None and candidate.epochs == epochs
            alive = [c for c in alive if c.pruned_at is None]
            if rung == rungs[-1] or not alive:
                break
            keep = max(1, math.ceil(len(alive) / HALVING_RATE))
            ranked = sorted(alive, key=_holdout_rank(alive))
            for candidate in ranked[keep:]:
                candidate.pruned_at, candidate.state = f"epoch {rung}", None
            alive = ranked[:keep]

    def _evaluate_tuned(self, candidate):
        net, _ = candidate.state
        self._use(candidate.recipe)
        start = time.perf_counter()
        logits = self.est._map_batches(net.module_, net.module_, subset(self.X, self.holdout), "holdout")
        candidate.score = self._score(logits, self.holdout)
        candidate.holdout_loss = self._holdout_loss(logits)
        candidate.seconds += time.perf_counter() - start

    # -------------------------------------------------------------- outcome
    def _score(self, logits, rows):
        if not torch.isfinite(logits).all():  # a diverged network: no score, it ranks last
            return math.nan
        weights = None if self.weights is None else self.weights[rows]
        return float(self.est._inner_score(logits, self.targets[rows], weights))

    def _holdout_loss(self, logits):
        """The holdout's cross-entropy at the temperature that minimises it. Fine-tuning
        trains with label smoothing, which mostly shrinks the logits' scale; a head alone
        is unsmoothed: at each one's best temperature (fitted on the holdout itself, alike
        for both), their losses compare what the logits' order and margins know. NaN for
        other losses (regressors, multilabel ``y``), a holdout whose rows all weigh 0, and
        a holdout so well separated that the loss only falls as the logits grow (its best
        temperature the grid's lowest, not a flat loss): there it says no more than
        accuracy. Infinite for logits that are not finite (a diverged network)."""
        if not isinstance(self.head_loss.criterion, torch.nn.CrossEntropyLoss):
            return math.nan
        if self.weights is not None and not float(self.weights[self.holdout].sum()) > 0:
            return math.nan
        targets, logits = self.targets[self.holdout], logits.float().cpu()
        if not torch.isfinite(logits).all():
            return math.inf
        with torch.no_grad():
            losses = [float(self.head_loss(logits / t, targets, self.holdout)) for t in TEMPERATURES]
        best = int(np.argmin(losses))
        # constant logits give the same loss at every temperature: a loss, not a separation
        return math.nan if best == 0 and losses[0] < losses[-1] else losses[best]

    def _winner(self, heads, tuned):
        # Heads (one model class) are ranked by their held-out loss, a finer measure than the
        # accuracy of a few dozen rows a fold (on ants vs bees, 224 and 288 px differed by at
        # most two photos in accuracy, by a fifth in loss, consistently over the seeds' folds).
        scored = [c for c in heads if not math.isnan(c.cv_loss)]
        best = min(scored, key=lambda c: c.cv_loss) if scored else None  # first of equals: cheapest
        for candidate in tuned:
            candidate.state = None  # the race's networks are done with
            if not candidate.finished:
                continue
            rank = _holdout_rank([candidate] if best is None else [candidate, best])
            if best is None or rank(candidate) < rank(best):  # ties: the cheaper
                best = candidate
        if best is None:  # nothing fitted in the budget: the default recipe
            return next((c for c in tuned if c.unit), tuned[0] if tuned else heads[0])
        return best


def _holdout_rank(candidates):
    """How ``candidates`` compare on the shared holdout (lower first): by their loss at the
    best temperature when every one has one (finer than the accuracy of a few dozen
    rows), else by score."""
    if not any(math.isnan(c.holdout_loss) for c in candidates):
        return lambda c: c.holdout_loss
    return lambda c: -_finite(c.score)


def _finite(score):
    """A score to rank by: NaN (a holdout whose rows all weigh 0) ranks last."""
    return -math.inf if math.isnan(score) else score


def _rounds(n_candidates):
    """Halvings needed to bring ``n_candidates`` down to one at ``HALVING_RATE``."""
    rounds = 0
    while n_candidates > 1:
        n_candidates = math.ceil(n_candidates / HALVING_RATE)
        rounds += 1
    return rounds
