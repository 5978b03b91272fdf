"""``semsim generate`` and ``semsim votes import``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim generate`` and ``semsim votes`` to the command line."""
    p = sub.add_parser(
        "generate", help="attack victim models and write a reconstruction dataset",
        description="Train victims, run batched gradient-inversion attacks on test originals and write a dataset "
        "folder in the SemSim schema (no votes yet). Resumable: rerun the same command after an interruption.")
    p.add_argument("--out", type=Path, required=True, help="output folder (dataset + shards + victims)")
    p.add_argument("--source", default="fashion-mnist", help="fashion-mnist (local IDX), hf:<dataset id>, or a folder")
    p.add_argument("--source-root", default=None, help="folder of the Fashion-MNIST IDX files")
    p.add_argument("--num-originals", type=int, default=16, help="test originals to attack (default 16)")
    p.add_argument("--victim", action="append", default=None,
                   help="arch:epochs[:augmentation[:defense]], repeatable (default lenet_sigmoid:0); archs: "
                        "lenet_sigmoid, conv_relu, resnet20[-width]; augmentation none|crop_flip|policy=rotate+contrast; "
                        "defense prune=70|noise=1e-3")
    p.add_argument("--attack", action="append", default=None,
                   help="inverting_gradients|dlg|idlg|gradinversion, repeatable (default inverting_gradients)")
    p.add_argument("--setting", choices=["quick", "paper"], default="quick", help="iteration preset (default quick)")
    p.add_argument("--iterations", type=int, default=None, help="override the preset's iterations")
    p.add_argument("--shard-size", type=int, default=64, help="originals per shard (default 64)")
    p.add_argument("--train-images", type=int, default=20000, help="training images per victim epoch (default 20000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--merge-only", action="store_true", help="only merge finished shards (after torchrun)")
    p.set_defaults(func=_run_generate)

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
    imp.set_defaults(func=_run_votes)


def _run_generate(args: argparse.Namespace) -> int:
    from ..cli import CLIError
    from .attacks import attack_preset
    from .pipeline import GenerationPlan, generate, merge_shards, parse_victim_spec

    try:
        if args.merge_only:
            print(f"merged into {merge_shards(args.out)}")
            return 0
        victims = [parse_victim_spec(s, seed=args.seed, train_images=args.train_images)
                   for s in (args.victim or ["lenet_sigmoid:0"])]
        overrides = {"seed": args.seed} | ({"iterations": args.iterations} if args.iterations else {})
        attacks = [attack_preset(a, args.setting, **overrides) for a in (args.attack or ["inverting_gradients"])]
        plan = GenerationPlan(source=args.source, num_originals=args.num_originals, victims=victims, attacks=attacks,
                              shard_size=args.shard_size, seed=args.seed)
        result = generate(plan, args.out, device=args.device, source_root=args.source_root)
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(str(err)) from err
    print(f"dataset written to {result}" if result else "shards done; run with --merge-only once every rank finished")
    return 0


def _run_votes(args: argparse.Namespace) -> int:
    from ..cli import CLIError
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
