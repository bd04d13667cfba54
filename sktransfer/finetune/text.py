"""TextClassifier and TextRegressor: fine-tune a text encoder."""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from .._descriptions import described_texts
from ..data import TEXT_AUGMENT_PRESETS, subset, text_augmenter
from ._adaptation import FEATURE_LOSSES
from ._base import BaseTransferEstimator
from ._contrastive import train_contrastive
from ._docs import (
    CLASSIFIER,
    CLASSIFIER_ATTRIBUTES,
    CONTRASTIVE_ATTRIBUTES,
    DESCRIPTIONS,
    REGRESSOR_ATTRIBUTES,
    STRATEGY,
    TEXT,
    estimator_doc,
)
from ._freeze import apply_trainable
from ._inputs import TextInputs
from ._targets import ClassifierTargets, RegressorTargets

# strategy="auto": contrastive while the smallest class has at most this many labelled
# texts. Measured with MiniLM and the class names (docs/fewshot.md): contrastive ahead at
# 8, 16 and 64 a class on SST-2 and at 8 and 64 on Yelp; standard ahead at 256 on SST-2.
FEW_SHOT_ROWS = 64

TEXT_DEFAULTS = dict(freeze="none", lr="auto", lr_decay=1.0, max_epochs=4, batch_size=16)

_TEXT_CONSTRAINTS = {
    **BaseTransferEstimator._parameter_constraints,
    "lr": [*BaseTransferEstimator._parameter_constraints["lr"], StrOptions({"auto"})],
    "max_length": [None, Interval(Integral, 1, None, closed="left")],
    "augment": [StrOptions(set(TEXT_AUGMENT_PRESETS)), callable],
}


class TextClassifier(TextInputs, ClassifierTargets, BaseTransferEstimator):
    __doc__ = estimator_doc(
        "Fine-tune a pretrained text encoder as a scikit-learn classifier.",
        TEXT,
        CLASSIFIER + STRATEGY + DESCRIPTIONS,
        """    >>> from sktransfer import TextClassifier
    >>> model = TextClassifier("all-MiniLM-L6-v2").fit(reviews, sentiment)  # doctest: +SKIP
    >>> model.predict(["a gripping, funny film"])  # doctest: +SKIP
""",
        attributes=CLASSIFIER_ATTRIBUTES + CONTRASTIVE_ATTRIBUTES,
        **TEXT_DEFAULTS,
    )

    _parameter_constraints = {
        **_TEXT_CONSTRAINTS,
        **ClassifierTargets._target_constraints,
        "strategy": [StrOptions({"standard", "contrastive", "auto"})],
        "class_descriptions": [None, dict],
    }

    def __init__(
        self,
        backbone="all-MiniLM-L6-v2",
        *,
        weights="default",
        freeze=TEXT_DEFAULTS["freeze"],
        lr=TEXT_DEFAULTS["lr"],
        lr_decay=TEXT_DEFAULTS["lr_decay"],
        unfreeze=None,
        max_epochs=TEXT_DEFAULTS["max_epochs"],
        batch_size=TEXT_DEFAULTS["batch_size"],
        max_length=None,
        augment="none",
        pooling="auto",
        class_weight=None,
        label_smoothing=0.1,
        strategy="standard",
        class_descriptions=None,
        early_stopping=False,
        validation_fraction=0.1,
        patience=3,
        weight_decay=0.01,
        random_state=None,
        device="auto",
        precision="auto",
        num_workers=0,
        head_init="probe",
        precompute_features=True,
        warm_start=False,
        verbose=0,
        callbacks=None,
        accelerator=None,
        adaptation="none",
        adaptation_weight=1.0,
        auto_budget=2.5,
    ):
        self.backbone = backbone
        self.weights = weights
        self.freeze = freeze
        self.lr = lr
        self.lr_decay = lr_decay
        self.unfreeze = unfreeze
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.max_length = max_length
        self.augment = augment
        self.pooling = pooling
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.strategy = strategy
        self.class_descriptions = class_descriptions
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.head_init = head_init
        self.precompute_features = precompute_features
        self.warm_start = warm_start
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator
        self.adaptation = adaptation
        self.adaptation_weight = adaptation_weight
        self.auto_budget = auto_budget

    def _described_rows(self, owner):
        if self.class_descriptions is None:
            return None
        if not self.class_descriptions:
            raise InvalidParameterError(
                f"{owner}: class_descriptions is empty; describe at least one class, or pass None."
            )
        if self.multilabel_:
            raise ValueError(f"{owner}: class_descriptions needs one label per text, not a multilabel y.")
        index = {cls: k for k, cls in enumerate(self.classes_.tolist())}
        unknown = [cls for cls in self.class_descriptions if cls not in index]
        if unknown:
            raise ValueError(
                f"{owner}: class_descriptions names {unknown}, which are not classes of y "
                f"{self.classes_.tolist()}; use the labels as they appear in y."
            )
        described = described_texts(self.class_descriptions, "default", owner, "class_descriptions")
        texts, targets, relative = [], [], []
        for cls, sentences in described.items():
            words = self.class_descriptions[cls]
            n_descriptions = 1 if isinstance(words, str) else len(words)
            texts += sentences
            targets += [index[cls]] * len(sentences)
            # Several descriptions of a class share its weight, as the zero-shot classifier
            # averages them: a class is not favoured for having more words.
            relative += [1.0 / n_descriptions] * len(sentences)
        return texts, torch.as_tensor(targets, dtype=torch.long), np.asarray(relative)

    def _choose_strategy(self, targets, weights, adaptations, *, continuing, search):
        if continuing and self.strategy == "auto" and hasattr(self, "strategy_"):
            return  # a warm start goes on as it began; a strategy set by hand applies
        self.strategy_ = self.strategy
        if self.strategy == "auto":
            counted = targets if weights is None else targets[weights > 0]
            counts = None if self.multilabel_ else np.unique(counted.numpy(), return_counts=True)[1]
            few = counts is not None and len(counts) > 0 and counts.min() <= FEW_SHOT_ROWS
            # Pairs need one class a row, a fit that sees all its rows (not partial_fit's
            # first batch), and an encoder trained before the head and left alone after it
            # (no unfreeze, no adaptation that moves the features). With freeze="auto", the
            # pairs then train its fixed default, "none": the search compares standard recipes.
            feasible = search and not self.unfreeze and not set(adaptations) & set(FEATURE_LOSSES)
            self.strategy_ = "contrastive" if few and feasible else "standard"

    def _adapt_encoder(self, model, X, targets, weights, train_idx, seed, continuing):
        if self.strategy_ != "contrastive":
            self.contrastive_pairs_ = None
            return
        if continuing:  # the adapted encoder stays as it is: more epochs train the head
            apply_trainable(model, frozenset())
            return
        owner = type(self).__name__
        if self.strategy == "auto" and not any(p.requires_grad for p in model.backbone.parameters()):
            self.strategy_, self.contrastive_pairs_ = "standard", None  # a frozen encoder: no pairs
            return
        if not any(p.requires_grad for p in model.backbone.parameters()):
            raise InvalidParameterError(
                f"{owner}: strategy='contrastive' trains the encoder on pairs, but freeze="
                f"{self.freeze!r} leaves nothing of it trainable; use freeze='none' or 'last:K'."
            )
        if self.unfreeze:
            raise InvalidParameterError(
                f"{owner}: strategy='contrastive' trains the encoder on pairs, then the head on its "
                f"frozen features; unfreeze={self.unfreeze!r} has no epoch to act on. Use one or the other."
            )
        if self.multilabel_:
            raise ValueError(f"{owner}: strategy='contrastive' needs one label per text, not a multilabel y.")
        y = targets[train_idx].numpy()
        row_weights = None if weights is None else weights[train_idx].numpy()
        per_class = self._class_weights(y, row_weights)
        if per_class is not None:
            row_weights = (1.0 if row_weights is None else row_weights) * per_class[y]
        self.contrastive_pairs_, self.contrastive_loss_ = train_contrastive(
            model,
            subset(X, train_idx),
            y,
            device=self.device_,
            batch_size=int(self.batch_size),
            seed=seed,
            weights=row_weights,
            augment=text_augmenter(self.augment, model.backbone, owner),
            verbose=self.verbose,
        )
        apply_trainable(model, frozenset())  # the encoder is adapted: the head learns on its features


