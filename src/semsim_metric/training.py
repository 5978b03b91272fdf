"""Training SemSim with ``transformers.Trainer``: the paper recipe, CPU-feasible recipes, calibration.

``train()`` (and ``semsim train``) reads a dataset in the SemSim schema (folder or Hub id), samples
triplets per epoch, trains :class:`~semsim_metric.SemSimModel` with ``Trainer`` (single process, DDP
under ``torchrun``, bf16 on GPU, resume from the last checkpoint), validates each epoch (triplet
accuracy and ROC-AUC of the distance for recognised vs not), fits the calibration
P(recognised | distance) on the validation split and writes a Hub model folder with its card.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .modeling import SemSimConfig, SemSimModel
from .pretraining import PretrainSettings
from .vote_tuning import VoteTuningSettings

__all__ = ["RECIPES", "Recipe", "TrainResult", "fit_calibration", "get_recipe", "train", "validation_metrics"]


@dataclass(frozen=True)
class Recipe:
    """A training recipe. Every field can be overridden (``get_recipe("paper", epochs=30)``)."""

    name: str
    learning_rate: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 64
    epochs: int = 100
    #: learning-rate drops (x ``gamma``) at these fractions of training (paper: epochs 37, 62, 87 of 100)
    milestones: tuple[float, ...] = (0.37, 0.62, 0.87)
    gamma: float = 0.1
    margin: float = 1.0
    augment: bool = True
    seed: int = 23333
    base_width: int = 64
    global_loss_weight: float = 0.0
    #: stage 1 (see :mod:`semsim_metric.pretraining`): class-supervised backbone pre-training; 0 = off
    pretrain_epochs: float = 0.0
    pretrain_source: str = "fashion-mnist"
    pretrain_split: str = "train"
    pretrain_noise: float = 0.3
    #: stage 2 (see :mod:`semsim_metric.vote_tuning`): learn the annotators' answers; 0 = off
    vote_epochs: int = 0
    vote_learning_rate: float = 0.01
    vote_distance_weight: float = 0.0
    vote_noise: float = 0.3
    #: "pooled" (the paper) or "spatial" (flattened last feature map); see SemSimConfig
    embedding: str = "pooled"
    description: str = ""

    def pretrain_settings(self) -> PretrainSettings | None:
        """Stage-1 settings, or ``None`` when the recipe does not pre-train."""
        if self.pretrain_epochs <= 0:
            return None
        return PretrainSettings(source=self.pretrain_source, split=self.pretrain_split, epochs=self.pretrain_epochs,
                                noise=self.pretrain_noise, seed=self.seed)

    def vote_settings(self) -> VoteTuningSettings | None:
        """Stage-2 settings, or ``None`` when the recipe does not tune on votes."""
        if self.vote_epochs <= 0:
            return None
        return VoteTuningSettings(epochs=self.vote_epochs, learning_rate=self.vote_learning_rate,
                                  distance_weight=self.vote_distance_weight, noise=self.vote_noise, seed=self.seed)

    def milestone_epochs(self) -> list[int]:
        return [round(m * self.epochs) for m in self.milestones]


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        description="The paper's recipe: CIFAR ResNet-18 width 64, SGD lr 0.05 momentum 0.9 Nesterov, wd 5e-4, "
        "64 triplets per batch, 100 epochs, lr x0.1 at epochs 37/62/87, margin 1.0, crop+flip, seed 23333.",
    ),
    "cpu": Recipe(
        name="cpu", epochs=24, base_width=32,
        description="The paper's loss and optimiser on a CPU budget: width 32, 24 epochs, lr x0.1 at 37/62/87% "
        "of training.",
    ),
    "judged": Recipe(
        name="judged", epochs=24, base_width=32, global_loss_weight=1.0,
        description="The cpu recipe plus a global soft-label loss: binary cross-entropy between "
        "sigmoid((1 - d) / 0.25) and the share of annotators who recognised each positive and negative, which "
        "puts distances of different originals on one scale (weight 1.0).",
    ),
    "semantic": Recipe(
        name="semantic", epochs=0, base_width=16, embedding="spatial", pretrain_epochs=6.0, vote_epochs=4,
        description="Two stages, no triplets. 1: the backbone learns the image domain's classes (Fashion-MNIST train "
        "split, 6 epochs, crop/flip + Gaussian noise; images equal to annotated originals excluded). 2: vote tuning: "
        "it learns the distribution of the annotators' answers (a class or 'cannot recognise') for every "
        "reconstruction and the answers for its original (4 epochs, SGD lr 0.01, cosine, crop/flip + noise). "
        "Width 16; the embedding is the flattened last feature map ('spatial').",
    ),
    "quick": Recipe(
        name="quick", epochs=2, base_width=8, batch_size=16, milestones=(),
        description="A smoke-test recipe for CPUs: width 8, 2 epochs, batch 16.",
    ),
}


def get_recipe(name: str, **overrides: Any) -> Recipe:
    """Return the named recipe with ``overrides`` applied (unknown fields raise ``TypeError``).

    ``name`` may carry overrides itself, ``"<recipe>:<field>=<value>,<field>=<value>"``, which is how the
    command line names variants (``--recipe semantic:embedding=pooled``); the variant keeps the whole
    string as its name.

    Example:
        >>> r = get_recipe("semantic:embedding=pooled,vote_epochs=2")
        >>> r.name, r.embedding, r.vote_epochs
        ('semantic:embedding=pooled,vote_epochs=2', 'pooled', 2)
    """
    base, _, spec = name.partition(":")
    if base not in RECIPES:
        raise ValueError(f"unknown recipe {base!r}; choose one of {sorted(RECIPES)}.")
    fields = {f.name for f in dataclasses.fields(Recipe)}
    from_spec = _parse_recipe_spec(RECIPES[base], spec) if spec else {}
    bad = sorted((set(overrides) | set(from_spec)) - fields)
    if bad:
        raise TypeError(f"unknown recipe field(s) {bad}; valid fields: {sorted(fields - {'name'})}.")
    changes = {**from_spec, **{k: v for k, v in overrides.items() if v is not None}}
    return dataclasses.replace(RECIPES[base], **changes, **({"name": name} if spec else {}))


def _parse_recipe_spec(recipe: Recipe, spec: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in spec.split(","):
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"recipe variant {spec!r}: write <field>=<value>[,<field>=<value>], got {item!r}.")
        if not hasattr(recipe, key):
            out[key] = text  # reported as an unknown field by the caller
            continue
        current = getattr(recipe, key)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1")
            elif isinstance(current, tuple):
                out[key] = tuple(float(v) for v in text.split("/") if v)
            else:
                out[key] = type(current)(text)
        except ValueError:
            raise ValueError(f"recipe variant {spec!r}: {key} needs a value of type {type(current).__name__}, got {text!r}.") from None
    return out


@dataclass
class TrainResult:
    """What ``train()`` produced."""

    output_dir: Path
    recipe: Recipe
    validation: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] = field(default_factory=dict)
    train_loss: float = math.nan
    train_seconds: float = math.nan


# ----------------------------------------------------------------------------------- validation
def pair_distances(model: SemSimModel, ds: Any, *, batch_size: int = 256) -> np.ndarray:
    """SemSim distance of every (reconstruction, original) row of a schema split."""
    from .data.triplets import decode_image, stack_images
    from .functional import _semsim_update

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    cols = ds.select_columns(["original", "reconstruction"])
    with torch.inference_mode():
        for start in range(0, len(ds), batch_size):
            chunk = cols[start:start + batch_size]
            origs = stack_images([decode_image(v) for v in chunk["original"]])
            recs = stack_images([decode_image(v) for v in chunk["reconstruction"]])
            d = _semsim_update(recs.to(device), origs.to(device), model, data_range=255)
            out.append(d.float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out)


def validation_metrics(model: SemSimModel, ds: Any, *, seed: int = 0) -> dict[str, float]:
    """Triplet accuracy (fixed epoch-0 triplets) and ROC-AUC of -distance for recognised vs not."""
    from sklearn.metrics import roc_auc_score

    from .data.triplets import TripletDataset

    dist = pair_distances(model, ds)
    recognized = np.asarray(ds["recognized"], dtype=bool)
    metrics: dict[str, float] = {"mean_distance": float(dist.mean())}
    if recognized.any() and (~recognized).any():
        metrics["roc_auc"] = float(roc_auc_score(recognized, -dist))
    try:
        trip = TripletDataset(ds, seed=seed)
    except ValueError:
        return metrics
    ids = list(ds["original_id"])
    correct = 0
    for i in range(len(trip)):
        oid, pos, neg = trip.draw(i)
        if ids[neg] == oid:
            d_neg = float(dist[neg])
        else:  # fallback negative of another original: measure it against this anchor
            d_neg = _distance_of(model, trip.images[trip.original_index[oid]], trip.images[trip.rec_image[neg]])
        correct += float(dist[pos]) < d_neg
    metrics["triplet_accuracy"] = correct / len(trip)
    return metrics


def _distance_of(model: SemSimModel, a: torch.Tensor, b: torch.Tensor) -> float:
    from .data.triplets import stack_images
    from .functional import _semsim_update

    device = next(model.parameters()).device
    with torch.inference_mode():
        batch = stack_images([a, b])
        return float(_semsim_update(batch[1:].to(device), batch[:1].to(device), model, data_range=255)[0])


def fit_calibration(distances: np.ndarray, recognized: np.ndarray, *, fitted_on: str) -> dict[str, Any]:
    """Logistic fit of P(recognised | distance) = sigmoid(intercept + slope * distance)."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(recognized, dtype=int)
    if y.min() == y.max():
        raise ValueError("calibration needs both recognised and unrecognised rows.")
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(np.asarray(distances).reshape(-1, 1), y)
    return {"intercept": float(lr.intercept_[0]), "slope": float(lr.coef_[0, 0]), "fitted_on": fitted_on,
            "n": int(len(y))}


