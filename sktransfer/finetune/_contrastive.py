"""Contrastive few-shot training of a sentence encoder (the SetFit recipe, Tunstall et al. 2022).

With a handful of labelled texts, a new head trained end to end overfits at once.
SetFit first teaches the encoder the task's notion of similarity: pairs of labelled
texts, positive when they share a class, negative otherwise, and a loss that pulls the
cosine similarity of each pair towards 1 or 0. Sixteen texts give hundreds of pairs.
The head is then fitted on the adapted encoder's frozen features.
"""

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from .._device import autocast
from ._schedules import WarmupCosine

# SetFit's defaults: 20 pair iterations per labelled text, body learning rate 2e-5, one epoch.
MAX_ITERATIONS = 20
TARGET_PAIRS = 1024  # with many labelled texts, fewer iterations each: the pair count levels off
CONTRASTIVE_LR = 2e-5


def pair_iterations(n_texts):
    """Pair iterations per labelled text: SetFit's 20 for few texts, fewer for many."""
    return int(np.clip(math.ceil(TARGET_PAIRS / max(1, n_texts)), 1, MAX_ITERATIONS))


def contrastive_pairs(y, rng, iterations=None, weights=None):
    """``(anchor, partner, same)`` index pairs: for each labelled row and iteration, one
    partner of its class and one of another class (balanced positives and negatives).

    Rows with zero weight take no part; a class with a single row has no positive partner
    but still serves as a negative one.
    """
    y = np.asarray(y)
    usable = np.arange(len(y)) if weights is None else np.flatnonzero(np.asarray(weights) > 0)
    iterations = iterations or pair_iterations(len(usable))
    by_class = {c: usable[y[usable] == c] for c in np.unique(y[usable])}
    anchors, partners, same = [], [], []
    for _ in range(iterations):
        for i in usable:
            own = by_class[y[i]]
            others = usable[y[usable] != y[i]]
            if len(own) > 1:
                j = i
                while j == i:
                    j = own[rng.integers(len(own))]
                anchors.append(i)
                partners.append(j)
                same.append(1.0)
            if len(others):
                anchors.append(i)
                partners.append(others[rng.integers(len(others))])
                same.append(0.0)
    order = rng.permutation(len(anchors))
    return np.asarray(anchors)[order], np.asarray(partners)[order], np.asarray(same, dtype=np.float32)[order]


def train_contrastive(model, texts, y, *, device, batch_size, seed, weights=None, augment=None, verbose=0):
    """One epoch of cosine-similarity pair training of ``model``'s encoder (its trainable
    blocks); returns ``(number of pairs, mean loss of the last steps)``."""
    rng = np.random.default_rng(seed)
    anchors, partners, same = contrastive_pairs(y, rng, weights=weights)
    if not len(anchors):
        return 0, float("nan")
    pair_weight = np.ones(len(anchors), dtype=np.float32)
    if weights is not None:
        w = np.asarray(weights, dtype=np.float32)
        pair_weight = w[anchors] * w[partners]
    params = [p for p in model.backbone.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=CONTRASTIVE_LR, weight_decay=0.0)
    steps = math.ceil(len(anchors) / batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(steps))
    # fp16 gradients underflow without loss scaling (bf16 and fp32 need none), as in TransferNet.
    scaler = torch.amp.GradScaler(device.type) if model.autocast_dtype == torch.float16 else None
    backbone = model.backbone
    model.train()
    losses = []
    texts = list(texts)
    for start in tqdm(range(0, len(anchors), batch_size), disable=verbose < 1, desc="contrastive pairs"):
        batch = slice(start, start + batch_size)
        left = [texts[i] for i in anchors[batch]]
        right = [texts[j] for j in partners[batch]]
        if augment is not None:  # each side edited on its own: a pair of two variants
            left, right = [augment(t) for t in left], [augment(t) for t in right]
        tokens = model.adapter.to_device(
            dict(backbone.tokenize(left + right, model.adapter.max_length)), device
        )
        with autocast(device, model.autocast_dtype):
            features = model.features(tokens).float()
        u, v = features[: len(left)], features[len(left) :]
        cosine = torch.nn.functional.cosine_similarity(u, v)
        target = torch.as_tensor(same[batch], device=cosine.device)
        w = torch.as_tensor(pair_weight[batch], device=cosine.device)
        loss = (w * (cosine - target) ** 2).sum() / w.sum().clamp_min(1e-12)
        optimizer.zero_grad(set_to_none=True)
        if scaler is None:
            loss.backward()
            optimizer.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return len(anchors), float(np.mean(losses[-10:]))
