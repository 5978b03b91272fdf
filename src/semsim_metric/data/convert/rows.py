"""What every converter needs to build a row: the problem an input item can have, its pair of images read
and checked once, and votes turned into ``recognized`` by a ``RecognitionRule``.

An item's problem is an ``ItemProblem`` (a missing or unreadable file, a link leaving the tree, a size
mismatch): the converter lists it in the report with the item, or stops there in strict mode. A real I/O error
while reading a file stays an ``OSError``, its message after the file's path.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ...errors import ImageFileError, ItemProblem
from ..schema import RecognitionRule
from .tree import Tree

__all__ = [
    "ImageCache",
    "ImageCell",
    "ItemProblem",
    "finish_row",
    "load_image",
    "load_pair",
    "read_image",
    "require_inside",
]

#: an ``Image`` feature cell: ``{"bytes": ..., "path": file name}``
ImageCell = dict[str, Any]
#: images already read, by the path the converter found them under: (cell, (width, height))
ImageCache = dict[Path, tuple[ImageCell, tuple[int, int]]]


def read_image(real: Path, shown: Path) -> tuple[ImageCell, tuple[int, int]]:
    """Read and fully decode the image file ``real``; return its Image-feature cell (named ``shown``'s file
    name) and (width, height). Messages name ``shown``, the path as the converter found it.

    Raises:
        OSError: the file cannot be read (the system's message, after ``shown``).
        ItemProblem: it is not a decodable image.
    """
    from PIL import Image

    try:
        data = real.read_bytes()
    except OSError as err:  # a real I/O error: reported as the system says it, after the file's path
        raise ImageFileError(f"{shown}: {err}") from err
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            size = img.size
    except Exception as err:  # PIL raises many kinds for corrupt files
        raise ItemProblem(f"{shown}: unreadable or truncated image ({type(err).__name__}: {err})") from err
    return {"bytes": data, "path": shown.name}, size


def require_inside(tree: Tree, path: Path) -> Path:
    """``path`` with its links resolved, when that is under ``tree``'s root.

    Raises:
        ItemProblem: ``path`` is a symbolic link to somewhere outside the root, or a link loop (the message
            names the path, not its target).
    """
    refusal = tree.refusal(path)
    if refusal is not None:
        raise ItemProblem(refusal)
    return path.resolve()


def load_image(path: Path, cache: ImageCache, tree: Tree | None = None) -> tuple[ImageCell, tuple[int, int]]:
    """Read ``path`` once (``cache``); under a ``tree``, only when it resolves to a file inside it.

    Raises:
        ItemProblem: the file is missing, is a link leaving the tree, or is not a decodable image.
        OSError: it cannot be read.
    """
    if path not in cache:
        if not path.is_file():
            raise ItemProblem(f"missing file: {path}")
        real = require_inside(tree, path) if tree is not None else path
        cache[path] = read_image(real, path)
    return cache[path]


def load_pair(
    orig_path: Path, rec_path: Path, cache: ImageCache, tree: Tree | None = None
) -> tuple[ImageCell, ImageCell]:
    """Read an (original, reconstruction) pair: the original through ``cache`` (many reconstructions share one),
    the reconstruction once.

    Raises:
        ItemProblem: a file is missing, unreadable, (under a ``tree``) a link leaving it, or the two sizes differ.
        OSError: a file cannot be read.
    """
    orig, osize = load_image(orig_path, cache, tree)
    recon, rsize = load_image(rec_path, {}, tree)
    if osize != rsize:
        raise ItemProblem(f"size mismatch: original {osize} vs reconstruction {rsize}")
    return orig, recon


def finish_row(row: dict[str, Any], rule: RecognitionRule) -> dict[str, Any]:
    """Set ``recognized`` and ``recognized_share`` of a row that has votes, by ``rule``; return the row.

    Examples:
        >>> row = {"votes": [3, 3, 3, -1, 2], "class_label": 3, "original_votes": []}
        >>> finish_row(row, RecognitionRule(3))["recognized"], row["recognized_share"]
        (True, 0.6)
    """
    votes = row["votes"]
    if votes:
        row["recognized"] = rule.recognized(votes, row["class_label"], row["original_votes"])
        row["recognized_share"] = rule.share(votes, row["class_label"], row["original_votes"])
    return row
