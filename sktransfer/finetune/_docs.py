"""Parameter descriptions shared by the four estimators' docstrings (one source of truth)."""

COMMON = """
    weights : "default", None, str or path, default="default"
        "default": pretrained weights; None: random initialisation (same
        architecture); a torchvision weight-enum name; or a local file.
    freeze : str, int, list of str or callable, default={freeze!r}
        Which part of the backbone trains: "none" (everything), "backbone" (only the
        new head), "last:K" or K (the last K blocks of the backbone's
        ``block_names()`` plus the head), "first:K" (the first K blocks, on the
        input side, plus the head), a list of patterns over the backbone's
        own parameter names to freeze (fnmatch, as skorch's ``Freezer``; e.g.
        ``["stem.*"]``), or a callable ``name -> bool`` (True freezes). Checked
        against the backbone before training: a pattern matching nothing is an
        error. BatchNorm statistics stay frozen everywhere. "auto" (classifiers and
        regressors; the image ones' default) chooses on the training data, see
        their ``auto_budget``.
    lr : float, pair, dict or "auto", default={lr!r}
        Learning rate of the head. A pair ``(head, backbone)`` (or a dict
        ``{{"head": ..., "backbone": ...}}``) sets the block next to the head separately.
        "auto" (text estimators): ``(1e-3, 5e-5)`` below 1,000 labelled texts,
        ``(1e-3, 2e-4)`` from 1,000 (the faster rate gains a point or more with
        thousands of texts and loses about 5 with a hundred); ``lr_`` says which.
        Each fit counts its own texts: a ``partial_fit`` batch, or a warm start on
        new rows, of fewer than 1,000 trains at the slower rate.
    lr_decay : float in (0, 1], default={lr_decay!r}
        Discriminative learning rates: block k counted from the head (the head is
        k=0) learns at ``lr * lr_decay**k`` (with a pair: the block next to the head
        at the backbone rate, each block below it ``lr_decay`` times less). The
        count starts at the highest block that trains ("first:K": block K).
    unfreeze : dict or None, default=None
        Gradual unfreezing, epoch -> freeze spec, e.g.
        ``{{0: "backbone", 2: "last:2", 4: "none"}}``; epochs in increasing order.
    max_epochs : int, default={max_epochs!r}
        Epochs of AdamW with a 10 % linear warm-up, then cosine decay.
    batch_size : int, default={batch_size!r}"""

TRAINING = """
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` (stratified for classifiers), stop when the
        validation loss has not improved for ``patience`` epochs, and restore the
        best epoch's weights.
    validation_fraction : float, default=0.1
    patience : int, default=3
    weight_decay : float, default=0.01
        AdamW's decoupled weight decay.
    random_state : int, RandomState or None, default=None
        Seeds initialisation, shuffling and augmentation; a CPU fit is then
        reproducible. The global RNGs are never changed.
    device : "auto", "cpu", "cuda", "cuda:N", "mps" or torch.device, default="auto"
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        "auto": bf16 (or fp16) autocast on GPUs, fp32 on the CPU.
    num_workers : int, default=0
        DataLoader workers for decoding, augmenting or tokenizing.
    head_init : {"probe", "random"}, default="probe"
        "probe" first fits the new head on the frozen backbone's features (a linear
        probe, computed in one pass, its L2 penalty chosen by 3-fold
        cross-validation), then trains (LP-FT): the backbone's first updates then
        follow a useful head instead of a random one, and a head trained alone
        starts where a careful linear probe ends. "random" starts from a random head.
    precompute_features : bool, default=True
        When the backbone is wholly frozen and nothing is augmented, compute its
        features once per fit and train only the head on them (same result, far
        less work).
    warm_start : bool, default=False
        ``fit`` continues training the fitted network (head included) instead of
        starting again, with the current parameters (``freeze="auto"``: the part it
        chose, at the current ``lr``); see also ``partial_fit``.
    verbose : int, default=0
        1 prints an epoch table and shows progress bars for the frozen-feature pass,
        the probe head's fits and ``predict``; 2 adds a progress bar per epoch with
        the running training loss.
    callbacks : list of skorch callbacks, default=None
        Extra skorch callbacks, e.g. ``[("checkpoint", Checkpoint())]``.
    accelerator : accelerate.Accelerator, default=None
        Train through Hugging Face Accelerate: the same estimator trains data-parallel
        on several GPUs when the script runs under ``accelerate launch``, in the
        accelerator's mixed precision (``precision`` then applies to prediction only)
        and on its device (``device`` is ignored). See the fine-tuning guide."""

