"""Stage ``classes``: class-supervised pre-training of SemSim's backbone (stage 1 of ``semantic``).

People call a reconstruction "recognised" when they can name in it what they name in the original.
A backbone that already separates the classes of the image domain puts that judgement within reach of
the triplet stage; trained from scratch on a few hundred annotated originals it mostly learns pixel
similarity. Stage 1 therefore trains the backbone with a temporary linear classifier on a labelled image
source (default: the Fashion-MNIST *train* split; several sources joined by ``+``, e.g.
``fashion-mnist+emoji-scenes``, train on the union of their classes, each image brought to the model's size
by the input gate as at scoring time, smaller sources repeated so that each gives at least
``min_source_share`` of the largest), with per-image crop/flip augmentation plus Gaussian pixel noise of
random strength (``Augmentation``), which resembles what reconstruction attacks leave behind, and optionally
contrast, brightness and blur changes that people ignore. The
classifier is thrown away; only the backbone weights are kept. It trains through the package's one
``Trainer`` (``semsim_metric.training.trainer.run_stage``): resume, bf16, ``torchrun`` and logging.

Leakage guard: every pre-training image that is byte-identical to an original of the annotated dataset
is removed before training and the count is recorded, so held-out originals are never seen, not even
without their judgements.

The result is cached under a key of every setting that changes it, so held-out experiments that train
one model per protocol pre-train only once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...data.augmentation import Augmentation, item_seeds
from ...domain import image_fingerprint
from ...errors import InvalidInputError
from ...models import SemSimModel
from ...outputs import atomic_write_text
from ...preprocessing import stack_at_model_size, to_model_input_for
from ..optim import OptimiserSettings
from ..settings import PretrainSettings
from ..trainer import Stage, TrainerOptions, read_json_record, run_stage

__all__ = ["ClassObjective", "PretrainSettings", "pretrain_backbone", "pretrain_cache_key", "pretrain_cached"]


class ClassObjective(nn.Module):
    """Cross-entropy of a linear classifier on the backbone's pooled features. ``forward`` takes exactly the
    collator's keys (a misspelled batch key is a ``TypeError``, not a silently ignored input)."""

    def __init__(self, model: SemSimModel, n_classes: int) -> None:
        super().__init__()
        self.model = model
        self.head = nn.Linear(model.config.feature_dim, n_classes)

    def forward(self, pixel_values: Tensor, labels: Tensor) -> dict[str, Tensor]:
        logits = self.head(self.model.backbone.pooled(pixel_values))
        return {"loss": F.cross_entropy(logits, labels), "logits": logits}


class _ClassItems(torch.utils.data.Dataset):
    """Labelled uint8 images; each item carries the seed of its augmentation for the current epoch."""

    def __init__(self, images: Tensor, labels: Tensor, indices: Tensor, seed: int) -> None:
        self.images, self.labels, self.indices, self.seed, self.epoch = images, labels, indices, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j = int(self.indices[i])
        return {
            "image": self.images[j],
            "label": int(self.labels[j]),
            "seed": item_seeds(self.seed, self.epoch, [j])[0],
        }


class _ClassCollator:
    def __init__(self, config: Any, augmentation: Augmentation) -> None:
        self.config, self.augmentation = config, augmentation

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Tensor]:
        cfg, seeds = self.config, [it["seed"] for it in items]
        x = _model_input([it["image"] for it in items], cfg, augment=lambda b: self.augmentation(b, seeds))
        return {"pixel_values": x, "labels": torch.tensor([it["label"] for it in items])}


def _model_input(images: list[Tensor], cfg: Any, augment: Any = None) -> Tensor:
    """uint8 images of any sizes and channels -> model input, through the input gate as at scoring time."""
    x = stack_at_model_size(images, data_range=255, image_size=cfg.image_size)
    return to_model_input_for(cfg, x, data_range=1.0, augment=augment)


@dataclass
class _JoinedSource:
    """One or more labelled sources as one list of images with class indices offset per source."""

    images: list[Tensor]
    labels: Tensor
    class_offsets: dict[str, int]
    sizes: dict[str, int]

    @classmethod
    def load(cls, spec: str, split: str, root: str | Path | None) -> _JoinedSource:
        from ...data.sources import load_sources

        images: list[Tensor] = []
        labels: list[Tensor] = []
        offsets: dict[str, int] = {}
        sizes: dict[str, int] = {}
        offset = 0
        for src in load_sources(spec, split, root=root):
            if src.name in offsets:
                raise InvalidInputError(f"image source {src.name!r} appears twice in {spec!r}.")
            offsets[src.name], sizes[src.name] = offset, len(src)
            images += list(src.images)
            labels.append(src.labels + offset)
            offset += max(len(src.class_names), int(src.labels.max()) + 1)
        return cls(images, torch.cat(labels), offsets, sizes)

    def __len__(self) -> int:
        return len(self.images)

    def repeated(self, order: Tensor, min_share: float) -> Tensor:
        """``order`` with each source's indices repeated until it has ``min_share`` of the largest source's."""
        if len(self.sizes) < 2:
            return order
        starts, parts = 0, []
        bounds = {}
        for name, n in self.sizes.items():
            bounds[name] = (starts, starts + n)
            starts += n
        largest = max(self.sizes.values())
        for lo, hi in bounds.values():
            mine = order[(order >= lo) & (order < hi)]
            times = max(1, math.ceil(min_share * largest / max(1, len(mine))))
            parts.append(mine.repeat(times))
        return torch.cat(parts)


