"""Image decoding: every Pillow mode, bit depth, transparency, EXIF orientation, array kind.

Each file is compared with the picture it must decode to, first as decoded pixels
(the strong check), then as features against the same picture saved as a plain
8-bit RGB PNG. The pictures are gradients with asymmetric structure, so a wrong
orientation, a clipped bit depth or a dropped alpha channel changes the pixels.
"""

import numpy as np
import pytest
from PIL import ExifTags, Image

from sktransfer import ImageClassifier, ImageEmbedder
from sktransfer.data import image_inputs, read_image
from sktransfer.exceptions import ImageReadError, InvalidInputError

from .conftest import random_images

H, W = 40, 48


def _picture():
    """RGB (H, W, 3): red grows left to right, green top to bottom, two off-centre patches."""
    y, x = np.mgrid[0:H, 0:W]
    picture = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), np.full((H, W), 60)], axis=-1)
    picture[4:14, 4:20] = (250, 30, 30)
    picture[25:35, 30:44, 2] = 240
    return picture.astype(np.uint8)


def _grey():
    return np.rint(_picture() @ [0.299, 0.587, 0.114]).astype(np.uint8)


def _grey16():
    """uint16 (H, W): a gradient over the whole 0..65535 range, with a dark patch."""
    values = np.linspace(0, 65535, H * W).reshape(H, W)
    values[5:15, 5:25] = 1000
    return np.rint(values).astype(np.uint16)


def _alpha():
    """Opaque on the right, transparent on the left, where the colours are garbage."""
    alpha = np.tile(np.linspace(0, 255, W), (H, 1)).astype(np.uint8)
    alpha[:, :8] = 0
    return alpha


def _over_white(colour, alpha):
    """The documented convention, computed here independently of Pillow."""
    a = alpha[..., None] / 255.0
    return np.rint(colour * a + 255 * (1 - a)).astype(np.uint8)


def _rgb(grey):
    return np.repeat(grey[..., None], 3, axis=-1)


def _palette_picture(transparent):
    image = Image.fromarray(_picture()).quantize(16, dither=Image.Dither.NONE)
    indices = np.asarray(image)
    expected = np.array(image.getpalette(), dtype=np.uint8).reshape(-1, 3)[indices]
    if transparent:
        index = int(indices[8, 8])  # the red patch
        image.info["transparency"] = index
        expected[indices == index] = 255
    return image, expected


def _transparent_colour(pixels):
    image = Image.fromarray(pixels)
    key = pixels[8, 8]  # the red patch
    image.info["transparency"] = tuple(int(v) for v in key) if key.ndim else int(key)
    expected = _rgb(pixels) if pixels.ndim == 2 else pixels.copy()
    hidden = (pixels == key).all(axis=-1) if pixels.ndim == 3 else pixels == key
    expected[hidden] = 255
    return image, expected


def _garbage_under_alpha(colour):
    colour = colour.copy()
    colour[:, :8] = np.random.default_rng(0).integers(0, 256, colour[:, :8].shape)
    return colour


def _case(name):
    """A PIL image for case ``name`` and the 8-bit RGB array it must decode to."""
    picture, grey, grey16 = _picture(), _grey(), _grey16()
    if name == "1":
        bits = grey > 127
        return Image.fromarray(bits), _rgb(bits.astype(np.uint8) * 255)
    if name == "L":
        return Image.fromarray(grey), _rgb(grey)
    if name in ("L+transparency", "RGB+transparency"):  # PNG's transparent colour (tRNS)
        return _transparent_colour(picture if name.startswith("RGB") else grey)
    if name in ("P", "P+transparency"):
        return _palette_picture(transparent=name != "P")
    if name == "RGB":
        return Image.fromarray(picture), picture
    if name == "RGBA":
        colour = _garbage_under_alpha(picture)
        return Image.fromarray(np.dstack([colour, _alpha()])), _over_white(colour, _alpha())
    if name == "LA":
        colour = _garbage_under_alpha(grey)
        image = Image.merge("LA", [Image.fromarray(colour), Image.fromarray(_alpha())])
        return image, _rgb(_over_white(colour[..., None], _alpha())[..., 0])
    if name in ("CMYK", "YCbCr"):
        return Image.fromarray(picture).convert(name), picture
    expected16 = _rgb(np.rint(grey16 / 257).astype(np.uint8))
    if name == "I;16":
        return Image.fromarray(grey16), expected16
    if name == "I":
        return Image.fromarray(grey16.astype(np.int32)), expected16
    if name == "F [0, 1]":
        return Image.fromarray((grey16 / 65535).astype(np.float32)), expected16
    if name == "F [0, 255]":
        return Image.fromarray((grey16 / 257).astype(np.float32)), expected16
    raise AssertionError(name)


