"""DriftDetector: valid tests (no drift, few alarms), power on a shift, embedders, errors."""

import matplotlib
import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn.base import clone
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import TextEmbedder
from sktransfer.monitoring import DriftDetector, DriftResult, plot_drift
from sktransfer.monitoring._two_sample import unbiased_mmd2

matplotlib.use("Agg")
METHODS = ["mmd", "classifier", "ks"]


def gaussian(n, seed, shift=0.0, dim=8):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, dim))
    data[:, 0] += shift
    return data


@pytest.mark.parametrize("method", METHODS)
def test_a_shift_is_detected(method):
    detector = DriftDetector(method, n_permutations=200, random_state=0).fit(gaussian(300, 0))
    result = detector.test(gaussian(80, 1, shift=1.0))
    assert isinstance(result, DriftResult)
    assert result.drift and result.p_value < 0.01
    assert (result.n_reference, result.n_new, result.method) == (300, 80, method)


@pytest.mark.parametrize("method", METHODS)
def test_false_alarms_stay_near_alpha(method):
    alarms = [
        DriftDetector(method, n_permutations=100, random_state=seed)
        .fit(gaussian(120, seed))
        .test(gaussian(40, 1000 + seed))
        .drift
        for seed in range(40)
    ]
    assert np.mean(alarms) <= 0.15  # alpha 0.05; 0.15 is 2.9 standard deviations above it


def test_the_statistic_grows_with_the_shift():
    detector = DriftDetector("mmd", n_permutations=50, random_state=0).fit(gaussian(200, 0))
    small, large = (detector.test(gaussian(60, 1, shift=s)).statistic for s in (0.5, 2.0))
    assert large > small > 0


def test_unbiased_mmd_matches_its_definition():
    rng = np.random.default_rng(0)
    kernel = rng.random((7, 7))
    kernel = (kernel + kernel.T) / 2
    sides = np.array([1, 0, 1, 1, 0, 0, 1.0])
    x, y = np.flatnonzero(sides == 1), np.flatnonzero(sides == 0)
    within = lambda idx: sum(kernel[i, j] for i in idx for j in idx if i != j) / (len(idx) * (len(idx) - 1))  # noqa: E731
    between = kernel[np.ix_(x, y)].mean()
    expected = within(x) + within(y) - 2 * between
    assert unbiased_mmd2(kernel, sides[None, :])[0] == pytest.approx(expected)


def test_ks_is_bonferroni_corrected():
    reference, new = gaussian(100, 0), gaussian(50, 1, shift=0.3)
    result = DriftDetector("ks").fit(reference).test(new)
    p_values = [ks_2samp(reference[:, j], new[:, j]).pvalue for j in range(reference.shape[1])]
    assert result.p_value == pytest.approx(min(1.0, min(p_values) * len(p_values)))
    assert result.details["most_shifted_feature"] == int(np.argmin(p_values))


def test_the_classifier_statistic_is_an_auc():
    result = (
        DriftDetector("classifier", n_permutations=99, random_state=0)
        .fit(gaussian(100, 0))
        .test(gaussian(50, 1, shift=6.0))
    )
    assert result.statistic > 0.99
    assert result.p_value == pytest.approx(1 / 100)  # no permutation reaches it


def test_an_integer_seed_makes_tests_reproducible():
    detector = DriftDetector("mmd", n_permutations=50, random_state=3).fit(gaussian(100, 0))
    new = gaussian(30, 1, shift=0.2)
    assert detector.test(new) == detector.test(new)


def test_an_embedder_is_cloned_and_applied_to_both_sides():
    square = FunctionTransformer(lambda X: np.asarray(X) ** 2)
    reference = gaussian(200, 0)
    detector = DriftDetector("ks", embedder=square).fit(reference)
    assert detector.embedder_ is not square
    # flipping the sign leaves the squares unchanged: no drift where the model looks
    assert not detector.test(-gaussian(100, 1)).drift
    assert detector.test(3 * gaussian(100, 1)).drift


def test_texts_through_a_text_embedder():
    texts = [f"the cat sat on mat number {i}" for i in range(30)]
    detector = DriftDetector("mmd", embedder=TextEmbedder("tiny_text", weights=None), n_permutations=50)
    detector.fit(texts)
    assert detector.reference_.shape == (30, detector.n_features_in_)
    shouted = ["ZZZZ QQQQ XXXX !!!! " * 5 + str(i) for i in range(20)]
    assert detector.test(shouted).drift


def test_windows_find_where_the_stream_drifts():
    detector = DriftDetector("mmd", n_permutations=100, random_state=0).fit(gaussian(300, 0))
    stream = np.vstack([gaussian(100, 1), gaussian(100, 2, shift=1.5)])
    frame = detector.test_windows(stream, window=50)
    assert list(frame["start"]) == [0, 50, 100, 150]
    assert list(frame["drift"]) == [False, False, True, True]
    overlapping = detector.test_windows(stream, window=50, step=25)
    assert len(overlapping) == 7
    fig = plot_drift(frame)
    assert len(fig.axes[0].lines) == 1
    assert fig.axes[0].collections[0].get_offsets().shape == (2, 2)  # the two alarms