def pretrain_backbone(
    model: SemSimModel,
    settings: PretrainSettings,
    *,
    exclude_images: Iterable[Tensor] = (),
    root: str | Path | None = None,
    output_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
) -> tuple[dict[str, Any], nn.Linear]:
    """Train ``model.backbone`` in place as a classifier on ``settings.source``.

    Source images are uint8 (0-255) and pass through the package's input gate with the model's size,
    mean and std, exactly as images scored later do. Only the backbone changes; SemSim stays a distance
    in ``[0, 2]`` (lower = more leakage).

    Args:
        model: the SemSim model whose backbone is trained (its input gate settings are used).
        settings: see ``PretrainSettings`` (``epochs`` > 0).
        exclude_images: uint8 ``(C, H, W)`` images (the annotated originals) that must not be trained on;
            byte-identical source images are removed and counted.
        root: folder of the Fashion-MNIST IDX files (default: the Debian package's folder).
        output_dir: folder for the stage's checkpoints (default: a temporary folder).
        resume: continue from the last checkpoint in ``output_dir``.
        options: how the ``Trainer`` runs (``TrainerOptions``: precision, logging, progress, callbacks).

    Returns:
        A JSON-serialisable summary and the trained linear classifier (stage 2 can start from it).

    Raises:
        ValueError: ``settings.epochs`` is 0 (nothing to train).

    Examples:
        >>> from semsim_metric import SemSimConfig, SemSimModel  # doctest: +SKIP
        >>> info, head = pretrain_backbone(SemSimModel(SemSimConfig(base_width=16)), PretrainSettings())  # doctest: +SKIP
    """
    import tempfile

    if settings.epochs <= 0:
        raise InvalidInputError(f"pre-training epochs must be > 0, got {settings.epochs}.")
    src = _JoinedSource.load(settings.source, settings.split, root)
    train_idx, holdout, n_removed = _train_and_holdout(src, settings, exclude_images)
    n_classes = int(src.labels.max()) + 1
    torch.manual_seed(settings.seed)
    objective = ClassObjective(model, n_classes)
    steps = max(1, math.floor(settings.epochs * len(train_idx) / settings.batch_size))
    stage = Stage(
        name="classes",
        objective=objective,
        dataset=_ClassItems(src.images, src.labels, train_idx, settings.seed),
        collator=_ClassCollator(model.config, settings.augmentation()),
        optimiser=OptimiserSettings(settings.learning_rate, schedule="onecycle", warmup=0.15),
        batch_size=settings.batch_size,
        max_steps=steps,
        seed=settings.seed,
        drop_last=True,
        settings={**dataclasses.asdict(settings), "images": _images_digest(src, train_idx)},
    )
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        info = run_stage(stage, output_dir or tmp, resume=resume, options=options)
    model.eval()
    objective.eval()
    correct = _holdout_correct(model, objective, src, holdout)
    summary = {
        "settings": dataclasses.asdict(settings),
        "source_images": len(src),
        "class_offsets": src.class_offsets,
        "source_sizes": src.sizes,
        "excluded_as_annotated": n_removed,
        "trained_images": len(train_idx),
        "steps": info["steps"],
        "final_loss": info["final_loss"],
        "seconds": info["seconds"],
        "estimate": info.get("estimate", {}),
        "holdout_images": len(holdout),
        "holdout_accuracy": correct / len(holdout) if len(holdout) else math.nan,
        "n_classes": n_classes,
    }
    return summary, objective.head.cpu()


def _train_and_holdout(
    src: _JoinedSource, settings: PretrainSettings, exclude_images: Iterable[Tensor]
) -> tuple[Tensor, Tensor, int]:
    """``(training indices, held-out indices, images removed)`` of a source: images byte-identical to an
    excluded one removed, the rest in a seeded order whose first ``settings.holdout`` (when under half) measure
    the classifier; the training indices repeat smaller sources up to ``settings.min_source_share`` of the
    largest and, with several sources, are shuffled (same seed)."""
    excluded = {image_fingerprint(img, form="pretrain-cache") for img in exclude_images}
    keep = (
        [
            i
            for i in range(len(src))
            if image_fingerprint(src.images[i], form="pretrain-cache") not in excluded
        ]
        if excluded
        else list(range(len(src)))
    )
    g = torch.Generator().manual_seed(settings.seed)
    order = torch.tensor(keep)[torch.randperm(len(keep), generator=g)]
    holdout = order[: settings.holdout] if settings.holdout < len(order) // 2 else order[:0]
    train_idx = src.repeated(order[len(holdout) :], settings.min_source_share)
    train_idx = train_idx[torch.randperm(len(train_idx), generator=g)] if len(src.sizes) > 1 else train_idx
    return train_idx, holdout, len(src) - len(keep)


