"""The skorch net that fine-tunes: per-block learning rates, loss scaling, the loss seam."""

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from .._batches import batch_len
from ._freeze import parameter_groups


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
        self.module_.train()
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        self.grad_scaler_.unscale_(self.optimizer_)  # callbacks (gradient clipping) see true gradients
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        """One optimisation step (skorch's public hook): gradients set to None rather than
        zeroed, and the fp16 loss scaler's step and update when there is one."""
        self.optimizer_.zero_grad(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        self.notify(
            "on_grad_computed", named_parameters=TeeGenerator(self.get_all_learnable_params()), batch=batch
        )
        if self.grad_scaler_ is None:
            self.optimizer_.step()
        else:
            self.grad_scaler_.step(self.optimizer_)  # skipped when the gradients overflowed
            self.grad_scaler_.update()
        return step

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
