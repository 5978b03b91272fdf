"""From a dataset in the SemSim schema to a campaign, and from a campaign's answers back to a dataset."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from .status import campaign_status
from .storage import AnnotationError, Campaign, create_campaign

__all__ = ["ExportResult", "class_names_of", "export_campaign", "open_or_create_campaign"]


def _fingerprint(reconstruction_ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(sorted(reconstruction_ids)).encode()).hexdigest()


def class_names_of(dsd: Any) -> list[str]:
    """The answers annotators choose from: the dataset's ``ClassLabel`` names, else the names its rows give to
    ``0..K-1``, else the known class list of its source (Fashion-MNIST)."""
    from ..data.sources import FASHION_MNIST_CLASSES

    first = next(iter(dsd.values()))
    feature = first.features["class_label"]
    if hasattr(feature, "names"):
        return list(feature.names)
    names: dict[int, str] = {}
    sources: set[str] = set()
    for split in dsd.values():
        for label, name, source in zip(split["class_label"], split["class_name"], split["source_dataset"]):
            sources.add(source)
            if label >= 0 and name:
                names.setdefault(int(label), name)
    if sources <= {"fashion-mnist", "fashion_mnist"} and set(names.values()) <= set(FASHION_MNIST_CLASSES):
        return list(FASHION_MNIST_CLASSES)
    if names and sorted(names) == list(range(max(names) + 1)):
        return [names[i] for i in range(len(names))]
    raise AnnotationError(
        f"cannot tell the class list of this dataset (its rows name classes {sorted(names)}); "
        "pass it with --classes 'name0,name1,...' in class-label order."
    )


def _png(cell: dict[str, Any]) -> bytes:
    from PIL import Image

    from ..image_io import decode_image

    t = decode_image(cell)  # the project's decoding rules (16-bit, palette, alpha, EXIF)
    arr = t.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def open_or_create_campaign(
    dataset: str,
    path: str | Path,
    *,
    votes_per_item: int = 5,
    include_originals: bool = False,
    class_names: Sequence[str] | None = None,
    token: str | None = None,
    annotators: Sequence[str] | None = None,
    update_access: bool = False,
) -> tuple[Campaign, bool]:
    """Open the campaign at ``path``, or create it from ``dataset``; returns ``(campaign, created)``.

    An existing campaign must come from the same dataset (same reconstruction ids) and settings; it then
    resumes exactly where every annotator stopped, with the access settings it stores. A ``token`` or
    ``annotators`` list given on resume that differs from the stored one (a token for a campaign without one
    included) is refused, so a resumed campaign never silently runs with other protection than the caller
    asked for, unless ``update_access`` stores the new settings.

    Args:
        dataset: dataset folder or Hub id in the SemSim schema.
        path: the campaign file.
        votes_per_item: annotators per image (fixed when the campaign starts).
        include_originals: also annotate each original, after its reconstructions.
        class_names: the answers (default: from the dataset).
        token: the shared token a person needs to join (``None``: none when creating, the stored one on resume).
        annotators: the only names allowed to join (``None``: anyone when creating, the stored list on resume).
        update_access: on resume, store ``token``/``annotators`` where they differ instead of refusing.

    Raises:
        AnnotationError: another dataset, other fixed settings, or other access settings on resume without
            ``update_access``; a dataset whose class list cannot be told.
    """
    from ..data.loading import load_folder_or_hub, undecoded

    dsd = undecoded(load_folder_or_hub(dataset))
    ids = [rid for split in dsd.values() for rid in split["reconstruction_id"]]
    fingerprint = _fingerprint(ids)
    path = Path(path)
    if not path.exists():
        created = _create_from_dataset(
            dsd,
            dataset,
            path,
            ids,
            fingerprint,
            votes_per_item=votes_per_item,
            include_originals=include_originals,
            class_names=class_names,
            token=token,
            annotators=annotators,
        )
        if created is not None:
            return created, True
    campaign = Campaign(path)
    _check_fixed_settings(campaign, path, fingerprint, votes_per_item, class_names)
    _resume_access(campaign, path, token, annotators, update_access)
    _link_originals(campaign, dsd, path)
    return campaign, False


def _create_from_dataset(
    dsd: Any,
    dataset: str,
    path: Path,
    ids: list[str],
    fingerprint: str,
    *,
    votes_per_item: int,
    include_originals: bool,
    class_names: Sequence[str] | None,
    token: str | None,
    annotators: Sequence[str] | None,
) -> Campaign | None:
    """Create the campaign at ``path`` from ``dsd``; ``None`` when another process created it meanwhile."""
    names = list(class_names) if class_names else class_names_of(dsd)
    if len(set(ids)) != len(ids):
        raise AnnotationError(f"dataset {dataset!r} repeats reconstruction ids; each row needs its own id.")
    try:
        return create_campaign(
            path,
            dataset=str(dataset),
            fingerprint=fingerprint,
            class_names=names,
            items=_campaign_items(dsd, len(ids), path, include_originals),
            votes_per_item=votes_per_item,
            token=token,
            annotators=annotators or (),
        )
    except AnnotationError:
        if not path.exists():
            raise
        return None  # another process created it meanwhile: resume theirs, with the same checks


def _campaign_items(
    dsd: Any, n_reconstructions: int, path: Path, include_originals: bool
) -> Iterator[tuple[str, str, bytes, str]]:
    """The campaign's items ``(kind, key, png, original_id)``: each reconstruction, then its original if asked."""
    from .._progress import logger

    logger.info(
        "copying %d reconstructions%s into %s",
        n_reconstructions,
        " and their originals" if include_originals else "",
        path,
    )
    seen: set[str] = set()
    for split in dsd.values():
        for row in split:
            yield (
                "reconstruction",
                row["reconstruction_id"],
                _png(row["reconstruction"]),
                row["original_id"],
            )
            if include_originals and row["original_id"] not in seen:
                seen.add(row["original_id"])
                yield "original", row["original_id"], _png(row["original"]), ""