ADAPTATION = """
    adaptation : str or list of str, default="none"
        Domain adaptation towards unlabelled target rows given in ``fit`` with
        ``sample_domain`` (skada's convention: source > 0, target < 0):
        ``"dann"`` (a domain discriminator behind gradient reversal on the pooled
        features), ``"coral"`` (Deep CORAL) and ``"mmd"`` (multi-kernel MMD, as DAN)
        move the backbone's features and need trainable blocks; ``"adabn"``
        uses each domain's own BatchNorm statistics (the network keeps the target's)
        and ``"pseudo_label"`` (classifiers) adds the cross-entropy of target rows under
        the model's own labels, chosen each epoch per predicted class among the most
        confident (20 % of the target at first, 80 % at the end); ``"mcc"``
        (classifiers, minimum class confusion) penalises target predictions that mix
        classes. These three also work on a frozen backbone. A list combines them, e.g.
        ``["adabn", "pseudo_label", "mcc"]``. CORAL, MMD and MCC are skada's losses:
        ``pip install 'sktransfer[adapt]'``.
    adaptation_weight : float, default=1.0
        The weight of the adaptation loss terms, reached by a warm-up from 0 over the
        fit (DANN's schedule, 2 / (1 + exp(-10 p)) - 1 at progress p); each term's
        unweighted value is in ``history`` (``train_<name>_loss``)."""

AUTO = """
    auto_budget : float or None, default=2.5
        With ``freeze="auto"``: the time the whole fit may take, in units of one fit
        with the modality's fixed default (``freeze="last:3"`` for images, ``"none"``
        for texts), timed on its first epoch; None: no limit (every candidate runs, and
        the choice no longer depends on the machine's speed). The search compares, on
        inner folds of the training rows only (stratified; grouped with ``groups``),
        the head alone on frozen features (a probe head; images: at 1x, 1.25x and
        1.5x the pretraining resolution; features computed once per resolution), and
        fine-tuning recipes (images: ``"last:3"``, ``"first:3"``, ``"none"``; texts:
        ``"last:2"``, ``"none"``) that start from one probe head and race by
        successive halving. A fine-tuning candidate trains an epoch only while its
        remaining epochs and its refit fit in the budget: with the default budget,
        ``"first:3"`` and ``"none"`` never start (they need about 4 and 5). The
        winner is refitted on every training row; ``auto_report_`` shows the race.
        Where it cannot search, ``freeze="auto"`` trains the fixed default and
        ``auto_report_`` says why: with ``unfreeze``, ``adaptation``, an
        ``accelerator``, ``head_init="random"``, a text ``strategy`` other than
        "standard" or ``class_descriptions`` (each chooses how to train), and, with
        a warning, when a class has a single row or there is a single group to
        validate on. A first ``partial_fit`` trains the fixed default too."""

FITTED = """

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained skorch net; ``net_.history`` holds the losses per epoch and
        ``net_.module_`` the network (``backbone`` and ``head``).
    n_epochs_ : int
        Epochs trained, across warm-started fits.
    used_precomputed_features_ : bool
        Whether the last fit trained the head on precomputed features.
    probe_penalty_ : float or None
        The L2 penalty of the probe head (``head_init="probe"``), None otherwise.
    augment_ : str or callable
        The augmentation the last fit used (``"auto"`` resolved for images).
    trainable_parameters_ : list of str
        The parameters that trained at the end of the last fit: the backbone's own
        names (as ``freeze`` patterns use them), then ``head.*``.
    freeze_, lr_, lr_decay_ : the recipe the last fit trained with: the parameters,
        or what ``freeze="auto"`` chose.
    device_ : torch.device"""

