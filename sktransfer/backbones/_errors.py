"""Errors that several backbone sources raise alike."""

from .._validation import closest_names
from ..exceptions import BackboneNotFoundError


def unknown_backbone_error(name, known):
    close = closest_names(name, list(dict.fromkeys(known)))
    hint = f" Closest known names: {', '.join(close)}." if close else ""
    return BackboneNotFoundError(
        f"Unknown backbone {name!r}.{hint} See sktransfer.backbones.list_backbones(); timm models "
        "are written 'timm/<name>', Hugging Face encoders by their hub id or local folder."
    )
