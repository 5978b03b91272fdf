"""``semsim score``: score reconstructions against their originals (two folders, or two image files)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CLIError

if TYPE_CHECKING:
    from ..functional import PairScore

__all__ = ["register", "run"]

#: what ``--precision`` accepts, and the ``bf16`` argument of ``score_file_pairs`` each means
PRECISIONS = {"auto": None, "float32": False, "bfloat16": True}
#: what ``--format`` prints on stdout
FORMATS = ("table", "csv", "json")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim score`` to the command line."""
    p = sub.add_parser(
        "score",
        help="score reconstructions against their originals",
        description=(
            "Score every reconstruction in RECONSTRUCTIONS against its original in ORIGINALS with SemSim "
            "(a distance: 0 = semantically identical = most leakage, up to 2 = least leakage). Give two folders "
            "or two image files (one pair: `semsim score original.png reconstruction.png`). Folders pair files by "
            "name: 'x.png' with 'x.jpg'; a trailing _rec/_ori (or -rec/-ori, _reconstruction/_original) "
            "is ignored; several reconstructions of one original are named '<name>__<tag>.png'. "
            "--format json prints one JSON document on stdout (every message goes to stderr)."
        ),
    )
    p.add_argument("originals", type=Path, help="folder of original images, or one original image file")
    p.add_argument(
        "reconstructions",
        type=Path,
        help="folder of reconstructed images, or one reconstruction image file (with a file ORIGINALS)",
    )
    p.add_argument(
        "--model", default=None, help="Hub id or model folder (default: the bundled default model)"
    )
    p.add_argument("--revision", default=None, help="Hub revision of --model")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per forward pass (default 256)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default cpu)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="'auto' (default): bf16 autocast on a CPU with native bf16 (AVX-512 BF16 / AMX; about twice "
        "as fast, distances within 0.01 of float32), else float32; 'float32': exact; 'bfloat16': "
        "bf16 autocast on any device",
    )
    p.add_argument("--output", type=Path, default=None, help="write per-image scores to this CSV file")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --output file that is not a `semsim score` CSV",
    )
    p.add_argument(
        "--probability",
        action="store_true",
        help="also report p_recognised: the calibrated probability that the annotators the model was "
        "calibrated on (see its card; for the default, vision-model judges, not people) recognise "
        "each reconstruction",
    )
    p.add_argument(
        "--skip-unpaired",
        action="store_true",
        help="score the pairs that match and list files without a partner, instead of stopping",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="what stdout gets: 'table' (default; one row per pair and the mean), 'csv' (the --output CSV) "
        "or 'json' (an object with 'records' - original, reconstruction, distance and, with "
        "--probability, p_recognised per pair - and a 'summary'; messages go to stderr)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress; with the table, print only the mean")
    p.add_argument(
        "--no-domain-check",
        action="store_true",
        help="do not warn when the originals fall outside what the model was trained on",
    )
    p.set_defaults(func=run)


_HEADER = ["original", "reconstruction", "semsim"]


def _check_output(path: Path, *, overwrite: bool) -> None:
    """Refuse an --output that cannot be written, or that holds a file this command did not write."""
    if path.is_dir():
        raise CLIError(f"--output {path} is a folder; give a CSV file name.")
    if path.exists() and not overwrite:
        try:
            first = path.open(newline="").readline().strip()
        except (OSError, UnicodeDecodeError):
            first = ""
        if not first.startswith(",".join(_HEADER)):
            raise CLIError(
                f"--output {path} exists and is not a `semsim score` CSV; choose another name or pass "
                "--overwrite."
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.tmp")
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise CLIError(
            f"--output {path} cannot be written ({err.strerror or err}); choose a writable location."
        ) from err


def _pairs(originals: Path, reconstructions: Path, *, skip_unpaired: bool) -> list[tuple[Path, Path]]:
    """(original, reconstruction) paths: the one pair of two files, or the folders paired by name.

    Raises:
        CLIError: a file beside a folder, a path that is neither, folders that cannot be paired (unless
            ``skip_unpaired``), or no pairs at all.
    """
    from ..pairing import pair_folders

    if originals.is_file() or reconstructions.is_file():
        if not (originals.is_file() and reconstructions.is_file()):
            folder, file = (
                (reconstructions, originals) if originals.is_file() else (originals, reconstructions)
            )
            if not folder.exists():
                raise CLIError(f"{folder} does not exist: give two image files (one pair) or two folders.")
            raise CLIError(
                f"{file} is a file but {folder} is "
                + ("a folder" if folder.is_dir() else "not a file")
                + ": give two folders (paired by file name) or two image files (one pair)."
            )
        return [(originals, reconstructions)]
    try:
        pairing = pair_folders(originals, reconstructions)
    except NotADirectoryError as err:
        raise CLIError(
            f"{err} Give two folders (paired by file name) or two image files (one pair)."
        ) from err
    if pairing.problems and skip_unpaired:
        print(
            f"{len(pairing.problems)} file(s) without a partner, not scored:\n  "
            + "\n  ".join(pairing.problems),
            file=sys.stderr,
        )
    elif pairing.problems:
        raise CLIError(
            f"{len(pairing.problems)} file(s) could not be paired (see the pairing rule in `semsim score --help`):\n  "
            + "\n  ".join(pairing.problems)
            + "\n(pass --skip-unpaired to score the pairs that match)"
        )
    if not pairing.pairs:
        raise CLIError(f"No image pairs found in {originals} and {reconstructions}.")
    return pairing.pairs


def run(args: argparse.Namespace) -> int:
    """Score the paired files and print (and optionally write) one row per pair.

    Every refusal (arguments, the --output file, pairing) comes before the model is loaded; the scoring is
    ``functional.score_file_pairs`` (each file reduced while it is read). ``--format json`` prints one JSON object
    on stdout - ``records`` (original, reconstruction, distance, p_recognised with --probability) and ``summary``
    (pairs, mean distance, model, the calibration's threshold, problems) - and every message on stderr.

    Raises:
        CLIError: bad arguments, folders that cannot be paired, or pairs that could not be scored (listed; the
            others are scored and written first).
        SemSimError: an unloadable model.
    """
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}.")
    if args.output is not None:
        _check_output(args.output, overwrite=args.overwrite)  # before any scoring: fail fast
    pairs = _pairs(args.originals, args.reconstructions, skip_unpaired=args.skip_unpaired)

    from .._progress import logger
    from ..functional import get_model, score_file_pairs

    logger.info("loading the SemSim model%s", f" {args.model}" if args.model else "")
    model = get_model(args.model, args.revision, device=args.device)
    calibration = model.config.calibration_curve
    if args.probability and calibration is None:
        raise CLIError("--probability needs a calibrated model; this one has no calibration.")
    scores = score_file_pairs(
        pairs,
        model,
        batch_size=args.batch_size,
        probability=args.probability,
        check_domain=not args.no_domain_check,
        progress=not args.quiet,
        description="semsim score",
        bf16=PRECISIONS[args.precision],
    )
    _print_scores(
        scores.rows,
        args,
        calibration.distance_at(0.5) if calibration else None,
        calibration.annotator_kind if calibration else None,
        scores.problems,
    )
    if scores.problems:
        raise CLIError(
            f"{len(scores.problems)} pair(s) could not be scored:\n  " + "\n  ".join(scores.problems)
        )
    return 0


