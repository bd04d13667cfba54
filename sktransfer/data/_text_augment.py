"""Token-level text augmentation: EDA's edits (Wei & Zou, 2019) without a thesaurus.

Three edits, each touching about ``RATE`` of a text's words: random deletion, swaps of
neighbouring words, and replacement by a "synonym", a word's nearest neighbour in the
encoder's own token-embedding table (no thesaurus ships offline; neighbours there are
often related words, sometimes antonyms, which is why the edits stay rare). Random
draws come from torch's RNG, which the estimators seed from ``random_state`` (and
DataLoader workers from it), so a fit is reproducible.
"""

import numpy as np
import torch

RATE = 0.1
NEIGHBOURS = 5  # a replacement is drawn among a word's 5 nearest tokens
TEXT_AUGMENT_PRESETS = {
    "none": (),
    "delete": ("delete",),
    "swap": ("swap",),
    "synonym": ("synonym",),
    "eda": ("delete", "swap", "synonym"),
}


def _draw(n):
    return int(torch.randint(n, ()))


class TextAugmenter:
    """``text -> text`` with the ``edits`` of a preset, applied in order."""

    def __init__(self, edits, neighbours=None, rate=RATE):
        self.edits = edits
        self.neighbours = neighbours
        self.rate = rate

    def __call__(self, text):
        words = text.split()
        if len(words) < 2:
            return text
        for edit in self.edits:
            words = getattr(self, f"_{edit}")(words)
        return " ".join(words)

    def _delete(self, words):
        kept = [w for w, drop in zip(words, torch.rand(len(words)) < self.rate) if not drop]
        return kept or [words[_draw(len(words))]]

    def _swap(self, words):
        if len(words) < 2:  # a deletion may have left one word
            return words
        words = list(words)
        for _ in range(max(1, round(self.rate * len(words)))):
            i = _draw(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        return words

    def _synonym(self, words):
        chosen = torch.rand(len(words)) < self.rate
        return [self.neighbours.replace(w) if pick else w for w, pick in zip(words, chosen)]


class TokenNeighbours:
    """Nearest whole-word tokens in an encoder's input-embedding table, found on demand
    (one row against the table per new word) and remembered."""

    def __init__(self, tokenizer, embeddings):
        vocab = tokenizer.get_vocab()
        special = set(getattr(tokenizer, "all_special_tokens", ()))
        words = [t for t in vocab if t.isalpha() and len(t) > 1 and t not in special]
        self.words = np.array(words)
        self.index = {w: i for i, w in enumerate(words)}
        table = embeddings[[vocab[w] for w in words]].float()
        self.table = torch.nn.functional.normalize(table, dim=1)
        self.known = {}

    def replace(self, word):
        key = word.lower()
        if key not in self.index:
            return word  # several tokens, punctuation, or unknown: left as it is
        if key not in self.known:
            similarity = self.table @ self.table[self.index[key]]
            nearest = torch.topk(similarity, min(NEIGHBOURS + 1, len(self.words))).indices.tolist()
            self.known[key] = [str(self.words[i]) for i in nearest if i != self.index[key]][:NEIGHBOURS]
        options = self.known[key]
        return options[_draw(len(options))] if options else word


def text_augmenter(augment, backbone, owner):
    """The ``text -> text`` function of ``augment`` (a preset name or the user's
    callable), or None for "none"."""
    if callable(augment):
        return augment
    edits = TEXT_AUGMENT_PRESETS[augment]
    if not edits:
        return None
    neighbours = None
    if "synonym" in edits:
        tokenizer = getattr(backbone, "tokenizer", None)
        model = getattr(backbone, "model", None)
        if not (hasattr(tokenizer, "get_vocab") and hasattr(model, "get_input_embeddings")):
            raise ValueError(
                f"{owner}: augment={augment!r} replaces words by their neighbours in the encoder's "
                f"token-embedding table, and backbone {backbone.name!r} has no word vocabulary to "
                "draw from; use augment='delete' or 'swap', or a callable."
            )
        with torch.no_grad():
            neighbours = TokenNeighbours(tokenizer, model.get_input_embeddings().weight.detach().cpu())
    return TextAugmenter(edits, neighbours)


class AugmentedTexts(torch.utils.data.Dataset):
    """Texts edited afresh each time they are read (every epoch sees new variants)."""

    def __init__(self, texts, augment):
        self.texts = texts
        self.augment = augment

    def __len__(self):
        return len(self.texts)

    def __getitem__(self, index):
        return self.augment(self.texts[index])
