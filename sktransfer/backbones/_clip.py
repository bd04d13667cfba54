"""CLIP-family models (an image and a text tower in one embedding space) from a local
Hugging Face folder or a reachable hub id, with the image preprocessing their
processor config describes."""

import os
from pathlib import Path

from ._base import DataConfig
from ._text import _quiet_loading, import_transformers

HOW_TO_GET_ONE = (
    "No CLIP weights ship with sktransfer. On a machine with internet, save one once: "
    "`from transformers import CLIPModel, CLIPProcessor; "
    "CLIPModel.from_pretrained('openai/clip-vit-base-patch32').save_pretrained(folder); "
    "CLIPProcessor.from_pretrained('openai/clip-vit-base-patch32').save_pretrained(folder)`, "
    "copy the folder here, and pass model=folder."
)

# Hugging Face's resample codes (PIL's) -> the interpolation names of DataConfig.
_INTERPOLATIONS = {0: "nearest", 2: "bilinear", 3: "bicubic"}


def load_clip(model, owner="load_clip"):
    """A CLIP-family model, its tokenizer and its image preprocessing.

    Parameters
    ----------
    model : str or path
        A local Hugging Face model folder (``config.json``, weights, tokenizer and
        ``preprocessor_config.json``), or a hub id where the hub or the local
        Hugging Face cache has it. Never runs code shipped with the model.
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
    transformers = import_transformers()
    source = os.fspath(model)
    local = Path(source).expanduser()
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
    return network, tokenizer, _data_config(processor)


def _data_config(processor):
    """The library's preprocessing from a Hugging Face image processor's settings."""
    crop = getattr(processor, "crop_size", None) or processor.size
    size = processor.size
    input_size = int(crop["height"] if crop.get("height") else crop["shortest_edge"])
    resize = int(size["shortest_edge"]) if size.get("shortest_edge") else int(size["height"])
    return DataConfig(
        input_size=input_size,
        resize=resize,
        interpolation=_INTERPOLATIONS.get(int(getattr(processor, "resample", 3)), "bicubic"),
        mean=tuple(processor.image_mean),
        std=tuple(processor.image_std),
    )
