"""Two ways to store a fitted model: pickle, and skops with the weights as safetensors.

pickle (and joblib, ``copy``, process pools) keep the whole object as it is, through
``__reduce_ex__``. ``skops.io`` stores what ``__getstate__`` returns, and loads only the
types the user trusts; so ``__getstate__`` gives a *portable* state: plain values and
arrays, each network as safetensors bytes (tensors only: loading them runs no code).
On load the network is built again from the backbone's name, with random weights, and
the stored ones are loaded into it: the loading machine needs the backbone's
architecture (the same sktransfer extras), not its pretrained weights.

The name comes from the file, so only names that build an architecture from code
already installed are accepted on load: registered names (the bundled backbones, the
ones the loading program registered) and timm/torchvision architectures. A name that
would read a local folder or a Hugging Face repository (whose files the file's author
chooses) is refused.
"""

import copyreg
import json
import os

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from ._device import seeded_rng
from .backbones._local import is_weights_file
from .backbones._registry import registered_names, resolve_backbone

_PORTABLE = "_sktransfer_portable"


class Portable:
    """Mixin for estimators that hold networks: pickle keeps everything, skops the portable state.

    Subclasses implement ``_pickle_state()`` (the state pickle keeps), and list in
    ``_networks`` the fitted attributes that hold networks, which ``_store_network`` turns
    into plain values and ``_restore_networks`` builds again (with the attributes named
    in ``_rebuilt_with_networks``).
    """

    _networks = ()
    # Fitted attributes derived from the loaded backbone (preprocessing): not stored by skops,
    # derived again when the network is rebuilt.
    _rebuilt_with_networks = ("data_config_",)
    # Parameters that describe the machine, not the model (an Accelerator): stored as None.
    _not_portable = ()

    def _pickle_state(self):
        return super().__getstate__()  # scikit-learn's BaseEstimator.__getstate__

    def _set_pickle_state(self, state):
        super().__setstate__(state)

    def __reduce_ex__(self, protocol):
        # A copy: object.__getstate__ hands out the live __dict__.
        return copyreg.__newobj__, (type(self),), dict(self._pickle_state())

    def __reduce__(self):
        # Only skops calls this (pickle and copy use __reduce_ex__). It keeps the answer only
        # when it calls the class itself; this one does not, so skops goes on to __getstate__,
        # the portable state; no state is built here for nothing (a GPU backbone's CPU copy).
        return copyreg.__newobj__, (type(self),)

    def __getstate__(self):
        """The portable state (what ``skops.io.dump`` stores); pickle uses ``__reduce_ex__``."""
        state = dict(self._pickle_state())  # object.__getstate__ may hand out __dict__ itself
        state.update({name: None for name in self._not_portable if name in state})
        tables = {name: _table_to_json(value) for name, value in state.items() if _is_pandas(value)}
        if not tables and not any(name in state for name in self._networks):
            return state  # unfitted: parameters only, nothing to convert
        state.update(tables)
        state[_PORTABLE] = 1
        if not any(name in state for name in self._networks):
            return state
        if not isinstance(self.backbone, (str, os.PathLike)):
            raise TypeError(
                f"{type(self).__name__}: skops can store a network only when backbone= names it "
                f"(got a {type(self.backbone).__name__}): the loading side builds the architecture "
                "from the name. Register the module with sktransfer.backbones.register_backbone, "
                "pass its name, and register the same name in the program that loads the file; or "
                "use pickle/joblib, which store any module."
            )
        check_rebuildable(type(self).__name__, os.fspath(self.backbone), self.weights, self._modality)
        for name in self._networks:
            if name in state:
                state[name] = self._store_network(name, state[name])
        for name in self._rebuilt_with_networks:
            state.pop(name, None)
        state["backbone"] = os.fspath(state["backbone"])
        return state

    def __setstate__(self, state):
        if not state.pop(_PORTABLE, None):
            self._set_pickle_state(state)
            return
        stored = {name: state.pop(name) for name in self._networks if name in state}
        if stored:  # before anything is built from the file's backbone name
            check_rebuildable(
                type(self).__name__, state.get("backbone"), state.get("weights"), self._modality
            )
        self._set_pickle_state({name: _table_from_json(value) for name, value in state.items()})
        if stored:
            with seeded_rng(0):  # a new head's random init must not move the caller's RNG
                self._restore_networks(stored)


# Sources whose names build an architecture from installed code, offline.
_REBUILDABLE_SOURCES = ("timm", "torchvision")


def check_rebuildable(owner, backbone, weights, modality):
    """Refuse what a skops file cannot rebuild faithfully and safely from ``backbone``'s name."""
    if not isinstance(backbone, str):
        raise ValueError(f"{owner}: the stored backbone is {type(backbone).__name__}, not a name.")
    spec = resolve_backbone(backbone, modality)
    if backbone not in registered_names() and spec.source not in _REBUILDABLE_SOURCES:
        raise ValueError(
            f"{owner}: backbone={backbone!r} is a {spec.source} model that would be read from a local "
            "folder or the Hugging Face hub to rebuild it, files a skops file must not choose. skops "
            "files take registered names (list_backbones()) and timm/torchvision architectures: "
            "register the model with sktransfer.backbones.register_backbone (when saving and when "
            "loading), or use pickle/joblib for files you trust."
        )
    if not (weights in ("default", None) or is_weights_file(weights)):
        raise ValueError(
            f"{owner}: weights={weights!r} names a weight set whose architecture or preprocessing may "
            "differ from the default one the file would be rebuilt with; skops files take "
            "weights='default', None or a weights file. Use pickle/joblib for this model."
        )


