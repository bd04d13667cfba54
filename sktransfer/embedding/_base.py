"""What ImageEmbedder and TextEmbedder share: fit, the batched transform loop, pickling."""

import copy
import os
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from .._batches import run_batches
from .._device import PRECISIONS, autocast, fast_kernels, resolve_device, resolve_precision
from .._persistence import Portable, load_bytes_into, tensors_to_bytes
from .._pooling import POOLINGS, pool
from .._validation import check_option, did_you_mean
from ..backbones import backbone_modality, load_backbone
from ..data import adapter_class, adapter_for, inference_batches, subset
from ._cache import backbone_digest, open_cache

# The fitted attributes both embedders share, for their docstrings.
ATTRIBUTES = """
    Attributes
    ----------
    backbone_ : Backbone
        The loaded network (frozen, eval mode).
    pooling_ : str
        The pooling in force (``"auto"`` resolved).
    normalize_ : bool
        Whether the output rows are L2-normalised (``"auto"`` resolved).
    layers_ : list of int or None
        The block indices whose outputs are pooled; None for the final features.
    device_ : torch.device
        Where the backbone runs.
    n_features_out_ : int
        Number of output features.
"""


class BaseEmbedder(Portable, ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class: a frozen backbone that turns inputs into a float32 feature matrix.

    Subclasses set ``_modality`` and may derive per-modality state from the loaded
    backbone in ``_setup``; everything about the inputs goes through the modality's
    adapter (:mod:`sktransfer.data`).
    """

    _modality = None

    _parameter_constraints = {
        "backbone": [str, os.PathLike, nn.Module],
        "weights": [None, str, os.PathLike],
        "pooling": [StrOptions(set(POOLINGS))],
        "layers": [None, str, Integral, list, tuple],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "precision": [StrOptions(set(PRECISIONS))],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "normalize": ["boolean", StrOptions({"auto"})],
        "cache": [None, str, os.PathLike],
        "verbose": ["verbose"],
    }

    def fit(self, X, y=None):
        """Load the backbone (weights, preprocessing, device); ``X`` is only checked.

        Parameters
        ----------
        X : inputs
            Images or texts (see the class docstring). Nothing is learned from them:
            the backbone is pretrained and stays frozen.
        y : ignored

        Returns
        -------
        self : object
        """
        check_option(type(self).__name__, "pooling", self.pooling, POOLINGS)
        check_option(type(self).__name__, "precision", self.precision, PRECISIONS)
        self._validate_params()
        backbone = load_backbone(self.backbone, self.weights, modality=self._modality)
        self._setup(backbone)
        adapter = adapter_for(self, backbone)
        adapter.check(X, type(self).__name__, self, reset=True)
        self.backbone_ = backbone.eval().requires_grad_(False)
        self.pooling_ = backbone.default_pooling if self.pooling == "auto" else self.pooling
        self.normalize_ = (
            getattr(backbone, "unit_norm", False) if self.normalize == "auto" else self.normalize
        )
        self.layers_ = self._resolve_layers(backbone)
        self._move_to(resolve_device(self.device), adapter)
        try:
            sample = self._embed(adapter, adapter.sample())
        except ValueError as exc:  # e.g. pooling='cls' on a CNN
            raise InvalidParameterError(f"{type(self).__name__}: {exc}") from None
        self.n_features_out_ = sample.shape[1]
        self._backbone_digest_ = backbone_digest(self.backbone_) if self.cache is not None else None
        return self

    def transform(self, X):
        """Embed ``X`` in batches.

        Parameters
        ----------
        X : inputs
            Images or texts (see the class docstring).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out), dtype float32
        """
        adapter, X = self._ready(X)
        out = np.empty((len(X), self.n_features_out_), dtype=np.float32)
        cache = open_cache(self, X)  # None without cache=
        todo = np.arange(len(X)) if cache is None else cache.load(out)  # load fills in the hits

        def store(indices, rows):
            out[todo[indices]] = rows
            if cache is not None:
                cache.store(todo[indices], rows)

        with fast_kernels(self.device_):
            run_batches(
                lambda inputs: self._embed(adapter, inputs),
                inference_batches(adapter, self, subset(X, todo), todo) if len(todo) else (),  # misses
                total=len(X),
                initial=len(X) - len(todo),
                store=store,
                device=self.device_,
                owner=type(self).__name__,
                verbose=self.verbose,
            )
        return out

    def _embed(self, adapter, inputs):
        dtype = resolve_precision(self.device_, self.precision)
        with torch.inference_mode(), autocast(self.device_, dtype):
            outputs = self._forward_blocks(adapter, adapter.to_device(inputs, self.device_))
            pooled = torch.cat([pool(f, self.pooling_, mask) for f, mask in outputs], dim=1).float()
            if self.normalize_:
                pooled = torch.nn.functional.normalize(pooled, dim=1)
        return pooled.cpu().numpy()

    def _forward_blocks(self, adapter, inputs):
        """Run the backbone; return ``[(features, mask)]`` for the final output or each layer."""
        if self.layers_ is None:
            return [adapter.forward(self.backbone_, inputs)]
        captured = {}
        handles = []
        for block in self.layers_:
            module = self.backbone_.block_output_module(self.backbone_.blocks[block])
            handles.append(module.register_forward_hook(_capture(captured, block)))
        try:
            _, mask = adapter.forward(self.backbone_, inputs)
        finally:
            for handle in handles:
                handle.remove()
        return [(captured[b], mask if captured[b].ndim == 3 else None) for b in self.layers_]

    def _resolve_layers(self, backbone):
        if self.layers is None:
            return None
        names = backbone.block_names()
        requested = [self.layers] if isinstance(self.layers, (str, Integral)) else list(self.layers)
        if not requested:
            raise InvalidParameterError(
                f"{type(self).__name__}: layers=[] selects nothing; use None for the final features."
            )
        resolved = []
        for layer in requested:
            if isinstance(layer, Integral) and -len(names) <= layer < len(names):
                resolved.append(layer % len(names))
            elif isinstance(layer, str) and layer in names:
                resolved.append(names.index(layer))
            else:
                raise InvalidParameterError(
                    f"{type(self).__name__}: layers={layer!r} is not a block of backbone "
                    f"{backbone.name!r}.{did_you_mean(layer, names)} Its blocks, input side first, "
                    f"are {names} (integers index this list; -1 is the last)."
                )
        return resolved

    def _move_to(self, device, adapter):
        self.device_ = device
        adapter.place(self.backbone_, device)

    def _ready(self, X):
        """For a fitted embedder: the adapter (from the current parameters, e.g.
        ``max_length``), ``X`` checked, and the backbone on ``device``."""
        check_is_fitted(self, "backbone_")
        adapter = adapter_for(self, self.backbone_)
        X = adapter.check(X, type(self).__name__, self, reset=False)
        self._move_to(resolve_device(self.device), adapter)
        return adapter, X

    def _setup(self, backbone):
        """Per-modality state derived from the loaded backbone (preprocessing...)."""

    # ------------------------------------------------------- persistence
    _networks = ("backbone_",)

    def _pickle_state(self):
        state = self.__dict__.copy()
        backbone = state.get("backbone_")
        if backbone is not None and any(p.device.type != "cpu" for p in backbone.parameters()):
            state["backbone_"] = copy.deepcopy(backbone).cpu()
        # A fitted embedder pickled on a GPU machine must load on a CPU-only one.
        state.pop("device_", None)
        return state

    def _set_pickle_state(self, state):
        self.__dict__.update(state)
        if "backbone_" in state:
            self.device_ = torch.device("cpu")

    def _store_network(self, name, backbone):
        return tensors_to_bytes(backbone)

    def _restore_networks(self, stored):
        # Random weights, replaced at once by the stored ones: nothing worth keeping.
        backbone = load_backbone(self.backbone, None, modality=self._modality, remember=False)
        load_bytes_into(backbone, stored["backbone_"], type(self).__name__)
        self._setup(backbone)
        self.backbone_ = backbone.eval().requires_grad_(False)
        self.device_ = torch.device("cpu")

    @property
    def _n_features_out(self):
        return self.n_features_out_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        adapter = adapter_class(backbone_modality(self.backbone) or self._modality)
        tags.input_tags.two_d_array = adapter.tags["two_d_array"]
        tags.input_tags.string = adapter.tags["string"]
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _capture(store, key):
    def hook(module, args, output):
        store[key] = output[0] if isinstance(output, (tuple, list)) else output

    return hook
