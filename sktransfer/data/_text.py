"""Text inputs: lists, arrays, Series or one-column DataFrames of strings."""

import numpy as np
import torch
from torch.utils.data import default_collate

from ..exceptions import InvalidInputError
from ._loader import loader_options


def text_inputs(X, owner="TextEmbedder"):
    """Check ``X`` and return it as a list of ``str``, naming any bad entry by index."""
    if hasattr(X, "columns"):
        if X.shape[1] != 1:
            raise InvalidInputError(
                f"{owner} expects one text column, got {X.shape[1]} columns {list(X.columns)}; "
                "select the text column (in a ColumnTransformer, pass its name as a string)."
            )
        X = X.iloc[:, 0]
    if hasattr(X, "iloc"):
        X = X.tolist()
    if isinstance(X, str):
        raise InvalidInputError(f"{owner} expects a collection of texts, got one string; wrap it: [text].")
    if isinstance(X, np.ndarray):
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise InvalidInputError(
                f"{owner} expects a 1-D collection of texts, got an array of shape {X.shape}."
            )
        X = X.tolist()
    if not isinstance(X, (list, tuple)):
        raise InvalidInputError(
            f"{owner} cannot read texts from a {type(X).__name__}; pass a list or Series of str."
        )
    if len(X) == 0:
        raise InvalidInputError(f"{owner} got an empty X: there are no texts to process.")
    for index, text in enumerate(X):
        if not isinstance(text, str):
            raise InvalidInputError(
                f"{owner}: text {index} is {text!r} ({type(text).__name__}), not a string. Fill or "
                "drop missing texts first (e.g. series.fillna('')), and when reading CSV/TSV files "
                "with pandas pass keep_default_na=False so words like 'null' stay text."
            )
    return list(X)


def text_batches(texts, tokenize, *, batch_size, max_length=None, num_workers=0, pin_memory=False):
    """Yield ``(indices, tokens)``, longest texts first, as ``SentenceTransformer.encode`` does.

    Sorting by length keeps padding small; callers put rows back with ``indices``.
    Tokenization runs in ``num_workers`` processes, ahead of the model.
    """
    order = np.argsort([-len(t) for t in texts], kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    loader = torch.utils.data.DataLoader(
        _TokenizedChunks(texts, chunks, tokenize, max_length),
        generator=torch.Generator(),  # keeps the global RNG untouched
        **loader_options(None, num_workers, pin_memory),
    )
    yield from zip(chunks, loader)


class _TokenizedChunks(torch.utils.data.Dataset):
    """Chunk ``i`` of texts, tokenized (in a DataLoader worker when ``num_workers > 0``)."""

    def __init__(self, texts, chunks, tokenize, max_length):
        self.texts = texts
        self.chunks = chunks
        self.tokenize = tokenize
        self.max_length = max_length

    def __len__(self):
        return len(self.chunks)

    def __getitem__(self, index):
        return dict(self.tokenize([self.texts[i] for i in self.chunks[index]], self.max_length))


class TextCollate:
    """Collate ``(text, target)`` pairs into ``(token dict, targets)``, padding per batch."""

    def __init__(self, tokenize, max_length):
        self.tokenize = tokenize
        self.max_length = max_length

    def __call__(self, batch):
        texts, targets = zip(*batch)
        return dict(self.tokenize(list(texts), self.max_length)), default_collate(list(targets))
