"""Tiny backbones for fast tests and examples: random, deterministic, offline.

They have the same interfaces as the real ones (blocks, preprocessing,
tokenizer), so behaviour tests run in milliseconds on a CPU.
"""

import torch
from torch import nn

from .._device import seeded_rng
from ._base import Block, DataConfig, ImageBackbone
from ._registry import register_backbone
from ._text import TextBackbone, encoder_blocks

_TINY_CNN_CONFIG = DataConfig(input_size=32, crop_pct=1.0, interpolation="bilinear")
_TINY_CNN_BLOCKS = ("stem", "stage1", "stage2")


def _seeded(build, seed=0):
    """Build a module from a fixed seed without touching the global RNG."""
    with seeded_rng(seed):
        return build()


class _TinyCNN(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU())
        self.classifier = nn.Linear(32, num_classes)

    def forward(self, x):
        return self.stage2(self.stage1(self.stem(x)))


def load_tiny_cnn(weights):
    return ImageBackbone(
        _seeded(_TinyCNN),
        name="tiny_cnn",
        data_config=_TINY_CNN_CONFIG,
        blocks=[Block(n, [n]) for n in _TINY_CNN_BLOCKS],
    )


class ByteTokenizer:
    """UTF-8 bytes as token ids (0 is padding, 1 is the start token): no vocabulary file."""

    model_max_length = 128
    pad_token_id = 0
    all_special_ids = [0, 1]

    def convert_ids_to_tokens(self, ids):
        return ["<pad>" if i == 0 else "<s>" if i == 1 else chr(i - 2) for i in ids]

    def __call__(self, texts, padding=True, truncation=True, max_length=None, return_tensors="pt"):
        max_length = max_length or self.model_max_length
        rows = [[1] + [b + 2 for b in t.encode("utf-8")][: max_length - 1] for t in texts]
        width = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}


class _TinyEncoder(nn.Module):
    def __init__(self, dim=16, layers=2):
        super().__init__()
        self.embeddings = nn.Embedding(258, dim, padding_idx=0)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
            for _ in range(layers)
        )

    def forward(self, input_ids, attention_mask):
        x = self.embeddings(input_ids)
        padding = attention_mask == 0
        for layer in self.layers:
            x = layer(x, src_key_padding_mask=padding)
        return x


def load_tiny_text(weights):
    model = _seeded(_TinyEncoder).eval()
    return TextBackbone(
        model, ByteTokenizer(), name="tiny_text", blocks=encoder_blocks(model), max_length=128
    )


register_backbone(
    "tiny_cnn",
    load_tiny_cnn,
    modality="image",
    source="test",
    description="3-block random CNN on 32 px images, for tests",
    is_offline=lambda: True,
    data_config=_TINY_CNN_CONFIG,
    default_pooling="avg",
    blocks=_TINY_CNN_BLOCKS,
    dim=32,
)
register_backbone(
    "tiny_text",
    load_tiny_text,
    modality="text",
    source="test",
    description="2-layer random byte-level encoder, for tests",
    is_offline=lambda: True,
    default_pooling="avg",
    blocks=("embeddings", "layers.0", "layers.1"),
    dim=16,
)
