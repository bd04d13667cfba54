"""ImageMultiTask and TextMultiTask: one backbone, one head per task, trained together."""

from ._base import BaseTransferEstimator
from ._docs import IMAGE, IMAGE_ATTRIBUTES, MULTITASK, MULTITASK_ATTRIBUTES, TEXT, estimator_doc
from ._inputs import ImageInputs, TextInputs
from ._multitask import MultiTaskTargets
from .image import _IMAGE_CONSTRAINTS, IMAGE_DEFAULTS
from .text import _TEXT_CONSTRAINTS, TEXT_DEFAULTS

# freeze="auto" does not compare several tasks' scores yet: the modalities' fixed defaults.
FIXED_IMAGE_DEFAULTS = {**IMAGE_DEFAULTS, "freeze": ImageInputs._fixed_freeze}
FIXED_TEXT_DEFAULTS = {**TEXT_DEFAULTS, "freeze": TextInputs._fixed_freeze}


class _MultiTask(MultiTaskTargets, BaseTransferEstimator):
    # Domain adaptation is not offered with several tasks: fixed, not a parameter.
    adaptation = "none"
    adaptation_weight = 1.0

    def _fit(self, X, y, *, sample_domain=None, **kwargs):
        if sample_domain is not None:
            raise ValueError(
                f"{type(self).__name__}: sample_domain is for domain adaptation, which is not available "
                "with several tasks; drop the target rows yourself, or leave their labels missing."
            )
        return super()._fit(X, y, **kwargs)


class ImageMultiTask(ImageInputs, _MultiTask):
    __doc__ = estimator_doc(
        "Fine-tune a pretrained vision backbone on several tasks at once (classification and regression).",
        IMAGE,
        MULTITASK,
        """    >>> import pandas as pd
    >>> from sktransfer import ImageMultiTask
    >>> y = pd.DataFrame({"species": species, "length_mm": lengths})  # NaN: not labelled
    >>> model = ImageMultiTask("efficientnet_lite0").fit(paths, y)  # doctest: +SKIP
    >>> model.predict(paths)  # a DataFrame, one column per task  # doctest: +SKIP
""",
        attributes=MULTITASK_ATTRIBUTES + IMAGE_ATTRIBUTES,
        adaptation=False,
        auto=False,
        **FIXED_IMAGE_DEFAULTS,
    )

    _parameter_constraints = {**_IMAGE_CONSTRAINTS, **MultiTaskTargets._target_constraints}

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        weights="default",
        freeze=FIXED_IMAGE_DEFAULTS["freeze"],
        lr=FIXED_IMAGE_DEFAULTS["lr"],
        lr_decay=FIXED_IMAGE_DEFAULTS["lr_decay"],
        unfreeze=None,
        max_epochs=FIXED_IMAGE_DEFAULTS["max_epochs"],
        batch_size=FIXED_IMAGE_DEFAULTS["batch_size"],
        image_size=None,
        augment="auto",
        pooling="auto",
        tasks=None,
        task_weights=None,
        label_smoothing=0.1,
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
    ):
        self.backbone = backbone
        self.weights = weights
        self.freeze = freeze
        self.lr = lr
        self.lr_decay = lr_decay
        self.unfreeze = unfreeze
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.image_size = image_size
        self.augment = augment
        self.pooling = pooling
        self.tasks = tasks
        self.task_weights = task_weights
        self.label_smoothing = label_smoothing
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


class TextMultiTask(TextInputs, _MultiTask):
    __doc__ = estimator_doc(
        "Fine-tune a pretrained text encoder on several tasks at once (classification and regression).",
        TEXT,
        MULTITASK,
        """    >>> import pandas as pd
    >>> from sktransfer import TextMultiTask
    >>> y = pd.DataFrame({"sentiment": sentiment, "topic": topic})  # None: not labelled
    >>> model = TextMultiTask("all-MiniLM-L6-v2").fit(texts, y)  # doctest: +SKIP
    >>> model.score_tasks(test_texts, test_y)  # doctest: +SKIP
""",
        attributes=MULTITASK_ATTRIBUTES,
        adaptation=False,
        auto=False,
        **FIXED_TEXT_DEFAULTS,
    )

    _parameter_constraints = {**_TEXT_CONSTRAINTS, **MultiTaskTargets._target_constraints}

    def __init__(
        self,
        backbone="all-MiniLM-L6-v2",
        *,
        weights="default",
        freeze=FIXED_TEXT_DEFAULTS["freeze"],
        lr=FIXED_TEXT_DEFAULTS["lr"],
        lr_decay=FIXED_TEXT_DEFAULTS["lr_decay"],
        unfreeze=None,
        max_epochs=FIXED_TEXT_DEFAULTS["max_epochs"],
        batch_size=FIXED_TEXT_DEFAULTS["batch_size"],
        max_length=None,
        augment="none",
        pooling="auto",
        tasks=None,
        task_weights=None,
        label_smoothing=0.1,
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
        self.tasks = tasks
        self.task_weights = task_weights
        self.label_smoothing = label_smoothing
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
