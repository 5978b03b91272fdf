"""``train()``: a recipe's stages in order, through the one ``Trainer``, then calibration and the model folder.

``train()`` reads a dataset in the SemSim schema (folder or Hub id) and runs the recipe's stages:

1. ``classes`` (when ``pretrain_epochs > 0``): class-supervised backbone pre-training, cached;
2. ``votes`` (when ``vote_epochs > 0``): learning the annotators' answers;
3. ``triplets`` (when ``epochs > 0``): the paper's triplet loss, validated every epoch.

Every stage runs through ``semsim_metric.training.trainer.run_stage`` (``transformers.Trainer``:
resume, bf16, DDP under ``torchrun``, logging). Afterwards the calibration P(recognised | distance) is
fitted on the validation split and a Hub model folder is written with its card.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.loading import check_schema, load_folder_or_hub, unique_originals
from ..data.triplets import TripletDataset
from ..models import SemSimConfig, SemSimModel
from ..outputs import atomic_write_text
from ..preprocessing import to_model_input
from .._progress import logger
from .calibration import fit_calibration

#: fewest validation rows (and rows of each class) a calibration is fitted on
MIN_CALIBRATION_ROWS = 30
MIN_CALIBRATION_PER_CLASS = 5
#: fewer rows than this in a validation or test split raise a ``TinyDatasetWarning``
MIN_EVALUATION_ROWS = 30


class TinyDatasetWarning(UserWarning):
    """A split too small for its numbers (or a calibration fitted on it) to mean much."""
from .optim import OptimiserSettings
from .recipes import Recipe, get_recipe
from .trainer import Stage, content_digest, is_main_process, run_stage
from .validation import pair_distances, validation_metrics

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    """What ``train()`` produced."""

    output_dir: Path
    recipe: Recipe
    validation: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    train_loss: float = math.nan
    train_seconds: float = math.nan


def load_training_splits(dataset: str | os.PathLike[str], revision: str | None = None) -> Any:
    """Load a dataset for training: it needs a ``train`` split in the SemSim schema with annotations."""
    import datasets

    try:
        dsd = load_folder_or_hub(dataset, revision=revision)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        raise ValueError(f"cannot load dataset {dataset!r}: {err}") from err
    if "train" not in dsd:
        raise ValueError(f"dataset {dataset!r} has no 'train' split (it has {list(dsd)}).")
    for split in dsd.values():
        check_schema(split)
    if all(k == "none" for k in set(dsd["train"]["annotator_kind"])):
        raise ValueError(f"dataset {dataset!r} is not annotated yet (annotator_kind 'none'); import votes first.")
    # rows nobody annotated yet (a campaign in progress) have no votes: they are neither recognised nor not
    for name in list(dsd):
        kinds = dsd[name]["annotator_kind"]
        unannotated = sum(1 for k in kinds if k == "none")
        if unannotated:
            logger.warning("training on %s: leaving out %d of %d rows of the %s split that have no votes yet "
                           "(annotator_kind 'none')", dataset, unannotated, len(kinds), name)
            keep = [i for i, k in enumerate(kinds) if k != "none"]
            if keep:
                dsd[name] = dsd[name].select(keep)
            else:
                del dsd[name]
    return dsd


def training_domain(model: SemSimModel, split: Any, *, description: str) -> dict[str, Any]:
    """The ``summarise_domain`` record of a split's distinct originals."""
    from ..domain import summarise_domain
    from ..preprocessing import stack_at_model_size

    originals = unique_originals({"train": split})
    cfg, device = model.config, next(model.parameters()).device
    was_training = model.training
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(originals), 256):
            x = stack_at_model_size(originals[start:start + 256], data_range=255, image_size=cfg.image_size)
            x = to_model_input(x, data_range=1.0, image_size=cfg.image_size, mean=cfg.image_mean, std=cfg.image_std)
            chunks.append(model.embed(x.to(device)).float().cpu())
    model.train(was_training)
    return summarise_domain(originals, torch.cat(chunks), description=description)


def _make_config(rec: Recipe, backbone: str | None) -> SemSimConfig:
    if backbone is None:
        return SemSimConfig(base_width=rec.base_width, embedding=rec.embedding)
    from transformers import AutoConfig

    bcfg = AutoConfig.from_pretrained(backbone)
    mean = getattr(bcfg, "image_mean", None)
    return SemSimConfig(backbone="transformers", backbone_config=bcfg.to_dict(),
                        **({"image_mean": mean, "image_std": bcfg.image_std} if mean else {}))


