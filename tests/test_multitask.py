"""ImageMultiTask and TextMultiTask: several tasks on one backbone, missing labels masked."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from sktransfer import ImageMultiTask, TextMultiTask
from sktransfer.finetune._multitask import MultiTaskLoss, Task

TEXTS = ["good film", "bad film", "great plot", "awful plot", "fine acting", "poor acting"] * 2
ONE_BATCH = dict(batch_size=64, max_epochs=2, head_init="random", random_state=0, lr=1e-2)


def text_targets():
    return pd.DataFrame(
        {
            "sentiment": ["pos", "neg"] * 6,
            "length": [len(t) + 0.25 for t in TEXTS],
            "topic": ["film", "film", "plot", "plot", "acting", "acting"] * 2,
        }
    )


def images(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 16, 16, 3), dtype=np.uint8)


def test_predictions_per_task():
    y = text_targets()
    model = TextMultiTask("tiny_text", weights=None, max_epochs=2, random_state=0).fit(TEXTS, y)
    predicted = model.predict(TEXTS)
    assert list(predicted.columns) == ["sentiment", "length", "topic"]
    assert set(predicted["sentiment"]) <= {"pos", "neg"} and predicted["length"].dtype == np.float64
    proba = model.predict_proba(TEXTS)
    assert list(proba) == ["sentiment", "topic"]
    assert proba["topic"].shape == (12, 3) and np.allclose(proba["topic"].sum(axis=1), 1)
    assert [t.kind for t in model.tasks_.values()] == ["classification", "regression", "classification"]
    assert model.net_.module_.head.linear.out_features == 2 + 1 + 3  # one head, sliced per task
    scores = model.score_tasks(TEXTS, y)
    assert list(scores.index) == ["sentiment", "length", "topic"]
    assert model.score(TEXTS, y) == pytest.approx(scores.mean())


def test_the_loss_ignores_missing_labels():
    tasks = [Task("a", "classification", 0, 2), Task("b", "regression", 2, 3, weight=0.5)]
    loss = MultiTaskLoss(tasks)
    logits = torch.randn(4, 3, requires_grad=True)
    target = torch.tensor([[0, 0.3], [1, float("nan")], [float("nan"), -1.0], [1, 2.0]])
    value = loss(logits, target)
    value.backward()
    # task a never sees row 2, task b never sees row 1
    assert torch.all(logits.grad[2, :2] == 0) and logits.grad[1, 2] == 0
    labelled_a = torch.nn.functional.cross_entropy(logits[[0, 1, 3], :2], torch.tensor([0, 1, 1]))
    labelled_b = ((logits[[0, 2, 3], 2] - torch.tensor([0.3, -1.0, 2.0])) ** 2).mean()
    assert float(value.detach()) == pytest.approx(float((labelled_a + 0.5 * labelled_b).detach()), rel=1e-6)
    assert torch.isfinite(value)


def test_tasks_labelled_on_different_rows_share_a_backbone():
    y = text_targets()[["sentiment", "topic"]].astype(object)
    y.loc[:5, "sentiment"] = None  # sentiment known on the second half only
    y.loc[6:, "topic"] = np.nan  # topic on the first half only
    model = TextMultiTask("tiny_text", weights=None, max_epochs=2, random_state=0).fit(TEXTS, y)
    batch = model.net_.history[-1, "batches", -1]
    assert np.isfinite(batch["train_sentiment_loss"]) and np.isfinite(batch["train_topic_loss"])
    assert set(model.tasks_["sentiment"].classes) == {"pos", "neg"}
    assert model.score_tasks(TEXTS, y).notna().all()  # each task scored on its own rows


def test_task_weights_scale_the_losses():
    y = text_targets()
    base = TextMultiTask("tiny_text", weights=None, **ONE_BATCH).fit(TEXTS, y)
    muted = TextMultiTask("tiny_text", weights=None, task_weights={"topic": 0.0}, **ONE_BATCH).fit(TEXTS, y)
    first = muted.net_.history[0, "batches", 0]
    assert first["train_loss"] == pytest.approx(
        first["train_sentiment_loss"] + first["train_length_loss"], rel=1e-5
    )
    assert not np.allclose(base.predict_proba(TEXTS)["topic"], muted.predict_proba(TEXTS)["topic"])


def test_integer_weights_equal_repeated_rows():
    y = text_targets()
    y.loc[3, "length"] = np.nan
    weights = np.ones(12)
    weights[0], weights[1], weights[2] = 3, 0, 2
    model = TextMultiTask("tiny_text", weights=None, **ONE_BATCH)
    weighted = clone(model).fit(TEXTS, y, sample_weight=weights)
    repeat = np.repeat(np.arange(12), weights.astype(int))
    repeated = clone(model).fit([TEXTS[i] for i in repeat], y.iloc[repeat])
    np.testing.assert_allclose(
        weighted.predict(TEXTS)["length"], repeated.predict(TEXTS)["length"], rtol=1e-4
    )
    np.testing.assert_allclose(
        weighted.predict_proba(TEXTS)["topic"], repeated.predict_proba(TEXTS)["topic"], rtol=1e-4, atol=1e-5
    )


def test_images_with_a_frozen_backbone_use_the_feature_shortcut():
    X = images()
    y = pd.DataFrame({"kind": ["a", "b", "c"] * 4, "brightness": X.mean(axis=(1, 2, 3)) + 0.5})
    model = ImageMultiTask("tiny_cnn", weights=None, freeze="backbone", max_epochs=3, random_state=0).fit(
        X, y
    )
    assert model.used_precomputed_features_
    assert model.predict(X).shape == (12, 2)


def test_an_array_y_with_a_tasks_description():
    X = images()
    y = np.column_stack([np.array([0, 1] * 6), np.arange(12.0)])  # whole numbers: say "regression"
    model = ImageMultiTask(
        "tiny_cnn", weights=None, tasks={"odd": "classification", "index": "regression"}, max_epochs=1
    ).fit(X, y)
    assert model.tasks_["index"].kind == "regression" and list(model.predict(X).columns) == ["odd", "index"]
    listed = ImageMultiTask("tiny_cnn", weights=None, tasks=["classification", "regression"], max_epochs=1)
    assert list(listed.fit(X, y).predict(X).columns) == ["task_0", "task_1"]


def test_cross_validation_clone_and_pickle():
    y = text_targets()[["sentiment", "length"]]
    model = TextMultiTask("tiny_text", weights=None, max_epochs=1, random_state=0)
    scores = cross_val_score(model, np.array(TEXTS, dtype=object), y, cv=3)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    fitted = clone(model).fit(TEXTS, y)
    again = pickle.loads(pickle.dumps(fitted))
    pd.testing.assert_frame_equal(again.predict(TEXTS), fitted.predict(TEXTS))


def unlabel_row(y, row):
    y = y.astype(object)
    y.iloc[row] = None
    return y


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda y: y.assign(sentiment="pos"), "task 'sentiment' has a single class"),
        (lambda y: y.assign(length=None), "task 'length' has no label"),
        (lambda y: unlabel_row(y, 2), "row 2 of y has no label in any task"),
    ],
)
def test_bad_targets_name_the_task(change, match):
    with pytest.raises(ValueError, match=match):
        TextMultiTask("tiny_text", weights=None, max_epochs=1).fit(TEXTS, change(text_targets()))


def test_bad_task_descriptions():
    y = text_targets()
    with pytest.raises(ValueError, match=r"tasks\['topic'\]='ranking' is not one of"):
        TextMultiTask(
            "tiny_text",
            weights=None,
            tasks={"sentiment": "classification", "length": "regression", "topic": "ranking"},
        ).fit(TEXTS, y)
    with pytest.raises(ValueError, match="tasks names .* but y has the columns"):
        TextMultiTask("tiny_text", weights=None, tasks={"sentiment": "classification"}).fit(TEXTS, y)
    with pytest.raises(ValueError, match="task_weights names \\['mood'\\]"):
        TextMultiTask("tiny_text", weights=None, task_weights={"mood": 2.0}).fit(TEXTS, y)
    with pytest.raises(ValueError, match="task 'sentiment' is a regression but its labels are not numbers"):
        TextMultiTask(
            "tiny_text",
            weights=None,
            tasks={"sentiment": "regression", "length": "regression", "topic": "classification"},
        ).fit(TEXTS, y)
    with pytest.raises(ValueError, match="must be a DataFrame or a 2-D array"):
        TextMultiTask("tiny_text", weights=None).fit(TEXTS, y["sentiment"].to_numpy())


def test_continuing_keeps_the_tasks():
    y = text_targets()
    model = TextMultiTask("tiny_text", weights=None, max_epochs=1, warm_start=True).fit(TEXTS, y)
    model.fit(TEXTS, y)
    assert model.n_epochs_ == 2
    with pytest.raises(ValueError, match="predicts the tasks"):
        model.fit(TEXTS, y[["sentiment", "topic"]])


def test_regressions_come_back_in_their_units():
    X = images()
    target = 1000.0 + 50.0 * (X.mean(axis=(1, 2, 3)) > X.mean())  # two levels, far from 0
    y = pd.DataFrame({"kind": ["a", "b", "c"] * 4, "price": target + 0.5})
    model = ImageMultiTask("tiny_cnn", weights=None, freeze="backbone", max_epochs=1, random_state=0).fit(
        X, y
    )
    predicted = model.predict(X)["price"]
    assert model.tasks_["price"].mean == pytest.approx(y["price"].mean())
    assert 990 < predicted.min() and predicted.max() < 1060  # standardised outputs would be near 0


@pytest.mark.parametrize(
    "column, kind",
    [
        (pd.Series([1.0, 0.0, np.nan] * 4), "classification"),  # integer labels made float by NaN
        (pd.Series(np.arange(30.0) * 10), "regression"),  # whole numbers, more than 20 of them
        (pd.Series(np.linspace(0, 1, 12)), "regression"),
        (pd.Series(["a", "b"] * 6), "classification"),
    ],
)
def test_task_kinds_read_from_the_columns(column, kind):
    from sktransfer.finetune._multitask import _inferred_kind

    assert _inferred_kind(column) == kind


def test_an_object_array_keeps_its_numbers_numeric():
    y = np.array([["pos", 4.5], ["neg", 1.0], [None, 3.5], ["pos", np.nan]] * 3, dtype=object)
    model = TextMultiTask("tiny_text", weights=None, max_epochs=1).fit(TEXTS, y)
    assert [t.kind for t in model.tasks_.values()] == ["classification", "regression"]


def test_domains_and_unscorable_tasks_are_refused():
    y = text_targets()
    with pytest.raises(ValueError, match="sample_domain is for domain adaptation"):
        TextMultiTask("tiny_text", weights=None, max_epochs=1).fit(
            TEXTS, y, sample_domain=[1] * 10 + [-1] * 2
        )
    model = TextMultiTask("tiny_text", weights=None, max_epochs=1).fit(TEXTS, y)
    with pytest.raises(ValueError, match="task 'length' has no label in y to score against"):
        model.score_tasks(TEXTS, y.assign(length=np.nan))
    with pytest.raises(ValueError, match=r"task_weights\['topic'\]=nan must be a finite number"):
        TextMultiTask("tiny_text", weights=None, task_weights={"topic": float("nan")}).fit(TEXTS, y)
