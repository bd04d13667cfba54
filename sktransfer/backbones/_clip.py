"""CLIP-family models (an image and a text tower in one embedding space) from a local
Hugging Face folder or a reachable hub id, or an open_clip checkpoint, with the image
preprocessing their config describes."""

import os
from pathlib import Path

import torch

from ._base import DataConfig
from ._text import _quiet_loading, import_transformers

HOW_TO_GET_ONE = (
    "No CLIP weights ship with sktransfer. On a machine with internet, save one once: "
    "`from transformers import CLIPModel, CLIPProcessor; "
    "CLIPModel.from_pretrained('openai/clip-vit-base-patch32').save_pretrained(folder); "
    "CLIPProcessor.from_pretrained('openai/clip-vit-base-patch32').save_pretrained(folder)`, "
    "copy the folder here, and pass model=folder."
)

OPEN_CLIP_CONFIG = "open_clip_config.json"
HOW_TO_GET_AN_OPEN_CLIP = (
    "On a machine with internet, save one once with huggingface_hub: "
    "`snapshot_download('laion/CLIP-ViT-B-16-laion2B-s34B-b88K', local_dir=folder)` "
    f"(a folder with {OPEN_CLIP_CONFIG} and open_clip_pytorch_model.bin or open_clip_model.safetensors), "
    "copy the folder here, and pass model=folder."
)

# open_clip's resize modes -> DataConfig's crop modes.
_OPEN_CLIP_CROP_MODES = {"shortest": "center", "squash": "squash", "longest": "border"}

# Hugging Face's resample codes (PIL's) -> the interpolation names of DataConfig.
_INTERPOLATIONS = {0: "nearest", 2: "bilinear", 3: "bicubic"}


def load_clip(model, owner="load_clip"):
    """A CLIP-family model, its tokenizer and its image preprocessing.

    Parameters
    ----------
    model : str or path
        A local Hugging Face model folder (``config.json``, weights, tokenizer and
        ``preprocessor_config.json``), or a hub id where the hub or the local
        Hugging Face cache has it. Never runs code shipped with the model. An
        open_clip checkpoint (needs ``open_clip_torch``): a folder with
        ``open_clip_config.json`` and its weights but no ``config.json`` (a folder with
        both loads through transformers), or ``"hf-hub:<repo>"``.
    owner : str, default="load_clip"
        The name errors begin with (the estimator that asked).

    Returns
    -------
    network : torch.nn.Module
        The model, with ``get_image_features`` and ``get_text_features``.
    tokenizer : callable
        Its tokenizer.
    data_config : DataConfig
        Resize, crop and normalisation read from its image processor.
    """
    source = os.fspath(model)
    local = Path(source).expanduser()
    # A folder with both formats (as LAION's hub repositories are) loads through transformers.
    open_clip_only = (local / OPEN_CLIP_CONFIG).is_file() and not (local / "config.json").is_file()
    if source.startswith("hf-hub:") or open_clip_only:
        return _load_open_clip(source, local, owner)
    transformers = import_transformers()
    if local.exists() and not (local / "config.json").is_file():
        raise FileNotFoundError(
            f"{owner}: model={source!r} is not a Hugging Face model folder (no config.json in it). "
            + HOW_TO_GET_ONE
        )
    where = str(local) if local.exists() else source
    try:
        with _quiet_loading(transformers):
            network = transformers.AutoModel.from_pretrained(where, trust_remote_code=False)
        tokenizer = transformers.AutoTokenizer.from_pretrained(where, trust_remote_code=False)
        processor = transformers.AutoImageProcessor.from_pretrained(where, trust_remote_code=False)
    except OSError as exc:
        raise FileNotFoundError(
            f"{owner}: could not load a CLIP model from {source!r} ({exc}). " + HOW_TO_GET_ONE
        ) from None
    if not (hasattr(network, "get_image_features") and hasattr(network, "get_text_features")):
        raise ValueError(
            f"{owner}: model={source!r} is a {type(network).__name__}, which does not embed both images "
            "and texts; give a CLIP model (CLIPModel), or one with get_image_features and "
            "get_text_features."
        )
    if getattr(network.config, "model_type", "").startswith("siglip"):
        tokenizer = FixedLengthTokenizer(tokenizer, network.config.text_config.max_position_embeddings)
    return network, tokenizer, _data_config(processor, source, owner)


