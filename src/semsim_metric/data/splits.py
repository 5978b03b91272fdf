"""Splits by original image (no original in two splits), deterministic by seed.

Optional held-out splits measure generalisation: rows of the named victims (``test_victim``) or attacks
(``test_attack``) are taken out of train/validation/test. To keep "no original in two splits", a held-out
split keeps only rows whose original belongs to the *test* originals; held-out rows of train or
validation originals are dropped, and the number dropped is returned in the notes (never silent).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from ..errors import InvalidInputError

__all__ = ["split_by_original"]


def split_by_original(
    rows: Sequence[dict[str, Any]],
    *,
    fractions: dict[str, float] | None = None,
    seed: int = 0,
    holdout_victims: Sequence[str] = (),
    holdout_attacks: Sequence[str] = (),
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Assign rows to splits by ``original_id``.

    Args:
        rows: schema rows.
        fractions: share of originals per split (default train 0.8, validation 0.1, test 0.1).
        seed: shuffling seed; the same rows and seed give the same splits.
        holdout_victims: victims whose rows form the ``test_victim`` split.
        holdout_attacks: attacks whose rows form the ``test_attack`` split.

    Returns:
        ``(splits, notes)``.

    Examples:
        >>> rows = [{"original_id": str(i % 10), "victim": "a", "attack": "ig"} for i in range(30)]
        >>> splits, _ = split_by_original(rows, seed=1)
        >>> {k: len(v) for k, v in splits.items()}
        {'train': 24, 'validation': 3, 'test': 3}
    """
    fractions = fractions or {"train": 0.8, "validation": 0.1, "test": 0.1}
    if any(f < 0 for f in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise InvalidInputError(f"split fractions must be non-negative and sum to 1, got {fractions}.")
    unknown_v = set(holdout_victims) - {r["victim"] for r in rows}
    unknown_a = set(holdout_attacks) - {r["attack"] for r in rows}
    if unknown_v or unknown_a:
        raise InvalidInputError(f"held-out victims/attacks not in the data: {sorted(unknown_v | unknown_a)}.")
    originals = sorted({r["original_id"] for r in rows})
    random.Random(seed).shuffle(originals)
    names = list(fractions)
    assignment: dict[str, str] = {}
    start = 0
    for i, name in enumerate(names):
        count = len(originals) - start if i == len(names) - 1 else round(fractions[name] * len(originals))
        for oid in originals[start : start + count]:
            assignment[oid] = name
        start += count
    splits: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    held_v, held_a = set(holdout_victims), set(holdout_attacks)
    if held_v:
        splits["test_victim"] = []
    if held_a:
        splits["test_attack"] = []
    dropped = 0
    for r in rows:
        split = assignment[r["original_id"]]
        target = None
        if r["victim"] in held_v:
            target = "test_victim"
        elif r["attack"] in held_a:
            target = "test_attack"
        if target is None:
            splits[split].append(r)
        elif split == "test":
            splits[target].append(r)
        else:
            dropped += 1
    notes = []
    if held_v or held_a:
        notes.append(
            f"held-out victims {sorted(held_v)} / attacks {sorted(held_a)}: {dropped} rows of train/validation "
            "originals dropped so that no original is in two splits"
        )
    return splits, notes
