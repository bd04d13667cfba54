"""Deep domain adaptation for the fine-tuning estimators: unlabelled target rows in ``fit``.

Rows come with skada's ``sample_domain`` (source domains > 0, target domains < 0). The
task loss sees the source rows only (target rows weigh 0 in it, whatever their label);
each adaptation adds a :class:`~sktransfer.finetune._net.LossTerm` on the pooled
features or the logits of the batch's two domains (pseudo-labels come from a callback,
once per epoch), or sets the BatchNorm statistics per domain (``"adabn"``). CORAL and
MMD and MCC are skada's losses (``deepcoral_loss``, ``dan_loss``, ``mcc_loss``).
"""

import math

import numpy as np
import torch
from skorch.callbacks import Callback
from torch import nn

from .._domains import REFINE_AGREEMENT, balanced_top, cluster_refine
from ._net import LossTerm

# the adaptations that move the backbone's features: they need trainable blocks
FEATURE_LOSSES = ("dann", "coral", "mmd")
# the ones that act on the logits (or the BatchNorm statistics): a frozen backbone will do
LOGIT_LOSSES = ("pseudo_label", "mcc")
ADAPTATIONS = ("none", *FEATURE_LOSSES, *LOGIT_LOSSES, "adabn")
# the ones computed by skada's losses: they need skada installed
SKADA_LOSSES = ("coral", "mmd", "mcc")
# MCC's temperature in its paper (Jin et al., 2020), for all its benchmarks
MCC_TEMPERATURE = 2.5


def check_adaptation(adaptation, owner):
    """``adaptation`` as a tuple of names (``()`` for none); a string or a list of strings."""
    names = (adaptation,) if isinstance(adaptation, str) else tuple(adaptation)
    unknown = [n for n in names if not isinstance(n, str) or n not in ADAPTATIONS]
    if unknown or not names:
        raise ValueError(
            f"{owner}: adaptation={adaptation!r} is not one of {list(ADAPTATIONS)} or a list of "
            "them (e.g. ['adabn', 'pseudo_label'])."
        )
    names = tuple(n for n in names if n != "none")
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: adaptation={adaptation!r} names a method twice.")
    return names


def warmup(progress):
    """DANN's schedule for the adaptation weight: 0 at the start, close to 1 by mid-training."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class ScheduledWeight:
    """``weight * warmup(progress)``: a loss term's weight over the fit (picklable)."""

    def __init__(self, weight):
        self.weight = float(weight)

    def __call__(self, progress):
        return self.weight * warmup(progress)


def _by_domain(features, y_true):
    source = y_true["domain"].to(features.device) > 0
    return features[source], features[~source]


class CoralLoss:
    """Deep CORAL: the distance between the two domains' feature covariances (skada's)."""

    def __call__(self, logits, features, y_true):
        from skada.deep.losses import deepcoral_loss

        source, target = _by_domain(features, y_true)
        if len(source) < 2 or len(target) < 2:
            return features.sum() * 0.0  # a batch without both domains adds nothing
        return deepcoral_loss(source, target)


class MMDLoss:
    """Multi-kernel MMD between the domains' features (DAN; skada's)."""

    def __call__(self, logits, features, y_true):
        from skada.deep.losses import dan_loss

        source, target = _by_domain(features, y_true)
        if len(source) < 2 or len(target) < 2:
            return features.sum() * 0.0
        return dan_loss(source, target)


class MCCLoss:
    """Minimum class confusion on the target rows' logits (skada's ``mcc_loss``): the
    off-diagonal mass of their class-correlation matrix, so that the target's predictions
    are confident and do not mix classes. Needs only the logits: a frozen backbone will do."""

    def __call__(self, logits, features, y_true):
        from skada.deep.losses import mcc_loss

        target = logits[y_true["domain"].to(logits.device) < 0]
        if len(target) < 2:
            return logits.sum() * 0.0
        return mcc_loss(target.float(), T=MCC_TEMPERATURE)


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -grad


class DomainDiscriminator(nn.Module):
    """DANN's domain classifier behind a gradient reversal: trained to tell the domains
    apart, it pushes the backbone towards features that do not."""

    def __init__(self, in_features, hidden=256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(0.5), nn.Linear(hidden, 1)
        )

    def forward(self, features):
        return self.net(_ReverseGradient.apply(features)).squeeze(1)


class DANNLoss:
    """The discriminator's binary cross-entropy (source 1, target 0), balanced per domain."""

    def __init__(self, model):
        self.model = model  # the discriminator lives in ``model.aux`` (trained with the head)

    def __call__(self, logits, features, y_true):
        domain = (y_true["domain"].to(features.device) > 0).float()
        if domain.all() or not domain.any():  # one domain (validation batches): nothing to tell apart
            return features.sum() * 0.0
        out = self.model.aux["domain_discriminator"](features)
        weight = torch.where(
            domain > 0, 1.0 / domain.sum().clamp_min(1), 1.0 / (1 - domain).sum().clamp_min(1)
        )
        losses = nn.functional.binary_cross_entropy_with_logits(out, domain, reduction="none")
        return (losses * weight).sum() / 2


