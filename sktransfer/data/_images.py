"""Image inputs: what users pass as ``X`` -> decoded, preprocessed uint8 tensors.

Nothing here decodes eagerly: :func:`image_inputs` only checks types, and
:class:`ImageDataset` opens one image per ``__getitem__``, so memory stays
bounded by the batch whatever the number of samples. PIL's global limits
(``MAX_IMAGE_PIXELS``, ``LOAD_TRUNCATED_IMAGES``) are never changed: a
decompression bomb or a truncated file is refused with an error naming the file.
How pixels of any mode or dtype become 8-bit RGB (orientation, bit depth,
transparency) is decided in ``_decode``.
"""

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2

from .._device import image_memory_format
from ..backbones._base import longest_side_shape
from ..exceptions import ImageReadError, ImageTransformError, InvalidInputError
from ._decode import ARRAY_SHAPES, array_problem, array_to_image, dtype_problem, to_rgb, upright
from ._loader import loader_options

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

_INTERPOLATIONS = {
    "nearest": v2.InterpolationMode.NEAREST,
    "bilinear": v2.InterpolationMode.BILINEAR,
    "bicubic": v2.InterpolationMode.BICUBIC,
    "lanczos": v2.InterpolationMode.LANCZOS,
}


def image_inputs(X, owner="ImageEmbedder"):
    """Check ``X`` and return an indexable sequence of images (paths, PIL images or arrays).

    Parameters
    ----------
    X : list, tuple, ndarray, pandas Series or one-column DataFrame
        A list or tuple of paths, PIL images or pixel arrays (sizes may differ); a
        1-D array, Series or one-column DataFrame of paths; or pixel arrays:

        - ``(N, H, W, C)`` with ``C`` in 1, 3, 4: a batch of ``N`` images;
        - ``(H, W, C)`` with ``C`` in 1, 3, 4: ONE channels-last image, as in a list;
        - any other 3-D shape ``(N, H, W)``: a batch of ``N`` greyscale images. Greyscale
          images 1, 3 or 4 pixels wide are read as one image: add the channel axis,
          ``X[..., None]``, to keep them a batch.

        Pixel arrays are uint8, uint16 or bool (see :func:`read_image`).
    owner : str
        The estimator's name, for error messages.

    Returns
    -------
    items : list or ndarray
        One entry per image; a single image array becomes a batch of one.
    """
    X = _unwrap_pandas(X, owner)
    if isinstance(X, (str, os.PathLike, Image.Image)):
        raise InvalidInputError(
            f"{owner} expects a collection of images, got a single {type(X).__name__}; "
            "wrap it in a list: [image]."
        )
    if isinstance(X, np.ndarray):
        items = _check_array_batch(X, owner)
    elif isinstance(X, (list, tuple)):
        items = list(X)
    else:
        raise InvalidInputError(
            f"{owner} cannot read images from a {type(X).__name__}; pass a list of paths, PIL "
            "images or pixel arrays, a uint8 array (N, H, W, C), or a pandas Series of paths."
        )
    if len(items) == 0:
        raise InvalidInputError(f"{owner} got an empty X: there are no images to process.")
    if not isinstance(items, np.ndarray):
        for index, item in enumerate(items):
            _check_item(item, index, owner)
    return items


def is_one_image(X):
    """Whether a pixel array is a single channels-last image ``(H, W, C)``, C in 1, 3, 4."""
    return X.ndim == 3 and X.shape[-1] in (1, 3, 4) and X.dtype.kind not in "OUS"


def _unwrap_pandas(X, owner):
    if hasattr(X, "iloc") and hasattr(X, "columns"):  # DataFrame
        if X.shape[1] != 1:
            raise InvalidInputError(
                f"{owner} expects one column of image paths, got {X.shape[1]} columns "
                f"{list(X.columns)}; select the image column (in a ColumnTransformer: "
                "pass the column name as a string, not a list)."
            )
        X = X.iloc[:, 0]
    if hasattr(X, "iloc"):  # Series
        return X.tolist()
    return X


def _check_array_batch(X, owner):
    if X.dtype.kind in "OUS":  # paths (or objects) in an array
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 1:
            raise InvalidInputError(f"{owner} expects a 1-D array of paths, got shape {X.shape}.")
        return X.tolist()
    if is_one_image(X):
        X = X[None]  # the same as [X] or X[None]: one row out
    if X.ndim == 4 and X.shape[-1] in (1, 3, 4) or X.ndim == 3:
        problem = dtype_problem(X.dtype)
        if problem:
            raise InvalidInputError(f"{owner}: X {problem}")
        return X
    if X.ndim == 4:
        raise InvalidInputError(
            f"{owner} expects channels-last images (N, H, W, C) with C in 1, 3 or 4; got shape "
            f"{X.shape}. For channels-first data use X.transpose(0, 2, 3, 1)."
        )
    raise InvalidInputError(
        f"{owner} expects a batch of images (N, H, W, C) or (N, H, W); got an array of shape "
        f"{X.shape} (rank {X.ndim}). A 2-D array is a table of features, not images: pass "
        "image paths, PIL images or pixel arrays (one greyscale image: [image])."
    )