def _data_config(processor, source, owner):
    """The library's preprocessing from a Hugging Face image processor's settings: CLIP's
    short side then centre crop, or SigLIP's resize of both sides to the square."""
    size, crop = getattr(processor, "size", None), getattr(processor, "crop_size", None)
    if not size:
        raise ValueError(
            f"{owner}: model={source!r} has no fixed image size (a variable-resolution model, such "
            "as SigLIP 2's NaFlex checkpoints); only fixed-size CLIP-family models are supported, "
            "e.g. the SigLIP 2 checkpoints at a fixed resolution."
        )
    centre_crop = bool(getattr(processor, "do_center_crop", False)) and bool(crop)
    if size.get("shortest_edge"):
        crop_mode, resize = "center", int(size["shortest_edge"])
        if not centre_crop:
            raise ValueError(
                f"{owner}: model={source!r} resizes the short side of its images to {resize} without "
                "cropping them, so its inputs are not square; only square inputs are supported."
            )
    elif size.get("height") and size.get("width") and size["height"] == size["width"]:
        crop_mode, resize = "squash", int(size["height"])
    else:
        raise ValueError(
            f"{owner}: model={source!r} resizes its images to {dict(size)}; only a square input "
            "(the short side then a centre crop, as CLIP; or both sides, as SigLIP) is supported."
        )
    input_size = int(crop["height"]) if centre_crop else resize
    return DataConfig(
        input_size=input_size,
        resize=resize,
        crop_mode=crop_mode,
        interpolation=_INTERPOLATIONS.get(int(getattr(processor, "resample", 3)), "bicubic"),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
    )


def _load_open_clip(source, local, owner):
    """An open_clip checkpoint behind the methods a Hugging Face CLIP model offers."""
    try:
        import open_clip
    except ImportError:
        raise ImportError(
            f"{owner}: model={source!r} is an open_clip checkpoint, and open_clip is not installed; "
            "pip install 'sktransfer[clip]' (or open_clip_torch)."
        ) from None
    name = source if source.startswith("hf-hub:") else f"local-dir:{local}"
    try:
        # require_pretrained: a folder without weights is an error, not a random model.
        network = open_clip.create_model(name, require_pretrained=True)
        tokenizer = open_clip.get_tokenizer(name)
    except (OSError, RuntimeError, ValueError) as exc:
        raise FileNotFoundError(
            f"{owner}: could not load an open_clip model from {source!r} ({exc}). " + HOW_TO_GET_AN_OPEN_CLIP
        ) from None
    preprocess = open_clip.get_model_preprocess_cfg(network)
    size = preprocess.get("size", 224)
    height, width = (size, size) if isinstance(size, int) else size
    resize_mode = preprocess.get("resize_mode", "shortest")
    if resize_mode not in _OPEN_CLIP_CROP_MODES or height != width:
        raise ValueError(
            f"{owner}: model={source!r} preprocesses images with resize_mode={resize_mode!r} to "
            f"{size}; only a square input, after resizing the short side and cropping the centre "
            "(resize_mode='shortest', open_clip's default), resizing both sides ('squash') or "
            "the long side and padding ('longest'), is supported."
        )
    config = DataConfig(
        input_size=height,
        resize=height,
        crop_mode=_OPEN_CLIP_CROP_MODES[resize_mode],
        fill=preprocess.get("fill_color", 0) if resize_mode == "longest" else None,
        interpolation=preprocess.get("interpolation", "bicubic"),
        mean=tuple(preprocess["mean"]),
        std=tuple(preprocess["std"]),
    )
    return OpenClipModel(network.eval()), OpenClipTokenizer(tokenizer), config


class OpenClipModel(torch.nn.Module):
    """An open_clip model with the two methods (and the temperature) of a Hugging Face
    CLIPModel that the zero-shot classifier calls."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    @property
    def logit_scale(self):
        return self.network.logit_scale

    def get_image_features(self, pixel_values):
        return self.network.encode_image(pixel_values)

    def get_text_features(self, input_ids):
        return self.network.encode_text(input_ids)


class OpenClipTokenizer:
    """open_clip's tokenizer called as a Hugging Face one: texts in, ``{"input_ids"}`` out
    (open_clip pads and truncates to the model's context length itself)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def __call__(self, texts, **hf_options):
        return {"input_ids": self.tokenizer(list(texts))}


class FixedLengthTokenizer:
    """A Hugging Face tokenizer that pads every text to ``length`` tokens, whatever the
    caller asks: SigLIP was trained so and pools its text at the last position, so a
    shorter padding would change each text's embedding with the batch it comes in."""

    def __init__(self, tokenizer, length):
        self.tokenizer = tokenizer
        self.length = length

    def __call__(self, texts, **options):
        options.update(padding="max_length", max_length=self.length, truncation=True)
        return self.tokenizer(list(texts), **options)
