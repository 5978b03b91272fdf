"""``semsim train``: train SemSim on an annotated dataset and write a Hub model folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..training.recipes import DEFAULT_MODEL_RECIPE, RECIPES

if TYPE_CHECKING:
    from ..training.recipes import Recipe
    from ..training.run import TrainResult

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim train`` to the command line."""
    p = sub.add_parser(
        "train",
        help="train SemSim on an annotated dataset",
        description="Train SemSim with transformers Trainer and write a Hub model folder.",
    )
    p.add_argument("--dataset", required=True, help="dataset folder or Hub id in the SemSim schema")
    p.add_argument("--output", required=True, type=Path, help="model folder to write")
    p.add_argument(
        "--recipe",
        default=None,
        help=f"training recipe: {', '.join(sorted(RECIPES))}, or a variant such as "
        "semantic:vote_epochs=2,embedding=pooled (default: paper on a GPU, the shipped default "
        f"model's recipe {DEFAULT_MODEL_RECIPE} on a CPU)",
    )
    p.add_argument("--backbone", default=None, help="transformers vision model id/folder to use as backbone")
    p.add_argument(
        "--init-from",
        default=None,
        help="SemSim model folder or Hub id to fine-tune (e.g. the default model on new annotations)",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="resume from the newest complete checkpoint in OUTPUT/checkpoints (one a kill left half-written "
        "is skipped, with a warning)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs of the triplet stage on the annotated rows (default: the recipe's)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="triplets per optimiser step (default: the recipe's)"
    )
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="peak learning rate of the triplet stage (default: the recipe's)",
    )
    p.add_argument(
        "--base-width",
        type=int,
        default=None,
        help="channels of the ResNet-18's first stage: 16 on CPU, 64 as in the paper (default: the recipe's)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of initialisation, shuffling and augmentation: the same seed gives the same weights "
        "(default: the recipe's)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=None,
        help="triplet margin: how much farther an unrecognised reconstruction must be than a "
        "recognised one (default: the recipe's)",
    )
    p.add_argument(
        "--global-loss-weight",
        type=float,
        default=None,
        help="weight of the global soft-label term (binary cross-entropy between the distance and the vote "
        "share) beside the triplet loss (default: the recipe's)",
    )
    p.add_argument(
        "--pretrain-epochs",
        type=float,
        default=None,
        help="stage-1 class-supervised pre-training epochs (semantic recipe: 6; 0 turns it off)",
    )
    p.add_argument(
        "--pretrain-source",
        default=None,
        help="labelled images for stage 1: fashion-mnist (default), hf:<dataset id> or a class-folder path",
    )
    p.add_argument("--no-augment", action="store_true", help="turn crop+flip augmentation off")
    p.add_argument(
        "--report-to", default="none", help="Trainer integrations, e.g. tensorboard (default none)"
    )
    p.add_argument("--fp16-weights", action="store_true", help="store the final weights in float16")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Train, then write the model card with SemSim beside PSNR/SSIM/MSE on the validation and test splits."""
    import torch

    from ..training.run import TrainOptions, train
    from ..training.trainer import TrainerOptions

    overrides = _overrides(args)
    from ..training.recipes import default_recipe, get_recipe

    cuda = torch.cuda.is_available()
    recipe_name = args.recipe or default_recipe(cuda)
    rec = get_recipe(recipe_name, **{k: v for k, v in overrides.items() if v is not None})
    _announce(args, rec, cuda)
    args.recipe = recipe_name
    options = TrainOptions(
        backbone=args.backbone,
        init_from=args.init_from,
        resume=args.resume,
        weights_dtype=torch.float16 if args.fp16_weights else None,
        trainer=TrainerOptions(report_to=args.report_to),
    )
    result = train(args.dataset, args.output, recipe=args.recipe, options=options, **overrides)
    from .._progress import logger

    logger.info("writing the model card (SemSim beside PSNR, SSIM and MSE on the validation and test splits)")
    _write_card_with_baselines(args.dataset, result)
    _print_result(result)
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """The recipe fields given on the command line (``None`` where not given; ``augment`` only when turned off)."""
    overrides: dict[str, object] = {
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "base_width": args.base_width,
        "seed": args.seed,
        "margin": args.margin,
        "global_loss_weight": args.global_loss_weight,
        "pretrain_epochs": args.pretrain_epochs,
        "pretrain_source": args.pretrain_source,
    }
    if args.no_augment:
        overrides["augment"] = False
    return overrides


def _announce(args: argparse.Namespace, rec: Recipe, cuda: bool) -> None:
    """Print the recipe, device and stages to stderr (and a note when the triplet stage takes hours on a CPU)."""
    pretrain = (
        "stage 1 skipped (fine-tuning --init-from " + str(args.init_from) + ")"
        if args.init_from
        else "stage 1: class pre-training"
    )
    stages = [
        name
        for name, on in (
            (pretrain, "classes" in rec.stages),
            ("stage 2: vote tuning", "votes" in rec.stages),
            (f"triplet stage: {rec.triplets.epochs} epochs", "triplets" in rec.stages),
        )
        if on
    ]
    print(
        f"semsim train: recipe {rec.name}{'' if args.recipe else ' (default for this device)'} on "
        f"{'cuda' if cuda else 'cpu'}, width {'of the initial model' if args.init_from else rec.base_width}: "
        f"{'; '.join(stages)}. {rec.description}",
        file=sys.stderr,
    )
    if not cuda and rec.triplets.epochs >= 100:
        print(
            f"semsim train: note: {rec.triplets.epochs} triplet epochs take hours on a CPU; --recipe quick or "
            f"{DEFAULT_MODEL_RECIPE} finish well within an hour.",
            file=sys.stderr,
        )


def _print_result(result: TrainResult) -> None:
    """Print where the model went, its training loss and time, and its validation/test metrics."""
    print(
        f"model written to {result.output_dir} (train loss {result.train_loss:.4f}, "
        f"{result.train_seconds:.0f} s)"
    )
    for name, metrics in (("validation", result.validation), ("test", result.test)):
        if metrics:
            print(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))


def _write_card_with_baselines(dataset: str, result: object) -> None:
    import json

    from ..data.loading import load_folder_or_hub
    from ..evaluation.protocol import compare_on_split
    from ..models import SemSimModel
    from ..training.model_card import write_model_card

    folder = result.output_dir  # type: ignore[attr-defined]
    dsd = load_folder_or_hub(dataset)
    model = SemSimModel.from_pretrained(folder)
    comparison = {s: compare_on_split(model, dsd[s]) for s in ("validation", "test") if s in dsd}
    info = json.loads((folder / "training_info.json").read_text())
    write_model_card(folder, dataset=str(dataset), training_info=info, splits=dsd, comparison=comparison)
