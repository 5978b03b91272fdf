"""``SemSim`` as a ``torchmetrics.Metric`` - a thin wrapper over ``semsim_metric.functional``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from ._warnings import warn_at_caller
from .errors import InvalidInputTypeError
from .functional import (
    ImageBatch,
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


def _rank_zero() -> bool:
    """Whether this process is rank 0 by torchmetrics' own record (the rule of its ``rank_zero_warn``)."""
    from torchmetrics.utilities.prints import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


class SemSim(Metric):
    """SemSim: a learned, human-aligned distance between reconstructions and their originals.

    SemSim is a **distance**: 0 = the reconstruction is semantically identical to its original (the
    attack leaked what a person can recognise), larger = less leakage, range ``[0, 2]``.
    ``output="probability"`` reports instead the calibrated probability that the annotators the model was
    calibrated on (``config.calibration["fitted_on"]``: model judges for the default, not people) would
    recognise each reconstruction (higher = more leakage), range ``[0, 1]``.

    "Better" means a better reconstruction, as for PSNR, SSIM and LPIPS: ``higher_is_better`` is ``False``
    for the distance and ``True`` for the probability, and ``plot_lower_bound`` / ``plot_upper_bound`` are
    0 and 2 or 0 and 1. ``torchmetrics.wrappers.MetricTracker.best_metric()`` and plots read them, so both
    outputs pick the same best step; a Lightning ``ModelCheckpoint`` reads only its own ``mode``: pass
    ``mode="max" if metric.higher_is_better else "min"``. pyiqa's names say the same and follow ``output`` too:
    ``lower_better`` is ``True`` for the distance and ``False`` for the probability, ``score_range`` is
    ``"0, 2"`` or ``"0, 1"``.

    Besides tensors, ``update`` (and ``metric(preds, target)``) takes image files (paths) and PIL images, one or a
    list of them per argument, as pyiqa does; they are decoded by the package's one rule set
    (``semsim_metric.image_io``) and then pass the same input gate (see ``semsim_metric.semsim``).

    The network is frozen, stays in eval mode, follows ``.to(device)``, ``.to(dtype)``, ``set_dtype``,
    ``.double()`` and ``.float()`` and is **not** part of ``state_dict()`` (checkpoints stay clean). Mean
    and sum keep two scalar states (constant memory, summed across processes); ``reduction="none"`` keeps
    every score.

    ``compute()`` with no pairs (no ``update()`` since construction or ``reset()``, on any process: a
    validation epoch without batches) warns and returns NaN for the mean, as torchmetrics' means do; the
    sum is then 0 and ``reduction="none"`` an empty tensor.

    Precision: scores are computed in the network's dtype (float32 by default). A float64 network -
    ``SemSim(model.double())``, ``metric.double()``, ``metric.set_dtype(torch.float64)`` or
    ``metric.to(torch.float64)`` - keeps float64 from the pixels to the score (and the states), so
    ``torch.autograd.gradcheck`` holds; ``.half()`` and ``.bfloat16()`` change nothing, as on every
    torchmetrics metric (use ``set_dtype``). The count of pairs stays an integer in every dtype.

    ``torchmetrics.wrappers.FeatureShare`` works (``feature_network = "net"``): SemSim metrics in one share
    the first one's network (one copy in memory). Their forward passes are not shared: FeatureShare's cache
    recognises only the very same input tensor, and each SemSim prepares its own model input.

    ``torch.jit.script(metric)`` gives what it gives for any torchmetrics metric: a module that a scripted
    parent (``LightningModule.to_torchscript()``) can hold but that cannot score (torchmetrics marks
    ``forward`` unused). SemSim itself is not TorchScript: the input gate is Python (checks with messages,
    ``isinstance``), and so is the transformers network; ``compile=True`` is the supported way to speed it up.

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

    Raises:
        ValueError: an unknown ``reduction`` or ``output``, ``output="probability"`` with an uncalibrated
            model, or a ``data_range`` that is not a positive finite number.
        TypeError: ``model`` is not a ``SemSimModel``, a Hub id or a folder, or ``data_range`` is not a number.
        OSError: the model cannot be found or read (e.g. ``DefaultModelMissingError``, ``ModelNotFoundError``).

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
        >>> metric.lower_better, metric.score_range
        (True, '0, 2')
    """

    is_differentiable = True
    full_state_update = False  # both outputs: a batch's value needs only that batch (sums, or its scores)
    feature_network: str = "net"  # the network torchmetrics.wrappers.FeatureShare shares
    # torchmetrics' own list (these are properties here) plus the network, which TorchScript cannot type, and
    # pyiqa's names
    __jit_unused_properties__: ClassVar[list[str]] = [
        *Metric.__jit_unused_properties__,
        "net",
        "lower_better",
        "score_range",
    ]

    if TYPE_CHECKING:  # the states add_state() creates; for type checkers only (TorchScript cannot read
        sum_scores: Tensor  # these postponed annotations, so that torch.jit.script would fail on them)
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
        if next(net.parameters()).dtype == torch.float64:
            self.set_dtype(torch.float64)  # a float64 model: states and later .to(device) keep float64

    @property
    def net(self) -> SemSimModel:
        """The frozen SemSim network used by this metric."""
        return self._net[0]

    @property
    def higher_is_better(self) -> bool:  # type: ignore[override]
        """``False`` for the distance (lower = better reconstruction), ``True`` for the probability."""
        return getattr(self, "output", "distance") == "probability"

    @property
    def lower_better(self) -> bool:
        """pyiqa's name for the direction: ``True`` for the distance (lower = better reconstruction, more leakage),
        ``False`` for the probability; always ``not higher_is_better``."""
        return not self.higher_is_better

    @property
    def score_range(self) -> str:
        """pyiqa's value range, in pyiqa's words: ``"0, 2"`` for the distance, ``"0, 1"`` for the probability
        (the numbers are ``plot_lower_bound`` and ``plot_upper_bound``)."""
        return f"{self.plot_lower_bound:g}, {self.plot_upper_bound:g}"

    @property
    def plot_lower_bound(self) -> float:  # type: ignore[override]
        """Lower end of the value range (0 for both outputs)."""
        return 0.0

    @property
    def plot_upper_bound(self) -> float:  # type: ignore[override]
        """Upper end of the value range: 2 for the distance, 1 for the probability."""
        return 1.0 if getattr(self, "output", "distance") == "probability" else 2.0

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute; ``net`` (what ``FeatureShare`` sets) replaces the network, outside the module tree.

        Raises:
            TypeError: ``net`` is set to something that is neither a ``SemSimModel`` nor ``FeatureShare``'s
                cache around one.
            ValueError: the metric reports probabilities and the new network has no calibration.
        """
        if name == "net":
            self._share_net(value)
        else:
            super().__setattr__(name, value)

    def _share_net(self, value: Any) -> None:
        # FeatureShare hands every metric a NetworkCache whose .network is the first metric's network (its
        # forward wrapped in a cache); keep that network in the tuple, so it stays out of state_dict() too
        net = getattr(value, "network", value)
        if not isinstance(net, SemSimModel):
            raise InvalidInputTypeError(
                f"SemSim.net must be a SemSimModel (or FeatureShare's cache around one), got "
                f"{type(value).__name__}."
            )
        check_output(self.output, net)
        self._net = (net,)

    def update(self, preds: ImageBatch, target: ImageBatch) -> None:
        """Add a batch of reconstructions (``preds``) and their originals (``target``).

        Each is a tensor ``(N, C, H, W)``, an image file (``str`` or ``os.PathLike``), a PIL image, or a list of
        files or PIL images (a batch), as for ``semsim_metric.semsim``.

        Raises:
            TypeError: images of an unsupported type or dtype (see ``docs/inputs.md``).
            ValueError: images the input gate refuses (shape, channels, range, NaN/Inf, devices).
            ImageInputError: a list that holds something else than files or PIL images, or pairs whose counts or
                sizes differ (a ``ValueError``).
            ImageFileError: an image file that cannot be read (an ``OSError``).
        """
        scores = _semsim_update(
            preds,
            target,
            self.net,
            data_range=self.data_range,
            output=self.output,
            validate_args=self.validate_args,
            check_domain=self.check_domain,
        )
        if self.reduction == "none":
            self.scores.append(scores.to(self.dtype))
        else:
            self.sum_scores += scores.sum().to(self.sum_scores.dtype)
            self.total += scores.numel()

    @torch.jit.unused
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Score a batch: add it to the states and return its value, with gradients to the images.

        The returned value keeps its autograd graph; the accumulated states do not (torchmetrics detaches summed
        states but keeps list states as they are, so ``reduction="none"`` would hold every batch's graph, the
        network's activations included, until ``reset()``).
        """
        value = super().forward(*args, **kwargs)
        scores = self.__dict__.get("scores")
        if isinstance(scores, list):  # only this batch's scores can carry a graph: they are last
            for i in range(len(scores) - 1, -1, -1):
                if not scores[i].requires_grad:
                    break
                scores[i] = scores[i].detach()
        return value

    def compute(self) -> Tensor:
        """Mean or sum of all scores so far, or every score (``reduction="none"``).

        With no pairs (no ``update()`` since construction or ``reset()`` on any process, e.g. a validation
        epoch without batches) ``"mean"`` has nothing to average: it warns (``UserWarning``) and returns NaN,
        as torchmetrics' means do, so a ``MetricCollection`` or a Lightning epoch goes on. ``"sum"`` gives 0
        and ``reduction="none"`` an empty tensor.
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
            if _rank_zero():  # as torchmetrics' rank_zero_warn, but attributed to the caller's line
                warn_at_caller(
                    "SemSim.compute() found no pairs to average (no update() since the metric was created "
                    "or reset, on any process): the mean is NaN. Call update(preds, target) (or "
                    "metric(preds, target)) first.",
                    UserWarning,
                )
            return torch.full((), float("nan"), dtype=self.sum_scores.dtype, device=self.sum_scores.device)
        return _semsim_compute(self.sum_scores, self.total, reduction=self.reduction)

    def set_dtype(self, dst_type: str | torch.dtype) -> SemSim:
        """Cast the floating states and the network to ``dst_type``; the count of pairs stays an integer.

        (``torchmetrics.Metric.set_dtype`` casts every state, and a bfloat16 count stops at 256.)
        """
        if isinstance(dst_type, torch.dtype) and dst_type.is_floating_point:
            return self.to(dst_type)  # casts floating tensors only, and the metric's dtype with them
        return super().set_dtype(dst_type)  # type: ignore[return-value]

    def _apply(self, fn: Callable, exclude_state: Sequence[str] = "") -> Any:
        old_dtype, old_device = self._dtype, self._device
        this = super()._apply(fn, exclude_state)
        if this._dtype != old_dtype:
            # torchmetrics reads the new dtype off a float32 probe, so a float64 metric moved with .to(device)
            # would report float32 (and its network be cast to it): probe with the metric's own dtype instead
            this._dtype = fn(torch.zeros(1, dtype=old_dtype, device=old_device)).dtype
        this._net[0].to(device=this.device, dtype=this.dtype)
        return this

    def train(self, mode: bool = True) -> SemSim:
        """Switch the metric's mode; the SemSim network itself always stays in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    def plot(
        self, val: Tensor | Sequence[Tensor] | None = None, ax: _AX_TYPE | None = None
    ) -> _PLOT_OUT_TYPE:
        """Plot one value, or a sequence of values (e.g. one per epoch), with matplotlib.

        Examples:
            >>> import torch
            >>> from semsim_metric import SemSim, SemSimConfig, SemSimModel
            >>> metric = SemSim(SemSimModel(SemSimConfig(base_width=4)))
            >>> values = [metric(torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)) for _ in range(3)]
            >>> fig, ax = metric.plot(values)
        """
        return self._plot(val, ax)

    # last in the class body: a method named ``float`` would shadow the builtin in annotations below it
    def double(self) -> SemSim:
        """Score in float64 from the pixels to the score (``set_dtype(torch.float64)``), e.g. for gradcheck."""
        return self.set_dtype(torch.float64)

    def float(self) -> SemSim:
        """Score in float32 (``set_dtype(torch.float32)``), the default."""
        return self.set_dtype(torch.float32)
