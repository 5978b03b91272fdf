"""``semsim convert``: official release, training archive and CSV manifests -> Hub dataset folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import CLIError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim convert`` to the command line."""
    p = sub.add_parser(
        "convert",
        help="convert annotations into a SemSim dataset folder",
        description="Convert annotated reconstructions into a Hub dataset folder (Parquet + card). Every input "
        "item is converted or listed in OUT/conversion_report.md with its reason.",
    )
    p.add_argument(
        "layout",
        choices=["official-labels", "official-training", "manifest"],
        help="official-labels: human_annos_subset/; official-training: human_anno_id/train_with_ori/; "
        "manifest: a CSV of original,reconstruction,votes|recognized[,...]",
    )
    p.add_argument("source", type=Path, help="the folder (official layouts) or the CSV file (manifest)")
    p.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    p.add_argument(
        "--lenient", action="store_true", help="skip bad items and report them (default: stop at the first)"
    )
    p.add_argument("--min-votes", type=int, default=3, help="votes needed for 'recognised' (default 3)")
    p.add_argument(
        "--reference",
        choices=["true_class", "original_consensus"],
        default="true_class",
        help="class the votes must name (default: the true class, as in the study)",
    )
    p.add_argument(
        "--annotator-kind",
        choices=["human", "model-judge"],
        default=None,
        help="who produced the votes (official layouts: human; manifests: required unless a column says)",
    )
    p.add_argument(
        "--source-dataset", default=None, help="value of source_dataset (default cifar100 for official)"
    )
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,validation,test shares of originals")
    p.add_argument("--holdout-victim", action="append", default=[], help="victim whose rows form test_victim")
    p.add_argument("--holdout-attack", action="append", default=[], help="attack whose rows form test_attack")
    p.add_argument(
        "--allow-outside-paths",
        action="store_true",
        help="manifest: accept image paths outside the manifest's folder (absolute or ../)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow writing into a non-empty folder that `semsim convert` did not create",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert, split and write the dataset folder; every input item is converted or reported."""
    from ..data.hub_folder import DatasetCard, write_dataset_folder
    from ..data.schema import RecognitionRule
    from ..data.splits import split_by_original
    from ..outputs import OutputFolder

    rule = RecognitionRule(args.min_votes, args.reference)
    strict = not args.lenient
    # claim the folder before anything is written: someone else's folder is refused untouched
    folder = OutputFolder(args.out, command="convert", overwrite=args.overwrite).claim()
    fractions = _fractions(args.fractions)
    rows, report = _convert(args, rule, strict=strict)
    report.write(folder)
    print(report.summary())
    if not rows:
        raise CLIError(f"nothing could be converted; see {args.out / 'conversion_report.md'}")
    splits, notes = split_by_original(
        rows,
        fractions=fractions,
        seed=args.seed,
        holdout_victims=args.holdout_victim,
        holdout_attacks=args.holdout_attack,
    )
    _warn_empty_splits(args, rows, splits, fractions)
    kinds = sorted({r["annotator_kind"] for r in rows})
    card = DatasetCard(
        title=f"SemSim annotations converted from {args.source.name}",
        summary=f"Reconstructions with annotators' judgements, converted by `semsim convert {args.layout}`.",
        source=str(rows[0]["source_dataset"] or "unknown"),
        annotators=", ".join(kinds),
        rule=rule,
        notes=notes + [report.summary().replace("\n", "; ")],
    )
    write_dataset_folder(splits, folder, card)
    print(f"wrote {args.out} ({', '.join(f'{k}: {len(v)}' for k, v in splits.items())})")
    return 0


def _convert(args: argparse.Namespace, rule: Any, *, strict: bool) -> tuple[list[dict[str, Any]], Any]:
    """The rows and the conversion report of ``args.source`` read as ``args.layout``."""
    from ..data.convert import convert_manifest, convert_official_labels, convert_official_training

    if args.layout == "manifest":
        return convert_manifest(
            args.source,
            rule=rule,
            strict=strict,
            annotator_kind=args.annotator_kind,
            source_dataset=args.source_dataset,
            allow_outside_paths=args.allow_outside_paths,
        )
    if args.layout == "official-labels":
        return convert_official_labels(
            args.source,
            rule=rule,
            strict=strict,
            source_dataset=args.source_dataset or "cifar100",
            annotator_kind=args.annotator_kind or "human",
        )
    return convert_official_training(
        args.source,
        strict=strict,
        source_dataset=args.source_dataset or "cifar100",
        annotator_kind=args.annotator_kind or "human",
    )


def _warn_empty_splits(
    args: argparse.Namespace, rows: list[dict[str, Any]], splits: dict[str, Any], fractions: dict[str, float]
) -> None:
    """Warn on stderr when too few originals leave a split with a non-zero fraction empty."""
    empty = [name for name, share in fractions.items() if share > 0 and not splits.get(name)]
    if empty:
        n_orig = len({r["original_id"] for r in rows})
        print(
            f"semsim convert: warning: {n_orig} originals leave the {', '.join(empty)} split(s) empty at "
            f"--fractions {args.fractions}; annotate more originals (training needs validation rows for a "
            "calibration and test rows to report).",
            file=sys.stderr,
        )


def _fractions(text: str) -> dict[str, float]:
    """``--fractions train,validation,test`` as numbers.

    Raises:
        CLIError: a value that is not a number.
    """
    try:
        return dict(zip(("train", "validation", "test"), (float(v) for v in text.split(","))))
    except ValueError as err:
        raise CLIError(f"--fractions {text}: {err}; write three numbers such as 0.8,0.1,0.1.") from err
