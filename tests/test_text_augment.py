"""Token-level text augmentation of the text estimators."""

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from sktransfer import TextClassifier
from sktransfer.data import AugmentedTexts, text_augmenter
from sktransfer.data._text_augment import TextAugmenter, TokenNeighbours

TEXTS = ["good film", "great plot", "fine acting", "lovely", "bad film", "awful plot", "poor acting", "dull"]
LABELS = np.array(["pos"] * 4 + ["neg"] * 4)
SENTENCE = "one two three four five six seven eight nine ten"


def variants(augmenter, text=SENTENCE, n=50, seed=0):
    torch.manual_seed(seed)
    return [augmenter(text) for _ in range(n)]


def test_deletion_and_swaps_edit_about_a_tenth_of_the_words():
    words = SENTENCE.split()
    deleted = variants(TextAugmenter(("delete",)))
    assert all(set(v.split()) <= set(words) for v in deleted)
    assert 0.5 < np.mean([len(words) - len(v.split()) for v in deleted]) < 1.5  # 10 % of 10 words
    swapped = variants(TextAugmenter(("swap",)))
    assert all(sorted(v.split()) == sorted(words) for v in swapped)
    assert all(sum(a != b for a, b in zip(v.split(), words)) == 2 for v in swapped)  # one neighbour swap
    assert variants(TextAugmenter(("delete", "swap"))) == variants(TextAugmenter(("delete", "swap")))
    assert TextAugmenter(("delete",))("single") == "single"
    # a deletion that leaves one word, then a swap: nothing left to swap
    short = variants(TextAugmenter(("delete", "swap"), rate=0.9), text="two words", n=30)
    assert {len(v.split()) for v in short} <= {1, 2}


class FakeTokenizer:
    all_special_tokens = ["[CLS]"]

    def get_vocab(self):
        return {"[CLS]": 0, "good": 1, "fine": 2, "bad": 3, "##ing": 4, "great": 5}


def test_synonyms_are_the_nearest_whole_word_tokens():
    embeddings = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [1.0, 0.05], [0.95, 0.0]])
    neighbours = TokenNeighbours(FakeTokenizer(), embeddings)
    torch.manual_seed(0)
    drawn = {neighbours.replace("Good") for _ in range(40)}
    assert "##ing" not in drawn and "[CLS]" not in drawn and "good" not in drawn
    assert neighbours.known["good"][:2] == ["great", "fine"]  # nearest first
    assert neighbours.replace("unknown") == "unknown"


def test_synonym_needs_a_word_vocabulary():
    with pytest.raises(ValueError, match="augment='synonym'.*no word vocabulary.*'delete' or 'swap'"):
        TextClassifier("tiny_text", augment="synonym", max_epochs=1).fit(TEXTS, LABELS)
    with pytest.raises(InvalidParameterError, match="augment"):
        TextClassifier("tiny_text", augment="paraphrase").fit(TEXTS, LABELS)


def test_only_training_rows_are_augmented(monkeypatch):
    seen = []

    def shout(text):
        seen.append(text)
        return text.upper()

    model = TextClassifier(
        "tiny_text",
        augment=shout,
        early_stopping=True,
        validation_fraction=0.25,
        max_epochs=2,
        random_state=0,
    )
    model.fit(TEXTS, LABELS)
    held_out = set(TEXTS) - set(seen)
    assert len(held_out) == 2 and len(seen) == 2 * (len(TEXTS) - 2)  # 2 epochs of the 6 training rows
    assert not model.used_precomputed_features_  # augmented texts: features every epoch
    seen.clear()
    model.predict(TEXTS)
    assert seen == []


def test_augmented_fits_are_reproducible_and_differ_from_plain_ones():
    params = dict(freeze="none", max_epochs=2, batch_size=4, random_state=0)
    first = TextClassifier("tiny_text", augment="delete", **params).fit(TEXTS, LABELS)
    again = TextClassifier("tiny_text", augment="delete", **params).fit(TEXTS, LABELS)
    plain = TextClassifier("tiny_text", **params).fit(TEXTS, LABELS)
    np.testing.assert_allclose(first.predict_proba(TEXTS), again.predict_proba(TEXTS), rtol=1e-5, atol=1e-6)
    assert not np.allclose(first.predict_proba(TEXTS), plain.predict_proba(TEXTS))
    assert first.augment_ == "delete" and plain.augment_ == "none"


def test_contrastive_pairs_see_augmented_texts():
    seen = []
    model = TextClassifier(
        "tiny_text", strategy="contrastive", augment=lambda t: seen.append(t) or t, max_epochs=1
    )
    model.fit(TEXTS, LABELS)
    assert len(seen) >= 2 * model.contrastive_pairs_  # both sides of every pair


def test_augmented_texts_are_edited_at_each_read():
    texts = AugmentedTexts(["a b c d e f g h i j"] * 2, TextAugmenter(("swap",)))
    torch.manual_seed(0)
    assert len(texts) == 2 and len({texts[0] for _ in range(20)}) > 1
    assert text_augmenter("none", None, "owner") is None
