"""The one batched inference loop: out-of-memory back-off and a progress bar.

The embedders' ``transform``, the estimators' ``predict`` family and their
frozen-feature precomputation all run a network over ``X`` batch by batch and
put the rows back in input order; they all go through :func:`run_batches`.
"""

import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from ._device import is_out_of_memory
from ._validation import user_stacklevel


def run_batches(compute, batches, *, total, store, device, owner, verbose=0, initial=0, desc=None):
    """``store(indices, compute(inputs))`` for each ``(indices, inputs)`` of ``batches``.

    A batch that does not fit on ``device`` is retried in halves (with a warning that
    names the ``batch_size`` to use); ``verbose`` shows a progress bar over ``total``
    samples, ``initial`` of them already done (cache hits).
    """
    bar = tqdm(total=total, initial=initial, desc=desc or owner, unit="sample", disable=not verbose)
    with bar:
        for indices, inputs in batches:
            store(indices, compute_with_backoff(compute, inputs, device, owner))
            bar.update(len(indices))


def compute_with_backoff(compute, inputs, device, owner):
    """``compute(inputs)``; on a device out-of-memory error, the same in halves, concatenated."""
    try:
        return compute(inputs)
    except (RuntimeError, torch.cuda.OutOfMemoryError) as exc:
        size = batch_len(inputs)
        if not is_out_of_memory(exc) or size <= 1:
            raise
    if device.type == "cuda":
        torch.cuda.empty_cache()
    warnings.warn(
        f"{owner}: a batch of {size} did not fit on {device}; retrying in halves. "
        f"Set batch_size={size // 2} (or lower) to avoid the retries.",
        RuntimeWarning,
        stacklevel=user_stacklevel(),
    )
    first, second = split_batch(inputs)
    rows = [compute_with_backoff(compute, part, device, owner) for part in (first, second)]
    return torch.cat(rows) if torch.is_tensor(rows[0]) else np.concatenate(rows)


def batch_len(inputs):
    if isinstance(inputs, dict):
        return len(next(iter(inputs.values())))
    return len(inputs)


def split_batch(inputs):
    half = batch_len(inputs) // 2
    if isinstance(inputs, dict):
        return {k: v[:half] for k, v in inputs.items()}, {k: v[half:] for k, v in inputs.items()}
    return inputs[:half], inputs[half:]
