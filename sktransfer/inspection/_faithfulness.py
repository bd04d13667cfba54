"""How faithful attributions are: the deletion test, and the Grad-CAM blocks it prefers.

Deleting what an attribution calls most important should hurt the prediction more than
deleting as much at random (Samek et al., 2017; Petsiuk et al., 2018). Pixels are set to
the backbone's neutral colour (the mean image of its normalisation); tokens are removed
through the attention mask.
"""

import itertools
import time
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from ..data import image_inputs, read_image, text_inputs
from ._attribute import CAM_METHODS, _is_special, _spatial_blocks, _text_special_ids, attribute
from ._geometry import visible_region
from ._views import model_view


@dataclass
class DeletionResult:
    """The deletion test's outcome, input by input.

    Attributes
    ----------
    top : ndarray of shape (n_inputs,)
        Drop of the predicted class's probability when the most attributed pixels (or
        tokens) are deleted.
    random : ndarray of shape (n_inputs,)
        The same drop when as many random ones are deleted, averaged over the draws.
    flipped_top, flipped_random : float
        Share of predictions that change class (random: averaged over the draws).
    """

    top: np.ndarray
    random: np.ndarray
    flipped_top: float
    flipped_random: float

    @property
    def ratio(self):
        """Mean drop for the attributed deletion over the mean drop for random ones: above 1,
        the attribution found what the model relies on."""
        return float(self.top.mean() / self.random.mean())


def deletion_test(
    model, X, attributions, *, fraction=0.2, n_tokens=3, n_random=5, random_state=None, batch_size=32
):
    """Delete what ``attributions`` rank highest and compare with deleting at random.

    Parameters
    ----------
    model : fitted classifier or Pipeline
        A model :func:`attribute` explains, with ``predict_proba``.
    X : images or texts
        The inputs that were attributed.
    attributions : list
        :func:`attribute`'s output for ``X``: one ``(H, W)`` map per image, or one
        :class:`TokenAttribution` per text.
    fraction : float, default=0.2
        Images: the share of the pixels the network sees (inside its crop) that are set
        to the backbone's neutral colour.
    n_tokens : int, default=3
        Texts: the tokens removed (fewer when a text has fewer).
    n_random : int, default=5
        Random deletions averaged for the baseline (one draw varies by up to 15 % on
        150 photos).
    random_state : int, RandomState or None, default=None
        Seeds the random deletions.
    batch_size : int, default=32
        Texts per forward pass.

    Returns
    -------
    DeletionResult
        ``.ratio`` above 1: the attributions beat chance; the explanations guide
        reports 2 to 7 on ants vs bees and SST-2.
    """
    deletion = _deletion(model, X, fraction, n_tokens, n_random, random_state, batch_size, "deletion_test")
    return deletion.test(attributions)


def choose_cam_layers(
    model,
    X,
    method="gradcam",
    *,
    candidates=None,
    fraction=0.2,
    n_random=5,
    random_state=None,
    batch_size=8,
    verbose=0,
):
    """Choose Grad-CAM's (or HiResCAM's) blocks by the deletion test on ``X``.

    Which blocks give the most faithful map depends on the network and on how it was
    trained (the explanations guide shows it). Pass images other than those you will
    explain, such as the training images, so the choice is not fitted to them, then use
    ``attribute(model, X_new, method, layer=choice.layer)``.

    Parameters
    ----------
    model : fitted image classifier or Pipeline
        A model :func:`attribute` explains, with ``predict_proba``.
    X : images
        The images the candidates are scored on.
    method : {"gradcam", "hirescam"}, default="gradcam"
    candidates : list or None, default=None
        Each a block name or a list of names (``layer=`` of :func:`attribute`). None:
        every block at the backbone's two coarsest resolutions alone, and each pair of
        one block from each resolution (for EfficientNet-Lite0, 11 candidates).
    fraction, n_random, random_state
        As in :func:`deletion_test`; every candidate is compared with the same random
        deletions.
    batch_size : int, default=8
        Images per attribution pass.
    verbose : int, default=0
        1 shows a progress bar over the candidates.

    Returns
    -------
    CamLayerChoice
        ``.layer``: the candidate with the highest ratio; ``.report``: a DataFrame with
        one row per candidate (layer, top, random, ratio, seconds), best first.
    """
    if method not in CAM_METHODS:
        raise ValueError(
            f"choose_cam_layers: method={method!r} has no blocks to choose; use one of {CAM_METHODS}."
        )
    if model_view(model).modality != "image":
        raise ValueError("choose_cam_layers: Grad-CAM's blocks are chosen on images; this model reads texts.")
    deletion = _deletion(model, X, fraction, 3, n_random, random_state, batch_size, "choose_cam_layers")
    if candidates is None:
        candidates = _default_candidates(deletion.view)
    if not candidates:
        raise ValueError("choose_cam_layers: candidates=[] names no block; give one or more, or None.")
    rows = []
    for layer in tqdm(candidates, desc="choosing blocks", unit="candidate", disable=not verbose):
        start = time.perf_counter()
        maps = attribute(model, deletion.items, method, layer=layer, batch_size=batch_size)
        result = deletion.test(maps)
        rows.append(
            {
                "layer": layer,
                "top": float(result.top.mean()),
                "random": float(result.random.mean()),
                "ratio": result.ratio,
                "seconds": time.perf_counter() - start,
            }
        )
    report = pd.DataFrame(rows).sort_values("ratio", ascending=False, kind="stable", ignore_index=True)
    return CamLayerChoice(layer=report["layer"].iloc[0], report=report)


