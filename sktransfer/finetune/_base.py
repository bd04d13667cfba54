"""What the four fine-tuning estimators share: parameters, fit, predict, persistence."""

import json
import os
import warnings
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import HasMethods, Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from skorch.history import History
from torch import nn

from .._batches import run_batches
from .._device import (
    PRECISIONS,
    autocast,
    fast_kernels,
    resolve_device,
    resolve_precision,
    seeded_rng,
)
from .._domains import check_sample_domain, take_rows
from .._persistence import Portable, history_to_json, load_bytes_into, load_state_into, tensors_to_bytes
from .._pooling import POOLINGS
from .._validation import check_option, user_stacklevel
from ..backbones import load_backbone
from ..data import adapter_class, adapter_for, inference_batches, loader_options, subset
from ._adaptation import (
    FEATURE_LOSSES,
    LOGIT_LOSSES,
    PseudoLabels,
    adapt_batchnorm,
    adaptation_terms,
    check_adaptation,
    has_batchnorm,
    require_skada,
)
from ._auto import AutoSearch, Recipe, unvalidated_report, validation_shortfall
from ._datasets import Labelled
from ._freeze import apply_trainable, is_freeze_spec, resolve_trainable, trainable_parameter_names
from ._model import Head, TransferModel
from ._net import TransferNet, net_class
from ._probe import PROBE_PENALTIES, fit_head_on_features
from ._schedules import GradualUnfreezing, ResumableLRScheduler, WarmupCosine

# Modules only training uses (DANN's domain discriminator): neither saved nor needed to predict.
_TRAINING_ONLY = ("aux.",)


