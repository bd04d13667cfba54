"""Selecting samples from any accepted input collection."""

import numpy as np


def subset(X, indices):
    """``X[indices]`` for a list or an array of inputs (an array batch stays an array);
    ``X`` itself, uncopied, when ``indices`` selects every sample in order."""
    if len(indices) == len(X) and np.array_equal(indices, np.arange(len(X))):
        return X
    if isinstance(X, np.ndarray):
        return X[indices]
    return [X[i] for i in indices]
