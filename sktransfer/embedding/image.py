"""ImageEmbedder: a frozen vision backbone as a scikit-learn transformer."""

from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .._batches import run_batches
from .._device import autocast, resolve_precision
from ..data import inference_batches, to_model_input
from ._base import ATTRIBUTES, BaseEmbedder


class ImageEmbedder(BaseEmbedder):
    __doc__ = (
        """Turn images into feature vectors with a pretrained, frozen network.

    Parameters
    ----------
    backbone : str, path, nn.Module or Backbone, default="efficientnet_lite0"
        A registered name (see :func:`sktransfer.backbones.list_backbones`), any
        supported torchvision model name, ``"timm/<name>"``, or your own module.
    weights : "default", None, str or path, default="default"
        "default": the pretrained weights; None: random initialisation (same
        architecture, for tests); a torchvision weight-enum name; or a local
        ``.safetensors``/state-dict file.
    pooling : {"auto", "avg", "max", "avg+max", "cls"}, default="auto"
        How feature maps (or tokens) become one vector; "auto" is the backbone's own
        (average for CNNs, the CLS token for ViTs).
    layers : None, str, int or list, default=None
        None: the final features. Otherwise block names or indices of
        ``backbone_.block_names()``; each block's output is pooled and the results
        concatenated.
    image_size : int, default=None
        Crop size in pixels; None keeps the backbone's (224 for most).
    batch_size : int, default=32
    device : "auto", "cpu", "cuda", "cuda:N", "mps" or torch.device, default="auto"
        "auto" picks a GPU when there is one.
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        "auto": bf16 (or fp16) autocast on GPUs, fp32 on the CPU.
    num_workers : int, default=0
        DataLoader worker processes that decode images in parallel.
    normalize : bool or "auto", default="auto"
        L2-normalise each output vector; "auto" follows the backbone (False for images).
    cache : None, str or path, default=None
        A directory in which to keep the features of each image, so that repeated
        transforms of the same images (cross-validation folds, grid-search
        candidates, reruns) reuse them instead of running the backbone again. The
        key covers the backbone and its weights, the preprocessing, pooling,
        layers, normalisation, precision and each image's content (a file's
        bytes, not its path; an array's or PIL image's pixels), so any change
        recomputes. Safe to share between processes. See ``docs/cache.md``.
    verbose : int, default=0
        Show a progress bar while transforming.
"""
        + ATTRIBUTES
        + """    data_config_ : DataConfig
        The preprocessing in force: input size, resize, interpolation, mean/std.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer import ImageEmbedder
    >>> model = make_pipeline(ImageEmbedder("efficientnet_lite0"), LogisticRegression())
    >>> model.fit(train_paths, train_labels).score(test_paths, test_labels)  # doctest: +SKIP
    """
    )

    _modality = "image"
    _parameter_constraints = {
        **BaseEmbedder._parameter_constraints,
        "image_size": [None, Interval(Integral, 8, None, closed="left")],
    }

    def __init__(
        self,
        backbone="efficientnet_lite0",
        *,
        weights="default",
        pooling="auto",
        layers=None,
        image_size=None,
        batch_size=32,
        device="auto",
        precision="auto",
        num_workers=0,
        normalize="auto",
        cache=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.pooling = pooling
        self.layers = layers
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.normalize = normalize
        self.cache = cache
        self.verbose = verbose

    def pretrained_logits(self, X):
        """Scores of the backbone's own pretrained classifier (e.g. the 1000 ImageNet classes).

        Only for backbones that kept their classification head, such as
        ``"efficientnet_lite0"`` and the torchvision models.
        """
        adapter, X = self._ready(X)
        dtype = resolve_precision(self.device_, self.precision)

        def logits(batch):
            with torch.inference_mode(), autocast(self.device_, dtype):
                x = to_model_input(batch, self.data_config_, self.device_)
                return self.backbone_.classify(x).float().cpu().numpy()

        chunks = []  # image batches come in input order
        run_batches(
            logits,
            inference_batches(adapter, self, X),
            total=len(X),
            store=lambda indices, rows: chunks.append(rows),
            device=self.device_,
            owner=type(self).__name__,
            verbose=self.verbose,
        )
        return np.concatenate(chunks)

    def _setup(self, backbone):
        if backbone.modality == "image":
            self.data_config_ = backbone.data_config.with_input_size(self.image_size)
