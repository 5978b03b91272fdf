"""``SemSimLoss``: SemSim as a differentiable loss in piq style."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor
from torch.nn.modules.loss import _Loss

from .functional import (
    ImageBatch,
    ModelLike,
    Reduction,
    _semsim_compute,
    _semsim_update,
    check_reduction,
    frozen_copy,
)
from .models import SemSimModel
from .preprocessing import check_data_range

__all__ = ["SemSimLoss"]


class SemSimLoss(_Loss):
    """SemSim distance as a loss: ``loss(x, y)`` is the semantic distance of ``x`` from ``y``.

    Like every SemSim output, the value is a **distance** in ``[0, 2]`` (0 = semantically identical);
    minimising it pulls ``x`` towards what a person recognises in ``y`` (pyiqa's ``lower_better`` is ``True``,
    its ``score_range`` ``"0, 2"``). Gradients reach the inputs,
    never the network (frozen, always in eval mode); they are finite on constant, all-zero and
    identical images.

    The network follows ``.to(device)``, ``.to(dtype)``, ``.double()``, ``.half()`` and the other casts of a
    module holding the loss, but is **not** part of its ``state_dict()`` or ``parameters()``: checkpoints of a
    module that holds a ``SemSimLoss`` keep only that module's own weights. Checkpoints written before this
    (with the network's ``model.*`` keys) still load, also with ``strict=True``: those keys are ignored. A
    float64 loss (``.double()``) computes in float64 from the pixels to the loss.

    Args:
        model: ``None`` (bundled default), a Hub id, a folder or a ``SemSimModel``.
        revision: Hub revision when ``model`` is a Hub id.
        data_range: maximum pixel value of the inputs (1.0 or 255).
        reduction: ``"mean"`` | ``"sum"`` | ``"none"``.
        check_domain: warn once (``OutOfDomainWarning``) when the targets fall
            far outside what the model was trained on.
        compile: ``True`` (or a dict of ``torch.compile`` options) compiles the network's forward pass, which
            every score goes through; the scores are the same. A ``torch.compile``'d model is also accepted.

    Raises:
        ValueError: an unknown ``reduction`` or a ``data_range`` that is not a positive finite number.
        TypeError: ``model`` is not a ``SemSimModel``, a Hub id or a folder, or ``data_range`` is not a number.
        OSError: the model cannot be found or read (e.g. ``DefaultModelMissingError``, ``ModelNotFoundError``).

    Examples:
        >>> import torch
        >>> from semsim_metric import SemSimConfig, SemSimLoss, SemSimModel
        >>> loss_fn = SemSimLoss(SemSimModel(SemSimConfig(base_width=4)))
        >>> x = torch.rand(2, 3, 32, 32, requires_grad=True)
        >>> loss = loss_fn(x, torch.rand(2, 3, 32, 32))
        >>> loss.backward()
        >>> bool(x.grad.isfinite().all())
        True
        >>> loss_fn.state_dict()
        OrderedDict()
    """

    #: pyiqa's conventions: the loss is always the distance (lower = nearer), in [0, 2]
    lower_better: bool = True
    score_range: str = "0, 2"

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
        # A plain attribute holding a tuple: nn.Module does not register it, so the network stays out of
        # state_dict() and parameters(); _apply() below gives it every cast and move of the module.
        self._model: tuple[SemSimModel] = (frozen_copy(model, revision, compile=compile),)

    @property
    def model(self) -> SemSimModel:
        """The frozen SemSim network used by this loss."""
        return self._model[0]

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> SemSimLoss:
        super()._apply(fn, recurse)
        if recurse:  # what nn.Module does for a registered child
            self._model[0]._apply(fn)
        return self

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # checkpoints written while the network was a registered submodule hold it under "<prefix>model.":
        # drop those keys (the network is frozen and comes from the constructor) so that strict loading works
        old = f"{prefix}model."
        for key in [k for k in state_dict if k.startswith(old)]:
            del state_dict[key]
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def train(self, mode: bool = True) -> SemSimLoss:
        """Switch the loss module's mode; the SemSim network itself always stays in eval mode."""
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, x: Tensor, y: ImageBatch) -> Tensor:
        """SemSim distance of ``x`` (e.g. a reconstruction) from ``y`` (e.g. the original).

        ``y`` may also be an image file or a PIL image (or a list of them), decoded as ``semsim_metric.semsim``
        decodes them: a fixed target read from disk. Gradients reach tensor inputs only.

        Raises:
            TypeError: images of an unsupported type or dtype (see ``docs/inputs.md``).
            ValueError: images the input gate refuses (shape, channels, range, NaN/Inf, devices).
            ImageFileError: an image file that cannot be read (an ``OSError``).
        """
        scores = _semsim_update(x, y, self.model, data_range=self.data_range, check_domain=self.check_domain)
        return _semsim_compute(scores, reduction=self.reduction)  # type: ignore[arg-type]
