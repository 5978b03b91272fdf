"""``train()``: a recipe's stages in order, through the one ``Trainer``, then calibration and the model folder.

``train()`` reads a dataset in the SemSim schema (folder or Hub id) and runs the recipe's stages
(``Recipe.stages``):

1. ``classes`` (``recipe.pretrain.epochs > 0``, not with ``init_from``): class-supervised backbone pre-training,
   cached;
2. ``votes`` (``recipe.vote_tuning.epochs > 0``): learning the annotators' answers;
3. ``triplets`` (``recipe.triplets.epochs > 0``): the paper's triplet loss, validated every epoch.

Every stage runs through ``semsim_metric.training.trainer.run_stage`` (``transformers.Trainer``:
resume, bf16, DDP under ``torchrun``, logging). Afterwards the calibration P(recognised | distance) is
fitted on the validation split and a Hub model folder is written with its card. What is learnt is the
``Recipe``; how the run goes (where it starts from, what it writes, how the ``Trainer`` runs) is ``TrainOptions``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._progress import logger
from ..data.loading import check_schema, load_folder_or_hub, unique_originals
from ..data.triplets import TripletDataset
from ..errors import InvalidInputError, InvalidInputTypeError
from ..models import SemSimConfig, SemSimModel
from ..models.configuration_semsim import check_layout_channels, check_layout_size, check_layout_weight
from ..outputs import atomic_write_text
from ..preprocessing import to_model_input_for
from .calibration import fit_calibration
from .recipes import Recipe, get_recipe
from .trainer import TrainerOptions, is_main_process, run_stage
from .validation import pair_distances, validation_metrics

__all__ = ["TinyDatasetWarning", "TrainOptions", "TrainResult", "resolve_recipe", "train"]

#: fewest validation rows (and rows of each class) a calibration is fitted on
MIN_CALIBRATION_ROWS = 30
MIN_CALIBRATION_PER_CLASS = 5
#: fewer rows than this in a validation or test split raise a ``TinyDatasetWarning``
MIN_EVALUATION_ROWS = 30


class TinyDatasetWarning(UserWarning):
    """A split too small for its numbers (or a calibration fitted on it) to mean much."""


@dataclass(frozen=True)
class TrainOptions:
    """How ``train()`` runs - where it starts from, what it writes, how the ``Trainer`` runs - as opposed to what
    it learns (the ``Recipe``).

    Attributes:
        backbone: a transformers model id/folder whose architecture (and weights) replace the CIFAR ResNet-18,
            e.g. ``"microsoft/resnet-18"`` (needs the files locally or online).
        init_from: a SemSim model folder or Hub id to fine-tune (keeps its architecture; skips class pre-training).
        resume: ``True`` resumes every stage from its newest complete checkpoint (finished stages are loaded); a
            path resumes the triplet stage from that checkpoint.
        revision: the dataset's revision (Hub ids).
        pretrain_cache: folder caching stage-1 backbones (default ``output_dir/pretrained``); runs with identical
            settings reuse one.
        write_card: write ``README.md`` (SemSim's own validation/test results; ``semsim train`` adds baselines).
        weights_dtype: store the final weights in this dtype (e.g. ``torch.float16``).
        trainer: how every stage's ``Trainer`` runs (``TrainerOptions``: bf16, reporting, logging, progress).

    Raises:
        ValueError: both ``backbone`` and ``init_from`` (``init_from`` keeps its own backbone).
    """

    backbone: str | None = None
    init_from: str | os.PathLike[str] | None = None
    resume: bool | str = False
    revision: str | None = None
    pretrain_cache: str | os.PathLike[str] | None = None
    write_card: bool = True
    weights_dtype: torch.dtype | None = None
    trainer: TrainerOptions = field(default_factory=TrainerOptions)

    def __post_init__(self) -> None:
        if self.backbone is not None and self.init_from is not None:
            raise InvalidInputError(
                "pass either backbone= or init_from=, not both (init_from keeps its own backbone)."
            )


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
        raise InvalidInputError(f"cannot load dataset {dataset!r}: {err}") from err
    if "train" not in dsd:
        raise InvalidInputError(f"dataset {dataset!r} has no 'train' split (it has {list(dsd)}).")
    for split in dsd.values():
        check_schema(split)
    if all(k == "none" for k in set(dsd["train"]["annotator_kind"])):
        raise InvalidInputError(
            f"dataset {dataset!r} is not annotated yet (annotator_kind 'none'); import votes first."
        )
    # rows nobody annotated yet (a campaign in progress) have no votes: they are neither recognised nor not
    for name in list(dsd):
        kinds = dsd[name]["annotator_kind"]
        unannotated = sum(1 for k in kinds if k == "none")
        if unannotated:
            logger.warning(
                "training on %s: leaving out %d of %d rows of the %s split that have no votes yet "
                "(annotator_kind 'none')",
                dataset,
                unannotated,
                len(kinds),
                name,
            )
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
            x = stack_at_model_size(originals[start : start + 256], data_range=255, image_size=cfg.image_size)
            x = to_model_input_for(cfg, x, data_range=1.0)
            # the network's part only: the layout part (config.layout_weight) says nothing about the image domain
            chunks.append(model.embed(x.to(device))[:, : cfg.network_embedding_dim].float().cpu())
    model.train(was_training)
    return summarise_domain(originals, torch.cat(chunks), description=description)


def _make_config(rec: Recipe, backbone: str | None) -> SemSimConfig:
    if backbone is None:
        return SemSimConfig(base_width=rec.base_width, embedding=rec.embedding)
    from transformers import AutoConfig

    bcfg = AutoConfig.from_pretrained(backbone)
    mean = getattr(bcfg, "image_mean", None)
    return SemSimConfig(
        backbone="transformers",
        backbone_config=bcfg.to_dict(),
        **({"image_mean": mean, "image_std": bcfg.image_std} if mean else {}),
    )


def resolve_recipe(recipe: str | Recipe, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """``recipe`` - a name in ``RECIPES``, a variant ``"name:field=value,..."`` or a ``Recipe`` - with ``overrides``
    (flat field names, ``None`` = not given) applied.

    Raises:
        TypeError: an unknown field, or a run option (``write_card``, ``logging_steps``, ...) passed as a recipe
            field (the message says how to pass it).
        ValueError: an unknown recipe or a malformed variant.

    Examples:
        >>> resolve_recipe("quick", {"epochs": 1}).triplets.epochs
        1
        >>> resolve_recipe("quick", {"write_card": False})
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputTypeError: write_card is a run option, not a recipe field: pass options=TrainOptions(write_card=...).
    """
    overrides = dict(overrides or {})
    for name in overrides:
        if name in _RUN_OPTIONS:
            raise InvalidInputTypeError(
                f"{name} is a run option, not a recipe field: pass options=TrainOptions({name}=...)."
            )
        if name in _TRAINER_OPTIONS:
            raise InvalidInputTypeError(
                f"{name} is a Trainer option, not a recipe field: pass "
                f"options=TrainOptions(trainer=TrainerOptions({name}=...))."
            )
    if isinstance(recipe, Recipe):
        changes = {k: v for k, v in overrides.items() if v is not None}
        return recipe.with_changes(**changes) if changes else recipe
    return get_recipe(recipe, **overrides)


_RUN_OPTIONS = frozenset(f.name for f in dataclasses.fields(TrainOptions)) - {"trainer"}
_TRAINER_OPTIONS = frozenset(f.name for f in dataclasses.fields(TrainerOptions))


def train(
    dataset: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    recipe: str | Recipe = "paper",
    options: TrainOptions | None = None,
    **overrides: Any,
) -> TrainResult:
    """Train SemSim on a dataset in the SemSim schema and write a Hub model folder.

    Args:
        dataset: dataset folder or Hub id with a ``train`` split (``validation``/``test`` used when present).
        output_dir: model folder to write (``config.json``, ``model.safetensors``, ``README.md``,
            ``training_info.json``; checkpoints go to ``output_dir/checkpoints/<stage>``).
        recipe: what is learnt: a name in ``RECIPES`` (``"paper"``, ``"cpu"``, ``"judged"``, ``"semantic"``,
            ``"colour"``, ``"quick"``), a variant ``"name:field=value,..."`` or a ``Recipe``.
        options: how the run goes (``TrainOptions``: backbone, init_from, resume, cache, card, Trainer options).
        overrides: recipe fields to change, by their flat names (``epochs=10``, ``base_width=16``, ...).

    With ``options.resume``, each stage continues from its newest complete checkpoint (one a kill left incomplete
    is skipped, named in a warning).

    Raises:
        ValueError: the dataset cannot be loaded, has no ``train`` split or is not annotated; an unknown recipe.
        TypeError: an unknown recipe field (or a run option passed as one).
        IncompleteOutputError: with ``resume``, a finished stage's ``info.json`` (or a pre-training cache entry's
            ``pretraining.json``) is damaged; the message names the file and the folder to delete to retrain.

    Examples:
        >>> result = train("hub/fmnist-judged-v1", "runs/quick", recipe="quick", epochs=1)  # doctest: +SKIP
    """
    from transformers import set_seed

    options = options or TrainOptions()
    rec = resolve_recipe(recipe, overrides)
    output_dir = Path(output_dir)
    dsd = load_training_splits(dataset, options.revision)
    set_seed(rec.seed)
    train_set = TripletDataset(dsd["train"], seed=rec.seed) if rec.triplets.epochs > 0 else None
    model, rec = _initial_model(rec, options)
    # the layout's fields are refused before the stages run, not after (the model records them whatever the weight)
    check_layout_channels(rec.layout_channels)
    if rec.layout_weight > 0:
        check_layout_size(rec.layout_size, model.config.image_size)
    stages = _run_stages(model, rec, dsd, train_set, output_dir, options)
    model.eval()
    # the stages trained the network alone; the layout joins the embedding before calibration
    model.config.layout_size = rec.layout_size
    model.config.layout_channels = rec.layout_channels
    model.config.layout_weight = check_layout_weight(rec.layout_weight)
    last = stages[list(stages)[-1]] if stages else {}
    result = TrainResult(
        output_dir=output_dir,
        recipe=rec,
        train_loss=float(last.get("final_loss", math.nan)),
        train_seconds=sum(s["seconds"] for s in stages.values()),
    )
    if not is_main_process():
        return result
    if "validation" in dsd:
        result.validation = _validate_and_calibrate(model, dsd["validation"], str(dataset), seed=rec.seed)
    _warn_about_small_splits(dsd, str(dataset))
    if "test" in dsd:
        logger.info("scoring the test split (%d rows)", len(dsd["test"]))
        result.test = validation_metrics(model, dsd["test"], seed=rec.seed)
    info = _save_model_folder(
        model,
        result,
        dsd,
        str(dataset),
        options,
        stages=stages,
        triplet_stats=train_set.stats if train_set is not None else None,
    )
    if options.write_card:
        from .model_card import write_model_card

        write_model_card(output_dir, dataset=str(dataset), training_info=info, splits=dsd)
    return result


def _initial_model(rec: Recipe, options: TrainOptions) -> tuple[SemSimModel, Recipe]:
    """The model the stages start from: the recipe's network, ``options.init_from`` (whose width and embedding the
    recipe then takes) or a transformers backbone; returns it with the recipe it is trained under."""
    if options.init_from is not None:
        model = SemSimModel.from_pretrained(options.init_from)
        model.config.calibration = None
        # the stages train the network alone; train() sets the recipe's weight afterwards
        model.config.layout_weight = 0.0
        rec = dataclasses.replace(rec, base_width=model.config.base_width, embedding=model.config.embedding)
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        model = SemSimModel(_make_config(rec, options.backbone))
    if options.backbone is not None:
        from ..models.backbones import TransformersBackbone

        model.backbone = TransformersBackbone(model.config.backbone_config, pretrained_id=options.backbone)
    return model, rec


def _run_stages(
    model: SemSimModel,
    rec: Recipe,
    dsd: Any,
    train_set: TripletDataset | None,
    output_dir: Path,
    options: TrainOptions,
) -> dict[str, dict[str, Any]]:
    """Train ``model`` in place through the recipe's stages in order; returns each stage's summary by name."""
    stages: dict[str, dict[str, Any]] = {}
    head = None
    if "classes" in rec.stages and options.init_from is None:
        from .stages.classes import pretrain_cached

        cache = options.pretrain_cache or output_dir / "pretrained"
        stages["classes"], head = pretrain_cached(
            model, rec.pretrain, cache, exclude_images=unique_originals(dsd), options=options.trainer
        )
    if "votes" in rec.stages:
        from .stages.votes import tune_on_votes

        offsets = (stages.get("classes") or {}).get("class_offsets")
        stages["votes"], _ = tune_on_votes(
            model,
            dsd["train"],
            rec.vote_tuning,
            head=head,
            class_offsets=offsets,
            output_dir=output_dir,
            resume=bool(options.resume),
            options=options.trainer,
        )
    if train_set is not None:
        from .stages.triplets import triplet_stage

        model.train()
        stage = triplet_stage(model, train_set, dsd.get("validation"), rec.triplets)
        stages["triplets"] = run_stage(stage, output_dir, resume=options.resume, options=options.trainer)
    return stages


def _validate_and_calibrate(
    model: SemSimModel, val_split: Any, dataset: str, *, seed: int
) -> dict[str, float]:
    """Validation metrics of ``model``; fits its calibration on ``val_split`` when the split is large enough (else a
    ``TinyDatasetWarning``)."""
    logger.info("validating on %d rows of the validation split and fitting the calibration", len(val_split))
    metrics = validation_metrics(model, val_split, seed=seed)
    recognized = np.asarray(val_split["recognized"], dtype=bool)
    each = min(int(recognized.sum()), int((~recognized).sum()))
    if len(recognized) >= MIN_CALIBRATION_ROWS and each >= MIN_CALIBRATION_PER_CLASS:
        kinds = sorted(set(val_split["annotator_kind"]))
        model.config.calibration = fit_calibration(
            pair_distances(model, val_split),
            recognized,
            fitted_on=f"validation split of {dataset} (annotator_kind: {', '.join(kinds)})",
        )
    else:
        warnings.warn(
            f"no calibration fitted: the validation split of {dataset} has {len(recognized)} rows "
            f"({each} in its smaller class); a calibration needs at least {MIN_CALIBRATION_ROWS} rows and "
            f"{MIN_CALIBRATION_PER_CLASS} of each class. output='probability' will be unavailable; use more "
            "annotated originals (or fit one later with semsim_metric.training.calibration.fit_calibration).",
            TinyDatasetWarning,
            stacklevel=3,
        )
    return metrics


def _warn_about_small_splits(dsd: Any, dataset: str) -> None:
    for name in ("validation", "test"):
        if name in dsd and len(dsd[name]) < MIN_EVALUATION_ROWS:
            warnings.warn(
                f"the {name} split of {dataset} has only {len(dsd[name])} rows (fewer than "
                f"{MIN_EVALUATION_ROWS}): its numbers say little. Annotate more originals.",
                TinyDatasetWarning,
                stacklevel=3,
            )


def _save_model_folder(
    model: SemSimModel,
    result: TrainResult,
    dsd: Any,
    dataset: str,
    options: TrainOptions,
    *,
    stages: dict[str, dict[str, Any]],
    triplet_stats: dict[str, int] | None,
) -> dict[str, Any]:
    """Record the training domain, save the model (on the CPU, in ``options.weights_dtype``) and its
    ``training_info.json`` into ``result.output_dir``; returns the training info."""
    output_dir = result.output_dir
    logger.info("recording the training domain and saving the model to %s", output_dir)
    model.config.training_domain = training_domain(
        model, dsd["train"], description=f"the annotated originals of {dataset}"
    )
    model.to("cpu").float()
    model.save_pretrained(output_dir, dtype=options.weights_dtype)
    training_info = {
        "recipe": result.recipe.flat(),
        "dataset": dataset,
        "train_loss": result.train_loss,
        "train_seconds": result.train_seconds,
        "validation": result.validation,
        "test": result.test,
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "bf16": options.trainer.use_bf16(),
        "triplet_stats": triplet_stats,
        "torch": torch.__version__,
        "init_from": str(options.init_from) if options.init_from is not None else None,
        "pretraining": stages.get("classes"),
        "vote_tuning": stages.get("votes"),
        "stages": list(stages),
        "trained_originals": sorted(set(dsd["train"]["original_id"])),
        # each stage's measured seconds per step and the duration estimated from them
        "estimates": {name: s.get("estimate", {}) for name, s in stages.items()},
    }
    atomic_write_text(output_dir / "training_info.json", json.dumps(training_info, indent=2))
    return training_info
