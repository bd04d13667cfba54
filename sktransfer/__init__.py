"""sktransfer: pretrained networks as scikit-learn transformers and estimators."""

from ._persistence import skops_trusted_types
from ._version import __version__
from .adaptation import DomainAdaptedClassifier, SelfTrainedHead
from .backbones import list_backbones, load_backbone
from .data import load_image_folder
from .embedding import ImageEmbedder, TextEmbedder
from .finetune import (
    ImageClassifier,
    ImageMultiTask,
    ImageRegressor,
    TextClassifier,
    TextMultiTask,
    TextRegressor,
)
from .selection import BackboneSelector
from .zeroshot import ZeroShotImageClassifier, ZeroShotTextClassifier

__all__ = [
    "BackboneSelector",
    "DomainAdaptedClassifier",
    "ImageClassifier",
    "ImageEmbedder",
    "ImageMultiTask",
    "ImageRegressor",
    "SelfTrainedHead",
    "TextClassifier",
    "TextEmbedder",
    "TextMultiTask",
    "TextRegressor",
    "ZeroShotImageClassifier",
    "ZeroShotTextClassifier",
    "__version__",
    "list_backbones",
    "load_backbone",
    "load_image_folder",
    "skops_trusted_types",
]