class TextRegressor(TextInputs, RegressorTargets, BaseTransferEstimator):
    __doc__ = estimator_doc(
        "Fine-tune a pretrained text encoder as a scikit-learn regressor (one or several targets).",
        TEXT,
        "",
        """    >>> from sktransfer import TextRegressor
    >>> TextRegressor("all-MiniLM-L6-v2").fit(texts, scores).predict(texts)  # doctest: +SKIP
""",
        attributes=REGRESSOR_ATTRIBUTES,
        **TEXT_DEFAULTS,
    )

    _parameter_constraints = dict(_TEXT_CONSTRAINTS)

    def __init__(
        self,
        backbone="all-MiniLM-L6-v2",
        *,
        weights="default",
        freeze=TEXT_DEFAULTS["freeze"],
        lr=TEXT_DEFAULTS["lr"],
        lr_decay=TEXT_DEFAULTS["lr_decay"],
        unfreeze=None,
        max_epochs=TEXT_DEFAULTS["max_epochs"],
        batch_size=TEXT_DEFAULTS["batch_size"],
        max_length=None,
        augment="none",
        pooling="auto",
        early_stopping=False,
        validation_fraction=0.1,
        patience=3,
        weight_decay=0.01,
        random_state=None,
        device="auto",
        precision="auto",
        num_workers=0,
        head_init="probe",
        precompute_features=True,
        warm_start=False,
        verbose=0,
        callbacks=None,
        accelerator=None,
        adaptation="none",
        adaptation_weight=1.0,
        auto_budget=2.5,
    ):
        self.backbone = backbone
        self.weights = weights
        self.freeze = freeze
        self.lr = lr
        self.lr_decay = lr_decay
        self.unfreeze = unfreeze
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.max_length = max_length
        self.augment = augment
        self.pooling = pooling
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.weight_decay = weight_decay
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.head_init = head_init
        self.precompute_features = precompute_features
        self.warm_start = warm_start
        self.verbose = verbose
        self.callbacks = callbacks
        self.accelerator = accelerator
        self.adaptation = adaptation
        self.adaptation_weight = adaptation_weight
        self.auto_budget = auto_budget
