"""sktransfer: pretrained networks as scikit-learn transformers and estimators."""

from .backbones import list_backbones, load_backbone
from .data import load_image_folder
from .embedding import ImageEmbedder, TextEmbedder

__version__ = "0.1.0"

__all__ = [
    "ImageEmbedder",
    "TextEmbedder",
    "__version__",
    "list_backbones",
    "load_backbone",
    "load_image_folder",
]
