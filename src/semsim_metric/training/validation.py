"""Validation of a model during and after training: ROC-AUC of the distance for recognised vs not, and
triplet accuracy on fixed (epoch-0) triplets."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._deps import require
from ..data.scoring import score_pairs, semsim_scorer
from ..data.triplets import TripletDataset
from ..functional import _semsim_update
from ..models import SemSimModel
from ..preprocessing import stack_at_model_size

__all__ = ["pair_distances", "validation_metrics"]


def pair_distances(model: SemSimModel, ds: Any, *, batch_size: int = 256) -> np.ndarray:
    """SemSim distance of every (reconstruction, original) row of a schema split: ``(N,)`` in ``[0, 2]``,
    lower = more leakage (the model is put in eval mode for the call and restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        return score_pairs(ds, {"SemSim": semsim_scorer(model)}, batch_size=batch_size)["SemSim"]
    finally:
        model.train(was_training)


def validation_metrics(model: SemSimModel, ds: Any, *, seed: int = 0) -> dict[str, float]:
    """Mean distance, ROC-AUC of ``-distance`` for recognised vs not, triplet accuracy (fixed triplets).

    SemSim is a distance (``[0, 2]``, lower = more leakage), hence the ROC-AUC of its negation: 1.0 = every
    recognised row lies closer to its original than every unrecognised one, 0.5 = chance. ``roc_auc`` is left
    out when ``ds`` has only one label, ``triplet_accuracy`` (in ``[0, 1]``) when it has no triplets.
    """
    metrics_mod = require("sklearn.metrics", "validation ROC-AUC")
    dist = pair_distances(model, ds)
    recognized = np.asarray(ds["recognized"], dtype=bool)
    metrics: dict[str, float] = {"mean_distance": float(dist.mean())}
    if recognized.any() and (~recognized).any():
        metrics["roc_auc"] = float(metrics_mod.roc_auc_score(recognized, -dist))
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
            d_neg = _distance_of(
                model, trip.images[trip.original_index[oid]], trip.images[trip.rec_image[neg]]
            )
        correct += float(dist[pos]) < d_neg
    metrics["triplet_accuracy"] = correct / len(trip)
    return metrics


def _distance_of(model: SemSimModel, a: torch.Tensor, b: torch.Tensor) -> float:
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        batch = stack_at_model_size(
            [a, b], data_range=255, image_size=model.config.image_size
        )  # any two domains
        value = float(_semsim_update(batch[1:].to(device), batch[:1].to(device), model, data_range=1.0)[0])
    model.train(was_training)
    return value
