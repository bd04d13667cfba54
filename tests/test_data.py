import struct
import zlib

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from sktransfer import ImageEmbedder, load_image_folder
from sktransfer.data import image_inputs, read_image, text_inputs
from sktransfer.exceptions import ImageReadError, InvalidInputError


def test_image_inputs_accepts_the_usual_forms(image_files):
    paths, arrays = image_files
    assert image_inputs(paths) == paths
    assert image_inputs(pd.Series(paths)) == paths
    assert image_inputs(pd.DataFrame({"img": paths})) == paths
    assert image_inputs(np.array(paths)) == paths
    assert image_inputs(arrays) is arrays
    assert len(image_inputs([Image.fromarray(a) for a in arrays])) == 6


@pytest.mark.parametrize(
    "X, match",
    [
        ([], "empty"),
        ("one.jpg", "wrap it in a list"),
        (np.zeros((4, 5)), "2-D array is a table"),
        (np.zeros((2, 8, 8, 3)), "uint8"),
        (np.zeros((2, 3, 8, 8), dtype=np.uint8), "channels-last"),
        (["a.png", None], "image 1 is None"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), "one column"),
        ([np.zeros((4, 4, 2), dtype=np.uint8)], "image 0 has shape"),
    ],
)
def test_image_inputs_errors_name_the_culprit(X, match):
    with pytest.raises(InvalidInputError, match=match):
        image_inputs(X)


def test_greyscale_and_rgba_are_converted():
    grey = np.full((5, 6), 7, dtype=np.uint8)
    rgba = np.zeros((5, 6, 4), dtype=np.uint8)
    assert read_image(grey, 0).mode == "RGB" and read_image(grey, 0).getpixel((0, 0)) == (7, 7, 7)
    assert read_image(rgba, 1).mode == "RGB"
    assert read_image(Image.fromarray(grey).convert("LA"), 2).mode == "RGB"


def _png_header_with_size(path, width, height):
    """A PNG whose header declares ``width x height`` pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    data += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    path.write_bytes(data)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not a jpeg"), "not an image"),
        (lambda p: _png_header_with_size(p, 40000, 40000), "decompression-bomb"),
    ],
)
def test_bad_files_name_file_and_index(tmp_path, make, match):
    bad = tmp_path / "bad.jpg"
    make(bad)
    with pytest.raises(ImageReadError, match=match) as info:
        read_image(str(bad), 3)
    assert "Image 3" in str(info.value) and "bad.jpg" in str(info.value)


def test_pil_globals_are_untouched(tmp_path):
    before = (Image.MAX_IMAGE_PIXELS, __import__("PIL.ImageFile").ImageFile.LOAD_TRUNCATED_IMAGES)
    _png_header_with_size(tmp_path / "bomb.png", 40000, 40000)
    with pytest.raises(ImageReadError):
        read_image(str(tmp_path / "bomb.png"), 0)
    assert before == (Image.MAX_IMAGE_PIXELS, __import__("PIL.ImageFile").ImageFile.LOAD_TRUNCATED_IMAGES)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_truncated_file_fails_with_its_name_also_in_workers(image_files, tmp_path, num_workers):
    paths, _ = image_files
    truncated = tmp_path / "truncated.jpg"
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(truncated, quality=95)
    truncated.write_bytes(truncated.read_bytes()[:300])
    embedder = ImageEmbedder("tiny_cnn", weights=None, num_workers=num_workers, batch_size=2).fit(paths)
    with pytest.raises(ImageReadError, match=r"Image 6 .*truncated\.jpg"):
        embedder.transform(paths + [str(truncated)])


def test_image_folder_reports_non_images(tmp_path):
    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / label / f"{i}.jpg")
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    with pytest.warns(UserWarning, match="notes.txt"):
        paths, labels = load_image_folder(tmp_path)
    assert list(labels) == ["cats", "cats", "dogs", "dogs"]
    assert all(p.endswith(".jpg") for p in paths)
    with pytest.warns(UserWarning):
        frame = load_image_folder(tmp_path, as_frame=True)
    assert list(frame.columns) == ["path", "label"] and len(frame) == 4


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_image_folder(tmp_path / "missing")
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_image_folder(tmp_path)


def test_hymenoptera_folder_keeps_the_gif_placeholder(hymenoptera):
    paths, labels = load_image_folder(hymenoptera / "train")
    assert len(paths) == 245 and (labels == "ants").sum() == 124
    gif = [p for p in paths if p.endswith("imageNotFound.gif")]
    assert len(gif) == 1 and read_image(gif[0], 0).size == (300, 300)


def test_text_inputs_forms_and_errors():
    assert text_inputs(pd.Series(["a", "b"])) == ["a", "b"]
    assert text_inputs(np.array([["a"], ["b"]], dtype=object)) == ["a", "b"]
    with pytest.raises(InvalidInputError, match="text 1 is None"):
        text_inputs(["a", None])
    with pytest.raises(InvalidInputError, match="text 0 is nan.*keep_default_na"):
        text_inputs([float("nan")])
    with pytest.raises(InvalidInputError, match="empty"):
        text_inputs([])
    with pytest.raises(InvalidInputError, match="one string"):
        text_inputs("hello")


@pytest.mark.parametrize("crop_mode", ["center", "squash", "border"])
@pytest.mark.parametrize("height, width, crop_pct", [(100, 300, 0.875), (301, 97, 1.0), (50, 51, 0.9)])
def test_images_are_resized_and_cropped_as_timm_does(crop_mode, height, width, crop_pct):
    from timm.data import create_transform

    from sktransfer.backbones import DataConfig
    from sktransfer.data._images import eval_transform

    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8))
    config = DataConfig(input_size=48, crop_pct=crop_pct, crop_mode=crop_mode, interpolation="bicubic")
    ours = eval_transform(config)(picture).float() / 255
    mean, std = (torch.tensor(v)[:, None, None] for v in (config.mean, config.std))
    timm_transform = create_transform(
        input_size=48,
        crop_pct=crop_pct,
        crop_mode=crop_mode,
        interpolation="bicubic",
        mean=config.mean,
        std=config.std,
    )
    torch.testing.assert_close((ours - mean) / std, timm_transform(picture), atol=1e-5, rtol=0)
