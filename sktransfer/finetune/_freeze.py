"""Freeze specifications: which backbone parameters train, and at which learning rate.

A spec is ``"none"`` (everything trains), ``"backbone"`` (only the new head),
``"last:K"`` or an int ``K`` (the last K blocks of ``backbone.block_names()``
plus the head), ``"first:K"`` (the first K blocks, on the input side, plus the
head: surgical fine-tuning for input-level shifts, Lee et al. 2023), a list of
parameter-name patterns to freeze (fnmatch, as skorch's ``Freezer``) or a callable
``name -> bool`` (True freezes). Names are the backbone's own parameter names
(``stem.0.weight``; the longer ``backbone.model.stem.0.weight`` is accepted too).
The new head always trains.

A spec is resolved against the backbone once, into the set of parameter names
that train, before any batch runs: a spec that cannot apply fails at once,
naming what it could have matched.
"""

import fnmatch
from numbers import Integral

import numpy as np
from sklearn.utils._param_validation import InvalidParameterError

from .._validation import closest_names, did_you_mean

PRESETS = ("none", "backbone", "last:K", "first:K")
_FULL_PREFIX = "backbone.model."


def is_freeze_spec(spec):
    """Whether ``spec`` has one of the accepted types (its names are checked later)."""
    return isinstance(spec, (str, Integral, list, tuple)) or callable(spec)


def resolve_trainable(backbone, spec, owner="estimator", param="freeze"):
    """The frozenset of ``backbone.model`` parameter names that train under ``spec``."""
    names = [name for name, _ in backbone.model.named_parameters()]
    if callable(spec) and not isinstance(spec, (str, list, tuple)):
        return frozenset(n for n in names if not _frozen_by_callable(spec, n, owner, param))
    if isinstance(spec, (list, tuple)):
        return frozenset(names) - _matched_by_patterns(spec, names, backbone, owner, param)
    first = _first_blocks(spec, backbone.block_names(), owner, param)
    if first is not None:
        return frozenset(n for block in backbone.blocks[:first] for n, _ in backbone.block_parameters(block))
    depth = trainable_depth(spec, backbone.block_names(), owner, param)
    trainable = set()
    for block in backbone.blocks[len(backbone.blocks) - depth :]:
        trainable.update(name for name, _ in backbone.block_parameters(block))
    if depth == len(backbone.blocks):  # "none": also what lies outside every block
        trainable.update(names)
    return frozenset(trainable)


def _first_blocks(spec, block_names, owner, param):
    """K for ``"first:K"``, else None."""
    if not (isinstance(spec, str) and spec.startswith("first:") and spec[6:].strip().isdigit()):
        return None
    k = int(spec[6:])
    if not 0 <= k <= len(block_names):
        raise InvalidParameterError(
            f"{owner}: {param}={spec!r} asks for the first {k} blocks, but this backbone has "
            f"{len(block_names)}: {block_names}."
        )
    return k


def trainable_depth(spec, block_names, owner="estimator", param="freeze"):
    """The number of trainable blocks counted from the head, for a preset or an int."""
    n = len(block_names)
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
            f"Use one of {', '.join(repr(p) for p in PRESETS)} (K an int; or just K for 'last:K'), a list of "
            f"parameter-name patterns to freeze, or a callable name -> bool. This backbone's "
            f"blocks, input side first: {block_names}."
        )
    if not 0 <= depth <= n:
        raise InvalidParameterError(
            f"{owner}: {param}={spec!r} asks for {depth} trainable blocks, but this backbone has "
            f"{n}: {block_names}. Use 'last:{n}' or 'none' to train them all."
        )
    return depth


def _matched_by_patterns(patterns, names, backbone, owner, param):
    if not all(isinstance(p, str) for p in patterns):
        raise InvalidParameterError(f"{owner}: {param} patterns must be strings, got {patterns!r}.")
    matched = set()
    for pattern in patterns:
        relative = pattern[len(_FULL_PREFIX) :] if pattern.startswith(_FULL_PREFIX) else pattern
        hits = {n for n in names if fnmatch.fnmatchcase(n, relative)}
        if not hits:
            raise InvalidParameterError(_no_match_message(pattern, names, backbone, owner, param))
        matched |= hits
    return matched


