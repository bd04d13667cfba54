"""Frozen backbones as scikit-learn transformers."""

from .image import ImageEmbedder
from .text import TextEmbedder

__all__ = ["ImageEmbedder", "TextEmbedder"]
