"""Class-supervised pre-training of SemSim's backbone (stage 1 of the ``semantic`` recipe).

People call a reconstruction "recognised" when they can name in it what they name in the original.
A backbone that already separates the classes of the image domain puts that judgement within reach of
the triplet stage; trained from scratch on a few hundred annotated originals it mostly learns pixel
similarity. Stage 1 therefore trains the backbone with a temporary linear classifier on a labelled image
source (default: the Fashion-MNIST *train* split), with the crop/flip augmentation of SemSim training plus
Gaussian pixel noise of random strength, which resembles what reconstruction attacks leave behind. The
classifier is thrown away; only the backbone weights are kept.

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
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .modeling import SemSimModel
from .preprocessing import to_model_input

__all__ = ["PretrainSettings", "crop_flip_noise", "optimiser_step", "pretrain_backbone", "pretrain_cached"]


@dataclass(frozen=True)
class PretrainSettings:
    """What stage 1 trains on and how.

    Attributes:
        source: image source spec (``"fashion-mnist"``, ``"hf:<dataset id>"`` or a class-folder path; see
            :func:`semsim_metric.generate.sources.load_source`).
        split: split of the source (Fashion-MNIST: ``"train"``; the default dataset's originals come from
            ``"test"``).
        epochs: passes over the source (fractions allowed).
        batch_size: images per step.
        learning_rate: peak learning rate of the one-cycle SGD schedule.
        noise: largest standard deviation of the Gaussian noise added to half of the images (0 = off).
        holdout: images of the source kept out of training to report classification accuracy.
        seed: seed of the shuffling, augmentation and classifier.
    """

    source: str = "fashion-mnist"
    split: str = "train"
    epochs: float = 2.0
    batch_size: int = 128
    learning_rate: float = 0.1
    noise: float = 0.3
    holdout: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ValueError(f"pre-training epochs must be > 0, got {self.epochs}.")
        if self.batch_size < 1 or self.holdout < 0 or self.noise < 0:
            raise ValueError(f"invalid pre-training settings: {self}.")


def _image_key(image: Tensor) -> str:
    return hashlib.sha1(image.contiguous().numpy().tobytes() + str(tuple(image.shape)).encode()).hexdigest()


def crop_flip_noise(noise: float, generator: torch.Generator) -> Any:
    """Augmentation for ``[0, 1]`` image batches: 3-pixel shifted crop, horizontal flip, and Gaussian noise of
    standard deviation uniform in ``[0, noise]`` on a random half of the images (``noise=0``: none)."""

    def apply(x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        padded = F.pad(x, (3, 3, 3, 3))
        i, j = (int(v) for v in torch.randint(0, 7, (2,), generator=generator))
        x = padded[:, :, i:i + h, j:j + w]
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)
        if noise > 0:
            sigma = torch.rand(n, 1, 1, 1, generator=generator) * noise
            sigma = sigma * (torch.rand(n, 1, 1, 1, generator=generator) < 0.5)
            x = (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)
        return x

    return apply


def optimiser_step(loss: Tensor, optimizer: torch.optim.Optimizer, scheduler: Any, bar: Any) -> float:
    """One SGD step of stages 1 and 2: backward, step, schedule, progress bar; returns the loss value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    scheduler.step()
    value = float(loss.detach())
    bar.update(1)
    bar.set_postfix(loss=f"{value:.3f}")
    return value


