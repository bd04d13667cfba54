"""What skorch iterates over: labelled samples, with per-sample metadata."""

import torch


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
