"""Weights from local files, and users' own modules."""

import os
from pathlib import Path

import torch
from torch import nn

from ._base import Block, DataConfig, ImageBackbone

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def is_weights_file(weights):
    """True when ``weights`` names a local file rather than a preset ("default", an enum name)."""
    if weights is None:
        return False
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (weights.lower().endswith(WEIGHT_SUFFIXES) or os.path.isfile(weights))


def load_state_dict_file(path):
    """A state dict from ``.safetensors`` or a torch file, never running pickled code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights={str(path)!r}: no such file.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors vary by torch version
        raise ValueError(
            f"weights={str(path)!r} could not be loaded safely ({exc}). sktransfer loads torch "
            "files with weights_only=True: save a plain state dict "
            "(torch.save(model.state_dict(), path)) or a .safetensors file."
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"weights={str(path)!r} does not hold a state dict (got {type(state).__name__}).")
    return state


def load_weights_into(backbone, path):
    """Load a local state dict into ``backbone.model``, naming missing and unexpected keys."""
    state = load_state_dict_file(path)
    result = backbone.model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"weights={os.fspath(path)!r} does not match backbone {backbone.name!r}: "
            f"missing {result.missing_keys[:5]}, unexpected {result.unexpected_keys[:5]} "
            f"({len(result.missing_keys)} and {len(result.unexpected_keys)} in all)."
        )
    return backbone


def from_module(module, *, name=None, data_config=None, blocks=None, default_pooling="avg"):
    """Wrap a user's own ``nn.Module`` as an image backbone.

    Parameters
    ----------
    module : nn.Module
        ``module(images)`` takes a float batch ``(N, 3, H, W)`` scaled by the data
        config's mean/std and returns a feature map ``(N, C, H, W)``, tokens
        ``(N, L, C)`` or vectors ``(N, C)``.
    name : str, default=None
        The name shown in messages and the cache; the module's class name by default.
    data_config : DataConfig, default=None
        Its preprocessing; None: the ImageNet way at 224 px.
    blocks : list of str, default=None
        Child-module names, input side first, that ``freeze="last:K"`` and ``layers``
        count; None: the module's top-level children that have parameters.
    default_pooling : {"avg", "max", "avg+max", "cls"}, default="avg"
        The pooling that ``pooling="auto"`` means.

    Returns
    -------
    backbone : ImageBackbone
        Usable as the ``backbone`` of any image embedder or estimator.

    Examples
    --------
    >>> import torch
    >>> from sktransfer import ImageEmbedder
    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU())
    >>> ImageEmbedder(from_module(net, name="mine")).fit([]).n_features_out_  # doctest: +SKIP
    8
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"backbone must be a name or an nn.Module, got {type(module).__name__}.")
    if blocks is None:
        blocks = [name for name, child in module.named_children() if any(True for _ in child.parameters())]
    return ImageBackbone(
        module,
        name=name or type(module).__name__,
        data_config=data_config or DataConfig(),
        blocks=[Block(b, [b]) for b in blocks],
        default_pooling=default_pooling,
    )