def _check_item(item, index, owner):
    if isinstance(item, (str, os.PathLike, Image.Image)):
        return
    if isinstance(item, np.ndarray):
        problem = array_problem(item)
        if problem:
            raise InvalidInputError(f"{owner}: image {index} {problem}")
        return
    raise InvalidInputError(
        f"{owner}: image {index} is {item!r} ({type(item).__name__}); expected a path, a PIL "
        f"image or a pixel array {ARRAY_SHAPES}. Remove or fill missing entries before calling."
    )


def read_image(item, index):
    """Decode one input as an upright 8-bit RGB PIL image, naming the file and index on failure.

    Parameters
    ----------
    item : str, os.PathLike, PIL.Image.Image or ndarray
        A file (its first frame for animations and multi-page files), a PIL image, or
        a uint8, uint16 or bool array of shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).
    index : int
        The item's position in the user's ``X``, for error messages.

    Returns
    -------
    image : PIL.Image.Image
        A new RGB image. The EXIF orientation is applied, 16-bit and float pixels are
        mapped to 8 bits and transparency is composited over white (see ``_decode``).

    Raises
    ------
    ImageReadError
        The file is missing, not an image or corrupt, or its values have no 8-bit meaning.
    InvalidInputError
        An array of another shape or dtype.
    """
    if isinstance(item, Image.Image):
        return to_rgb(upright(item), f"Image {index} (a PIL image)")
    if isinstance(item, np.ndarray):
        name = f"Image {index} (a {item.dtype} array of shape {item.shape})"
        return to_rgb(array_to_image(item, name), name)
    path = os.fspath(item)
    if not os.path.isfile(path):
        raise ImageReadError(f"Image {index} ({path!r}) does not exist or is not a file.")
    if os.path.getsize(path) == 0:
        raise ImageReadError(f"Image {index} ({path!r}) is an empty file (0 bytes).")
    try:
        with Image.open(path) as image:  # frame 0 of animations and multi-page files
            return to_rgb(upright(image), f"Image {index} ({path!r})")
    except ImageReadError:  # already names the file: not "corrupt" (it is a ValueError)
        raise
    except Image.DecompressionBombError as exc:
        raise ImageReadError(
            f"Image {index} ({path!r}) was refused by Pillow's decompression-bomb limit ({exc}). "
            "If the file is trusted, downscale it first."
        ) from None
    except UnidentifiedImageError:
        raise ImageReadError(
            f"Image {index} ({path!r}) is not an image Pillow can identify (wrong extension or a "
            "non-image file?)."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"Image {index} ({path!r}) is corrupt or truncated: {exc}.") from None


def resize_step(data_config, size):
    """The resize of ``data_config``'s ``crop_mode`` to ``size``: the short side to it
    (``"center"``), both sides (``"squash"``), or the long side (``"border"``)."""
    interpolation = _INTERPOLATIONS[data_config.interpolation]
    if data_config.crop_mode == "border":
        return _ResizeLongest(size, interpolation)
    target = (size, size) if data_config.crop_mode == "squash" else size
    return v2.Resize(target, interpolation=interpolation)


def crop_step(data_config, size):
    """The centre ``size`` x ``size`` crop; for ``"border"``, the short side padded first
    with the config's ``fill`` (torchvision's ``CenterCrop`` would pad with black)."""
    if data_config.crop_mode == "border":
        return _CenterCropOrPad(size, list(data_config.fill_rgb))
    return v2.CenterCrop(size)


def eval_transform(data_config):
    """PIL image -> uint8 tensor (C, H, W): resize (see :func:`resize_step`), then
    centre-crop (see :func:`crop_step`).

    Scaling to float and mean/std happen on the device, batched (see :func:`scale_pixels`).
    It also takes uint8 ``(3, H, W)`` tensors (see :func:`tensor_friendly`).
    """
    return tensor_friendly(
        v2.Compose(
            [
                resize_step(data_config, data_config.resize_size),
                crop_step(data_config, data_config.input_size),
                v2.PILToTensor(),
            ]
        )
    )


