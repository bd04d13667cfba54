"""Why a fitted model predicted what it did: pixel and token attributions, and their plots."""

from ._attribute import TokenAttribution, attribute
from ._render import plot_image_attribution

__all__ = ["TokenAttribution", "attribute", "plot_image_attribution"]
