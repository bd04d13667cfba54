"""Freeze specifications: which backbone blocks train, and at which learning rate.

A spec is ``"none"`` (everything trains), ``"backbone"`` (only the new head),
``"last:K"`` or an int ``K`` (the last K blocks of ``backbone.block_names()``
plus the head), or a list of parameter-name patterns to freeze (fnmatch, as
skorch's ``Freezer``), matched against the names of the model's parameters
(``backbone.model.<...>`` and ``head.<...>``).
"""

import fnmatch
from numbers import Integral

from sklearn.utils._param_validation import InvalidParameterError

from .._validation import did_you_mean

PRESETS = ("none", "backbone", "last:K")


def trainable_depth(spec, block_names, owner="estimator", param="freeze"):
    """The number of trainable blocks counted from the head, or None for a pattern list."""
    n = len(block_names)
    if isinstance(spec, (list, tuple)):
        if not all(isinstance(p, str) for p in spec):
            raise InvalidParameterError(f"{owner}: {param} patterns must be strings, got {spec!r}.")
        return None
    if isinstance(spec, Integral) and not isinstance(spec, bool):
        depth = int(spec)
    elif spec == "none":
        return n
    elif spec == "backbone":
        return 0
    elif isinstance(spec, str) and spec.startswith("last:") and spec[5:].strip().isdigit():
        depth = int(spec[5:])
    else:
        hint = did_you_mean(spec, ["none", "backbone"])
        raise InvalidParameterError(
            f"{owner}: {param}={spec!r} is not a freeze specification.{hint} "
            f"Use one of {', '.join(repr(p) for p in PRESETS)} (K an int, or just K), or a list of "
            f"parameter-name patterns to freeze. This backbone's blocks, input side first: {block_names}."
        )
    if not 0 <= depth <= n:
        raise InvalidParameterError(
            f"{owner}: {param}={spec!r} asks for {depth} trainable blocks, but this backbone has "
            f"{n}: {block_names}. Use 'last:{n}' or 'none' to train them all."
        )
    return depth


def apply_freeze(model, spec, owner="estimator", param="freeze"):
    """Set ``requires_grad`` on ``model`` (a TransferModel) for ``spec``; the head always trains."""
    backbone = model.backbone
    names = backbone.block_names()
    depth = trainable_depth(spec, names, owner, param)
    for p in model.parameters():
        p.requires_grad_(True)
    if depth is None:
        for name, p in model.named_parameters():
            if any(fnmatch.fnmatch(name, pattern) for pattern in spec):
                p.requires_grad_(False)
        return
    for p in backbone.parameters():
        p.requires_grad_(False)
    for block in backbone.blocks[len(names) - depth :]:
        for _, p in backbone.block_parameters(block):
            p.requires_grad_(True)


def parameter_groups(model, lr, lr_decay):
    """Optimizer groups: the head at ``lr``, block k counted from the head at ``lr * lr_decay**k``.

    ``lr`` may also be a pair: a tuple ``(head, backbone)`` or a dict ``{"head": ...,
    "backbone": ...}``. Then the block next to the head gets the backbone rate and each
    block below it ``lr_decay`` times less.
    Every parameter is in a group, trainable or not, so that gradual unfreezing
    only flips ``requires_grad`` (AdamW skips parameters without gradients).
    """
    if isinstance(lr, dict):
        head_lr, top_lr = lr["head"], lr["backbone"]
    elif isinstance(lr, (tuple, list)):
        head_lr, top_lr = lr
    else:
        head_lr, top_lr = lr, lr * lr_decay
    groups = [{"params": list(model.head.parameters()), "lr": head_lr, "name": "head"}]
    seen = {id(p) for p in groups[0]["params"]}
    backbone = model.backbone
    for k, block in enumerate(reversed(backbone.blocks)):
        params = [p for _, p in backbone.block_parameters(block) if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": top_lr * lr_decay**k, "name": block.name})
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:  # parameters outside any block (unused heads of the pretrained network...)
        groups.append({"params": rest, "lr": top_lr * lr_decay ** len(backbone.blocks), "name": "other"})
    return groups
