"""freeze="auto" on tiny backbones: the candidates, the budget, the shared work, no leaks."""

import math
import pickle
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold, cross_val_score, cross_validate
from skorch import NeuralNet
from skorch.callbacks import Callback

import sktransfer.finetune._auto as auto
from sktransfer import ImageClassifier, ImageMultiTask, ImageRegressor, TextClassifier
from sktransfer.finetune._model import TransferModel
from sktransfer.finetune._schedules import ResumableLRScheduler, WarmupCosine

from .test_finetune import FAST, dark_bright

AMPLE = None  # no budget: every candidate runs
SCANT = 1e-6  # a budget spent by the first epoch of the default recipe


def auto_clf(**params):
    return ImageClassifier("tiny_cnn", freeze="auto", **{**FAST, **params})


@pytest.fixture(scope="module")
def ample():
    X, y = dark_bright(30)
    return auto_clf(auto_budget=AMPLE).fit(X, y), X, y


def test_report_has_one_row_per_candidate(ample):
    clf, X, y = ample
    report = clf.auto_report_
    # tiny_cnn: 3 blocks, 32 px: heads at 32 and 64 px (1x, 1.5x), last:2, first:2, none
    assert list(report["candidate"]) == ["head 32 px", "head 64 px", "last:2", "first:2", "none"]
    assert report["chosen"].sum() == 1
    chosen = report[report["chosen"]].iloc[0]
    assert clf.freeze_ == chosen["freeze"] and clf.image_size_ == chosen["image_size"]
    heads = report[report["freeze"] == "backbone"]
    assert heads["cv_score"].between(0, 1).all() and (heads["epochs"] == 0).all()
    assert np.isfinite(report["score"]).all()
    assert clf.score(X, y) > 0.8


def test_successive_halving_gives_the_survivor_every_epoch(ample):
    report = ample[0].auto_report_
    tuned = report[report["freeze"] != "backbone"]
    # three candidates, a third goes on: all train to max_epochs // 3, one to max_epochs
    assert sorted(tuned["epochs"]) == [1, 1, 3]
    assert list(tuned[tuned["epochs"] == 1]["pruned_at"]) == ["epoch 1", "epoch 1"]
    assert tuned[tuned["epochs"] == 3]["pruned_at"].isna().all()


def test_a_scant_budget_keeps_only_what_it_can_afford():
    X, y = dark_bright(30)
    clf = auto_clf(auto_budget=SCANT).fit(X, y)
    report = clf.auto_report_.set_index("candidate")
    # the default recipe's first epoch times the budget's unit; nothing else fine-tunes
    assert report.loc["last:2", "epochs"] == 1 and report.loc["last:2", "pruned_at"] == "budget"
    assert (report.loc[["first:2", "none"], "epochs"] == 0).all()
    assert (report.loc[["first:2", "none"], "pruned_at"] == "budget").all()
    # the default resolution's features are computed anyway; the larger one is not afforded
    assert report.loc["head 64 px", "pruned_at"] == "budget"
    assert clf.freeze_ == "backbone" and clf.image_size_ == 32 and clf.n_epochs_ == 0


def test_head_candidates_share_one_feature_pass_per_resolution(monkeypatch):
    """The five folds of the 64 px head (and its refit, were it chosen) read one pass."""
    X, y = dark_bright(30)
    counts = {}
    features = TransferModel.features

    def counting(model, inputs):
        if not model.training and len(inputs) > 1:  # not the one-row width probe of a new model
            counts[inputs.shape[-1]] = counts.get(inputs.shape[-1], 0) + len(inputs)
        return features(model, inputs)

    monkeypatch.setattr(TransferModel, "features", counting)
    clf = auto_clf(auto_budget=AMPLE).fit(X, y)
    assert clf.auto_report_.set_index("candidate")["cv_score"].notna()["head 64 px"]
    assert counts[64] == len(X)


