"""Pretrained networks by name: loading, preprocessing and block layout.

Each source module registers its own names (and, for open-ended families, a
resolver) with :mod:`~sktransfer.backbones._registry` when imported here.

>>> from sktransfer.backbones import list_backbones, load_backbone
>>> list_backbones(offline=True)  # doctest: +SKIP
"""

# Sources are asked in import order; the text source comes last because it claims any
# name with a '/' (a Hugging Face id), which 'timm/...' and 'torchvision/...' also have.
from . import _timm, _torchvision  # noqa: F401, I001
from . import _text  # noqa: F401
from . import _bundled, _bundled_text, _tiny  # noqa: F401
from ._base import Backbone, Block, DataConfig, ImageBackbone, reader_name
from ._clip import load_clip
from ._local import from_module, load_state_dict_file
from ._memo import clear_loaded_backbones
from ._registry import (
    BackboneSpec,
    backbone_modality,
    list_backbones,
    load_backbone,
    register_backbone,
    register_source,
    resolve_backbone,
)
from ._text import TextBackbone

__all__ = [
    "Backbone",
    "BackboneSpec",
    "Block",
    "DataConfig",
    "ImageBackbone",
    "TextBackbone",
    "backbone_modality",
    "clear_loaded_backbones",
    "from_module",
    "list_backbones",
    "load_backbone",
    "load_clip",
    "load_state_dict_file",
    "reader_name",
    "register_backbone",
    "register_source",
    "resolve_backbone",
]
