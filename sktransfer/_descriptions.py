"""Classes described in words, put into sentences a sentence encoder reads well.

Shared by the zero-shot classifiers, text and image (descriptions are their only
knowledge of the classes), and TextClassifier's ``class_descriptions`` (extra labelled
rows beside a handful of real ones).
"""

import numpy as np
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


def resolved_templates(templates):
    """The wordings that ``templates`` ("default", a list, or None) puts each description into."""
    return DEFAULT_TEMPLATES if templates == "default" else templates or ("{}",)


def described_texts(descriptions, templates, owner, param="labels"):
    """``{class: [texts]}``: each description of each class put into every template.

    ``descriptions`` maps a class to a string or a list of strings; ``templates`` is
    "default" (:data:`DEFAULT_TEMPLATES`), a list of wordings with ``{}``, or None (the
    descriptions as given). ``param`` names the parameter in errors.
    """
    templates = resolved_templates(templates)
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


def classes_and_descriptions(labels, y, templates, owner):
    """``(classes_, {class: [texts]})`` of a zero-shot classifier: the classes of
    ``labels`` (a list of names, or ``{class: description(s)}``), or the distinct values
    of ``y`` named as written when ``labels`` is None; classes sorted, as scikit-learn's
    scorers assume (the positive class of roc_auc is the last)."""
    if labels is None:
        if y is None:
            raise ValueError(
                f"{owner}: give the classes as labels=[...] or labels={{class: description}}, "
                "or pass y to fit (only its distinct values are read)."
            )
        labels = {c: str(c) for c in np.unique(np.asarray(y))}
    elif not isinstance(labels, dict):
        labels = {name: name for name in labels}
    if len(labels) < 2:
        raise InvalidParameterError(f"{owner}: labels needs at least two classes, got {len(labels)}.")
    described = described_texts(labels, templates, owner)
    classes = np.unique(np.asarray(list(described)))
    if len(classes) != len(described):
        raise InvalidParameterError(f"{owner}: labels names a class twice: {list(described)}.")
    return classes, {c: described[c] for c in classes.tolist()}


def class_prototypes(embed, described):
    """The unit-norm mean embedding of each class's texts, ``embed`` mapping a list of
    texts to an array (one pass over every text)."""
    groups = list(described.values())
    embedded = unit(np.asarray(embed([text for group in groups for text in group]), dtype=np.float32))
    edges = np.cumsum([0] + [len(group) for group in groups])
    return unit(np.stack([embedded[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])]))


def vocabulary_words(tokenizer):
    """The whole lower-case words of three letters or more in ``tokenizer``'s vocabulary,
    sorted: the candidates of label-word expansion. Word-start markers (SentencePiece's
    "▁", byte-level BPE's "Ġ") are dropped; pieces inside a word ("##ing") are not words."""
    words = {token.lstrip("▁Ġ") for token in tokenizer.get_vocab()}
    return sorted(w for w in words if len(w) >= 3 and w.isalpha() and w.islower())


def expanded_prototypes(prototypes, counts, words, embedded, per_class):
    """Label-word expansion: ``([words of each class], prototypes)``.

    Each class gains the ``per_class`` words whose embedding is closest to its prototype
    relative to the nearest other class's (the largest positive margin, so a word goes
    to one class at most), and each word counts as one more description of the class:
    the new prototype is the unit-norm sum of ``counts[c]`` times the old one and the
    words' unit embeddings. The encoder's own vocabulary serves as the knowledge base
    that Hu et al. (2022, "knowledgeable prompt-tuning") draw related label words from.
    """
    embedded = unit(np.asarray(embedded, dtype=np.float32))
    similarity = embedded @ prototypes.T
    chosen, expanded = [], []
    for c in range(len(prototypes)):
        margin = similarity[:, c] - np.delete(similarity, c, axis=1).max(axis=1)
        best = [i for i in np.argsort(-margin, kind="stable")[:per_class] if margin[i] > 0]
        chosen.append([words[i] for i in best])
        expanded.append(counts[c] * prototypes[c] + embedded[best].sum(axis=0))
    return chosen, unit(np.stack(expanded))


class ScoredClassesMixin:
    """``decision_function``, ``predict_proba`` and ``predict`` from ``_scores(X)``, one
    log-probability-like score per class in ``classes_``."""

    def decision_function(self, X):
        """Per-class scores; for two classes, the second's minus the first's."""
        scores = self._scores(X)
        return scores[:, 1] - scores[:, 0] if len(self.classes_) == 2 else scores

    def predict_proba(self, X):
        """Class probabilities (a softmax of the per-class scores)."""
        scores = self._scores(X)
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each input."""
        return self.classes_[self._scores(X).argmax(axis=1)]


def unit(M):
    """Rows scaled to unit length (cosine similarity is then a dot product)."""
    return M / np.linalg.norm(M, axis=-1, keepdims=True).clip(min=1e-12)