def triplet_stage(model: SemSimModel, train_set: TripletDataset, val_split: Any, rec: Recipe) -> Stage:
    """The paper's triplet stage of ``rec`` (SGD, lr drops at the recipe's milestone epochs)."""
    from .stages.triplets import TripletCollator, TripletObjective

    steps_per_epoch = max(1, math.ceil(len(train_set) / rec.batch_size))
    optimiser = OptimiserSettings(rec.learning_rate, momentum=rec.momentum, nesterov=rec.nesterov,
                                  weight_decay=rec.weight_decay, schedule="multistep", gamma=rec.gamma,
                                  milestones=tuple(e / rec.epochs for e in rec.milestone_epochs()))
    evaluate = (lambda: validation_metrics(model, val_split, seed=rec.seed)) if val_split is not None else None
    return Stage(name="triplets", objective=TripletObjective(model, margin=rec.margin,
                                                              global_loss_weight=rec.global_loss_weight),
                 dataset=train_set, collator=TripletCollator(model.config, augment=rec.augment), optimiser=optimiser,
                 batch_size=rec.batch_size, max_steps=steps_per_epoch * rec.epochs, seed=rec.seed, drop_last=False,
                 max_grad_norm=1.0, evaluate=evaluate,
                 settings={"margin": rec.margin, "global_loss_weight": rec.global_loss_weight, "augment": rec.augment,
                           "seed": rec.seed,
                           "triplets": content_digest([train_set.triplets, train_set.share, train_set.rec_image])})


