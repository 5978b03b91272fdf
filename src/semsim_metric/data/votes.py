"""Merge votes produced elsewhere (people, or a model-judge panel) into a SemSim dataset folder.

The votes CSV has one row per reconstruction: ``reconstruction_id``, ``votes`` (``"a;b;c;d;e"``) and
``annotator_kind`` (``human`` / ``model-judge``), optionally ``original_votes``. Every CSV row is
merged or reported; rows of the dataset without votes stay ``annotator_kind="none"``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .convert import parse_votes
from .hub_folder import DatasetCard, write_dataset_folder
from .loading import load_folder_or_hub, undecoded
from .report import ConversionError, ConversionReport
from .schema import ANNOTATOR_KINDS, RecognitionRule

__all__ = ["apply_votes", "import_votes"]


def import_votes(
    dataset: str | Path,
    votes_csv: str | Path,
    out: str | Path,
    *,
    rule: RecognitionRule | None = None,
    strict: bool = False,
    expected_votes: int | None = None,
    overwrite: bool = False,
) -> ConversionReport:
    """Write ``out``: the dataset of ``dataset`` with the votes of ``votes_csv`` merged in."""
    from ..outputs import OutputFolder

    folder = OutputFolder(out, command="votes import", overwrite=overwrite).claim()
    rule = rule or RecognitionRule()
    votes_csv = Path(votes_csv)
    report = ConversionReport(source=str(votes_csv), converter="votes-import", strict=strict)
    dsd = undecoded(load_folder_or_hub(dataset))
    index: dict[str, tuple[str, int]] = {}
    for split, ds in dsd.items():
        for i, rid in enumerate(ds["reconstruction_id"]):
            index[rid] = (split, i)
    with votes_csv.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in ("reconstruction_id", "votes", "annotator_kind") if c not in cols]
        if missing:
            raise ConversionError(f"{votes_csv} lacks column(s) {missing}; it has {cols}.")
        records = list(reader)
    updates: dict[str, dict[str, Any]] = {}
    for line, rec in enumerate(records, start=2):
        item = f"{votes_csv.name}:{line}"
        rid = rec["reconstruction_id"].strip()
        if rid not in index:
            report.problem(item, f"unknown reconstruction_id {rid!r}")
            continue
        if rid in updates:
            report.problem(item, f"duplicate votes for {rid!r}")
            continue
        kind = rec["annotator_kind"].strip()
        if kind not in ANNOTATOR_KINDS or kind == "none":
            report.problem(item, f"annotator_kind must be 'human' or 'model-judge', got {kind!r}")
            continue
        try:
            votes = parse_votes(rec["votes"], expected_votes)
            original_votes = parse_votes(rec["original_votes"]) if rec.get("original_votes") else None
        except ValueError as err:
            report.problem(item, str(err))
            continue
        if not votes:
            report.problem(item, "empty votes")
            continue
        updates[rid] = {"votes": votes, "annotator_kind": kind, "original_votes": original_votes}
        report.ok()
    report.check_totals()
    splits = apply_votes(dsd, updates, rule)
    unannotated = sum(1 for rows in splits.values() for r in rows if r["annotator_kind"] == "none")
    report.notes.append(f"{len(updates)} reconstructions received votes; {unannotated} remain without votes")
    kinds = sorted({r["annotator_kind"] for rows in splits.values() for r in rows})
    card = DatasetCard(
        title=f"{Path(str(dataset)).name} with imported votes",
        summary=f"Reconstructions of `{dataset}` with votes imported from `{votes_csv.name}`.",
        annotators=", ".join(kinds),
        rule=rule,
        notes=[report.summary().replace("\n", "; ")],
    )
    write_dataset_folder(splits, folder, card)
    report.write(folder)
    return report


def apply_votes(
    dsd: Any,
    updates: dict[str, dict[str, Any]],
    rule: RecognitionRule,
    *,
    original_votes: dict[str, list[int]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``dsd`` (split -> rows) with ``updates`` merged in and ``recognized`` recomputed.

    ``updates`` maps a reconstruction_id to ``{"votes", "annotator_kind"[, "original_votes"]}``;
    ``original_votes`` maps an original_id to the annotators' reading of that original (given to every row
    of the original). Rows without an update keep their values.
    """
    splits: dict[str, list[dict[str, Any]]] = {}
    for split, ds in dsd.items():
        rows = []
        for row in ds:
            upd = updates.get(row["reconstruction_id"])
            ov = (original_votes or {}).get(row["original_id"])
            if ov is not None:
                row["original_votes"] = list(ov)
            if upd:
                row["votes"], row["annotator_kind"] = list(upd["votes"]), upd["annotator_kind"]
                if upd.get("original_votes") is not None:
                    row["original_votes"] = upd["original_votes"]
            if upd or ov is not None:
                row["recognized"] = rule.recognized(row["votes"], row["class_label"], row["original_votes"])
                row["recognized_share"] = rule.share(row["votes"], row["class_label"], row["original_votes"])
            rows.append(row)
        splits[split] = rows
    return splits
