"""Choosing among pretrained backbones with the data at hand."""

from ._backbone import BackboneSelector

__all__ = ["BackboneSelector"]