class _ResizeLongest:
    """The long side to ``size``, the ratio kept (timm's and open_clip's ``ResizeKeepRatio``
    with ``longest=1``); PIL images and uint8 tensors alike."""

    def __init__(self, size, interpolation):
        self.size, self.interpolation = size, interpolation

    def __call__(self, image):
        height, width = v2.functional.get_size(image)
        shape = list(longest_side_shape(height, width, self.size))
        return v2.functional.resize(image, shape, interpolation=self.interpolation, antialias=True)


class _CenterCropOrPad:
    """Pad a side shorter than ``size`` with ``fill`` (half on each end, the odd pixel after),
    then crop the centre, as timm's and open_clip's ``CenterCropOrPad`` do."""

    def __init__(self, size, fill):
        self.size, self.fill = size, fill

    def __call__(self, image):
        height, width = v2.functional.get_size(image)
        across, down = max(self.size - width, 0), max(self.size - height, 0)
        if across or down:
            padding = [across // 2, down // 2, (across + 1) // 2, (down + 1) // 2]
            image = v2.functional.pad(image, padding, fill=self.fill)
        return v2.functional.center_crop(image, [self.size, self.size])


def tensor_friendly(transform):
    """Mark ``transform`` as one that works on uint8 ``(3, H, W)`` tensors as on PIL images."""
    transform.accepts_tensors = True
    return transform


def _array_as_tensor(item, index):
    """An array image as a uint8 ``(3, H, W)`` tensor, decoded by the same conventions as
    :func:`read_image`; None for files and PIL images.

    Resizing a tensor skips the PIL round trip: 10 ms instead of 56 ms for 32 images of
    320x240 on 2 CPU cores (antialiased, within 2 levels of PIL's result). A uint8
    ``(H, W, 3)`` array, the common case, is used as it is, without a copy.
    """
    if not isinstance(item, np.ndarray):
        return None
    if not (item.dtype == np.uint8 and item.ndim == 3 and item.shape[-1] == 3):
        item = np.array(read_image(item, index))  # grey, alpha, 16-bit, bool: to 8-bit RGB
    elif not item.flags.writeable:
        item = item.copy()  # torch refuses read-only memory
    return torch.from_numpy(item).permute(2, 0, 1)


def scale_pixels(batch, data_config):
    """uint8 ``(N, C, H, W)`` -> float, scaled by ``mean``/``std``, on the batch's device."""
    mean = torch.tensor(data_config.mean, device=batch.device).view(1, -1, 1, 1) * 255
    std = torch.tensor(data_config.std, device=batch.device).view(1, -1, 1, 1) * 255
    return (batch.float() - mean) / std


def to_model_input(batch, data_config, device):
    """A uint8 batch from :func:`image_batches` -> the float tensor the network expects.

    The copy to the device moves uint8 (4x less than float32); the result is in the
    memory format convolutions run fastest in on that device (channels-last on CPUs and
    CUDA GPUs, see :func:`sktransfer._device.image_memory_format`).
    """
    x = scale_pixels(batch.to(device, non_blocking=True), data_config)
    return x.contiguous(memory_format=image_memory_format(device))


def image_batches(items, transform, *, batch_size, num_workers=0, pin_memory=False, positions=None):
    """Yield ``(indices, uint8 batch)`` in input order, decoding in ``num_workers`` processes."""
    loader = torch.utils.data.DataLoader(
        ImageDataset(items, transform, positions),
        generator=torch.Generator(),  # keeps the global RNG untouched
        **loader_options(batch_size, num_workers, pin_memory),
    )
    start = 0
    for batch in loader:
        yield np.arange(start, start + len(batch)), batch
        start += len(batch)


class ImageDataset(torch.utils.data.Dataset):
    """Decodes and transforms image ``i`` on demand (also inside DataLoader workers).

    ``positions`` are the indices reported in error messages when ``items`` is a
    subset of the user's ``X`` (for instance the cache misses).
    """

    def __init__(self, items, transform, positions=None):
        self.items = items
        self.transform = transform
        self.positions = positions
        self.tensors_ok = getattr(transform, "accepts_tensors", False)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        position = index if self.positions is None else int(self.positions[index])
        image = _array_as_tensor(self.items[index], position) if self.tensors_ok else None
        if image is None:
            image = read_image(self.items[index], position)
        try:
            return self.transform(image)
        except Exception as exc:  # a user's augment callable: say which image and what failed
            item = self.items[index]
            source = repr(os.fspath(item)) if isinstance(item, (str, os.PathLike)) else type(item).__name__
            raise ImageTransformError(
                f"Image {position} ({source}) could not be transformed: {type(exc).__name__}: {exc}"
            ) from exc


def is_image_file(path):
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS
