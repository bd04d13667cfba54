"""The backbone registry: what a user types -> a :class:`BackboneSpec` -> a loaded :class:`Backbone`.

Names resolve in two steps, each owned by the module of the backbone's source:
exact names registered with :func:`register_backbone` (the bundled, torchvision and
test backbones register theirs), then the sources registered with
:func:`register_source`, asked in order (``"timm/<name>"``, torchvision's other
models, Hugging Face ids and local folders). A spec carries what is known before
any weights load: preprocessing, pooling, block names, size; loading is its
``loader``. A local weights file is applied here, once, whatever the source.
"""

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass

from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from .._device import seeded_rng
from ..exceptions import InvalidInputError
from ._base import Backbone, DataConfig
from ._errors import unknown_backbone_error
from ._local import from_module, is_weights_file, load_weights_into
from ._memo import memo_key, remembered


@dataclass(frozen=True)
class BackboneSpec:
    """A backbone by name, before any weights load (timm's pretrained-config idea).

    ``loader(weights)`` builds it: ``weights`` is "default" (pretrained), None (random
    initialisation) or, when ``weight_names`` is true, one of the source's named weight
    sets. The other fields describe it for :func:`list_backbones` and for choices
    made before loading; None means "known once loaded".
    """

    name: str
    modality: str
    source: str
    loader: Callable
    description: str = ""
    is_offline: Callable = lambda: False
    data_config: DataConfig = None
    default_pooling: str = None
    blocks: tuple = None
    dim: int = None
    params_m: float = None
    speed: str = None
    weight_names: bool = False


@dataclass(frozen=True)
class _Source:
    name: str
    resolve: Callable
    known: Callable


_REGISTRY = {}
_SOURCES = []
_VERSION = [0]  # bumped when a name or source is registered again: its kept backbones go stale


def register_backbone(
    name,
    loader,
    *,
    modality,
    source,
    description="",
    is_offline=None,
    data_config=None,
    default_pooling=None,
    blocks=None,
    dim=None,
    params_m=None,
    speed=None,
):
    """Register a backbone under ``name``, so every embedder and estimator accepts the name.

    The arguments from ``data_config`` on describe the backbone before it loads (None:
    known once loaded); they must agree with what ``loader`` builds.

    Parameters
    ----------
    name : str
        What users pass as ``backbone``.
    loader : callable
        ``loader(weights) -> Backbone``; ``weights`` is ``"default"`` (pretrained) or
        None (random initialisation). A local weights file is loaded into
        ``loader(None)`` by the registry.
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
    data_config : DataConfig, default=None
        Image backbones: the preprocessing of the pretrained weights.
    default_pooling : {"avg", "max", "avg+max", "cls"}, default=None
        What ``pooling="auto"`` means for it.
    blocks : tuple of str, default=None
        Its block names, input side first (what ``freeze="last:K"`` counts).
    dim : int, default=None
        The width of its pooled features.
    params_m : float, default=None
        Millions of parameters.
    speed : {"fast", "medium", "slow"}, default=None
        A CPU speed class, for :func:`list_backbones`.

    Examples
    --------
    >>> from sktransfer.backbones import from_module, register_backbone
    >>> register_backbone(
    ...     "my_cnn", lambda weights: from_module(build_my_cnn()), modality="image", source="local"
    ... )  # doctest: +SKIP
    """
    add_spec(
        BackboneSpec(
            name,
            modality,
            source,
            loader,
            description,
            is_offline or (lambda: False),
            data_config=data_config,
            default_pooling=default_pooling,
            blocks=None if blocks is None else tuple(blocks),
            dim=dim,
            params_m=params_m,
            speed=speed,
        )
    )


def add_spec(spec):
    """Register a ready :class:`BackboneSpec` under its name."""
    if spec.name in _REGISTRY:
        _VERSION[0] += 1
    _REGISTRY[spec.name] = spec


def register_source(name, resolve, *, known=None):
    """Register a family of names that no table lists (``"timm/<name>"``, hub ids...).

    ``resolve(name, modality) -> BackboneSpec or None`` answers for the names it owns
    (``modality`` is the caller's need, or None); sources are asked in registration
    order after the exact names. ``known() -> list of str`` feeds did-you-mean hints.
    """
    if any(s.name == name for s in _SOURCES):
        _VERSION[0] += 1
    _SOURCES[:] = [s for s in _SOURCES if s.name != name] + [_Source(name, resolve, known or list)]


