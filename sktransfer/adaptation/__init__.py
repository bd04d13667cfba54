"""Domain adaptation: a labelled source domain, an unlabelled target domain.

:class:`DomainAdaptedClassifier` adapts on frozen features (and takes any skada
adapter); the fine-tuning estimators adapt deeply with their ``adaptation``
parameter and ``fit(X, y, sample_domain=...)``.
"""

from .._domains import encode_source_labels
from ._classifier import DomainAdaptedClassifier

__all__ = ["DomainAdaptedClassifier", "encode_source_labels"]