def _no_match_message(pattern, names, backbone, owner, param):
    modules = list(dict.fromkeys(n.split(".")[0] for n in names))
    close = closest_names(pattern.rstrip("*").rstrip("."), names + [m + ".*" for m in modules])
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    return (
        f"{owner}: {param} pattern {pattern!r} matches no parameter of backbone {backbone.name!r}, "
        f"so it would freeze nothing.{hint} Patterns are fnmatch patterns over the backbone's own "
        f"parameter names, such as {names[:3]}; its top-level modules are {modules} (e.g. "
        f"'{modules[0]}.*'). To freeze whole blocks use 'last:K' over its blocks "
        f"{backbone.block_names()}."
    )


def _frozen_by_callable(spec, name, owner, param):
    try:
        frozen = spec(name)
    except Exception as exc:
        raise InvalidParameterError(
            f"{owner}: {param}={spec!r} raised {type(exc).__name__}: {exc} on parameter {name!r}; "
            "the callable receives each backbone parameter name and returns True to freeze it."
        ) from exc
    if not isinstance(frozen, (bool, np.bool_, Integral)):
        raise InvalidParameterError(
            f"{owner}: {param}={spec!r} returned {frozen!r} for {name!r}; it must return True "
            "(freeze) or False (train)."
        )
    return bool(frozen)


def apply_trainable(model, trainable):
    """Set ``requires_grad`` on ``model`` (a TransferModel): the head and ``trainable`` train."""
    for name, p in model.backbone.model.named_parameters():
        p.requires_grad_(name in trainable)
    for p in model.head.parameters():
        p.requires_grad_(True)


def trainable_parameter_names(model):
    """Names of the parameters that train, backbone names first, then ``head.*``."""
    backbone = [n for n, p in model.backbone.model.named_parameters() if p.requires_grad]
    return backbone + [f"head.{n}" for n, p in model.head.named_parameters() if p.requires_grad]


def parameter_groups(model, lr, lr_decay):
    """Optimizer groups: the head at ``lr``, block k below the top one at ``lr * lr_decay**k``.

    The top block is the highest one that trains when the optimiser is made (the last
    block, unless a spec such as ``"first:K"`` freezes the ones above): so the blocks
    that train start at the backbone rate whichever end they are at, and blocks above
    the top one, if a schedule unfreezes them later, train at that rate too.
    ``lr`` may also be a pair: a tuple ``(head, backbone)`` or a dict ``{"head": ...,
    "backbone": ...}``. Then the top block gets the backbone rate and each block below
    it ``lr_decay`` times less.
    Every parameter is in a group, trainable or not, so that gradual unfreezing
    only flips ``requires_grad`` (AdamW skips parameters without gradients).
    """
    if isinstance(lr, dict):
        head_lr, top_lr = lr["head"], lr["backbone"]
    elif isinstance(lr, (tuple, list)):
        head_lr, top_lr = lr
    else:
        head_lr, top_lr = lr, lr * lr_decay
    if not hasattr(model, "backbone"):  # the head alone, trained on precomputed features
        return [{"params": list(model.parameters()), "lr": head_lr, "name": "head"}]
    aux = getattr(model, "aux", None)  # absent from models pickled by older versions
    head = [*model.head.parameters(), *(aux.parameters() if aux is not None else ())]
    groups = [{"params": head, "lr": head_lr, "name": "head"}]
    seen = {id(p) for p in groups[0]["params"]}
    backbone = model.backbone
    from_head = list(reversed(backbone.blocks))
    top = next(
        (i for i, b in enumerate(from_head) if any(p.requires_grad for _, p in backbone.block_parameters(b))),
        0,
    )
    for k, block in enumerate(from_head):
        params = [p for _, p in backbone.block_parameters(block) if id(p) not in seen]
        seen.update(id(p) for p in params)
        if params:
            groups.append({"params": params, "lr": top_lr * lr_decay ** max(k - top, 0), "name": block.name})
    rest = [p for p in model.parameters() if id(p) not in seen]
    if rest:  # parameters outside any block (unused heads of the pretrained network...)
        depth = len(backbone.blocks) - top
        groups.append({"params": rest, "lr": top_lr * lr_decay**depth, "name": "other"})
    return groups
