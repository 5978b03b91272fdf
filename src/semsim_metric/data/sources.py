"""Labelled image sources: Fashion-MNIST IDX files, ``datasets`` image datasets, class folders.

Used by data generation (attacked originals come from a source's *test* split; victims train only on its
*train* split) and by training (class pre-training on a *train* split).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ImageSourceError, InvalidInputError, MissingFileError
from ..image_io import IMAGE_SUFFIXES, decode_image, load_image, stack_images

__all__ = [
    "FASHION_MNIST_CLASSES",
    "ImageSource",
    "ImageSourceError",
    "emoji_scenes_folder",
    "load_fashion_mnist",
    "load_hf_dataset",
    "load_image_folder",
    "load_source",
    "load_sources",
    "parse_source_list",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class ImageSource:
    """Images of one split: uint8 ``(N, C, H, W)``, integer labels, class names and stable ids."""

    name: str
    split: str
    images: Tensor
    labels: Tensor
    class_names: list[str]
    ids: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: list[int] | range) -> ImageSource:
        idx = list(indices)
        return ImageSource(
            self.name,
            self.split,
            self.images[idx],
            self.labels[idx],
            self.class_names,
            [self.ids[i] for i in idx],
        )


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise InvalidInputError(f"{path} is not an IDX file (bad magic number).")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise InvalidInputError(
            f"{path}: only unsigned-byte IDX files are supported (type code {dtype_code:#x})."
        )
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise InvalidInputError(f"{path}: truncated IDX file ({body.size} values for shape {dims}).")
    return body.reshape(dims)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise MissingFileError(
        f"{stem}[.gz] not found in {folder}. Install the Debian package `dataset-fashion-mnist` "
        "(apt-get install dataset-fashion-mnist) or pass the folder holding the IDX files."
    )


def load_fashion_mnist(split: str = "test", root: str | Path | None = None) -> ImageSource:
    """Fashion-MNIST from local IDX files (``train-images-idx3-ubyte[.gz]`` etc.).

    Ids are ``fmnist-<split>-NNNNN`` (the index in the split), as in the default dataset.
    """
    if split not in ("train", "test"):
        raise InvalidInputError(f"split must be 'train' or 'test', got {split!r}.")
    folder = Path(root) if root is not None else FASHION_MNIST_DIR
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(_find(folder, f"{prefix}-images-idx3-ubyte"))
    labels = _read_idx(_find(folder, f"{prefix}-labels-idx1-ubyte"))
    if len(images) != len(labels):
        raise InvalidInputError(
            f"{folder}: {len(images)} images but {len(labels)} labels in the {split} split."
        )
    return ImageSource(
        "fashion_mnist",
        split,
        torch.from_numpy(images.copy()).unsqueeze(1),
        torch.from_numpy(labels.astype(np.int64)),
        FASHION_MNIST_CLASSES,
        [f"fmnist-{split}-{i:05d}" for i in range(len(labels))],
    )


def load_hf_dataset(
    name: str,
    split: str = "test",
    *,
    image_column: str = "image",
    label_column: str = "label",
    revision: str | None = None,
    limit: int | None = None,
) -> ImageSource:
    """Any ``datasets`` image dataset with a label column (e.g. ``zalando-datasets/fashion_mnist`` or
    ``uoft-cs/cifar100`` with ``label_column="fine_label"``) - needs the Hub or a local copy."""
    import datasets

    from .._progress import quiet_datasets_bars

    with quiet_datasets_bars():
        ds = datasets.load_dataset(name, split=split, revision=revision)
    for col in (image_column, label_column):
        if col not in ds.column_names:
            raise InvalidInputError(f"{name} has no column {col!r}; it has {ds.column_names}.")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    images = [decode_image(img) for img in ds[image_column]]
    feature = ds.features[label_column]
    names = list(getattr(feature, "names", []) or sorted({str(v) for v in ds[label_column]}))
    slug = name.split("/")[-1]
    return ImageSource(
        slug,
        split,
        _stack(images),
        torch.tensor(ds[label_column], dtype=torch.int64),
        names,
        [f"{slug}-{split}-{i:05d}" for i in range(len(ds))],
    )


FOLDER_SPLITS = ("train", "test")


def _folder_layout(folder: Path) -> str:
    return f"{folder}/train/<class>/*.png and {folder}/test/<class>/*.png"


def _class_dirs(folder: Path) -> list[str]:
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))


def _folder_classes(folder: Path) -> list[str]:
    """The class names of a split folder source, checked: ``train/`` and ``test/`` with the same classes."""
    found = _class_dirs(folder) if folder.is_dir() else None
    if found is None:
        raise ImageSourceError(
            f"image folder source {folder} does not exist; expected {_folder_layout(folder)}."
        )
    missing = [s for s in FOLDER_SPLITS if s not in found]
    if missing:
        seen = ", ".join(found) if found else "no sub-folders"
        raise ImageSourceError(
            f"image folder source {folder} needs a train/ and a test/ split (missing {' and '.join(s + '/' for s in missing)}): "
            f"expected {_folder_layout(folder)} with the same class sub-folders in both (victims train on train/, "
            f"originals come from test/); found {seen}."
        )
    classes = {s: _class_dirs(folder / s) for s in FOLDER_SPLITS}
    if not classes["train"] or not classes["test"]:
        empty = " and ".join(f"{s}/" for s in FOLDER_SPLITS if not classes[s])
        raise ImageSourceError(
            f"image folder source {folder}: {empty} has no class sub-folders; expected "
            f"{_folder_layout(folder)}."
        )
    if classes["train"] != classes["test"]:
        only_train = sorted(set(classes["train"]) - set(classes["test"]))
        only_test = sorted(set(classes["test"]) - set(classes["train"]))
        raise ImageSourceError(
            f"image folder source {folder}: train/ and test/ must have the same class sub-folders; only in train/: "
            f"{', '.join(only_train) or 'none'}; only in test/: {', '.join(only_test) or 'none'}."
        )
    return classes["train"]


def load_image_folder(folder: str | Path, split: str = "test") -> ImageSource:
    """One split of a class-folder source laid out as ``folder/<split>/<class name>/*.png``.

    The folder must hold both ``train/`` and ``test/``, each with the same class sub-folders (classes sorted by
    name, so labels agree between the splits). Any suffix of ``IMAGE_SUFFIXES`` is read. Ids are
    ``<folder name>-<split>-<class>-<file stem>``: stable and distinct between the splits.

    Args:
        folder: the source folder (holding ``train/`` and ``test/``).
        split: which split to read (``"train"`` or ``"test"``).

    Returns:
        The images of ``folder/<split>`` as uint8 ``(N, C, H, W)`` with their labels, class names and ids.

    Raises:
        ImageSourceError: (a ``ValueError``) when ``train/`` or ``test/`` is missing, their class sub-folders
            differ, ``split`` is not one of them, the split holds no images, or its images differ in size.
    """
    folder = Path(folder)
    classes = _folder_classes(folder)
    if split not in FOLDER_SPLITS:
        raise ImageSourceError(f"image folder source {folder} has the splits train and test, not {split!r}.")
    root = folder / split
    images, labels, ids = [], [], []
    for label, cls in enumerate(classes):
        for path in sorted((root / cls).iterdir()):
            if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(load_image(path))
                labels.append(label)
                ids.append(f"{folder.name}-{split}-{cls}-{path.stem}")
    if not images:
        raise ImageSourceError(f"no images found under {root}; expected {_folder_layout(folder)}.")
    try:
        stacked = _stack(images)
    except ValueError as err:
        raise ImageSourceError(f"{root}: {err}") from err
    return ImageSource(folder.name, split, stacked, torch.tensor(labels), classes, ids)


def _stack(images: list[Tensor]) -> Tensor:
    shapes = {tuple(i.shape[1:]) for i in images}
    if len(shapes) != 1:
        raise InvalidInputError(f"images of one source must share a size, found {sorted(shapes)}.")
    return stack_images(images)


def load_source(spec: str, split: str, **kwargs: Any) -> ImageSource:
    """``"fashion-mnist"`` (local IDX), ``"emoji-scenes"`` (see ``emoji_scenes_folder``), ``"hf:<dataset id>"``
    or a folder path."""
    if spec in ("fashion-mnist", "fashion_mnist"):
        return load_fashion_mnist(split, kwargs.get("root"))
    if spec in ("emoji-scenes", "emoji_scenes"):
        return load_hf_dataset(str(emoji_scenes_folder()), split)
    if spec.startswith("hf:"):
        return load_hf_dataset(spec[3:], split, **{k: v for k, v in kwargs.items() if k != "root"})
    return load_image_folder(spec, split)


#: environment variable naming the emoji-scenes dataset folder (default: ``../shared/data/emoji_scenes``)
EMOJI_SCENES_ENV = "SEMSIM_EMOJI_SCENES"


def emoji_scenes_folder() -> Path:
    """The local ``emoji_scenes`` dataset folder (32x32 colour, 40 classes, ``train``/``test``).

    Looked up in ``$SEMSIM_EMOJI_SCENES``, then ``../shared/data/emoji_scenes`` from the working directory
    and from the repository checkout.

    Raises:
        FileNotFoundError: none of those folders exists (the message names them and the variable to set).
    """
    import os

    candidates = [Path(os.environ[EMOJI_SCENES_ENV])] if os.environ.get(EMOJI_SCENES_ENV) else []
    candidates += [
        Path.cwd().parent / "shared" / "data" / "emoji_scenes",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "emoji_scenes",
    ]
    for folder in candidates:
        if (folder / "README.md").is_file() and (folder / "data").is_dir():
            return folder.resolve()
    raise MissingFileError(
        f"the emoji_scenes dataset folder was not found (looked in {[str(c) for c in candidates]}); "
        f"set {EMOJI_SCENES_ENV}=/path/to/emoji_scenes."
    )


def parse_source_list(text: str) -> tuple[str, ...]:
    """The names of a ``+``-joined list of image sources or anchor domains, in order (the one parser of that
    form: ``load_sources``, ``AnchorPool.from_domains`` and the training settings' ``sources`` /
    ``anchor_domains`` strings). Spaces around a name are dropped.

    Examples:
        >>> parse_source_list("fashion-mnist+emoji-scenes")
        ('fashion-mnist', 'emoji-scenes')
        >>> parse_source_list("fashion-mnist++emoji-scenes")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputError: image sources 'fashion-mnist++emoji-scenes': an empty name; ...

    Raises:
        InvalidInputError: (a ``ValueError``) no name, or an empty one (``""``, ``"a+"``, ``"a++b"``).
    """
    names = tuple(part.strip() for part in text.split("+"))
    if not all(names):
        raise InvalidInputError(
            f"image sources {text!r}: an empty name; write names joined by '+', e.g. 'fashion-mnist' or "
            "'fashion-mnist+emoji-scenes'."
        )
    return names


def load_sources(spec: str | Sequence[str], split: str, **kwargs: Any) -> list[ImageSource]:
    """Several sources, each loaded by ``load_source``: a sequence of specs, or their names joined by ``+``
    (``"fashion-mnist+emoji-scenes"``, read by ``parse_source_list``).

    Examples:
        >>> [s.name for s in load_sources("fashion-mnist", "test")]  # doctest: +SKIP
        ['fashion_mnist']

    Raises:
        InvalidInputError: (a ``ValueError``) no source, or an empty name.
    """
    specs = parse_source_list(spec) if isinstance(spec, str) else tuple(spec)
    if not specs or not all(specs):
        raise InvalidInputError(
            f"image sources {spec!r}: give one or more names, e.g. ('fashion-mnist', 'emoji-scenes')."
        )
    return [load_source(part, split, **kwargs) for part in specs]
