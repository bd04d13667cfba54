"""What a loaded backbone is: a module, its preprocessing and its ordered blocks.

A backbone is an ``nn.Module`` whose ``forward`` returns unpooled features: a
``(N, C, H, W)`` feature map for CNNs, ``(N, L, C)`` tokens for transformers or
``(N, C)`` vectors. Pooling, precision and batching belong to the callers, so
the same backbone serves the embedders and the fine-tuning estimators.

``blocks`` is the ordered list (input side first) of ``(name, module_paths)``:
the parameters under those paths make up the block (for freezing), and the
output of the last path is the block's output (for intermediate features).
"""

import math
import numbers
from dataclasses import dataclass, field, replace

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROP_MODES = ("center", "squash", "border")


@dataclass(frozen=True)
class DataConfig:
    """Preprocessing that travels with the weights (timm's ``pretrained_cfg`` idea).

    Images are resized to ``floor(input_size / crop_pct)`` with ``interpolation``,
    centre-cropped to ``input_size`` and scaled with ``mean``/``std``. ``crop_mode`` says
    how they are resized, with timm's names: ``"center"`` scales the short side (the
    aspect ratio is kept, the crop loses the long side's ends), ``"squash"`` scales both
    sides to the square (nothing is lost, shapes are stretched; what SigLIP and some
    open_clip models were trained with), ``"border"`` scales the long side and pads the
    short one with ``fill`` (nothing is lost nor stretched; open_clip's ``"longest"``).
    """

    input_size: int = 224
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    mean: tuple = IMAGENET_MEAN
    std: tuple = IMAGENET_STD
    resize: int = None  # None: floor(input_size / crop_pct), as timm does
    crop_mode: str = "center"
    fill: tuple = None  # "border": the padding's RGB (0-255); None: the mean's colour, as timm pads

    def __post_init__(self):
        if self.crop_mode not in CROP_MODES:
            raise ValueError(f"DataConfig: crop_mode={self.crop_mode!r} is not one of {CROP_MODES}.")
        if self.fill is not None:
            object.__setattr__(self, "fill", _rgb(self.fill))

    @property
    def resize_size(self):
        return self.resize or math.floor(self.input_size / self.crop_pct)

    def resized_shape(self, height, width):
        """``(height, width)`` of an image of that size after the resize, before the crop
        (the short side to ``resize_size``, as torchvision's ``Resize`` does; squashed; or
        the long side, for ``"border"``)."""
        resize = self.resize_size
        if self.crop_mode == "squash":
            return resize, resize
        if self.crop_mode == "border":
            return longest_side_shape(height, width, resize)
        if height <= width:
            return resize, int(resize * width / height)
        return int(resize * height / width), resize

    def with_input_size(self, input_size):
        """The same preprocessing at another crop size (the resize keeps ``crop_pct``)."""
        if input_size is None or input_size == self.input_size:
            return self
        return replace(self, input_size=input_size, resize=None)

    def as_dict(self):
        settings = {
            "input_size": (3, self.input_size, self.input_size),
            "resize_size": self.resize_size,
            "crop_pct": self.crop_pct,
            "interpolation": self.interpolation,
            "mean": tuple(self.mean),
            "std": tuple(self.std),
        }
        if self.crop_mode != "center":  # absent when centred: cache keys made before it stay valid
            settings["crop_mode"] = self.crop_mode
        if self.crop_mode == "border":
            settings["fill"] = self.fill_rgb
        return settings

    @property
    def fill_rgb(self):
        """The padding's colour as three 0-255 integers (``"border"``)."""
        return self.fill if self.fill is not None else tuple(round(255 * v) for v in self.mean)


def _rgb(fill):
    """``fill`` as three 0-255 integers: one integer for the three channels (open_clip's
    ``fill_color``), or three."""
    values = (fill,) * 3 if isinstance(fill, numbers.Integral) else tuple(fill)
    if len(values) != 3 or not all(isinstance(v, numbers.Integral) and 0 <= v <= 255 for v in values):
        raise ValueError(
            f"DataConfig: fill={fill!r} must be an integer from 0 to 255, or three of them (an RGB colour)."
        )
    return tuple(int(v) for v in values)


def longest_side_shape(height, width, size):
    """``(height, width)`` with the long side scaled to ``size``, the ratio kept, rounded as
    timm's and open_clip's ``ResizeKeepRatio(longest=1)`` round."""
    ratio = max(height / size, width / size)
    return round(height / ratio), round(width / ratio)


@dataclass
class Block:
    """A named, ordered piece of a backbone; see the module docstring."""

    name: str
    paths: list = field(default_factory=list)


class Backbone(nn.Module):
    """Base class of every backbone; subclasses implement :meth:`forward`."""

    modality = "image"

    def __init__(self, model, *, name, blocks, default_pooling="avg", classifier=None):
        super().__init__()
        self.model = model
        self.name = name
        self.blocks = list(blocks)
        self.default_pooling = default_pooling
        self.classifier_path = classifier

    def block_names(self):
        return [block.name for block in self.blocks]

    def block_modules(self, block):
        """The submodules of ``block``, in order; paths naming a parameter (a ViT's
        ``cls_token``) rather than a module are skipped."""
        modules = []
        for path in block.paths:
            try:
                modules.append(self.model.get_submodule(path))  # "" is the whole model
            except AttributeError:
                pass
        return modules

    def block_output_module(self, block):
        """The submodule whose forward output is ``block``'s output."""
        modules = self.block_modules(block)
        if not modules:
            raise ValueError(f"Block {block.name!r} of backbone {self.name!r} has no module to hook.")
        return modules[-1]

    def block_parameters(self, block):
        """``(name, parameter)`` pairs (names relative to ``self.model``) in ``block``."""
        prefixes = tuple(block.paths)
        return [
            (name, param)
            for name, param in self.model.named_parameters()
            if any(p == "" or name == p or name.startswith(p + ".") for p in prefixes)
        ]


def speed_class(gflops):
    """A CPU speed class from the forward cost of one image at the pretraining size."""
    if gflops is None:
        return None
    return "fast" if gflops < 0.5 else "medium" if gflops < 2 else "slow"


def call_model(model, images):
    """The feature reader of networks whose forward returns the features."""
    return model(images)


def reader_name(features):
    """A stable name for a feature reader (for cache keys): ``module.function``."""
    return f"{features.__module__}.{features.__qualname__}"


class ImageBackbone(Backbone):
    """A vision network; ``data_config`` says how to preprocess its input."""

    def __init__(self, model, *, data_config=None, features=None, **kwargs):
        super().__init__(model, **kwargs)
        self.data_config = data_config or DataConfig()
        # ``features(model, images)`` reads the unpooled features: a module-level function
        # of the backbone's source module (pickle stores it by its qualified name).
        self.features = features or call_model

    def forward(self, images):
        return self.features(self.model, images)

    def classify(self, images):
        """Logits of the pretrained classification head, when the backbone kept one."""
        if self.classifier_path is None:
            raise ValueError(f"Backbone {self.name!r} has no pretrained classifier head.")
        return self.model(images)  # the whole pretrained network ends in its classifier