class PseudoLabelLoss:
    """Cross-entropy of the target rows under the pseudo-labels :class:`PseudoLabels` gave
    them at the start of the epoch (-1: not chosen), averaged over the batch's target rows."""

    def __call__(self, logits, features, y_true):
        pseudo = y_true["pseudo"].to(logits.device)
        chosen = pseudo >= 0
        n_target = (y_true["domain"] < 0).sum()
        if not chosen.any():
            return logits.sum() * 0.0
        return nn.functional.cross_entropy(logits[chosen], pseudo[chosen], reduction="sum") / n_target


class PseudoLabels(Callback):
    """At the start of each epoch, label the most confident target rows with the model's
    own predictions: per predicted class, its most confident share, growing from 20 % of
    the target rows to 80 % over the fit. Each class keeps the share the model predicts
    for it, so a class cannot take over the target (the usual collapse of self-training).
    When the target's feature clusters agree with the predictions (on 95 % of the rows),
    the labels come from the nearest cluster centre instead, as in SHOT; ``history``
    records that agreement per epoch (``pseudo_label_agreement``).

    ``predict(net)`` returns the target rows' class probabilities and pooled features;
    ``pseudo`` is the training set's pseudo-label tensor (-1 everywhere but on the
    chosen target rows), ``rows`` the target rows' positions in it.
    """

    def __init__(self, predict, pseudo, rows, start=0.2, end=0.8):
        self.predict = predict
        self.pseudo = pseudo
        self.rows = rows
        self.start, self.end = start, end

    def on_train_begin(self, net, **kwargs):
        self.first_epoch_ = len(net.history)

    def on_train_end(self, net, **kwargs):
        # the fitted net keeps its callbacks: drop the training data, and what cannot pickle
        self.predict = self.pseudo = self.rows = None

    def on_epoch_begin(self, net, **kwargs):
        epochs = max(net.max_epochs - 1, 1)
        done = len(net.history) - 1 - self.first_epoch_
        fraction = self.start + (self.end - self.start) * min(done / epochs, 1.0)
        proba, features = (np.asarray(a, dtype=np.float64) for a in self.predict(net))
        chosen, labels = balanced_top(proba, fraction)
        centred = (features - features.mean(axis=0)) / np.maximum(features.std(axis=0), 1e-12)
        refined = cluster_refine(proba, centred)
        agreement = float(np.mean(refined == proba.argmax(axis=1)))
        if agreement >= REFINE_AGREEMENT:
            labels = refined[chosen]
        net.history.record("pseudo_label_agreement", agreement)
        self.pseudo[:] = -1
        self.pseudo[self.rows[chosen]] = torch.as_tensor(labels, dtype=torch.long)


def adaptation_terms(names, weight, model):
    """The loss terms of the adaptations ``names``; DANN adds its discriminator to ``model``."""
    terms = []
    scheduled = ScheduledWeight(weight)
    for name in names:
        if name == "dann":
            if "domain_discriminator" not in model.aux:
                head = model.head.linear
                discriminator = DomainDiscriminator(head.in_features).to(head.weight.device)
                model.aux["domain_discriminator"] = discriminator
            terms.append(LossTerm("dann", DANNLoss(model), scheduled))
        elif name == "coral":
            terms.append(LossTerm("coral", CoralLoss(), scheduled))
        elif name == "mmd":
            terms.append(LossTerm("mmd", MMDLoss(), scheduled))
        elif name == "mcc":
            terms.append(LossTerm("mcc", MCCLoss(), scheduled))
        elif name == "pseudo_label":
            terms.append(LossTerm("pseudo_label", PseudoLabelLoss(), scheduled))
    return terms


def has_batchnorm(backbone):
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in backbone.modules())


@torch.no_grad()
def adapt_batchnorm(model, batches):
    """AdaBN: every BatchNorm layer's statistics re-estimated on one domain's batches
    (a cumulative average over all of them), the weights untouched."""
    layers = [m for m in model.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative: every batch counts equally
        layer.train()
    try:
        for inputs in batches:
            model.features(inputs)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.eval()


def require_skada(names, owner):
    skada_losses = sorted(set(names) & set(SKADA_LOSSES))
    if not skada_losses:
        return
    try:
        import skada  # noqa: F401
    except ImportError:
        raise ImportError(
            f"{owner}: adaptation {skada_losses} uses skada's losses; "
            "install it with: pip install 'sktransfer[adapt]'"
        ) from None
