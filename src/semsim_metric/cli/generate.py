"""``semsim generate``: train victims, attack them in batches and write a reconstruction dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import CLIError

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim generate`` to the command line."""
    p = sub.add_parser(
        "generate",
        help="attack victim models and write a reconstruction dataset",
        description="Train victims, run batched gradient-inversion attacks on test originals and write a dataset "
        "folder in the SemSim schema (no votes yet). Resumable: rerun the same command after an interruption.",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (dataset + shards + victims)")
    p.add_argument(
        "--source",
        default="fashion-mnist",
        help="fashion-mnist (local IDX), hf:<dataset id>, or a folder FOLDER laid out as "
        "FOLDER/train/<class>/*.png and FOLDER/test/<class>/*.png (same classes in both); originals "
        "are drawn from the test split, victims train on the train split and never see an attacked "
        "original (identical train images are removed)",
    )
    p.add_argument("--source-root", default=None, help="folder of the Fashion-MNIST IDX files")
    p.add_argument("--num-originals", type=int, default=16, help="test originals to attack (default 16)")
    p.add_argument(
        "--victim",
        action="append",
        default=None,
        help="arch:epochs[:augmentation[:defense]], repeatable (default lenet_sigmoid:0); archs: "
        "lenet_sigmoid, conv_relu, resnet20[-width]; augmentation none|crop_flip|policy=rotate+contrast; "
        "defense prune=70|noise=1e-3",
    )
    p.add_argument(
        "--attack",
        action="append",
        default=None,
        help="inverting_gradients|dlg|idlg|gradinversion, repeatable (default inverting_gradients)",
    )
    p.add_argument(
        "--setting", choices=["quick", "paper"], default="quick", help="iteration preset (default quick)"
    )
    p.add_argument("--iterations", type=int, default=None, help="override the preset's iterations")
    p.add_argument("--shard-size", type=int, default=64, help="originals per shard (default 64)")
    p.add_argument(
        "--train-images", type=int, default=20000, help="training images per victim epoch (default 20000)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--merge-only", action="store_true", help="only merge finished shards (after torchrun)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="allow writing into a non-empty folder that `semsim generate` did not create",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Generate (or, with --merge-only, merge) the dataset."""
    from ..generate.attacks import attack_preset
    from ..generate.pipeline import GenerationPlan, generate, merge_shards
    from ..generate.victims import VictimSpec

    try:
        if args.merge_only:
            print(f"merged into {merge_shards(args.out, overwrite=args.overwrite)}")
            return 0
        victims = [
            VictimSpec.parse(s, seed=args.seed, train_images=args.train_images)
            for s in (args.victim or ["lenet_sigmoid:0"])
        ]
        overrides = {"seed": args.seed} | ({"iterations": args.iterations} if args.iterations else {})
        attacks = [
            attack_preset(a, args.setting, **overrides) for a in (args.attack or ["inverting_gradients"])
        ]
        plan = GenerationPlan(
            source=args.source,
            num_originals=args.num_originals,
            victims=victims,
            attacks=attacks,
            shard_size=args.shard_size,
            seed=args.seed,
        )
        result = generate(
            plan, args.out, device=args.device, source_root=args.source_root, overwrite=args.overwrite
        )
    except (ValueError, FileNotFoundError) as err:
        raise CLIError(str(err)) from err
    print(
        f"dataset written to {result}"
        if result
        else "shards done; run with --merge-only once every rank finished"
    )
    return 0
