"""The one dataset schema for official, converted, generated and annotated reconstructions.

One row per reconstruction. ``recognized`` is derived from the votes by a ``RecognitionRule``
that is recorded in the dataset card, so it can always be recomputed from the stored votes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .._deps import require
from ..errors import InvalidInputError

datasets = require("datasets", "SemSim datasets")

__all__ = [
    "ANNOTATOR_KINDS",
    "FEATURES",
    "UNRECOGNISABLE",
    "RecognitionRule",
    "empty_row",
    "majority_class",
]

#: Vote meaning "the annotator could not recognise anything".
UNRECOGNISABLE = -1
#: Who produced the votes: people, vision(-language) model judges shown only the reconstruction, or nobody yet.
ANNOTATOR_KINDS = ("human", "model-judge", "none")

FEATURES = datasets.Features(
    {
        "reconstruction_id": datasets.Value("string"),
        "original": datasets.Image(),
        "reconstruction": datasets.Image(),
        "original_id": datasets.Value("string"),
        "class_label": datasets.Value("int64"),
        "class_name": datasets.Value("string"),
        "votes": datasets.List(datasets.Value("int64")),
        "original_votes": datasets.List(datasets.Value("int64")),
        "recognized": datasets.Value("bool"),
        "recognized_share": datasets.Value("float32"),
        "source_dataset": datasets.Value("string"),
        "victim": datasets.Value("string"),
        "victim_arch": datasets.Value("string"),
        "victim_train_mode": datasets.Value("string"),
        "victim_aug_policy": datasets.Value("string"),
        "victim_train_epochs": datasets.Value("int64"),
        "attack": datasets.Value("string"),
        "attack_iterations": datasets.Value("int64"),
        "defense": datasets.Value("string"),
        "annotator_kind": datasets.Value("string"),
        "seed": datasets.Value("int64"),
    }
)
"""``datasets.Features`` of every SemSim dataset. Unknown integers are -1, unknown strings ``""``;
``victim_train_epochs=-1`` means unknown, ``votes=[]`` means not annotated yet."""


def features_for(rows: Sequence[dict[str, Any]]) -> datasets.Features:
    """``FEATURES`` with ``class_label`` as a ``datasets.ClassLabel`` when the rows name every class
    (``class_name``) for the labels ``0..K-1`` they use; otherwise the plain integer column of the schema.

    A ``ClassLabel`` column still holds the same integers (``-1`` = unknown), so every reader of the schema
    works unchanged; the Hub viewer and ``ds.features["class_label"].int2str`` then show the names.

    Examples:
        >>> rows = [{"class_label": 0, "class_name": "T-shirt"}, {"class_label": 1, "class_name": "Trouser"}]
        >>> features_for(rows)["class_label"].names
        ['T-shirt', 'Trouser']
        >>> type(features_for([{"class_label": 3, "class_name": ""}])["class_label"]).__name__
        'Value'
    """
    names: dict[int, str] = {}
    for r in rows:
        label, name = int(r.get("class_label", -1)), str(r.get("class_name") or "")
        if label < 0:
            continue
        if not name or names.setdefault(label, name) != name:
            return FEATURES
    if not names or sorted(names) != list(range(max(names) + 1)):
        return FEATURES
    features = FEATURES.copy()
    features["class_label"] = datasets.ClassLabel(names=[names[i] for i in range(len(names))])
    return features


def empty_row() -> dict[str, Any]:
    """A row with every column at its 'unknown' value."""
    return {
        "reconstruction_id": "",
        "original": None,
        "reconstruction": None,
        "original_id": "",
        "class_label": -1,
        "class_name": "",
        "votes": [],
        "original_votes": [],
        "recognized": False,
        "recognized_share": float("nan"),
        "source_dataset": "",
        "victim": "",
        "victim_arch": "",
        "victim_train_mode": "",
        "victim_aug_policy": "",
        "victim_train_epochs": -1,
        "attack": "",
        "attack_iterations": -1,
        "defense": "",
        "annotator_kind": "none",
        "seed": -1,
    }


def majority_class(votes: Sequence[int]) -> int:
    """Most frequent non-negative vote (ties -> smallest class), or -1 when nobody named a class."""
    named = [v for v in votes if v >= 0]
    if not named:
        return UNRECOGNISABLE
    counts = Counter(named)
    best = max(counts.values())
    return min(c for c, n in counts.items() if n == best)


@dataclass(frozen=True)
class RecognitionRule:
    """When is a reconstruction *recognised*? At least ``min_votes`` votes equal a reference class.

    Args:
        min_votes: votes needed (3 of 5 in the study).
        reference: ``"true_class"`` (the dataset's label, the study's rule) or ``"original_consensus"``
            (the annotators' majority reading of the original, where ``original_votes`` exist; rows without
            them fall back to the true class). The second removes confusions between look-alike classes
            (a perfectly visible "pullover" that people call "coat").

    Examples:
        >>> rule = RecognitionRule()
        >>> rule.recognized([3, 3, 3, -1, 2], class_label=3)
        True
        >>> rule.share([3, 3, 3, -1, 2], class_label=3)
        0.6
    """

    min_votes: int = 3
    reference: Literal["true_class", "original_consensus"] = "true_class"

    def __post_init__(self) -> None:
        if self.min_votes < 1:
            raise InvalidInputError(f"min_votes must be at least 1, got {self.min_votes}.")
        if self.reference not in ("true_class", "original_consensus"):
            raise InvalidInputError(
                f"reference must be 'true_class' or 'original_consensus', got {self.reference!r}."
            )

    def reference_class(self, class_label: int, original_votes: Sequence[int] = ()) -> int:
        if self.reference == "original_consensus" and original_votes:
            return majority_class(original_votes)
        return class_label

    def count(self, votes: Sequence[int], class_label: int, original_votes: Sequence[int] = ()) -> int:
        ref = self.reference_class(class_label, original_votes)
        if ref < 0:
            return 0
        return sum(1 for v in votes if v == ref)

    def recognized(self, votes: Sequence[int], class_label: int, original_votes: Sequence[int] = ()) -> bool:
        return self.count(votes, class_label, original_votes) >= self.min_votes

    def share(self, votes: Sequence[int], class_label: int, original_votes: Sequence[int] = ()) -> float:
        if not votes:
            return float("nan")
        return self.count(votes, class_label, original_votes) / len(votes)

    def describe(self) -> str:
        ref = (
            "the true class"
            if self.reference == "true_class"
            else "the annotators' majority reading of the original (true class where none)"
        )
        return f"recognized = at least {self.min_votes} votes equal {ref}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
