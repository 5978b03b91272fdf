"""``SemSimLoss``: SemSim as a differentiable loss in piq style."""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.nn.modules.loss import _Loss

from .functional import ModelLike, Reduction, _semsim_compute, _semsim_update, check_reduction, frozen_copy
from .models import SemSimModel
from .preprocessing import check_data_range

__all__ = ["SemSimLoss"]


class SemSimLoss(_Loss):
    """SemSim distance as a loss: ``loss(x, y)`` is the semantic distance of ``x`` from ``y``.

    Like every SemSim output, the value is a **distance** in ``[0, 2]`` (0 = semantically identical);
    minimising it pulls ``x`` towards what a person recognises in ``y``. Gradients reach the inputs,
    never the network (frozen, always in eval mode); they are finite on constant, all-zero and
    identical images.

    Args:
        model: ``None`` (bundled default), a Hub id, a folder or a ``SemSimModel``.
        revision: Hub revision when ``model`` is a Hub id.
        data_range: maximum pixel value of the inputs (1.0 or 255).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        check_domain: warn once (``OutOfDomainWarning``) when the targets fall
            far outside what the model was trained on.
        compile: ``True`` (or a dict of ``torch.compile`` options) compiles the network's forward pass, which
            every score goes through; the scores are the same. A ``torch.compile``'d model is also accepted.

    Examples:
        >>> import torch
        >>> from semsim_metric import SemSimConfig, SemSimLoss, SemSimModel
        >>> loss_fn = SemSimLoss(SemSimModel(SemSimConfig(base_width=4)))
        >>> x = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> loss = loss_fn(x, torch.rand(2, 3, 32, 32))
        >>> loss.backward()
        >>> bool(x.grad.isfinite().all())
        True
    """

    def __init__(
        self,
        model: ModelLike = None,
        *,
        revision: str | None = None,
        data_range: float = 1.0,
        reduction: Reduction = "mean",
        check_domain: bool = True,
        compile: bool | dict[str, Any] = False,
    ) -> None:
        super().__init__(reduction=check_reduction(reduction))
        self.check_domain = bool(check_domain)
        self.data_range = check_data_range(data_range)
        self.model: SemSimModel = frozen_copy(model, revision, compile=compile)

    def train(self, mode: bool = True) -> SemSimLoss:
        """Switch the loss module's mode; the SemSim network itself always stays in eval mode."""
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """SemSim distance of ``x`` (e.g. a reconstruction) from ``y`` (e.g. the original)."""
        scores = _semsim_update(x, y, self.model, data_range=self.data_range, check_domain=self.check_domain)
        return _semsim_compute(scores, reduction=self.reduction)  # type: ignore[arg-type]
