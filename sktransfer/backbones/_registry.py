"""The backbone registry: what a user types -> a loaded :class:`Backbone`."""

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from .._device import seeded_rng
from .._validation import closest_names
from ..exceptions import InvalidInputError, WeightsUnavailableError
from ._base import Backbone
from ._errors import unknown_backbone_error


@dataclass(frozen=True)
class BackboneSpec:
    """A registered backbone: how to load it and what it is."""

    name: str
    modality: str
    source: str
    loader: Callable
    description: str = ""
    is_offline: Callable = lambda: False


_REGISTRY = {}


def register_backbone(name, loader, *, modality, source, description="", is_offline=None):
    """Register a backbone under ``name``, so every embedder and estimator accepts the name.

    Parameters
    ----------
    name : str
        What users pass as ``backbone``.
    loader : callable
        ``loader(weights) -> Backbone``; ``weights`` is ``"default"`` (pretrained), None
        (random initialisation) or a user's value (a path, a weight name).
    modality : {"image", "text"}
        What the backbone reads.
    source : str
        Where it comes from ("torchvision", "timm", "bundled", ...), shown by
        :func:`list_backbones`.
    description : str, default=""
        One line for :func:`list_backbones`.
    is_offline : callable, default=None
        ``is_offline() -> bool``: whether the default weights load without internet
        access; None means they do not.

    Examples
    --------
    >>> from sktransfer.backbones import from_module, register_backbone
    >>> register_backbone(
    ...     "my_cnn", lambda weights: from_module(build_my_cnn()), modality="image", source="local"
    ... )  # doctest: +SKIP
    """
    _REGISTRY[name] = BackboneSpec(name, modality, source, loader, description, is_offline or (lambda: False))


def registered_spec(name):
    """The spec registered under ``name`` (also accepting a 'torchvision/' prefix), or None."""
    if not isinstance(name, str):
        return None
    return _REGISTRY.get(name) or _REGISTRY.get(name.removeprefix("torchvision/"))


def list_backbones(modality=None, offline=None):
    """The registered backbones as a DataFrame: name, modality, source, offline, description.

    Besides these, any ``"timm/<name>"``, any supported torchvision classification
    model, any Hugging Face or sentence-transformers encoder id, a local model folder
    and an ``nn.Module`` are accepted.

    Parameters
    ----------
    modality : {"image", "text"}, default=None
        Keep only backbones of this kind.
    offline : bool, default=None
        Keep only those whose default weights do (True) or do not (False) load
        without internet access.
    """
    import pandas as pd

    rows = [
        {
            "name": s.name,
            "modality": s.modality,
            "source": s.source,
            "offline": bool(s.is_offline()),
            "description": s.description,
        }
        for s in _REGISTRY.values()
    ]
    frame = pd.DataFrame(rows, columns=["name", "modality", "source", "offline", "description"])
    if modality is not None:
        frame = frame[frame["modality"] == modality]
    if offline is not None:
        frame = frame[frame["offline"] == offline]
    return frame.reset_index(drop=True)


def backbone_modality(backbone):
    """The modality of ``backbone`` without loading weights, or None when it needs loading."""
    if isinstance(backbone, Backbone):
        return backbone.modality
    if isinstance(backbone, nn.Module):
        return "image"
    spec = registered_spec(backbone)
    if spec is not None:
        return spec.modality
    if isinstance(backbone, str) and backbone.startswith("timm/"):
        return "image"
    return None


def load_backbone(backbone, weights="default", modality=None):
    """Resolve ``backbone`` (a name, path, ``nn.Module`` or :class:`Backbone`) and load it.

    Parameters
    ----------
    backbone : str, path, nn.Module or Backbone
        What to load; see :func:`list_backbones`.
    weights : "default", None, str or path, default="default"
        "default" loads the pretrained weights; None the same architecture with
        random weights; a torchvision weight-enum name picks that weight set; a
        path loads a local ``.safetensors`` file or state dict.
    modality : {"image", "text"}, default=None
        The kind of backbone the caller needs; a mismatch raises ``ValueError``.
    """
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights={weights!r} must be 'default', None, a weight name or a file path.")
    if isinstance(weights, str) and weights.lower() == "default":
        weights = "default"
    # Random initialisation (weights=None, new heads) must neither consume nor depend on the
    # caller's global RNG: seed a forked generator so repeated fits build identical networks.
    with seeded_rng(0):
        loaded = _load(backbone, weights, modality)
    if modality is not None and loaded.modality != modality:
        fix = {"text": "TextEmbedder or TextClassifier", "image": "ImageEmbedder or ImageClassifier"}
        raise InvalidParameterError(
            f"backbone={_describe(backbone)} is {_a(loaded.modality)} backbone, but {_a(modality)} "
            f"backbone is needed here; use {fix.get(loaded.modality, 'a matching estimator')}."
        )
    return loaded


def _load(backbone, weights, modality):
    from ._local import from_module

    if isinstance(backbone, Backbone):
        return copy.deepcopy(backbone)
    if isinstance(backbone, nn.Module):
        return from_module(copy.deepcopy(backbone))
    if isinstance(backbone, os.PathLike):
        backbone = os.fspath(backbone)
    if not isinstance(backbone, str):
        raise InvalidInputError(
            f"backbone must be a name, a path, an nn.Module or a Backbone; got {type(backbone).__name__}."
        )
    spec = registered_spec(backbone)
    if spec is not None:
        return spec.loader(weights)
    if backbone.startswith("timm/"):
        from ._timm import load_timm

        return load_timm(backbone.removeprefix("timm/"), weights)
    from ._torchvision import load_torchvision, supported_torchvision_models

    tv_name = backbone.removeprefix("torchvision/")
    if tv_name in supported_torchvision_models():
        return load_torchvision(tv_name, weights)
    known = list(_REGISTRY) + supported_torchvision_models()
    hub_id = "/" in backbone and not Path(backbone).exists()
    if (
        Path(backbone).is_dir()
        or (modality == "text" and not Path(backbone).exists())
        or (modality is None and hub_id)
    ):
        from ._text import load_text

        try:
            return load_text(backbone, weights)
        except WeightsUnavailableError as exc:
            close = closest_names(backbone, [k for k in _REGISTRY if registered_spec(k).modality == "text"])
            hint = f" Or did you mean the registered {', '.join(map(repr, close))}?" if close else ""
            raise WeightsUnavailableError(f"{exc}{hint}") from None
    raise unknown_backbone_error(backbone, known)


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _describe(backbone):
    return repr(backbone) if isinstance(backbone, str) else type(backbone).__name__
