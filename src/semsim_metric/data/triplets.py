"""Triplets for training SemSim, derived from dataset rows (never stored).

anchor = an original; positive = a *recognised* reconstruction of that original; negative = an
*unrecognised* reconstruction of the same original. One triplet per recognised reconstruction per epoch;
the negative is drawn afresh each epoch, deterministically from ``(seed, epoch, index)``.

Fallback when an original has no unrecognised reconstruction (``negative_fallback``):

* ``"other_original"`` (default): the negative is an unrecognised reconstruction of another original,
  like the "others" pool of the reference code;
* ``"skip"``: that original's positives form no triplets.

Originals without any recognised reconstruction form no triplets (their rows still serve as negatives
for others under ``"other_original"``). ``TripletDataset.stats`` counts all of this.
"""

from __future__ import annotations

import random
from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..image_io import decode_image
from .augmentation import item_seeds
from .loading import check_schema

__all__ = ["TripletDataset"]


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

    def __init__(
        self,
        ds: Any,
        *,
        seed: int = 0,
        negative_fallback: Literal["other_original", "skip"] = "other_original",
    ) -> None:
        check_schema(ds)
        if negative_fallback not in ("other_original", "skip"):
            raise InvalidInputError(
                f"negative_fallback must be 'other_original' or 'skip', got {negative_fallback!r}."
            )
        if len(ds) == 0:
            raise InvalidInputError("the dataset split is empty; triplets need rows.")
        self.seed = int(seed)
        self.epoch = 0
        recognized = [bool(v) for v in ds["recognized"]]
        _require_both_labels(recognized)
        original_ids = list(ds["original_id"])
        self.rec_image = self._decode_images(ds, original_ids, recognized)
        by_original = _rows_by_original(original_ids, recognized)
        self.negative_pool = [i for i, r in enumerate(recognized) if not r]
        self.triplets, stats = _form_triplets(by_original, negative_fallback)
        if not self.triplets:
            raise InvalidInputError(
                "no triplet can be formed: no original has both recognised and unrecognised "
                "reconstructions (use negative_fallback='other_original')."
            )
        self.stats = stats

    def _decode_images(self, ds: Any, original_ids: list[str], recognized: list[bool]) -> list[int]:
        """Decode each original once and every reconstruction into ``images``, fill ``original_index`` and
        ``share``; returns each row's index into ``images``."""
        shares = ds["recognized_share"] if "recognized_share" in ds.column_names else None
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
        return rec_idx

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
            "seeds": tuple(item_seeds(self.seed, self.epoch, [3 * index, 3 * index + 1, 3 * index + 2])),
        }


def _require_both_labels(recognized: list[bool]) -> None:
    """Refuse a split without recognised (positive) or without unrecognised (negative) rows."""
    if not any(recognized):
        raise InvalidInputError(
            "no recognised reconstructions: triplets need positives (recognized=True rows)."
        )
    if all(recognized):
        raise InvalidInputError(
            "no unrecognised reconstructions: triplets need negatives (recognized=False rows)."
        )


def _rows_by_original(
    original_ids: list[str], recognized: list[bool]
) -> dict[str, tuple[list[int], list[int]]]:
    """Per original id (in first-seen order), its recognised and its unrecognised rows."""
    by_original: dict[str, tuple[list[int], list[int]]] = {}
    for i, oid in enumerate(original_ids):
        pos, neg = by_original.setdefault(oid, ([], []))
        (pos if recognized[i] else neg).append(i)
    return by_original


def _form_triplets(
    by_original: dict[str, tuple[list[int], list[int]]], negative_fallback: str
) -> tuple[list[tuple[str, int, list[int]]], dict[str, int]]:
    """The triplets ``(original_id, positive_row, negative_rows)`` and the counts of what was missing or skipped."""
    triplets: list[tuple[str, int, list[int]]] = []
    stats = {
        "originals": len(by_original),
        "originals_without_positive": 0,
        "originals_without_negative": 0,
        "triplets_with_fallback_negative": 0,
        "skipped_positives": 0,
    }
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
        triplets += [(oid, p, neg) for p in pos]
    return triplets, stats
