"""What skorch iterates over: labelled samples, with per-sample metadata."""

import torch


class Labelled(torch.utils.data.Dataset):
    """``(inputs[i], targets[i])`` pairs, the form skorch trains on; with ``weights`` (and
    ``domains``, for domain adaptation), the target side is a dict ``{"target": ...,
    "sample_weight": ..., "domain": ...}`` (see ``TransferNet.loss_and_terms``)."""

    def __init__(self, inputs, targets, weights=None, domains=None):
        self.inputs = inputs
        self.targets = targets
        self.weights = weights
        self.domains = domains
        # labels of target rows, set during training by pseudo-labelling (-1: none)
        self.pseudo = None if domains is None else torch.full((len(targets),), -1, dtype=torch.long)

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, index):
        if self.weights is None:
            return self.inputs[index], self.targets[index]
        target = {"target": self.targets[index], "sample_weight": self.weights[index]}
        if self.domains is not None:
            target["domain"] = self.domains[index]
            target["pseudo"] = self.pseudo[index]
        return self.inputs[index], target

    def labelled_targets(self):
        """The targets of the labelled (source) rows and their weights (None: unweighted):
        what class weights are computed from."""
        rows = slice(None) if self.domains is None else self.domains > 0
        return self.targets[rows], None if self.weights is None else self.weights[rows]
