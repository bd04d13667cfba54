"""The one place that builds a DataLoader's process settings."""

import multiprocessing


def worker_start_method(num_workers):
    """The start method for ``num_workers`` DataLoader workers, or None for the default.

    Inside joblib's worker processes (``GridSearchCV(n_jobs=2)``) the default start
    method is joblib's own "loky", whose processes cannot start DataLoader workers
    ('Process' object has no attribute 'env'); there, use the platform's standard
    method instead.
    """
    if not num_workers:
        return None
    current = multiprocessing.get_start_method(allow_none=True)
    standard = multiprocessing.get_all_start_methods()  # the platform default comes first
    return None if current is None or current in standard else standard[0]


def loader_options(batch_size, num_workers, pin_memory):
    """DataLoader keywords; integers from numpy grids become plain ``int`` (torch insists)."""
    options = {
        "batch_size": None if batch_size is None else int(batch_size),
        "num_workers": int(num_workers),
        "pin_memory": pin_memory,
    }
    method = worker_start_method(num_workers)
    if method is not None:
        options["multiprocessing_context"] = method
    return options