def pretrain_backbone(
    model: SemSimModel,
    settings: PretrainSettings,
    *,
    exclude_images: Iterable[Tensor] = (),
    progress: bool = True,
    root: str | Path | None = None,
) -> tuple[dict[str, Any], nn.Linear]:
    """Train ``model.backbone`` in place as a classifier on ``settings.source``.

    Source images are uint8 (0-255) and pass through the package's input gate with the model's size,
    mean and std, exactly as images scored later do. Only the backbone changes; SemSim stays a distance
    in ``[0, 2]`` (lower = more leakage).

    Returns:
        A JSON-serialisable summary and the trained linear classifier (stage 2 can start from it).

    Args:
        model: the SemSim model whose backbone is trained (its input gate settings are used).
        settings: see :class:`PretrainSettings`.
        exclude_images: uint8 ``(C, H, W)`` images (the annotated originals) that must not be trained on;
            byte-identical source images are removed and counted.
        progress: show a progress bar.
        root: folder of the Fashion-MNIST IDX files (default: the Debian package's folder).

    Example:
        >>> from semsim_metric import SemSimConfig, SemSimModel  # doctest: +SKIP
        >>> info, head = pretrain_backbone(SemSimModel(SemSimConfig(base_width=16)), PretrainSettings())  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from .generate.sources import load_source

    src = load_source(settings.source, settings.split, root=root)
    excluded = {_image_key(img) for img in exclude_images}
    keep = [i for i in range(len(src)) if _image_key(src.images[i]) not in excluded] if excluded else list(range(len(src)))
    n_removed = len(src) - len(keep)
    g = torch.Generator().manual_seed(settings.seed)
    order = torch.tensor(keep)[torch.randperm(len(keep), generator=g)]
    holdout = order[: settings.holdout] if settings.holdout < len(order) // 2 else order[:0]
    train_idx = order[len(holdout):]
    images, labels = src.images, src.labels
    n_classes = int(labels.max()) + 1
    cfg = model.config
    device = next(model.parameters()).device
    torch.manual_seed(settings.seed)
    head = nn.Linear(cfg.feature_dim, n_classes).to(device)
    params = list(model.backbone.parameters()) + list(head.parameters())
    steps = max(1, math.floor(settings.epochs * len(train_idx) / settings.batch_size))
    opt = torch.optim.SGD(params, lr=settings.learning_rate, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings.learning_rate, total_steps=steps,
                                                pct_start=0.15)
    augment = crop_flip_noise(settings.noise, g)

    def prep(idx: Tensor, aug: Any = None) -> Tensor:
        return to_model_input(images[idx].to(device), data_range=255, image_size=cfg.image_size,
                              mean=cfg.image_mean, std=cfg.image_std, augment=aug)

    model.train()
    head.train()
    start = time.perf_counter()
    step, loss_value = 0, math.nan
    bar = tqdm(total=steps, desc="pre-training backbone", disable=not progress)
    while step < steps:
        perm = train_idx[torch.randperm(len(train_idx), generator=g)]
        for k in range(0, len(perm) - settings.batch_size + 1, settings.batch_size):
            if step >= steps:
                break
            idx = perm[k:k + settings.batch_size]
            loss = F.cross_entropy(head(model.backbone.pooled(prep(idx, augment))), labels[idx].to(device))
            loss_value = optimiser_step(loss, opt, sched, bar)
            step += 1
    bar.close()
    seconds = time.perf_counter() - start
    model.eval()
    head.eval()
    correct = 0
    with torch.inference_mode():
        for k in range(0, len(holdout), 512):
            idx = holdout[k:k + 512]
            correct += int((head(model.backbone.pooled(prep(idx))).argmax(1).cpu() == labels[idx]).sum())
    return {"settings": dataclasses.asdict(settings), "source_images": len(src), "excluded_as_annotated": n_removed,
            "trained_images": len(train_idx), "steps": steps, "final_loss": loss_value, "seconds": seconds,
            "holdout_images": len(holdout),
            "holdout_accuracy": correct / len(holdout) if len(holdout) else math.nan,
            "n_classes": n_classes}, head.cpu()


def pretrain_cached(
    model: SemSimModel,
    settings: PretrainSettings,
    cache_dir: str | Path,
    *,
    exclude_images: Iterable[Tensor] = (),
    progress: bool = True,
) -> tuple[dict[str, Any], nn.Linear]:
    """:func:`pretrain_backbone`, reusing a cached result made with identical settings and architecture.

    The cache key covers the settings, the backbone architecture and input gate, and the set of excluded
    images; the backbone and classifier weights are stored as ``backbone.safetensors`` and
    ``head.safetensors`` beside ``pretraining.json``.
    """
    from safetensors.torch import load_file, save_file

    exclude = list(exclude_images)
    arch = {k: v for k, v in model.config.to_dict().items()
            if k in ("backbone", "base_width", "backbone_config", "image_size", "image_mean", "image_std")}
    key_src = json.dumps({"settings": dataclasses.asdict(settings), "arch": arch,
                          "exclude": sorted(_image_key(i) for i in exclude)}, sort_keys=True)
    folder = Path(cache_dir) / hashlib.sha1(key_src.encode()).hexdigest()[:16]
    weights, head_file, info_file = folder / "backbone.safetensors", folder / "head.safetensors", folder / "pretraining.json"
    if weights.is_file() and head_file.is_file() and info_file.is_file():
        model.backbone.load_state_dict(load_file(str(weights)))
        info = json.loads(info_file.read_text())
        head_state = load_file(str(head_file))
        head = nn.Linear(head_state["weight"].shape[1], head_state["weight"].shape[0])
        head.load_state_dict(head_state)
        info["reused_from"] = str(folder)
        return info, head
    info, head = pretrain_backbone(model, settings, exclude_images=exclude, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    for target, module in ((head_file, head), (weights, model.backbone)):  # info last: it marks a complete entry
        tmp = target.with_suffix(".tmp")
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
        tmp.replace(target)
    info_file.write_text(json.dumps(info, indent=2))
    return info, head
