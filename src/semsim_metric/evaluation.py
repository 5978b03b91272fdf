"""Agreement of SemSim and baseline metrics with annotators' judgements (the paper's protocol).

Per image: ROC-AUC of each metric as a score for "recognised" (each metric oriented so that higher =
more leakage). Per victim (model level): Spearman, Kendall and Pearson correlation between a victim's
mean metric and its recognised share. Every metric's direction is declared in :data:`BASELINES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["BASELINES", "MetricSpec", "compare_on_split", "pair_metric_values"]


@dataclass(frozen=True)
class MetricSpec:
    """A full-reference metric and its direction.

    ``higher_means_more_leakage``: True for similarities (PSNR, SSIM), False for distances (MSE, SemSim).
    """

    name: str
    fn: Callable[[Tensor, Tensor], Tensor] | None
    higher_means_more_leakage: bool
    min_size: int = 1


def _psnr(x: Tensor, y: Tensor) -> Tensor:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    return peak_signal_noise_ratio(x, y, data_range=1.0, reduction="none", dim=(1, 2, 3))


def _ssim(x: Tensor, y: Tensor) -> Tensor:
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(x, y, data_range=1.0, reduction="none")


def _ms_ssim(x: Tensor, y: Tensor) -> Tensor:
    import piq

    return piq.multi_scale_ssim(x, y, data_range=1.0, reduction="none")


def _mse(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).pow(2).flatten(1).mean(1)


BASELINES: dict[str, MetricSpec] = {
    "PSNR": MetricSpec("PSNR", _psnr, True),
    "SSIM": MetricSpec("SSIM", _ssim, True),
    "MS-SSIM": MetricSpec("MS-SSIM", _ms_ssim, True, min_size=161),
    "MSE": MetricSpec("MSE", _mse, False),
}


def _decode_split(ds: Any) -> tuple[Tensor, Tensor]:
    from .data.triplets import decode_image

    cols = ds.select_columns(["original", "reconstruction"])
    origs, recs = [], []
    for row in cols:
        origs.append(decode_image(row["original"]))
        recs.append(decode_image(row["reconstruction"]))
    channels = max(max(o.shape[0] for o in origs), max(r.shape[0] for r in recs))
    to = torch.stack([o.expand(channels, -1, -1) for o in origs]).float() / 255
    tr = torch.stack([r.expand(channels, -1, -1) for r in recs]).float() / 255
    return tr, to


def pair_metric_values(model: Any, ds: Any, *, batch_size: int = 256,
                       baselines: dict[str, MetricSpec] | None = None) -> dict[str, np.ndarray]:
    """Per-row values of SemSim (when ``model`` is given) and each applicable baseline."""
    from .functional import _semsim_update

    baselines = BASELINES if baselines is None else baselines
    preds, target = _decode_split(ds)
    out: dict[str, list[np.ndarray]] = {}
    size = min(preds.shape[-2:])
    with torch.inference_mode():
        for start in range(0, len(preds), batch_size):
            p, t = preds[start:start + batch_size], target[start:start + batch_size]
            if model is not None:
                device = next(model.parameters()).device
                d = _semsim_update(p.to(device), t.to(device), model, data_range=1.0)
                out.setdefault("SemSim", []).append(d.float().cpu().numpy())
            for name, spec in baselines.items():
                if spec.fn is None or size < spec.min_size:
                    continue
                out.setdefault(name, []).append(spec.fn(p, t).float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def leakage_score(name: str, values: np.ndarray) -> np.ndarray:
    """Orient a metric so that higher = more leakage."""
    if name == "SemSim":
        return -values
    spec = BASELINES.get(name)
    if spec is None:
        raise KeyError(f"unknown metric {name!r}: declare its direction in BASELINES.")
    return values if spec.higher_means_more_leakage else -values


def compare_on_split(model: Any, ds: Any) -> dict[str, float]:
    """ROC-AUC for recognised vs not, for SemSim and the baselines, on one split."""
    from sklearn.metrics import roc_auc_score

    values = pair_metric_values(model, ds)
    y = np.asarray(ds["recognized"], dtype=bool)
    if y.all() or not y.any():
        return {}
    return {name: float(roc_auc_score(y, leakage_score(name, v))) for name, v in values.items()}
