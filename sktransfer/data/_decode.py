"""Pixels of any Pillow mode or array dtype -> one upright 8-bit RGB image.

The conventions (documented in docs/data.md, "How pixels are decoded"):

- orientation: the EXIF orientation (2-8) is applied, as photo viewers do;
- bit depth: 16-bit values map to 8 bits by ``round(v / 257)``, full range to full
  range (65535 = 255 * 257). 32-bit integers do the same when they lie in 0-65535;
  32-bit floats in [0, 1] are multiplied by 255, in [0, 255] kept. Any other range
  is an error: clipping would silently give a different picture;
- transparency: composited over white, whatever carries it (an alpha channel, a
  transparent palette entry or colour, the 4th channel of an array), so that pixels
  hidden under alpha 0 never reach the network;
- other modes (1, L, P, CMYK, YCbCr, ...): Pillow's conversion to RGB.

Arrays are uint8, uint16 or bool; floats and other integers are refused with the
conversion to use, because their scale ([0, 1] or [0, 255]?) is the caller's to say.
"""

import numpy as np
from PIL import ExifTags, Image, ImageOps

from ..exceptions import ImageReadError, InvalidInputError

ARRAY_SHAPES = "(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
# Part of the embedding cache's key: raise it whenever these conventions change, so
# that features decoded under the old ones are not served again.
DECODING_VERSION = 3

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_WHITE = (255, 255, 255, 255)


def upright(image):
    """Apply the EXIF orientation, so a photo taken sideways is seen as it is displayed.

    Returns ``image`` itself when there is nothing to do (tag absent or 1), otherwise a
    transposed copy. TIFFs need nothing: Pillow applies their orientation when loading.
    """
    if image.getexif().get(ExifTags.Base.Orientation, 1) in range(2, 9):
        return ImageOps.exif_transpose(image)
    return image


def to_rgb(image, name):
    """A PIL image of any mode -> a new 8-bit RGB image.

    Parameters
    ----------
    image : PIL.Image.Image
        The decoded image (a file's first frame, a user's image or an array's).
    name : str
        Says which image it is in error messages, e.g. ``"Image 3 ('a.tif')"``.

    Returns
    -------
    rgb : PIL.Image.Image
        A new image in mode RGB, never ``image`` itself (a file's image is closed after).
    """
    image = _to_8bit(image, name)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        return _over_white(image, name)
    return _convert(image, "RGB", name)


def array_problem(array):
    """Why ``array`` is not one image (shape or dtype), or None when it is."""
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))):
        return f"has shape {array.shape}; expected {ARRAY_SHAPES}."
    return dtype_problem(array.dtype)


def dtype_problem(dtype):
    """Why pixels of ``dtype`` are refused, with the conversion to use; None when accepted."""
    if dtype == np.uint8 or dtype == np.uint16 or dtype == np.bool_:
        return None
    accepted = "pixel arrays must be uint8 (0-255), uint16 (0-65535, mapped to 8 bits) or bool"
    if dtype.kind == "f":
        return (
            f"has dtype {dtype}; {accepted}. Floats are refused because their scale is ambiguous: "
            "for values in [0, 1] convert with (X * 255).round().astype(np.uint8), for values in "
            "[0, 255] with X.round().astype(np.uint8)."
        )
    return f"has dtype {dtype}; {accepted}. If the values are 0-255, convert with X.astype(np.uint8)."


def array_to_image(array, name):
    """A uint8, uint16 or bool array of one image -> a PIL image (L, RGB or RGBA)."""
    problem = array_problem(array)
    if problem:
        raise InvalidInputError(f"{name} {problem}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype == np.uint16:
        array = sixteen_to_8bit(array)
    elif array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255  # like Pillow's mode "1": True is white
    return Image.fromarray(np.ascontiguousarray(array))


def sixteen_to_8bit(values):
    """0-65535 -> 0-255 by ``round(v / 257)``; in integers, since 257 is odd there are no ties."""
    return ((values.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _to_8bit(image, name):
    """High-bit-depth modes (I;16*, I, F) -> L; every other mode is returned as is."""
    if image.mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N, I
        return Image.fromarray(_integers_to_8bit(np.asarray(image), image.mode, name))
    if image.mode == "F":
        return Image.fromarray(_floats_to_8bit(np.asarray(image), name))
    return image


def _integers_to_8bit(values, mode, name):
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ImageReadError(
            f"{name} holds integers from {values.min()} to {values.max()} (Pillow mode {mode!r}), "
            "outside 0-65535, the 16-bit range that has a standard mapping to 8 bits. Rescale the "
            "values yourself to uint8 (0-255) or uint16 (0-65535) and pass that array instead."
        )
    return sixteen_to_8bit(values)


def _floats_to_8bit(values, name):
    if not np.isfinite(values).all():
        raise ImageReadError(
            f"{name} holds NaN or infinite values (Pillow mode 'F'); replace them (e.g. with "
            "np.nan_to_num), scale to [0, 1] and pass (x * 255).round().astype(np.uint8)."
        )
    if values.size == 0 or (values.min() >= 0 and values.max() <= 1):
        return np.rint(values * 255).astype(np.uint8)
    if values.min() >= 0 and values.max() <= 255:
        return np.rint(values).astype(np.uint8)
    raise ImageReadError(
        f"{name} holds floats from {values.min():g} to {values.max():g} (Pillow mode 'F'); only "
        "[0, 1] (scaled by 255) and [0, 255] (kept) have an unambiguous 8-bit meaning. Rescale it "
        "yourself, e.g. x = (x - x.min()) / (x.max() - x.min()), and pass "
        "(x * 255).round().astype(np.uint8)."
    )


def _over_white(image, name):
    """Composite over a white background, as a page or a viewer shows a transparent image."""
    if image.mode == "La":  # premultiplied: Pillow converts it to RGBA only through LA
        image = image.convert("LA")
    rgba = _convert(image, "RGBA", name)
    return Image.alpha_composite(Image.new("RGBA", rgba.size, _WHITE), rgba).convert("RGB")


def _convert(image, mode, name):
    try:
        return image.convert(mode)
    except ValueError as exc:
        raise ImageReadError(
            f"{name} has Pillow mode {image.mode!r}, which Pillow cannot convert to {mode} ({exc}); "
            "convert it to RGB first."
        ) from None
