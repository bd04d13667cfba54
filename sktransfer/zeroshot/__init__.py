"""Classifiers that need no labelled rows: classes described in words."""

from ._text import ZeroShotTextClassifier

__all__ = ["ZeroShotTextClassifier"]
