"""How much annotators agree: Fleiss' kappa over items and each annotator's agreement with the others.

Answers are categories (a class index or -1 for "cannot recognise"); the statistics treat every answer
value as its own category.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from ..errors import InvalidInputError

__all__ = ["agreement_with_majority", "fleiss_kappa"]


def fleiss_kappa(ratings: Iterable[Sequence[int]]) -> float:
    """Fleiss' kappa of items that each have the same number ``n >= 2`` of answers.

    Returns ``nan`` when there are no such items or every answer is the same category (kappa is undefined:
    the expected agreement is 1).

    Raises:
        ValueError: items with different numbers of answers (Fleiss' kappa needs one ``n``).

    Examples:
        >>> fleiss_kappa([[0, 0, 0], [1, 1, 1], [-1, -1, -1]])
        1.0
        >>> round(fleiss_kappa([[0, 0, 1], [1, 1, 0], [0, 1, -1]]), 3)
        -0.312
    """
    items = [list(r) for r in ratings]
    if not items:
        return float("nan")
    sizes = {len(r) for r in items}
    if len(sizes) != 1:
        raise InvalidInputError(
            f"Fleiss' kappa needs the same number of answers per item, got sizes {sorted(sizes)}."
        )
    n = sizes.pop()
    if n < 2:
        return float("nan")
    totals: Counter[int] = Counter()
    observed = 0.0
    for r in items:
        counts = Counter(r)
        totals.update(counts)
        observed += (sum(c * c for c in counts.values()) - n) / (n * (n - 1))
    observed /= len(items)
    all_answers = n * len(items)
    expected = sum((c / all_answers) ** 2 for c in totals.values())
    if expected >= 1.0:
        return float("nan")
    return (observed - expected) / (1.0 - expected)


def agreement_with_majority(answers: Iterable[tuple[str, object, int]]) -> dict[str, dict[str, float]]:
    """Each annotator's agreement with the majority answer of the *other* annotators of the same items.

    ``answers`` are ``(annotator, item, answer)``. An item counts for an annotator when at least one other
    annotator answered it and the others' most common answer is unique (no tie); with one other annotator
    this is plain pairwise agreement. Returns, per annotator,
    ``{"items": k, "agreement": share}`` (``share`` is ``nan`` when ``k`` is 0).

    Examples:
        >>> a = [("ann", 1, 3), ("bob", 1, 3), ("cy", 1, 3), ("ann", 2, 1), ("bob", 2, 2), ("cy", 2, 2)]
        >>> agreement_with_majority(a)["ann"]
        {'items': 2, 'agreement': 0.5}
    """
    by_item: Mapping[object, list[tuple[str, int]]] = defaultdict(list)
    for annotator, item, answer in answers:
        by_item[item].append((annotator, answer))  # type: ignore[index]
    hits: dict[str, list[bool]] = defaultdict(list)
    for given in by_item.values():
        for annotator, answer in given:
            others = Counter(a for who, a in given if who != annotator)
            if not others:
                continue
            (top, top_n), *rest = others.most_common() + [(None, 0)]
            if rest and rest[0][1] == top_n:
                continue
            hits[annotator].append(answer == top)
    names = sorted({a for given in by_item.values() for a, _ in given})
    return {
        a: {"items": len(hits[a]), "agreement": (sum(hits[a]) / len(hits[a])) if hits[a] else float("nan")}
        for a in names
    }
