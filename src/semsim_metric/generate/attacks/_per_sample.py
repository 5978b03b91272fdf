"""Per-sample gradients of a victim for a whole batch at once, layer by layer (no ``vmap``).

A gradient-inversion attack on ``B`` independent originals needs ``B`` per-sample parameter gradients of
the victim's loss - each a function of its own image - and then the gradient of a distance between them
and their targets with respect to each image (second order). ``torch.func.vmap`` over ``torch.func.grad``
does this generically but turns every convolution into a grouped one, in the forward pass as well, and is
slow for convolutional victims. Here instead:

1. the victim runs **once on the whole batch with its shared weights** (ordinary batched convolutions);
   the victim is in eval mode, so BatchNorm uses its running statistics and samples stay independent;
2. one backward pass of the summed loss gives, for every layer with parameters, the gradient at its
   output (``delta``) - per sample, because samples are independent;
3. each layer's per-sample parameter gradient is formed from its input and ``delta``: ``Linear``
   ``delta x^T`` (a batched outer product), ``Conv2d`` one *grouped* ``convolution_backward`` for the
   weights of all samples (group ``b`` = sample ``b``), BatchNorm ``sum(delta * x_hat)`` and ``sum(delta)``.

All of it is ordinary autograd, so the attack differentiates through it (``create_graph=True``), and
only the per-sample weight gradients use grouped convolutions. The victim is copied with frozen
parameters and BatchNorm replaced by its eval-mode affine map (``_FrozenBatchNorm``: the same function,
cheaper to differentiate twice). Victims with other parameterised layers are refused
(``UnsupportedVictimError``); the engine then falls back to ``vmap``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import UnsupportedVictimError

__all__ = ["LayerwiseGradients", "UnsupportedVictimError"]

# modules without parameters that act on each sample on its own (a victim may hold only these besides
# the parameterised layers below and containers of the package's victims)
_PER_SAMPLE_MODULES: tuple[type[nn.Module], ...] = (
    nn.Sequential,
    nn.ModuleList,
    nn.ModuleDict,
    nn.Identity,
    nn.Flatten,
    nn.Unflatten,
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.GELU,
    nn.ELU,
    nn.SiLU,
    nn.Softplus,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Dropout,
    nn.Dropout2d,
)
_PACKAGE_CONTAINERS = ("semsim_metric.generate.victims", "semsim_metric.models.blocks")


class _FrozenBatchNorm(nn.Module):
    """``nn.BatchNorm2d`` in eval mode as the affine map it is: ``x * scale + shift`` per channel."""

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.weight = bn.weight
        self.bias = bn.bias
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.eps = bn.eps
        inv_std = torch.rsqrt(bn.running_var + bn.eps)
        scale = inv_std * bn.weight.detach() if bn.weight is not None else inv_std
        shift = (
            bn.bias.detach() - bn.running_mean * scale if bn.bias is not None else -bn.running_mean * scale
        )
        self.register_buffer("inv_std", inv_std.detach(), persistent=False)
        self.register_buffer("scale", scale.detach()[:, None, None], persistent=False)
        self.register_buffer("shift", shift.detach()[:, None, None], persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.addcmul(self.shift, x, self.scale)


@dataclass
class _Call:
    module: nn.Module
    name: str
    input: Tensor
    output: Tensor
    version: int


def _check_supported(victim: nn.Module) -> None:
    """Raise ``UnsupportedVictimError`` unless every module of ``victim`` is one this class handles."""
    for name, module in victim.named_modules():
        own = [p for p in module._parameters.values() if p is not None]
        if isinstance(module, nn.Conv2d):
            if isinstance(module.padding, str) or module.padding_mode != "zeros":
                raise UnsupportedVictimError(
                    f"{name}: Conv2d with padding {module.padding!r} / mode "
                    f"{module.padding_mode!r} (only numeric zero padding)."
                )
        elif isinstance(module, nn.BatchNorm2d):
            if not module.track_running_stats or module.running_mean is None or module.running_var is None:
                raise UnsupportedVictimError(f"{name}: BatchNorm2d without running statistics.")
        elif isinstance(module, nn.Linear):
            pass
        elif own:
            raise UnsupportedVictimError(f"{name}: {type(module).__name__} has parameters of its own.")
        elif not (isinstance(module, _PER_SAMPLE_MODULES) or type(module).__module__ in _PACKAGE_CONTAINERS):
            raise UnsupportedVictimError(f"{name}: {type(module).__name__} is not known to act per sample.")


def _freeze_batchnorm(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, _FrozenBatchNorm(child))
        else:
            _freeze_batchnorm(child)


class LayerwiseGradients:
    """Per-sample parameter gradients of a victim's cross-entropy for a batch, differentiable twice.

    Args:
        victim: a classifier built of ``Conv2d`` (numeric zero padding), ``Linear`` and ``BatchNorm2d``
            layers with running statistics, plus parameter-free per-sample modules. It is copied (the
            original is left as it is) and used in eval mode.

    Raises:
        UnsupportedVictimError: the victim holds another kind of parameterised layer, or a module that is
            not known to act on each sample on its own.

    Examples:
        >>> from semsim_metric.generate.victims import VictimSpec, build_victim
        >>> lw = LayerwiseGradients(build_victim(VictimSpec("conv_relu", width=4), 1, 10, 12))
        >>> g, bn = lw.gradients(torch.rand(3, 1, 12, 12), torch.eye(10)[:3], create_graph=False)
        >>> tuple(g["fc.weight"].shape)
        (3, 10, 16)
        >>> len(bn), tuple(bn[0][1].shape)
        (3, (3, 4, 12, 12))
    """

    def __init__(self, victim: nn.Module) -> None:
        _check_supported(victim)
        self.names = [k for k, _ in victim.named_parameters()]
        shadow = copy.deepcopy(victim).eval()
        _freeze_batchnorm(shadow)
        for p in shadow.parameters():
            p.requires_grad_(False)
        self.shadow = shadow
        self._calls: list[_Call] = []
        self._recording = False
        self._weights: dict[tuple[int, int], Tensor] = {}  # (module id, batch) -> weights repeated per sample
        self.layers = [
            (n, m)
            for n, m in shadow.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, _FrozenBatchNorm))
        ]
        for name, module in self.layers:
            module.register_forward_hook(self._hook(name))

    def _hook(self, name: str):
        def record(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            if self._recording:
                self._calls.append(_Call(module, name, inputs[0], output, output._version))

        return record

    def to(self, device: torch.device) -> LayerwiseGradients:
        """Move the victim copy to ``device`` (returns ``self``)."""
        self.shadow.to(device)
        self._weights.clear()
        return self

    def logits(self, x: Tensor) -> Tensor:
        """The victim's logits ``(B, classes)`` for a batch (nothing recorded)."""
        return self.shadow(x)

    def gradients(
        self, x: Tensor, y_soft: Tensor, *, create_graph: bool
    ) -> tuple[dict[str, Tensor], list[tuple[nn.Module, Tensor]]]:
        """Per-sample gradients of ``-sum(y_soft * log_softmax(victim(x)))`` for every parameter.

        Args:
            x: images ``(B, C, H, W)``; may require grad (the attack's dummies).
            y_soft: per-sample (soft) labels ``(B, classes)``; may require grad.
            create_graph: keep the graph so that the result can be differentiated again.

        Returns:
            ``({parameter name: (B, *parameter shape)}, [(BatchNorm layer, its input (B, C, H, W)) per call])``;
            each BatchNorm layer has ``running_mean`` and ``running_var``.

        Raises:
            RuntimeError: a layer's output was modified in place after the layer ran (its recorded
                output no longer holds the value the loss saw).
        """
        if not x.requires_grad:
            x = x.detach().requires_grad_(True)  # the recorded layer outputs must be part of a graph
        self._calls = []
        self._recording = True
        try:
            logits = self.shadow(x)
        finally:
            self._recording = False
        calls, self._calls = self._calls, []
        for call in calls:
            if call.output._version != call.version:
                raise RuntimeError(f"the output of {call.name} was modified in place after the layer ran.")
        loss = -(y_soft * F.log_softmax(logits, dim=-1)).sum()
        deltas = torch.autograd.grad(
            loss, [c.output for c in calls], create_graph=create_graph, allow_unused=True
        )
        batch = x.shape[0]
        grads: dict[str, Tensor] = {}
        for call, delta in zip(calls, deltas):
            if delta is None:
                continue
            for key, value in self._layer_gradients(call, delta, batch).items():
                full = f"{call.name}.{key}" if call.name else key
                grads[full] = grads[full] + value if full in grads else value
        params = dict(self.shadow.named_parameters())
        out = {}
        for name in self.names:
            out[name] = grads[name] if name in grads else x.new_zeros((batch, *params[name].shape))
        bn_inputs = [(c.module, c.input) for c in calls if isinstance(c.module, _FrozenBatchNorm)]
        return out, bn_inputs

    def _repeated_weight(self, module: nn.Conv2d, batch: int) -> Tensor:
        key = (id(module), batch)
        if key not in self._weights:
            self._weights[key] = module.weight.detach().repeat(batch, 1, 1, 1)
        return self._weights[key]

    def _layer_gradients(self, call: _Call, delta: Tensor, batch: int) -> dict[str, Tensor]:
        module, a = call.module, call.input
        out: dict[str, Tensor] = {}
        if isinstance(module, nn.Linear):
            if a.ndim == 2:
                out["weight"] = torch.bmm(delta.unsqueeze(2), a.unsqueeze(1))
            else:  # (B, ..., features): sum over the middle dimensions
                out["weight"] = torch.einsum("b...o,b...i->boi", delta, a)
            if module.bias is not None:
                out["bias"] = delta if delta.ndim == 2 else delta.flatten(1, -2).sum(1)
        elif isinstance(module, nn.Conv2d):
            weight = module.weight
            if weight.shape[2:] == (1, 1) and module.padding == (0, 0) and module.groups == 1:
                sub = a[:, :, :: module.stride[0], :: module.stride[1]][
                    :, :, : delta.shape[2], : delta.shape[3]
                ]
                w = torch.bmm(delta.flatten(2), sub.flatten(2).transpose(1, 2))
            else:  # one grouped convolution_backward: group b holds sample b
                w = torch.ops.aten.convolution_backward(
                    delta.reshape(1, -1, *delta.shape[2:]),
                    a.reshape(1, -1, *a.shape[2:]),
                    self._repeated_weight(module, batch),
                    None,
                    list(module.stride),
                    list(module.padding),
                    list(module.dilation),
                    False,
                    [0, 0],
                    batch * module.groups,
                    [False, True, False],
                )[1]
            out["weight"] = w.reshape(batch, *weight.shape)
            if module.bias is not None:
                out["bias"] = delta.sum(dim=(2, 3))
        else:  # _FrozenBatchNorm: d/d weight = sum(delta * x_hat), d/d bias = sum(delta)
            if module.weight is not None:
                x_hat = (a - module.running_mean[:, None, None]) * module.inv_std[:, None, None]
                out["weight"] = (delta * x_hat).sum(dim=(2, 3))
            if module.bias is not None:
                out["bias"] = delta.sum(dim=(2, 3))
        return out
