"""What skorch iterates over: labelled samples, with per-sample metadata, and text collation."""

import torch
from torch.utils.data import default_collate


class Labelled(torch.utils.data.Dataset):
    """``(inputs[i], targets[i])`` pairs, the form skorch trains on; with ``weights``, the
    target side is a dict ``{"target": ..., "sample_weight": ...}`` (see ``TransferNet.get_loss``)."""

    def __init__(self, inputs, targets, weights=None):
        self.inputs = inputs
        self.targets = targets
        self.weights = weights

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        if self.weights is None:
            return self.inputs[index], self.targets[index]
        return self.inputs[index], {"target": self.targets[index], "sample_weight": self.weights[index]}


class TokenizingCollate:
    """Collate ``(text, target)`` pairs into ``(token dict, targets)``, padding per batch."""

    def __init__(self, tokenize, max_length):
        self.tokenize = tokenize
        self.max_length = max_length

    def __call__(self, batch):
        texts, targets = zip(*batch)
        return dict(self.tokenize(list(texts), self.max_length)), default_collate(list(targets))
