"""The network that fine-tuning trains: a backbone, a pooling and a new head.

Backbone and head stay separate modules so that a second head (multi-task) or a
second loss on the pooled features (domain adaptation) can be added later.
"""

from torch import nn

from .._device import autocast
from .._pooling import pool


class Head(nn.Module):
    """Pooled features -> outputs. Optionally L2-normalises and rescales its input first
    (what sentence-transformers models expect: their embeddings live on the unit sphere)."""

    def __init__(self, in_features, out_features, *, unit_norm_input=False, scale=20.0):
        super().__init__()
        self.unit_norm_input = unit_norm_input
        self.scale = scale
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, features, return_features=False):
        """Logits; with ``return_features``, ``(logits, features)`` as :class:`TransferModel`
        returns them (the frozen-backbone shortcut trains this module on its own)."""
        logits = self.linear(
            nn.functional.normalize(features, dim=1) * self.scale if self.unit_norm_input else features
        )
        return (logits, features) if return_features else logits


class TransferModel(nn.Module):
    """backbone -> pooling -> head, with preprocessing and mixed precision inside.

    Image inputs arrive as uint8 batches and are scaled on the device; text inputs
    as token dicts.
    """

    def __init__(self, backbone, head, *, pooling, adapter, autocast_dtype=None):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.pooling = pooling
        self.adapter = adapter  # the modality's inputs -> the backbone's arguments
        self.aux = nn.ModuleDict()  # modules that loss terms train beside the head (DANN's discriminator)
        self.autocast_dtype = autocast_dtype

    def features(self, inputs):
        """Pooled backbone features for a batch (a uint8 image tensor or a token dict)."""
        features, mask = self.adapter.forward(self.backbone, inputs)
        return pool(features, self.pooling, mask)

    def forward(self, inputs=None, return_features=False, **tokens):
        """Logits for ``inputs``: images or a token dict (also accepted as keywords, which is
        how skorch passes dict batches). With ``return_features``, ``(logits, pooled
        features)``: what loss terms on the features need."""
        inputs = tokens if inputs is None else inputs
        device = (inputs["input_ids"] if isinstance(inputs, dict) else inputs).device
        with autocast(device, self.autocast_dtype):
            features = self.features(inputs).float()
            logits = self.head(features).float()
        return (logits, features) if return_features else logits

    def train(self, mode=True):
        """Train mode for the head and the trainable blocks only.

        Frozen blocks run in eval mode (no dropout: a frozen feature extractor gives
        the same features every epoch, which is what makes precomputing them exact).
        BatchNorm statistics stay frozen everywhere: with a few hundred images,
        re-estimating them on small batches hurts (the classic Keras fine-tuning
        pitfall), so the pretrained statistics are kept in every block.
        """
        super().train(mode)
        if not mode:
            return self
        for block in self.backbone.blocks:
            if not any(p.requires_grad for _, p in self.backbone.block_parameters(block)):
                for module in self.backbone.block_modules(block):
                    module.eval()
        for module in self.backbone.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self
