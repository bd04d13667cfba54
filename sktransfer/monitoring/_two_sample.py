"""Two-sample tests on feature matrices: is ``new`` drawn from the reference's distribution?

Each test returns ``(statistic, p_value, details)``. The permutation tests compute what
does not depend on the labelling once (the kernel matrix, the out-of-fold scores) and
then score every permutation with one matrix product, so a thousand permutations cost
about as much as one fit.
"""

import numpy as np
from scipy.stats import ks_2samp, rankdata
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold


def permutation_p_value(observed, permuted):
    """The share of permutations at least as extreme, counting the observed labelling."""
    return float((1 + np.sum(permuted >= observed)) / (1 + len(permuted)))


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


def out_of_fold_scores(classifier, pooled, is_new, cv, rng):
    """Each row's score for 'new' from a classifier that did not see the row, and the folds."""
    splitter = StratifiedKFold(cv, shuffle=True, random_state=int(rng.integers(2**31 - 1)))
    scores = np.empty(len(pooled))
    folds = []
    for train, test in splitter.split(pooled, is_new):
        fitted = clone(classifier).fit(pooled[train], is_new[train])
        if hasattr(fitted, "decision_function"):
            scores[test] = fitted.decision_function(pooled[test])
        else:
            scores[test] = fitted.predict_proba(pooled[test])[:, 1]
        folds.append(test)
    return scores, folds


def classifier_test(reference, new, classifier, cv, n_permutations, rng):
    """Domain-classifier two-sample test: cross-validated ROC AUC of telling new rows from
    reference rows, with a permutation p-value.

    The labels are permuted within each test fold: a fold's scores come from a model fitted
    on the other folds, so under no drift its labels are exchangeable among its rows.
    """
    pooled = np.vstack([reference, new])
    is_new = np.r_[np.zeros(len(reference), int), np.ones(len(new), int)]
    scores, folds = out_of_fold_scores(classifier, pooled, is_new, cv, rng)
    ranks = rankdata(scores)
    n_new, n_ref = len(new), len(reference)

    def auc(labels):  # Mann-Whitney: the rank sum of the 'new' rows
        return (labels @ ranks - n_new * (n_new + 1) / 2) / (n_new * n_ref)

    observed = float(auc(is_new[None, :].astype(float))[0])
    labels = np.empty((n_permutations, len(pooled)))
    for test in folds:
        labels[:, test] = [rng.permutation(is_new[test]) for _ in range(n_permutations)]
    return observed, permutation_p_value(observed, auc(labels)), {}


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
