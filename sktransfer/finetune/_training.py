"""The skorch side: the net, the learning-rate schedule, gradual unfreezing, datasets."""

import math

import numpy as np
import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data
from tqdm.auto import tqdm

from ._freeze import apply_trainable, parameter_groups


class TransferNet(NeuralNet):
    """A skorch ``NeuralNet`` with per-block learning rates and no per-batch host syncs.

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

    def _zero_grad_optimizer(self, set_to_none=None):
        self.optimizer_.zero_grad(set_to_none=True)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's loop, but batch losses reach the host once per epoch, not once per batch."""
        if iterator is None:
            return
        losses, sizes = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach())
            sizes.append(len(batch[1]))
            self.notify("on_batch_end", batch=batch, training=training, **step)
        values = torch.stack(losses).float().cpu().tolist() if losses else []
        for row, loss, size in zip(self.history[-1]["batches"][-len(values) :], values, sizes):
            row[prefix + "_loss"] = loss
            row[prefix + "_batch_size"] = size
        self.history.record(prefix + "_batch_count", len(values))


PROBE_PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
PROBE_CV_MAX_SAMPLES = 10_000
UNVALIDATED_PENALTY = 1e-2


def fit_head_on_features(
    head, features, targets, criterion, *, seed, folds=3, penalties=PROBE_PENALTIES, verbose=0
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
        penalty = _choose_penalty(head, initial, features, targets, criterion, folds, seed, penalties, bar)
        head.load_state_dict(initial)
        _fit_head_lbfgs(head, features, targets, criterion, penalty)
        bar.update()
    return penalty


def _choose_penalty(head, initial, features, targets, criterion, folds, seed, penalties, bar):
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
            _fit_head_lbfgs(head, features[train], targets[train], criterion, candidate)
            with torch.no_grad():
                total += float(criterion(head(features[test]), targets[test])) * len(test)
        losses.append(total)
    return penalties[int(np.argmin(losses))]


def _fit_head_lbfgs(head, features, targets, criterion, penalty, max_iter=200):
    weights = [p for name, p in head.named_parameters() if name.endswith("weight")]
    optimizer = torch.optim.LBFGS(
        head.parameters(), lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure():
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(head(features), targets) + 0.5 * penalty * sum(w.pow(2).sum() for w in weights)
        loss.backward()
        return loss

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
    """``(inputs[i], targets[i])`` pairs, the form skorch trains on."""

    def __init__(self, inputs, targets):
        self.inputs = inputs
        self.targets = targets

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        return self.inputs[index], self.targets[index]


class TokenizingCollate:
    """Collate ``(text, target)`` pairs into ``(token dict, targets)``, padding per batch."""

    def __init__(self, tokenize, max_length):
        self.tokenize = tokenize
        self.max_length = max_length

    def __call__(self, batch):
        texts, targets = zip(*batch)
        return dict(self.tokenize(list(texts), self.max_length)), torch.stack(targets)
