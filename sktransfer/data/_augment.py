"""Training-time augmentation presets for images (PIL image -> uint8 tensor)."""

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from ._images import _INTERPOLATIONS, crop_step, eval_transform, resize_step, tensor_friendly

AUGMENT_PRESETS = ("none", "light", "standard")


def train_transform(augment, data_config):
    """The transform for ``augment``: a preset name or any callable on PIL images.

    - ``"none"``: the evaluation transform (resize, centre crop).
    - ``"light"``: resize as for evaluation, then a random resized crop keeping 80-100 %
      of that area, and a horizontal flip: objects keep the scale they have at
      prediction time; what worked best on a few hundred photos (see the guide).
    - ``"standard"``: crops down to 35 % of the area, flip, mild colour jitter.
    - a callable: applied to the PIL image, then resized and centre-cropped to the
      model's input size (so any torchvision transform works).
    """
    size = data_config.input_size
    interpolation = _INTERPOLATIONS[data_config.interpolation]
    if isinstance(augment, str) and augment == "none":
        return eval_transform(data_config)
    if isinstance(augment, str) and augment == "light":
        resized = data_config.resize_size
        padded = [crop_step(data_config, resized)] if data_config.crop_mode == "border" else []
        steps = [
            resize_step(data_config, resized),
            *padded,  # "border": the whole picture on its square, as at prediction time
            v2.RandomResizedCrop(size, scale=(0.8, 1.0), interpolation=interpolation),
            v2.RandomHorizontalFlip(),
        ]
    elif isinstance(augment, str) and augment == "standard":
        steps = [
            v2.RandomResizedCrop(size, scale=(0.35, 1.0), interpolation=interpolation),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    elif callable(augment):
        # A user's transform may expect PIL images and return a PIL image, an array or a
        # float tensor: made uint8 before the resize, which pads and crops those alike.
        steps = [
            _UserAugment(augment),
            _ToUint8(),
            resize_step(data_config, size),
            crop_step(data_config, size),
        ]
        return v2.Compose(steps)
    else:
        raise ValueError(f"augment={augment!r} is not one of {AUGMENT_PRESETS} nor a callable transform.")
    return tensor_friendly(v2.Compose([*steps, v2.PILToTensor()]))


class _UserAugment:
    """A user's callable, whose failures and odd results name the ``augment`` parameter."""

    def __init__(self, augment):
        self.augment = augment

    def __call__(self, image):
        try:
            out = self.augment(image)
        except Exception as exc:
            raise RuntimeError(f"augment={self.augment!r} raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, (Image.Image, torch.Tensor, np.ndarray)):
            raise RuntimeError(
                f"augment={self.augment!r} returned a {type(out).__name__}; it must take a PIL image "
                "and return a PIL image, a tensor or an array (any torchvision transform does)."
            )
        return out


class _ToUint8:
    """PIL image or tensor -> uint8 tensor (C, H, W), whatever a user's transform returned."""

    def __call__(self, image):
        if isinstance(image, np.ndarray) and not image.flags.writeable:
            image = image.copy()  # np.asarray(PIL image) is read-only, which torch refuses
        tensor = v2.functional.to_image(image)
        return v2.functional.to_dtype(tensor, dtype=torch.uint8, scale=True)
