"""Two-sample tests on feature matrices: is ``new`` drawn from the reference's distribution?

Each test returns ``(statistic, p_value, details)``. The permutation tests compute what
does not depend on the labelling once (the kernel matrix, the held-out scores) and
then score every permutation with one matrix product, so a thousand permutations cost
about as much as one fit.
"""

import numpy as np
from scipy.stats import ks_2samp, rankdata
from sklearn.base import clone


def permutation_p_value(observed, permuted):
    """The share of permutations at least as extreme, counting the observed labelling.

    A permutation that equals the observed labelling, or mirrors it, gives the same
    statistic in exact arithmetic but may come out a few rounding errors (1e-16) below it;
    the tolerance counts it, as the exact test does. With few rows such labellings are a
    large share of all, and missing them gave p-values below any the test can give. (The
    statistics here are at most 2 in size, and an AUC moves in steps of
    ``1 / (n_new * n_reference)``, far above the tolerance.)
    """
    tolerance = 1e-12 * max(1.0, abs(observed))
    return float((1 + np.sum(permuted >= observed - tolerance)) / (1 + len(permuted)))


def median_heuristic(squared_distances):
    """Squared bandwidth: the median squared distance between distinct points (duplicates,
    at distance 0, left out)."""
    upper = squared_distances[np.triu_indices(len(squared_distances), k=1)]
    positive = upper[upper > 0]
    return float(np.median(positive)) if len(positive) else 1.0  # all points equal: MMD is 0 anyway


def unbiased_mmd2(kernel, sides):
    """Unbiased MMD^2 for each row of ``sides`` (1 marks the reference, 0 the new sample)."""
    n = kernel.shape[0]
    n_x = sides[0].sum()
    n_y = n - n_x
    row_sums = kernel.sum(axis=1)
    total = row_sums.sum()
    diagonal = np.diag(kernel)
    xx = np.einsum("pi,pi->p", sides @ kernel, sides)  # s' K s
    x_all = sides @ row_sums  # s' K 1
    yy = total - 2 * x_all + xx
    xy = x_all - xx
    within_x = (xx - sides @ diagonal) / (n_x * (n_x - 1))
    within_y = (yy - (1 - sides) @ diagonal) / (n_y * (n_y - 1))
    return within_x + within_y - 2 * xy / (n_x * n_y)


def mmd_test(reference, new, n_permutations, rng):
    """Kernel MMD with a Gaussian kernel whose bandwidth is the median heuristic on the
    pooled sample; permutation p-value."""
    pooled = np.vstack([reference, new])
    squares = np.einsum("ij,ij->i", pooled, pooled)
    squared_distances = np.maximum(squares[:, None] + squares[None, :] - 2 * pooled @ pooled.T, 0.0)
    bandwidth2 = median_heuristic(squared_distances)
    kernel = np.exp(-squared_distances / bandwidth2)
    observed_sides = np.r_[np.ones(len(reference)), np.zeros(len(new))]
    observed = unbiased_mmd2(kernel, observed_sides[None, :])[0]
    permuted = np.empty(n_permutations)
    for start in range(0, n_permutations, 200):  # bounded memory: 200 x n at a time
        count = min(200, n_permutations - start)
        sides = np.stack([rng.permutation(observed_sides) for _ in range(count)])
        permuted[start : start + count] = unbiased_mmd2(kernel, sides)
    details = {"bandwidth": float(np.sqrt(bandwidth2 / 2))}  # sigma of exp(-d^2 / (2 sigma^2))
    return float(observed), permutation_p_value(observed, permuted), details


def held_out_scores(classifier, pooled, is_new, test_size, rng):
    """Fit ``classifier`` on part of the rows; its score for 'new' on the others (a
    ``test_size`` share of each side, at least one row, at most all but one), and which
    rows those are."""
    held_out = []
    for side in (0, 1):
        rows = rng.permutation(np.flatnonzero(is_new == side))
        held_out.append(rows[: int(np.clip(round(test_size * len(rows)), 1, len(rows) - 1))])
    test = np.sort(np.concatenate(held_out))
    train = np.setdiff1d(np.arange(len(pooled)), test)
    fitted = clone(classifier).fit(pooled[train], is_new[train])
    if hasattr(fitted, "decision_function"):
        return fitted.decision_function(pooled[test]), test
    return fitted.predict_proba(pooled[test])[:, 1], test


def classifier_test(reference, new, classifier, test_size, n_permutations, rng):
    """Domain-classifier two-sample test (Lopez-Paz and Oquab, 2017): the ROC AUC of a
    classifier telling new rows from reference rows, on rows it was not fitted on, with a
    permutation p-value.

    The classifier is fitted once, on one share of the rows; under no drift the held-out
    rows' labels are exchangeable given that model, so permuting them gives an exact
    p-value. (Cross-validated scores do not: every fold's model learnt from the other
    folds' labels, so chance agreement between folds moves all their AUCs together, and
    permuting within folds misses that spread: it alarmed on 12 % of no-drift tests of 20
    rows a side at alpha = 0.05.)
    """
    pooled = np.vstack([reference, new])
    is_new = np.r_[np.zeros(len(reference), int), np.ones(len(new), int)]
    scores, test = held_out_scores(classifier, pooled, is_new, test_size, rng)
    ranks = rankdata(scores)
    labels = is_new[test]
    n_new = int(labels.sum())
    n_ref = len(labels) - n_new

    def auc(sides):  # Mann-Whitney: the rank sum of the 'new' rows
        return (sides @ ranks - n_new * (n_new + 1) / 2) / (n_new * n_ref)

    observed = float(auc(labels[None, :].astype(float))[0])
    permuted = auc(np.stack([rng.permutation(labels) for _ in range(n_permutations)]).astype(float))
    return observed, permutation_p_value(observed, permuted), {"n_held_out": len(test)}


def ks_test(reference, new):
    """Kolmogorov-Smirnov on each feature; the smallest p-value, Bonferroni-corrected."""
    result = ks_2samp(reference, new, axis=0)
    p_values = np.atleast_1d(result.pvalue)
    n_features = len(p_values)
    worst = int(np.argmin(p_values))
    details = {"feature_p_values": p_values, "most_shifted_feature": worst}
    return (
        float(np.max(result.statistic)),
        float(min(1.0, p_values[worst] * n_features)),
        details,
    )
