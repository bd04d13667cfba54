"""torchvision classification models by name, with their weight enums.

Registers the names listed by :func:`~sktransfer.backbones.list_backbones` and, as
a source, every other torchvision model of a supported family (also written
``"torchvision/<name>"``).
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from ..exceptions import WeightsUnavailableError
from ._base import Block, DataConfig, ImageBackbone, speed_class
from ._errors import unknown_backbone_error
from ._registry import BackboneSpec, add_spec, register_source


def _resnet_features(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def _resnet_blocks(model):
    return [Block("stem", ["conv1", "bn1"])] + [Block(f"layer{i}", [f"layer{i}"]) for i in range(1, 5)], "fc"


def _features_features(model, x):
    return model.features(x)


def _features_blocks(model):
    return [Block(f"features.{i}", [f"features.{i}"]) for i in range(len(model.features))], "classifier"


def _vit_features(model, x):
    x = model._process_input(x)
    cls = model.class_token.expand(x.shape[0], -1, -1)
    return model.encoder(torch.cat([cls, x], dim=1))


def _vit_blocks(model):
    stem = Block("stem", ["class_token", "conv_proj", "encoder.pos_embedding"])
    layers = [
        Block(f"encoder.layers.{name}", [f"encoder.layers.{name}"])
        for name, _ in model.encoder.layers.named_children()
    ]
    return [stem] + layers + [Block("head", ["encoder.ln"])], "heads"


@dataclass(frozen=True)
class _Family:
    """How to read a family's unpooled features and cut it into blocks."""

    features: Callable  # (model, images) -> features; module-level, so backbones pickle
    blocks: Callable  # model -> (blocks, classifier path)
    pooling: str = "avg"


_RESNET = _Family(_resnet_features, _resnet_blocks)
_FEATURES = _Family(_features_features, _features_blocks)
# Families whose feature map we know how to read; the key is the name prefix.
_FAMILIES = {
    "resnet": _RESNET,
    "resnext": _RESNET,
    "wide_resnet": _RESNET,
    "efficientnet": _FEATURES,
    "mobilenet": _FEATURES,
    "convnext": _FEATURES,
    "vit": _Family(_vit_features, _vit_blocks, pooling="cls"),
}


def _family(name):
    return next((fam for prefix, fam in _FAMILIES.items() if name.startswith(prefix)), None)


def supported_torchvision_models():
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    return [n for n in names if _family(n) is not None]


def _data_config(weights_enum_member):
    preset = weights_enum_member.transforms()
    return DataConfig(
        input_size=preset.crop_size[0],
        crop_pct=preset.crop_size[0] / preset.resize_size[0],
        interpolation=preset.interpolation.value,
        mean=tuple(preset.mean),
        std=tuple(preset.std),
        resize=preset.resize_size[0],
    )


def load_torchvision(name, weights):
    """``weights``: "default", a weight-enum name such as "IMAGENET1K_V2", or None."""
    import torchvision

    enum = torchvision.models.get_model_weights(name)
    chosen = None
    if weights is not None:
        key = "DEFAULT" if weights == "default" else weights
        try:
            chosen = enum[key] if key in enum.__members__ else enum.verify(key)
        except (KeyError, ValueError):
            raise ValueError(
                f"weights={weights!r} is not a weight set of torchvision's {name!r}; "
                f"choose one of {sorted(enum.__members__)}, 'default', None or a local file."
            ) from None
    try:
        model = torchvision.models.get_model(name, weights=chosen)
    except OSError as exc:  # URLError and friends when offline
        raise WeightsUnavailableError(
            f"Could not download torchvision weights {chosen} for {name!r} ({exc}). Without "
            "internet access, download the file elsewhere and pass weights='path/to/file.pth' "
            "(a state dict) or put it in torch's hub cache; use weights=None for random "
            "initialisation, or an offline backbone (list_backbones(offline=True))."
        ) from None
    family = _family(name)
    blocks, classifier = family.blocks(model)
    return ImageBackbone(
        model,
        name=name,
        data_config=_data_config(chosen or enum.DEFAULT),
        features=family.features,
        blocks=blocks,
        default_pooling=family.pooling,
        classifier=classifier,
    )


def _cached(name):
    import torchvision

    url = torchvision.models.get_model_weights(name).DEFAULT.url
    return os.path.exists(os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url)))


def torchvision_spec(name, description="", dim=None):
    """What torchvision's weight enum says of ``name`` before any download."""
    import torchvision

    default = torchvision.models.get_model_weights(name).DEFAULT
    return BackboneSpec(
        name=name,
        modality="image",
        source="torchvision",
        loader=partial(load_torchvision, name),
        description=description,
        is_offline=partial(_cached, name),
        data_config=_data_config(default),
        default_pooling=_family(name).pooling,
        dim=dim,
        params_m=round(default.meta["num_params"] / 1e6, 1),
        speed=speed_class(default.meta.get("_ops")),
        weight_names=True,
    )


def _resolve(name, modality):
    tv_name = name.removeprefix("torchvision/")
    supported = supported_torchvision_models()
    if modality in (None, "image") and tv_name in supported:
        return torchvision_spec(tv_name)
    if tv_name != name:  # the prefix is ours: an unknown model is ours to name, not a hub id
        raise unknown_backbone_error(name, supported)
    return None


_LISTED = {
    "resnet18": ("ResNet-18", 512),
    "resnet50": ("ResNet-50", 2048),
    "resnet101": ("ResNet-101", 2048),
    "efficientnet_b0": ("EfficientNet-B0", 1280),
    "efficientnet_b3": ("EfficientNet-B3", 1536),
    "mobilenet_v3_large": ("MobileNetV3-Large", 960),
    "convnext_tiny": ("ConvNeXt-T", 768),
    "convnext_small": ("ConvNeXt-S", 768),
    "vit_b_16": ("ViT-B/16, CLS token", 768),
}
for _name, (_title, _dim) in _LISTED.items():
    add_spec(torchvision_spec(_name, f"{_title} ({_dim}-d)", _dim))
register_source("torchvision", _resolve, known=supported_torchvision_models)