# (case, file extension, mode Pillow opens it in, pixel tolerance: max |diff| for lossless
# files, mean |diff| for JPEG)
MODE_FILES = [
    ("1", "png", "1", 0),
    ("1", "bmp", "1", 0),
    ("1", "tif", "1", 0),
    ("L", "png", "L", 0),
    ("L", "pgm", "L", 0),
    ("L", "tif", "L", 0),
    ("L", "jpg", "L", 3),
    ("L+transparency", "png", "L", 0),
    ("P", "png", "P", 0),
    ("P", "gif", "P", 0),
    ("P", "bmp", "P", 0),
    ("P+transparency", "png", "P", 0),
    ("P+transparency", "gif", "P", 0),
    ("RGB", "png", "RGB", 0),
    ("RGB", "bmp", "RGB", 0),
    ("RGB", "ppm", "RGB", 0),
    ("RGB", "tif", "RGB", 0),
    ("RGB", "webp", "RGB", 0),
    ("RGB", "jpg", "RGB", 3),
    ("RGB+transparency", "png", "RGB", 0),
    ("RGBA", "png", "RGBA", 1),
    ("RGBA", "tif", "RGBA", 1),
    ("RGBA", "webp", "RGBA", 1),
    ("LA", "png", "LA", 1),
    ("CMYK", "tif", "CMYK", 0),
    ("CMYK", "jpg", "CMYK", 3),
    ("YCbCr", "tif", "YCbCr", 3),  # the YCbCr -> RGB round trip itself moves values by <= 3
    ("I;16", "png", "I;16", 0),
    ("I;16", "tif", "I;16", 0),
    ("I;16", "pgm", "I", 0),  # Pillow opens 16-bit PGM as mode I
    ("I", "tif", "I", 0),
    ("F [0, 1]", "tif", "F", 0),
    ("F [0, 255]", "tif", "F", 0),
]


# WebP lossless; JPEG at high quality without chroma subsampling, so that its error is small
SAVE_OPTIONS = {"webp": {"lossless": True}, "jpg": {"quality": 95, "subsampling": 0}}


def _save(image, path, **options):
    image.save(path, **SAVE_OPTIONS.get(path.suffix[1:], {}), **options)
    return str(path)


def _decoded(item):
    return np.asarray(read_image(item, 0)).astype(int)


def _assert_pixels(item, expected, tolerance, lossy):
    decoded = _decoded(item)
    assert decoded.shape == expected.shape
    diff = np.abs(decoded - expected)
    assert (diff.mean() if lossy else diff.max()) <= tolerance


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope="module")
def embedder():
    return ImageEmbedder("tiny_cnn", weights=None).fit([_picture()])


def _assert_features(embedder, path, expected, tmp_path, exact):
    """Features of ``path`` against those of ``expected`` saved as a plain 8-bit RGB PNG."""
    reference = _save(Image.fromarray(expected), tmp_path / "reference.png")
    got, want = embedder.transform([path, reference])
    if exact:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert _cosine(got, want) >= 0.99


@pytest.mark.parametrize("case, ext, opened_mode, tolerance", MODE_FILES)
def test_every_mode_decodes_to_its_picture(embedder, tmp_path, case, ext, opened_mode, tolerance):
    image, expected = _case(case)
    path = _save(image, tmp_path / f"image.{ext}")
    with Image.open(path) as opened:
        assert opened.mode == opened_mode  # the file really is in the mode under test
        from_pil = _decoded(opened)
    lossy = ext == "jpg"
    _assert_pixels(path, expected, tolerance, lossy)
    np.testing.assert_array_equal(from_pil, _decoded(path))  # a PIL image decodes like its file
    _assert_features(embedder, path, expected, tmp_path, exact=tolerance == 0)


@pytest.mark.parametrize(
    "case", ["1", "L", "P", "P+transparency", "RGB+transparency", "RGBA", "LA", "I;16", "I", "F [0, 1]"]
)
def test_pil_images_in_memory_follow_the_same_conventions(case):
    image, expected = _case(case)
    _assert_pixels(image, expected, tolerance=1, lossy=False)


