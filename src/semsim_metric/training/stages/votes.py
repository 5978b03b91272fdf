"""Stage ``votes``: teach SemSim's backbone what annotators name in reconstructions (stage 2 of ``semantic``).

Triplets use one bit per reconstruction (recognised or not) and only order the reconstructions of one
original. The annotations hold more: every annotator named a class, or "cannot recognise". Vote tuning
trains the backbone with a linear classifier over the classes plus one "cannot recognise" output:

* each reconstruction's target is the distribution of its annotators' answers (all votes, not a
  thresholded label), so a reconstruction that nobody can read learns to look like "nothing";
* each original's target is the distribution of the answers given for the original (or its class label),
  which keeps originals on their class;
* optionally, the global soft-label loss of ``semsim_metric.training.losses.global_soft_label_loss`` on the
  original-reconstruction distance, with the recognised share as target, orders distances across
  originals directly.

A reconstruction then lies near its original in the embedding exactly when annotators name in it what
they name in the original. The classifier is thrown away afterwards; SemSim stays an embedding distance.
The stage trains through the package's one ``Trainer`` (``semsim_metric.training.trainer.run_stage``).
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ...data.anchors import AnchorPool, anchor_pair
from ...data.augmentation import Augmentation, item_seeds
from ...data.loading import undecoded
from ...image_io import decode_image, stack_images
from ...models import SemSimModel
from ...preprocessing import stack_at_model_size, to_model_input
from ..losses import global_soft_label_loss, soft_cross_entropy
from ..optim import OptimiserSettings
from ..trainer import Stage, content_digest, run_stage

__all__ = ["VoteObjective", "VoteTuningSettings", "tune_on_votes", "vote_distribution"]


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
        anchor_weight: weight of the label-free anchor loss (0 = off): each row also brings one anchor pair
            (``semsim_metric.data.anchors``) whose distance is pushed below ``anchor_centre`` for mild
            copies and above it for noise, constants and other classes, in several image domains.
        anchor_centre: distance at which the anchor loss's sigmoid is one half.
        anchor_temperature: width of that sigmoid.
    """

    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 0.01
    original_weight: float = 1.0
    distance_weight: float = 0.0
    noise: float = 0.0
    seed: int = 0
    anchor_weight: float = 0.0
    anchor_centre: float = 0.65
    anchor_temperature: float = 0.1

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.learning_rate <= 0 or self.anchor_weight < 0:
            raise ValueError(f"invalid vote-tuning settings: {self}.")

    def augmentation(self) -> Augmentation:
        """Crop (3-pixel shifts) + flip + Gaussian noise up to ``noise`` on half of the images."""
        return Augmentation.crop_flip_noise(self.noise)


