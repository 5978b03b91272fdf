"""Gradient-inversion attacks, batched with ``torch.func``: many independent attacks in one pass.

Each attack reconstructs one image from the clean gradient of one image (true label known unless the
attack says otherwise). The victim runs in eval mode (BatchNorm uses its running statistics). Gradients
are per-sample (``torch.func.grad``), and ``torch.func.vmap`` runs B independent attacks at once; every
optimiser used is element-wise, so attack ``b`` of a batch follows exactly the trajectory it would follow
alone (same seed, same start) - the batched and one-at-a-time paths agree (tested).

Attacks:

* ``inverting_gradients`` (Geiping et al. 2020): 1 - cosine similarity of all gradients + total
  variation; Adam on the *sign* of the gradient, lr 0.1, lr x0.1 at 3/8, 5/8, 7/8 of the iterations;
  pixels clamped to [0, 1]. Paper setting: 8,000 iterations (24,000 in the original work).
* ``dlg`` (Zhu et al. 2019): squared L2 distance of gradients, the label optimised jointly (soft label).
  The original uses L-BFGS (~300 steps), which cannot be batched with vmap without changing it; here
  Adam is used (documented deviation).
* ``idlg`` (Zhao et al. 2020): DLG with the label read off the last layer's weight gradient (the row of
  the true class sums to a negative value when features are non-negative).
* ``gradinversion`` (Yin et al. 2021 style): L2 gradient matching + BatchNorm-statistics prior (the
  dummy's per-channel mean/variance at each BatchNorm input vs the running statistics) + TV, Adam. On
  victims without BatchNorm the prior is zero.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

__all__ = ["ATTACKS", "AttackConfig", "attack_preset", "run_attack", "run_attack_one_at_a_time"]

ATTACKS = ("inverting_gradients", "dlg", "idlg", "gradinversion")


@dataclass(frozen=True)
class AttackConfig:
    """Settings of one attack."""

    name: str = "inverting_gradients"
    iterations: int = 8000
    learning_rate: float = 0.1
    tv_weight: float = 1e-4
    bn_weight: float = 1e-2
    signed: bool = True
    milestones: tuple[float, ...] = (3 / 8, 5 / 8, 7 / 8)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.name not in ATTACKS:
            raise ValueError(f"unknown attack {self.name!r}; choose one of {ATTACKS}.")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_PAPER = {
    "inverting_gradients": AttackConfig("inverting_gradients", 8000, 0.1, 1e-4, 0.0, True),
    "dlg": AttackConfig("dlg", 300, 0.05, 0.0, 0.0, False, ()),
    "idlg": AttackConfig("idlg", 300, 0.05, 0.0, 0.0, False, ()),
    "gradinversion": AttackConfig("gradinversion", 8000, 0.05, 1e-4, 1e-2, False, (3 / 8, 5 / 8, 7 / 8)),
}


def attack_preset(name: str, setting: str = "paper", **overrides: Any) -> AttackConfig:
    """``setting="paper"`` (the literature's iteration counts) or ``"quick"`` (CPU tests: 1/40 of them,
    at least 20); ``overrides`` change any field."""
    if name not in _PAPER:
        raise ValueError(f"unknown attack {name!r}; choose one of {ATTACKS}.")
    cfg = _PAPER[name]
    if setting == "quick":
        cfg = replace(cfg, iterations=max(20, cfg.iterations // 40))
    elif setting != "paper":
        raise ValueError(f"setting must be 'paper' or 'quick', got {setting!r}.")
    return replace(cfg, **overrides)


@contextlib.contextmanager
def exact_math() -> Iterator[None]:
    """TF32 off and cuDNN benchmarking off: TF32 changes gradients by 1-5% and benchmarking is non-deterministic."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = saved


def _tv(x: Tensor) -> Tensor:
    return (x[:, 1:, :] - x[:, :-1, :]).abs().mean() + (x[:, :, 1:] - x[:, :, :-1]).abs().mean()


class _Functional:
    """The victim as a pure function of (parameters, one image)."""

    def __init__(self, victim: nn.Module) -> None:
        self.victim = victim.eval()
        self.params = {k: v.detach() for k, v in victim.named_parameters()}
        self.buffers = {k: v.detach() for k, v in victim.named_buffers()}
        self.bn = [m for m in victim.modules() if isinstance(m, nn.BatchNorm2d)]
        self.bn_inputs: list[Tensor] = []
        self.handles = [m.register_forward_hook(lambda mod, inp, out: self.bn_inputs.append(inp[0])) for m in self.bn]
        two_d = [k for k, v in self.params.items() if v.ndim == 2]
        self.last_weight = two_d[-1] if two_d else None

    def logits(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self.victim, (params, self.buffers), (x.unsqueeze(0),))[0]

    def loss(self, params: dict[str, Tensor], x: Tensor, y_soft: Tensor) -> Tensor:
        return -(y_soft * F.log_softmax(self.logits(params, x), dim=-1)).sum()

    def sample_grad(self, x: Tensor, y_soft: Tensor) -> dict[str, Tensor]:
        return grad(self.loss)(self.params, x, y_soft)

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def bn_prior(self) -> Tensor:
        total = torch.zeros(())
        for mod, feat in zip(self.bn, self.bn_inputs):
            mean = feat.mean(dim=(0, 2, 3))
            var = feat.var(dim=(0, 2, 3), unbiased=False)
            total = total + (mean - mod.running_mean).norm() + (var - mod.running_var).norm()
        self.bn_inputs.clear()
        return total


