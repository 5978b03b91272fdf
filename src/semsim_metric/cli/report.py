"""``semsim report``: a leakage report people can look at (one self-contained HTML page and a PNG figure)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .errors import CLIError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim report`` to the command line."""
    p = sub.add_parser(
        "report",
        help="a leakage report: which reconstructions would be recognised, and how sure the rate is (HTML + PNG)",
        description=(
            "Score reconstructions against their originals and write one self-contained HTML page (images "
            "embedded, no scripts, no network) and a PNG figure beside it: the share of reconstructions that would "
            "be recognised (p_recognised > 0.5) with a 95%% bootstrap interval over originals, the reconstructions "
            "beside their originals sorted by probability, the distribution of distances, and a table with PSNR "
            "and SSIM (LPIPS where its weights are on this machine) with the disagreements highlighted. Inputs: two "
            "folders paired by file name (as `semsim score`), a dataset folder in the SemSim schema, one .pt/.npz "
            "file holding {'originals': x, 'reconstructions': x_hat}, or two .pt/.npz/.npy files of batches "
            "(NCHW or NHWC, uint8 or float in [0, 1])."
        ),
    )
    p.add_argument(
        "originals",
        type=Path,
        help="folder of originals, a .pt/.npz/.npy batch, or one .pt/.npz file or dataset folder with both",
    )
    p.add_argument(
        "reconstructions",
        type=Path,
        nargs="?",
        default=None,
        help="folder or .pt/.npz/.npy batch of reconstructions (omit when ORIGINALS holds both)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("report.html"), help="the HTML page (default report.html)"
    )
    p.add_argument(
        "--figure", type=Path, default=None, help="the PNG figure (default: --out with .png, e.g. report.png)"
    )
    p.add_argument("--no-figure", action="store_true", help="write no PNG figure")
    p.add_argument(
        "--json", type=Path, default=None, help="also write every number (no images) to this JSON file"
    )
    p.add_argument("--split", default=None, help="for a dataset folder: the split to report (default: all)")
    p.add_argument(
        "--model", default=None, help="Hub id or model folder (default: the bundled default model)"
    )
    p.add_argument("--revision", default=None, help="Hub revision of --model")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default cpu)")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per forward pass (default 256)")
    p.add_argument(
        "--bootstrap", type=int, default=2000, help="bootstrap resamples of the originals (default 2000)"
    )
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")
    p.add_argument(
        "--gallery-limit",
        type=int,
        default=200,
        help="most reconstructions shown as images (the table lists all; default 200)",
    )
    p.add_argument(
        "--skip-unpaired",
        action="store_true",
        help="for folders: report the pairs that match and note files without a partner, instead of stopping",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace output files that a report did not write"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute the report (``evaluation.leakage.leakage_report``) and write it (``evaluation.leakage_html``).

    Raises:
        CLIError: bad arguments. Unusable inputs and outputs raise the package's errors (``SemSimError``), which
            the command prints as one line.
    """
    from ..evaluation.leakage import leakage_report
    from ..evaluation.leakage_html import check_report_outputs, write_leakage_report

    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}.")
    if args.bootstrap < 1:
        raise CLIError(f"--bootstrap must be at least 1, got {args.bootstrap}.")
    if args.out.suffix.lower() not in (".html", ".htm"):
        raise CLIError(f"--out {args.out}: give the page an .html name (e.g. report.html).")
    import warnings

    from ..domain import OutOfDomainWarning

    warnings.filterwarnings(
        "ignore", category=OutOfDomainWarning
    )  # the report's notes say it (printed below)
    figure = False if args.no_figure else (args.figure or True)
    fig_path = None if figure is False else (args.out.with_suffix(".png") if figure is True else Path(figure))
    check_report_outputs(args.out, fig_path, overwrite=args.overwrite)  # before scoring: fail fast
    report = leakage_report(
        args.originals,
        args.reconstructions,
        split=args.split,
        model=args.model,
        revision=args.revision,
        device=args.device,
        batch_size=args.batch_size,
        n_boot=args.bootstrap,
        seed=args.seed,
        skip_unpaired=args.skip_unpaired,
    )
    page, fig = write_leakage_report(
        report, args.out, figure=figure, overwrite=args.overwrite, gallery_limit=args.gallery_limit
    )
    if args.json is not None:
        from ..outputs import atomic_write_text

        atomic_write_text(args.json, json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    print(report.sentence())
    flagged = sum(report.disagreements.values())
    print(
        f"{flagged} disagreement(s) with {' and '.join(report.rule_baselines) or 'the pixel metrics'}; "
        f"model {report.model_name} revision {report.model_revision or '-'}"
    )
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    print(
        f"report written to {page}"
        + (f" and {fig}" if fig else "")
        + (f"; numbers in {args.json}" if args.json else "")
    )
    return 0
