"""TextEmbedder: a frozen text encoder as a scikit-learn transformer."""

from numbers import Integral

from sklearn.utils._param_validation import Interval

from ._base import ATTRIBUTES, BaseEmbedder


class TextEmbedder(BaseEmbedder):
    __doc__ = (
        """Turn texts into feature vectors with a pretrained, frozen encoder.

    Parameters
    ----------
    backbone : str, path or Backbone, default="all-MiniLM-L6-v2"
        A registered name (see :func:`sktransfer.backbones.list_backbones`), a
        sentence-transformers or Hugging Face hub id, or a local model folder.
    weights : "default", None or path, default="default"
        "default": the pretrained weights; None: random initialisation; a path: a
        local ``.safetensors``/state-dict file for the same architecture.
    pooling : {"auto", "avg", "max", "avg+max", "cls"}, default="auto"
        Token pooling (padding excluded); "auto" is the model's own (mean pooling
        for sentence-transformers models such as MiniLM).
    layers : None, str, int or list, default=None
        None: the final layer. Otherwise names or indices of
        ``backbone_.block_names()`` (embeddings, each transformer layer), pooled
        and concatenated.
    max_length : int, default=None
        Truncate texts to this many tokens; None keeps the model's own limit.
    batch_size : int, default=32
    device : "auto", "cpu", "cuda", "cuda:N", "mps" or torch.device, default="auto"
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
    num_workers : int, default=0
        Worker processes that tokenize ahead of the encoder.
    normalize : bool or "auto", default="auto"
        L2-normalise each vector; "auto" follows the model (True for
        sentence-transformers models that end with a Normalize module).
    cache : None, str or path, default=None
        A directory in which to keep the features of each text, so that repeated
        transforms of the same texts (cross-validation folds, grid-search
        candidates, reruns) reuse them instead of running the encoder again. The
        key covers the model, its weights and tokenizer, ``max_length``, pooling,
        layers, normalisation, precision and the text itself, so any change
        recomputes. Safe to share between processes. See ``docs/cache.md``.
    verbose : int, default=0
        Show a progress bar while transforming.
"""
        + ATTRIBUTES
        + """
    Notes
    -----
    Texts are batched by length (longest first), as ``SentenceTransformer.encode``
    does, so padding stays small; the output keeps the input order.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer import TextEmbedder
    >>> model = make_pipeline(TextEmbedder("all-MiniLM-L6-v2"), LogisticRegression())
    >>> model.fit(texts, labels).predict(["a gripping, funny film"])  # doctest: +SKIP
    """
    )

    _modality = "text"
    _parameter_constraints = {
        **BaseEmbedder._parameter_constraints,
        "max_length": [None, Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        backbone="all-MiniLM-L6-v2",
        *,
        weights="default",
        pooling="auto",
        layers=None,
        max_length=None,
        batch_size=32,
        device="auto",
        precision="auto",
        num_workers=0,
        normalize="auto",
        cache=None,
        verbose=0,
    ):
        self.backbone = backbone
        self.weights = weights
        self.pooling = pooling
        self.layers = layers
        self.max_length = max_length
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.num_workers = num_workers
        self.normalize = normalize
        self.cache = cache
        self.verbose = verbose

    def _setup(self, backbone):
        if backbone.modality == "text":
            backbone.check_max_length(self.max_length, type(self).__name__)