def _images_digest(src: _JoinedSource, train_idx: Tensor) -> str:
    """A digest of the images the stage trains on, in order: part of its resume plan."""
    return hashlib.sha1(
        "".join(image_fingerprint(src.images[int(i)], form="pretrain-cache") for i in train_idx).encode()
    ).hexdigest()


def _holdout_correct(
    model: SemSimModel, objective: ClassObjective, src: _JoinedSource, holdout: Tensor
) -> int:
    """How many held-out source images the trained classifier names correctly (batches of 512, no gradients)."""
    cfg, device = model.config, next(model.parameters()).device
    correct = 0
    with torch.inference_mode():
        for k in range(0, len(holdout), 512):
            idx = holdout[k : k + 512]
            x = _model_input([src.images[int(i)] for i in idx], cfg).to(device)
            correct += int(
                (objective.head(model.backbone.pooled(x)).argmax(1).cpu() == src.labels[idx]).sum()
            )
    return correct


def pretrain_cache_key(settings: PretrainSettings, config: Any, exclude: Iterable[Tensor] = ()) -> str:
    """The cache entry's name: a digest of the settings, the backbone architecture and input gate of ``config``
    and the excluded source images. It must not change between versions, or cached backbones stop being
    reused (and published runs stop reproducing).

    Examples:
        >>> from semsim_metric import SemSimConfig
        >>> pretrain_cache_key(PretrainSettings(epochs=6.0, seed=23333), SemSimConfig(base_width=16, embedding="spatial"))
        'c2e790a2fe0121b3'
    """
    arch = {
        k: v
        for k, v in config.to_dict().items()
        if k in ("backbone", "base_width", "backbone_config", "image_size", "image_mean", "image_std")
    }
    key_src = json.dumps(
        {
            "settings": dataclasses.asdict(settings),
            "arch": arch,
            "trainer": 2,
            "exclude": sorted(image_fingerprint(i, form="pretrain-cache") for i in exclude),
        },
        sort_keys=True,
    )
    return hashlib.sha1(key_src.encode()).hexdigest()[:16]


def pretrain_cached(
    model: SemSimModel,
    settings: PretrainSettings,
    cache_dir: str | Path,
    *,
    exclude_images: Iterable[Tensor] = (),
    options: TrainerOptions | None = None,
) -> tuple[dict[str, Any], nn.Linear]:
    """``pretrain_backbone``, reusing a cached result made with identical settings and architecture.

    The cache key covers the settings, the backbone architecture and input gate, and the set of excluded
    images that the source holds (held-out experiments whose annotated originals are not in the source
    share one entry); the backbone and classifier weights are stored as ``backbone.safetensors`` and
    ``head.safetensors`` beside ``pretraining.json``. An interrupted pre-training resumes from its last
    complete checkpoint in the cache entry. ``pretraining.json`` is written last and atomically: it marks a
    complete entry.

    Raises:
        IncompleteOutputError: the cache entry's ``pretraining.json`` is damaged (the message names it and says to
            delete the entry's folder to pre-train again).
    """
    from safetensors.torch import load_file, save_file

    exclude = list(exclude_images)
    if exclude:  # only the excluded images the source really holds change the result (and the key)
        exclude_keys = {image_fingerprint(i, form="pretrain-cache") for i in exclude}
        held = _JoinedSource.load(settings.source, settings.split, None)
        exclude = [
            img for img in held.images if image_fingerprint(img, form="pretrain-cache") in exclude_keys
        ]
    folder = Path(cache_dir) / pretrain_cache_key(settings, model.config, exclude)
    weights, head_file, info_file = (
        folder / "backbone.safetensors",
        folder / "head.safetensors",
        folder / "pretraining.json",
    )
    if weights.is_file() and head_file.is_file() and info_file.is_file():
        model.backbone.load_state_dict(load_file(str(weights)))
        info = read_json_record(info_file, fix=f"Delete the folder {folder} to pre-train the backbone again.")
        head_state = load_file(str(head_file))
        head = nn.Linear(head_state["weight"].shape[1], head_state["weight"].shape[0])
        head.load_state_dict(head_state)
        info["reused_from"] = str(folder)
        return info, head
    info, head = pretrain_backbone(
        model, settings, exclude_images=exclude, output_dir=folder / "run", resume=True, options=options
    )
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(
        folder / "run" / "checkpoints", ignore_errors=True
    )  # optimiser states are not needed any more
    for target, module in (
        (head_file, head),
        (weights, model.backbone),
    ):  # info last: it marks a complete entry
        tmp = target.with_suffix(".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
        tmp.replace(target)
    atomic_write_text(info_file, json.dumps(info, indent=2))
    return info, head