def train(
    dataset: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    recipe: str | Recipe = "paper",
    backbone: str | None = None,
    init_from: str | os.PathLike[str] | None = None,
    resume: bool | str = False,
    revision: str | None = None,
    bf16: bool | None = None,
    report_to: str = "none",
    logging_steps: int = 10,
    dataloader_workers: int = 0,
    pretrain_cache: str | os.PathLike[str] | None = None,
    write_card: bool = True,
    weights_dtype: torch.dtype | None = None,
    progress: bool = True,
    **overrides: Any,
) -> TrainResult:
    """Train SemSim on a dataset in the SemSim schema and write a Hub model folder.

    Args:
        dataset: dataset folder or Hub id with a ``train`` split (``validation``/``test`` used when present).
        output_dir: model folder to write (``config.json``, ``model.safetensors``, ``README.md``;
            checkpoints go to ``output_dir/checkpoints/<stage>``).
        recipe: a name in ``RECIPES`` (``"paper"``, ``"cpu"``, ``"judged"``,
            ``"semantic"``, ``"quick"``), a variant ``"name:field=value,..."`` or a ``Recipe``.
        backbone: a transformers model id/folder whose architecture (and weights) replace the CIFAR
            ResNet-18, e.g. ``"microsoft/resnet-18"`` (needs the files locally or online).
        init_from: a SemSim model folder or Hub id to fine-tune (skips class pre-training).
        resume: ``True`` resumes every stage from its last checkpoint (finished stages are loaded); a path
            resumes the triplet stage from that checkpoint.
        bf16: mixed precision (default: on when a CUDA GPU with bf16 is present).
        report_to: Trainer reporting integrations ("none", "tensorboard", "wandb", ...).
        pretrain_cache: folder caching stage-1 backbones of recipes that pre-train (default
            ``output_dir/pretrained``); runs with identical settings reuse one.
        write_card: write ``README.md`` (SemSim's own validation/test results; ``semsim train`` adds baselines).
        weights_dtype: store the final weights in this dtype (e.g. ``torch.float16``).
        progress: show progress bars.
        overrides: recipe fields to change (``epochs=10``, ``base_width=16``, ...).

    With ``resume``, a checkpoint that a killed run left incomplete is skipped (named in a warning) and each stage
    continues from its newest complete checkpoint.

    Raises:
        ValueError: the dataset cannot be loaded, has no ``train`` split, is not annotated, or options conflict.
        IncompleteOutputError: with ``resume``, a finished stage's ``info.json`` (or a pre-training cache entry's
            ``pretraining.json``) is damaged; the message names the file and the folder to delete to retrain.

    Examples:
        >>> from semsim_metric.training import train  # doctest: +SKIP
        >>> result = train("hub/fmnist-judged-v1", "runs/quick", recipe="quick")  # doctest: +SKIP
    """
    from transformers import set_seed

    rec = recipe if isinstance(recipe, Recipe) else get_recipe(recipe, **overrides)
    if isinstance(recipe, Recipe) and overrides:
        rec = dataclasses.replace(recipe, **overrides)
    output_dir = Path(output_dir)
    dsd = load_training_splits(dataset, revision)
    set_seed(rec.seed)
    train_set = TripletDataset(dsd["train"], seed=rec.seed) if rec.epochs > 0 else None
    val_split = dsd["validation"] if "validation" in dsd else None
    if init_from is not None:
        if backbone is not None:
            raise ValueError("pass either backbone= or init_from=, not both (init_from keeps its own backbone).")
        model = SemSimModel.from_pretrained(init_from)
        model.config.calibration = None
        rec = dataclasses.replace(rec, base_width=model.config.base_width, embedding=model.config.embedding)
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        model = SemSimModel(_make_config(rec, backbone))
    if backbone is not None:
        from ..models.backbones import TransformersBackbone

        model.backbone = TransformersBackbone(model.config.backbone_config, pretrained_id=backbone)
    if bf16 is None:
        bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    options = {"bf16": bf16, "report_to": report_to, "logging_steps": logging_steps,
               "dataloader_workers": dataloader_workers}
    stages: dict[str, dict[str, Any]] = {}
    head = None
    settings = rec.pretrain_settings()
    if settings is not None and init_from is None:
        from .stages.classes import pretrain_cached

        stages["classes"], head = pretrain_cached(model, settings, pretrain_cache or output_dir / "pretrained",
                                                  exclude_images=unique_originals(dsd), progress=progress, **options)
    vote_settings = rec.vote_settings()
    if vote_settings is not None:
        from .stages.votes import tune_on_votes

        offsets = (stages.get("classes") or {}).get("class_offsets")
        stages["votes"], _ = tune_on_votes(model, dsd["train"], vote_settings, head=head, class_offsets=offsets,
                                           progress=progress, output_dir=output_dir, resume=bool(resume), **options)
    if train_set is not None:
        model.train()
        stages["triplets"] = run_stage(triplet_stage(model, train_set, val_split, rec), output_dir, resume=resume,
                                       progress=progress, **options)
    seconds = sum(s["seconds"] for s in stages.values())
    last = stages[list(stages)[-1]] if stages else {}
    model.eval()
    result = TrainResult(output_dir=output_dir, recipe=rec, train_loss=float(last.get("final_loss", math.nan)),
                         train_seconds=seconds)
    if not is_main_process():
        return result
    if val_split is not None:
        logger.info("validating on %d rows of the validation split and fitting the calibration", len(val_split))
        result.validation = validation_metrics(model, val_split, seed=rec.seed)
        recognized = np.asarray(val_split["recognized"], dtype=bool)
        each = min(int(recognized.sum()), int((~recognized).sum()))
        if len(recognized) >= MIN_CALIBRATION_ROWS and each >= MIN_CALIBRATION_PER_CLASS:
            kinds = sorted(set(val_split["annotator_kind"]))
            model.config.calibration = fit_calibration(
                pair_distances(model, val_split), recognized,
                fitted_on=f"validation split of {dataset} (annotator_kind: {', '.join(kinds)})")
        else:
            warnings.warn(
                f"no calibration fitted: the validation split of {dataset} has {len(recognized)} rows "
                f"({each} in its smaller class); a calibration needs at least {MIN_CALIBRATION_ROWS} rows and "
                f"{MIN_CALIBRATION_PER_CLASS} of each class. output='probability' will be unavailable; use more "
                "annotated originals (or fit one later with semsim_metric.training.calibration.fit_calibration).",
                TinyDatasetWarning, stacklevel=2)
    for name in ("validation", "test"):
        if name in dsd and len(dsd[name]) < MIN_EVALUATION_ROWS:
            warnings.warn(f"the {name} split of {dataset} has only {len(dsd[name])} rows (fewer than "
                          f"{MIN_EVALUATION_ROWS}): its numbers say little. Annotate more originals.",
                          TinyDatasetWarning, stacklevel=2)
    if "test" in dsd:
        logger.info("scoring the test split (%d rows)", len(dsd["test"]))
        result.test = validation_metrics(model, dsd["test"], seed=rec.seed)
    logger.info("recording the training domain and saving the model to %s", output_dir)
    model.config.training_domain = training_domain(model, dsd["train"], description=f"the annotated originals of {dataset}")
    model.to("cpu").float()
    model.save_pretrained(output_dir, dtype=weights_dtype)
    training_info = {"recipe": dataclasses.asdict(rec), "dataset": str(dataset), "train_loss": result.train_loss,
                     "train_seconds": seconds, "validation": result.validation, "test": result.test,
                     "device": "cuda" if torch.cuda.is_available() else "cpu", "bf16": bf16,
                     "triplet_stats": train_set.stats if train_set is not None else None, "torch": torch.__version__,
                     "init_from": str(init_from) if init_from is not None else None,
                     "pretraining": stages.get("classes"), "vote_tuning": stages.get("votes"),
                     "stages": list(stages), "trained_originals": sorted(set(dsd["train"]["original_id"])),
                     # each stage's measured seconds per step and the duration estimated from them
                     "estimates": {name: s.get("estimate", {}) for name, s in stages.items()}}
    atomic_write_text(output_dir / "training_info.json", json.dumps(training_info, indent=2))
    if write_card:
        from .model_card import write_model_card

        write_model_card(output_dir, dataset=str(dataset), training_info=training_info, splits=dsd)
    return result
