"""The probe head: the new head fitted alone on frozen features, before fine-tuning (LP-FT)."""

import numpy as np
import torch
from tqdm.auto import tqdm

from ._net import weighted_loss

PROBE_PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
PROBE_CV_MAX_SAMPLES = 10_000
UNVALIDATED_PENALTY = 1e-2


def fit_head_on_features(
    head,
    features,
    targets,
    criterion,
    *,
    seed,
    folds=3,
    penalties=PROBE_PENALTIES,
    sample_weight=None,
    groups=None,
    verbose=0,
):
    """Fit ``head`` alone on precomputed features: the linear probe that starts fine-tuning.

    The head's weights get an L2 penalty (``penalty / 2 * ||W||^2`` added to the mean
    loss) whose strength is chosen from ``penalties`` by ``folds``-fold cross-validation
    of the loss on these features, as ``LogisticRegressionCV`` does (no group of
    ``groups`` on both sides of a fold); the head is then fitted on all of them with
    L-BFGS. Returns the chosen penalty.

    Starting fine-tuning from a fitted head, the first backbone updates follow useful
    gradients instead of a random head's, which distorts pretrained features less
    (LP-FT, Kumar et al., 2022); a head trained alone starts where a careful linear
    probe ends.
    """
    initial = {k: v.clone() for k, v in head.state_dict().items()}
    with tqdm(desc="probe head", unit="fit", disable=not verbose) as bar:
        loss = ProbeLoss(criterion, sample_weight)
        penalty = _choose_penalty(head, initial, features, targets, loss, folds, seed, groups, penalties, bar)
        head.load_state_dict(initial)
        _fit_head_lbfgs(head, features, targets, loss, penalty)
        bar.update()
    return penalty


class ProbeLoss:
    """The probe's mean loss over a subset of rows (``index``), sample-weighted when given."""

    def __init__(self, criterion, sample_weight):
        self.criterion = criterion
        self.sample_weight = sample_weight

    def __call__(self, y_pred, target, index=None):
        if self.sample_weight is None:
            return self.criterion(y_pred, target)
        weight = self.sample_weight if index is None else self.sample_weight[index]
        return weighted_loss(self.criterion, y_pred, target, weight)

    def weight_of(self, index):
        """How much rows ``index`` count: their number, or their summed sample weight."""
        return len(index) if self.sample_weight is None else float(self.sample_weight[index].sum())

    def total(self, y_pred, target, index):
        """The summed loss of rows ``index`` (weights summed), to add up across folds."""
        return float(self(y_pred, target, index)) * self.weight_of(index)


def _choose_penalty(head, initial, features, targets, loss, folds, seed, groups, penalties, bar):
    if len(penalties) == 1:
        return penalties[0]
    if len(targets) > PROBE_CV_MAX_SAMPLES:
        return min(penalties)  # little regularisation is needed, and the search would cost the most
    splits = _probe_splits(targets, folds, seed, groups)
    if not splits:
        return UNVALIDATED_PENALTY  # too few samples per class to validate anything
    losses = []
    bar.total = len(penalties) * len(splits) + 1
    for candidate in penalties:
        total = 0.0
        for train, test in splits:
            bar.update()
            head.load_state_dict(initial)
            _fit_head_lbfgs(head, features[train], targets[train], loss, candidate, index=train)
            with torch.no_grad():
                total += loss.total(head(features[test]), targets[test], test)
        losses.append(total)
    return penalties[int(np.argmin(losses))]


def _fit_head_lbfgs(head, features, targets, loss, penalty, max_iter=200, index=None):
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad(set_to_none=True)
        value = loss(head(features), targets, index) + 0.5 * penalty * sum(w.pow(2).sum() for w in weights)
        value.backward()
        return value

    head.train()
    optimizer.step(closure)


def _probe_splits(targets, folds, seed, groups=None):
    """Cross-validation folds (index tensors on the targets' device): stratified for class
    indices, plain k-fold otherwise, grouped by ``groups`` when given; none when a class
    has fewer than ``folds`` samples, or the groups are fewer than ``folds``."""
    y = targets.cpu().numpy()
    if groups is not None and len(np.unique(groups)) < folds:
        return []
    stratify = y if y.ndim == 1 and y.dtype.kind in "iu" else None
    if stratify is not None and np.bincount(y)[np.unique(y)].min() < folds:
        return []
    if stratify is None and len(y) < 2 * folds:
        return []
    device = targets.device
    return [
        (torch.as_tensor(a, device=device), torch.as_tensor(b, device=device))
        for a, b in kfold_splits(len(y), folds, seed, stratify, groups)
    ]


def kfold_splits(n, folds, seed, stratify=None, groups=None):
    """Shuffled k-fold splits of ``n`` rows as index arrays: stratified by ``stratify``
    (labels) when given, keeping each of ``groups`` on one side when given."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

    index = np.zeros(n)
    if groups is not None and stratify is not None:
        return StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(index, stratify, groups)
    if groups is not None:
        return GroupKFold(folds).split(index, groups=groups)
    if stratify is not None:
        return StratifiedKFold(folds, shuffle=True, random_state=seed).split(index, stratify)
    return KFold(folds, shuffle=True, random_state=seed).split(index)
