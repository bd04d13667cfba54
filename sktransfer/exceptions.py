"""Errors raised by sktransfer.

Each error subclasses the builtin that a user would already catch for the same
situation (``ValueError`` for bad input, ``ImportError`` for a missing library,
``OSError`` for weights that cannot be fetched), so ``except ValueError`` keeps
working. Every constructor takes a single message so that errors raised inside
DataLoader worker processes survive the trip back to the main process.
"""

__all__ = [
    "BackboneNotFoundError",
    "DeviceUnavailableError",
    "ImageReadError",
    "ImageTransformError",
    "InvalidInputError",
    "MissingDependencyError",
    "WeightsUnavailableError",
]


class BackboneNotFoundError(ValueError):
    """The backbone name is not known to the registry."""


class WeightsUnavailableError(OSError):
    """Pretrained weights are neither cached locally nor downloadable."""


class MissingDependencyError(ImportError):
    """An optional library needed by this backbone is not installed."""


class DeviceUnavailableError(RuntimeError):
    """The requested device (for instance ``device="cuda"``) is not available."""


class InvalidInputError(ValueError):
    """``X`` cannot be turned into the inputs the backbone expects."""


class ImageReadError(InvalidInputError):
    """An image could not be opened or decoded; the message names the file and index."""


class ImageTransformError(InvalidInputError):
    """A transform (a user's ``augment`` callable) failed on an image; the message names
    the image's index and file, the transform and the original error."""