def vote_distribution(votes: list[int], n_classes: int, fallback_class: int = -1) -> Tensor:
    """Share of each answer among ``votes``; index ``n_classes`` is "cannot recognise" (vote -1).

    Without votes, ``fallback_class`` (a class index, or -1 for "cannot recognise") gets all the mass.

    Examples:
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


class VoteObjective(nn.Module):
    """Soft cross-entropy of the answers for reconstructions and originals, plus the optional distance loss."""

    def __init__(self, model: SemSimModel, n_classes: int, settings: VoteTuningSettings, rows_per_original: float,
                 head: nn.Linear | None = None) -> None:
        super().__init__()
        self.model = model
        self.settings = settings
        self.rows_per_original = rows_per_original
        self.classifier = nn.Linear(model.config.feature_dim, n_classes + 1)
        with torch.no_grad():
            self.classifier.weight.zero_()
            self.classifier.bias.zero_()
            if head is not None:
                self.classifier.weight[: head.out_features] = head.weight
                self.classifier.bias[: head.out_features] = head.bias

    def forward(self, pixel_values: Tensor, targets: Tensor, share: Tensor, anchor_pixel_values: Tensor | None = None,
                anchor_targets: Tensor | None = None, **unused: Any) -> dict[str, Tensor]:
        """``pixel_values``: reconstructions then their originals (``2B`` images); ``targets``: ``(2B, K + 1)``;
        ``anchor_pixel_values``: anchor images then their partners (``2A``) with ``anchor_targets`` ``(A,)``."""
        bs = share.shape[0]
        ce = soft_cross_entropy(self.classifier(self.model.backbone.pooled(pixel_values)), targets)
        loss = ce[:bs].mean() + self.settings.original_weight * ce[bs:].mean() / self.rows_per_original
        if self.settings.distance_weight > 0:
            emb = self.model.embed(pixel_values).float()
            dist = torch.linalg.vector_norm(emb[:bs] - emb[bs:], dim=1)
            loss = loss + self.settings.distance_weight * global_soft_label_loss(dist, share)
        if self.settings.anchor_weight > 0 and anchor_pixel_values is not None and anchor_targets is not None:
            a, b = self.model.embed(anchor_pixel_values).float().split(anchor_targets.shape[0])
            dist = torch.linalg.vector_norm(a - b, dim=1)
            loss = loss + self.settings.anchor_weight * global_soft_label_loss(
                dist, anchor_targets, centre=self.settings.anchor_centre, temperature=self.settings.anchor_temperature)
        return {"loss": loss}


class _VoteItems(torch.utils.data.Dataset):
    def __init__(self, recon: list[Tensor], orig: list[Tensor], recon_target: Tensor, orig_target: Tensor,
                 share: Tensor, seed: int, anchors: AnchorPool | None = None) -> None:
        self.recon, self.orig, self.recon_target, self.orig_target, self.share = recon, orig, recon_target, orig_target, share
        self.seed, self.epoch, self.anchors = seed, 0, anchors

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.recon)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s_rec, s_orig, s_anchor = item_seeds(self.seed, self.epoch, [3 * i, 3 * i + 1, 3 * i + 2])
        item = {"reconstruction": self.recon[i], "original": self.orig[i], "recon_target": self.recon_target[i],
                "orig_target": self.orig_target[i], "share": self.share[i], "seeds": (s_rec, s_orig)}
        if self.anchors is not None:
            item["anchor"] = anchor_pair(self.anchors, s_anchor)
        return item


class _VoteCollator:
    def __init__(self, config: Any, augmentation: Augmentation) -> None:
        self.config, self.augmentation = config, augmentation

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Tensor]:
        cfg = self.config
        seeds = [it["seeds"][0] for it in items] + [it["seeds"][1] for it in items]
        images = stack_images([it["reconstruction"] for it in items] + [it["original"] for it in items])
        x = to_model_input(images, data_range=255, image_size=cfg.image_size, mean=cfg.image_mean, std=cfg.image_std,
                           augment=lambda b: self.augmentation(b, seeds))
        targets = torch.stack([it["recon_target"] for it in items] + [it["orig_target"] for it in items])
        batch = {"pixel_values": x, "targets": targets, "share": torch.stack([it["share"] for it in items])}
        if "anchor" in items[0]:
            pairs = [it["anchor"] for it in items]
            both = stack_at_model_size([p[0] for p in pairs] + [p[1] for p in pairs], data_range=1.0,
                                       image_size=cfg.image_size)
            batch["anchor_pixel_values"] = to_model_input(both, data_range=1.0, image_size=cfg.image_size,
                                                          mean=cfg.image_mean, std=cfg.image_std)
            batch["anchor_targets"] = torch.tensor([p[2] for p in pairs], dtype=torch.float32)
        return batch


def tune_on_votes(
    model: SemSimModel,
    split: Any,
    settings: VoteTuningSettings,
    *,
    head: nn.Linear | None = None,
    progress: bool = True,
    output_dir: str | Path | None = None,
    resume: bool = False,
    **trainer_options: Any,
) -> tuple[dict[str, Any], nn.Linear]:
    """Train ``model.backbone`` in place on the annotators' answers of a SemSim-schema split.

    The split's images are decoded to uint8 (0-255) and pass through the package's input gate. Afterwards
    a reconstruction that annotators read as its original's class lies at a small SemSim distance from it
    (distance in ``[0, 2]``, lower = more leakage); one they could not read lies far away.

    Args:
        model: the model to tune (its input gate settings are used).
        split: a ``datasets.Dataset`` in the SemSim schema with ``votes`` (rows without votes are an error).
        settings: see ``VoteTuningSettings``.
        head: a class classifier to start from (e.g. stage 1's); its rows are copied for the classes it has.
        progress: show a progress bar.
        output_dir: folder for the stage's checkpoints (default: a temporary folder).
        resume: continue from the last checkpoint in ``output_dir``.
        trainer_options: passed to ``run_stage``.

    Returns:
        A JSON-serialisable summary (rows, classes, steps, final loss, seconds) and the classifier over
        the classes plus "cannot recognise" (last output).
    """
    raw = undecoded(split)
    votes, original_votes = raw["votes"], raw["original_votes"]
    labels = raw["class_label"]
    missing = sum(1 for v in votes if not v)
    if missing:
        raise ValueError(f"vote tuning needs the annotators' answers: {missing} of {len(votes)} rows have no votes. "
                         "Import votes first (semsim votes import) or use a recipe without vote tuning.")
    n_classes = 1 + max(max(max(v) for v in votes), max((max(v) for v in original_votes if v), default=-1),
                        max(labels), head.out_features - 1 if head is not None else -1)
    recon = [decode_image(x) for x in raw["reconstruction"]]
    original_ids = raw["original_id"]
    first: dict[str, int] = {}
    for i, oid in enumerate(original_ids):
        first.setdefault(oid, i)
    orig_cache = {oid: decode_image(raw[i]["original"]) for oid, i in first.items()}
    orig = [orig_cache[oid] for oid in original_ids]
    recon_target = torch.stack([vote_distribution(v, n_classes) for v in votes])
    orig_target = torch.stack([vote_distribution(ov, n_classes, fallback_class=lab)
                               for ov, lab in zip(original_votes, labels)])
    share = torch.tensor([float(r) if s is None or s != s else float(s)
                          for s, r in zip(raw["recognized_share"], raw["recognized"])], dtype=torch.float32)
    n = len(votes)
    bs = min(settings.batch_size, n)
    torch.manual_seed(settings.seed)
    objective = VoteObjective(model, n_classes, settings, n / max(1, len(first)), head=head)
    anchors = AnchorPool.default(seed=settings.seed) if settings.anchor_weight > 0 else None
    stage = Stage(
        name="votes", objective=objective,
        dataset=_VoteItems(recon, orig, recon_target, orig_target, share, settings.seed, anchors),
        collator=_VoteCollator(model.config, settings.augmentation()),
        optimiser=OptimiserSettings(settings.learning_rate, schedule="cosine"),
        batch_size=bs, max_steps=settings.epochs * max(1, n // bs), seed=settings.seed, drop_last=True,
        settings={**dataclasses.asdict(settings), "rows": content_digest(
            [list(raw[c]) for c in ("reconstruction_id", "votes", "original_votes", "class_label")])})
    model.train()
    with tempfile.TemporaryDirectory() as tmp:
        info = run_stage(stage, output_dir or tmp, resume=resume, progress=progress, **trainer_options)
    model.eval()
    return {"settings": dataclasses.asdict(settings), "rows": n, "originals": len(first), "classes": n_classes,
            "anchor_pool": ({d: anchors.domains.count(d) for d in dict.fromkeys(anchors.domains)} if anchors else None),
            "steps": info["steps"], "final_loss": info["final_loss"], "seconds": info["seconds"],
            "estimate": info.get("estimate", {})}, \
        objective.classifier.cpu().eval()