def _check_fixed_settings(
    campaign: Campaign,
    path: Path,
    fingerprint: str,
    votes_per_item: int,
    class_names: Sequence[str] | None,
) -> None:
    """Refuse to resume a campaign made from another dataset, or with other votes per item or classes."""
    if campaign.meta["fingerprint"] != fingerprint:
        raise AnnotationError(
            f"campaign {path} was made from another dataset ({campaign.meta['dataset']}); "
            "use another --campaign file for this one."
        )
    if votes_per_item != campaign.votes_per_item:
        raise AnnotationError(
            f"campaign {path} asks {campaign.votes_per_item} annotators per item, not "
            f"{votes_per_item}; a campaign's settings are fixed when it starts."
        )
    if class_names and list(class_names) != campaign.class_names:
        raise AnnotationError(f"campaign {path} has the classes {campaign.class_names}; they cannot change.")


def _resume_access(
    campaign: Campaign,
    path: Path,
    token: str | None,
    annotators: Sequence[str] | None,
    update_access: bool,
) -> None:
    """Refuse other access settings on resume (409), or store them when ``update_access``."""
    from .._progress import logger

    differences = campaign.access_differences(token=token, annotators=annotators)
    if differences and not update_access:
        raise AnnotationError(
            f"campaign {path} was started with other access settings: {'; '.join(differences)}. "
            "Nothing was changed. Resume without --token/--annotator to keep the stored settings, "
            "or add --update-access to store the new ones.",
            409,
        )
    if differences:
        campaign.set_access(token=token, annotators=annotators)
        logger.warning("campaign %s: stored new access settings (%s)", path, "; ".join(differences))


def _link_originals(campaign: Campaign, dsd: Any, path: Path) -> None:
    """Record each reconstruction's original in a campaign written before they were stored."""
    from .._progress import logger

    linked = campaign.link_originals(
        {r: o for split in dsd.values() for r, o in zip(split["reconstruction_id"], split["original_id"])}
    )
    if linked:
        logger.info(
            "campaign %s: recorded the original of %d reconstructions (upgraded campaign)", path, linked
        )


