"""The skorch side: the net, the learning-rate schedule, gradual unfreezing, datasets."""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from torch.utils.data import default_collate
from tqdm.auto import tqdm

from .._batches import batch_len
from ._freeze import apply_trainable, parameter_groups


class TransferNet(NeuralNet):
    """A skorch ``NeuralNet`` with per-block learning rates and no needless per-batch host syncs.

    ``lr`` is the head's learning rate (or a ``{"head", "backbone"}`` dict) and
    ``lr_decay`` the factor between consecutive blocks; see
    :func:`~sktransfer.finetune._freeze.parameter_groups`.
    """

    def __init__(self, *args, lr_decay=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_decay = lr_decay

    def initialize_optimizer(self, *args, **kwargs):
        _, optimizer_kwargs = self.get_params_for_optimizer("optimizer", [])
        optimizer_kwargs.pop("lr", None)
        groups = parameter_groups(self.module_, self.lr, self.lr_decay)
        self.optimizer_ = self.optimizer(groups, **optimizer_kwargs)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        fp16 = getattr(self.module_, "autocast_dtype", None) == torch.float16
        self.grad_scaler_ = torch.amp.GradScaler(torch.device(self.device).type) if fp16 else None
        return self

    def train_step_single(self, batch, **fit_params):
        if self.grad_scaler_ is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        self.grad_scaler_.unscale_(self.optimizer_)  # callbacks (gradient clipping) see true gradients
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if self.grad_scaler_ is None:
            return super()._step_optimizer(step_fn)
        step_fn()
        self.grad_scaler_.step(self.optimizer_)  # skipped when the gradients overflowed
        self.grad_scaler_.update()

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The criterion's loss; with sample weights, their weighted mean over the batch."""
        if not isinstance(y_true, dict):
            return super().get_loss(y_pred, y_true, X=X, training=training)
        target = y_true["target"].to(y_pred.device)
        weight = y_true["sample_weight"].to(y_pred.device)
        return weighted_loss(self.criterion_, y_pred, target, weight)

    def _zero_grad_optimizer(self, set_to_none=None):
        self.optimizer_.zero_grad(set_to_none=True)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's loop, with each batch's loss in ``history`` as skorch records it.

        On a GPU, reading a loss back waits for the device: when nothing looks at the
        batch losses during the epoch (no progress bar, no callback of the user's),
        they reach the host once, at the end of the epoch, instead of once per batch.
        """
        if iterator is None:
            return
        eager = self._record_each_batch()
        pending, count = [], 0
        for batch in iterator:
            count += 1
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = batch_len(batch[1])
            if eager:
                self.history.record_batch(prefix + "_loss", step["loss"].item())
                self.history.record_batch(prefix + "_batch_size", size)
            else:
                pending.append((step["loss"].detach(), size))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if pending:
            values = torch.stack([loss for loss, _ in pending]).float().cpu().tolist()
            for row, loss, (_, size) in zip(self.history[-1]["batches"][-len(values) :], values, pending):
                row[prefix + "_loss"] = loss
                row[prefix + "_batch_size"] = size
        self.history.record(prefix + "_batch_count", count)

    def _record_each_batch(self):
        """Whether batch losses go to ``history`` as they come: on the CPU, where reading
        them back costs nothing, or when a callback may read them during the epoch (a
        progress bar, or any callback the estimator did not add itself)."""
        observed = any(name not in QUIET_CALLBACKS for name, _ in self.callbacks_)
        return observed or torch.device(self.device).type == "cpu"


# Callbacks that read no batch loss before the epoch ends: skorch's defaults and ours.
QUIET_CALLBACKS = frozenset(
    {"epoch_timer", "train_loss", "valid_loss", "print_log", "lr_schedule", "unfreeze", "early_stopping"}
)


def weighted_loss(criterion, y_pred, target, weight):
    """``sum(w_i * loss_i) / sum(w_i)``: integer weights act as repeated rows, zeros as
    dropped ones. ``loss_i`` is the criterion's per-sample loss (class weights included)."""
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        losses = criterion(y_pred, target)
    finally:
        criterion.reduction = reduction
    if losses.ndim > 1:  # multilabel and multi-output: the mean over the outputs
        losses = losses.mean(dim=tuple(range(1, losses.ndim)))
    return (losses * weight).sum() / weight.sum().clamp_min(torch.finfo(weight.dtype).tiny)


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
    verbose=0,
):
    """Fit ``head`` alone on precomputed features: the linear probe that starts fine-tuning.

    The head's weights get an L2 penalty (``penalty / 2 * ||W||^2`` added to the mean
    loss) whose strength is chosen from ``penalties`` by ``folds``-fold cross-validation
    of the loss on these features, as ``LogisticRegressionCV`` does; the head is then
    fitted on all of them with L-BFGS. Returns the chosen penalty.

    Starting fine-tuning from a fitted head, the first backbone updates follow useful
    gradients instead of a random head's, which distorts pretrained features less
    (LP-FT, Kumar et al., 2022); a head trained alone starts where a careful linear
    probe ends.
    """
    initial = {k: v.clone() for k, v in head.state_dict().items()}
    with tqdm(desc="probe head", unit="fit", disable=not verbose) as bar:
        loss = _ProbeLoss(criterion, sample_weight)
        penalty = _choose_penalty(head, initial, features, targets, loss, folds, seed, penalties, bar)
        head.load_state_dict(initial)
        _fit_head_lbfgs(head, features, targets, loss, penalty)
        bar.update()
    return penalty


class _ProbeLoss:
    """The probe's mean loss over a subset of rows (``index``), sample-weighted when given."""

    def __init__(self, criterion, sample_weight):
        self.criterion = criterion
        self.sample_weight = sample_weight

    def __call__(self, y_pred, target, index=None):
        if self.sample_weight is None:
            return self.criterion(y_pred, target)
        weight = self.sample_weight if index is None else self.sample_weight[index]
        return weighted_loss(self.criterion, y_pred, target, weight)

    def total(self, y_pred, target, index):
        """The summed loss of rows ``index`` (weights summed), to add up across folds."""
        size = len(index) if self.sample_weight is None else float(self.sample_weight[index].sum())
        return float(self(y_pred, target, index)) * size


def _choose_penalty(head, initial, features, targets, loss, folds, seed, penalties, bar):
    if len(penalties) == 1:
        return penalties[0]
    if len(targets) > PROBE_CV_MAX_SAMPLES:
        return min(penalties)  # little regularisation is needed, and the search would cost the most
    splits = _probe_splits(targets, folds, seed)
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


def _probe_splits(targets, folds, seed):
    """Cross-validation folds (index tensors on the targets' device): stratified for class
    indices, plain k-fold otherwise; none when a class has fewer than ``folds`` samples."""
    from sklearn.model_selection import KFold, StratifiedKFold

    y = targets.cpu().numpy()
    index = np.zeros(len(y))
    if y.ndim == 1 and y.dtype.kind in "iu":
        if np.bincount(y)[np.unique(y)].min() < folds:
            return []
        splitter = StratifiedKFold(folds, shuffle=True, random_state=seed).split(index, y)
    elif len(y) < 2 * folds:
        return []
    else:
        splitter = KFold(folds, shuffle=True, random_state=seed).split(index)
    device = targets.device
    return [(torch.as_tensor(a, device=device), torch.as_tensor(b, device=device)) for a, b in splitter]


class WarmupCosine:
    """Learning-rate factor: linear warm-up over the first ``warmup`` fraction of steps, then
    cosine decay to zero. A class (not a lambda) so that fitted estimators pickle."""

    def __init__(self, total_steps, warmup=0.1):
        self.total_steps = max(1, total_steps)
        self.warmup_steps = max(1, int(round(warmup * self.total_steps)))

    def __call__(self, step):
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


class GradualUnfreezing(Callback):
    """At the start of epoch ``e`` of each fit, train the parameters ``schedule[e]`` names
    (a resolved freeze spec: see :func:`~sktransfer.finetune._freeze.resolve_trainable`)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1 - self.first_epoch_
        if epoch in self.schedule:
            apply_trainable(net.module_, self.schedule[epoch])


class Labelled(torch.utils.data.Dataset):
    """``(inputs[i], targets[i])`` pairs, the form skorch trains on; with ``weights``, the
    target side is a dict ``{"target": ..., "sample_weight": ...}`` (see ``TransferNet.get_loss``)."""

    def __init__(self, inputs, targets, weights=None):
        self.inputs = inputs
        self.targets = targets
        self.weights = weights

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        if self.weights is None:
            return self.inputs[index], self.targets[index]
        return self.inputs[index], {"target": self.targets[index], "sample_weight": self.weights[index]}


class TokenizingCollate:
    """Collate ``(text, target)`` pairs into ``(token dict, targets)``, padding per batch."""

    def __init__(self, tokenize, max_length):
        self.tokenize = tokenize
        self.max_length = max_length

    def __call__(self, batch):
        texts, targets = zip(*batch)
        return dict(self.tokenize(list(texts), self.max_length)), default_collate(list(targets))
