"""ZeroShotTextClassifier: classes named or described in words, texts matched to them.

A sentence encoder puts a text and a description of its class close together. Each
class is represented by the mean embedding of its descriptions put into several
templates ("This is {}.", ...): averaging the wordings steadies a choice that a
single wording moves by several points. Given unlabelled texts, ``fit`` adapts
transductively, as a careful practitioner would by hand: it centres the embeddings
on those texts (the direction all of them share says nothing about the class), then
self-trains a logistic regression on its most confident predictions for a few
rounds, which also calibrates the class priors to these texts.
"""

import os
from numbers import Integral, Real

import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._descriptions import (
    ScoredClassesMixin,
    class_prototypes,
    classes_and_descriptions,
    expanded_prototypes,
    resolved_templates,
    vocabulary_words,
)
from .._persistence import Portable
from ..data import text_inputs
from ..embedding import TextEmbedder
from ._transductive import TransductiveMixin

WORD_BATCH = 512  # vocabulary words embedded per batch by expand_labels


class ZeroShotTextClassifier(Portable, TransductiveMixin, ScoredClassesMixin, ClassifierMixin, BaseEstimator):
    """Classify texts by their similarity to words that describe each class; no labels needed.

    Parameters
    ----------
    backbone : str, path or TextEmbedder, default="all-MiniLM-L6-v2"
        The sentence encoder (a name as for :class:`~sktransfer.TextEmbedder`, or a
        configured ``TextEmbedder``). all-mpnet-base-v2 is much stronger here when
        installed (see docs/backbones.md).
    labels : list of str, dict or None, default=None
        The classes and the words that describe them: a list of class names (the
        classes are the names), or a dict ``{class: description}`` whose values are a
        string or a list of strings (averaged). None: the classes of ``y`` in
        :meth:`fit`, their names as written (``str(class)``).
    templates : "default", list of str or None, default="default"
        Wordings with a ``{}`` that each description is put into, averaged per class;
        "default" is twelve generic wordings ("This is {}.", ...); None uses the descriptions as given
        (for full sentences).
    expand_labels : int, default=0
        Words from the encoder's own vocabulary added to each class's descriptions: the
        ones closest to that class and farther from the others (label-word expansion).
        "negative" and "positive" gain "hated", "harsh", "worse"... and "cheerful",
        "praised", "pleasant"..., a broader picture of each class than its name. Without
        texts to adapt to (``transductive=False``), 400 words a class raised
        all-MiniLM-L6-v2 from 0.685 to 0.720 on SST-2 dev, a number chosen on other data
        (see docs/fewshot.md). It costs one pass of the encoder over its vocabulary
        (about 21,000 words: 14 s for all-MiniLM-L6-v2 on 2 CPU cores; use ``cache`` to
        pay it once). ``label_words_`` lists the words.
    transductive : bool, default=True
        Adapt to the texts passed to :meth:`fit` (centring, then self-training on the
        most confident predictions). False: plain cosine similarity, nothing learned
        from ``X``.
    rounds : int, default=5
        Self-training rounds (transductive only); 0 keeps the centred similarities.
    temperature : float, default=0.05
        Softmax temperature of the cosine similarities in ``predict_proba`` when
        nothing was learned (``transductive=False``, or ``rounds=0``).
    batch_size : int, default=32
        Passed to the encoder.
    device : str or torch.device, default="auto"
        Passed to the encoder.
    cache : None, str or path, default=None
        A feature cache directory, passed to the encoder.
    verbose : int, default=0
        Progress bars while embedding.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    descriptions_ : dict
        ``{class: [texts embedded for it]}``, templates applied.
    label_words_ : dict
        ``{class: [words]}`` added by ``expand_labels`` (empty lists without it).
    embedder_ : TextEmbedder
        The fitted encoder.
    prototypes_ : ndarray of shape (n_classes, n_features)
        The unit-norm mean embedding of each class's descriptions (and added words).
    center_ : ndarray of shape (n_features,) or None
        The mean embedding of the texts given to :meth:`fit` (transductive), else None.
    head_ : LogisticRegression or None
        The self-trained classifier (transductive with ``rounds > 0``), else None.

    Examples
    --------
    >>> from sktransfer import ZeroShotTextClassifier
    >>> clf = ZeroShotTextClassifier(labels={0: "negative", 1: "positive"})
    >>> clf.fit(unlabelled_reviews).predict(["a gripping, funny film"])  # doctest: +SKIP
    """

    _parameter_constraints = {
        "backbone": [str, os.PathLike, HasMethods(["fit", "transform"])],
        "labels": [None, list, tuple, dict],
        "templates": [StrOptions({"default"}), list, tuple, None],
        "expand_labels": [Interval(Integral, 0, None, closed="left")],
        "transductive": ["boolean"],
        "rounds": [Interval(Integral, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "cache": [None, str, os.PathLike],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        backbone="all-MiniLM-L6-v2",
        labels=None,
        *,
        templates="default",
        expand_labels=0,
        transductive=True,
        rounds=5,
        temperature=0.05,
        batch_size=32,
        device="auto",
        cache=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.labels = labels
        self.templates = templates
        self.expand_labels = expand_labels
        self.transductive = transductive
        self.rounds = rounds
        self.temperature = temperature
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.verbose = verbose

    def fit(self, X, y=None):
        """Embed the class descriptions and, when ``transductive``, adapt to the texts ``X``.

        ``y`` is never used to learn: it only supplies the classes when ``labels`` is
        None (so the estimator runs in ``cross_val_score`` as a baseline).

        Parameters
        ----------
        X : sequence of str
            Unlabelled texts like those to classify (may be empty when not
            ``transductive``).
        y : array-like of shape (n_samples,), default=None
            Only its distinct values are read, and only when ``labels`` is None.

        Returns
        -------
        self : object
        """
        self._validate_params()
        owner = type(self).__name__
        self.classes_, described = classes_and_descriptions(self.labels, y, self.templates, owner)
        self.descriptions_ = described
        embedder = (
            clone(self.backbone)
            if hasattr(self.backbone, "transform")
            else TextEmbedder(
                self.backbone,
                batch_size=self.batch_size,
                device=self.device,
                cache=self.cache,
                verbose=self.verbose,
            )
        )
        # One column of a DataFrame or an (n, 1) array is read as TextEmbedder reads it;
        # no texts at all is allowed when nothing is adapted to them.
        texts = [] if X is None or (hasattr(X, "__len__") and len(X) == 0) else text_inputs(X, owner)
        self.embedder_ = embedder.fit(texts or ["a"])
        self.prototypes_ = class_prototypes(self.embedder_.transform, described)
        self.label_words_ = {c: [] for c in self.classes_.tolist()}
        if self.expand_labels:
            self._expand_labels(owner)
        self._fit_adaptation(texts, self.embedder_.transform, owner, "texts")
        return self

    def _expand_labels(self, owner):
        """Add ``expand_labels`` vocabulary words to each class (see the parameter)."""
        tokenizer = getattr(getattr(self.embedder_, "backbone_", None), "tokenizer", None)
        if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
            raise ValueError(
                f"{owner}: expand_labels={self.expand_labels} draws words from the encoder's "
                f"tokenizer, and backbone {self.backbone!r} exposes none; pass a model name or a "
                "TextEmbedder, or set expand_labels=0."
            )
        words = vocabulary_words(tokenizer)
        per_template = len(resolved_templates(self.templates))
        counts = [len(self.descriptions_[c]) // per_template for c in self.classes_.tolist()]
        chosen, self.prototypes_ = expanded_prototypes(
            self.prototypes_, counts, words, self._embed_words(words), self.expand_labels
        )
        self.label_words_ = dict(zip(self.classes_.tolist(), chosen))

    def _embed_words(self, words):
        """``words`` embedded in large batches: single words pad to a few tokens, and the
        per-batch overhead dominates at the encoder's usual batch size (22 s against 14 s
        for all-MiniLM-L6-v2's vocabulary on 2 CPU cores)."""
        batch_size = self.embedder_.get_params().get("batch_size")
        if batch_size is None:
            return self.embedder_.transform(words)
        self.embedder_.set_params(batch_size=max(batch_size, WORD_BATCH))  # our own fitted copy
        try:
            return self.embedder_.transform(words)
        finally:
            self.embedder_.set_params(batch_size=batch_size)

    def _scores(self, X):
        check_is_fitted(self, "prototypes_")
        texts = text_inputs(X, type(self).__name__)
        return self._adapted_scores(self.embedder_.transform(texts), 1.0 / self.temperature)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
