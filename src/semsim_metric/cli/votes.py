"""``semsim votes import``: merge a votes CSV into a dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import CLIError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim votes`` to the command line."""
    v = sub.add_parser("votes", help="manage votes of a dataset")
    vs = v.add_subparsers(dest="votes_command", required=True)
    imp = vs.add_parser("import", help="merge a votes CSV into a dataset folder",
                        description="Merge votes (reconstruction_id, votes, annotator_kind[, original_votes]) into a "
                        "dataset; every CSV row is merged or listed in OUT/conversion_report.md.")
    imp.add_argument("dataset", help="dataset folder or Hub id")
    imp.add_argument("votes_csv", type=Path)
    imp.add_argument("--out", type=Path, required=True)
    imp.add_argument("--lenient", action="store_true", help="skip bad rows and report them")
    imp.add_argument("--min-votes", type=int, default=3)
    imp.add_argument("--reference", choices=["true_class", "original_consensus"], default="true_class")
    imp.add_argument("--overwrite", action="store_true")
    imp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Merge the votes and report every CSV row that could not be merged."""
    from ..data.report import ConversionError
    from ..data.schema import RecognitionRule
    from ..data.votes import import_votes

    try:
        report = import_votes(args.dataset, args.votes_csv, args.out, rule=RecognitionRule(args.min_votes, args.reference),
                              strict=not args.lenient, overwrite=args.overwrite)
    except (ConversionError, ValueError, FileExistsError) as err:
        raise CLIError(str(err)) from err
    print(report.summary())
    print(f"wrote {args.out}")
    return 0