class BaseTransferEstimator(Portable, BaseEstimator):
    """Fine-tune a pretrained backbone plus a new head on skorch.

    Subclasses (one per modality and task) provide what differs per modality beyond the
    shared input adapter (``_setup``, ``_transform``, augmentation) and the targets
    (``_encode_targets``, ``_criterion``, ``_n_outputs``).
    """

    _modality = None

    _parameter_constraints = {
        "backbone": [str, os.PathLike, nn.Module],
        "weights": [None, str, os.PathLike],
        "freeze": [str, Integral, list, tuple, callable],
        "lr": [Interval(Real, 0, None, closed="neither"), dict, tuple, list],
        "lr_decay": [Interval(Real, 0, 1, closed="right")],
        "unfreeze": [None, dict],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": [StrOptions(set(POOLINGS))],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "precompute_features": ["boolean"],
        "head_init": [StrOptions({"probe", "random"})],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "callbacks": [None, list, tuple],
        "accelerator": [None, HasMethods(["prepare", "backward"])],
        "adaptation": [str, list, tuple],
        "adaptation_weight": [Interval(Real, 0, None, closed="left")],
        "auto_budget": [None, Interval(Real, 0, None, closed="neither")],
    }

    # `groups` goes to fit only when asked (set_fit_request(groups=True)): with metadata
    # routing on, a search passing groups to its splitter alone keeps working as before.
    __metadata_request__fit = {"groups": False}

    # What freeze="auto" falls back to where it cannot search (a first partial_fit):
    # the modality's fixed default.
    _fixed_freeze = None

    # ---------------------------------------------------------------- fit
    def fit(self, X, y, sample_weight=None, sample_domain=None, groups=None):
        """Fine-tune on ``(X, y)``; with ``warm_start=True`` continue from the last fit.

        Parameters
        ----------
        X : inputs
            Images or texts (see the class docstring).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights: each sample's loss counts this much (in the probe
            head, the epochs and the early-stopping validation loss). An integer weight
            k acts as k copies of the row, a zero weight as a dropped row.
        sample_domain : array-like of shape (n_samples,), default=None
            Domain adaptation, in skada's convention: a positive integer for each
            labelled source row, a negative one for each unlabelled target row. The
            labels of target rows are never read (any placeholder will do: skada's -1,
            ``None``, a string). With ``adaptation="none"`` the target rows are dropped:
            the same model as without them, for comparison.
        groups : array-like of shape (n_samples,), default=None
            Group labels (a patient, a site, a photo session): rows of one group are
            never split between training and validation, in ``freeze="auto"``'s inner
            folds and in ``early_stopping``'s holdout. Pass them through scikit-learn's
            metadata routing (``set_fit_request(groups=True)``) inside a search or
            ``cross_validate``.

        Returns
        -------
        self : object
        """
        return self._fit(
            X,
            y,
            epochs=self.max_epochs,
            keep=self.warm_start,
            sample_weight=sample_weight,
            sample_domain=sample_domain,
            groups=groups,
            search=True,
        )

    def partial_fit(self, X, y, classes=None, sample_weight=None, sample_domain=None):
        """One more epoch on ``(X, y)`` without re-initialising the network (the head included).

        Use it to keep a deployed model current as data drift. The first call on an
        unfitted estimator initialises it.

        Parameters
        ----------
        X : inputs
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        classes : array-like, default=None
            Classifiers: every class that any call will see. Needed on the first call
            when its ``y`` lacks some classes; later calls may repeat it (it must then
            equal ``classes_``). Classes are fixed by the first call.
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit`.
        sample_domain : array-like of shape (n_samples,), default=None
            As in :meth:`fit`: needed when ``adaptation`` is not ``"none"``.

        Returns
        -------
        self : object
        """
        return self._fit(
            X,
            y,
            epochs=1,
            keep=True,
            classes=classes,
            sample_weight=sample_weight,
            sample_domain=sample_domain,
        )

    def _fit(self, X, y, **kwargs):
        """Fit (see :meth:`_train`); if the fit fails or is interrupted, the fitted state it
        changed is put back (the classes, the targets' scale, the recipe), so an earlier
        fit still predicts as before. A warm start that fails mid-training keeps the
        weights it reached, as scikit-learn's warm-started estimators do."""
        before = dict(self.__dict__)
        try:
            return self._train(X, y, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise

    def _train(
        self,
        X,
        y,
        *,
        epochs,
        keep,
        classes=None,
        sample_weight=None,
        sample_domain=None,
        groups=None,
        search=False,
    ):
        owner = type(self).__name__
        check_option(owner, "pooling", self.pooling, POOLINGS)
        self._validate_params()
        self._validate_lr(owner)
        specs = self._validate_unfreeze(owner)
        adaptations = check_adaptation(self.adaptation, owner)
        X = adapter_class(self._modality).check(X, owner)
        if len(X) != len(y):
            raise ValueError(f"{owner}: X has {len(X)} samples but y has {len(y)}; they must match.")
        weights = _check_weights(sample_weight, len(X), owner)
        groups = _check_groups(groups, len(X), owner)
        continuing = keep and hasattr(self, "net_")
        source = None if sample_domain is None else check_sample_domain(sample_domain, len(X), owner) > 0
        if adaptations and source is None:
            raise ValueError(
                f"{owner}: adaptation={self.adaptation!r} needs unlabelled target rows: pass them in "
                "X with fit(X, y, sample_domain=...) (source rows > 0, target rows < 0)."
            )
        require_skada(adaptations, owner)  # before anything is encoded or loaded
        if source is not None and not adaptations:  # source only: the target rows play no part
            keep_rows = np.flatnonzero(source)
            X, y, source = subset(X, keep_rows), take_rows(y, keep_rows), None
            weights = None if weights is None else weights[keep_rows]
            groups = None if groups is None else groups[keep_rows]
        if source is None:
            targets = self._encode_targets(y, reset=not continuing, classes=classes, sample_weight=weights)
        else:
            targets, weights = self._encode_source_targets(y, source, continuing, classes, weights)
        self._check_adaptations(adaptations, owner)
        fixed = self._fixed_recipe(_count_labelled(targets, weights, source))
        described = self._described_rows(owner)  # checked before any weight is loaded
        self._choose_strategy(targets, weights, adaptations, continuing=continuing, search=search)
        seed = self._seed()
        self.device_ = self._resolve_device()
        with seeded_rng(seed):
            choice = unvalidated = None
            if continuing:
                # A freeze or lr changed since applies to the fits that continue; under "auto",
                # the freeze it chose goes on, at the current rates.
                recipe = replace(fixed, freeze=self.freeze_) if self.freeze == "auto" else fixed
                self._apply_recipe(replace(recipe, image_size=getattr(self, "image_size_", None)))
            elif search and self.freeze == "auto":
                unvalidated = self._auto_clash(owner, adaptations, specs)
                if unvalidated is None:
                    unvalidated = self._auto_shortfall(owner, targets, groups, weights)
                if unvalidated is None:
                    # The search draws from its own copy of the seeded generators, so the refit
                    # draws exactly as a fit with the chosen recipe and this random_state would.
                    with seeded_rng(seed):
                        choice = self._search(X, targets, weights, groups, seed, fixed)
                    self._apply_recipe(choice.recipe)
                    epochs = epochs if choice.recipe.epochs is None else choice.recipe.epochs
                else:
                    self._apply_recipe(fixed)
            else:
                self._apply_recipe(fixed)
            backbone = self.net_.module_.backbone if continuing else self._load_backbone()
            # Every spec is resolved against the backbone's names before any batch runs.
            initial = resolve_trainable(backbone, specs.get(0, self.freeze_), owner)
            schedule = {
                epoch: resolve_trainable(backbone, spec, owner, f"unfreeze[{epoch}]")
                for epoch, spec in specs.items()
            }
            model = self.net_.module_ if continuing else self._build_model(backbone)
            self._place(model)
            # With an accelerator, its mixed precision rules training (in the net's train step).
            training_precision = "fp32" if self.accelerator is not None else self.precision
            model.autocast_dtype = resolve_precision(self.device_, training_precision)
            apply_trainable(model, initial)
            if "adabn" in adaptations:
                self._require_batchnorm(model)
            if epochs:
                train_idx, valid_idx = self._split_domains(targets, seed, source, groups)
            else:  # the probe head alone: nothing stops early, every row fits it
                train_idx, valid_idx = np.arange(len(targets)), None
            labelled = train_idx if source is None else train_idx[source[train_idx]]
            if described is not None and not continuing:  # after the split: never held out
                X, targets, weights, source, groups, train_idx, labelled = _append_training_rows(
                    described, X, targets, weights, source, groups, train_idx, labelled
                )
            self._adapt_encoder(model, X, targets, weights, labelled, seed, continuing)
            backbone_trains = bool(schedule) or any(p.requires_grad for p in model.backbone.parameters())
            if set(adaptations) & set(FEATURE_LOSSES) and not backbone_trains:
                raise ValueError(
                    f"{owner}: adaptation={self.adaptation!r} moves the backbone's features, but "
                    f"freeze={self.freeze_!r} leaves no backbone parameter to train. Unfreeze some "
                    "blocks (freeze='last:3'), or use 'adabn' / 'pseudo_label' / 'mcc', which work "
                    "on a frozen backbone."
                )
            self._resolve_augment(backbone_trains)
            # A backbone frozen for the whole fit, seeing unaugmented inputs, gives the same
            # features every epoch: compute them once and train the head on them.
            shortcut = self.precompute_features and not backbone_trains and self._augment_is_off()
            adabn = "adabn" in adaptations
            inputs = None
            known = None if choice is None else choice.features  # the search's, of every row
            if shortcut:
                if adabn:
                    inputs = self._adabn_features(model, X, source)
                else:
                    inputs = known if known is not None else self._precomputed(model, X)
            elif adabn:  # train with the source's statistics; the target's replace them after
                self._adapt_batchnorm(model, subset(X, np.flatnonzero(source)))
            self.probe_penalty_ = None
            if self.head_init == "probe" and not continuing:
                self.probe_penalty_ = self._fit_probe_head(
                    model,
                    X,
                    known if inputs is None else inputs,
                    targets,
                    weights,
                    groups,
                    labelled,
                    seed,
                    alone=not epochs,
                )
            domains = None if source is None else torch.as_tensor(np.where(source, 1, -1))
            train_ds = self._dataset(model, X, targets, weights, train_idx, inputs, domains, training=True)
            valid_ds = None
            if valid_idx is not None:
                valid_ds = self._dataset(
                    model, X, targets, weights, valid_idx, inputs, domains, training=False
                )
            # On precomputed features skorch trains the head module itself; the fitted net then
            # holds the whole model again, for prediction and warm starts.
            trained = model.head if shortcut else model
            terms = adaptation_terms(adaptations, self.adaptation_weight, model)
            extra = []
            if "pseudo_label" in adaptations:
                labeller = self._pseudo_labeller(model, X, inputs, train_ds, train_idx, source)
                extra.append(("pseudo_labels", labeller))
            net = self._make_net(trained, train_ds, valid_ds, schedule, epochs, seed, shortcut, terms, extra)
            if continuing:  # one history across warm-started fits, as skorch keeps it
                net.history_ = self.net_.history_
            try:
                if epochs:  # 0 epochs: the probe head alone (a recipe freeze="auto" may choose)
                    with fast_kernels(self.device_):
                        net.partial_fit(train_ds, None)
            finally:
                net.module = net.module_ = model
                net.grad_scaler_ = None  # training state only; a CUDA one would not unpickle on a CPU
                # Gradients and the optimiser's moments serve no later fit (each fit builds its
                # own optimiser): dropped, they no longer triple the size of a pickled model.
                model.zero_grad(set_to_none=True)
                if hasattr(net, "release_accelerator"):  # also when the fit failed
                    net.release_accelerator()
                net.optimizer_.state.clear()
            if adabn and not shortcut:  # the trained network, normalised by the target's statistics
                self._adapt_batchnorm(model, subset(X, np.flatnonzero(~source)))
        self.net_ = net
        self.n_epochs_ = len(net.history)
        self.used_precomputed_features_ = shortcut
        self.trainable_parameters_ = trainable_parameter_names(model)
        if choice is not None:
            self.auto_report_ = choice.report
            if self.verbose:
                self._print_choice(choice)
        elif unvalidated is not None:
            trained = replace(fixed, image_size=getattr(self, "image_size_", None))
            self.auto_report_ = unvalidated_report(self, trained, unvalidated)
        elif not continuing:
            self.__dict__.pop("auto_report_", None)  # from an earlier fit with freeze="auto"
        return self

    # ------------------------------------------------------ freeze="auto"
    def _fixed_recipe(self, n_labelled):
        """The recipe the parameters name for a fit on ``n_labelled`` labelled rows
        (``freeze="auto"``: the modality's fixed default; text ``lr="auto"``: the rates for
        that many texts)."""
        freeze = self._fixed_freeze if self.freeze == "auto" else self.freeze
        lr = self._auto_lr(n_labelled) if isinstance(self.lr, str) else self.lr  # "auto", text only
        return Recipe(freeze, lr, self.lr_decay, getattr(self, "image_size", None))

    def _search(self, X, targets, weights, groups, seed, fixed):
        """Run freeze="auto"'s search from the ``fixed`` recipe (a failed one leaves the
        fitted state as it was: see :meth:`_fit`)."""
        return AutoSearch(self, X, targets, weights, groups, seed, fixed).run()

    def _apply_recipe(self, recipe):
        """Train by ``recipe`` from now on: its values become the fitted ``freeze_``, ``lr_``
        and ``lr_decay_`` that the fit reads (images: ``image_size_`` too)."""
        self.freeze_, self.lr_, self.lr_decay_ = recipe.freeze, recipe.lr, recipe.lr_decay

    def _auto_shortfall(self, owner, targets, groups, weights):
        """Why freeze="auto" cannot hold out rows to validate on, or None. When it cannot,
        it says so and the fit trains the fixed default: few-shot data degrades, never fails."""
        reason = validation_shortfall(self, targets, groups, weights)
        if reason is not None:
            warnings.warn(
                f"{owner}: freeze='auto' validates its candidates on held-out training rows, but "
                f"{reason}; trained the fixed default freeze={self._fixed_freeze!r} instead "
                "(give 2 rows a class or more to search, or set a fixed freeze to silence this).",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return reason

    def _auto_clash(self, owner, adaptations, specs):
        """Why freeze="auto" cannot search with these parameters, or None. It then trains
        the fixed default without a warning: "auto" is the image default, and each of
        these parameters chooses how to train on its own (``auto_report_`` says which)."""
        if not hasattr(self, "_inner_score"):
            raise ValueError(
                f"{owner}: freeze='auto' is not available for this estimator yet; choose a fixed "
                f"freeze (e.g. {self._fixed_freeze!r})."
            )
        clashes = {
            "unfreeze": bool(specs),
            "adaptation": bool(adaptations),
            "accelerator": self.accelerator is not None,
            "strategy": getattr(self, "strategy_", "standard") != "standard",
            "head_init": self.head_init != "probe",  # its head-only recipes are probe heads
            # its inner folds would score candidates on the descriptions too
            "class_descriptions": getattr(self, "class_descriptions", None) is not None,
        }
        bad = [name for name, clash in clashes.items() if clash]
        if not bad:
            return None
        values = ", ".join(f"{name}={getattr(self, name)!r}" for name in bad)
        return f"the search does not combine with {values}"

    def _auto_candidates(self, backbone, default):
        """The recipes ``freeze="auto"`` compares (see the inputs mixins)."""
        raise NotImplementedError

    def _fit_head(
        self,
        head,
        features,
        targets,
        weights,
        rows,
        seed,
        quiet=False,
        penalties=PROBE_PENALTIES,
        groups=None,
        alone=False,
    ):
        """Fit ``head`` alone on the features of ``rows`` (features, targets, weights and
        ``groups`` of every row given); returns the L2 penalty chosen among ``penalties``
        (cross-validated, grouped by ``groups``). ``quiet``: no progress bar (the search
        fits many). ``alone``: the head is the whole model, no training follows."""
        y = targets[rows].to(self.device_)
        w = None if weights is None else weights[rows]
        criterion = self._head_criterion(targets[rows], alone, w).to(self.device_)
        w = None if w is None else w.to(self.device_)
        return fit_head_on_features(
            head,
            features[rows].to(self.device_),
            y,
            criterion,
            seed=seed,
            sample_weight=w,
            penalties=penalties,
            groups=None if groups is None else groups[rows],
            verbose=self.verbose and not quiet,
        )

    def _print_choice(self, choice):
        report = choice.report
        row = report[report["chosen"]].iloc[0]
        loss = "" if np.isnan(row["holdout_loss"]) else f", holdout loss {row['holdout_loss']:.3f}"
        print(
            f"{type(self).__name__}: freeze='auto' chose {row['candidate']} (inner score {row['score']:.3f}"
            f"{loss}) "
            f"from {len(report)} candidates in {choice.search_seconds:.0f} s of a "
            f"{choice.budget_seconds:.0f} s budget; see auto_report_."
        )

    def _make_net(
        self, module, train_ds, valid_ds, schedule, epochs, seed, shortcut, terms=(), extra=(), quiet=False
    ):
        """The skorch net that trains ``module``: the model, or its head alone on features.
        ``terms``: loss terms beside the task's, ``extra``: their callbacks (domain adaptation).
        ``quiet``: a candidate of ``freeze="auto"``: no output, none of the user's callbacks."""
        # Under `accelerate launch`, each of the processes runs its share of the batches.
        processes = 1 if self.accelerator is None else self.accelerator.num_processes
        if processes > 1 and (valid_ds is not None or schedule):
            raise ValueError(
                f"{type(self).__name__}: with {processes} processes (accelerate launch), early_stopping "
                "and unfreeze are not supported yet: each process would judge its own share of the "
                "validation rows, and blocks unfrozen after the network is wrapped for data-parallel "
                "training would not be synchronised. Set early_stopping=False and unfreeze=None."
            )
        steps = epochs * int(np.ceil(len(train_ds) / (self.batch_size * processes)))
        callbacks = [
            (
                "lr_schedule",
                ResumableLRScheduler(
                    policy=torch.optim.lr_scheduler.LambdaLR,
                    lr_lambda=WarmupCosine(steps),
                    step_every="batch",
                    last_epoch=-1,
                ),
            ),
        ]
        if schedule:
            callbacks.append(("unfreeze", GradualUnfreezing(schedule)))
        callbacks.extend(extra)
        if valid_ds is not None:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(monitor="valid_loss", patience=int(self.patience), load_best=True),
                )
            )
        if self.verbose >= 2 and not quiet:
            callbacks.append(("progress_bar", ProgressBar()))
        if not quiet:
            callbacks.extend(self.callbacks or [])
        collate = None if shortcut else module.adapter.collate()
        options = loader_options(None, 0 if shortcut else self.num_workers, self.device_.type == "cuda")
        del options["batch_size"]  # skorch passes its own
        if collate is not None:
            options["collate_fn"] = collate
        accelerated = {} if self.accelerator is None else {"accelerator": self.accelerator}
        labelled, labelled_weights = train_ds.labelled_targets()
        net = net_class(self.accelerator is not None)(
            module=module,
            criterion=self._criterion(labelled, weights=labelled_weights),
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
            lr=self.lr_,
            lr_decay=self.lr_decay_,
            loss_terms=(*terms, *self._loss_terms()),
            total_steps=steps,
            max_epochs=epochs,
            batch_size=int(self.batch_size),
            train_split=None if valid_ds is None else predefined_split(valid_ds),
            iterator_train__shuffle=True,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            iterator_train__drop_last=False,
            callbacks=callbacks,
            device=None if accelerated else str(self.device_),  # Accelerate places the network itself
            verbose=int(self.verbose > 0 and not quiet),
            **accelerated,
            **{f"iterator_train__{k}": v for k, v in options.items()},
            **{f"iterator_valid__{k}": v for k, v in options.items()},
        )
        return net.initialize()

    def _choose_strategy(self, targets, weights, adaptations, *, continuing, search):
        """Settle, from the encoded targets of the rows that count (``weights`` > 0; target
        rows of an adaptation weigh 0), how this fit trains (a hook: ``strategy="auto"`` of
        TextClassifier uses it). ``search``: a ``fit`` (False: ``partial_fit``)."""

    def _described_rows(self, owner):
        """Extra training rows that every fit starting from the pretrained weights adds
        beside the labelled ones, ``(inputs, encoded targets, relative weights)``, or None
        (a hook: the class descriptions of TextClassifier use it)."""
        return None

    def _adapt_encoder(self, model, X, targets, weights, train_idx, seed, continuing):
        """Train the backbone before the head's training (a hook: the contrastive few-shot
        strategy of TextClassifier uses it); whatever it leaves trainable trains on.
        ``continuing``: a warm start or ``partial_fit`` of a fitted model."""

    # ------------------------------------------------------ domain adaptation
    def _check_adaptations(self, adaptations, owner):
        """After the targets are encoded: what the chosen adaptations need of them."""
        logit_losses = sorted(set(adaptations) & set(LOGIT_LOSSES))
        if logit_losses and not hasattr(self, "_set_classes"):
            raise ValueError(
                f"{owner}: adaptation={logit_losses[0]!r} needs class labels; a regressor has none."
            )
        if logit_losses and self.multilabel_:
            raise ValueError(
                f"{owner}: adaptation={logit_losses[0]!r} needs one class per row, not multilabel y."
            )

    def _encode_source_targets(self, y, source, continuing, classes, weights):
        """Targets of the source rows (a placeholder on target rows, whose labels are never
        read) and weights that are 0 on the target rows: the task loss is the source's."""
        rows = np.flatnonzero(source)
        labelled = self._encode_targets(
            take_rows(y, rows),
            reset=not continuing,
            classes=classes,
            sample_weight=None if weights is None else weights[rows],
        )
        targets = labelled.new_zeros((len(source), *labelled.shape[1:]))
        targets[rows] = labelled
        is_source = torch.as_tensor(source, dtype=torch.float32)
        return targets, is_source if weights is None else weights * is_source

    def _split_domains(self, targets, seed, source, groups=None):
        """Early stopping holds out source rows only; every target row trains."""
        if source is None:
            return self._split(targets, seed, groups)
        rows = np.flatnonzero(source)
        train, valid = self._split(targets[rows], seed, None if groups is None else groups[rows])
        train_idx = np.sort(np.concatenate([rows[train], np.flatnonzero(~source)]))
        return train_idx, None if valid is None else rows[valid]

    def _adabn_features(self, model, X, source):
        """Frozen features with each domain's own BatchNorm statistics (AdaBN): the source
        rows with statistics estimated on them, the target rows with the target's, which
        the network then keeps for prediction."""
        src, tgt = np.flatnonzero(source), np.flatnonzero(~source)
        self._adapt_batchnorm(model, subset(X, src))
        on_source = self._precomputed(model, subset(X, src))
        self._adapt_batchnorm(model, subset(X, tgt))
        on_target = self._precomputed(model, subset(X, tgt))
        features = torch.empty((len(X), on_source.shape[1]))
        features[src], features[tgt] = on_source, on_target
        return features

    def _adapt_batchnorm(self, model, X_domain):
        adapter = adapter_for(self, model.backbone)
        batches = (
            adapter.to_device(inputs, self.device_)
            for _, inputs in inference_batches(adapter, self, X_domain)
        )
        with autocast(self.device_, model.autocast_dtype), fast_kernels(self.device_):
            adapt_batchnorm(model, batches)

    def _pseudo_labeller(self, model, X, features, train_ds, train_idx, source):
        """The callback that pseudo-labels the target rows each epoch, from the model's
        current probabilities and pooled features (precomputed ones when there are some)."""
        target = np.flatnonzero(~source)
        if features is not None:
            on_target = features[target]

            def predict(net):
                with torch.inference_mode():
                    logits = model.head(on_target.to(self.device_)).float().cpu()
                return logits.softmax(dim=1).numpy(), on_target.numpy()
        else:
            X_target = subset(X, target)

            def both(inputs):
                logits, pooled = model(inputs, return_features=True)
                return torch.cat([logits, pooled], dim=1)

            def predict(net):
                out = self._map_batches(both, model, X_target, "pseudo-labels")
                n_classes = model.head.linear.out_features
                return out[:, :n_classes].softmax(dim=1).numpy(), out[:, n_classes:].numpy()

        return PseudoLabels(predict, train_ds.pseudo, np.flatnonzero(~source[train_idx]))

    def _require_batchnorm(self, model):
        if not has_batchnorm(model.backbone):
            raise ValueError(
                f"{type(self).__name__}: adaptation='adabn' re-estimates BatchNorm statistics, but "
                f"backbone {self.backbone!r} has no BatchNorm layer; choose another adaptation."
            )

    def _loss_terms(self):
        """Loss terms beside the task's (see :class:`~sktransfer.finetune._net.LossTerm`);
        estimators that adapt domains or share heads add theirs here."""
        return ()

    def _load_backbone(self):
        backbone = load_backbone(self.backbone, self.weights, modality=self._modality)
        self._setup(backbone)
        return backbone

    def _build_model(self, backbone):
        pooling = backbone.default_pooling if self.pooling == "auto" else self.pooling
        adapter = adapter_for(self, backbone)
        model = TransferModel(backbone, nn.Identity(), pooling=pooling, adapter=adapter)
        model.eval()
        with torch.inference_mode():
            width = model.features(adapter.sample()).shape[1]
        head = Head(width, self._n_outputs(), unit_norm_input=getattr(backbone, "unit_norm", False))
        model.head = head
        return model

    def _head_criterion(self, targets, alone, weights=None):
        """The loss a head fitted on frozen features minimises: the training loss when
        fine-tuning follows (LP-FT); when the head is the whole model, the plain one, as
        a logistic regression's. Label smoothing, a fine-tuning regulariser, would cap
        the head's confidence and blur the held-out losses its penalty and ``freeze="auto"``'s
        resolution are chosen by."""
        return self._criterion(targets, label_smoothing=0.0 if alone else None, weights=weights)

    def _fit_probe_head(self, model, X, features, targets, weights, groups, train_idx, seed, alone=False):
        """Fit the new head on the frozen backbone's features (LP-FT; ``alone``: no training
        follows); reuses ``features`` (of every row) when they were computed already; its
        penalty is cross-validated by ``groups`` when given. Returns the L2 penalty."""
        if features is None:
            rows = np.arange(len(train_idx))
            features, targets = self._precomputed(model, subset(X, train_idx)), targets[train_idx]
            weights = None if weights is None else weights[train_idx]
            groups = None if groups is None else groups[train_idx]
        else:
            rows = train_idx
        return self._fit_head(model.head, features, targets, weights, rows, seed, groups=groups, alone=alone)

    def _precomputed(self, model, X):
        """Pooled features of every sample, computed once (the backbone is frozen)."""
        with autocast(self.device_, model.autocast_dtype):
            features = self._map_batches(model.features, model, X, "frozen features")
        return features.clone()  # a normal tensor: the probe head trains on it with autograd

    def _map_batches(self, fn, model, X, desc):
        """``fn`` over ``X`` in eval mode, batch by batch, rows back in input order (float32, CPU)."""
        model.eval()
        out = []  # filled once the first batch gives the width

        def store(indices, rows):
            if not out:
                out.append(torch.empty((len(X), rows.shape[1])))
            out[0][indices] = rows

        adapter = adapter_for(self, model.backbone)  # from the current parameters (max_length...)
        with torch.inference_mode(), fast_kernels(self.device_):
            run_batches(
                lambda inputs: fn(adapter.to_device(inputs, self.device_)).float().cpu(),
                inference_batches(adapter, self, X),
                total=len(X),
                store=store,
                device=self.device_,
                owner=type(self).__name__,
                verbose=self.verbose,
                desc=desc,
            )
        return out[0]

    def _dataset(self, model, X, targets, weights, indices, features, domains, training):
        if features is not None:
            inputs = features[indices]
        else:
            inputs = model.adapter.training_items(X, indices, self._transform(training, model.backbone))
        return Labelled(
            inputs,
            targets[indices],
            None if weights is None else weights[indices],
            None if domains is None else domains[indices],
        )

    def _split(self, targets, seed, groups=None):
        if not self.early_stopping:
            return np.arange(len(targets)), None
        from sklearn.model_selection import GroupShuffleSplit, train_test_split

        stratify = self._stratify(targets)
        try:
            if groups is not None:  # no group on both sides; stratifying groups is not offered
                splitter = GroupShuffleSplit(1, test_size=float(self.validation_fraction), random_state=seed)
                train_idx, valid_idx = next(splitter.split(targets, groups=groups))
            else:
                train_idx, valid_idx = train_test_split(
                    np.arange(len(targets)),
                    test_size=float(self.validation_fraction),
                    random_state=seed,
                    stratify=stratify,
                )
        except ValueError as exc:  # too few samples to hold some out, or a class too rare
            raise ValueError(
                f"{type(self).__name__}: early_stopping=True cannot hold out "
                f"validation_fraction={self.validation_fraction} of {len(targets)} samples ({exc}). "
                "Raise validation_fraction, give more samples, or set early_stopping=False."
            ) from None
        return np.sort(train_idx), np.sort(valid_idx)

    def _stratify(self, targets):
        return None

    # ---------------------------------------------------------- predicting
    def _raw_outputs(self, X, features=False):
        """The network's outputs for ``X`` (the head's, or with ``features`` its input)."""
        check_is_fitted(self, "net_")
        X = adapter_class(self._modality).check(X, type(self).__name__)
        model = self.net_.module_
        self.device_ = resolve_device(self.device)  # this machine's, whatever trained the model
        self._place(model)
        model.autocast_dtype = resolve_precision(self.device_, self.precision)  # not the fit machine's
        if features:
            return self._precomputed(model, X).numpy()
        return self._map_batches(model, model, X, "predicting").numpy()

    def transform(self, X):
        """The fine-tuned backbone's pooled features: what the head sees.

        Use them where a frozen embedder's would go, once fine-tuning on a labelled
        source has made them fit the task: clustering unlabelled data of a related
        task, nearest neighbours, a second model.

        Returns
        -------
        features : ndarray of shape (n_samples, n_features), float32
        """
        return self._raw_outputs(X, features=True)

    def _resolve_device(self):
        """Where to train: the accelerator's device (each process's own under ``accelerate
        launch``), else ``device``."""
        return resolve_device(self.device) if self.accelerator is None else self.accelerator.device

    def _place(self, model):
        """Move ``model`` to ``device_`` (image networks in their fastest memory format there)."""
        model.adapter.place(model, self.device_)

    # --------------------------------------------------------- validation
    def _validate_lr(self, owner):
        if isinstance(self.lr, (Real, str)):  # a string is "auto": the constraints allow no other
            return
        if isinstance(self.lr, dict):
            ok = set(self.lr) == {"head", "backbone"}
            values = list(self.lr.values())
        else:
            ok = len(self.lr) == 2
            values = list(self.lr)
        if not (ok and all(isinstance(v, Real) and v > 0 for v in values)):
            raise InvalidParameterError(
                f"{owner}: lr={self.lr!r} must be a positive float (the head's rate), a pair "
                "(head, backbone) of positive floats, or {'head': float, 'backbone': float}."
            )

    def _validate_unfreeze(self, owner):
        if self.unfreeze is None:
            return {}
        epochs = list(self.unfreeze)
        if not all(isinstance(e, Integral) and e >= 0 for e in epochs):
            raise InvalidParameterError(f"{owner}: unfreeze keys must be epoch numbers >= 0, got {epochs}.")
        if epochs != sorted(epochs) or len(set(epochs)) != len(epochs):
            raise InvalidParameterError(
                f"{owner}: unfreeze epochs are out of order ({epochs}); write them in increasing "
                "order, e.g. {0: 'backbone', 2: 'last:2', 4: 'none'}."
            )
        for spec in self.unfreeze.values():  # names checked against the backbone in fit
            if not is_freeze_spec(spec):
                raise InvalidParameterError(
                    f"{owner}: unfreeze value {spec!r} is not a freeze specification."
                )
        return dict(self.unfreeze)

    def _seed(self):
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))  # fresh entropy, global RNG untouched
        if isinstance(self.random_state, Integral):
            return int(self.random_state)
        return int(self.random_state.randint(2**31 - 1))

    # -------------------------------------------------------- persistence
    _networks = ("net_",)
    _not_portable = ("accelerator",)  # this machine's hardware, not part of the model

    def _pickle_state(self):
        state = self.__dict__.copy()
        state.pop("device_", None)
        return state

    def _store_network(self, name, net):
        # Training-only modules (DANN's domain discriminator) are left out, as in save_weights.
        return {
            "weights": tensors_to_bytes(net.module_, skip=_TRAINING_ONLY),
            "history": history_to_json(net.history, type(self).__name__),
        }

    def _restore_networks(self, stored):
        """The fitted net from a skops file: the network built from ``backbone`` and loaded with
        the stored weights, and the training history. The optimiser, criterion and callbacks
        are not stored: every fit (warm starts too) makes its own."""
        # Random weights, replaced at once by the stored ones: nothing worth keeping.
        backbone = load_backbone(self.backbone, None, modality=self._modality, remember=False)
        self._setup(backbone)
        model = self._build_model(backbone)
        load_bytes_into(model, stored["net_"]["weights"], type(self).__name__, skip=_TRAINING_ONLY)
        net = TransferNet(
            module=model.eval(),
            criterion=nn.Identity,  # a placeholder: each fit builds the net it trains
            optimizer=torch.optim.AdamW,
            lr=getattr(self, "lr_", self.lr),
            lr_decay=self.lr_decay,
            max_epochs=0,
            batch_size=int(self.batch_size),
            train_split=None,
            device="cpu",
        ).initialize()
        net.history_ = History(json.loads(stored["net_"]["history"]))
        self.net_ = net

    def save_weights(self, path):
        """Save the fine-tuned network's weights (backbone and head) as a .safetensors file.

        Modules that only training needs (DANN's domain discriminator) are left out."""
        check_is_fitted(self, "net_")
        with open(path, "wb") as file:
            file.write(tensors_to_bytes(self.net_.module_, skip=_TRAINING_ONLY))

    def load_weights(self, path):
        """Load weights saved by :meth:`save_weights` into this fitted estimator."""
        from ..backbones import load_state_dict_file

        check_is_fitted(self, "net_")
        missing, unexpected = load_state_into(self.net_.module_, load_state_dict_file(path), _TRAINING_ONLY)
        if missing or unexpected:
            raise RuntimeError(
                f"{type(self).__name__}.load_weights: {str(path)!r} does not fit this network "
                f"(missing: {missing[:5]}, unexpected: {unexpected[:5]})."
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = self._modality == "text"
        return tags


def _count_labelled(targets, weights, source):
    """The rows a fit learns labels from: source rows (all, without adaptation) of
    positive weight."""
    rows = np.ones(len(targets), dtype=bool) if source is None else np.asarray(source, dtype=bool)
    if weights is not None:  # not in place: ``source`` is the fit's own mask
        rows = rows & (weights.numpy() > 0)
    return int(rows.sum())


def _check_groups(groups, n_samples, owner):
    """``groups`` as an array of one label per sample, or None."""
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise ValueError(
            f"{owner}: groups has shape {groups.shape}; it needs one group label per sample ({n_samples},)."
        )
    return groups


def _check_weights(sample_weight, n_samples, owner):
    """``sample_weight`` as a float32 tensor, the largest in [1, 2), or None when every
    sample counts once."""
    if sample_weight is None:
        return None
    weights = np.asarray(sample_weight, dtype=np.float64)
    if weights.shape != (n_samples,):
        raise ValueError(
            f"{owner}: sample_weight has shape {weights.shape}; it needs one weight per sample "
            f"({n_samples},)."
        )
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if len(bad):
        raise ValueError(
            f"{owner}: sample_weight[{bad[0]}] = {weights[bad[0]]}; weights must be finite and >= 0."
        )
    if weights.sum() <= 0:
        raise ValueError(f"{owner}: sample_weight sums to 0: no sample would count.")
    # Only ratios matter (every loss divides by the summed weight), so scale by a power of
    # two, which is exact, to bring the largest into [1, 2): weights beyond float32's range
    # (1e38 overflows a sum, 1e-46 becomes 0) then fit as their ratios say.
    scaled = np.ldexp(weights, -int(np.floor(np.log2(weights.max()))))
    # a positive weight stays positive (a row counts), however small beside the largest
    tiny = np.finfo(np.float32).tiny
    scaled[(weights > 0) & (scaled < tiny)] = tiny
    return torch.tensor(scaled, dtype=torch.float32)  # a copy: pandas may hand over a read-only view


def _append_training_rows(rows, X, targets, weights, source, groups, train_idx, labelled):
    """``rows`` (inputs, encoded targets, relative weights) appended to the data and to
    the training and labelled indices; a relative weight of 1 is the labelled rows' mean
    weight. With ``groups``, they become integer codes and each new row a group of its
    own (a class description is no patient's)."""
    inputs, extra, relative = rows
    new = np.arange(len(X), len(X) + len(inputs))
    X = list(X) + list(inputs)
    targets = torch.cat([targets, extra])
    relative = torch.as_tensor(relative, dtype=torch.float32)
    if weights is None and not torch.all(relative == 1):
        weights = torch.ones(len(targets) - len(inputs))
    if weights is not None:
        weights = torch.cat([weights, weights[labelled].mean() * relative])
    if source is not None:
        source = np.concatenate([source, np.ones(len(inputs), dtype=bool)])
    if groups is not None:
        codes = np.unique(groups, return_inverse=True)[1].ravel()
        groups = np.concatenate([codes, codes.max(initial=-1) + 1 + np.arange(len(inputs))])
    return (
        X,
        targets,
        weights,
        source,
        groups,
        np.concatenate([train_idx, new]),
        np.concatenate([labelled, new]),
    )