# pandas objects (reports such as report_) hold Cython internals that skops cannot store:
# they travel as JSON in pandas' "table" format, which keeps the index and the dtypes.
_TABLE = "_sktransfer_pandas_table"


def _is_pandas(value):
    return type(value).__module__.startswith("pandas") and type(value).__name__ in ("DataFrame", "Series")


def _table_to_json(value):
    if type(value).__name__ == "Series":  # as a one-column table (a column named 0 would not survive)
        frame = value.to_frame(name="values")
        return {_TABLE: frame.to_json(orient="table", double_precision=15), "series": value.name}
    return {_TABLE: value.to_json(orient="table", double_precision=15)}


def _table_from_json(value):
    if not (isinstance(value, dict) and _TABLE in value):
        return value
    import io

    import pandas as pd

    frame = pd.read_json(io.StringIO(value[_TABLE]), orient="table")
    return frame["values"].rename(value["series"]) if "series" in value else frame


def tensors_to_bytes(module, skip=()):
    """A module's state dict as safetensors bytes (CPU, tensors that share memory copied)."""
    state = {}
    seen = set()
    for key, tensor in module.state_dict().items():
        if key.startswith(skip):
            continue
        tensor = tensor.detach().cpu().contiguous()
        if tensor.data_ptr() in seen:  # tied weights: safetensors refuses shared memory
            tensor = tensor.clone()
        seen.add(tensor.data_ptr())
        state[key] = tensor
    return save_tensors(state)


def load_bytes_into(module, blob, owner, skip=()):
    """Load safetensors bytes into ``module``; any key missing or left over is an error."""
    try:
        state = load_tensors(bytes(blob))
    except Exception as exc:  # safetensors' errors vary by version
        raise ValueError(f"{owner}: the stored weights are not valid safetensors data ({exc}).") from None
    missing, unexpected = load_state_into(module, state, skip)
    if missing or unexpected:
        raise ValueError(
            f"{owner}: the stored weights do not fit the network built from backbone= "
            f"(missing or mismatched: {missing[:5]}, unexpected: {unexpected[:5]}). Was the file "
            "changed, or written by another version of the backbone's package?"
        )
    return module


def load_state_into(module, state, skip=()):
    """Load a state dict into ``module`` as far as it fits; return what did not fit:
    ``(missing or mismatched, unexpected)`` keys, those starting with ``skip`` left out."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        problem = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        missing, unexpected = [problem], []
    return [k for k in missing if not k.startswith(skip)], list(unexpected)


def history_to_json(history, owner):
    """A skorch history as JSON; numpy and torch scalars as Python numbers."""

    def plain(value):
        if hasattr(value, "tolist"):
            return value.tolist()
        raise TypeError(
            f"{owner}: net_.history holds a {type(value).__name__}, which skops cannot store; "
            "record plain numbers in callbacks, or use pickle/joblib."
        )

    return json.dumps(list(history), default=plain)


# What skops may build from an sktransfer model file: the estimators and the helper types
# their fitted state holds. Written out, not discovered, so that what a file may construct
# is visible here (tests/test_persistence.py checks it against the Portable classes).
SKOPS_TRUSTED = (
    "sktransfer.adaptation._classifier.DomainAdaptedClassifier",
    "sktransfer.adaptation._classifier.FiniteFeatures",
    "sktransfer.adaptation._self_training.DomainNormalizer",
    "sktransfer.embedding.image.ImageEmbedder",
    "sktransfer.embedding.text.TextEmbedder",
    "sktransfer.finetune._multitask.Task",
    "sktransfer.finetune.image.ImageClassifier",
    "sktransfer.finetune.image.ImageRegressor",
    "sktransfer.finetune.multitask.ImageMultiTask",
    "sktransfer.finetune.multitask.TextMultiTask",
    "sktransfer.finetune.text.TextClassifier",
    "sktransfer.finetune.text.TextRegressor",
    "sktransfer.monitoring._detector.DriftDetector",
    "sktransfer.selection._backbone.BackboneSelector",
    "sktransfer.selection._backbone.SoftVote",
    "sktransfer.zeroshot._text.ZeroShotTextClassifier",
)


def skops_trusted_types():
    """The sktransfer types a skops file of an sktransfer model may hold, for ``skops.io.load``.

    ``skops.io.load(path, trusted=sktransfer.skops_trusted_types())`` loads fitted
    sktransfer estimators, and pipelines of them with scikit-learn's own models; any
    other type in the file is refused. When a file comes from someone else, look at
    ``skops.io.get_untrusted_types(file=path)`` first.

    Returns
    -------
    types : list of str
        Qualified class names: the estimators and the helper types their fitted state
        holds (a multi-task estimator's task descriptions, for instance).
    """
    return list(SKOPS_TRUSTED)
