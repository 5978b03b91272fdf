"""Names and votes as the official release and manifests write them: victim folder names, original file
names and vote lists. Messages give positions and patterns, never the text they were given."""

from __future__ import annotations

import re
from typing import Any

from ...errors import InvalidInputError

__all__ = ["ORIGINAL_NAME", "parse_victim_name", "parse_votes"]

_VICTIM = re.compile(
    r"^(?P<arch>.+?)_(?P<epochs>\d+)_inversed_(?P<mode>[a-z]+)_auglist_(?P<policy>[0-9+\-]*)_rlabel_(?P<rlabel>True|False)"
    r"(?:_defense_(?P<defense>.+))?$"
)

#: the stem of an original in the official layouts: ``<idx>_<class>_ori``
ORIGINAL_NAME = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_ori$")


def parse_victim_name(name: str) -> dict[str, Any]:
    """Parse a victim folder name of the official release into structured columns.

    Raises:
        ValueError: ``name`` does not follow the official pattern (the message names the pattern).

    Examples:
        >>> parse_victim_name("ResNet20-4_200_inversed_crop_auglist__rlabel_False_defense_prune_70")
        {'victim_arch': 'ResNet20-4', 'victim_train_epochs': 200, 'victim_train_mode': 'crop', \
'victim_aug_policy': 'none', 'defense': 'prune_70'}
    """
    m = _VICTIM.match(name)
    if not m:
        raise InvalidInputError(
            f"victim folder name {name!r} does not follow the official pattern "
            "'<arch>_<epochs>_inversed_<mode>_auglist_<policy>_rlabel_<bool>[_defense_<name>]'."
        )
    return {
        "victim_arch": m["arch"],
        "victim_train_epochs": int(m["epochs"]),
        "victim_train_mode": m["mode"],
        "victim_aug_policy": m["policy"] or "none",
        "defense": m["defense"] or "none",
    }


def parse_votes(text: str, expected: int | None = None) -> list[int]:
    """Parse votes written as ``"3;3;-1"``, ``"3,3,-1"``, ``"[3, 3, -1]"`` or whitespace-separated.

    Raises:
        ValueError: a vote is not an integer, is below -1, or the count differs from ``expected``.

    Examples:
        >>> parse_votes("[3, 3, -1]")
        [3, 3, -1]
        >>> parse_votes("3;x;-1")
        Traceback (most recent call last):
        semsim_metric.errors.InvalidInputError: vote 2 of 3 is not an integer (votes are class ids, -1 = not recognisable)
    """
    body = text.strip().strip("[]")
    parts = [p for p in re.split(r"[;,\s]+", body) if p]
    votes = []
    for i, p in enumerate(parts, start=1):  # messages give the position, never the text (it may be anything)
        try:
            v = int(p)
        except ValueError:
            raise InvalidInputError(
                f"vote {i} of {len(parts)} is not an integer (votes are class ids, -1 = not recognisable)"
            ) from None
        if v < -1:
            raise InvalidInputError(f"vote {i} of {len(parts)} is below -1 (-1 means 'not recognisable')")
        votes.append(v)
    if expected is not None and len(votes) != expected:
        raise InvalidInputError(f"expected {expected} votes, found {len(votes)}")
    return votes
