"""The skorch side: the net, the learning-rate schedule, gradual unfreezing, datasets."""

import math

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.dataset import unpack_data

from ._freeze import apply_freeze, parameter_groups


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
        if getattr(self, "grad_scaler_", None) is None:
            return super().train_step_single(batch, **fit_params)
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        self.grad_scaler_.unscale_(self.optimizer_)  # callbacks (gradient clipping) see true gradients
        return {"loss": loss, "y_pred": y_pred}

    def _step_optimizer(self, step_fn):
        if getattr(self, "grad_scaler_", None) is None:
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


def fit_head_on_features(head, features, targets, criterion, *, weight_decay, steps=300, lr=1e-2):
    """Train ``head`` alone on precomputed features, full batch: the linear probe that
    starts fine-tuning (LP-FT). Starting from a fitted head, the first backbone updates
    follow useful gradients instead of a random head's, which distorts pretrained
    features less (Kumar et al., 2022)."""
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    head.train()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        criterion(head(features), targets).backward()
        optimizer.step()


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
    """Apply ``schedule[e]`` (a freeze spec) at the start of epoch ``e`` of each fit."""

    def __init__(self, schedule, owner="estimator"):
        self.schedule = schedule
        self.owner = owner

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)

    def on_epoch_begin(self, net, **kwargs):
        epoch = len(net.history) - 1 - self.first_epoch_
        if epoch in self.schedule:
            apply_freeze(net.module_, self.schedule[epoch], self.owner, "unfreeze")


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
