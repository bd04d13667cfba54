"""matplotlib, imported when a plot is asked for: it is an optional dependency."""

from .exceptions import MissingDependencyError


def pyplot(caller):
    """``matplotlib.pyplot``, or an error saying which extra brings it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError(
            f"{caller} draws with matplotlib. Install it with: pip install 'sktransfer[explain]'"
        ) from None
    return plt
