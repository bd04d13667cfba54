"""Watching a model's inputs in production: two-sample drift tests, per batch or per window."""

from ._detector import DriftDetector, DriftResult
from ._plot import plot_drift

__all__ = ["DriftDetector", "DriftResult", "plot_drift"]
