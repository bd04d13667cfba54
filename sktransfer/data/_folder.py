"""The ``root/<class>/<image>`` layout of Keras' ``flow_from_directory`` and ``ImageFolder``."""

import warnings
from pathlib import Path

import numpy as np

from ._images import IMAGE_EXTENSIONS, is_image_file


def load_image_folder(root, *, as_frame=False):
    """List the images under ``root/<class>/`` with their class names as labels.

    Files whose extension is not an image extension are not returned, and a
    ``UserWarning`` names each of them: nothing is skipped silently. Images are
    not opened here (decoding happens in the embedder or estimator, which names
    any unreadable file).

    Parameters
    ----------
    root : str or path
        Folder with one sub-folder per class.
    as_frame : bool, default=False
        Return a DataFrame with columns ``path`` and ``label`` instead of arrays.

    Returns
    -------
    paths, labels : ndarray of str
        Sorted by class, then file name. Or a DataFrame when ``as_frame=True``.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"load_image_folder: {str(root)!r} is not a folder.")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"load_image_folder: {str(root)!r} has no class sub-folders (root/<class>/<image>).")
    paths, labels, skipped = [], [], []
    for class_dir in classes:
        for path in sorted(p for p in class_dir.rglob("*") if p.is_file()):
            if is_image_file(path):
                paths.append(str(path))
                labels.append(class_dir.name)
            else:
                skipped.append(str(path))
    stray = [str(p) for p in root.iterdir() if p.is_file()]
    if skipped or stray:
        warnings.warn(
            f"load_image_folder skipped {len(skipped) + len(stray)} file(s) that are not images "
            f"({', '.join(IMAGE_EXTENSIONS)}) or not inside a class folder: {skipped + stray}",
            UserWarning,
            stacklevel=2,
        )
    if not paths:
        raise ValueError(f"load_image_folder: no image files under {str(root)!r}.")
    empty = [c.name for c in classes if c.name not in set(labels)]
    if empty:
        warnings.warn(f"load_image_folder: class folders without images: {empty}", UserWarning, stacklevel=2)
    paths, labels = np.array(paths), np.array(labels)
    if as_frame:
        import pandas as pd

        return pd.DataFrame({"path": paths, "label": labels})
    return paths, labels
