"""Vote tuning: teach SemSim's backbone what annotators name in reconstructions (stage 2, ``semantic``).

Triplets use one bit per reconstruction (recognised or not) and only order the reconstructions of one
original. The annotations hold more: every annotator named a class, or "cannot recognise". Vote tuning
trains the backbone with a linear classifier over the classes plus one "cannot recognise" output:

* each reconstruction's target is the distribution of its annotators' answers (all votes, not a
  thresholded label), so a reconstruction that nobody can read learns to look like "nothing";
* each original's target is the distribution of the answers given for the original (or its class label),
  which keeps originals on their class;
* optionally, the global soft-label loss of :func:`semsim_metric.modeling.global_soft_label_loss` on the
  original-reconstruction distance, with the recognised share as target, orders distances across
  originals directly.

A reconstruction then lies near its original in the embedding exactly when annotators name in it what
they name in the original. The classifier is thrown away afterwards; SemSim stays an embedding distance.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .modeling import SemSimModel, global_soft_label_loss
from .preprocessing import to_model_input

__all__ = ["VoteTuningSettings", "tune_on_votes", "vote_distribution"]


@dataclass(frozen=True)
class VoteTuningSettings:
    """How stage 2 trains.

    Attributes:
        epochs: passes over the training reconstructions.
        batch_size: reconstructions per step (each with its original).
        learning_rate: initial learning rate of SGD with a cosine decay.
        original_weight: weight of the originals' classification loss (per original, not per row).
        distance_weight: weight of the global soft-label loss on the distance (0 = off).
        noise: largest Gaussian-noise standard deviation of the augmentation (0 = crop/flip only).
        seed: seed of the shuffling, augmentation and new classifier rows.
    """

    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 0.01
    original_weight: float = 1.0
    distance_weight: float = 0.0
    noise: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0:
            raise ValueError(f"invalid vote-tuning settings: {self}.")


def vote_distribution(votes: list[int], n_classes: int, fallback_class: int = -1) -> Tensor:
    """Share of each answer among ``votes``; index ``n_classes`` is "cannot recognise" (vote -1).

    Without votes, ``fallback_class`` (a class index, or -1 for "cannot recognise") gets all the mass.

    Example:
        >>> [round(v, 2) for v in vote_distribution([2, 2, -1, 2, 0], 3).tolist()]
        [0.2, 0.0, 0.6, 0.2]
    """
    out = torch.zeros(n_classes + 1)
    answers = list(votes) or [fallback_class]
    for v in answers:
        if v >= n_classes:
            raise ValueError(f"vote {v} is not a class index below {n_classes}.")
        out[v if v >= 0 else n_classes] += 1.0
    return out / len(answers)


def tune_on_votes(
    model: SemSimModel,
    split: Any,
    settings: VoteTuningSettings,
    *,
    head: nn.Linear | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], nn.Linear]:
    """Train ``model.backbone`` in place on the annotators' answers of a SemSim-schema split.

    The split's images are decoded to uint8 (0-255) and pass through the package's input gate. Afterwards
    a reconstruction that annotators read as its original's class lies at a small SemSim distance from it
    (distance in ``[0, 2]``, lower = more leakage); one they could not read lies far away.

    Args:
        model: the model to tune (its input gate settings are used).
        split: a ``datasets.Dataset`` in the SemSim schema with ``votes`` (rows without votes are an error).
        settings: see :class:`VoteTuningSettings`.
        head: a class classifier to start from (e.g. stage 1's); its rows are copied for the classes it has.
        progress: show a progress bar.

    Returns:
        A JSON-serialisable summary (rows, classes, steps, final loss, seconds) and the classifier over
        the classes plus "cannot recognise" (last output).
    """
    import datasets
    from tqdm.auto import tqdm

    from .data.triplets import decode_image, stack_images
    from .pretraining import crop_flip_noise, optimiser_step

    raw = split.cast_column("original", datasets.Image(decode=False)).cast_column(
        "reconstruction", datasets.Image(decode=False))
    votes, original_votes = raw["votes"], raw["original_votes"]
    labels = raw["class_label"]
    missing = sum(1 for v in votes if not v)
    if missing:
        raise ValueError(f"vote tuning needs the annotators' answers: {missing} of {len(votes)} rows have no votes. "
                         "Import votes first (semsim votes import) or use a recipe without vote tuning.")
    n_classes = 1 + max(max(max(v) for v in votes), max((max(v) for v in original_votes if v), default=-1),
                        max(labels), head.out_features - 1 if head is not None else -1)
    recon = stack_images([decode_image(x) for x in raw["reconstruction"]])
    original_ids = raw["original_id"]
    first: dict[str, int] = {}
    for i, oid in enumerate(original_ids):
        first.setdefault(oid, i)
    orig_cache = {oid: decode_image(raw[i]["original"]) for oid, i in first.items()}
    orig = stack_images([orig_cache[oid] for oid in original_ids])
    recon_target = torch.stack([vote_distribution(v, n_classes) for v in votes])
    orig_target = torch.stack([vote_distribution(ov, n_classes, fallback_class=lab)
                               for ov, lab in zip(original_votes, labels)])
    share = torch.tensor([float(r) if s is None or s != s else float(s)
                          for s, r in zip(raw["recognized_share"], raw["recognized"])], dtype=torch.float32)
    rows_per_original = len(original_ids) / max(1, len(first))

    cfg = model.config
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    classifier = nn.Linear(cfg.feature_dim, n_classes + 1)
    with torch.no_grad():
        classifier.weight.zero_()
        classifier.bias.zero_()
        if head is not None:
            classifier.weight[: head.out_features] = head.weight
            classifier.bias[: head.out_features] = head.bias
    classifier.to(device)
    params = list(model.backbone.parameters()) + list(classifier.parameters())
    n, bs = len(votes), min(settings.batch_size, len(votes))
    steps = settings.epochs * max(1, n // bs)
    opt = torch.optim.SGD(params, lr=settings.learning_rate, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    augment = crop_flip_noise(settings.noise, g)
    model.train()
    classifier.train()
    start, step, loss_value = time.perf_counter(), 0, math.nan
    bar = tqdm(total=steps, desc="vote tuning", disable=not progress)
    for _ in range(settings.epochs):
        perm = torch.randperm(n, generator=g)
        for k in range(0, n - bs + 1, bs):
            idx = perm[k:k + bs]
            x = to_model_input(torch.cat([recon[idx], orig[idx]]).to(device), data_range=255,
                               image_size=cfg.image_size, mean=cfg.image_mean, std=cfg.image_std, augment=augment)
            logp = classifier(model.backbone.pooled(x)).log_softmax(1)
            target = torch.cat([recon_target[idx], orig_target[idx]]).to(device)
            ce = -(target * logp).sum(1)
            loss = ce[:bs].mean() + settings.original_weight * ce[bs:].mean() / rows_per_original
            if settings.distance_weight > 0:
                emb = model.embed(x).float()
                dist = torch.linalg.vector_norm(emb[:bs] - emb[bs:], dim=1)
                loss = loss + settings.distance_weight * global_soft_label_loss(dist, share[idx].to(device))
            loss_value = optimiser_step(loss, opt, sched, bar)
            step += 1
    bar.close()
    model.eval()
    return {"settings": dataclasses.asdict(settings), "rows": n, "originals": len(first), "classes": n_classes,
            "steps": step, "final_loss": loss_value, "seconds": time.perf_counter() - start}, classifier.cpu().eval()
