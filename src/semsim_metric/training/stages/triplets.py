"""Stage ``triplets``: the paper's triplet loss (anchor = original, positive = recognised reconstruction,
negative = unrecognised reconstruction), optionally with the global soft-label loss on the distances.

Triplets come from ``semsim_metric.data.triplets.TripletDataset``; images go through the input gate
with the paper's augmentation (RandomCrop with 4-pixel padding + horizontal flip, per image). The stage
trains through the package's one ``Trainer`` (``semsim_metric.training.trainer.run_stage``), validated on
the validation split every epoch.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ...data.augmentation import Augmentation
from ...data.triplets import TripletDataset
from ...functional import embedding_distance
from ...models import SemSimModel
from ...preprocessing import stack_at_model_size, to_model_input_for
from ..losses import global_soft_label_loss, triplet_margin_loss
from ..optim import OptimiserSettings
from ..settings import TripletSettings
from ..trainer import Stage, content_digest
from ..validation import validation_metrics

__all__ = ["TripletCollator", "TripletObjective", "TripletSettings", "triplet_stage"]


class TripletObjective(nn.Module):
    """Triplet margin loss on L2-normalised embeddings (paper: margin 1.0, p = 2), plus
    ``global_loss_weight`` x the global soft-label loss when the shares are given. ``forward`` takes exactly
    the collator's keys (a misspelled batch key is a ``TypeError``)."""

    def __init__(self, model: SemSimModel, *, margin: float = 1.0, global_loss_weight: float = 0.0) -> None:
        super().__init__()
        self.model, self.margin, self.global_loss_weight = model, float(margin), float(global_loss_weight)

    def forward(
        self,
        anchor: Tensor,
        positive: Tensor,
        negative: Tensor,
        positive_share: Tensor | None = None,
        negative_share: Tensor | None = None,
    ) -> dict[str, Tensor]:
        n = anchor.shape[0]
        ea, ep, en = self.model.embed(torch.cat([anchor, positive, negative], dim=0)).split(n, dim=0)
        d_pos, d_neg = embedding_distance(ea, ep), embedding_distance(ea, en)
        loss = triplet_margin_loss(d_pos, d_neg, self.margin)
        if self.global_loss_weight > 0 and positive_share is not None and negative_share is not None:
            loss = loss + self.global_loss_weight * global_soft_label_loss(
                torch.cat([d_pos, d_neg]), torch.cat([positive_share, negative_share]).to(d_pos.dtype)
            )
        return {"loss": loss, "positive_distance": d_pos, "negative_distance": d_neg}


class TripletCollator:
    """Collate triplets into model-ready tensors: the input gate with the model config's size, mean and std;
    ``augment=True`` adds the paper's per-image RandomCrop(pad 4) + flip. Greyscale and RGB images and
    images of different sizes may be mixed."""

    def __init__(self, config: Any, *, augment: bool = True, padding: int = 4) -> None:
        self.config = config
        self.augmentation = Augmentation(crop_padding=padding, flip=True) if augment else Augmentation()

    def _prep(self, images: list[Tensor], seeds: list[int]) -> Tensor:
        cfg = self.config
        x = stack_at_model_size(images, data_range=255, image_size=cfg.image_size)
        return to_model_input_for(cfg, x, data_range=1.0, augment=lambda b: self.augmentation(b, seeds))

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Tensor]:
        out = {}
        for k, role in enumerate(("anchor", "positive", "negative")):
            out[role] = self._prep([f[role] for f in features], [f["seeds"][k] for f in features])
        out["positive_share"] = torch.tensor([f["positive_share"] for f in features], dtype=torch.float32)
        out["negative_share"] = torch.tensor([f["negative_share"] for f in features], dtype=torch.float32)
        return out


def triplet_stage(
    model: SemSimModel, train_set: TripletDataset, val_split: Any, settings: TripletSettings
) -> Stage:
    """The triplet stage of ``model`` on ``train_set``: SGD whose learning rate drops at the settings' milestone
    epochs, validated on ``val_split`` (a SemSim-schema split, or ``None``) every epoch.

    The stage's resume plan records the margin, the global loss weight, augmentation, seed and a digest of the
    triplets, besides the optimiser, steps and batch.
    """
    steps_per_epoch = max(1, math.ceil(len(train_set) / settings.batch_size))
    optimiser = OptimiserSettings(
        settings.learning_rate,
        momentum=settings.momentum,
        nesterov=settings.nesterov,
        weight_decay=settings.weight_decay,
        schedule="multistep",
        gamma=settings.gamma,
        milestones=tuple(e / settings.epochs for e in settings.milestone_epochs()),
    )
    evaluate = (
        (lambda: validation_metrics(model, val_split, seed=settings.seed)) if val_split is not None else None
    )
    objective = TripletObjective(
        model, margin=settings.margin, global_loss_weight=settings.global_loss_weight
    )
    return Stage(
        name="triplets",
        objective=objective,
        dataset=train_set,
        collator=TripletCollator(model.config, augment=settings.augment),
        optimiser=optimiser,
        batch_size=settings.batch_size,
        max_steps=steps_per_epoch * settings.epochs,
        seed=settings.seed,
        drop_last=False,
        max_grad_norm=1.0,
        evaluate=evaluate,
        settings={
            "margin": settings.margin,
            "global_loss_weight": settings.global_loss_weight,
            "augment": settings.augment,
            "seed": settings.seed,
            "triplets": content_digest([train_set.triplets, train_set.share, train_set.rec_image]),
        },
    )
