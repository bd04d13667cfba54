"""This process's loaded backbones, so that repeated fits load a named network once.

A grid search fits one clone of a pipeline per candidate and fold, and each clone's
``fit`` loads its backbone; so does every fit inside a joblib or Dask worker. Reading
and building the network is most of a small fit's fixed cost (EfficientNet-Lite0:
0.5 s the first time in a process), so the first load of a name is kept here and later
fits get a deep copy of it: every caller owns its weights (fine-tuning changes them in
place), and nothing but the pretrained weights is shared.
"""

import copy
import os
import threading
from collections import OrderedDict

from ._local import is_weights_file

# Enough for a search over a few backbones; a kept network costs its size in memory
# once per process (MPNet: 420 MB), on top of the fitted copies. 0 keeps none.
MAX_KEPT = int(os.environ.get("SKTRANSFER_KEPT_BACKBONES", 4))

_KEPT = OrderedDict()
_LOCK = threading.Lock()


def memo_key(backbone, weights, registry_version):
    """What identifies a loaded backbone, or None when it must not be kept.

    Only names are kept: a module passed by the user is already copied by the loader.
    Local files (weights, or a model folder given as the name: every file in it) are
    keyed by their identity, size and times, so a file rewritten in place is read
    again; ``registry_version`` changes when a name is registered again.
    """
    if not isinstance(backbone, str) or MAX_KEPT <= 0:
        return None
    weights_key = _file_key(weights) if is_weights_file(weights) else weights
    return (_file_key(backbone), weights_key, registry_version)


def _file_key(name):
    path = os.path.abspath(os.path.expanduser(os.fspath(name)))
    if os.path.isfile(path):
        return (path, _stat(path))
    if os.path.isdir(path):
        files = sorted(os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
        return (path, tuple((f, _stat(f)) for f in files))
    return os.fspath(name)


def _stat(path):
    info = os.stat(path)
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def remembered(key, load):
    """A private copy of the backbone under ``key``; ``load()`` builds it on a miss."""
    if key is None:
        return load()
    with _LOCK:
        kept = _KEPT.get(key)
        if kept is not None:
            _KEPT.move_to_end(key)
    if kept is None:
        kept = load()
        with _LOCK:
            _KEPT[key] = kept
            while len(_KEPT) > MAX_KEPT:
                _KEPT.popitem(last=False)
    return copy.deepcopy(kept)


def clear_loaded_backbones():
    """Forget the backbones this process has loaded (they are read again when next needed)."""
    with _LOCK:
        _KEPT.clear()
