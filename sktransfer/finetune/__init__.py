"""Fine-tuning estimators: a pretrained backbone and a new head, trained on skorch."""

from .image import ImageClassifier, ImageRegressor
from .text import TextClassifier, TextRegressor

__all__ = ["ImageClassifier", "ImageRegressor", "TextClassifier", "TextRegressor"]