# -------------------------------------------------------------------------------------- training
def _load_splits(dataset: str | os.PathLike[str], revision: str | None = None) -> Any:
    import datasets

    from .data.loading import check_schema, load_folder_or_hub

    try:
        dsd = load_folder_or_hub(dataset, revision=revision)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as err:
        raise ValueError(f"cannot load dataset {dataset!r}: {err}") from err
    if "train" not in dsd:
        raise ValueError(f"dataset {dataset!r} has no 'train' split (it has {list(dsd)}).")
    for split in dsd.values():
        check_schema(split)
    if any(k != "none" for k in set(dsd["train"]["annotator_kind"])) is False:
        raise ValueError(f"dataset {dataset!r} is not annotated yet (annotator_kind 'none'); import votes first.")
    return dsd


def _build_trainer(model: SemSimModel, train_set: Any, val_split: Any, recipe: Recipe, output_dir: Path,
                   *, bf16: bool, report_to: str, logging_steps: int, dataloader_workers: int) -> Any:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from .data.triplets import TripletCollator

    class _EpochSampling(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003, ANN201
            train_set.set_epoch(int(round(state.epoch or 0)))

    class SemSimTrainer(Trainer):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):  # noqa: ANN001, ANN201
            if val_split is None:
                return {}
            metrics = validation_metrics(self.model, val_split, seed=recipe.seed)
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
            self.log(metrics)
            return metrics

    steps_per_epoch = max(1, math.ceil(len(train_set) / recipe.batch_size))
    total_steps = steps_per_epoch * recipe.epochs
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.learning_rate, momentum=recipe.momentum,
                                nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    drops = [m * steps_per_epoch for m in recipe.milestone_epochs()]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: recipe.gamma ** sum(step >= d for d in drops))
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        per_device_train_batch_size=recipe.batch_size,
        num_train_epochs=recipe.epochs,
        max_steps=total_steps,
        seed=recipe.seed,
        data_seed=recipe.seed,
        eval_strategy="epoch" if val_split is not None else "no",
        save_strategy="epoch",
        save_total_limit=2,
        logging_steps=logging_steps,
        report_to=report_to,
        remove_unused_columns=False,
        dataloader_num_workers=dataloader_workers,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        full_determinism=not torch.cuda.is_available(),
        disable_tqdm=False,
        label_names=[],
    )
    return SemSimTrainer(
        model=model, args=args, train_dataset=train_set, eval_dataset=val_split, data_collator=TripletCollator(model.config, augment=recipe.augment),
        optimizers=(optimizer, scheduler), callbacks=[_EpochSampling()],
    )


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
    **overrides: Any,
) -> TrainResult:
    """Train SemSim on a dataset in the SemSim schema and write a Hub model folder.

    Args:
        dataset: dataset folder or Hub id with a ``train`` split (``validation``/``test`` used when present).
        output_dir: model folder to write (``config.json``, ``model.safetensors``, ``README.md``;
            checkpoints go to ``output_dir/checkpoints``).
        recipe: a name in :data:`RECIPES` (``"paper"``, ``"cpu"``, ``"judged"``, ``"semantic"``, ``"quick"``) or a
            :class:`Recipe`.
        backbone: a transformers model id/folder whose architecture (and weights) replace the CIFAR
            ResNet-18, e.g. ``"microsoft/resnet-18"`` (needs the files locally or online).
        resume: ``True`` resumes from the last checkpoint in ``output_dir/checkpoints``; a path resumes
            from that checkpoint.
        bf16: mixed precision (default: on when a CUDA GPU with bf16 is present).
        report_to: Trainer reporting integrations ("none", "tensorboard", "wandb", ...).
        pretrain_cache: folder caching stage-1 backbones of recipes that pre-train (default
            ``output_dir/pretrained``); runs with identical settings reuse one.
        overrides: recipe fields to change (``epochs=10``, ``base_width=16``, ...).

    Example:
        >>> from semsim_metric.training import train  # doctest: +SKIP
        >>> result = train("hub/fmnist-judged-v1", "runs/quick", recipe="quick")  # doctest: +SKIP
    """
    import time

    from transformers import set_seed

    from .data.triplets import TripletDataset

    rec = recipe if isinstance(recipe, Recipe) else get_recipe(recipe, **overrides)
    if isinstance(recipe, Recipe) and overrides:
        rec = dataclasses.replace(recipe, **overrides)
    output_dir = Path(output_dir)
    dsd = _load_splits(dataset, revision)
    set_seed(rec.seed)
    train_set = TripletDataset(dsd["train"], seed=rec.seed)
    val_split = dsd["validation"] if "validation" in dsd else None
    if init_from is not None:
        if backbone is not None:
            raise ValueError("pass either backbone= or init_from=, not both (init_from keeps its own backbone).")
        model = SemSimModel.from_pretrained(init_from)
        model.config.margin = rec.margin
        model.config.global_loss_weight = rec.global_loss_weight
        model.config.calibration = None
        rec = dataclasses.replace(rec, base_width=model.config.base_width, embedding=model.config.embedding)
        model.train()
    else:
        model = SemSimModel(_make_config(rec, backbone))
    if backbone is not None:
        from .backbones import TransformersBackbone

        model.backbone = TransformersBackbone(model.config.backbone_config, pretrained_id=backbone)
    pretraining: dict[str, Any] | None = None
    vote_tuning: dict[str, Any] | None = None
    head = None
    settings = rec.pretrain_settings()
    if settings is not None and init_from is None:
        from .pretraining import pretrain_cached

        pretraining, head = pretrain_cached(model, settings, pretrain_cache or output_dir / "pretrained",
                                            exclude_images=_unique_originals(dsd))
    vote_settings = rec.vote_settings()
    if vote_settings is not None:
        from .vote_tuning import tune_on_votes

        vote_tuning, _ = tune_on_votes(model, dsd["train"], vote_settings, head=head)
    model.train()
    if bf16 is None:
        bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    start = time.perf_counter()
    if rec.epochs > 0:
        trainer = _build_trainer(model, train_set, val_split, rec, output_dir, bf16=bf16, report_to=report_to,
                                 logging_steps=logging_steps, dataloader_workers=dataloader_workers)
        resume_arg: bool | str | None = None
        if resume:
            ckpt_dir = output_dir / "checkpoints"
            has_ckpt = ckpt_dir.is_dir() and any(p.name.startswith("checkpoint-") for p in ckpt_dir.iterdir())
            resume_arg = resume if isinstance(resume, str) else (True if has_ckpt else None)
        train_loss = float(trainer.train(resume_from_checkpoint=resume_arg).training_loss)
        model = trainer.model
        main_process = trainer.is_world_process_zero()
    else:  # the recipe ends with stage 1/2
        train_loss = vote_tuning["final_loss"] if vote_tuning else math.nan
        main_process = int(os.environ.get("RANK", "0")) == 0
    seconds = time.perf_counter() - start + sum(s["seconds"] for s in (pretraining, vote_tuning) if s)
    model.eval()
    result = TrainResult(output_dir=output_dir, recipe=rec, train_loss=train_loss, train_seconds=seconds)
    if not main_process:
        return result
    if val_split is not None:
        result.validation = validation_metrics(model, val_split, seed=rec.seed)
        dist = pair_distances(model, val_split)
        recognized = np.asarray(val_split["recognized"], dtype=bool)
        if recognized.any() and (~recognized).any():
            kinds = sorted(set(val_split["annotator_kind"]))
            model.config.calibration = fit_calibration(
                dist, recognized, fitted_on=f"validation split of {dataset} (annotator_kind: {', '.join(kinds)})")
    if "test" in dsd:
        result.test = validation_metrics(model, dsd["test"], seed=rec.seed)
    model.to("cpu").float()
    model.save_pretrained(output_dir, dtype=weights_dtype)
    training_info = {"recipe": dataclasses.asdict(rec), "dataset": str(dataset), "train_loss": result.train_loss,
                     "train_seconds": seconds, "validation": result.validation, "test": result.test,
                     "device": "cuda" if torch.cuda.is_available() else "cpu", "bf16": bf16,
                     "triplet_stats": train_set.stats, "torch": torch.__version__,
                     "init_from": str(init_from) if init_from is not None else None, "pretraining": pretraining,
                     "vote_tuning": vote_tuning}
    (output_dir / "training_info.json").write_text(json.dumps(training_info, indent=2))
    if write_card:
        from .model_card import write_model_card

        write_model_card(output_dir, dataset=str(dataset), training_info=training_info, splits=dsd)
    return result