def test_rare_modes_convert_or_name_the_problem():
    for mode in ("PA", "RGBa", "La", "HSV", "LAB", "I;16B", "I;16L"):
        assert read_image(Image.new(mode, (4, 3)), 0).mode == "RGB"


def test_sixteen_bit_mapping_spans_the_full_range(tmp_path):
    path = _save(Image.fromarray(_grey16()), tmp_path / "deep.png")
    decoded = _decoded(path)[..., 0]
    assert decoded.min() == 0 and decoded.max() == 255
    assert (decoded == 255).mean() < 0.01  # clipping at 255 made nearly all of it white
    big_endian = _save(Image.fromarray(_grey16().astype(">u2")), tmp_path / "deep_be.tif")
    assert Image.open(big_endian).mode == "I;16B"
    np.testing.assert_array_equal(_decoded(big_endian), _decoded(path))


# EXIF orientation n: how the camera stored the upright picture ``u`` (EXIF 2.3, tag 0x0112).
STORED = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],  # mirrored
    3: lambda u: u[::-1, ::-1],  # upside down
    4: lambda u: u[::-1],  # flipped vertically
    5: lambda u: u.transpose(1, 0, 2),
    6: lambda u: np.rot90(u, 1),  # shown after turning 90 degrees clockwise
    7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),
    8: lambda u: np.rot90(u, -1),  # shown after turning 90 degrees counter-clockwise
}


# Pillow itself turns TIFFs upright when loading them: "tif" checks nothing is turned twice.
@pytest.mark.parametrize("ext", ["jpg", "png", "tif", "webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_the_upright_picture(embedder, tmp_path, orientation, ext):
    upright = _picture()
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](upright)))
    path = _save(stored, tmp_path / f"photo.{ext}", exif=exif)
    lossy = ext == "jpg"
    _assert_pixels(path, upright, 3 if lossy else 0, lossy)
    with Image.open(path) as opened:
        np.testing.assert_array_equal(_decoded(opened), _decoded(path))
    _assert_features(embedder, path, upright, tmp_path, exact=not lossy)


def _frames(tmp_path, ext):
    first, expected = _case("P")
    second = first.transpose(Image.Transpose.ROTATE_180)
    options = {"save_all": True, "append_images": [second]}
    if ext in ("png", "webp"):  # animated PNG and WebP store RGB frames
        first, second = first.convert("RGB"), second.convert("RGB")
        options["append_images"] = [second]
    if ext == "webp":
        options["lossless"] = True
    path = tmp_path / f"animated.{ext}"
    first.save(path, **options)
    return str(path), expected


@pytest.mark.parametrize("ext", ["gif", "png", "webp", "tif"])
def test_animations_and_multi_page_files_give_their_first_frame(embedder, tmp_path, ext):
    path, expected = _frames(tmp_path, ext)
    with Image.open(path) as opened:
        assert opened.n_frames == 2
    _assert_pixels(path, expected, 0, lossy=False)
    _assert_features(embedder, path, expected, tmp_path, exact=True)


@pytest.mark.parametrize(
    "values, match",
    [
        (_grey16().astype(np.int32) * 2, r"integers from 0 to 131070 .*'I'.* uint16 \(0-65535\)"),
        (_grey16().astype(np.int32) - 5, r"integers from -5 to .*Rescale"),
        ((_grey16() / 65535 * 3 - 1).astype(np.float32), r"floats from -1 to 2 .*Rescale .*x.min\(\)"),
        (np.full((H, W), np.nan, np.float32), r"NaN .*nan_to_num"),
    ],
)
def test_values_without_an_8_bit_meaning_are_refused_naming_the_file(tmp_path, values, match):
    path = _save(Image.fromarray(values), tmp_path / "scan.tif")
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(path, 5)
    assert "Image 5" in str(info.value) and "scan.tif" in str(info.value)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_embedder_reports_the_index_of_an_unmappable_file(tmp_path, num_workers):
    good = _save(Image.fromarray(_picture()), tmp_path / "good.png")
    bad = _save(Image.fromarray(np.full((H, W), -1.0, np.float32)), tmp_path / "bad.tif")
    embedder = ImageEmbedder("tiny_cnn", weights=None, num_workers=num_workers).fit([good])
    with pytest.raises(ImageReadError, match=r"Image 1 .*bad\.tif.* floats from -1 to -1"):
        embedder.transform([good, bad])


