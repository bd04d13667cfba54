"""Input adapters shared by the embedders and the fine-tuning estimators."""

from ._adapters import (
    ImageAdapter,
    TextAdapter,
    adapter_class,
    adapter_for,
    inference_batches,
    register_adapter,
)
from ._augment import AUGMENT_PRESETS, train_transform
from ._decode import DECODING_VERSION
from ._folder import load_image_folder
from ._images import (
    IMAGE_EXTENSIONS,
    ImageDataset,
    eval_transform,
    image_batches,
    image_inputs,
    read_image,
    scale_pixels,
    to_model_input,
)
from ._loader import loader_options
from ._subset import subset
from ._text import text_batches, text_inputs
from ._text_augment import TEXT_AUGMENT_PRESETS, AugmentedTexts, text_augmenter

__all__ = [
    "AUGMENT_PRESETS",
    "TEXT_AUGMENT_PRESETS",
    "AugmentedTexts",
    "text_augmenter",
    "ImageAdapter",
    "TextAdapter",
    "adapter_class",
    "adapter_for",
    "inference_batches",
    "register_adapter",
    "DECODING_VERSION",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "eval_transform",
    "image_batches",
    "image_inputs",
    "load_image_folder",
    "loader_options",
    "read_image",
    "scale_pixels",
    "subset",
    "text_batches",
    "text_inputs",
    "to_model_input",
    "train_transform",
]
