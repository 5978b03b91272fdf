"""A campaign's state in numbers: items complete, answers per annotator, live agreement."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from .agreement import agreement_with_majority, fleiss_kappa
from .storage import Campaign

__all__ = ["campaign_status"]


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def campaign_status(campaign: Campaign) -> dict[str, Any]:
    """Counts and agreement of ``campaign`` (JSON-serialisable; undefined statistics are ``None``).

    ``fleiss_kappa`` is computed over the *complete* items (those with ``votes_per_item`` answers);
    each annotator's ``agreement`` is with the majority of the other annotators of the same items (see
    ``agreement_with_majority``).
    """
    items = campaign.items()
    answers = campaign.answers()
    by_item: dict[int, list[int]] = defaultdict(list)
    for a in answers:
        by_item[a["item_id"]].append(a["answer"])
    kinds: dict[str, dict[str, int]] = {}
    for item_id, kind, _ in items:
        k = kinds.setdefault(kind, {"items": 0, "complete": 0, "answers": 0})
        k["items"] += 1
        k["answers"] += len(by_item.get(item_id, []))
        k["complete"] += len(by_item.get(item_id, [])) >= campaign.votes_per_item
    complete = [v for v in by_item.values() if len(v) == campaign.votes_per_item]
    agreement = agreement_with_majority((a["annotator"], a["item_id"], a["answer"]) for a in answers)
    per_annotator: dict[str, int] = defaultdict(int)
    for a in answers:
        per_annotator[a["annotator"]] += 1
    return {
        "answers": len(answers),
        "votes_per_item": campaign.votes_per_item,
        "items": kinds,
        "kappa_items": len(complete),
        "fleiss_kappa": _finite(fleiss_kappa(complete)),
        "annotators": [
            {
                "name": name,
                "answers": per_annotator.get(name, 0),
                "agreement_items": agreement.get(name, {"items": 0})["items"],
                "agreement": _finite(agreement.get(name, {"agreement": math.nan})["agreement"]),
            }
            for name in campaign.annotators()
        ],
        "retracted": len(campaign.retracted()),
    }
