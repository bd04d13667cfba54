"""The embedding cache behind ``cache=``: per-sample feature vectors stored on disk.

Layout::

    <cache>/<model key>/model.json          what the key stands for (for people)
    <cache>/<model key>/<ab>/<digest>.emb   one sample: the input's content digest

The **model key** is a sha256 over everything that changes the features of a given
input: the backbone's name, architecture and weights (a digest of every tensor of
the state dict, plus the tokenizer for text), the resolved preprocessing, pooling,
layers, normalisation, precision, device type and the sktransfer version. The
**input digest** is a sha256 of the input's content: a file's bytes (not its path
or date), an array's bytes, shape and dtype, a PIL image's pixels, mode and
palette, or a text's UTF-8 bytes. Any change to either gives another file name,
hence a miss; nothing is ever invalidated in place.

Entries are written to a temporary file in the same folder, then moved into place
with ``os.replace`` (atomic on POSIX and Windows), so concurrent processes sharing
a directory see either no entry or a complete one; correctness never depends on
locks. Each entry also carries a checksum of its key and values: an entry that is
missing, truncated, or corrupt (say after a crash or a disk error) reads as a
miss and is recomputed, never returned.
"""

import hashlib
import json
import os
import struct
import uuid
import warnings

import numpy as np
import torch
from PIL import ExifTags

from .._device import resolve_precision
from .._validation import user_stacklevel
from .._version import __version__
from ..backbones import reader_name
from ..data import DECODING_VERSION

_MAGIC = b"SKTEMB01"
_HEADER = struct.Struct("<8sI4x")  # magic, n_features, padding (values stay 16-byte aligned)
_CHECKSUM_SIZE = 16
_CHUNK = 1 << 20


def open_cache(embedder, X):
    """An :class:`EmbeddingCache` for one ``transform`` of ``X``, or None without ``cache=``."""
    if embedder.cache is None:
        return None
    if getattr(embedder, "_backbone_digest_", None) is None:  # cache= set after fit
        embedder._backbone_digest_ = backbone_digest(embedder.backbone_)
    settings = model_settings(embedder)
    cache = EmbeddingCache(embedder.cache, settings, embedder.n_features_out_)
    cache.digest_inputs(X, embedder.backbone_.modality)
    return cache


