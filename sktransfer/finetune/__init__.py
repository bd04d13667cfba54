"""Fine-tuning estimators: a pretrained backbone and a new head, trained on skorch."""

from .image import ImageClassifier, ImageRegressor
from .multitask import ImageMultiTask, TextMultiTask
from .text import TextClassifier, TextRegressor

__all__ = [
    "ImageClassifier",
    "ImageMultiTask",
    "ImageRegressor",
    "TextClassifier",
    "TextMultiTask",
    "TextRegressor",
]
