"""Triplets for training SemSim, derived from dataset rows (never stored).

anchor = an original; positive = a *recognised* reconstruction of that original; negative = an
*unrecognised* reconstruction of the same original. One triplet per recognised reconstruction per epoch;
the negative is drawn afresh each epoch, deterministically from ``(seed, epoch, index)``.

Fallback when an original has no unrecognised reconstruction (``negative_fallback``):

* ``"other_original"`` (default): the negative is an unrecognised reconstruction of another original,
  like the "others" pool of the reference code;
* ``"skip"``: that original's positives form no triplets.

Originals without any recognised reconstruction form no triplets (their rows still serve as negatives
for others under ``"other_original"``). :attr:`TripletDataset.stats` counts all of this.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from ..preprocessing import to_model_input
from .loading import check_schema

__all__ = ["TripletCollator", "TripletDataset", "decode_image", "random_crop_flip", "stack_images"]


def decode_image(value: Any) -> Tensor:
    """Decode a ``datasets.Image`` value (PIL image or ``{"bytes", "path"}``) into uint8 ``(C, H, W)``."""
    from PIL import Image

    if isinstance(value, dict):
        img = Image.open(io.BytesIO(value["bytes"])) if value.get("bytes") else Image.open(value["path"])
    else:
        img = value
    mode = "L" if img.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
    arr = np.array(img.convert(mode))
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def stack_images(images: list[Tensor]) -> Tensor:
    """Stack same-sized ``(C, H, W)`` images, repeating greyscale ones to the widest channel count."""
    channels = max(i.shape[0] for i in images)
    return torch.stack([i.expand(channels, -1, -1) for i in images])


class TripletDataset(torch.utils.data.Dataset):
    """Map-style dataset of triplets over a SemSim ``datasets.Dataset`` split.

    Args:
        ds: a split in the SemSim schema (needs ``original``, ``reconstruction``, ``original_id``,
            ``recognized``; ``recognized_share`` is used when present).
        seed: sampling seed.
        negative_fallback: ``"other_original"`` or ``"skip"`` (see the module docstring).

    Raises:
        ValueError: wrong schema, or no triplet can be formed (no recognised or no unrecognised rows).
    """

    def __init__(self, ds: Any, *, seed: int = 0,
                 negative_fallback: Literal["other_original", "skip"] = "other_original") -> None:
        check_schema(ds)
        if negative_fallback not in ("other_original", "skip"):
            raise ValueError(f"negative_fallback must be 'other_original' or 'skip', got {negative_fallback!r}.")
        if len(ds) == 0:
            raise ValueError("the dataset split is empty; triplets need rows.")
        self.seed = int(seed)
        self.epoch = 0
        recognized = [bool(v) for v in ds["recognized"]]
        if not any(recognized):
            raise ValueError("no recognised reconstructions: triplets need positives (recognized=True rows).")
        if all(recognized):
            raise ValueError("no unrecognised reconstructions: triplets need negatives (recognized=False rows).")
        shares = ds["recognized_share"] if "recognized_share" in ds.column_names else None
        original_ids = list(ds["original_id"])
        self.images: list[Tensor] = []
        self.original_index: dict[str, int] = {}
        self.share: list[float] = []
        rows = ds.select_columns(["original", "reconstruction"])
        rec_idx: list[int] = []
        for i, row in enumerate(rows):
            oid = original_ids[i]
            if oid not in self.original_index:
                self.original_index[oid] = len(self.images)
                self.images.append(decode_image(row["original"]))
            rec_idx.append(len(self.images))
            self.images.append(decode_image(row["reconstruction"]))
            s = shares[i] if shares is not None else None
            self.share.append(float(s) if s is not None and s == s else float(recognized[i]))
        by_original: dict[str, tuple[list[int], list[int]]] = {}
        for i, oid in enumerate(original_ids):
            pos, neg = by_original.setdefault(oid, ([], []))
            (pos if recognized[i] else neg).append(i)
        self.rec_image = rec_idx
        self.negative_pool = [i for i, r in enumerate(recognized) if not r]
        self.triplets: list[tuple[str, int, list[int]]] = []
        stats = {"originals": len(by_original), "originals_without_positive": 0,
                 "originals_without_negative": 0, "triplets_with_fallback_negative": 0, "skipped_positives": 0}
        for oid, (pos, neg) in by_original.items():
            if not pos:
                stats["originals_without_positive"] += 1
                continue
            if not neg:
                stats["originals_without_negative"] += 1
                if negative_fallback == "skip":
                    stats["skipped_positives"] += len(pos)
                    continue
                stats["triplets_with_fallback_negative"] += len(pos)
            self.triplets += [(oid, p, neg) for p in pos]
        if not self.triplets:
            raise ValueError("no triplet can be formed: no original has both recognised and unrecognised "
                             "reconstructions (use negative_fallback='other_original').")
        self.stats = stats

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's negatives (called by the training loop at each epoch start)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.triplets)

    def draw(self, index: int) -> tuple[str, int, int]:
        """``(original_id, positive_row, negative_row)`` of triplet ``index`` in the current epoch."""
        oid, pos, negs = self.triplets[index]
        rng = random.Random(f"{self.seed}-{self.epoch}-{index}")
        candidates = negs or self.negative_pool
        return oid, pos, candidates[rng.randrange(len(candidates))]

    def __getitem__(self, index: int) -> dict[str, Any]:
        oid, pos, neg = self.draw(index)
        return {
            "anchor": self.images[self.original_index[oid]],
            "positive": self.images[self.rec_image[pos]],
            "negative": self.images[self.rec_image[neg]],
            "positive_share": self.share[pos],
            "negative_share": self.share[neg],
        }


def random_crop_flip(padding: int = 4, generator: torch.Generator | None = None) -> Callable[[Tensor], Tensor]:
    """RandomCrop(size, padding) + horizontal flip per image, as in the paper (zero padding)."""

    def apply(x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        padded = torch.nn.functional.pad(x, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator).tolist()
        flip = torch.rand(n, generator=generator).lt(0.5).tolist()
        out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
        if any(flip):
            idx = torch.tensor([i for i, f in enumerate(flip) if f])
            out[idx] = out[idx].flip(-1)
        return out

    return apply


class TripletCollator:
    """Collate triplets into model-ready tensors for ``transformers.Trainer``.

    Images go through the package's single input gate (:func:`~semsim_metric.preprocessing.to_model_input`)
    with the model config's size, mean and std; ``augment=True`` adds RandomCrop(pad 4) + flip.
    Greyscale and RGB images may be mixed; all are converted to 3 channels.
    """

    def __init__(self, config: Any, *, augment: bool = True, padding: int = 4) -> None:
        self.config = config
        self.augment = random_crop_flip(padding) if augment else None

    def _prep(self, images: list[Tensor]) -> Tensor:
        cfg = self.config
        batch = [to_model_input(img.unsqueeze(0), data_range=255, image_size=cfg.image_size,
                                mean=cfg.image_mean, std=cfg.image_std) for img in images] if len(
            {tuple(i.shape) for i in images}) > 1 else None
        if batch is not None:  # mixed sizes/channels: convert one by one, then augment together
            x = torch.cat(batch)
            if self.augment is not None:
                m = torch.tensor(cfg.image_mean).view(1, 3, 1, 1)
                s = torch.tensor(cfg.image_std).view(1, 3, 1, 1)
                x = (self.augment(x * s + m) - m) / s
            return x
        return to_model_input(torch.stack(images), data_range=255, image_size=cfg.image_size,
                              mean=cfg.image_mean, std=cfg.image_std, augment=self.augment)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        return {
            "anchor": self._prep([f["anchor"] for f in features]),
            "positive": self._prep([f["positive"] for f in features]),
            "negative": self._prep([f["negative"] for f in features]),
            "positive_share": torch.tensor([f["positive_share"] for f in features], dtype=torch.float32),
            "negative_share": torch.tensor([f["negative_share"] for f in features], dtype=torch.float32),
        }