def _unique_originals(dsd: Any) -> list[torch.Tensor]:
    """Every distinct original image of every split (for the pre-training leakage guard)."""
    import datasets

    from .data.triplets import decode_image

    seen: dict[str, torch.Tensor] = {}
    for split in dsd.values():
        raw = split.select_columns(["original_id", "original"]).cast_column("original", datasets.Image(decode=False))
        for oid, image in zip(raw["original_id"], raw["original"]):
            if oid not in seen:
                seen[oid] = decode_image(image)
    return list(seen.values())


def _make_config(rec: Recipe, backbone: str | None) -> SemSimConfig:
    if backbone is None:
        return SemSimConfig(base_width=rec.base_width, margin=rec.margin, global_loss_weight=rec.global_loss_weight,
                            embedding=rec.embedding)
    from transformers import AutoConfig

    bcfg = AutoConfig.from_pretrained(backbone)
    mean = getattr(bcfg, "image_mean", None)
    return SemSimConfig(backbone="transformers", backbone_config=bcfg.to_dict(), margin=rec.margin,
                        global_loss_weight=rec.global_loss_weight,
                        **({"image_mean": mean, "image_std": bcfg.image_std} if mean else {}))


# ------------------------------------------------------------------------------------------- CLI
def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim train`` to the command line."""
    p = sub.add_parser("train", help="train SemSim on an annotated dataset",
                       description="Train SemSim with transformers Trainer and write a Hub model folder.")
    p.add_argument("--dataset", required=True, help="dataset folder or Hub id in the SemSim schema")
    p.add_argument("--output", required=True, type=Path, help="model folder to write")
    p.add_argument("--recipe", default="paper",
                   help=f"training recipe: {', '.join(sorted(RECIPES))} (default paper), or a variant such as "
                        "semantic:vote_epochs=2,embedding=pooled")
    p.add_argument("--backbone", default=None, help="transformers vision model id/folder to use as backbone")
    p.add_argument("--init-from", default=None,
                   help="SemSim model folder or Hub id to fine-tune (e.g. the default model on new annotations)")
    p.add_argument("--resume", action="store_true", help="resume from the last checkpoint in OUTPUT/checkpoints")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--base-width", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--margin", type=float, default=None)
    p.add_argument("--global-loss-weight", type=float, default=None)
    p.add_argument("--pretrain-epochs", type=float, default=None,
                   help="stage-1 class-supervised pre-training epochs (semantic recipe: 6; 0 turns it off)")
    p.add_argument("--pretrain-source", default=None,
                   help="labelled images for stage 1: fashion-mnist (default), hf:<dataset id> or a class-folder path")
    p.add_argument("--no-augment", action="store_true", help="turn crop+flip augmentation off")
    p.add_argument("--report-to", default="none", help="Trainer integrations, e.g. tensorboard (default none)")
    p.add_argument("--fp16-weights", action="store_true", help="store the final weights in float16")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    from .cli import CLIError

    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                 "base_width": args.base_width, "seed": args.seed, "margin": args.margin,
                 "global_loss_weight": args.global_loss_weight, "pretrain_epochs": args.pretrain_epochs,
                 "pretrain_source": args.pretrain_source}
    if args.no_augment:
        overrides["augment"] = False
    try:
        result = train(args.dataset, args.output, recipe=args.recipe, backbone=args.backbone, init_from=args.init_from,
                       resume=args.resume,
                       report_to=args.report_to, weights_dtype=torch.float16 if args.fp16_weights else None,
                       **overrides)
    except (ValueError, TypeError, OSError) as err:
        raise CLIError(str(err)) from err
    print(f"model written to {result.output_dir} (train loss {result.train_loss:.4f}, "
          f"{result.train_seconds:.0f} s)")
    for name, metrics in (("validation", result.validation), ("test", result.test)):
        if metrics:
            print(f"{name}: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return 0
