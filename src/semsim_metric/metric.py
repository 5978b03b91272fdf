"""``SemSim`` as a ``torchmetrics.Metric`` - a thin wrapper over ``semsim_metric.functional``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from .functional import (
    ModelLike,
    Output,
    Reduction,
    _semsim_compute,
    _semsim_update,
    check_output,
    check_reduction,
    frozen_copy,
)
from .models import SemSimModel
from .preprocessing import check_data_range

__all__ = ["SemSim"]


class SemSim(Metric):
    """SemSim: a learned, human-aligned distance between reconstructions and their originals.

    SemSim is a **distance**: 0 = the reconstruction is semantically identical to its original (the
    attack leaked what a person can recognise), larger = less leakage, range ``[0, 2]``;
    ``higher_is_better = False``. ``output="probability"`` reports instead the calibrated probability
    that the annotators the model was calibrated on (``config.calibration["fitted_on"]``: model judges for
    the default, not people) would recognise each reconstruction (higher = more leakage).

    The network is frozen, stays in eval mode, follows ``.to(device)`` / ``.to(dtype)`` and is **not**
    part of ``state_dict()`` (checkpoints stay clean). Mean and sum keep two scalar states (constant
    memory, summed across processes); ``reduction="none"`` keeps every score.

    Args:
        model: ``None`` (the bundled default), a Hub id, a local folder or a
            ``SemSimModel``. A passed-in model is copied, never modified.
        revision: Hub revision when ``model`` is a Hub id.
        data_range: maximum pixel value (1.0 for float images, 255 for uint8 images).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        output: ``"distance"`` | ``"probability"``.
        validate_args: scan pixel values (range, NaN/Inf) on every update.
        check_domain: warn once (``OutOfDomainWarning``) when the originals fall
            far outside what the model was trained on.
        compile: ``True`` (or a dict of ``torch.compile`` options) compiles the network's forward pass, which
            every score goes through; the scores are the same. A ``torch.compile``'d model is also accepted.
        kwargs: passed to ``torchmetrics.Metric`` (``sync_on_compute``, ``dist_sync_fn``, ...).

    Examples:
        >>> import torch
        >>> from semsim_metric import SemSim, SemSimConfig, SemSimModel
        >>> metric = SemSim(SemSimModel(SemSimConfig(base_width=4)))
        >>> originals = torch.rand(8, 1, 28, 28)
        >>> metric.update(originals, originals)
        >>> float(metric.compute())
        0.0
        >>> metric.state_dict()
        OrderedDict()
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0
    plot_upper_bound = 2.0

    sum_scores: Tensor
    total: Tensor
    scores: list[Tensor]

    def __init__(
        self,
        model: ModelLike = None,
        *,
        revision: str | None = None,
        data_range: float = 1.0,
        reduction: Reduction = "mean",
        output: Output = "distance",
        validate_args: bool = True,
        check_domain: bool = True,
        compile: bool | dict[str, Any] = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reduction = check_reduction(reduction)
        self.data_range = check_data_range(data_range)
        self.validate_args = bool(validate_args)
        self.check_domain = bool(check_domain)
        net = frozen_copy(model, revision, compile=compile)
        self.output = check_output(output, net)
        # A plain attribute holding a tuple: nn.Module does not register it, so the network stays out of
        # state_dict() and parameters(); _apply() below moves it with the metric.
        self._net: tuple[SemSimModel] = (net,)
        if self.reduction == "none":
            self.add_state("scores", default=[], dist_reduce_fx="cat")
        else:
            self.add_state("sum_scores", default=torch.tensor(0.0), dist_reduce_fx="sum")
            self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")

    @property
    def net(self) -> SemSimModel:
        """The frozen SemSim network used by this metric."""
        return self._net[0]

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch of reconstructions (``preds``) and their originals (``target``)."""
        scores = _semsim_update(preds, target, self.net, data_range=self.data_range, output=self.output,
                                validate_args=self.validate_args, check_domain=self.check_domain)
        if self.reduction == "none":
            self.scores.append(scores.to(self.dtype))
        else:
            self.sum_scores += scores.sum().to(self.sum_scores.dtype)
            self.total += scores.numel()

    def compute(self) -> Tensor:
        """Mean or sum of all scores so far, or every score (``reduction="none"``).

        With no pairs yet, ``reduction="none"`` gives an empty tensor and ``"sum"`` gives 0; ``"mean"`` has
        nothing to average and raises ``ValueError`` (instead of returning NaN).
        """
        if self.reduction == "none":
            if isinstance(self.scores, Tensor):  # already concatenated by a distributed sync
                values = self.scores
            elif not self.scores:
                return torch.zeros(0, device=self.device, dtype=self.dtype)
            else:
                values = torch.cat(self.scores)
            return _semsim_compute(values, reduction="none")
        if self.reduction == "mean" and int(self.total) == 0:
            raise ValueError("SemSim.compute() was called before any update(): there are no pairs to average. "
                             "Call update(preds, target) (or metric(preds, target)) first.")
        return _semsim_compute(self.sum_scores, self.total, reduction=self.reduction)

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> Any:
        this = super()._apply(fn, exclude_state)
        this._net[0].to(device=this.device, dtype=this.dtype)
        return this

    def train(self, mode: bool = True) -> SemSim:
        """Switch the metric's mode; the SemSim network itself always stays in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    def plot(self, val: Tensor | Sequence[Tensor] | None = None, ax: _AX_TYPE | None = None) -> _PLOT_OUT_TYPE:
        """Plot one value, or a sequence of values (e.g. one per epoch), with matplotlib.

        Examples:
            >>> import torch
            >>> from semsim_metric import SemSim, SemSimConfig, SemSimModel
            >>> metric = SemSim(SemSimModel(SemSimConfig(base_width=4)))
            >>> values = [metric(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)) for _ in range(3)]
            >>> fig, ax = metric.plot(values)
        """
        return self._plot(val, ax)
