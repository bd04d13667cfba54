"""torchvision classification models by name, with their weight enums."""

import torch

from ..exceptions import WeightsUnavailableError
from ._base import Block, DataConfig, ImageBackbone
from ._local import is_weights_file, load_weights_into

# Families whose feature map we know how to read; the key is the name prefix.
_FAMILIES = {
    "resnet": "torchvision_resnet",
    "resnext": "torchvision_resnet",
    "wide_resnet": "torchvision_resnet",
    "efficientnet": "torchvision_features",
    "mobilenet": "torchvision_features",
    "convnext": "torchvision_features",
    "vit": "torchvision_vit",
}


def supported_torchvision_models():
    import torchvision

    names = torchvision.models.list_models(module=torchvision.models)
    return [n for n in names if _family(n) is not None]


def _family(name):
    return next((fam for prefix, fam in _FAMILIES.items() if name.startswith(prefix)), None)


def load_torchvision(name, weights):
    """``weights``: "default", a weight-enum name such as "IMAGENET1K_V2", None, or a path."""
    import torchvision

    family = _family(name)
    enum = torchvision.models.get_model_weights(name)
    chosen = None
    if weights is not None and not is_weights_file(weights):
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
    preset = (chosen or enum.DEFAULT).transforms()
    data_config = DataConfig(
        input_size=preset.crop_size[0],
        crop_pct=preset.crop_size[0] / preset.resize_size[0],
        interpolation=preset.interpolation.value,
        mean=tuple(preset.mean),
        std=tuple(preset.std),
        resize=preset.resize_size[0],
    )
    blocks, classifier = _blocks(model, family)
    backbone = ImageBackbone(
        model,
        name=name,
        data_config=data_config,
        features=_READERS[family],
        blocks=blocks,
        default_pooling="cls" if family == "torchvision_vit" else "avg",
        classifier=classifier,
    )
    if is_weights_file(weights):
        load_weights_into(backbone, weights)
    return backbone


def _blocks(model, family):
    if family == "torchvision_resnet":
        stem = Block("stem", ["conv1", "bn1"])
        return [stem] + [Block(f"layer{i}", [f"layer{i}"]) for i in range(1, 5)], "fc"
    if family == "torchvision_vit":
        stem = Block("stem", ["class_token", "conv_proj", "encoder.pos_embedding"])
        layers = [
            Block(f"encoder.layers.{name}", [f"encoder.layers.{name}"])
            for name, _ in model.encoder.layers.named_children()
        ]
        return [stem] + layers + [Block("head", ["encoder.ln"])], "heads"
    return [Block(f"features.{i}", [f"features.{i}"]) for i in range(len(model.features))], "classifier"


def _torchvision_resnet(model, x):
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def _torchvision_features(model, x):
    return model.features(x)


def _torchvision_vit(model, x):
    x = model._process_input(x)
    cls = model.class_token.expand(x.shape[0], -1, -1)
    return model.encoder(torch.cat([cls, x], dim=1))


_READERS = {
    "torchvision_resnet": _torchvision_resnet,
    "torchvision_features": _torchvision_features,
    "torchvision_vit": _torchvision_vit,
}