@dataclass
class CamLayerChoice:
    """:func:`choose_cam_layers`' outcome: ``layer`` for :func:`attribute`, and the
    ``report`` it was chosen from."""

    layer: object
    report: pd.DataFrame


def _default_candidates(view):
    sizes = _spatial_blocks(view.backbone, view)
    if not sizes:
        raise ValueError(
            f"choose_cam_layers: backbone {view.backbone.name!r} gives no feature maps (N, C, H, W) "
            "for Grad-CAM to explain (a vision transformer gives tokens)."
        )
    fine, coarse = _two_resolutions(sizes)
    return [[name] for name in fine + coarse] + [list(pair) for pair in itertools.product(fine, coarse)]


def _two_resolutions(sizes):
    """The blocks at the coarsest and the next coarser map size: ``(finer, coarsest)``."""
    levels = sorted(set(sizes.values()))[:2]
    coarse = [name for name in sizes if sizes[name] == levels[0]]
    fine = [name for name in sizes if len(levels) > 1 and sizes[name] == levels[1]]
    return fine, coarse


def _deletion(model, X, fraction, n_tokens, n_random, random_state, batch_size, owner):
    """The deletion test of ``model`` on ``X``, random baseline drawn: ``.test(attributions)``."""
    if not isinstance(fraction, Real) or not 0 < fraction < 1:
        raise ValueError(f"{owner}: fraction={fraction!r} must be a share in (0, 1).")
    for name, value in (("n_tokens", n_tokens), ("n_random", n_random), ("batch_size", batch_size)):
        if not isinstance(value, Integral) or value < 1:
            raise ValueError(f"{owner}: {name}={value!r} must be a positive integer.")
    if not hasattr(model, "predict_proba"):
        raise TypeError(
            f"{owner}: a {type(model).__name__} has no predict_proba; the test measures the drop "
            "of the predicted class's probability, so it needs a classifier."
        )
    view = model_view(model)
    rng = check_random_state(random_state)
    if view.modality == "image":
        return _ImageDeletion(model, view, X, fraction, n_random, rng, owner)
    return _TextDeletion(view.explaining("probability"), X, n_tokens, n_random, rng, batch_size, owner)


