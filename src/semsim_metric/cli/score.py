"""``semsim score``: score the reconstructions in a folder against their originals."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .errors import CLIError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="score reconstructions against their originals",
        description=(
            "Score every reconstruction in RECONSTRUCTIONS against its original in ORIGINALS with SemSim "
            "(a distance: 0 = semantically identical = most leakage, up to 2 = least leakage). Files pair by "
            "name: 'x.png' with 'x.jpg'; a trailing _rec/_ori (or -rec/-ori, _reconstruction/_original) "
            "is ignored; several reconstructions of one original are named '<name>__<tag>.png'."
        ),
    )
    p.add_argument("originals", type=Path, help="folder of original images")
    p.add_argument("reconstructions", type=Path, help="folder of reconstructed images")
    p.add_argument("--model", default=None, help="Hub id or model folder (default: the bundled default model)")
    p.add_argument("--revision", default=None, help="Hub revision of --model")
    p.add_argument("--batch-size", type=int, default=256, help="pairs per forward pass (default 256)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default cpu)")
    p.add_argument("--output", type=Path, default=None, help="write per-image scores to this CSV file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --output file that is not a `semsim score` CSV")
    p.add_argument("--probability", action="store_true",
                   help="also report p_recognised: the calibrated probability that the annotators the model was "
                        "calibrated on (see its card; for the default, vision-model judges, not people) recognise "
                        "each reconstruction")
    p.add_argument("--skip-unpaired", action="store_true",
                   help="score the pairs that match and list files without a partner, instead of stopping")
    p.add_argument("--quiet", action="store_true", help="print only the mean")
    p.add_argument("--no-domain-check", action="store_true",
                   help="do not warn when the originals fall outside what the model was trained on")
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
            raise CLIError(f"--output {path} exists and is not a `semsim score` CSV; choose another name or pass "
                           "--overwrite.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.tmp")
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise CLIError(f"--output {path} cannot be written ({err.strerror or err}); choose a writable location.") from err


def run(args: argparse.Namespace) -> int:
    """Score the paired files and print (and optionally write) one row per pair."""
    import torch
    from tqdm.auto import tqdm

    from ..functional import _semsim_update, get_model
    from ..image_io import load_image
    from ..pairing import pair_folders
    from ..domain import check_domain
    from ..preprocessing import stack_at_model_size

    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be at least 1, got {args.batch_size}.")
    if args.output is not None:
        _check_output(args.output, overwrite=args.overwrite)  # before any scoring: fail fast
    try:
        pairing = pair_folders(args.originals, args.reconstructions)
    except NotADirectoryError as err:
        raise CLIError(str(err)) from err
    if pairing.problems and args.skip_unpaired:
        print(f"{len(pairing.problems)} file(s) without a partner, not scored:\n  " + "\n  ".join(pairing.problems),
              file=sys.stderr)
    elif pairing.problems:
        raise CLIError(
            f"{len(pairing.problems)} file(s) could not be paired (see the pairing rule in `semsim score --help`):\n  "
            + "\n  ".join(pairing.problems) + "\n(pass --skip-unpaired to score the pairs that match)"
        )
    if not pairing.pairs:
        raise CLIError(f"No image pairs found in {args.originals} and {args.reconstructions}.")
    try:
        device = torch.device(args.device)
        model = get_model(args.model, args.revision, device=device)
    except (OSError, RuntimeError, ValueError) as err:
        raise CLIError(str(err)) from err
    want_prob = bool(args.probability)
    if want_prob and not model.config.calibration:
        raise CLIError("--probability needs a calibrated model; this one has no calibration.")
    size = model.config.image_size
    rows: list[tuple[str, str, float, float | None]] = []
    problems: list[str] = []
    pairs = pairing.pairs
    with torch.inference_mode(), tqdm(total=len(pairs), desc="semsim score", unit="pair",
                                      disable=args.quiet or None, file=sys.stderr) as bar:
        for start in range(0, len(pairs), args.batch_size):
            chunk = pairs[start:start + args.batch_size]
            origs, recs, kept = [], [], []
            for orig_path, rec_path in chunk:
                try:
                    o, r = load_image(orig_path), load_image(rec_path)
                except (OSError, ValueError) as err:  # unreadable, too large, or pixels without a meaning
                    problems.append(str(err))
                    continue
                if o.shape[1:] != r.shape[1:]:
                    problems.append(f"size mismatch: {orig_path} is {tuple(o.shape[1:])}, {rec_path} is "
                                    f"{tuple(r.shape[1:])}")
                    continue
                origs.append(o)
                recs.append(r)
                kept.append((orig_path, rec_path))
            bar.update(len(chunk))
            if not kept:
                continue
            if len({tuple(t.shape) for t in origs + recs}) == 1:  # one size: the gate sees the files as they are
                target, preds, data_range = torch.stack(origs), torch.stack(recs), 255.0
                gate_checks_domain = not args.no_domain_check
            else:  # mixed sizes: bring each file to the model's size first (the same conversion, per image)
                target = stack_at_model_size(origs, data_range=255, image_size=size)
                preds = stack_at_model_size(recs, data_range=255, image_size=size)
                data_range, gate_checks_domain = 1.0, False  # channels and sizes are checked per file here
                if not args.no_domain_check:
                    for shape in sorted({tuple(t.shape) for t in origs}):
                        check_domain(model.config, torch.zeros((1, *shape)))
            dist = _semsim_update(preds.to(device), target.to(device), model, data_range=data_range,
                                  check_domain=gate_checks_domain).float().cpu()
            prob = model.probability(dist).tolist() if want_prob else [None] * len(kept)
            for (o_p, r_p), d, pr in zip(kept, dist.tolist(), prob):
                rows.append((str(o_p), str(r_p), d, pr))
    if args.output is not None:
        import io

        from ..outputs import atomic_write_text

        buf = io.StringIO(newline="")
        writer = csv.writer(buf)
        writer.writerow(_HEADER + (["p_recognised"] if want_prob else []))
        for o_p, r_p, d, pr in rows:
            writer.writerow([o_p, r_p, f"{d:.6f}"] + ([f"{pr:.6f}"] if want_prob else []))
        atomic_write_text(args.output, buf.getvalue())
        print(f"scores written to {args.output}", file=sys.stderr)
    if not args.quiet:
        print(f"{'reconstruction':<40} {'original':<40} {'semsim':>8}" + ("  p_recognised" if want_prob else ""))
        for o_p, r_p, d, pr in rows:
            print(f"{Path(r_p).name:<40} {Path(o_p).name:<40} {d:8.4f}" + (f"  {pr:12.3f}" if want_prob else ""))
    if rows:
        mean = sum(r[2] for r in rows) / len(rows)
        print(f"mean SemSim over {len(rows)} pairs: {mean:.4f}  (distance: 0 = identical = most leakage; "
              "lower = more leakage)")
        cal = model.config.calibration
        if cal and cal.get("slope"):
            leak = -cal["intercept"] / cal["slope"]
            fitted = str(cal.get("fitted_on", ""))
            who = fitted[fitted.find("annotator_kind"):].strip(" ()") if "annotator_kind" in fitted else "see the card"
            print(f"a distance below {leak:.3f} means p_recognised > 0.5: the annotators the model was calibrated "
                  f"on ({who}) would recognise such a reconstruction more often than not")
    if problems:
        raise CLIError(f"{len(problems)} pair(s) could not be scored:\n  " + "\n  ".join(problems))
    return 0
