"""The numerical steps of the label-free adaptation on frozen features: per-domain
normalisation, class-balanced self-training, and the cluster check that refines it."""

import numpy as np

from .._domains import balanced_top

# Self-training's schedule: the share of target rows pseudo-labelled in each round.
ROUNDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def is_unit_norm(features, tol=1e-3):
    """Whether every row lies on the unit sphere (sentence encoders' normalised outputs)."""
    norms = np.linalg.norm(features, axis=1)
    return bool(np.all(np.abs(norms - 1.0) < tol))


class DomainNormalizer:
    """Each domain's features centred on its own mean and, unless the features are
    unit-norm embeddings, scaled to unit variance by its own deviations: the shift of
    the domain's first two moments is removed, as AdaBN does inside a network.

    Unit-norm sentence embeddings are only centred: their per-dimension variances carry
    little signal and standardising them amplifies noise (measured: SST-2 -> Yelp 0.872
    standardised, 0.890 centred).
    """

    def __init__(self, scale):
        self.scale = scale
        self.stats_ = {}

    def fit(self, features, domains):
        for domain in np.unique(domains):
            rows = features[domains == domain]
            self.stats_[int(domain)] = self._moments(rows)
        return self

    def _moments(self, rows):
        mean = rows.mean(axis=0)
        std = rows.std(axis=0) if self.scale else np.ones(rows.shape[1])
        return mean, np.where(std > 1e-12, std, 1.0)

    def transform(self, features, domains):
        out = np.empty_like(features, dtype=np.float64)
        for domain in np.unique(domains):
            rows = domains == domain
            mean, std = self.stats_.get(int(domain)) or self._moments(features[rows])
            out[rows] = (features[rows] - mean) / std
        return out


def self_train(make_classifier, source, y, target, rounds=ROUNDS):
    """Fit on the source, then refit on the source plus the confidently pseudo-labelled
    target rows, a growing share each round. The chosen rows weigh as much in total as
    the whole target would, whatever their number.

    ``y`` holds class indices 0..k-1. Returns the last fitted classifier.
    """
    classifier = make_classifier().fit(source, y)
    for fraction in rounds:
        rows, labels = balanced_top(classifier.predict_proba(target), fraction)
        if not len(rows):
            continue
        weights = np.concatenate([np.ones(len(source)), np.full(len(rows), len(target) / len(rows))])
        classifier = make_classifier().fit(
            np.vstack([source, target[rows]]),
            np.concatenate([y, classifier.classes_[labels]]),
            sample_weight=weights,
        )
    return classifier
