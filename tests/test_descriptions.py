"""Class descriptions as labelled rows of TextClassifier (a zero-shot prior for few-shot fits)."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import TextClassifier
from sktransfer._descriptions import DEFAULT_TEMPLATES, described_texts
from sktransfer.finetune._base import _append_training_rows

TEXTS = ["good film", "great plot", "fine acting", "lovely", "bad film", "awful plot", "poor acting", "dull"]
LABELS = np.array(["pos"] * 4 + ["neg"] * 4)
DESCRIPTIONS = {"pos": "positive", "neg": ["negative", "bad"]}
PARAMS = dict(max_epochs=2, batch_size=4, random_state=0)


def spelled_out():
    """The rows class_descriptions stands for, written by hand, with their relative
    weights: the descriptions of a class share its weight."""
    texts, labels, relative = [], [], []
    for cls, words in DESCRIPTIONS.items():
        words = [words] if isinstance(words, str) else words
        for word in words:
            texts += [template.format(word) for template in DEFAULT_TEMPLATES]
            labels += [cls] * len(DEFAULT_TEMPLATES)
            relative += [1 / len(words)] * len(DEFAULT_TEMPLATES)
    return texts, np.array(labels), np.array(relative)


@pytest.mark.parametrize("weighted", [False, True])
def test_descriptions_are_the_templated_rows_of_their_class(weighted):
    texts, labels, relative = spelled_out()
    weights = np.linspace(0.5, 2.0, len(TEXTS)) if weighted else np.ones(len(TEXTS))
    model = TextClassifier("tiny_text", class_descriptions=DESCRIPTIONS, **PARAMS)
    model.fit(TEXTS, LABELS, sample_weight=weights if weighted else None)
    by_hand = TextClassifier("tiny_text", **PARAMS).fit(
        TEXTS + texts,
        np.concatenate([LABELS, labels]),
        sample_weight=np.r_[weights, weights.mean() * relative],
    )
    np.testing.assert_allclose(model.predict_proba(TEXTS), by_hand.predict_proba(TEXTS), rtol=1e-5, atol=1e-6)
    without = TextClassifier("tiny_text", **PARAMS).fit(TEXTS, LABELS, sample_weight=weights)
    assert len(relative) == 3 * len(DEFAULT_TEMPLATES) and sorted(set(relative)) == [0.5, 1.0]
    assert not np.allclose(model.predict_proba(TEXTS), without.predict_proba(TEXTS))


def test_descriptions_join_the_contrastive_pairs():
    model = TextClassifier("tiny_text", strategy="contrastive", class_descriptions=DESCRIPTIONS, **PARAMS)
    model.fit(TEXTS, LABELS)
    rows = len(TEXTS) + 3 * len(DEFAULT_TEMPLATES)
    assert model.contrastive_pairs_ == 2 * 20 * rows


def test_described_rows_are_appended_to_the_training_rows():
    X, targets = ["a", "b", "c", "d"], torch.tensor([0, 1, 0, 1])
    weights = torch.tensor([1.0, 3.0, 1.0, 9.0])
    train = np.array([0, 1, 2])
    X2, t2, w2, source, groups, train2, labelled = _append_training_rows(
        (["x", "y"], torch.tensor([1, 0]), np.ones(2)), X, targets, weights, None, None, train, train
    )
    assert X2 == X + ["x", "y"] and t2.tolist() == [0, 1, 0, 1, 1, 0] and source is None
    assert train2.tolist() == [0, 1, 2, 4, 5] and labelled.tolist() == [0, 1, 2, 4, 5]
    assert w2[4:].tolist() == pytest.approx([5 / 3, 5 / 3])  # the mean weight of the labelled training rows


def test_unweighted_rows_stay_unweighted_unless_descriptions_share_a_class():
    X, targets, train = ["a", "b"], torch.tensor([0, 1]), np.arange(2)
    one_each = (["x", "y"], torch.tensor([0, 1]), np.ones(2))
    assert _append_training_rows(one_each, X, targets, None, None, None, train, train)[2] is None
    shared = (["x", "y", "z"], torch.tensor([0, 1, 1]), np.array([1.0, 0.5, 0.5]))
    weights = _append_training_rows(shared, X, targets, None, None, None, train, train)[2]
    assert weights.tolist() == [1.0, 1.0, 1.0, 0.5, 0.5]


def test_early_stopping_never_validates_on_a_description(monkeypatch):
    seen = {}
    original = TextClassifier._dataset

    def spy(self, model, X, targets, weights, indices, features, domains, training):
        seen[training] = np.asarray(indices)
        return original(self, model, X, targets, weights, indices, features, domains, training)

    monkeypatch.setattr(TextClassifier, "_dataset", spy)
    model = TextClassifier(
        "tiny_text", class_descriptions=DESCRIPTIONS, early_stopping=True, validation_fraction=0.25, **PARAMS
    )
    model.fit(TEXTS, LABELS)
    assert len(seen[False]) == 2 and seen[False].max() < len(TEXTS)
    assert len(seen[True]) == len(TEXTS) - 2 + 3 * len(DEFAULT_TEMPLATES)


def test_description_errors_name_the_culprit():
    with pytest.raises(ValueError, match=r"class_descriptions names \['x'\].*classes of y"):
        TextClassifier("tiny_text", class_descriptions={"x": "other"}).fit(TEXTS, LABELS)
    with pytest.raises(InvalidParameterError, match=r"class_descriptions\['pos'\] must be a non-empty"):
        TextClassifier("tiny_text", class_descriptions={"pos": ""}).fit(TEXTS, LABELS)
    with pytest.raises(ValueError, match="class_descriptions needs one label per text"):
        TextClassifier("tiny_text", class_descriptions={0: "a"}).fit(TEXTS, np.eye(2, dtype=int)[[0, 1] * 4])
    with pytest.raises(InvalidParameterError, match="class_descriptions"):
        TextClassifier("tiny_text", class_descriptions=["positive"]).fit(TEXTS, LABELS)
    with pytest.raises(InvalidParameterError, match="class_descriptions is empty"):
        TextClassifier("tiny_text", class_descriptions={}).fit(TEXTS, LABELS)


def test_templates_apply_to_every_description():
    described = described_texts({1: ["good", "fine"]}, ("{}!", "It is {}."), "owner")
    assert described == {1: ["good!", "It is good.", "fine!", "It is fine."]}
    with pytest.raises(InvalidParameterError, match="has no"):
        described_texts({1: "good"}, ("no slot",), "owner")


def test_descriptions_are_groups_of_their_own(monkeypatch):
    """With groups, the probe's penalty is cross-validated by group: each templated
    description joins as a group of its own, the users' rows keep theirs."""
    import sktransfer.finetune._base as base

    seen = []
    real = base.fit_head_on_features

    def spy(*args, groups=None, **kwargs):
        seen.append(groups)
        return real(*args, groups=groups, **kwargs)

    monkeypatch.setattr(base, "fit_head_on_features", spy)
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    TextClassifier("tiny_text", class_descriptions=DESCRIPTIONS, **PARAMS).fit(TEXTS, LABELS, groups=groups)
    extra = len(spelled_out()[0])
    assert len(seen[-1]) == len(TEXTS) + extra
    assert len(np.unique(seen[-1][: len(TEXTS)])) == 4  # the users' four groups
    assert len(np.unique(seen[-1])) == 4 + extra