def test_the_outer_test_fold_is_never_seen(monkeypatch):
    """Test rows are the only ones with a saturated red channel; the fit must never see one."""
    X, y = dark_bright(40)
    test = np.arange(len(X)) % 4 == 0
    X[test, ..., 0] = 255
    X[~test, ..., 0] = np.minimum(X[~test, ..., 0], 230)
    reds = []
    features = TransferModel.features

    def recording(model, inputs):
        if inputs.dtype == torch.uint8:
            reds.append(inputs[:, 0].amax().item())
        return features(model, inputs)

    monkeypatch.setattr(TransferModel, "features", recording)
    folds = [(np.flatnonzero(~test), np.flatnonzero(test))]
    no_predictions = lambda estimator, X, y: 0.0  # noqa: E731 (scoring would read the test rows)
    cross_val_score(auto_clf(auto_budget=AMPLE), X, y, cv=folds, scoring=no_predictions)
    assert reds and max(reds) < 255
    auto_clf(auto_budget=SCANT).fit(X, y)  # the check can fail: a fit on every row sees them
    assert max(reds) == 255


def test_groups_stay_on_one_side_of_every_inner_fold():
    y = torch.as_tensor(np.tile([0, 1], 20))
    groups = np.repeat(np.arange(10), 4)
    clf = auto_clf()
    clf.multilabel_ = False  # what fit sets before the search
    for train, test in auto.inner_folds(clf, y, groups, seed=0):
        assert not set(groups[train]) & set(groups[test])
    assert auto.validation_shortfall(clf, y, groups) is None
    assert "at least 2 groups" in auto.validation_shortfall(clf, y, np.zeros(40))


