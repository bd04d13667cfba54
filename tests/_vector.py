"""A vector modality for scikit-learn's estimator checks, which feed 2-D float arrays.

Images and texts are not 2-D arrays, so the checks would skip every embedder. Here a
small fixed random MLP over numeric vectors is registered as the backbone
``"tiny_vector_mlp"`` with an adapter for its inputs, and ``VectorImageEmbedder`` /
``VectorTextEmbedder`` run the production embedders' code (fit, batching, pooling,
cache, pickling, ``set_output``) on it. Nothing of it lives in the package.
"""

import numpy as np
import torch
from sklearn.utils.validation import validate_data
from torch import nn

from sktransfer import ImageEmbedder, TextEmbedder
from sktransfer.backbones import Backbone, Block, register_backbone
from sktransfer.data import register_adapter


class VectorBackbone(Backbone):
    """A fixed random MLP whose weights depend only on the number of input features."""

    modality = "vector"

    def __init__(self, n_outputs=8, seed=0):
        super().__init__(nn.Identity(), name="tiny_vector_mlp", blocks=[], default_pooling="avg")
        self.n_outputs = n_outputs
        self.seed = seed
        self.layer = None

    def build(self, n_features_in):
        generator = torch.Generator().manual_seed(self.seed)
        layer = nn.Linear(n_features_in, self.n_outputs)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator))
            layer.weight.mul_(n_features_in**-0.5)
            layer.bias.zero_()
        self.layer = layer
        self.model = nn.Sequential(layer, nn.Tanh())
        self.blocks = [Block("linear", ["0"]), Block("activation", ["1"])]
        return self

    def forward(self, x):
        return self.model(x)


class VectorAdapter:
    """2-D float arrays, checked the scikit-learn way (``n_features_in_``)."""

    modality = "vector"
    tags = {"two_d_array": True, "string": False}

    def __init__(self, backbone):
        self.backbone = backbone

    @classmethod
    def from_estimator(cls, estimator, backbone):
        return cls(backbone)

    def check(self, X, owner, estimator=None, reset=False):
        X = validate_data(estimator, X, dtype=np.float32, reset=reset)
        if reset:
            self.backbone.build(estimator.n_features_in_)
        return X

    def batches(self, X, *, batch_size, num_workers=0, pin_memory=False, positions=None):
        for start in range(0, len(X), batch_size):
            stop = min(start + batch_size, len(X))
            yield np.arange(start, stop), torch.from_numpy(X[start:stop])

    def sample(self):
        return torch.zeros((1, self.backbone.layer.in_features))

    @staticmethod
    def to_device(batch, device):
        return batch.to(device)

    def forward(self, backbone, batch):
        return backbone(batch), None

    @staticmethod
    def place(module, device):
        return module.to(device)


class VectorImageEmbedder(ImageEmbedder):
    _modality = "vector"


class VectorTextEmbedder(TextEmbedder):
    _modality = "vector"


def register():
    register_backbone(
        "tiny_vector_mlp",
        lambda weights: VectorBackbone(),
        modality="vector",
        source="test",
        description="fixed random MLP over numeric vectors, for estimator checks",
        is_offline=lambda: True,
    )
    register_adapter("vector", VectorAdapter)