@pytest.mark.parametrize(
    "image",
    [
        _picture(),
        np.dstack([_picture(), _alpha()]),
        _grey()[..., None],
        (_picture().astype(np.uint16) * 257),
    ],
    ids=["rgb", "rgba", "grey-channel", "uint16"],
)
def test_one_image_array_is_one_image(embedder, image):
    one = embedder.transform(image)
    assert one.shape == (1, embedder.n_features_out_)
    np.testing.assert_allclose(one, embedder.transform(image[None]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one, embedder.transform([image]), rtol=1e-5, atol=1e-6)


def test_greyscale_batches_stay_batches(embedder):
    assert embedder.transform(np.stack([_grey()] * 5)).shape == (5, embedder.n_features_out_)
    # The rule: a last axis of 1, 3 or 4 is the channel axis of one image.
    assert image_inputs(np.zeros((5, 40, 3), np.uint8)).shape == (1, 5, 40, 3)
    assert image_inputs(np.zeros((5, 40, 3, 1), np.uint8)).shape == (5, 40, 3, 1)


def test_classifier_predicts_one_label_for_one_image_array():
    X, y = random_images(8), np.array([0, 1] * 4)
    model = ImageClassifier("tiny_cnn", max_epochs=1, batch_size=4, random_state=0).fit(X, y)
    image = X[0]
    assert model.predict(image).shape == (1,)
    proba = model.predict_proba(image)
    np.testing.assert_allclose(proba, model.predict_proba(image[None]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba, model.predict_proba([image]), rtol=1e-5, atol=1e-6)


def test_alpha_convention_is_the_same_for_arrays_pil_images_and_files(tmp_path):
    rgba, expected = _case("RGBA")
    array = np.asarray(rgba)
    path = _save(rgba, tmp_path / "rgba.png")
    for item in (array, rgba, path):
        _assert_pixels(item, expected, tolerance=1, lossy=False)
    np.testing.assert_array_equal(_decoded(array), _decoded(path))


def test_uint16_arrays_map_like_16_bit_files_in_batches_and_lists(embedder, tmp_path):
    deep = np.stack([_picture().astype(np.uint16) * 257, np.full((H, W, 3), 65535, np.uint16)])
    shallow = np.stack([_picture(), np.full((H, W, 3), 255, np.uint8)])
    want = embedder.transform(shallow)
    np.testing.assert_allclose(embedder.transform(deep), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embedder.transform(list(deep)), want, rtol=1e-5, atol=1e-6)
    path = _save(Image.fromarray(_grey16()), tmp_path / "deep.png")
    np.testing.assert_array_equal(_decoded(_grey16()), _decoded(path))


def test_bool_arrays_are_black_and_white_in_batches_and_lists(embedder):
    bits = np.stack([_grey() > 127, _grey() > 60])
    want = embedder.transform(bits.astype(np.uint8) * 255)
    np.testing.assert_allclose(embedder.transform(bits), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embedder.transform(list(bits)), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "X, match",
    [
        (np.zeros((2, H, W, 3)), r"X has dtype float64.*\(X \* 255\)\.round\(\)\.astype\(np\.uint8\)"),
        (np.zeros((H, W, 3), np.float32), r"X has dtype float32.*Floats are refused"),
        ([_picture(), np.zeros((H, W), np.float16)], r"image 1 has dtype float16.*\[0, 255\]"),
        (np.zeros((2, H, W), np.int64), r"X has dtype int64.*X\.astype\(np\.uint8\)"),
        ([np.zeros((H, W, 3), np.int32)], r"image 0 has dtype int32.*astype\(np\.uint8\)"),
    ],
)
def test_other_array_dtypes_are_refused_with_the_conversion(embedder, X, match):
    with pytest.raises(InvalidInputError, match=match):
        embedder.transform(X)


def test_read_image_refuses_arrays_it_cannot_decode():
    with pytest.raises(InvalidInputError, match=r"Image 4 \(a float64 array .*Floats are refused"):
        read_image(np.zeros((H, W, 3)), 4)
    with pytest.raises(InvalidInputError, match=r"Image 2 .*has shape \(40, 48, 2\)"):
        read_image(np.zeros((H, W, 2), np.uint8), 2)
