"""Classes described in words, put into sentences a sentence encoder reads well.

Shared by the zero-shot classifier (descriptions are its only knowledge of the classes)
and the few-shot text classifier (descriptions are extra labelled rows beside a handful
of real ones).
"""

from sklearn.utils._param_validation import InvalidParameterError

# Wordings that fit a class name or a short description of any topic.
DEFAULT_TEMPLATES = (
    "{}",
    "{}.",
    "This is {}.",
    "It is {}.",
    "It was {}.",
    "This text is {}.",
    "The text is {}.",
    "This one is {}.",
    "In a word: {}.",
    "Overall, {}.",
    "All in all, it is {}.",
    "Something {}.",
)


def described_texts(descriptions, templates, owner, param="labels"):
    """``{class: [texts]}``: each description of each class put into every template.

    ``descriptions`` maps a class to a string or a list of strings; ``templates`` is
    "default" (:data:`DEFAULT_TEMPLATES`), a list of wordings with ``{}``, or None (the
    descriptions as given). ``param`` names the parameter in errors.
    """
    templates = DEFAULT_TEMPLATES if templates == "default" else templates or ("{}",)
    for template in templates:
        if "{}" not in template:
            raise InvalidParameterError(f"{owner}: template {template!r} has no '{{}}' for the description.")
    described = {}
    for cls, words in descriptions.items():
        words = [words] if isinstance(words, str) else list(words)
        if not words or not all(isinstance(w, str) and w.strip() for w in words):
            raise InvalidParameterError(
                f"{owner}: {param}[{cls!r}] must be a non-empty string or list of strings, got {words!r}."
            )
        described[cls] = [t.format(w) for w in words for t in templates]
    return described