@dataclass
class ExportResult:
    """What ``export_campaign`` wrote."""

    out: Path
    answers: int
    reconstructions_annotated: int
    reconstructions_incomplete: int
    reconstructions_unanswered: int
    originals_annotated: int
    fleiss_kappa: float
    rule: Any = None
    agreement: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self) -> str:
        kappa = "undefined" if math.isnan(self.fleiss_kappa) else f"{self.fleiss_kappa:.3f}"
        return (
            f"{self.answers} answers: {self.reconstructions_annotated} reconstructions annotated, "
            f"{self.reconstructions_incomplete} with fewer answers than the target (left unannotated unless "
            f"--include-incomplete), {self.reconstructions_unanswered} without answers; "
            f"{self.originals_annotated} originals annotated; Fleiss' kappa {kappa}"
        )


def export_campaign(
    campaign: Campaign | str | Path,
    out: str | Path,
    *,
    dataset: str | None = None,
    rule: Any = None,
    include_incomplete: bool = False,
    overwrite: bool = False,
) -> ExportResult:
    """Write the campaign's answers into a dataset folder in the SemSim schema (``annotator_kind="human"``).

    Every row of the campaign's dataset is written. A reconstruction whose item has the campaign's target
    number of answers gets those answers as ``votes`` (``recognized`` by ``rule``, the study's 3 of 5 by
    default: a majority of the target, 3 of 5 as in the study); one with fewer stays ``annotator_kind="none"`` unless ``include_incomplete``. Answers to
    originals become ``original_votes`` of every row of that original. ``answers.csv`` (every answer) and
    ``retracted.csv`` (every undone answer) are written beside the data, and the card reports Fleiss' kappa
    and each annotator's agreement with the others' majority.

    Args:
        campaign: the campaign (or its file).
        out: the dataset folder to write.
        dataset: read the rows from here instead of the campaign's recorded dataset (same reconstruction ids).
        rule: a ``RecognitionRule`` (default: a majority of the campaign's target votes for the true class,
            ``votes_per_item // 2 + 1``: 3 of 5 as in the study).
        include_incomplete: also give rows with fewer answers than the target their votes.
        overwrite: replace files that were not written by ``semsim annotate export``.
    """
    from ..data.hub_folder import write_dataset_folder
    from ..data.loading import load_folder_or_hub, undecoded
    from ..data.votes import apply_votes
    from ..outputs import OutputFolder

    campaign = campaign if isinstance(campaign, Campaign) else Campaign(campaign)
    rule = _export_rule(campaign, rule)
    source = dataset or campaign.meta["dataset"]
    folder = OutputFolder(out, command="annotate export", overwrite=overwrite).claim()
    dsd = undecoded(load_folder_or_hub(source))
    ids = [rid for split in dsd.values() for rid in split["reconstruction_id"]]
    if _fingerprint(ids) != campaign.meta["fingerprint"]:
        raise AnnotationError(
            f"{source} does not hold the reconstructions this campaign was made from; pass the "
            "dataset it started with (--dataset)."
        )
    answers = campaign.answers()
    broken = _answers_after_the_original(campaign, answers, dsd)
    votes = _votes_by_item(answers, broken)
    target = campaign.votes_per_item
    original_votes = {
        key: v
        for (kind, key), v in votes.items()
        if kind == "original" and (include_incomplete or len(v) >= target)
    }
    updates, incomplete, unanswered = _reconstruction_updates(ids, votes, target, include_incomplete)
    splits = apply_votes(dsd, updates, rule, original_votes=original_votes)
    status = campaign_status(campaign)  # the same numbers as the status page
    result = ExportResult(
        out=folder.path,
        answers=len(answers),
        reconstructions_annotated=len(updates),
        reconstructions_incomplete=incomplete,
        reconstructions_unanswered=unanswered,
        originals_annotated=len(original_votes),
        fleiss_kappa=math.nan if status["fleiss_kappa"] is None else status["fleiss_kappa"],
        rule=rule,
        agreement=_agreement(status),
    )
    card = _export_card(campaign, source, result, status, answers, len(broken), _kept_votes(splits, updates))
    _write_answer_files(folder, campaign, answers, broken)
    write_dataset_folder(splits, folder, card)  # marks the folder complete last
    return result