class EmbeddingCache:
    """Per-sample feature vectors of one model, stored under ``directory``.

    Parameters
    ----------
    directory : str or path
        Shared by any number of models and processes.
    settings : dict
        JSON-serialisable description of the model; its sha256 is the model key.
    n_features : int
        Length of each stored vector.
    """

    def __init__(self, directory, settings, n_features):
        self.directory = os.path.expanduser(os.fspath(directory))
        blob = json.dumps(settings, sort_keys=True, default=str).encode()
        self.model_key = hashlib.sha256(blob).hexdigest()[:32]
        self.settings = settings
        self.n_features = int(n_features)
        self.root = os.path.join(self.directory, self.model_key)
        self.digests = []
        self._entry_size = _HEADER.size + 4 * self.n_features + _CHECKSUM_SIZE
        self._header = _HEADER.pack(_MAGIC, self.n_features)
        self._write_failed = False
        self._described = False

    def digest_inputs(self, X, modality):
        """Hash the content of every input of ``X`` (None: unreadable, always a miss)."""
        self.digests = [input_digest(item, modality) for item in X]

    def load(self, out):
        """Copy the stored rows into ``out``; return the indices of the misses."""
        misses = []
        for index, digest in enumerate(self.digests):
            row = self._read(digest) if digest is not None else None
            if row is None:
                misses.append(index)
            else:
                out[index] = row
        return np.asarray(misses, dtype=np.intp)

    def store(self, indices, rows):
        """Store ``rows`` (computed for inputs ``indices``); failures only warn, once."""
        if self._write_failed:
            return
        try:
            self._write_model_description()
            for index, row in zip(indices, rows):
                digest = self.digests[index]
                if digest is not None:
                    self._write(digest, row)
        except OSError as exc:
            self._write_failed = True
            warnings.warn(
                f"cache={self.directory!r}: could not store embeddings ({exc}); continuing "
                "without caching them. Check that the directory is writable and has free space.",
                RuntimeWarning,
                stacklevel=user_stacklevel(),
            )

    def path(self, digest):
        return os.path.join(self.root, digest[:2], digest[2:] + ".emb")

    def _checksum(self, digest, values):
        check = hashlib.blake2b(digest_size=_CHECKSUM_SIZE, key=self.model_key.encode())
        check.update(digest.encode())
        check.update(self._header)
        check.update(values)
        return check.digest()

    def _read(self, digest):
        try:
            with open(self.path(digest), "rb") as f:
                data = f.read(self._entry_size + 1)
        except OSError:
            return None
        if len(data) != self._entry_size or not data.startswith(self._header):
            return None
        values = data[_HEADER.size : -_CHECKSUM_SIZE]
        if data[-_CHECKSUM_SIZE:] != self._checksum(digest, values):
            return None
        return np.frombuffer(values, dtype="<f4")

    def _write(self, digest, row):
        values = np.ascontiguousarray(row, dtype="<f4").tobytes()
        path = self.path(digest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _atomic_write(path, self._header + values + self._checksum(digest, values))

    def _write_model_description(self):
        path = os.path.join(self.root, "model.json")
        if not self._described and not os.path.exists(path):
            os.makedirs(self.root, exist_ok=True)
            _atomic_write(path, json.dumps(self.settings, sort_keys=True, indent=2, default=str).encode())
        self._described = True


def _atomic_write(path, data):
    """Write ``data`` to a temporary file next to ``path``, then rename it into place."""
    tmp = f"{path}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def model_settings(embedder):
    """Everything besides the input that determines an embedder's output, as a dict."""
    backbone = embedder.backbone_
    names = backbone.block_names()
    settings = {
        "sktransfer": __version__,
        "embedder": type(embedder).__name__,
        "backbone": backbone.name,
        "architecture": f"{type(backbone.model).__module__}.{type(backbone.model).__qualname__}",
        "features": reader_name(backbone.features) if hasattr(backbone, "features") else None,
        "weights": embedder._backbone_digest_,
        "pooling": embedder.pooling_,
        "layers": None if embedder.layers_ is None else [names[i] for i in embedder.layers_],
        "normalize": bool(embedder.normalize_),
        "precision": str(resolve_precision(embedder.device_, embedder.precision) or "fp32"),
        "device": embedder.device_.type,
        "n_features": int(embedder.n_features_out_),
    }
    if hasattr(embedder, "data_config_"):
        settings["preprocessing"] = embedder.data_config_.as_dict()
        settings["decoding"] = DECODING_VERSION
    if backbone.modality == "text":
        settings["max_length"] = embedder.max_length or backbone.max_length
        if getattr(backbone, "lowercase", False):  # absent otherwise: earlier keys stay valid
            settings["lowercase"] = True
    return settings


def backbone_digest(backbone):
    """sha256 over the state dict (names, dtypes, shapes, bytes) and, for text, the tokenizer."""
    h = hashlib.sha256()
    for name, value in sorted(backbone.state_dict().items()):
        if not torch.is_tensor(value):
            h.update(f"{name}={value!r}\n".encode())
            continue
        tensor = value.detach().cpu().contiguous()
        h.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy())
    tokenizer = getattr(backbone, "tokenizer", None)
    if tokenizer is not None:
        h.update(_tokenizer_identity(tokenizer).encode())
    return h.hexdigest()


def _tokenizer_identity(tokenizer):
    parts = [
        f"{type(tokenizer).__module__}.{type(tokenizer).__qualname__}",
        str(getattr(tokenizer, "name_or_path", "")),
        str(getattr(tokenizer, "model_max_length", "")),
    ]
    backend = getattr(tokenizer, "backend_tokenizer", None)  # Hugging Face fast tokenizers
    if backend is not None:
        parts.append(hashlib.sha256(backend.to_str().encode()).hexdigest())
    elif hasattr(tokenizer, "get_vocab"):
        vocab = json.dumps(sorted(tokenizer.get_vocab().items()))
        parts.append(hashlib.sha256(vocab.encode()).hexdigest())
    return "\n".join(parts)


def input_digest(item, modality):
    """sha256 hex of one input's content; None when a file cannot be read."""
    h = hashlib.sha256()
    if modality == "text":
        h.update(b"text\0")
        h.update(item.encode("utf-8", "surrogatepass"))
    elif isinstance(item, np.ndarray):
        h.update(f"array\0{item.dtype.str}\0{item.shape}\0".encode())
        h.update(np.ascontiguousarray(item).reshape(-1).view(np.uint8))
    elif hasattr(item, "tobytes") and hasattr(item, "mode"):  # PIL image
        # Orientation and transparency change the decoded picture, not the raw pixels.
        orientation = item.getexif().get(ExifTags.Base.Orientation, 1)
        transparency = item.info.get("transparency")
        h.update(f"pil\0{item.mode}\0{item.size}\0{orientation}\0{transparency!r}\0".encode())
        palette = item.getpalette() if item.mode in ("P", "PA") else None
        if palette:
            h.update(bytes(palette))
        h.update(item.tobytes())
    else:  # a path: the file's bytes, so an edited file misses and a moved one hits
        h.update(b"file\0")
        try:
            with open(item, "rb") as f:
                while chunk := f.read(_CHUNK):
                    h.update(chunk)
        except (OSError, TypeError):
            return None
    return h.hexdigest()
