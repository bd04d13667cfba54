"""Selecting samples from any accepted input collection."""

import numpy as np


def subset(X, indices):
    """``X[indices]`` for a list or an array of inputs (an array batch stays an array)."""
    if isinstance(X, np.ndarray):
        return X[indices]
    return [X[i] for i in indices]
