"""``semsim votes import``: merge a votes CSV into a dataset folder."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim votes`` to the command line."""
    v = sub.add_parser("votes", help="manage votes of a dataset")
    vs = v.add_subparsers(dest="votes_command", required=True)
    imp = vs.add_parser(
        "import",
        help="merge a votes CSV into a dataset folder",
        description="Merge votes (reconstruction_id, votes, annotator_kind[, original_votes]) into a "
        "dataset; every CSV row is merged or listed in OUT/conversion_report.md.",
    )
    imp.add_argument("dataset", help="dataset folder or Hub id")
    imp.add_argument(
        "votes_csv",
        type=Path,
        help='CSV with reconstruction_id, votes (class ids such as "3;3;-1"; -1 = cannot '
        "recognise), annotator_kind and optionally original_votes",
    )
    imp.add_argument(
        "--out", type=Path, required=True, help="dataset folder to write (the input is never changed)"
    )
    imp.add_argument(
        "--lenient",
        action="store_true",
        help="skip bad rows and report them (default: stop at the first bad row)",
    )
    imp.add_argument(
        "--min-votes",
        type=int,
        default=3,
        help="votes for the reference class that make a reconstruction recognised (default 3, of 5 "
        "as in the study)",
    )
    imp.add_argument(
        "--reference",
        choices=["true_class", "original_consensus"],
        default="true_class",
        help="what a vote must name: the true class, or the class the annotators gave the original",
    )
    imp.add_argument(
        "--overwrite", action="store_true", help="replace files in OUT that another command wrote"
    )
    imp.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Merge the votes and report every CSV row that could not be merged."""
    from ..data.schema import RecognitionRule
    from ..data.votes import import_votes

    report = import_votes(
        args.dataset,
        args.votes_csv,
        args.out,
        rule=RecognitionRule(args.min_votes, args.reference),
        strict=not args.lenient,
        overwrite=args.overwrite,
    )
    print(report.summary())
    print(f"wrote {args.out}")
    return 0
