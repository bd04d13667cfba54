"""Transductive zero-shot: adapt class descriptions to unlabelled inputs like those to classify.

Shared by the text and image zero-shot classifiers. The embeddings are centred on the
unlabelled inputs (the direction all of them share says nothing about the class), then a
logistic regression is self-trained on its most confident predictions for a few rounds,
which also calibrates the class priors to these inputs.
"""

from .._descriptions import unit
from .._domains import head_log_proba, self_train


class TransductiveMixin:
    """``_fit_adaptation`` sets ``center_`` and ``head_`` from unlabelled inputs (when the
    ``transductive`` parameter asks for it); ``_adapted_scores`` scores with them. Needs
    ``prototypes_``, ``classes_`` and the ``transductive`` and ``rounds`` parameters."""

    def _fit_adaptation(self, inputs, embed, owner, kind):
        """Adapt to ``inputs`` (embedded by ``embed``) when transductive; else learn nothing."""
        self.center_, self.head_ = None, None
        if not self.transductive:
            return
        if len(inputs) < 2 * len(self.classes_):
            raise ValueError(
                f"{owner}: transductive=True adapts to the {kind} given to fit, and got {len(inputs)}; "
                f"give at least {2 * len(self.classes_)} unlabelled {kind} like those to classify, "
                "or set transductive=False."
            )
        E = embed(inputs)
        self.center_ = E.mean(axis=0)
        if self.rounds:
            self.head_ = self_train(E, self._similarities(E), self.rounds)

    def _adapted_scores(self, E, scale):
        """Per-class scores of the embeddings ``E``: the self-trained head's log-probabilities,
        or the (centred) cosine similarities times ``scale``."""
        if getattr(self, "head_", None) is None:
            return scale * self._similarities(E)
        return head_log_proba(self.head_, E, len(self.classes_))

    def _similarities(self, E):
        """Cosine similarity of each input to each class, centred on the fit inputs when known."""
        if getattr(self, "center_", None) is not None:
            E = E - self.center_
            prototypes = unit(self.prototypes_ - self.prototypes_.mean(axis=0))
        else:
            prototypes = self.prototypes_
        return unit(E) @ prototypes.T