def _objective(fv: _Functional, cfg: AttackConfig):  # noqa: ANN202
    names = list(fv.params)

    def objective(dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]) -> Tensor:
        y_soft = F.softmax(label_param, dim=-1) if cfg.name == "dlg" else label_param
        g = fv.sample_grad(dummy, y_soft)
        if cfg.name == "inverting_gradients":
            dot = sum((g[k] * target[k]).sum() for k in names)
            ng = torch.sqrt(sum(g[k].pow(2).sum() for k in names))
            nt = torch.sqrt(sum(target[k].pow(2).sum() for k in names))
            value = 1 - dot / (ng * nt + 1e-12)
        else:
            value = sum((g[k] - target[k]).pow(2).sum() for k in names)
        if cfg.tv_weight:
            value = value + cfg.tv_weight * _tv(dummy)
        if cfg.name == "gradinversion" and cfg.bn_weight and fv.bn:
            fv.bn_inputs.clear()
            fv.logits(fv.params, dummy)
            value = value + cfg.bn_weight * fv.bn_prior()
        return value

    return objective


def infer_labels(target: dict[str, Tensor], last_weight: str) -> Tensor:
    """iDLG: the row of the last layer's weight gradient with a negative sum is the true class."""
    return target[last_weight].sum(dim=-1).argmin(dim=-1)


def _initial_dummies(shape: tuple[int, ...], seeds: list[int]) -> Tensor:
    return torch.stack([torch.rand(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


def run_attack(
    victim: nn.Module,
    originals: Tensor,
    labels: Tensor,
    cfg: AttackConfig,
    *,
    seeds: list[int] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> dict[str, Tensor]:
    """Run ``len(originals)`` independent attacks at once.

    Args:
        victim: the attacked classifier (put in eval mode).
        originals: float images ``(B, C, H, W)`` in [0, 1] whose clean gradients are attacked.
        labels: their labels ``(B,)``.
        cfg: attack settings.
        seeds: per-attack seeds of the random start (default ``cfg.seed * 1_000_003 + index``).
        device: where to run (default: the victim's device).

    Returns:
        ``{"reconstructions": (B, C, H, W) in [0, 1], "labels": labels used or recovered (B,),
        "final_loss": (B,)}``.
    """
    from tqdm.auto import tqdm

    device = torch.device(device) if device is not None else next(victim.parameters()).device
    victim = victim.to(device).eval()
    n = originals.shape[0]
    seeds = seeds if seeds is not None else [cfg.seed * 1_000_003 + i for i in range(n)]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} attacks.")
    num_classes = None
    fv = _Functional(victim)
    with exact_math(), contextlib.closing(fv):
        x = originals.to(device, torch.float32)
        last = fv.params[fv.last_weight] if fv.last_weight else None
        num_classes = last.shape[0] if last is not None else int(labels.max()) + 1
        onehot = F.one_hot(labels.to(device), num_classes).float()
        target = vmap(fv.sample_grad)(x, onehot)
        target = {k: v.detach() for k, v in target.items()}
        if cfg.name == "idlg":
            if fv.last_weight is None:
                raise ValueError("iDLG needs a victim whose last layer is linear.")
            used_labels = infer_labels(target, fv.last_weight)
            label_param = F.one_hot(used_labels, num_classes).float()
        elif cfg.name == "dlg":
            label_param = torch.stack([torch.randn(num_classes, generator=torch.Generator().manual_seed(s + 7))
                                       for s in seeds]).to(device)
            used_labels = labels.to(device)
        else:
            label_param, used_labels = onehot, labels.to(device)
        dummy = _initial_dummies(tuple(originals.shape[1:]), seeds).to(device).requires_grad_(True)
        variables = [dummy] + ([label_param.requires_grad_(True)] if cfg.name == "dlg" else [])
        opt = torch.optim.Adam(variables, lr=cfg.learning_rate)
        drops = [int(m * cfg.iterations) for m in cfg.milestones]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=drops, gamma=0.1)
        objective = _objective(fv, cfg)
        argnums = (0, 1) if cfg.name == "dlg" else 0
        step = vmap(grad(objective, argnums=argnums, has_aux=False), in_dims=(0, 0, 0))
        value_fn = vmap(objective, in_dims=(0, 0, 0))
        for _ in tqdm(range(cfg.iterations), desc=cfg.name, unit="it", disable=not progress, leave=False):
            grads = step(dummy.detach(), label_param.detach(), target)
            g_dummy = grads[0] if cfg.name == "dlg" else grads
            dummy.grad = g_dummy.sign() if cfg.signed else g_dummy
            if cfg.name == "dlg":
                label_param.grad = grads[1]
            opt.step()
            sched.step()
            with torch.no_grad():
                dummy.clamp_(0, 1)
        with torch.no_grad():
            final = value_fn(dummy.detach(), label_param.detach(), target)
        if cfg.name == "dlg":
            used_labels = label_param.detach().argmax(-1)
    return {"reconstructions": dummy.detach().cpu(), "labels": used_labels.cpu(), "final_loss": final.cpu()}


def run_attack_one_at_a_time(victim: nn.Module, originals: Tensor, labels: Tensor, cfg: AttackConfig, *,
                             seeds: list[int] | None = None, device: torch.device | str | None = None) -> dict[str, Tensor]:
    """The same attacks run one after another (the launch-bound way); same seeds give the same result."""
    n = originals.shape[0]
    seeds = seeds if seeds is not None else [cfg.seed * 1_000_003 + i for i in range(n)]
    parts = [run_attack(victim, originals[i:i + 1], labels[i:i + 1], cfg, seeds=[seeds[i]], device=device)
             for i in range(n)]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
