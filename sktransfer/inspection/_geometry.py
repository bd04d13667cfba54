"""Where the network's input pixels came from: a map over the centre crop -> the original image."""

import numpy as np
import torch


def crop_box(height, width, data_config):
    """``(top, left, size, resized)``: the original was resized to ``resized`` (see
    ``DataConfig.resized_shape``), then the ``size`` x ``size`` square at ``(top, left)``
    was kept, a negative offset being padding: what ``eval_transform`` does."""
    resized = data_config.resized_shape(height, width)
    size = data_config.input_size
    return _offset(resized[0], size), _offset(resized[1], size), size, resized


def _offset(length, size):
    """Where the centre crop of ``size`` starts along a side of ``length``: rounded half
    to even when cropping, as torchvision's ``CenterCrop``; a side shorter than the crop is
    padded by ``(size - length) // 2`` before the image (torchvision's and timm's rule)."""
    if length >= size:
        return int(round((length - size) / 2.0))
    return -((size - length) // 2)


def visible_region(height, width, data_config):
    """Boolean ``(height, width)``: the original pixels inside the crop the network sees."""
    top, left, size, resized = crop_box(height, width, data_config)
    rows = (np.arange(height) + 0.5) * resized[0] / height
    cols = (np.arange(width) + 0.5) * resized[1] / width
    inside_rows = (rows >= top) & (rows < top + size)
    inside_cols = (cols >= left) & (cols < left + size)
    return inside_rows[:, None] & inside_cols[None, :]


def to_original(attribution, height, width, data_config):
    """A ``(size, size)`` map over the crop -> ``(height, width)`` over the original image,
    zero where the network saw nothing."""
    top, left, size, resized = crop_box(height, width, data_config)
    canvas = torch.zeros((1, 1, *resized))
    # a crop larger than the resized image (crop_pct > 1) was padded: keep the image's part
    rows = slice(max(top, 0), min(top + size, resized[0]))
    cols = slice(max(left, 0), min(left + size, resized[1]))
    crop = torch.as_tensor(attribution, dtype=torch.float32)
    canvas[0, 0, rows, cols] = crop[rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
    if resized == (height, width):
        return canvas[0, 0].numpy()
    back = torch.nn.functional.interpolate(canvas, size=(height, width), mode="bilinear", align_corners=False)
    return back[0, 0].numpy()
