"""Domain adaptation: a labelled source domain, an unlabelled target domain.

:class:`DomainAdaptedClassifier` adapts on frozen features (and takes any skada
adapter); the fine-tuning estimators adapt deeply with their ``adaptation``
parameter and ``fit(X, y, sample_domain=...)``; :class:`SelfTrainedHead` keeps a fitted
model's features and self-trains a new head on new inputs (an update after drift).
"""

from .._domains import encode_source_labels
from ._classifier import DomainAdaptedClassifier
from ._head import SelfTrainedHead

__all__ = ["DomainAdaptedClassifier", "SelfTrainedHead", "encode_source_labels"]
