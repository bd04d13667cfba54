"""Pooling of unpooled backbone outputs into one vector per sample."""

import torch

POOLINGS = ("auto", "avg", "max", "avg+max", "cls")


def pool(features, pooling, mask=None):
    """``(N, C, H, W)`` maps, ``(N, L, C)`` tokens (``mask``: ``(N, L)``, 1 = real token) or
    ``(N, C)`` vectors -> ``(N, D)``."""
    if features.ndim == 2:
        return features
    if features.ndim == 4:
        if pooling == "cls":
            raise ValueError(
                "pooling='cls' needs a transformer backbone that outputs tokens; this backbone "
                "outputs feature maps: use 'avg', 'max' or 'avg+max'."
            )
        flat = features.flatten(2)  # (N, C, H*W)
        avg = flat.mean(dim=2)
        top = flat.amax(dim=2)
    elif features.ndim == 3:
        if pooling == "cls":
            return features[:, 0]
        if mask is None:
            mask = torch.ones(features.shape[:2], device=features.device)
        weights = mask.unsqueeze(-1).to(features.dtype)
        avg = (features * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        top = features.masked_fill(weights == 0, torch.finfo(features.dtype).min).amax(dim=1)
    else:
        raise ValueError(f"Cannot pool backbone output of shape {tuple(features.shape)}.")
    if pooling == "avg":
        return avg
    if pooling == "max":
        return top
    return torch.cat([avg, top], dim=1)