def test_plot_drift_names_missing_columns():
    with pytest.raises(ValueError, match=r"lacks the columns \['drift'\]"):
        plot_drift(
            DriftDetector("ks").fit(gaussian(20, 0)).test_windows(gaussian(20, 1), 10).drop(columns="drift")
        )


def test_errors_name_the_culprit():
    detector = DriftDetector("classifier").fit(gaussian(50, 0))
    with pytest.raises(ValueError, match="X has 3 features, but the reference has 8"):
        detector.test(gaussian(10, 1, dim=3))
    with pytest.raises(ValueError, match="X has 1 rows; method='classifier' needs at least 2"):
        detector.test(gaussian(1, 1))
    with pytest.raises(ValueError, match="fewer than one window of 60"):
        detector.test_windows(gaussian(40, 1), window=60)
    with pytest.raises(ValueError, match="step=0 must be a positive integer"):
        detector.test_windows(gaussian(40, 1), window=10, step=0)
    with pytest.raises(InvalidParameterError, match="method"):
        DriftDetector("wasserstein").fit(gaussian(50, 0))
    with pytest.raises(ValueError, match="reference .* has 1 rows"):
        DriftDetector("mmd").fit(gaussian(1, 0))


def test_clone_keeps_the_parameters():
    detector = DriftDetector("ks", alpha=0.01, n_permutations=10, random_state=1)
    assert clone(detector).get_params() == detector.get_params()


def test_a_refit_starts_afresh():
    detector = DriftDetector("ks").fit(gaussian(50, 0, dim=8))
    detector.fit(gaussian(50, 1, dim=3))
    assert detector.n_features_in_ == 3 and detector.test(gaussian(20, 2, dim=3)).n_new == 20


def test_unbiased_mmd_for_several_labellings_at_once():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(9, 2))
    kernel = np.exp(-((points[:, None] - points[None]) ** 2).sum(-1))
    sides = np.stack([rng.permutation([1.0] * 4 + [0.0] * 5) for _ in range(5)])
    together = unbiased_mmd2(kernel, sides)
    one_by_one = [unbiased_mmd2(kernel, row[None])[0] for row in sides]
    np.testing.assert_allclose(together, one_by_one)
    assert len(set(np.round(together, 8))) > 1


def test_the_classifier_statistic_is_the_held_out_auc():
    from sklearn.metrics import roc_auc_score

    from sktransfer.monitoring._two_sample import held_out_scores

    reference, new = gaussian(80, 0), gaussian(30, 1, shift=0.8)
    detector = DriftDetector("classifier", n_permutations=20, random_state=5).fit(reference)
    result = detector.test(new)
    pooled = np.vstack([reference, new])
    is_new = np.r_[np.zeros(80, int), np.ones(30, int)]
    scores, held_out = held_out_scores(
        detector._make_classifier(), pooled, is_new, 0.5, np.random.default_rng(5)
    )
    assert len(held_out) == result.details["n_held_out"] == 40 + 15
    # a share of each side, never all of it: two rows a side are enough
    _, two = held_out_scores(
        detector._make_classifier(), pooled[78:82], is_new[78:82], 0.01, np.random.default_rng(0)
    )
    assert sorted(is_new[78:82][two]) == [0, 1]
    assert result.statistic == pytest.approx(roc_auc_score(is_new[held_out], scores))


def test_the_classifier_test_keeps_its_false_alarm_rate_on_small_samples():
    # Permuting labels within cross-validation folds alarmed on 9 % of these (the folds'
    # models share labels, so their AUCs move together); held-out rows are exact (5 %).
    alarms = []
    for t in range(300):
        rng = np.random.default_rng(1000 + t)
        reference, new = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
        alarms.append(
            DriftDetector("classifier", n_permutations=99, random_state=t).fit(reference).test(new).drift
        )
    assert np.mean(alarms) <= 0.08


def test_a_labelling_that_mirrors_the_observed_one_counts_as_extreme():
    # 3 vs 3 rows: 20 labellings, two of them (the observed one and the sides swapped) with
    # the observed MMD; the exact p-value is at least 2 / 20, whatever rounding does.
    rng = np.random.default_rng(140)
    reference, new = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    result = DriftDetector("mmd", n_permutations=2000, random_state=40).fit(reference).test(new)
    assert result.p_value > 0.08  # 2,000 random labellings: about 0.1 (it was 0.0005)


def test_too_few_permutations_warn():
    with pytest.warns(UserWarning, match="no test can alarm"):
        DriftDetector("mmd", n_permutations=19).fit(gaussian(20, 0))  # smallest p-value 0.05 = alpha


def test_a_failed_fit_leaves_no_reference():
    detector = DriftDetector("mmd").fit(gaussian(20, 0))
    with pytest.raises(ValueError, match="has 1 rows"):
        detector.fit(gaussian(1, 0))
    assert not hasattr(detector, "reference_")
