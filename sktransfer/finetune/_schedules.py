"""What changes during a fit: the learning-rate schedule and gradual unfreezing."""

import math

from skorch.callbacks import Callback, LRScheduler

from ._freeze import apply_trainable


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


class ResumableLRScheduler(LRScheduler):
    """skorch's per-batch scheduler, continued where it stopped when ``partial_fit`` trains
    the same net again (skorch starts the schedule over), so a fit in several calls (the
    rungs of ``freeze="auto"``) follows the one schedule a single call would. It counts
    its own steps: a new net given an earlier fit's history (a warm start) starts afresh."""

    def initialize(self):
        super().initialize()
        self.steps_ = 0
        return self

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.batch_idx_ = self.steps_
        if self.steps_:  # `initial_lr` was set by the first call; resume at this step
            self.lr_scheduler_ = self._get_scheduler(
                net, self.policy_, **{**self.kwargs, "last_epoch": self.steps_ - 1}
            )

    def on_batch_end(self, net, training, **kwargs):
        super().on_batch_end(net, training=training, **kwargs)
        self.steps_ += bool(training)


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