def test_regression_folds_hold_out_two_rows_or_the_fixed_default_trains():
    # R² of a single held-out row is undefined: it would rank every candidate as NaN.
    X, _ = dark_bright(12)
    target = X.mean(axis=(1, 2, 3)) / 255
    reg = ImageRegressor("tiny_cnn", freeze="auto", **FAST)
    for n in (4, 5, 9, 12):
        folds = auto.inner_folds(reg, torch.as_tensor(target[:n]), None, seed=0)
        assert min(len(test) for _, test in folds) >= 2 and len(folds) == min(5, n // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no undefined R²
        fitted = reg.fit(X[:4], target[:4])
    assert not fitted.auto_report_["pruned_at"].astype(str).str.startswith("not validated").any()
    with pytest.warns(UserWarning, match=r"at least 4 rows \(2 to hold out in each of 2 folds\)"):
        reg.fit(X[:3], target[:3])
    assert reg.freeze_ == "last:3"


def test_one_group_trains_the_fixed_default_and_says_so():
    X, y = dark_bright(12)
    with pytest.warns(UserWarning, match="at least 2 groups.*trained the fixed default"):
        clf = auto_clf().fit(X, y, groups=np.zeros(len(y)))
    assert (
        clf.auto_report_["pruned_at"].iloc[0] == "not validated: it needs at least 2 groups to hold one out"
    )
    assert clf.freeze_ == auto_clf()._fixed_freeze


def test_groups_that_coincide_with_the_classes_train_the_fixed_default_and_say_so():
    X, y = dark_bright(12)
    with pytest.warns(UserWarning, match="class 'bright' lies in a single group.*trained the fixed default"):
        clf = auto_clf().fit(X, y, groups=(y == "dark").astype(int))
    assert clf.freeze_ == auto_clf()._fixed_freeze


def test_weightless_rows_are_dropped_rows_for_the_inner_folds():
    X, y = dark_bright(30)
    y = y.astype(object)
    y[0] = "odd"  # one row of a third class, weighing nothing: as if it were not there
    weights = np.ones(30)
    weights[0] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no "trained the fixed default"
        clf = auto_clf(auto_budget=SCANT).fit(X, y, sample_weight=weights)
    assert not clf.auto_report_["pruned_at"].astype(str).str.startswith("not validated").any()
    targets = torch.as_tensor(np.searchsorted(clf.classes_, y))
    for _, test in auto.inner_folds(clf, targets, None, 0, torch.as_tensor(weights)):
        # the weighted rows of each class are spread over the folds
        assert set(y[test][weights[test] > 0]) == {"dark", "bright"}


def test_groups_for_the_splitter_alone_need_no_request(monkeypatch):
    """With routing on, groups passed for the splitter do not reach fit unless requested."""
    X, y = dark_bright(24)
    seen = []
    folds = auto.inner_folds
    monkeypatch.setattr(
        auto, "inner_folds", lambda est, t, groups, *rest: seen.append(groups) or folds(est, t, groups, *rest)
    )
    with sklearn.config_context(enable_metadata_routing=True):
        cross_validate(
            auto_clf(auto_budget=SCANT), X, y, cv=GroupKFold(2), params={"groups": np.arange(24) // 2}
        )
    assert seen == [None, None]


def test_groups_reach_the_search_through_metadata_routing(monkeypatch):
    X, y = dark_bright(24)
    groups = np.repeat(np.arange(12), 2)
    seen = []
    folds = auto.inner_folds

    def spy(estimator, targets, groups, *rest):
        seen.append(groups)
        return folds(estimator, targets, groups, *rest)

    monkeypatch.setattr(auto, "inner_folds", spy)
    with sklearn.config_context(enable_metadata_routing=True):
        clf = auto_clf(auto_budget=SCANT).set_fit_request(groups=True)
        cross_validate(clf, X, y, cv=GroupKFold(2), params={"groups": groups})
    assert len(seen) == 2
    for got in seen:
        assert got is not None and len(got) == 12 and set(got) <= set(groups)


def test_grid_search_over_auto_and_fixed_recipes():
    X, y = dark_bright(16)
    search = GridSearchCV(auto_clf(auto_budget=SCANT), {"freeze": ["auto", "backbone"]}, cv=KFold(2))
    search.fit(X, y)
    assert search.best_params_["freeze"] in {"auto", "backbone"}
    assert clone(search.best_estimator_).get_params()["freeze"] in {"auto", "backbone"}


def test_reproducible_with_random_state_and_pickles(ample):
    clf, X, y = ample
    again = clone(clf).fit(X, y)
    columns = ["candidate", "score", "cv_score", "epochs", "pruned_at", "chosen"]
    assert again.auto_report_[columns].equals(clf.auto_report_[columns])
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.auto_report_.equals(clf.auto_report_)


def test_a_fixed_refit_drops_the_earlier_report(ample):
    clf, X, y = ample
    fixed = clone(clf).set_params(freeze="backbone").fit(X, y)
    assert not hasattr(fixed, "auto_report_") and fixed.freeze_ == "backbone"


def test_a_first_partial_fit_uses_the_fixed_default():
    X, y = dark_bright(16)
    clf = auto_clf().partial_fit(X, y)
    assert clf.freeze_ == "last:3" and not hasattr(clf, "auto_report_")


def test_regressor_candidates_are_scored_by_r2():
    X, _ = dark_bright(30)
    target = X.mean(axis=(1, 2, 3)) / 255
    reg = ImageRegressor("tiny_cnn", freeze="auto", auto_budget=SCANT, **FAST).fit(X, target)
    heads = reg.auto_report_[reg.auto_report_["freeze"] == "backbone"]
    scores = heads["cv_score"].dropna()
    assert len(scores) and scores.between(0.5, 1).all()  # R² of predicting the brightness


def test_text_candidates():
    texts = ["good film", "bad film", "great movie", "awful movie"] * 6
    labels = ["pos", "neg"] * 12
    clf = TextClassifier("tiny_text", freeze="auto", auto_budget=AMPLE, **FAST).fit(texts, labels)
    assert list(clf.auto_report_["candidate"]) == ["head", "last:2", "none"]
    assert "image_size" not in clf.auto_report_


@pytest.mark.parametrize(
    "params, culprit",
    [
        ({"unfreeze": {0: "backbone", 1: "none"}}, "unfreeze"),
        ({"adaptation": "adabn"}, "adaptation"),
        ({"head_init": "random"}, "head_init"),
    ],
)
def test_auto_trains_the_fixed_default_where_a_parameter_chooses_how_to_train(params, culprit):
    # "auto" is the default: setting one of these must train as before, not fail or warn.
    X, y = dark_bright(16)
    domains = np.where(np.arange(16) < 8, 1, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = auto_clf(**params).fit(X, y, sample_domain=domains if culprit == "adaptation" else None)
    assert clf.freeze_ == "last:3"
    (row,) = clf.auto_report_.to_dict(orient="records")
    assert (
        row["chosen"] and row["pruned_at"].startswith("not validated") and f"{culprit}=" in row["pruned_at"]
    )


def test_multitask_estimators_refuse_auto():
    X, y = dark_bright(16)
    with pytest.raises(ValueError, match="freeze='auto' is not available"):
        ImageMultiTask("tiny_cnn", freeze="auto", **FAST).fit(X, np.c_[y, y])


def test_a_warm_start_keeps_the_chosen_freeze_at_the_current_learning_rate():
    X, y = dark_bright(16)
    clf = auto_clf(auto_budget=SCANT).fit(X, y)
    chosen, size = clf.freeze_, clf.image_size_
    clf.set_params(warm_start=True, lr=1e-12, max_epochs=1).fit(X, y)
    assert (clf.freeze_, clf.image_size_, clf.lr_) == (chosen, size, 1e-12)
    assert {g["initial_lr"] for g in clf.net_.optimizer_.param_groups if g["name"] == "head"} == {1e-12}


def test_groups_must_match_the_samples():
    X, y = dark_bright(16)
    with pytest.raises(ValueError, match=r"groups has shape \(3,\)"):
        auto_clf().fit(X, y, groups=[1, 2, 3])


def test_the_schedule_continues_across_partial_fits():
    """Training 2 + 3 epochs in two calls follows the learning rates of 5 epochs in one."""

    class Rates(Callback):
        def initialize(self):
            self.rates = []
            return self

        def on_batch_end(self, net, **kwargs):
            self.rates.append(net.optimizer_.param_groups[0]["lr"])

    def net(rates):
        return NeuralNet(
            torch.nn.Linear(2, 1),
            torch.nn.MSELoss,
            lr=0.1,
            batch_size=4,
            max_epochs=5,
            train_split=None,
            callbacks=[
                ResumableLRScheduler(
                    policy=torch.optim.lr_scheduler.LambdaLR,
                    lr_lambda=WarmupCosine(5 * 2),
                    step_every="batch",
                    last_epoch=-1,
                ),
                rates,
            ],
        )

    X, y = torch.randn(8, 2), torch.randn(8, 1)
    whole, split, warm = Rates(), Rates(), Rates()
    first = net(whole).fit(X, y)
    two_calls = net(split).initialize()
    two_calls.partial_fit(X, y, epochs=2)
    two_calls.partial_fit(X, y, epochs=3)
    assert len(split.rates) == 10
    np.testing.assert_allclose(split.rates, whole.rates)
    # a new net that takes over an earlier fit's history (a warm start) starts its own schedule
    fresh = net(warm).initialize()
    fresh.history_ = first.history_
    fresh.partial_fit(X, y, epochs=5)
    np.testing.assert_allclose(warm.rates, whole.rates)


def test_warm_start_keeps_the_choice_and_applies_a_changed_freeze(ample):
    clf, X, y = ample
    warm = pickle.loads(pickle.dumps(clf)).set_params(warm_start=True).fit(X, y)
    assert (warm.freeze_, warm.lr_) == (clf.freeze_, clf.lr_) and hasattr(warm, "auto_report_")
    fixed = ImageClassifier("tiny_cnn", freeze="backbone", **FAST).fit(X, y)
    fixed.set_params(freeze="last:1", lr=3e-3, warm_start=True).fit(X, y)
    assert fixed.freeze_ == "last:1" and fixed.lr_ == 3e-3
    assert any(name.startswith("stage2") for name in fixed.trainable_parameters_)


def test_multilabel_and_weighted_rows():
    X, y = dark_bright(30)
    Y = np.c_[y == "dark", np.arange(30) % 3 == 0].astype(int)
    weights = np.where(np.arange(30) < 10, 0.0, 1.0)
    clf = auto_clf(auto_budget=SCANT).fit(X, Y, sample_weight=weights)
    assert clf.multilabel_ and clf.auto_report_["chosen"].sum() == 1
    assert clf.predict(X).shape == (30, 2)


def test_a_failed_search_leaves_an_earlier_fit_as_it_was(ample, monkeypatch):
    clf, X, y = ample
    model = pickle.loads(pickle.dumps(clf))
    before = (model.data_config_, model.image_size_, model.freeze_)
    expected = model.predict_proba(X)

    def interrupted(self, *args):
        self._use(replace(self.default, image_size=64))
        raise KeyboardInterrupt

    monkeypatch.setattr(auto.AutoSearch, "_race", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y)
    assert (model.data_config_, model.image_size_, model.freeze_) == before
    np.testing.assert_allclose(model.predict_proba(X), expected)


def test_skops_round_trip_of_an_auto_fit(ample, tmp_path):
    sio = pytest.importorskip("skops.io")
    from sktransfer import skops_trusted_types

    clf, X, y = ample
    sio.dump(clf, tmp_path / "auto.skops")
    loaded = sio.load(tmp_path / "auto.skops", trusted=skops_trusted_types())
    assert loaded.image_size_ == clf.image_size_ and loaded.freeze_ == clf.freeze_
    assert loaded.auto_report_[["candidate", "chosen"]].equals(clf.auto_report_[["candidate", "chosen"]])
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_the_refit_is_the_fit_of_the_chosen_recipe(monkeypatch):
    """The search draws from its own copy of the seeded generators: the refit is exactly the
    fit of the chosen recipe with the same random_state (fine-tuning candidates only here,
    so that the winner trains epochs that draw random numbers)."""
    from sktransfer.finetune._inputs import ImageInputs

    candidates = ImageInputs._auto_candidates
    monkeypatch.setattr(
        ImageInputs,
        "_auto_candidates",
        lambda self, backbone, default: [c for c in candidates(self, backbone, default) if not c.head_only],
    )
    X, y = dark_bright(30)
    clf = auto_clf(auto_budget=None).fit(X, y)
    assert clf.freeze_ != "backbone" and clf.n_epochs_ == FAST["max_epochs"]
    fixed = ImageClassifier(
        "tiny_cnn", freeze=clf.freeze_, lr=clf.lr_, lr_decay=clf.lr_decay_, image_size=clf.image_size_, **FAST
    ).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), fixed.predict_proba(X), atol=1e-6)


def head_only(monkeypatch, keep=None):
    """Let ``freeze="auto"`` choose among its head-only candidates alone (the first
    ``keep`` of them)."""
    from sktransfer.finetune._inputs import ImageInputs

    candidates = ImageInputs._auto_candidates
    monkeypatch.setattr(
        ImageInputs,
        "_auto_candidates",
        lambda self, backbone, default: [c for c in candidates(self, backbone, default) if c.head_only][
            :keep
        ],
    )


def test_a_head_chosen_alone_is_a_plain_logistic_regression(monkeypatch):
    """A head-only winner is the whole model: fitted without the fine-tuning loss's label
    smoothing, it equals scikit-learn's LogisticRegression on the same features with the
    same L2 penalty (a smoothed head caps its confidence and is far from it)."""
    from sklearn.linear_model import LogisticRegression

    head_only(monkeypatch, keep=1)
    X, y = dark_bright(30)
    X[::4] = X[::4][:, ::-1]  # the same pixels, another order: features that overlap a little
    clf = auto_clf(auto_budget=None, label_smoothing=0.3).fit(X, y)
    assert clf.freeze_ == "backbone" and clf.n_epochs_ == 0
    features = clf._precomputed(clf.net_.module_, X).numpy()
    targets = np.searchsorted(clf.classes_, y)
    # Ours: mean loss + penalty / 2 * (|w0|^2 + |w1|^2) over two logits, whose optimum has
    # w1 = -w0; scikit-learn's binary form: C * summed loss + |w1 - w0|^2 / 2.
    C = 2 / (len(y) * clf.probe_penalty_)
    reference = LogisticRegression(C=C, tol=1e-10, max_iter=10_000).fit(features, targets)
    np.testing.assert_allclose(clf.predict_proba(X), reference.predict_proba(features), atol=2e-3)


def test_heads_are_ranked_by_their_held_out_loss(monkeypatch):
    """Among heads, the lowest mean held-out loss wins, whatever their accuracies."""
    head_only(monkeypatch)
    X, y = dark_bright(30)
    clf = auto_clf(auto_budget=None).fit(X, y)
    report = clf.auto_report_
    assert len(report) > 1 and report["cv_loss"].notna().all()
    assert report.loc[report["chosen"], "cv_loss"].iloc[0] == report["cv_loss"].min()
    last = report["candidate"].iloc[-1]  # the last head wins however its accuracy compares

    def evaluate(self, candidate, real=auto.AutoSearch._evaluate_head):
        real(self, candidate)
        candidate.cv_loss = 0.1 if candidate.name == last else 0.5

    monkeypatch.setattr(auto.AutoSearch, "_evaluate_head", evaluate)
    chosen = auto_clf(auto_budget=None).fit(X, y).auto_report_["chosen"]
    assert chosen.tolist() == [False] * (len(report) - 1) + [True]


def test_fine_tuning_beats_a_head_by_holdout_loss_at_the_best_temperature(monkeypatch):
    """A fine-tuned candidate and the best head meet on the shared holdout: the lower loss
    at each one's best temperature wins, whatever their accuracies; without losses (NaN),
    the higher score."""
    X, y = dark_bright(30)
    evaluate_head, evaluate_tuned = auto.AutoSearch._evaluate_head, auto.AutoSearch._evaluate_tuned
    racers = {"last:2": 0.1, "first:2": 0.2, "none": 0.3}  # last:2 goes through the race

    def chosen(tuned_wins_by_loss, losses=True):
        def head(self, candidate):
            evaluate_head(self, candidate)
            candidate.score = 1.0  # the head is the more accurate...
            candidate.holdout_loss = 0.5 if losses else math.nan

        def tuned(self, candidate):
            evaluate_tuned(self, candidate)
            candidate.score = 0.9
            loss = racers[candidate.name] + (0.0 if tuned_wins_by_loss else 0.5)
            candidate.holdout_loss = loss if losses else math.nan

        monkeypatch.setattr(auto.AutoSearch, "_evaluate_head", head)
        monkeypatch.setattr(auto.AutoSearch, "_evaluate_tuned", tuned)
        report = auto_clf(auto_budget=None).fit(X, y).auto_report_
        return report.query("chosen")["candidate"].item()

    assert chosen(tuned_wins_by_loss=True) == "last:2"  # ...but its loss is the higher
    assert chosen(tuned_wins_by_loss=False).startswith("head")
    assert chosen(tuned_wins_by_loss=True, losses=False).startswith("head")  # by score


def test_holdout_loss_is_blind_to_the_logits_scale(monkeypatch):
    """Label smoothing shrinks a fine-tuned network's logits; the holdout loss at the best
    temperature sees only what scaling cannot change, weighted as the fit's rows are.
    NaN: regressors, a holdout without weight, a holdout the logits separate perfectly."""
    from sklearn.metrics import log_loss

    searches = []
    winner = auto.AutoSearch._winner
    monkeypatch.setattr(auto.AutoSearch, "_winner", lambda s, *a: searches.append(s) or winner(s, *a))
    X, y = dark_bright(30)
    weights = np.r_[np.zeros(10), np.linspace(0.5, 2.0, 20)]
    auto_clf(auto_budget=SCANT).fit(X, y, sample_weight=weights)
    search = searches[-1]
    rows = search.holdout
    targets = search.targets[rows].numpy()
    margins = np.full(len(rows), 2.0)
    margins[np.flatnonzero(weights[rows] > 0)[0]] = -1.0  # one weighted row wrong: not separated
    logits = torch.zeros(len(rows), 2)
    logits[np.arange(len(rows)), targets] = torch.tensor(margins, dtype=torch.float32)
    loss = search._holdout_loss(logits)
    assert search._holdout_loss(2 * logits) == pytest.approx(loss, abs=1e-6)  # 2 is on the grid

    def log_loss_at(t):
        proba = torch.softmax(logits / t, dim=1).numpy()
        return log_loss(targets, proba, labels=[0, 1], sample_weight=weights[rows])

    assert loss == pytest.approx(min(log_loss_at(t) for t in auto.TEMPERATURES), rel=1e-5)
    assert loss < log_loss_at(8.0)

    separated = torch.zeros(len(rows), 2)
    separated[np.arange(len(rows)), targets] = 5.0
    assert math.isnan(search._holdout_loss(separated))
    # constant logits know nothing (log 2, not "separated"); a diverged network ranks last
    assert search._holdout_loss(torch.zeros(len(rows), 2)) == pytest.approx(math.log(2), rel=1e-5)
    diverged = torch.full((len(rows), 2), float("nan"))
    assert search._holdout_loss(diverged) == math.inf and math.isnan(search._score(diverged, rows))
    search.head_loss.sample_weight = search.weights = torch.zeros(len(weights))
    assert math.isnan(search._holdout_loss(logits))

    target = X.mean(axis=(1, 2, 3)) / 255
    ImageRegressor("tiny_cnn", freeze="auto", auto_budget=SCANT, **FAST).fit(X, target)
    assert math.isnan(searches[-1]._holdout_loss(torch.zeros(len(searches[-1].holdout), 1)))


def test_the_race_keeps_the_lowest_holdout_loss(monkeypatch):
    """Successive halving keeps the racer with the lowest holdout loss at the best
    temperature, whatever the racers' accuracies."""
    X, y = dark_bright(30)
    evaluate_tuned = auto.AutoSearch._evaluate_tuned

    def tuned(self, candidate):
        evaluate_tuned(self, candidate)
        candidate.score = 1.0 if candidate.name == "last:2" else 0.5
        candidate.holdout_loss = 0.1 if candidate.name == "none" else 0.9

    monkeypatch.setattr(auto.AutoSearch, "_evaluate_tuned", tuned)
    report = auto_clf(auto_budget=None).fit(X, y).auto_report_.set_index("candidate")
    assert report.loc["none", "epochs"] == 3 and pd.isna(report.loc["none", "pruned_at"])
    assert report.loc["last:2", "pruned_at"] == report.loc["first:2", "pruned_at"] == "epoch 1"


def test_a_weightless_fold_adds_nothing_to_the_heads_cross_validation():
    X, y = dark_bright(30)
    weights = np.zeros(30)
    weights[:6] = 1  # most folds hold out weightless rows only
    report = auto_clf(auto_budget=AMPLE).fit(X, y, sample_weight=weights).auto_report_
    heads = report[report["candidate"].str.startswith("head")]
    assert np.isfinite(heads["cv_score"]).all() and (heads["cv_loss"] > 0).all()