IMAGE = """
    image_size : int, default=None
        Crop size in pixels. None: 1.25x the backbone's pretraining size for CNNs
        (288 for the usual 224), the native size for transformers: fine-tuning above
        the pretraining resolution is what FixRes and BiT recommend, and it is
        measured to help (see the fine-tuning guide).
    augment : {{"auto", "none", "light", "standard"}} or callable, default="auto"
        Training augmentation: "light" is a random resized crop keeping 80-100 %
        of the area plus horizontal flips; "standard" crops harder and jitters
        colours; a callable is any transform on PIL images. "auto" is "light"
        when backbone blocks train and "none" when only the head trains (its
        features are then computed once, see ``precompute_features``).
    pooling : {{"auto", "avg", "max", "avg+max", "cls"}}, default="auto\""""

TEXT = """
    max_length : int, default=None
        Truncate texts to this many tokens; None keeps the model's limit.
    augment : {{"none", "delete", "swap", "synonym", "eda"}} or callable, default="none"
        Training augmentation, token-level edits of about 10 % of the words (EDA, Wei
        and Zou 2019): "delete" drops words, "swap" swaps neighbouring words,
        "synonym" replaces words by one of their 5 nearest neighbours in the encoder's
        token-embedding table (no thesaurus ships offline), "eda" all three. A callable
        maps one text to another (draw from torch's RNG to stay reproducible). Applied
        afresh to training rows each epoch and to the contrastive pairs; never to
        validation rows or predictions. Off by default: see docs/fewshot.md for what it
        was measured to do.
    pooling : {{"auto", "avg", "max", "avg+max", "cls"}}, default="auto\""""

CLASSIFIER = """
    class_weight : "balanced", dict or None, default=None
        Weights of the classes in the loss. "balanced": ``n_samples / (n_classes *
        count)`` on the training rows, each counted by its sample weight.
    label_smoothing : float, default=0.1
        Of the training loss, and of the probe head that starts training. A head
        fitted alone as the whole model (a head-only choice of ``freeze="auto"``) is
        a plain L2-penalised logistic regression, unsmoothed."""


STRATEGY = """
    strategy : {"standard", "contrastive", "auto"}, default="standard"
        "standard": the head, then the unfrozen blocks, trained on the labels.
        "contrastive": for few labelled texts (SetFit, Tunstall et al. 2022): first one
        epoch on pairs of labelled texts (same class or not) that pulls the cosine
        similarity of each pair towards 1 or 0, training the blocks that ``freeze``
        leaves trainable; then the head on the adapted encoder's frozen features.
        Pairs: for each labelled text, one partner of its class and one of another,
        repeated 20 times with up to about 50 texts, fewer beyond (about 2,000 pairs,
        or one repetition at least); ``sample_weight`` and ``class_weight`` weight the
        pairs.
        "auto": "contrastive" while the smallest class has at most 64 labelled texts
        (rows of weight 0 not counted), "standard" beyond, and "standard" wherever
        pairs cannot apply (multilabel ``y``, a frozen encoder, ``unfreeze``, an
        adaptation that moves the features, ``partial_fit``). Pairs chosen under
        ``freeze="auto"`` train its fixed default, ``"none"``, without a search.
        Measured on SST-2 with MiniLM (docs/fewshot.md): the pairs lead with
        ``class_descriptions`` up to 64 a class; without them the two are level at 8
        a class. A warm start keeps what "auto" chose. ``strategy_`` says which one
        trained."""

