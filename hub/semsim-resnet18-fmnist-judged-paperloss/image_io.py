# Exported from semsim-metric 0.1.0 (semsim_metric/image_io.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""Decoding images into uint8 tensors ``(C, H, W)``: files, ``datasets.Image`` values, PIL images.

Every reader of the package (``semsim score``, converters, training, evaluation, image sources) decodes
through ``decode_image``; ``stack_images`` batches same-sized results. ``load_image_for_model`` reads a file
for a model of a known input size: a large image is reduced while it is read (JPEG in the decoder, other
formats by area averaging right after decoding), so what stays in memory is a little above the model's
input size, never the full image (the input gate then does the exact resize).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .errors import ImageFileError, InvalidInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "READ_MIN_SIDE",
    "READ_MODEL_SIDES",
    "ModelSizedImage",
    "decode_image",
    "load_image",
    "load_image_for_model",
    "pil_image_for_model",
    "read_side",
    "stack_images",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

#: ``load_image_for_model`` keeps at least ``READ_MODEL_SIDES`` x the model's input side per image side ...
READ_MODEL_SIDES = 4
#: ... and at least this many pixels: at the default input size (32) a 4000x4000 file is read as 572x572, and
#: SemSim distances stay within 0.005 of reading it whole (docs/benchmarks.md, tests/test_decode_memory.py)
READ_MIN_SIDE = 512

#: rows converted at a time when a full-size 16/32-bit image becomes 8-bit (keeps the conversion narrow)
_STRIPE_ROWS = 256


class _UndefinedPixels(ValueError):
    """Pixels whose meaning SemSim would have to guess (transparency, float or out-of-range values)."""


class ModelSizedImage(NamedTuple):
    """An image read for a model: its pixels (reduced while read) and the shape of the file's image."""

    #: uint8 ``(C, h, w)``; each side is the file's side, or at least ``read_side(image_size)`` when reduced
    pixels: Tensor
    #: ``(C, H, W)`` of the image as stored (after EXIF orientation), before any reduction
    shape: tuple[int, int, int]


#: PIL modes whose pixels carry an alpha channel
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
#: PIL modes of 16/32-bit integer greyscale, scaled 0..65535 -> 0..255
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
#: 0..65535 -> round(v * 255 / 65535) in integer arithmetic (no ties: 65535 is odd), as a lookup table
_WIDE_TO_8 = ((np.arange(65536, dtype=np.uint32) * 510 + 65535) // 131070).astype(np.uint8)
#: EXIF orientation -> the PIL transposition that shows the image as a viewer does (as ImageOps.exif_transpose)
_ORIENTATIONS = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}


def read_side(image_size: int) -> int:
    """The least side ``load_image_for_model`` keeps for a model of input side ``image_size``.

    Raises:
        ValueError: ``image_size`` is not a positive integer.

    Examples:
        >>> read_side(32), read_side(224)
        (512, 896)
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise InvalidInputError(f"image_size must be a positive integer, got {image_size!r}.")
    return max(READ_MIN_SIDE, READ_MODEL_SIDES * image_size)


def _reduced_side(side: int, keep: int) -> int:
    """``side`` divided by the largest whole factor that keeps at least ``keep`` (unchanged below 2 x keep)."""
    factor = side // keep
    return side if factor < 2 else -(-side // factor)


def _orientation(img: Any) -> str | None:
    """Name of the transposition the image's EXIF orientation asks for (``None``: shown as stored)."""
    if not hasattr(img, "getexif"):
        return None
    try:
        return _ORIENTATIONS.get(int(img.getexif().get(0x0112, 1)))
    except (TypeError, ValueError):
        return None


def _check_opaque(img: Any, name: str) -> None:
    """Refuse an image with transparent pixels (read from the alpha band's extrema: no copy of the pixels)."""
    lo, hi = img.getextrema()[-1]
    if lo < 255:
        raise _UndefinedPixels(
            f"{name} has transparent pixels (alpha {int(lo)}..{int(hi)}, mode {img.mode}): what a "
            "person sees behind them depends on the background, so SemSim does not guess. Composite it onto the "
            "background it is shown on first, e.g. Image.alpha_composite(Image.new('RGBA', im.size, 'white'), im)."
        )


