"""Modality adapters: what the embedders and the estimators need to know about a kind of input.

One adapter per modality, shared by both: it checks ``X``, cuts it into batches for
inference and into items for training, collates, gives a sample for shape probing,
turns a batch into the backbone's arguments on a device and places the backbone there.
The embedders and estimators pick the adapter by the backbone's modality
(:func:`adapter_class`); a new modality registers one with :func:`register_adapter`.
"""

import torch

from .._device import place_image_model
from ._images import ImageDataset, eval_transform, image_batches, image_inputs, to_model_input
from ._subset import subset
from ._text import TextCollate, text_batches, text_inputs
from ._text_augment import AugmentedTexts

_ADAPTERS = {}


def register_adapter(modality, adapter):
    """Make ``adapter`` (a class with ``from_estimator(estimator, backbone)``) serve ``modality``."""
    _ADAPTERS[modality] = adapter


def adapter_class(modality):
    """The adapter class registered for ``modality``."""
    return _ADAPTERS[modality]


def adapter_for(estimator, backbone):
    """The adapter for ``backbone``'s inputs, configured by ``estimator``'s parameters."""
    return adapter_class(backbone.modality).from_estimator(estimator, backbone)


def inference_batches(adapter, estimator, X, positions=None):
    """``adapter``'s inference batches of ``X`` with ``estimator``'s ``batch_size``,
    ``num_workers`` and device (pinned memory for CUDA)."""
    return adapter.batches(
        X,
        batch_size=estimator.batch_size,
        num_workers=estimator.num_workers,
        pin_memory=estimator.device_.type == "cuda",
        positions=positions,
    )


class ImageAdapter:
    """Images: paths, PIL images, uint8 arrays; preprocessed by one ``DataConfig``."""

    modality = "image"
    tags = {"two_d_array": False, "string": False}

    def __init__(self, data_config):
        self.data_config = data_config

    @classmethod
    def from_estimator(cls, estimator, backbone):
        return cls(estimator.data_config_)

    @staticmethod
    def check(X, owner, estimator=None, reset=False):
        return image_inputs(X, owner)

    def batches(self, X, *, batch_size, num_workers=0, pin_memory=False, positions=None):
        """``(indices, uint8 batch)`` for inference, decoded in ``num_workers`` processes."""
        return image_batches(
            X,
            eval_transform(self.data_config),
            batch_size=batch_size,
            num_workers=num_workers,
            pin_memory=pin_memory,
            positions=positions,
        )

    def training_items(self, X, indices, transform):
        """A dataset of samples ``indices`` of ``X`` through ``transform`` (augmentation)."""
        return ImageDataset(subset(X, indices), transform, positions=indices)

    def collate(self):
        return None  # torch's default stacks the uint8 tensors

    def sample(self):
        size = self.data_config.input_size
        return torch.zeros((1, 3, size, size), dtype=torch.uint8)

    @staticmethod
    def to_device(batch, device):
        return batch.to(device, non_blocking=True)

    def forward(self, backbone, batch):
        """``(unpooled features, mask)`` of a batch already on the backbone's device."""
        return backbone(to_model_input(batch, self.data_config, batch.device)), None

    @staticmethod
    def place(module, device):
        return place_image_model(module, device)


class TextAdapter:
    """Texts: lists, arrays or Series of ``str``; tokenized by the backbone's tokenizer."""

    modality = "text"
    tags = {"two_d_array": False, "string": True}

    def __init__(self, tokenize, max_length=None):
        self.tokenize = tokenize
        self.max_length = max_length

    @classmethod
    def from_estimator(cls, estimator, backbone):
        return cls(backbone.tokenize, estimator.max_length)

    @staticmethod
    def check(X, owner, estimator=None, reset=False):
        return text_inputs(X, owner)

    def batches(self, X, *, batch_size, num_workers=0, pin_memory=False, positions=None):
        """``(indices, token dict)``, longest texts first (indices put rows back in order)."""
        return text_batches(
            X,
            self.tokenize,
            batch_size=batch_size,
            max_length=self.max_length,
            num_workers=num_workers,
            pin_memory=pin_memory,
        )

    def training_items(self, X, indices, transform=None):
        texts = subset(X, indices)  # tokenized per batch by collate()
        return texts if transform is None else AugmentedTexts(texts, transform)

    def collate(self):
        return TextCollate(self.tokenize, self.max_length)

    def sample(self):
        return dict(self.tokenize(["sample"], self.max_length))

    @staticmethod
    def to_device(batch, device):
        return {k: v.to(device, non_blocking=True) for k, v in batch.items()}

    def forward(self, backbone, batch):
        return backbone(**batch), batch["attention_mask"]

    @staticmethod
    def place(module, device):
        return module.to(device)


register_adapter("image", ImageAdapter)
register_adapter("text", TextAdapter)