def _export_rule(campaign: Campaign, rule: Any) -> Any:
    """``rule``, or a majority of the campaign's target; refused when it needs more votes than an image gets."""
    from ..data.schema import RecognitionRule

    rule = rule or RecognitionRule(min_votes=campaign.votes_per_item // 2 + 1)
    if rule.min_votes > campaign.votes_per_item:
        raise AnnotationError(
            f"the rule needs {rule.min_votes} votes for the reference class, but each image gets at "
            f"most {campaign.votes_per_item} votes in this campaign: nothing could be recognised. "
            f"Use --min-votes {campaign.votes_per_item // 2 + 1} (a majority)."
        )
    return rule


def _votes_by_item(answers: list[dict[str, Any]], broken: set[int]) -> dict[tuple[str, str], list[int]]:
    """The answers per ``(kind, key)``, without those given after the annotator had seen the original."""
    votes: dict[tuple[str, str], list[int]] = defaultdict(list)
    for a in answers:
        if a["answer_id"] not in broken:
            votes[(a["kind"], a["key"])].append(a["answer"])
    return votes


def _reconstruction_updates(
    ids: list[str], votes: dict[tuple[str, str], list[int]], target: int, include_incomplete: bool
) -> tuple[dict[str, dict[str, Any]], int, int]:
    """The rows that get human votes, and how many reconstructions are incomplete and unanswered."""
    updates: dict[str, dict[str, Any]] = {}
    incomplete = unanswered = 0
    for rid in ids:
        given = votes.get(("reconstruction", rid), [])
        if not given:
            unanswered += 1
            continue
        if len(given) < target:
            incomplete += 1
            if not include_incomplete:
                continue
        updates[rid] = {"votes": given, "annotator_kind": "human"}
    return updates, incomplete, unanswered


def _agreement(status: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each annotator's shared items and agreement with the others' majority (NaN when undefined)."""
    return {
        a["name"]: {
            "items": a["agreement_items"],
            "agreement": math.nan if a["agreement"] is None else a["agreement"],
        }
        for a in status["annotators"]
    }


def _kept_votes(splits: Any, updates: dict[str, dict[str, Any]]) -> Counter[str]:
    """Rows per ``annotator_kind`` that keep the votes they had before (not completed by this campaign)."""
    return Counter(
        r["annotator_kind"]
        for rows in splits.values()
        for r in rows
        if r["reconstruction_id"] not in updates and r["annotator_kind"] != "none"
    )


def _export_card(
    campaign: Campaign,
    source: str,
    result: ExportResult,
    status: dict[str, Any],
    answers: list[dict[str, Any]],
    n_broken: int,
    kept: Counter[str],
) -> Any:
    """The exported dataset's card: who annotated and how, the counts, Fleiss' kappa, each one's agreement."""
    from ..data.hub_folder import DatasetCard

    n_people = len({a["annotator"] for a in answers})
    table = ["| annotator | answers | items shared with others | agreement with it |", "|---|---|---|---|"]
    for a in status["annotators"]:
        share = "" if a["agreement"] is None else f"{a['agreement']:.1%}"
        table.append(f"| {a['name']} | {a['answers']} | {a['agreement_items']} | {share} |")
    kappa = result.fleiss_kappa
    kappa_text = "undefined (no complete items, or one answer only)" if math.isnan(kappa) else f"{kappa:.3f}"
    agreement_text = (
        f"Fleiss' kappa over complete items: {kappa_text}. Agreement of each annotator with the "
        "majority answer of the other annotators of the same items (items answered by at least one "
        "other annotator, without a tie among the others):"
    )
    return DatasetCard(
        title=f"{Path(str(source)).name}, annotated by people",
        summary=f"The reconstructions of `{source}` with votes from an annotation campaign of "
        f"{n_people} people.",
        annotators=f"{n_people} people (annotator_kind `human`)",
        rule=result.rule,
        notes=_export_notes(campaign, result, status["kappa_items"], kappa_text, n_people, n_broken, kept),
        extra_sections=["## Annotator agreement", "", agreement_text, "", *table, ""],
    )


def _export_notes(
    campaign: Campaign,
    result: ExportResult,
    complete_items: int,
    kappa_text: str,
    n_people: int,
    n_broken: int,
    kept: Counter[str],
) -> list[str]:
    """The card's notes: the protocol, the counts, Fleiss' kappa, the CSV files, broken order and kept votes."""
    target = campaign.votes_per_item
    notes = [
        (
            f"Annotated by {n_people} people with `semsim annotate` (campaign `{campaign.path.name}`): each saw one "
            "image at a time, never beside its original, in an order of their own, and named a class or answered "
            f"that they could not recognise anything. Target: {target} annotators per image."
        ),
        result.summary() + ".",
        f"Fleiss' kappa over the {complete_items} items with {target} answers: {kappa_text}.",
        (
            "`answers.csv` holds every answer (annotator, item, answer, UTC time, and `saw_original_first`); "
            "`retracted.csv` every answer that its annotator undid."
        ),
    ]
    if n_broken:
        notes.append(
            f"{n_broken} answers to reconstructions were given after their annotator had seen the "
            "original (the protocol's order was broken, e.g. by a campaign written before this rule was "
            "kept): they are flagged `saw_original_first=true` in `answers.csv` and left out of the votes."
        )
    if kept:
        notes.append(
            f"Rows this campaign did not complete keep the votes they had before: "
            f"{', '.join(f'{n} rows of annotator_kind `{k}`' for k, n in sorted(kept.items()))} "
            "(NOT the people of this campaign; filter on `annotator_kind` to use only theirs)."
        )
    return notes


def _write_answer_files(
    folder: Any, campaign: Campaign, answers: list[dict[str, Any]], broken: set[int]
) -> None:
    """Write ``answers.csv`` (every answer, flagged when given after the original) and ``retracted.csv``."""
    folder.write_text(
        "answers.csv",
        _csv(
            [
                "answer_id",
                "annotator",
                "kind",
                "key",
                "answer",
                "answer_name",
                "answered",
                "saw_original_first",
            ],
            [
                {
                    **a,
                    "answer_name": _name(campaign, a["answer"]),
                    "answered": _iso(a["answered"]),
                    "saw_original_first": str(a["answer_id"] in broken).lower(),
                }
                for a in answers
            ],
        ),
    )
    folder.write_text(
        "retracted.csv",
        _csv(
            ["answer_id", "annotator", "item_id", "answer", "answered", "retracted"],
            [
                {**r, "answered": _iso(r["answered"]), "retracted": _iso(r["retracted"])}
                for r in campaign.retracted()
            ],
        ),
    )


def _answers_after_the_original(campaign: Campaign, answers: list[dict[str, Any]], dsd: Any) -> set[int]:
    """The ids of answers to a reconstruction given after the same annotator was shown its original."""
    original_of = {
        r: o for split in dsd.values() for r, o in zip(split["reconstruction_id"], split["original_id"])
    }
    first_seen = {
        (s["annotator"], s["key"]): s["first_shown"] for s in campaign.shown() if s["kind"] == "original"
    }
    broken = set()
    for a in answers:
        if a["kind"] == "reconstruction":
            seen = first_seen.get((a["annotator"], original_of.get(a["key"])))
            if seen is not None and seen <= a["answered"]:
                broken.add(a["answer_id"])
    return broken


def _iso(epoch_seconds: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch_seconds, tz=UTC).isoformat(timespec="milliseconds")


def _name(campaign: Campaign, answer: int) -> str:
    return "cannot recognise" if answer < 0 else campaign.class_names[answer]


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
