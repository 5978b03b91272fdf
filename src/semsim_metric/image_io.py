"""Decoding images into uint8 tensors ``(C, H, W)``: files, ``datasets.Image`` values, PIL images.

Every reader of the package (``semsim score``, converters, training, evaluation, image sources) decodes
through ``decode_image``; ``stack_images`` batches same-sized results.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["IMAGE_SUFFIXES", "decode_image", "load_image", "stack_images"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


class _UndefinedPixels(ValueError):
    """Pixels whose meaning SemSim would have to guess (transparency, float or out-of-range values)."""


#: PIL modes whose pixels carry an alpha channel
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")


def _to_tensor(img: Any, name: str = "image") -> Tensor:
    """uint8 ``(C, H, W)`` from a PIL image of any bit depth (rules in ``decode_image``)."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(img) if hasattr(img, "getexif") else img
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in _ALPHA_MODES:
        alpha = np.asarray(img.getchannel("A"))
        if alpha.min() < 255:
            raise _UndefinedPixels(
                f"{name} has transparent pixels (alpha {int(alpha.min())}..{int(alpha.max())}, mode {mode}): what a "
                "person sees behind them depends on the background, so SemSim does not guess. Composite it onto the "
                "background it is shown on first, e.g. Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im).")
        img = img.convert("L" if mode in ("LA", "La") else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(img).astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise _UndefinedPixels(f"{name}: 32-bit integer pixels outside 0..65535 (mode {mode}) have no known range; "
                             "save it with 8 or 16 bits per channel.")
        arr8 = np.round(arr * (255 / 65535)).astype(np.uint8)  # 16 bits per channel: 0..65535 -> 0..255
        return torch.from_numpy(np.ascontiguousarray(arr8))[None].contiguous()
    if mode == "F":
        raise _UndefinedPixels(f"{name}: 32-bit float pixels (mode F) have no fixed range; save it with 8 or 16 bits per "
                         "channel, or pass the values as a tensor with their data_range.")
    if mode == "1":
        arr = np.asarray(img, dtype=np.uint8) * 255
    elif mode == "L":
        arr = np.array(img)
    else:  # RGB and every colour model PIL can convert (CMYK, YCbCr, LAB, HSV; 16-bit RGB PNGs load as RGB)
        arr = np.array(img.convert("RGB"))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


def _open(source: Any, name: str) -> Tensor:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as img:
            img.load()
            return _to_tensor(img, name)
    except Image.DecompressionBombError as err:
        raise OSError(f"cannot read image {name}: {err} Such sizes are refused to protect memory; shrink the image "
                      "(SemSim resizes to its input size anyway).") from err
    except (OSError, UnidentifiedImageError, SyntaxError, EOFError) as err:
        raise OSError(f"cannot read image {name}: {err}") from err
    except _UndefinedPixels:
        raise
    except ValueError as err:
        raise OSError(f"cannot read image {name}: {err}") from err


def load_image(path: str | Path) -> Tensor:
    """Read an image file as a uint8 tensor ``(C, H, W)`` with C = 1 (greyscale) or 3 (RGB).

    Decoding rules (the same for every reader of the package):

    * 8-bit greyscale and RGB as they are; 1-bit images as 0/255;
    * 16-bit greyscale (PNG ``I;16``) scaled from 0..65535 to 0..255 (rounded); 16-bit RGB PNGs as PIL
      reads them (the high byte);
    * palette images through their palette; CMYK, YCbCr and other colour models converted to RGB;
    * an alpha channel is dropped when every pixel is opaque; an image with transparent pixels is refused
      (``ValueError``), because what a person sees behind them depends on the background;
    * EXIF orientation is applied (the image as a viewer shows it);
    * 32-bit float images and images over PIL's decompression-bomb limit are refused.

    Raises:
        OSError: the file cannot be read or decoded, or is too large (the message names the file).
        ValueError: the pixels have no defined meaning here (transparency, float pixels).
    """
    path = Path(path)
    return _open(path, str(path))


def decode_image(value: Any, *, allow_paths: bool = False) -> Tensor:
    """Decode an image value into uint8 ``(C, H, W)`` by the rules of ``load_image``: a PIL image,
    a ``datasets.Image`` cell (``{"bytes", "path"}``), raw bytes or a file path.

    A dataset cell must hold its image bytes (the SemSim schema embeds them): a cell that holds only a
    path would make a downloaded dataset open files on this machine, so it is refused unless
    ``allow_paths=True``. A path given directly (``str`` or ``Path``) is read as a file.

    Examples:
        >>> from PIL import Image
        >>> decode_image(Image.new("L", (5, 4))).shape
        torch.Size([1, 4, 5])
    """
    if isinstance(value, dict):
        if value.get("bytes"):
            return _open(io.BytesIO(value["bytes"]), str(value.get("path") or "image bytes"))
        if value.get("path"):
            if not allow_paths:
                raise ValueError(
                    f"image cell holds only a path ({value['path']!r}), no bytes: SemSim datasets embed their images, "
                    "and a cell pointing at a local file is not opened. Rebuild the dataset with embedded images "
                    "(`semsim convert`, or datasets' `Dataset.to_parquet` after `cast_column(col, Image())`), or "
                    "pass allow_paths=True for a dataset you made yourself.")
            return load_image(value["path"])
        raise ValueError("image cell holds neither bytes nor a path.")
    if isinstance(value, (bytes, bytearray)):
        return _open(io.BytesIO(value), "image bytes")
    if isinstance(value, (str, Path)):
        return load_image(value)
    return _to_tensor(value)


def stack_images(images: list[Tensor]) -> Tensor:
    """Stack same-sized ``(C, H, W)`` images, repeating greyscale ones to the widest channel count."""
    channels = max(i.shape[0] for i in images)
    return torch.stack([i.expand(channels, -1, -1) for i in images])
