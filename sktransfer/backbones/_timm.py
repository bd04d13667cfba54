"""timm models (``"timm/<name>"``), and the block layout shared by timm networks."""

import warnings
from functools import partial

from .._validation import user_stacklevel
from ..exceptions import MissingDependencyError, WeightsUnavailableError
from ._base import CROP_MODES, Block, DataConfig, ImageBackbone
from ._errors import unknown_backbone_error
from ._registry import BackboneSpec, register_source

_BODY_NAMES = ("blocks", "stages", "layers")


def import_timm():
    try:
        import timm
    except ImportError:
        raise MissingDependencyError(
            "This backbone needs timm. Install it with: pip install 'sktransfer[timm]'"
        ) from None
    return timm


def timm_blocks(model):
    """[stem, body entries..., head] from a timm model's top-level children.

    The body is the first ``blocks``/``stages``/``layers`` container (or the
    ``layerN`` children of ResNets); children before it form the stem, children
    after it (minus pooling and the classifier) form the head. Top-level
    parameters (ViT's ``cls_token``, ``pos_embed``) belong to the stem.
    """
    classifier = model.default_cfg.get("classifier", "classifier") if hasattr(model, "default_cfg") else None
    children = [name for name, _ in model.named_children()]
    body_name = next((n for n in _BODY_NAMES if n in children), None)
    if body_name is not None:
        body = [f"{body_name}.{i}" for i, _ in enumerate(getattr(model, body_name))]
        first = last = children.index(body_name)
    else:
        body = [n for n in children if n.startswith("layer") and n[5:].isdigit()]
        if not body:
            return [Block("all", [""])]
        first, last = children.index(body[0]), children.index(body[-1])
    with_params = {n for n in children if any(True for _ in getattr(model, n).parameters())}
    direct_params = [n for n, _ in model.named_parameters(recurse=False)]
    stem = direct_params + [n for n in children[:first] if n in with_params]
    head = [n for n in children[last + 1 :] if n in with_params and n != classifier]
    blocks = [Block("stem", stem)] if stem else []
    blocks += [Block(path, [path]) for path in body]
    if head:
        blocks.append(Block("head", head))
    return blocks


def load_timm(name, weights):
    """A timm model by name; ``weights`` is "default" (pretrained) or None."""
    timm = import_timm()
    try:
        model = timm.create_model(name, pretrained=weights == "default")
    except RuntimeError as exc:
        if "Unknown model" in str(exc):
            raise unknown_backbone_error(f"timm/{name}", timm.list_models()) from None
        raise
    except OSError as exc:
        raise WeightsUnavailableError(
            f"Could not fetch pretrained weights for 'timm/{name}' ({exc}). Without internet access, "
            "download the weights elsewhere and pass weights='path/to/weights.safetensors', "
            "use weights=None for random initialisation, or use an offline backbone "
            "(see sktransfer.backbones.list_backbones(offline=True))."
        ) from None
    return wrap_timm(model, name=f"timm/{name}")


def forward_features(model, images):
    """timm's unpooled features."""
    return model.forward_features(images)


def wrap_timm(model, *, name, data_config=None):
    return ImageBackbone(
        model,
        name=name,
        data_config=data_config or timm_data_config(model.pretrained_cfg),
        features=forward_features,
        blocks=timm_blocks(model),
        default_pooling="cls" if getattr(model, "global_pool", "avg") == "token" else "avg",
        classifier=model.default_cfg.get("classifier"),
    )


def timm_data_config(cfg):
    """A timm pretrained config (a dict or ``PretrainedCfg``) as a :class:`DataConfig`."""
    cfg = cfg if isinstance(cfg, dict) else cfg.to_dict()
    crop_mode = cfg.get("crop_mode") or "center"
    if crop_mode not in CROP_MODES:
        # A mode newer than this code: the usual one, said aloud.
        warnings.warn(
            f"timm config {cfg.get('architecture', '')!r} resizes with crop_mode={crop_mode!r}, which "
            "sktransfer does not support; images are resized with crop_mode='center' instead, so "
            "features may differ a little from timm's own preprocessing.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        crop_mode = "center"
    return DataConfig(
        input_size=cfg.get("input_size", (3, 224, 224))[-1],
        crop_pct=cfg.get("crop_pct", 0.875),
        interpolation=cfg.get("interpolation", "bicubic"),
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))),
        std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        crop_mode=crop_mode,
    )


def _resolve(name, modality):
    if not name.startswith("timm/"):
        return None
    model_name = name.removeprefix("timm/")
    cfg = None
    try:
        cfg = import_timm().get_pretrained_cfg(model_name)
    except MissingDependencyError:
        pass  # loading says so, with the install command
    return BackboneSpec(
        name=name,
        modality="image",
        source="timm",
        loader=partial(load_timm, model_name),
        data_config=timm_data_config(cfg) if cfg is not None else None,
    )


register_source("timm", _resolve)
