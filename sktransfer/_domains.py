"""skada's ``sample_domain`` convention, checked once for every estimator that adapts."""

import numpy as np


def check_sample_domain(sample_domain, n_samples, owner):
    """skada's convention checked: one integer per row, sources > 0, targets < 0, both present.

    Returns the domains as an int64 array.
    """
    domains = np.asarray(sample_domain)
    if domains.shape != (n_samples,):
        raise ValueError(
            f"{owner}: sample_domain has shape {domains.shape}; it needs one domain per sample "
            f"({n_samples},): a positive integer for each labelled source row, a negative one "
            "for each unlabelled target row."
        )
    if domains.dtype.kind not in "iu" and not (
        domains.dtype.kind == "f" and np.all(np.isfinite(domains)) and np.all(domains == np.round(domains))
    ):
        raise ValueError(
            f"{owner}: sample_domain must hold integers (source > 0, target < 0), got {domains.dtype}."
        )
    domains = domains.astype(np.int64)
    if np.any(domains == 0):
        index = int(np.flatnonzero(domains == 0)[0])
        raise ValueError(
            f"{owner}: sample_domain[{index}] is 0; use a positive integer for source rows and a "
            "negative one for target rows."
        )
    source = domains > 0
    if not source.any():
        raise ValueError(f"{owner}: sample_domain has no source row (> 0): nothing labelled to learn from.")
    if source.all():
        raise ValueError(
            f"{owner}: sample_domain has no target row (< 0): adaptation needs the unlabelled target "
            "rows in fit. Without them, fit without sample_domain."
        )
    return domains
