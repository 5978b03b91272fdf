"""Decoding images into uint8 tensors ``(C, H, W)``: files, ``datasets.Image`` values, PIL images.

Every reader of the package (``semsim score``, converters, training, evaluation, image sources) decodes
through :func:`decode_image`; :func:`stack_images` batches same-sized results.
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


def _to_tensor(img: Any) -> Tensor:
    mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
    arr = np.array(img.convert(mode))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


def load_image(path: str | Path) -> Tensor:
    """Read an image file as a uint8 tensor ``(C, H, W)`` with C = 1 (greyscale) or 3 (RGB).

    Raises:
        OSError: the file cannot be read or decoded (message names the file).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            return _to_tensor(img)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        raise OSError(f"cannot read image {path}: {err}") from err


def decode_image(value: Any) -> Tensor:
    """Decode an image value into uint8 ``(C, H, W)``: a PIL image, a ``datasets.Image`` cell
    (``{"bytes", "path"}``), raw bytes or a file path.

    Example:
        >>> from PIL import Image
        >>> decode_image(Image.new("L", (5, 4))).shape
        torch.Size([1, 4, 5])
    """
    from PIL import Image

    if isinstance(value, dict):
        if value.get("bytes"):
            value = value["bytes"]
        elif value.get("path"):
            return load_image(value["path"])
        else:
            raise ValueError("image cell holds neither bytes nor a path.")
    if isinstance(value, (bytes, bytearray)):
        with Image.open(io.BytesIO(value)) as img:
            img.load()
            return _to_tensor(img)
    if isinstance(value, (str, Path)):
        return load_image(value)
    return _to_tensor(value)


def stack_images(images: list[Tensor]) -> Tensor:
    """Stack same-sized ``(C, H, W)`` images, repeating greyscale ones to the widest channel count."""
    channels = max(i.shape[0] for i in images)
    return torch.stack([i.expand(channels, -1, -1) for i in images])
