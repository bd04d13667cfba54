"""Parameter checks whose error messages name the parameter, the value and the fix."""

import difflib
import os
import sys

from sklearn.utils._param_validation import InvalidParameterError


def closest_names(name, candidates, n=3):
    """Return up to ``n`` candidates that look like ``name`` (for 'did you mean')."""
    return difflib.get_close_matches(str(name), [str(c) for c in candidates], n=n, cutoff=0.5)


def did_you_mean(name, candidates):
    """A ' Did you mean ...?' suffix, or an empty string when nothing is close."""
    close = closest_names(name, candidates)
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def check_option(owner, param, value, options):
    """Raise ``InvalidParameterError`` unless ``value`` is one of ``options``."""
    if value in options:
        return value
    listed = ", ".join(repr(o) for o in options)
    raise InvalidParameterError(
        f"{owner}: {param}={value!r} is not one of {listed}.{did_you_mean(value, options)}"
    )


def user_stacklevel():
    """The ``stacklevel`` of a warning, called from the function that warns, that points
    at the first caller outside this package and scikit-learn (whose wrappers, such as
    ``set_output``'s or a ``Pipeline``'s, stand between the user's line and ours)."""
    import sklearn

    skipped = tuple(
        os.path.dirname(os.path.abspath(module.__file__)) + os.sep
        for module in (sys.modules[__package__], sklearn)
    )
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(skipped):
        frame, level = frame.f_back, level + 1
    return level
