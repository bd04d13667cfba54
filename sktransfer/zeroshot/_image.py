"""ZeroShotImageClassifier: images matched to words that describe each class, by a CLIP model.

A CLIP-family model embeds images and texts in one space, trained so that a picture
and its caption are close. Each class is the mean embedding of its descriptions put
into photo captions ("a photo of a {}.", ...); an image goes to the class whose
embedding is nearest, the cosine scaled by the model's own learned temperature.

No CLIP weights ship with sktransfer or can be downloaded at fit time: give the folder
of a Hugging Face CLIP model, or of an open_clip checkpoint, saved once where there is
internet (see :class:`ZeroShotImageClassifier`). Its images go through the library's own image
reading (paths, PIL images, arrays; clear errors naming the image), resized and
normalised as the model's preprocessor config says.
"""

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .._batches import run_batches
from .._descriptions import ScoredClassesMixin, class_prototypes, classes_and_descriptions, unit
from .._device import fast_kernels, resolve_device
from ..backbones import load_clip
from ..data import ImageAdapter, image_inputs, to_model_input
from ._transductive import TransductiveMixin

# A subset of the prompt ensemble published with CLIP (Radford et al., 2021) for ImageNet.
PHOTO_TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a bad photo of a {}.",
    "a good photo of a {}.",
    "a close-up photo of a {}.",
    "a cropped photo of a {}.",
    "a bright photo of a {}.",
    "a dark photo of a {}.",
    "a blurry photo of a {}.",
    "a photo of a large {}.",
    "a photo of a small {}.",
    "itap of a {}.",
)