DESCRIPTIONS = """
    class_descriptions : dict or None, default=None
        Words that describe some or all classes, ``{class: description or list of
        descriptions}`` (e.g. ``{0: "negative", 1: "positive"}``), as a zero-shot
        classifier reads them: each is put into the templates of
        :class:`~sktransfer.ZeroShotTextClassifier` and the sentences join the
        training rows of their class, in the contrastive pairs and the head alike,
        never in a validation split (with ``adaptation``, as source rows). Each
        sentence weighs the labelled rows' mean ``sample_weight``, divided by the
        number of descriptions of its class (they share its weight, as the zero-shot
        classifier averages them). With a handful of labelled texts this prior is worth several
        points (see docs/fewshot.md); with thousands it fades. Used by a fit that starts
        from the pretrained weights (not by a warm-started fit or ``partial_fit`` that
        continues one)."""

MULTITASK = """
    tasks : dict, list or None, default=None
        The kind of each column of ``y``: ``{"column": "classification" | "regression"}``
        (for a 2-D array, its keys name the columns in order), or a list of kinds, one
        per column. None: read from the columns: a float column is a regression
        unless it holds at most 20 distinct whole numbers (class labels that became
        floats because of NaN); any other column is a classification. Say it when
        unsure.
    task_weights : dict, list or None, default=None
        The weight of each task's loss in the sum (default 1 each).
    label_smoothing : float, default=0.1
        For the classification tasks."""

MULTITASK_ATTRIBUTES = """
    tasks_ : dict
        Task name -> ``Task`` (kind, weight, its slice of the head's outputs, its
        ``classes`` or the ``mean`` and ``scale`` that standardise it)."""

CONTRASTIVE_ATTRIBUTES = """
    strategy_ : str
        The strategy that trained: ``strategy``, or what "auto" chose.
    contrastive_pairs_ : int or None
        How many pairs the contrastive strategy trained on; None with "standard".
    contrastive_loss_ : float
        With "contrastive": the mean pair loss of the last ten steps."""

AUTO_ATTRIBUTES = """
    auto_report_ : pandas.DataFrame
        With ``freeze="auto"``: one row per candidate: ``candidate``, ``freeze``,
        ``image_size`` (images), ``score`` (accuracy or R² on the shared inner holdout
        fold), ``cv_score`` (head-only candidates: its mean over the inner folds),
        ``cv_loss`` (head-only candidates: the mean held-out loss over the inner folds,
        unsmoothed, which ranks them), ``holdout_loss`` (single-label classifiers: the
        cross-entropy on the shared holdout at its best temperature, by which fine-tuning
        candidates and the best head are compared; NaN for regressors, multilabel ``y``,
        a perfectly separated holdout and candidates never evaluated), ``epochs``,
        ``seconds``, ``pruned_at`` (``"epoch K"`` by successive halving, ``"budget"``) and
        ``chosen``."""

CLASSIFIER_ATTRIBUTES = """
    classes_ : ndarray of shape (n_classes,)
        The labels seen in the first fit (column indices for multilabel ``y``).
    multilabel_ : bool
        Whether ``y`` was a 0/1 indicator matrix (independent sigmoids)."""

REGRESSOR_ATTRIBUTES = """
    n_targets_ : int
        Number of targets (1 for a 1-D ``y``).
    y_mean_, y_scale_ : ndarray of shape (n_targets,)
        The (sample-weighted) mean and standard deviation used to standardise ``y``
        for training; ``predict`` undoes them."""

IMAGE_ATTRIBUTES = """
    image_size_ : int
        The resolution the last fit trained at (``image_size``, or its default, or
        what ``freeze="auto"`` chose).
    data_config_ : DataConfig
        The preprocessing in force: input size, resize, interpolation, mean/std."""


def estimator_doc(
    summary, modality_doc, task_doc, example, attributes="", adaptation=True, auto=True, **defaults
):
    return (
        summary + "\n\n    Parameters\n    ----------\n    backbone : str, path, nn.Module or Backbone\n"
        "        The pretrained network (see :func:`sktransfer.backbones.list_backbones`)."
        + COMMON.format(**defaults)
        + modality_doc.format()
        + task_doc
        + TRAINING
        + (ADAPTATION if adaptation else "")
        + (AUTO if auto else "")
        + FITTED
        + attributes
        + (AUTO_ATTRIBUTES if auto else "")
        + "\n\n    Examples\n    --------\n"
        + example
    )
