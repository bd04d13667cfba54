"""Why a fitted model predicted what it did: pixel and token attributions, their plots, and
how faithful they are."""

from ._attribute import TokenAttribution, attribute
from ._faithfulness import CamLayerChoice, DeletionResult, choose_cam_layers, deletion_test
from ._render import plot_image_attribution

__all__ = [
    "CamLayerChoice",
    "DeletionResult",
    "TokenAttribution",
    "attribute",
    "choose_cam_layers",
    "deletion_test",
    "plot_image_attribution",
]