def resolve_backbone(backbone, modality=None):
    """The :class:`BackboneSpec` for a name or path, without loading anything heavy.

    Raises ``BackboneNotFoundError`` (with the closest known names) when no registered
    name or source owns it.
    """
    if isinstance(backbone, os.PathLike):
        backbone = os.fspath(backbone)
    if not isinstance(backbone, str):
        raise InvalidInputError(
            f"backbone must be a name, a path, an nn.Module or a Backbone; got {type(backbone).__name__}."
        )
    spec = _REGISTRY.get(backbone)
    if spec is not None:
        return spec
    for source in _SOURCES:
        spec = source.resolve(backbone, modality)
        if spec is not None:
            return spec
    raise unknown_backbone_error(backbone, list(_REGISTRY) + [n for s in _SOURCES for n in s.known()])


def registered_names(modality=None):
    """The exact names registered, optionally of one modality."""
    return [n for n, s in _REGISTRY.items() if modality is None or s.modality == modality]


def list_backbones(modality=None, offline=None):
    """The registered backbones as a DataFrame.

    Columns: name, modality, source, offline, input_size (pixels; None for text),
    dim (feature width), params_m (millions of parameters), speed (a CPU speed class:
    "fast", "medium" or "slow") and description. Besides these, any
    ``"timm/<name>"``, any supported torchvision classification model, any Hugging
    Face or sentence-transformers encoder id, a local model folder and an
    ``nn.Module`` are accepted.

    Parameters
    ----------
    modality : {"image", "text"}, default=None
        Keep only backbones of this kind.
    offline : bool, default=None
        Keep only those whose default weights do (True) or do not (False) load
        without internet access.
    """
    import pandas as pd

    columns = ["name", "modality", "source", "offline", "input_size", "dim", "params_m", "speed"]
    rows = [
        {
            "name": s.name,
            "modality": s.modality,
            "source": s.source,
            "offline": bool(s.is_offline()),
            "input_size": s.data_config.input_size if s.data_config else None,
            "dim": s.dim,
            "params_m": s.params_m,
            "speed": s.speed,
            "description": s.description,
        }
        for s in _REGISTRY.values()
    ]
    frame = pd.DataFrame(rows, columns=columns + ["description"]).astype(
        {"input_size": "Int64", "dim": "Int64"}
    )
    if modality is not None:
        frame = frame[frame["modality"] == modality]
    if offline is not None:
        frame = frame[frame["offline"] == offline]
    return frame.reset_index(drop=True)


def backbone_modality(backbone):
    """The modality of ``backbone`` without loading weights, or None when unknown."""
    if isinstance(backbone, Backbone):
        return backbone.modality
    if isinstance(backbone, nn.Module):
        return "image"
    try:
        return resolve_backbone(backbone).modality
    except Exception:  # unknown names fail later, in fit, with the full message
        return None


def load_backbone(backbone, weights="default", modality=None, *, remember=True):
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
    remember : bool, default=True
        Keep the first load of a name in this process and hand out copies of it
        afterwards (see :func:`clear_loaded_backbones`); False loads afresh and keeps
        nothing.
    """
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ValueError(f"weights={weights!r} must be 'default', None, a weight name or a file path.")
    if isinstance(weights, str) and weights.lower() == "default":
        weights = "default"
    # Random initialisation (weights=None, new heads) must neither consume nor depend on the
    # caller's global RNG: seed a forked generator so repeated fits build identical networks.
    with seeded_rng(0):
        key = memo_key(backbone, weights, _VERSION[0]) if remember else None
        loaded = remembered(key, lambda: _load(backbone, weights, modality))
    if modality is not None and loaded.modality != modality:
        fix = {"text": "TextEmbedder or TextClassifier", "image": "ImageEmbedder or ImageClassifier"}
        raise InvalidParameterError(
            f"backbone={_describe(backbone)} is {_a(loaded.modality)} backbone, but {_a(modality)} "
            f"backbone is needed here; use {fix.get(loaded.modality, 'a matching estimator')}."
        )
    return loaded


def _load(backbone, weights, modality):
    if isinstance(backbone, Backbone):
        return copy.deepcopy(backbone)
    if isinstance(backbone, nn.Module):
        return from_module(copy.deepcopy(backbone))
    spec = resolve_backbone(backbone, modality)
    if is_weights_file(weights):
        return load_weights_into(spec.loader(None), weights)
    if weights not in ("default", None) and not spec.weight_names:
        raise ValueError(
            f"weights={weights!r} for backbone {spec.name!r}: use 'default' (pretrained), None "
            "(random initialisation) or a local .safetensors/.pth file."
        )
    return spec.loader(weights)


def _a(word):
    return ("an " if word[0] in "aeiou" else "a ") + word


def _describe(backbone):
    return repr(backbone) if isinstance(backbone, str) else type(backbone).__name__
