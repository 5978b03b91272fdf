"""Every reader decodes images by one rule set: 8/16-bit, palette, alpha, EXIF, bombs, path-only cells."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from semsim_metric.image_io import decode_image, load_image


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def test_a_16_bit_greyscale_png_is_scaled_not_clipped():
    wide = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    decoded = decode_image(_png(Image.fromarray(wide)))
    expected = np.round(wide.astype(np.float64) * 255 / 65535).astype(np.uint8)  # computed independently
    assert decoded.dtype == torch.uint8 and decoded.shape == (1, 64, 64)
    assert np.array_equal(decoded[0].numpy(), expected)
    assert float((decoded == 255).float().mean()) < 0.01


def test_semsim_score_of_a_16_bit_png_against_its_8_bit_copy_is_zero(tmp_path, tiny_model_dir):
    from semsim_metric import semsim
    from semsim_metric.models import SemSimModel

    wide = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    (tmp_path / "a16.png").write_bytes(_png(Image.fromarray(wide)))
    eight = np.round(wide.astype(np.float64) * 255 / 65535).astype(np.uint8)
    Image.fromarray(eight).save(tmp_path / "a8.png")
    model = SemSimModel.from_pretrained(tiny_model_dir)
    a, b = load_image(tmp_path / "a16.png"), load_image(tmp_path / "a8.png")
    assert float(semsim(a[None], b[None], model=model, data_range=255).detach()) == 0.0


def test_palette_images_are_read_through_their_palette():
    rgb = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).quantize(colors=16)
    expected = np.array(pal.convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(decode_image(_png(pal)).numpy(), expected)


@pytest.mark.parametrize("mode, fill, channels", [("LA", (90, 255), 1), ("RGBA", (1, 2, 3, 255), 3)])
def test_an_opaque_alpha_channel_is_dropped(mode, fill, channels):
    decoded = decode_image(_png(Image.new(mode, (4, 3), fill)))
    assert decoded.shape == (channels, 3, 4) and int(decoded[0, 0, 0]) == fill[0]


def test_transparent_pixels_are_refused_with_the_rule():
    with pytest.raises(ValueError, match="transparent pixels .*alpha_composite"):
        decode_image(_png(Image.new("RGBA", (4, 4), (10, 20, 30, 128))))


def test_one_bit_images_are_black_and_white():
    img = Image.new("1", (3, 2), 1)
    assert decode_image(img).unique().tolist() == [255]


def test_float_images_are_refused():
    with pytest.raises(ValueError, match="32-bit float"):
        decode_image(Image.new("F", (3, 3), 0.5))


def test_exif_orientation_is_applied():
    arr = np.zeros((2, 4), dtype=np.uint8)
    arr[0, 0] = 255
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=exif)
    decoded = decode_image(buf.getvalue())
    assert decoded.shape == (1, 4, 2) and int(decoded[0, 0, 1]) == 255


def test_a_decompression_bomb_is_an_oserror_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    Image.new("L", (40, 40)).save(tmp_path / "big.png")
    with pytest.raises(OSError, match="big.png.*shrink the image"):
        load_image(tmp_path / "big.png")


def test_a_cell_that_holds_only_a_path_is_not_opened(tmp_path):
    Image.new("L", (4, 4)).save(tmp_path / "local.png")
    cell = {"bytes": None, "path": str(tmp_path / "local.png")}
    with pytest.raises(ValueError, match="only a path"):
        decode_image(cell)
    assert decode_image(cell, allow_paths=True).shape == (1, 4, 4)


def test_a_corrupt_file_is_an_oserror_naming_it(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(OSError, match="bad.png"):
        load_image(tmp_path / "bad.png")