class ZeroShotImageClassifier(TransductiveMixin, ScoredClassesMixin, ClassifierMixin, BaseEstimator):
    """Classify images by their similarity to words that describe each class; no labels needed.

    Parameters
    ----------
    model : str or path, default="openai/clip-vit-base-patch32"
        A local folder holding a Hugging Face CLIP-family model (``config.json``,
        weights, tokenizer and ``preprocessor_config.json``, as ``save_pretrained``
        writes them), or a hub id, which works where the hub can be reached or the
        model is in the local Hugging Face cache. An open_clip checkpoint (the
        ``[clip]`` extra): a folder holding ``open_clip_config.json`` and its weights
        (and no ``config.json``: a folder with both loads through transformers), or
        ``"hf-hub:<repo>"``.
    labels : list of str, dict or None, default=None
        The classes and the words that describe them: a list of class names, or a dict
        ``{class: description}`` whose values are a string or a list of strings
        (averaged). None: the classes of ``y`` in :meth:`fit`, named as written.
    templates : "default", list of str or None, default="default"
        Captions with a ``{}`` that each description is put into, averaged per class;
        "default" is twelve of CLIP's published ImageNet prompts ("a photo of a {}.",
        ...); None uses the descriptions as given.
    transductive : bool, default=False
        Adapt to the unlabelled images passed to :meth:`fit`, as
        :class:`ZeroShotTextClassifier` does with texts: centre the embeddings on them,
        then self-train a logistic regression on the most confident predictions. False:
        nothing is learned from ``X`` (``fit()`` needs no images).
    rounds : int, default=5
        Self-training rounds (transductive only); 0 keeps the centred similarities.
    batch_size : int, default=32
        Images per forward pass.
    device : str or torch.device, default="auto"
        "auto" picks a GPU when there is one.
    verbose : int, default=0
        A progress bar while embedding images.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    descriptions_ : dict
        ``{class: [captions embedded for it]}``.
    prototypes_ : ndarray of shape (n_classes, n_features)
        The unit-norm mean text embedding of each class's captions.
    logit_scale_ : float
        The model's learned inverse temperature, applied to the cosine similarities.
    center_ : ndarray of shape (n_features,) or None
        The mean embedding of the images given to :meth:`fit` (transductive), else None.
    head_ : LogisticRegression or None
        The self-trained classifier (transductive with ``rounds > 0``), else None.
    model_ : torch.nn.Module
        The loaded CLIP model, in evaluation mode.
    data_config_ : DataConfig
        The image preprocessing read from the model's preprocessor config.

    Notes
    -----
    Pickles with the model inside (``pickle``, ``joblib``); no portable ``skops``
    format yet.

    Examples
    --------
    >>> from sktransfer import ZeroShotImageClassifier
    >>> clf = ZeroShotImageClassifier("models/clip-vit-base-patch32", labels=["cat", "dog"])
    >>> clf.fit().predict(["photos/1.jpg"])  # doctest: +SKIP
    """

    _parameter_constraints = {
        "model": [str, os.PathLike],
        "labels": [None, list, tuple, dict],
        "templates": [StrOptions({"default"}), list, tuple, None],
        "transductive": ["boolean"],
        "rounds": [Interval(Integral, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        model="openai/clip-vit-base-patch32",
        labels=None,
        *,
        templates="default",
        transductive=False,
        rounds=5,
        batch_size=32,
        device="auto",
        verbose=0,
    ):
        self.model = model
        self.labels = labels
        self.templates = templates
        self.transductive = transductive
        self.rounds = rounds
        self.batch_size = batch_size
        self.device = device
        self.verbose = verbose

    def fit(self, X=None, y=None):
        """Load the model and embed the class descriptions; with ``transductive``, adapt
        to the unlabelled images ``X``.

        Parameters
        ----------
        X : images or None
            Unlabelled images like those to classify (``transductive=True``); otherwise
            ignored, accepted so the estimator runs in pipelines and ``cross_val_score``.
        y : array-like of shape (n_samples,), default=None
            Only its distinct values are read, and only when ``labels`` is None.

        Returns
        -------
        self : object
        """
        self._validate_params()
        owner = type(self).__name__
        templates = PHOTO_TEMPLATES if self.templates == "default" else self.templates
        self.classes_, self.descriptions_ = classes_and_descriptions(self.labels, y, templates, owner)
        self.device_ = resolve_device(self.device)
        model, tokenizer, self.data_config_ = load_clip(self.model, owner)
        self.model_ = model.to(self.device_).eval()
        self.logit_scale_ = (
            float(self.model_.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0
        )

        def embed_texts(texts):
            out = []
            for start in range(0, len(texts), self.batch_size):  # many classes: bounded memory
                chunk = texts[start : start + self.batch_size]
                tokens = tokenizer(chunk, padding=True, truncation=True, return_tensors="pt")
                tokens = {k: v.to(self.device_) for k, v in tokens.items()}
                with torch.inference_mode():
                    out.append(_features(self.model_.get_text_features(**tokens)).float().cpu().numpy())
            return np.concatenate(out)

        self.prototypes_ = class_prototypes(embed_texts, self.descriptions_)
        images = [] if X is None or not self.transductive else image_inputs(X, owner)
        self._fit_adaptation(images, self.transform, owner, "images")
        return self

    def transform(self, X):
        """The unit-norm image embeddings of ``X`` (CLIP's image space)."""
        check_is_fitted(self, "prototypes_")
        owner = type(self).__name__
        X = image_inputs(X, owner)
        adapter = ImageAdapter(self.data_config_)
        batches = adapter.batches(X, batch_size=self.batch_size, pin_memory=self.device_.type == "cuda")

        def embed(batch):
            pixels = to_model_input(batch, self.data_config_, self.device_)
            return _features(self.model_.get_image_features(pixel_values=pixels)).float().cpu().numpy()

        chunks = []  # image batches come in input order
        with torch.inference_mode(), fast_kernels(self.device_):
            run_batches(
                embed,
                batches,
                total=len(X),
                store=lambda indices, rows: chunks.append(rows),
                device=self.device_,
                owner=owner,
                verbose=self.verbose,
            )
        return unit(np.concatenate(chunks))

    def _scores(self, X):
        return self._adapted_scores(self.transform(X), self.logit_scale_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        return tags


def _features(output):
    """transformers < 5 returns the projected embeddings; 5 wraps them in ``pooler_output``."""
    return output if torch.is_tensor(output) else output.pooler_output
