"""Classifiers that need no labelled rows: classes described in words."""

from ._image import ZeroShotImageClassifier
from ._text import ZeroShotTextClassifier

__all__ = ["ZeroShotImageClassifier", "ZeroShotTextClassifier"]
