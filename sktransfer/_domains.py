"""What every adapting estimator shares: skada's ``sample_domain`` convention, checked,
and the pseudo-labelling steps of self-training (class-balanced choice, cluster
refinement, a logistic head self-trained on unlabelled rows)."""

import numpy as np
from sklearn.linear_model import LogisticRegression

# The cluster refinement is kept only when it agrees with the classifier this often:
# then the target's clusters are its classes, and their centres fix the border cases.
REFINE_AGREEMENT = 0.95


def check_sample_domain(sample_domain, n_samples, owner):
    """skada's convention checked: one integer per row, sources > 0, targets < 0, both present.

    Returns the domains as an int64 array.
    """
    domains = np.asarray(sample_domain)
    if domains.shape != (n_samples,):
        raise ValueError(
            f"{owner}: sample_domain has shape {domains.shape}; it needs one domain per sample "
            f"({n_samples},): a positive integer for each labelled source row, a negative one "
            "for each unlabelled target row."
        )
    if domains.dtype.kind not in "iu" and not (
        domains.dtype.kind == "f" and np.all(np.isfinite(domains)) and np.all(domains == np.round(domains))
    ):
        raise ValueError(
            f"{owner}: sample_domain must hold integers (source > 0, target < 0), got {domains.dtype}."
        )
    domains = domains.astype(np.int64)
    if np.any(domains == 0):
        index = int(np.flatnonzero(domains == 0)[0])
        raise ValueError(
            f"{owner}: sample_domain[{index}] is 0; use a positive integer for source rows and a "
            "negative one for target rows."
        )
    source = domains > 0
    if not source.any():
        raise ValueError(f"{owner}: sample_domain has no source row (> 0): nothing labelled to learn from.")
    if source.all():
        raise ValueError(
            f"{owner}: sample_domain has no target row (< 0): adaptation needs the unlabelled target "
            "rows in fit. Without them, fit without sample_domain."
        )
    return domains


def encode_source_labels(y, sample_domain):
    """Labels as skada's scorers and adapters need them: class indices on the source rows,
    ``-1`` on the target rows (whose labels are not read), and the classes, sorted.

    skada converts ``y`` to floats to find its masked rows, so string labels fail inside
    it; encode them with this first and decode predictions with ``classes[codes]``.

    Returns
    -------
    codes : ndarray of int64
    classes : ndarray
    """
    domains = check_sample_domain(sample_domain, len(y), "encode_source_labels")
    rows = np.flatnonzero(domains > 0)
    labels = take_rows(y, rows)
    classes, source_codes = np.unique(labels, return_inverse=True)
    codes = np.full(len(domains), -1, dtype=np.int64)
    codes[rows] = source_codes
    return codes, classes


def take_rows(y, rows):
    """``y``'s entries at ``rows`` as an array, reading no other row (lists, arrays, pandas).
    An object array (labels beside placeholders such as ``None``) comes back with its
    labels' own type, so that integer labels read as classes."""
    if hasattr(y, "iloc"):
        y = y.iloc[rows].to_numpy()
    elif isinstance(y, np.ndarray):
        y = y[rows]
    else:
        y = np.asarray([y[i] for i in rows])
    return np.asarray(y.tolist()) if y.dtype == object else y


def balanced_top(scores, fraction, shares=None, confidence=None, at_least=0):
    """Rows and labels of the ``fraction`` most confident rows, chosen per predicted class
    (the arg-max of ``scores``) in proportion to ``shares``: by default each class's
    share of the predictions, so that no class takes over round after round (the drift
    of plain self-training). ``confidence`` defaults to the highest score; each class
    gives at least ``at_least`` rows."""
    labels = scores.argmax(axis=1)
    confidence = scores.max(axis=1) if confidence is None else confidence
    chosen = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        size = fraction * len(rows) if shares is None else fraction * len(scores) * shares[c]
        chosen.append(rows[np.argsort(-confidence[rows], kind="stable")[: max(at_least, int(round(size)))]])
    rows = np.sort(np.concatenate(chosen))
    return rows, labels[rows]


def cluster_refine(proba, target, iterations=2):
    """Target labels by the nearest class centre (cosine), the centres estimated from the
    target rows themselves, starting from the classifier's probabilities (as SHOT does)."""
    unit = target / np.maximum(np.linalg.norm(target, axis=1, keepdims=True), 1e-12)
    weights = proba
    for _ in range(iterations):
        centres = weights.T @ unit / np.maximum(weights.sum(axis=0)[:, None], 1e-12)
        centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
        labels = (unit @ centres.T).argmax(axis=1)
        weights = np.eye(proba.shape[1])[labels]
    return labels


# The self-training recipe, chosen on data other than any reported test set (SST-2
# training phrases and Yelp reviews, two encoders; benchmarks/zeroshot_self_training.py):
# the most confident half every round, and a weak penalty: a strong one on unit-norm
# embeddings let the larger class swallow the other round after round.
SELF_TRAINING_FRACTION = 0.5
SELF_TRAINING_C = 1000.0


def self_train(features, scores, rounds, fraction=SELF_TRAINING_FRACTION, C=SELF_TRAINING_C):
    """A logistic regression on ``features`` taught by its own most confident predictions.

    Each round trains on the ``fraction`` of the rows with the widest margin between
    the two best ``scores`` (starting from the given ones, then the head's own), shared
    among the classes in the proportions the starting scores predict: held fixed, so
    that one class cannot swallow the others round after round (the drift of plain
    self-training). ``fraction`` may also be a sequence, one value a round. Returns
    the last head, or None when one class took every chosen row at the first round.
    """
    n_classes = scores.shape[1]
    prior = np.bincount(scores.argmax(axis=1), minlength=n_classes) / len(scores)
    fractions = np.broadcast_to(fraction, (rounds,))
    head = None
    for share in fractions:
        ranked = np.sort(scores, axis=1)
        margin = ranked[:, -1] - ranked[:, -2]
        chosen, labels = balanced_top(scores, share, shares=prior, confidence=margin, at_least=1)
        if len(np.unique(labels)) < 2:
            break  # one class took everything: nothing left to learn from
        head = LogisticRegression(C=C, max_iter=5000).fit(features[chosen], labels)
        scores = head_log_proba(head, features, n_classes)
    return head


def head_log_proba(head, features, n_classes):
    """``(n_rows, n_classes)`` log-probabilities of a head fitted on class indices; -inf for a
    class it never saw (and for a probability of 0, which a weak penalty allows)."""
    out = np.full((len(features), n_classes), -np.inf)
    with np.errstate(divide="ignore"):
        out[:, head.classes_] = head.predict_log_proba(features)
    return out