class _ImageDeletion:
    """Pixels set to the backbone's neutral colour, inside the crop the network sees."""

    def __init__(self, model, view, X, fraction, n_random, rng, owner):
        self.model, self.view, self.fraction, self.rng = model, view, fraction, rng
        self.items = image_inputs(X, owner)
        self.pictures = [np.asarray(read_image(item, i)) for i, item in enumerate(self.items)]
        self.seen = [visible_region(*p.shape[:2], view.data_config) for p in self.pictures]
        self.fill = np.round(np.asarray(view.data_config.mean) * 255).astype(np.uint8)
        self.proba = model.predict_proba(self.pictures)
        draws = [
            self._drop([self._cut(p, None, s) for p, s in zip(self.pictures, self.seen)])
            for _ in range(n_random)
        ]
        self.random = np.mean([drop for drop, _ in draws], axis=0)
        self.flipped_random = float(np.mean([flipped for _, flipped in draws]))

    def test(self, attributions):
        if len(attributions) != len(self.pictures):
            raise ValueError(
                f"deletion_test: {len(attributions)} attributions for {len(self.pictures)} images; "
                "pass attribute()'s output for the same X."
            )
        cuts = []
        for i, (picture, attribution, seen) in enumerate(zip(self.pictures, attributions, self.seen)):
            attribution = np.asarray(attribution)
            if attribution.shape != picture.shape[:2]:
                raise ValueError(
                    f"deletion_test: attribution {i} has shape {attribution.shape}, image {i} is "
                    f"{picture.shape[:2]}; pass attribute()'s maps, at each image's own size."
                )
            cuts.append(self._cut(picture, attribution, seen))
        top, flipped = self._drop(cuts)
        return DeletionResult(top, self.random, flipped, self.flipped_random)

    def _cut(self, picture, attribution, seen):
        """``picture`` with ``fraction`` of its seen pixels set to the neutral colour: the
        most attributed ones, or random ones when ``attribution`` is None."""
        candidates = np.flatnonzero(seen)
        count = int(round(self.fraction * len(candidates)))
        if attribution is None:
            chosen = self.rng.choice(candidates, count, replace=False)
        else:
            chosen = candidates[np.argsort(-attribution.ravel()[candidates], kind="stable")[:count]]
        out = picture.reshape(-1, picture.shape[-1]).copy()
        out[chosen] = self.fill
        return out.reshape(picture.shape)

    def _drop(self, cuts):
        return _drop(self.proba, self.model.predict_proba(cuts))


class _TextDeletion:
    """Tokens removed through the attention mask (special tokens never are)."""

    def __init__(self, view, X, n_tokens, n_random, rng, batch_size, owner):
        self.view, self.n_tokens, self.rng = view, n_tokens, rng
        texts = text_inputs(X, owner)
        self.batches = []
        special = _text_special_ids(view.tokenizer)
        for start in range(0, len(texts), batch_size):
            tokens = {
                k: v.to(view.device)
                for k, v in view.tokenize(list(texts[start : start + batch_size])).items()
            }
            ids, mask = tokens["input_ids"], tokens["attention_mask"]
            keep = (mask.bool() & ~_is_special(ids, special)).cpu().numpy()
            self.batches.append((ids, mask, [np.flatnonzero(row) for row in keep]))
        self.n_texts = len(texts)
        self.proba = self._proba(lambda positions, row: positions[:0])
        draws = [self._drop(lambda positions, row: self._random(positions)) for _ in range(n_random)]
        self.random = np.mean([drop for drop, _ in draws], axis=0)
        self.flipped_random = float(np.mean([flipped for _, flipped in draws]))

    def test(self, attributions):
        if len(attributions) != self.n_texts:
            raise ValueError(
                f"deletion_test: {len(attributions)} attributions for {self.n_texts} texts; "
                "pass attribute()'s output for the same X."
            )
        scores = [np.asarray(a.scores) for a in attributions]

        def top(positions, row):
            if len(scores[row]) != len(positions):
                raise ValueError(
                    f"deletion_test: attribution {row} scores {len(scores[row])} tokens, text {row} has "
                    f"{len(positions)}; pass attribute()'s output for the same X and model."
                )
            return positions[np.argsort(-scores[row], kind="stable")[: self.n_tokens]]

        top_drop, flipped = self._drop(top)
        return DeletionResult(top_drop, self.random, flipped, self.flipped_random)

    def _random(self, positions):
        return self.rng.choice(positions, min(self.n_tokens, len(positions)), replace=False)

    def _proba(self, choose):
        """Probabilities with ``choose(positions, text_index)``'s tokens masked out."""
        out, row = [], 0
        with torch.no_grad():
            for ids, mask, kept in self.batches:
                cut = mask.clone()
                for i, positions in enumerate(kept):
                    cut[i, choose(positions, row)] = 0
                    row += 1
                out.append(self.view.token_scores(ids, cut).float().cpu().numpy())
        return np.concatenate(out)

    def _drop(self, choose):
        return _drop(self.proba, self._proba(choose))


def _drop(before, after):
    """Each input's drop of the probability of the class predicted ``before``, and the
    share of inputs whose prediction changed."""
    rows, predicted = np.arange(len(before)), before.argmax(axis=1)
    flipped = float(np.mean(after.argmax(axis=1) != predicted))
    return before[rows, predicted] - after[rows, predicted], flipped
