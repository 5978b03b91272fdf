"""The training objectives' loss functions (the models themselves only embed)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["global_soft_label_loss", "soft_cross_entropy", "triplet_margin_loss"]


def triplet_margin_loss(d_pos: Tensor, d_neg: Tensor, margin: float = 1.0) -> Tensor:
    """The paper's triplet loss on distances: ``mean(relu(d(a, p) - d(a, n) + margin))``.

    ``d_pos`` and ``d_neg`` are SemSim distances (``[0, 2]`` on L2-normalised embeddings, lower = more
    leakage) of each anchor to a recognised and an unrecognised reconstruction; ``margin`` >= 0.

    Examples:
        >>> float(triplet_margin_loss(torch.tensor([0.2]), torch.tensor([1.5])))
        0.0
        >>> float(triplet_margin_loss(torch.tensor([0.5]), torch.tensor([0.5]), margin=1.0))
        1.0
    """
    return torch.relu(d_pos - d_neg + margin).mean()


def global_soft_label_loss(
    distance: Tensor, share: Tensor, *, centre: float = 1.0, temperature: float = 0.25
) -> Tensor:
    """Binary cross-entropy between ``sigmoid((centre - d) / temperature)`` and the recognised share.

    Puts distances of *different* originals on one scale: a reconstruction that most annotators
    recognised should lie closer than ``centre`` to its original, one nobody recognised farther.
    ``distance`` is the SemSim distance (``[0, 2]``, lower = more leakage), ``share`` the share of annotators
    who recognised the reconstruction (``[0, 1]``; values outside are clamped), ``temperature`` > 0.

    Examples:
        >>> near, far = torch.tensor([0.2]), torch.tensor([1.8])
        >>> bool(global_soft_label_loss(near, torch.ones(1)) < global_soft_label_loss(far, torch.ones(1)))
        True
    """
    logits = (centre - distance) / temperature
    return F.binary_cross_entropy_with_logits(logits, share.clamp(0, 1))


def soft_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy per row against a target distribution ``(N, K)`` (rows sum to 1); returns ``(N,)``.

    Examples:
        >>> logits = torch.tensor([[10.0, -10.0]])
        >>> float(soft_cross_entropy(logits, torch.tensor([[1.0, 0.0]]))) < 1e-6
        True
    """
    return -(target * logits.log_softmax(1)).sum(1)
