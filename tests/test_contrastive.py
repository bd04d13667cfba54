"""The contrastive few-shot strategy of TextClassifier (the SetFit recipe)."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import TextClassifier
from sktransfer.finetune._contrastive import contrastive_pairs, pair_iterations

TEXTS = ["good film", "great plot", "fine acting", "lovely", "bad film", "awful plot", "poor acting", "dull"]
LABELS = np.array(["pos"] * 4 + ["neg"] * 4)


def test_pairs_are_balanced_and_reproducible():
    y = np.array([0] * 8 + [1] * 8 + [2] * 4)
    anchors, partners, same = contrastive_pairs(y, np.random.default_rng(0), iterations=5)
    assert len(anchors) == 2 * 5 * len(y) and same.mean() == 0.5
    assert np.array_equal(y[anchors] == y[partners], same == 1) and not np.any(anchors == partners)
    again = contrastive_pairs(y, np.random.default_rng(0), iterations=5)
    assert all(np.array_equal(a, b) for a, b in zip((anchors, partners, same), again))


def test_pair_count_follows_the_number_of_labelled_texts():
    assert pair_iterations(16) == 20  # SetFit's 20 iterations for few texts
    assert pair_iterations(128) == 8 and pair_iterations(5000) == 1


def test_zero_weight_rows_take_no_part():
    y = np.array([0, 0, 0, 1, 1, 1])
    weights = np.array([1, 1, 0, 1, 1, 0])
    anchors, partners, _ = contrastive_pairs(y, np.random.default_rng(0), iterations=3, weights=weights)
    assert not ({2, 5} & set(anchors) | {2, 5} & set(partners))


def test_a_class_with_one_text_still_serves_as_a_negative():
    y = np.array([0, 0, 0, 1])
    anchors, partners, same = contrastive_pairs(y, np.random.default_rng(0), iterations=2)
    assert 3 in anchors and not np.any((anchors == 3) & (same == 1))


def test_contrastive_fit_adapts_the_encoder_then_trains_the_head_alone():
    params = dict(max_epochs=2, batch_size=16, random_state=0)
    standard = TextClassifier("tiny_text", freeze="backbone", **params).fit(TEXTS, LABELS)
    model = TextClassifier("tiny_text", strategy="contrastive", **params).fit(TEXTS, LABELS)
    assert model.contrastive_pairs_ == 2 * 20 * len(TEXTS) and np.isfinite(model.contrastive_loss_)
    assert standard.contrastive_pairs_ is None
    assert all(name.startswith("head.") for name in model.trainable_parameters_)
    assert model.used_precomputed_features_  # the adapted encoder is frozen: features once
    before = standard.net_.module_.backbone.state_dict()
    after = model.net_.module_.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the encoder moved
    again = TextClassifier("tiny_text", strategy="contrastive", **params).fit(TEXTS, LABELS)
    np.testing.assert_allclose(model.predict_proba(TEXTS), again.predict_proba(TEXTS), rtol=1e-5, atol=1e-6)


def test_freeze_limits_what_the_pairs_train():
    model = TextClassifier("tiny_text", strategy="contrastive", freeze="last:1", max_epochs=1, random_state=0)
    initial = TextClassifier("tiny_text", freeze="backbone", max_epochs=1, random_state=0).fit(TEXTS, LABELS)
    model.fit(TEXTS, LABELS)
    before, after = initial.net_.module_.backbone, model.net_.module_.backbone
    assert torch.equal(before.model.embeddings.weight, after.model.embeddings.weight)
    assert not torch.equal(before.model.layers[1].linear1.weight, after.model.layers[1].linear1.weight)


def test_contrastive_errors_name_the_conflict():
    with pytest.raises(InvalidParameterError, match="unfreeze"):
        TextClassifier("tiny_text", strategy="contrastive", unfreeze={1: "none"}).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="multilabel"):
        TextClassifier("tiny_text", strategy="contrastive").fit(TEXTS, np.eye(2, dtype=int)[[0, 1] * 4])
    with pytest.raises(InvalidParameterError, match="strategy"):
        TextClassifier("tiny_text", strategy="setfit").fit(TEXTS, LABELS)


def test_contrastive_in_cross_validation():
    model = TextClassifier("tiny_text", strategy="contrastive", max_epochs=1, batch_size=32, random_state=0)
    scores = cross_val_score(model, TEXTS, LABELS, cv=2)
    assert scores.shape == (2,) and np.all(np.isfinite(scores))
    assert clone(model).get_params()["strategy"] == "contrastive"


def test_warm_start_keeps_the_adapted_encoder_and_trains_the_head():
    model = TextClassifier("tiny_text", strategy="contrastive", warm_start=True, max_epochs=1, random_state=0)
    model.fit(TEXTS, LABELS)
    encoder = {k: v.clone() for k, v in model.net_.module_.backbone.state_dict().items()}
    model.fit(TEXTS, LABELS)
    model.partial_fit(TEXTS, LABELS)
    assert all(name.startswith("head.") for name in model.trainable_parameters_)
    after = model.net_.module_.backbone.state_dict()
    assert all(torch.equal(encoder[k], after[k]) for k in encoder)


def test_contrastive_needs_a_trainable_encoder():
    with pytest.raises(InvalidParameterError, match="freeze='backbone' leaves nothing"):
        TextClassifier("tiny_text", strategy="contrastive", freeze="backbone").fit(TEXTS, LABELS)


def test_auto_strategy_uses_pairs_for_few_rows_a_class_and_standard_beyond(monkeypatch):
    import sktransfer.finetune.text as text

    params = dict(strategy="auto", max_epochs=1, batch_size=16, random_state=0)
    few = TextClassifier("tiny_text", **params).fit(TEXTS, LABELS)
    assert few.strategy_ == "contrastive" and few.contrastive_pairs_ > 0
    # The same rows above the threshold: standard fine-tuning, as strategy="standard" fits.
    monkeypatch.setattr(text, "FEW_SHOT_ROWS", 3)  # 4 a class
    many = TextClassifier("tiny_text", **params).fit(TEXTS, LABELS)
    standard = TextClassifier("tiny_text", **{**params, "strategy": "standard"}).fit(TEXTS, LABELS)
    assert many.strategy_ == "standard" and many.contrastive_pairs_ is None
    np.testing.assert_allclose(many.predict_proba(TEXTS), standard.predict_proba(TEXTS), rtol=1e-5, atol=1e-6)


def test_auto_strategy_counts_the_smallest_class_of_the_labelled_rows(monkeypatch):
    import sktransfer.finetune.text as text

    labels = np.array([0] * 10 + [1] * 3)
    texts = (TEXTS * 2)[: len(labels)]
    monkeypatch.setattr(text, "FEW_SHOT_ROWS", 3)
    model = TextClassifier("tiny_text", strategy="auto", max_epochs=1, random_state=0)
    assert model.fit(texts, labels).strategy_ == "contrastive"  # class 1 has 3 rows
    monkeypatch.setattr(text, "FEW_SHOT_ROWS", 2)
    assert model.fit(texts, labels).strategy_ == "standard"


@pytest.mark.parametrize(
    "params, y",
    [
        ({"freeze": "backbone"}, LABELS),
        ({"unfreeze": {1: "none"}, "freeze": "last:1"}, LABELS),
        ({}, np.eye(2, dtype=int)[[0, 1] * 4]),
    ],
    ids=["frozen encoder", "unfreeze", "multilabel"],
)
def test_auto_strategy_falls_back_to_standard_where_pairs_cannot_apply(params, y):
    X = TEXTS[: len(y)]
    model = TextClassifier("tiny_text", strategy="auto", max_epochs=2, random_state=0, **params).fit(X, y)
    assert model.strategy_ == "standard" and model.contrastive_pairs_ is None


def test_auto_strategy_choosing_pairs_makes_freeze_auto_train_its_fixed_default():
    labels = np.array([0, 1] * 8)
    texts = (TEXTS * 2)[: len(labels)]
    model = TextClassifier("tiny_text", strategy="auto", freeze="auto", max_epochs=1, random_state=0)
    assert model.fit(texts, labels).strategy_ == "contrastive" and model.freeze_ == "none"
    (reason,) = model.auto_report_["pruned_at"]
    assert "strategy='auto'" in reason  # not searched, and it says why


def test_auto_strategy_warm_start_goes_on_as_it_began(monkeypatch):
    import sktransfer.finetune.text as text

    model = TextClassifier("tiny_text", strategy="auto", warm_start=True, max_epochs=1, random_state=0)
    model.fit(TEXTS, LABELS)
    monkeypatch.setattr(text, "FEW_SHOT_ROWS", 0)  # a new fit would choose standard
    model.fit(TEXTS, LABELS)
    assert model.strategy_ == "contrastive"
    assert all(name.startswith("head.") for name in model.trainable_parameters_)


def test_auto_strategy_counts_only_rows_that_weigh(monkeypatch):
    import sktransfer.finetune.text as text

    monkeypatch.setattr(text, "FEW_SHOT_ROWS", 3)
    model = TextClassifier("tiny_text", strategy="auto", max_epochs=1, random_state=0)
    weights = np.array([1, 1, 1, 0] * 2, dtype=float)  # 3 rows a class weigh
    assert model.fit(TEXTS, LABELS, sample_weight=weights).strategy_ == "contrastive"
    assert model.fit(TEXTS, LABELS).strategy_ == "standard"  # 4 a class


def test_auto_strategy_never_counts_the_unlabelled_target_rows(monkeypatch):
    import sktransfer.finetune.text as text

    monkeypatch.setattr(text, "FEW_SHOT_ROWS", 3)
    # 3 labelled "neg" (class 0, the smallest), 5 "pos", 4 unlabelled target rows whose
    # placeholder targets would count as class 0 if they were read.
    X = TEXTS[4:7] + TEXTS[:4] + ["nice"] + ["so so", "fine film", "bad plot", "ok"]
    y = np.array(["neg"] * 3 + ["pos"] * 5 + [None] * 4, dtype=object)
    domains = np.r_[np.ones(8, int), -np.ones(4, int)]
    model = TextClassifier(
        "tiny_text", strategy="auto", adaptation="pseudo_label", max_epochs=1, random_state=0
    )
    assert model.fit(X, y, sample_domain=domains).strategy_ == "contrastive"


def test_auto_strategy_trains_the_standard_way_under_a_feature_adaptation():
    pytest.importorskip("skada")
    X = TEXTS + ["so so", "fine film", "bad plot", "ok"]
    y = np.array(list(LABELS) + [None] * 4, dtype=object)
    domains = np.r_[np.ones(8, int), -np.ones(4, int)]
    model = TextClassifier("tiny_text", strategy="auto", adaptation="coral", max_epochs=1, random_state=0)
    assert model.fit(X, y, sample_domain=domains).strategy_ == "standard"  # pairs would freeze it


def test_auto_strategy_with_partial_fit_trains_the_standard_way():
    model = TextClassifier("tiny_text", strategy="auto", random_state=0).partial_fit(TEXTS, LABELS)
    assert model.strategy_ == "standard" and model.contrastive_pairs_ is None


def test_a_strategy_set_by_hand_applies_to_a_warm_start():
    model = TextClassifier("tiny_text", strategy="contrastive", warm_start=True, max_epochs=1, random_state=0)
    model.fit(TEXTS, LABELS)
    model.set_params(strategy="standard").fit(TEXTS, LABELS)
    assert model.strategy_ == "standard" and model.contrastive_pairs_ is None
    assert any(not name.startswith("head.") for name in model.trainable_parameters_)
