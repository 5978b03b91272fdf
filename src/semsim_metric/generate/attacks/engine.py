"""The batched attack engine: many independent gradient-inversion attacks in one pass with ``torch.func``.

Each attack reconstructs one image from the clean gradient of one image. The victim runs in eval mode
(BatchNorm uses its running statistics). Gradients are per-sample (``torch.func.grad``), and
``torch.func.vmap`` runs B independent attacks at once; every optimiser used is element-wise, so attack
``b`` of a batch follows exactly the trajectory it would follow alone (same seed, same start) - the
batched and one-at-a-time paths agree (tested).

What differs between attacks - the gradient distance, how the label is obtained, priors, the paper's
settings - is an ``AttackDefinition`` in a module of its own in this package (``dlg.py``,
``idlg.py``, ...). Adding an attack means adding one such module that calls ``register_attack``; the
engine finds every module of the package by itself.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from ..._progress import track

__all__ = ["ATTACKS", "AttackConfig", "AttackDefinition", "attack_names", "attack_preset", "register_attack",
           "run_attack", "run_attack_one_at_a_time"]

GradientDistance = Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]


@dataclass(frozen=True)
class AttackDefinition:
    """What makes one attack: its gradient distance, its label strategy, priors and the paper's settings.

    Attributes:
        name: the attack's name (``--attack NAME``).
        gradient_distance: ``fn(dummy_gradients, target_gradients) -> scalar`` (dicts by parameter name).
        labels: ``"known"`` (the true label is given), ``"inferred"`` (read off the last layer's gradient
            before optimising) or ``"optimised"`` (a soft label optimised jointly with the image).
        batchnorm_prior: add the BatchNorm-statistics prior (weight ``bn_weight``) on victims with BatchNorm.
        paper: the literature's settings (iterations, learning rate, weights, signed steps, milestones).
        summary: one line for docs and ``--help``.
    """

    name: str
    gradient_distance: GradientDistance
    labels: str
    paper: dict[str, Any]
    batchnorm_prior: bool = False
    summary: str = ""


ATTACKS: dict[str, AttackDefinition] = {}
"""The registered attacks by name (filled by the modules of this package)."""


def register_attack(definition: AttackDefinition) -> AttackDefinition:
    """Add an attack to ``ATTACKS`` (called by each attack module at import)."""
    if definition.labels not in ("known", "inferred", "optimised"):
        raise ValueError(f"attack {definition.name!r}: labels must be known, inferred or optimised.")
    ATTACKS[definition.name] = definition
    return definition


def _discover() -> None:
    """Import every attack module of this package once (each registers itself)."""
    if ATTACKS:
        return
    package = __name__.rpartition(".")[0]
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name not in ("engine",) and not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def attack_names() -> tuple[str, ...]:
    """Names of every registered attack, sorted."""
    _discover()
    return tuple(sorted(ATTACKS))


def cosine_gradient_distance(g: dict[str, Tensor], target: dict[str, Tensor]) -> Tensor:
    """1 - cosine similarity of all gradients taken as one vector (Inverting Gradients)."""
    dot = sum((g[k] * target[k]).sum() for k in g)
    ng = torch.sqrt(sum(g[k].pow(2).sum() for k in g))
    nt = torch.sqrt(sum(target[k].pow(2).sum() for k in g))
    return 1 - dot / (ng * nt + 1e-12)


def l2_gradient_distance(g: dict[str, Tensor], target: dict[str, Tensor]) -> Tensor:
    """Squared L2 distance of all gradients (DLG and its followers)."""
    return sum((g[k] - target[k]).pow(2).sum() for k in g)


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
        if self.name not in attack_names():
            raise ValueError(f"unknown attack {self.name!r}; choose one of {attack_names()}.")
        if self.iterations < 1:
            raise ValueError(f"iterations must be at least 1, got {self.iterations}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attack_preset(name: str, setting: str = "paper", **overrides: Any) -> AttackConfig:
    """``setting="paper"`` (the literature's iteration counts) or ``"quick"`` (CPU tests: 1/40 of them,
    at least 20); ``overrides`` change any field."""
    if name not in attack_names():
        raise ValueError(f"unknown attack {name!r}; choose one of {attack_names()}.")
    cfg = AttackConfig(name, **ATTACKS[name].paper)
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


def _objective(fv: _Functional, cfg: AttackConfig, definition: AttackDefinition):  # noqa: ANN202
    optimised = definition.labels == "optimised"

    def objective(dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]) -> Tensor:
        y_soft = F.softmax(label_param, dim=-1) if optimised else label_param
        value = definition.gradient_distance(fv.sample_grad(dummy, y_soft), target)
        if cfg.tv_weight:
            value = value + cfg.tv_weight * _tv(dummy)
        if definition.batchnorm_prior and cfg.bn_weight and fv.bn:
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
    device = torch.device(device) if device is not None else next(victim.parameters()).device
    victim = victim.to(device).eval()
    n = originals.shape[0]
    seeds = seeds if seeds is not None else [cfg.seed * 1_000_003 + i for i in range(n)]
    if len(seeds) != n:
        raise ValueError(f"{len(seeds)} seeds for {n} attacks.")
    definition = ATTACKS[cfg.name]
    optimised = definition.labels == "optimised"
    fv = _Functional(victim)
    with exact_math(), contextlib.closing(fv):
        x = originals.to(device, torch.float32)
        last = fv.params[fv.last_weight] if fv.last_weight else None
        num_classes = last.shape[0] if last is not None else int(labels.max()) + 1
        onehot = F.one_hot(labels.to(device), num_classes).float()
        target = vmap(fv.sample_grad)(x, onehot)
        target = {k: v.detach() for k, v in target.items()}
        if definition.labels == "inferred":
            if fv.last_weight is None:
                raise ValueError(f"{cfg.name} needs a victim whose last layer is linear (it reads the label off it).")
            used_labels = infer_labels(target, fv.last_weight)
            label_param = F.one_hot(used_labels, num_classes).float()
        elif optimised:
            label_param = torch.stack([torch.randn(num_classes, generator=torch.Generator().manual_seed(s + 7))
                                       for s in seeds]).to(device)
            used_labels = labels.to(device)
        else:
            label_param, used_labels = onehot, labels.to(device)
        dummy = _initial_dummies(tuple(originals.shape[1:]), seeds).to(device).requires_grad_(True)
        variables = [dummy] + ([label_param.requires_grad_(True)] if optimised else [])
        opt = torch.optim.Adam(variables, lr=cfg.learning_rate)
        drops = [int(m * cfg.iterations) for m in cfg.milestones]
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=drops, gamma=0.1)
        objective = _objective(fv, cfg, definition)
        argnums = (0, 1) if optimised else 0
        step = vmap(grad(objective, argnums=argnums, has_aux=False), in_dims=(0, 0, 0))
        value_fn = vmap(objective, in_dims=(0, 0, 0))
        # a bar in a terminal; in a piped log a line every few seconds with an estimate of the time left
        for _ in track(range(cfg.iterations), cfg.name, unit="it", progress=progress, leave=False):
            grads = step(dummy.detach(), label_param.detach(), target)
            g_dummy = grads[0] if optimised else grads
            dummy.grad = g_dummy.sign() if cfg.signed else g_dummy
            if optimised:
                label_param.grad = grads[1]
            opt.step()
            sched.step()
            with torch.no_grad():
                dummy.clamp_(0, 1)
        with torch.no_grad():
            final = value_fn(dummy.detach(), label_param.detach(), target)
        if optimised:
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
