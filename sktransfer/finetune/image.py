"""ImageClassifier and ImageRegressor: fine-tune a vision backbone."""

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from ._base import BaseTransferEstimator
from ._docs import (
    CLASSIFIER,
    CLASSIFIER_ATTRIBUTES,
    IMAGE,
    IMAGE_ATTRIBUTES,
    REGRESSOR_ATTRIBUTES,
    estimator_doc,
)
from ._inputs import ImageInputs
from ._targets import ClassifierTargets, RegressorTargets

IMAGE_DEFAULTS = dict(freeze="auto", lr=1e-3, lr_decay=0.1, max_epochs=10, batch_size=32)

_IMAGE_CONSTRAINTS = {
    **BaseTransferEstimator._parameter_constraints,
    "image_size": [None, Interval(Integral, 8, None, closed="left")],
    "augment": [StrOptions({"auto", "none", "light", "standard"}), callable],
}


class ImageClassifier(ImageInputs, ClassifierTargets, BaseTransferEstimator):
    __doc__ = estimator_doc(
        "Fine-tune a pretrained vision backbone as a scikit-learn classifier.",
        IMAGE,
        CLASSIFIER,
        """    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktransfer import ImageClassifier
    >>> search = GridSearchCV(ImageClassifier("efficientnet_lite0", max_epochs=5),
    ...                       {"freeze": ["backbone", "last:1", "last:3", "none"]}, cv=3)
    >>> search.fit(paths, labels).best_params_  # doctest: +SKIP
""",
        attributes=CLASSIFIER_ATTRIBUTES + IMAGE_ATTRIBUTES,
        **IMAGE_DEFAULTS,
    )

    _parameter_constraints = {**_IMAGE_CONSTRAINTS, **ClassifierTargets._target_constraints}

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        weights="default",
        freeze=IMAGE_DEFAULTS["freeze"],
        lr=IMAGE_DEFAULTS["lr"],
        lr_decay=IMAGE_DEFAULTS["lr_decay"],
        unfreeze=None,
        max_epochs=IMAGE_DEFAULTS["max_epochs"],
        batch_size=IMAGE_DEFAULTS["batch_size"],
        image_size=None,
        augment="auto",
        pooling="auto",
        class_weight=None,
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
        self.image_size = image_size
        self.augment = augment
        self.pooling = pooling
        self.class_weight = class_weight
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
        self.adaptation = adaptation
        self.adaptation_weight = adaptation_weight
        self.auto_budget = auto_budget


class ImageRegressor(ImageInputs, RegressorTargets, BaseTransferEstimator):
    __doc__ = estimator_doc(
        "Fine-tune a pretrained vision backbone as a scikit-learn regressor (one or several targets).",
        IMAGE,
        "",
        """    >>> from sktransfer import ImageRegressor
    >>> ImageRegressor("efficientnet_lite0").fit(paths, ages).predict(paths)  # doctest: +SKIP
""",
        attributes=REGRESSOR_ATTRIBUTES + IMAGE_ATTRIBUTES,
        **IMAGE_DEFAULTS,
    )

    _parameter_constraints = dict(_IMAGE_CONSTRAINTS)

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        weights="default",
        freeze=IMAGE_DEFAULTS["freeze"],
        lr=IMAGE_DEFAULTS["lr"],
        lr_decay=IMAGE_DEFAULTS["lr_decay"],
        unfreeze=None,
        max_epochs=IMAGE_DEFAULTS["max_epochs"],
        batch_size=IMAGE_DEFAULTS["batch_size"],
        image_size=None,
        augment="auto",
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
        self.image_size = image_size
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
