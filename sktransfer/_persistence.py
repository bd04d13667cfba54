"""Two ways to store a fitted model: pickle, and skops with the weights as safetensors.

pickle (and joblib, ``copy``, process pools) keep the whole object as it is, through
``__reduce_ex__``. ``skops.io`` stores what ``__getstate__`` returns, and loads only the
types the user trusts; so ``__getstate__`` gives a *portable* state: plain values and
arrays, each network as safetensors bytes (tensors only: loading them runs no code).
On load the network is built again from the backbone's name, with random weights, and
the stored ones are loaded into it: the loading machine needs the backbone's
architecture (the same sktransfer extras), not its pretrained weights.
"""

import copyreg
import json
import os

from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

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

    def _pickle_state(self):
        return super().__getstate__()  # scikit-learn's, with its version

    def _set_pickle_state(self, state):
        super().__setstate__(state)

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (type(self),), self._pickle_state()

    def __reduce__(self):
        # skops asks __reduce__ first and keeps its answer only when it calls the class
        # itself; this one does not, so skops goes on to __getstate__, the portable state.
        return self.__reduce_ex__(2)

    def __getstate__(self):
        """The portable state (what ``skops.io.dump`` stores); pickle uses ``__reduce_ex__``."""
        state = dict(self._pickle_state())  # object.__getstate__ may hand out __dict__ itself
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
                "from the name. Register the module with sktransfer.backbones.register_backbone and "
                "pass its name, or use pickle/joblib, which store any module."
            )
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
        self._set_pickle_state({name: _table_from_json(value) for name, value in state.items()})
        if stored:
            self._restore_networks(stored)


# pandas objects (reports such as report_) hold Cython internals that skops cannot store:
# they travel as JSON in pandas' "table" format, which keeps the index and the dtypes.
_TABLE = "_sktransfer_pandas_table"


def _is_pandas(value):
    return type(value).__module__.startswith("pandas") and type(value).__name__ in ("DataFrame", "Series")


def _table_to_json(value):
    if type(value).__name__ == "Series":  # as a one-column table (a column named 0 would not survive)
        return {_TABLE: value.to_frame(name="values").to_json(orient="table"), "series": value.name}
    return {_TABLE: value.to_json(orient="table")}


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
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a tensor of another shape
        problem = str(exc).splitlines()[1].strip() if "\n" in str(exc) else str(exc)
        missing, unexpected = [problem], []
    missing = [k for k in missing if not k.startswith(skip)]
    if missing or unexpected:
        raise ValueError(
            f"{owner}: the stored weights do not fit the network built from backbone= "
            f"(missing or mismatched: {missing[:5]}, unexpected: {unexpected[:5]}). Was the file "
            "changed, or written by another version of the backbone's package?"
        )
    return module


def history_to_json(history):
    return json.dumps(list(history), default=float)


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
