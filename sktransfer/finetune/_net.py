"""The skorch net that fine-tunes: per-block learning rates, loss scaling, the loss seam."""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from skorch import NeuralNet
from skorch.dataset import unpack_data
from skorch.hf import AccelerateMixin
from skorch.utils import TeeGenerator

from .._batches import batch_len
from ._freeze import parameter_groups


class TransferNet(NeuralNet):
    """A skorch ``NeuralNet`` with per-block learning rates and no needless per-batch host syncs.

    ``lr`` is the head's learning rate (or a ``{"head", "backbone"}`` dict) and
    ``lr_decay`` the factor between consecutive blocks; see
    :func:`~sktransfer.finetune._freeze.parameter_groups`.
    """

    def __init__(self, *args, lr_decay=1.0, loss_terms=(), total_steps=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lr_decay = lr_decay
        self.loss_terms = loss_terms
        self.total_steps = total_steps  # the fit's optimisation steps: a term's weight may follow them
        self.steps_done_ = 0

    # skorch pickles its device-dependent attributes (module_, optimizer_...) in a stream of
    # their own; the module, the callbacks and the collate function also hold the network
    # (the backbone's tokenizer, the schedule's optimiser), so they join that stream: a
    # pickled estimator then holds its weights once instead of twice.
    _SHARES_THE_NETWORK = ("module", "callbacks", "iterator_")

    def __getstate__(self):
        shared = [p for p in self._SHARES_THE_NETWORK if p not in self.cuda_dependent_attributes_]
        self.cuda_dependent_attributes_ = [*self.cuda_dependent_attributes_, *shared]
        try:
            return super().__getstate__()
        finally:
            self.cuda_dependent_attributes_ = [p for p in self.cuda_dependent_attributes_ if p not in shared]

    def initialize_optimizer(self, *args, **kwargs):
        _, optimizer_kwargs = self.get_params_for_optimizer("optimizer", [])
        optimizer_kwargs.pop("lr", None)
        groups = parameter_groups(self.module_, self.lr, self.lr_decay)
        self.optimizer_ = self.optimizer(groups, **optimizer_kwargs)
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none.
        fp16 = getattr(self.module_, "autocast_dtype", None) == torch.float16
        self.grad_scaler_ = torch.amp.GradScaler(self._device_type()) if fp16 else None
        return self

    def infer(self, x, **fit_params):
        """The module's output: logits, or ``(logits, features)`` when loss terms need them."""
        if self.loss_terms:
            fit_params = {**fit_params, "return_features": True}
        return super().infer(x, **fit_params)

    def train_step_single(self, batch, **fit_params):
        self.module_.train()
        Xi, yi = unpack_data(batch)
        y_pred = self.infer(Xi, **fit_params)
        loss, terms = self.loss_and_terms(y_pred, yi)
        if self.grad_scaler_ is None:
            loss.backward()
        else:
            self.grad_scaler_.scale(loss).backward()
            self.grad_scaler_.unscale_(self.optimizer_)  # callbacks (gradient clipping) see true gradients
        return {"loss": loss, "y_pred": _logits(y_pred), "terms": terms}

    def validation_step(self, batch, **fit_params):
        self.module_.eval()
        Xi, yi = unpack_data(batch)
        with torch.no_grad():
            y_pred = self.infer(Xi, **fit_params)
            loss, terms = self.loss_and_terms(y_pred, yi)
        return {"loss": loss, "y_pred": _logits(y_pred), "terms": terms}

    def train_step(self, batch, **fit_params):
        """One optimisation step (skorch's public hook): gradients set to None rather than
        zeroed, and the fp16 loss scaler's step and update when there is one."""
        self.optimizer_.zero_grad(set_to_none=True)
        step = self.train_step_single(batch, **fit_params)
        self.steps_done_ += 1
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
        """The training loss: the task's plus every weighted loss term (skorch's hook)."""
        return self.loss_and_terms(y_pred, y_true)[0]

    def loss_and_terms(self, y_pred, y_true):
        """``(total loss, {name: unweighted value})``.

        The task term is the criterion's loss (its sample-weighted mean when the targets
        carry ``sample_weight``); each :class:`LossTerm` adds ``weight * fn(...)``. The
        values are recorded in ``history`` per batch as ``train_<name>_loss`` and
        ``valid_<name>_loss``.
        """
        logits, features = y_pred if isinstance(y_pred, tuple) else (y_pred, None)
        target = y_true["target"] if isinstance(y_true, dict) else y_true
        target = target.to(logits.device)
        if isinstance(y_true, dict):
            task = weighted_loss(self.criterion_, logits, target, y_true["sample_weight"].to(logits.device))
        else:
            task = self.criterion_(logits, target)
        total, terms = task, {}
        for term in self.loss_terms:
            terms[term.name] = term.fn(logits=logits, features=features, y_true=y_true)
            weight = term.weight(self.progress()) if callable(term.weight) else term.weight
            total = total + weight * terms[term.name]
        return total, terms

    def progress(self):
        """The fraction of the fit's optimisation steps done, in [0, 1]."""
        if not self.total_steps:
            return 1.0
        return min(1.0, self.steps_done_ / self.total_steps)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's loop, with each batch's loss in ``history`` as skorch records it.

        On a GPU, reading a loss back waits for the device: when nothing looks at the
        batch losses during the epoch (no progress bar, no callback of the user's),
        they reach the host once, at the end of the epoch, instead of once per batch.
        """
        if iterator is None:
            return
        eager = self._record_each_batch()
        losses, sizes = [], []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append({"": step["loss"], **step.get("terms", {})})
            sizes.append(batch_len(batch[1]))
            if eager:
                self._write_batch_losses(losses[-1:], sizes[-1:], prefix)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses and not eager:
            self._write_batch_losses(losses, sizes, prefix)
        self.history.record(prefix + "_batch_count", len(sizes))

    def _write_batch_losses(self, losses, sizes, prefix):
        """Write the losses of the last ``len(losses)`` batches into their ``history`` rows
        (``train_loss``, ``train_<term>_loss``...), read back from the device at once."""
        names = list(losses[0])
        values = torch.stack([torch.stack([row[n].detach().float() for n in names]) for row in losses])
        for row, row_values, size in zip(
            self.history[-1]["batches"][-len(losses) :], values.cpu().tolist(), sizes
        ):
            row.update(
                {
                    f"{prefix}_{name}_loss" if name else f"{prefix}_loss": v
                    for name, v in zip(names, row_values)
                }
            )
            row[prefix + "_batch_size"] = size

    def _record_each_batch(self):
        """Whether batch losses go to ``history`` as they come: on the CPU, where reading
        them back costs nothing, or when a callback may read them during the epoch (a
        progress bar, or any callback the estimator did not add itself)."""
        observed = any(name not in QUIET_CALLBACKS for name, _ in self.callbacks_)
        return observed or self._device_type() == "cpu"

    def _device_type(self):
        return torch.device(self.device).type


@dataclass(frozen=True)
class LossTerm:
    """A named term added to the training loss: ``weight * fn(logits=, features=, y_true=)``.

    ``weight`` is a number, or a callable ``progress -> number`` (``progress``: the
    fraction of the fit's optimisation steps done), e.g. a warm-up.

    ``features`` are the pooled backbone features the head sees, ``y_true`` the batch's
    targets (a dict when samples carry metadata, such as ``sample_weight`` or, for
    domain adaptation, domain labels). ``fn`` returns a scalar tensor. A plain class
    (not a lambda) keeps fitted estimators picklable.
    """

    name: str
    fn: Callable
    weight: float | Callable = 1.0


def _logits(y_pred):
    return y_pred[0] if isinstance(y_pred, tuple) else y_pred


# Callbacks that read no batch loss before the epoch ends: skorch's defaults and ours.
QUIET_CALLBACKS = frozenset(
    {"epoch_timer", "train_loss", "valid_loss", "print_log", "lr_schedule", "unfreeze", "early_stopping"}
)


def weighted_loss(criterion, y_pred, target, weight):
    """``sum(w_i * loss_i) / sum(w_i)``: integer weights act as repeated rows, zeros as
    dropped ones. ``loss_i`` is the criterion's per-sample loss (class weights included);
    with class weights ``c``, the sum is divided by ``sum(w_i * c[y_i])``, as the
    unweighted loss divides by ``sum(c[y_i])``, so weights of one give the same loss as
    none. A criterion with ``takes_sample_weight`` weighs the rows itself (multi-task:
    each task averages over its own labelled rows)."""
    if getattr(criterion, "takes_sample_weight", False):
        return criterion(y_pred, target, weight)
    reduction = criterion.reduction
    criterion.reduction = "none"
    try:
        losses = criterion(y_pred, target)
    finally:
        criterion.reduction = reduction
    if losses.ndim > 1:  # multilabel and multi-output: the mean over the outputs
        losses = losses.mean(dim=tuple(range(1, losses.ndim)))
    norm = weight
    class_weight = getattr(criterion, "weight", None)
    if class_weight is not None and target.ndim == 1 and not target.is_floating_point():
        norm = weight * class_weight.to(weight.device)[target]
    return (losses * weight).sum() / norm.sum().clamp_min(torch.finfo(weight.dtype).tiny)


# What an Accelerator keeps of what it prepared (its private lists, read defensively).
_PREPARED = ("_models", "_optimizers", "_schedulers", "_dataloaders")


class AcceleratedTransferNet(AccelerateMixin, TransferNet):
    """:class:`TransferNet` trained through an ``accelerate.Accelerator`` (skorch's mixin): the
    network, optimiser and loaders are prepared by it, so the same code trains data-parallel
    under ``accelerate launch``."""

    def _device_type(self):
        return self.accelerator.device.type  # skorch's device is None: Accelerate places the network

    def _initialize_accelerator(self):
        # skorch prepares the criteria too; a loss without parameters needs no preparing, and
        # data-parallel training refuses to wrap one (DistributedDataParallel raises).
        criteria = self._criteria
        self._criteria = [name for name in criteria if _has_trainable_parameters(getattr(self, name + "_"))]
        if self.accelerator.num_processes > 1 and self.accelerator.ddp_handler is None:
            # Some trainable parameters get no gradient in a step: a backbone's own classifier
            # (features are taken before it), a loss term's module on batches without its
            # rows. Data-parallel training must be told to expect that, or it stops at the
            # second step. (An accelerator made with its own DistributedDataParallelKwargs
            # keeps them.)
            from accelerate.utils import DistributedDataParallelKwargs

            self.accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria

    def initialize(self):
        # What the accelerator held before this net: whatever it prepares from here on is ours.
        self._held_before_ = {name: len(getattr(self.accelerator, name, ())) for name in _PREPARED}
        return super().initialize()

    def on_train_end(self, net, X=None, y=None, **kwargs):
        super().on_train_end(net, X=X, y=y, **kwargs)  # waits for every process, unwraps the modules
        self.release_accelerator()

    def release_accelerator(self):
        """After training, or a fit that failed: the modules, optimiser and schedule
        unwrapped, and the accelerator's references to this fit's objects (and to nothing
        else it holds) dropped, so the fitted net pickles and the later fits of a search do
        not keep this one's loaders alive. Safe to call twice."""
        if getattr(self, "_wrapped_with_accelerator", False):
            self._unwrap_accelerator()
        self.optimizer_ = getattr(self.optimizer_, "optimizer", self.optimizer_)
        for _, callback in self.callbacks_:
            for name in ("policy_", "lr_scheduler_"):  # skorch's LRScheduler callback
                scheduler = getattr(callback, name, None)
                if hasattr(scheduler, "scheduler"):  # Accelerate's wrapper
                    scheduler = scheduler.scheduler
                    setattr(callback, name, scheduler)
                if isinstance(scheduler, torch.optim.lr_scheduler.LRScheduler):
                    scheduler.optimizer = self.optimizer_  # torch patched the wrapper's step
        for name, count in getattr(self, "_held_before_", {}).items():
            prepared = getattr(self.accelerator, name, None)
            if isinstance(prepared, list):
                del prepared[count:]
        # Trained: the network sits on the accelerator's device, as a plain net's on its own
        # (skorch reads this when the fitted net is pickled and loaded).
        self.device = str(self.accelerator.device)

    def train_step_single(self, batch, **fit_params):
        # TransferNet's step (loss terms, per-term history) with Accelerate's autocast and
        # backward, which scales an fp16 loss and syncs the gradients across processes.
        self.module_.train()
        Xi, yi = unpack_data(batch)
        with self.accelerator.autocast():
            y_pred = self.infer(Xi, **fit_params)
            loss, terms = self.loss_and_terms(y_pred, yi)
        self.accelerator.backward(loss)
        if self.accelerator.scaler is not None and self.accelerator.sync_gradients:
            # As in TransferNet: callbacks (gradient clipping) see the true gradients.
            self.accelerator.unscale_gradients(optimizer=self.optimizer_)
        return {"loss": loss, "y_pred": _logits(y_pred), "terms": terms}


def _has_trainable_parameters(module):
    return isinstance(module, torch.nn.Module) and any(p.requires_grad for p in module.parameters())


def net_class(accelerated):
    """The skorch net class a fit trains with: with or without an accelerator."""
    return AcceleratedTransferNet if accelerated else TransferNet