def _print_scores(
    rows: list[PairScore],
    args: argparse.Namespace,
    threshold: float | None,
    annotators: str | None,
    problems: list[str],
) -> None:
    """Write --output and print the rows in --format, then the summary lines (on stdout under the table, on
    stderr beside a machine-readable stdout)."""
    fmt, want_prob = getattr(args, "format", "table"), bool(args.probability)
    csv_text = _csv(rows, want_prob) if args.output is not None or fmt == "csv" else ""
    if args.output is not None:
        from ..outputs import atomic_write_text

        atomic_write_text(args.output, csv_text)
        print(f"scores written to {args.output}", file=sys.stderr)
    mean = sum(r.distance for r in rows) / len(rows) if rows else None
    if fmt == "json":
        print(
            json.dumps(
                _json_document(rows, want_prob, mean, threshold, problems, args), indent=2, allow_nan=False
            )
        )
    elif fmt == "csv":
        sys.stdout.write(csv_text)
    elif not args.quiet:
        print(
            f"{'reconstruction':<40} {'original':<40} {'semsim':>8}" + ("  p_recognised" if want_prob else "")
        )
        for o_p, r_p, d, pr in rows:
            print(
                f"{Path(r_p).name:<40} {Path(o_p).name:<40} {d:8.4f}" + (f"  {pr:12.3f}" if want_prob else "")
            )
    summary_to = sys.stdout if fmt == "table" else sys.stderr
    if mean is None or (fmt != "table" and args.quiet):
        return
    print(
        f"mean SemSim over {len(rows)} pairs: {mean:.4f}  (distance: 0 = identical = most leakage; "
        "lower = more leakage)",
        file=summary_to,
    )
    if threshold is not None:
        who = f"annotator_kind: {annotators}" if annotators else "see the card"
        print(
            f"a distance below {threshold:.3f} means p_recognised > 0.5: the annotators the model was calibrated "
            f"on ({who}) would recognise such a reconstruction more often than not",
            file=summary_to,
        )


def _csv(rows: list[PairScore], want_prob: bool) -> str:
    """The CSV of ``--output`` (and of ``--format csv``): one row per pair, distances with 6 decimals."""
    import io

    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(_HEADER + (["p_recognised"] if want_prob else []))
    for o_p, r_p, d, pr in rows:
        writer.writerow([o_p, r_p, f"{d:.6f}"] + ([f"{pr:.6f}"] if want_prob else []))
    return buf.getvalue()


def _json_document(
    rows: list[PairScore],
    want_prob: bool,
    mean: float | None,
    threshold: float | None,
    problems: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """``--format json``: ``records`` (one per scored pair) and ``summary``."""
    from ..hub import DEFAULT_MODEL_ID, DEFAULT_REVISION

    records = []
    for o_p, r_p, d, pr in rows:
        record: dict[str, Any] = {"original": o_p, "reconstruction": r_p, "distance": d}
        if want_prob:
            record["p_recognised"] = pr
        records.append(record)
    summary: dict[str, Any] = {
        "pairs": len(rows),
        "mean_distance": mean,
        "distance": "SemSim distance in [0, 2]: 0 = semantically identical = most leakage; lower = more leakage",
        "model": args.model or DEFAULT_MODEL_ID,
        "revision": args.revision if args.model else (args.revision or DEFAULT_REVISION),
        "distance_below_which_recognised": threshold,
        "not_scored": problems,
    }
    if want_prob:
        summary["mean_p_recognised"] = sum(r[3] for r in rows) / len(rows) if rows else None  # type: ignore[misc]
        summary["recognised"] = sum(r[3] > 0.5 for r in rows)  # type: ignore[operator]
    return {"records": records, "summary": summary}