def _check_wide_range(img: Any, name: str) -> None:
    """Refuse 32-bit integer pixels outside 0..65535 (read from the extrema: no copy of the pixels)."""
    lo, hi = img.getextrema()
    if lo < 0 or hi > 65535:
        raise _UndefinedPixels(
            f"{name}: 32-bit integer pixels outside 0..65535 (mode {img.mode}) have no known "
            "range; save it with 8 or 16 bits per channel."
        )


def _wide_to_8(img: Any, name: str) -> np.ndarray:
    """16/32-bit integer greyscale -> uint8 ``(H, W)``, a stripe of rows at a time (never a wide full-size copy)."""
    _check_wide_range(img, name)
    width, height = img.size
    out = np.empty((height, width), dtype=np.uint8)
    for top in range(0, height, _STRIPE_ROWS):
        bottom = min(height, top + _STRIPE_ROWS)
        out[top:bottom] = _WIDE_TO_8[np.asarray(img.crop((0, top, width, bottom)))]
    return out


#: transpositions that swap width and height
_SWAPS = ("TRANSPOSE", "ROTATE_270", "TRANSVERSE", "ROTATE_90")


def _to_array(
    img: Any, name: str, keep: int | None = None, stored: tuple[int, int] | None = None
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """uint8 ``(H, W, C)`` from a loaded PIL image of any bit depth (rules in ``load_image``), and the shape
    ``(C, H, W)`` of the image as shown, from its ``stored`` size ``(W, H)`` (default: ``img.size``).

    With ``keep``, each side of at least ``2 * keep`` pixels is area-averaged (PIL's box filter, so every pixel
    counts once and the geometry stays exact) down to the side divided by the largest whole factor that
    leaves at least ``keep``; smaller images are returned as they are.
    """
    from PIL import Image

    transpose = _orientation(img)
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in _ALPHA_MODES:
        _check_opaque(img, name)
        img = img.convert("L" if mode in ("LA", "La") else "RGB")  # opaque: dropping alpha changes no pixel
        mode = img.mode
    if mode == "F":
        raise _UndefinedPixels(
            f"{name}: 32-bit float pixels (mode F) have no fixed range; save it with 8 or 16 bits "
            "per channel, or pass the values as a tensor with their data_range."
        )
    if mode == "1":
        img = img.convert("L")  # 0/255
    elif mode not in ("L", "RGB") and mode not in _WIDE_MODES:
        img = img.convert("RGB")  # every colour model PIL can convert (CMYK, YCbCr, LAB, HSV)
    channels = 3 if img.mode == "RGB" else 1
    width, height = stored or img.size
    shape = (channels, width, height) if transpose in _SWAPS else (channels, height, width)
    if keep is not None:
        size = (_reduced_side(img.size[0], keep), _reduced_side(img.size[1], keep))
        if size != img.size:
            if img.mode in _WIDE_MODES:
                _check_wide_range(img, name)  # the range rule holds for the file, not only its average
            img = img.resize(size, Image.Resampling.BOX)
    if transpose is not None:
        img = img.transpose(getattr(Image.Transpose, transpose))
    arr = _wide_to_8(img, name) if img.mode in _WIDE_MODES else np.array(img)
    return (arr[:, :, None] if arr.ndim == 2 else arr), shape


def _as_tensor(arr: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()


def _to_tensor(img: Any, name: str = "image") -> Tensor:
    """uint8 ``(C, H, W)`` from a PIL image of any bit depth (rules in ``load_image``)."""
    return _as_tensor(_to_array(img, name)[0])


def _open(source: Any, name: str, image_size: int | None = None) -> tuple[Tensor, tuple[int, int, int]]:
    """Decode ``source``; with ``image_size``, reduce it while reading (see ``load_image_for_model``)."""
    from PIL import Image, UnidentifiedImageError

    keep = read_side(image_size) if image_size is not None else None
    try:
        # PIL's decompression-bomb rule applies here, before any pixel is decoded
        with Image.open(source) as img:
            stored = img.size
            if keep is not None and img.format == "JPEG":
                img.draft(None, (keep, keep))  # decode at 1/2, 1/4 or 1/8 scale, both sides still >= keep
            img.load()
            arr, shape = _to_array(img, name, keep, stored)
            return _as_tensor(arr), shape
    except Image.DecompressionBombError as err:
        raise ImageFileError(
            f"cannot read image {name}: {err} Such sizes are refused to protect memory; shrink the image "
            "(SemSim resizes to its input size anyway)."
        ) from err
    except (OSError, UnidentifiedImageError, SyntaxError, EOFError) as err:
        raise ImageFileError(f"cannot read image {name}: {err}") from err
    except _UndefinedPixels:
        raise
    except ValueError as err:
        raise ImageFileError(f"cannot read image {name}: {err}") from err


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

    Wide pixels are converted a stripe of rows at a time through a lookup table, so memory holds the decoded
    file and its 8-bit copy, nothing wider.

    Raises:
        OSError: the file cannot be read or decoded, or is too large (the message names the file).
        ValueError: the pixels have no defined meaning here (transparency, float pixels).
    """
    path = Path(path)
    return _open(path, str(path))[0]


def load_image_for_model(path: str | Path, image_size: int) -> ModelSizedImage:
    """Read an image file for a model whose input side is ``image_size``, reduced while it is read.

    The rules of ``load_image`` apply (the range, alpha and float rules to the whole file). Then each side of
    at least ``2 * read_side(image_size)`` pixels is reduced: a JPEG is decoded at 1/2, 1/4 or 1/8 scale by
    the decoder itself, and every format is then area-averaged (a box filter, each pixel counted once) to the
    side divided by the largest whole factor that leaves at least ``read_side(image_size)`` (512 at the
    default size 32). So memory holds one decoded file and a small copy, never a batch of full-size images.
    The input gate (``preprocessing.to_unit_rgb``) does the exact antialiased resize to ``image_size`` from
    there. The SemSim distance then differs from reading the file whole by at most 0.005 (measured: 0.0015 for
    PNG, 0.0041 for JPEG at the default size; ``docs/benchmarks.md``). Smaller images are returned exactly as
    ``load_image`` reads them.

    Raises:
        OSError: the file cannot be read or decoded, or is over PIL's decompression-bomb limit (the message
            names the file).
        ValueError: the pixels have no defined meaning here (transparency, float pixels), or ``image_size``
            is not a positive integer.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.new("RGB", (4000, 3000)).save(f"{tmp}/big.png")
        ...     read = load_image_for_model(f"{tmp}/big.png", 32)
        >>> tuple(read.pixels.shape), read.shape
        ((3, 600, 572), (3, 3000, 4000))
    """
    path = Path(path)
    pixels, shape = _open(path, str(path), image_size)
    return ModelSizedImage(pixels, shape)


def pil_image_for_model(img: Any, image_size: int, name: str = "PIL image") -> ModelSizedImage:
    """A PIL image brought to the size at which ``load_image_for_model`` reads a file for a model whose input
    side is ``image_size``: the rules of ``load_image``, then each side of at least ``2 * read_side(image_size)``
    pixels area-averaged by a whole factor. So a PIL image scores as the PNG file it was read from does.

    Raises:
        ValueError: the pixels have no defined meaning here (transparency, float pixels), or ``image_size``
            is not a positive integer.

    Examples:
        >>> from PIL import Image
        >>> read = pil_image_for_model(Image.new("RGB", (4000, 3000)), 32)
        >>> tuple(read.pixels.shape), read.shape
        ((3, 600, 572), (3, 3000, 4000))
    """
    arr, shape = _to_array(img, name, read_side(image_size), img.size)
    return ModelSizedImage(_as_tensor(arr), shape)


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
            return _open(io.BytesIO(value["bytes"]), str(value.get("path") or "image bytes"))[0]
        if value.get("path"):
            if not allow_paths:
                raise InvalidInputError(
                    f"image cell holds only a path ({value['path']!r}), no bytes: SemSim datasets embed their images, "
                    "and a cell pointing at a local file is not opened. Rebuild the dataset with embedded images "
                    "(`semsim convert`, or datasets' `Dataset.to_parquet` after `cast_column(col, Image())`), or "
                    "pass allow_paths=True for a dataset you made yourself."
                )
            return load_image(value["path"])
        raise InvalidInputError("image cell holds neither bytes nor a path.")
    if isinstance(value, (bytes, bytearray)):
        return _open(io.BytesIO(value), "image bytes")[0]
    if isinstance(value, (str, Path)):
        return load_image(value)
    return _to_tensor(value)


def stack_images(images: list[Tensor]) -> Tensor:
    """Stack same-sized ``(C, H, W)`` images, repeating greyscale ones to the widest channel count."""
    channels = max(i.shape[0] for i in images)
    return torch.stack([i.expand(channels, -1, -1) for i in images])
