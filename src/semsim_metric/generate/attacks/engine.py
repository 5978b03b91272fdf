"""The batched attack engine: many independent gradient-inversion attacks in one pass.

Each attack reconstructs one image from the clean gradient of one image. The victim runs in eval mode
(BatchNorm uses its running statistics), so the attacks of a batch are independent, and every optimiser
used is element-wise: attack ``b`` of a batch follows the trajectory it would follow alone (same seed, same
start) - batched, chunked and one-at-a-time runs agree (tested).

Two engines compute the per-sample gradients and their derivative w.r.t. each dummy image:

* ``layerwise`` (``_per_sample.LayerwiseGradients``, used whenever the victim allows it): the victim runs
  once on the whole batch with its shared weights, and each layer's per-sample parameter gradient is formed
  from its input and output gradient (convolution weights: one grouped ``convolution_backward``); plain
  autograd differentiates through it. Before it is trusted, its gradients are compared with ``vmap``'s on
  two originals (a probe that catches in-place layers and forward passes that mix samples).
* ``vmap``: ``torch.func.vmap`` over per-sample ``grad`` of ``grad``, for any victim (the fallback).

The originals are split into chunks that fit the memory budget (``_memory``: ``max_memory``, else
``$SEMSIM_ATTACK_MEMORY``, else 1 GiB on the CPU, at most half the available memory); each chunk runs to
the end before the next, so the working memory is bounded and flat in the iterations.

What differs between attacks - the gradient distance, how the label is obtained, priors, the paper's
settings - is an ``AttackDefinition`` in a module of its own in this package (``dlg.py``,
``idlg.py``, ...). Adding an attack means adding one such module that calls ``register_attack``; the
engine finds every module of the package by itself.
"""

from __future__ import annotations

import abc
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

from ..._progress import logger, track
from ...data.augmentation import item_seed
from ...errors import InvalidInputError, UnsupportedVictimError
from ._memory import bytes_per_attack, chunk_size
from ._per_sample import LayerwiseGradients

__all__ = [
    "ATTACKS",
    "AttackConfig",
    "AttackDefinition",
    "BatchPlan",
    "DuplicateAttackWarning",
    "attack_names",
    "attack_preset",
    "plan_batches",
    "register_attack",
    "run_attack",
    "run_attack_one_at_a_time",
]

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


def _same_attack(a: AttackDefinition, b: AttackDefinition) -> bool:
    """Whether two definitions are the same attack (as a module imported again defines it)."""

    def key(d: AttackDefinition) -> tuple[Any, ...]:
        fn = d.gradient_distance
        return (
            d.name,
            d.labels,
            d.batchnorm_prior,
            d.summary,
            repr(sorted(d.paper.items())),
            getattr(fn, "__module__", None),
            getattr(fn, "__qualname__", repr(fn)),
        )

    return key(a) == key(b)


def register_attack(definition: AttackDefinition, *, replace: bool = False) -> AttackDefinition:
    """Add an attack to ``ATTACKS`` (each attack module calls it at import; so can your own code).

    Registering a different attack under a name that is taken warns (``DuplicateAttackWarning``) and replaces
    it; ``replace=True`` says that this is intended. The package's own attacks are discovered once, whether or
    not something was registered before.

    Raises:
        InvalidInputError: (a ``ValueError``) a label strategy other than known, inferred or optimised.

    Examples:
        >>> from semsim_metric.generate.attacks import attack_names
        >>> "inverting_gradients" in attack_names()
        True
    """
    if definition.labels not in ("known", "inferred", "optimised"):
        raise InvalidInputError(f"attack {definition.name!r}: labels must be known, inferred or optimised.")
    existing = ATTACKS.get(definition.name)
    if existing is not None and not replace and not _same_attack(existing, definition):
        import warnings

        warnings.warn(
            f"attack {definition.name!r} was already registered; the new definition replaces it (pass "
            "replace=True to say so, or choose another name).",
            DuplicateAttackWarning,
            stacklevel=2,
        )
    ATTACKS[definition.name] = definition
    return definition


class DuplicateAttackWarning(UserWarning):
    """A second, different attack was registered under a name already taken."""


_discovered = False


def _discover() -> None:
    """Import every attack module of this package, once (each registers itself)."""
    global _discovered
    if _discovered:
        return
    _discovered = True
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
    ng = torch.sqrt(
        sum(g[k].square().sum() for k in g)
    )  # square(): the same value as pow(2), cheaper to differentiate
    nt = torch.sqrt(sum(target[k].square().sum() for k in g))
    return 1 - dot / (ng * nt + 1e-12)


def l2_gradient_distance(g: dict[str, Tensor], target: dict[str, Tensor]) -> Tensor:
    """Squared L2 distance of all gradients (DLG and its followers)."""
    return sum((g[k] - target[k]).square().sum() for k in g)


@dataclass(frozen=True)
class AttackConfig:
    """Settings of one attack.

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown attack name, or fewer than 1 iteration.
    """

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
            raise InvalidInputError(f"unknown attack {self.name!r}; choose one of {attack_names()}.")
        if self.iterations < 1:
            raise InvalidInputError(f"iterations must be at least 1, got {self.iterations}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def attack_preset(name: str, setting: str = "paper", **overrides: Any) -> AttackConfig:
    """``setting="paper"`` (the literature's iteration counts) or ``"quick"`` (CPU tests: 1/40 of them,
    at least 20); ``overrides`` change any field.

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown attack or setting.
    """
    if name not in attack_names():
        raise InvalidInputError(f"unknown attack {name!r}; choose one of {attack_names()}.")
    cfg = AttackConfig(name, **ATTACKS[name].paper)
    if setting == "quick":
        cfg = replace(cfg, iterations=max(20, cfg.iterations // 40))
    elif setting != "paper":
        raise InvalidInputError(f"setting must be 'paper' or 'quick', got {setting!r}.")
    return replace(cfg, **overrides)


@contextlib.contextmanager
def exact_math() -> Iterator[None]:
    """TF32 off and cuDNN benchmarking off: TF32 changes gradients by 1-5% and benchmarking is non-deterministic."""
    saved = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.benchmark,
    )
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cudnn.benchmark,
        ) = saved


def _tv(x: Tensor) -> Tensor:
    return (x[:, 1:, :] - x[:, :-1, :]).abs().mean() + (x[:, :, 1:] - x[:, :, :-1]).abs().mean()


def _tv_batched(x: Tensor) -> Tensor:
    """``_tv`` of each image of a batch ``(B, C, H, W)`` -> ``(B,)``."""
    return (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().flatten(1).mean(1) + (
        x[:, :, :, 1:] - x[:, :, :, :-1]
    ).abs().flatten(1).mean(1)


def _batchnorm_prior(modules: list[nn.Module], inputs: list[Tensor]) -> Tensor:
    """Per image: sum over BatchNorm layers of ||mean - running mean|| + ||var - running var|| of its input."""
    total = inputs[0].new_zeros(inputs[0].shape[0]) if inputs else torch.zeros(())
    for mod, feat in zip(modules, inputs):
        mean = feat.mean(dim=(2, 3))
        var = feat.var(dim=(2, 3), unbiased=False)
        total = (
            total
            + torch.linalg.vector_norm(mean - mod.running_mean, dim=-1)
            + torch.linalg.vector_norm(var - mod.running_var, dim=-1)
        )
    return total


class _Functional:
    """The victim as a pure function of (parameters, one image), for ``vmap`` (the fallback engine)."""

    def __init__(self, victim: nn.Module) -> None:
        self.victim = victim.eval()
        self.params = {k: v.detach() for k, v in victim.named_parameters()}
        self.buffers = {k: v.detach() for k, v in victim.named_buffers()}
        self.bn = [m for m in victim.modules() if isinstance(m, nn.BatchNorm2d)]
        self.bn_inputs: list[Tensor] = []
        self.collect = False  # BatchNorm inputs are kept only while the prior asks for them
        self.handles = [m.register_forward_hook(self._keep_input) for m in self.bn]
        two_d = [k for k, v in self.params.items() if v.ndim == 2]
        self.last_weight = two_d[-1] if two_d else None

    def _keep_input(self, module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        if self.collect:
            self.bn_inputs.append(inputs[0])

    def logits(self, params: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(self.victim, (params, self.buffers), (x.unsqueeze(0),))[0]

    def loss(self, params: dict[str, Tensor], x: Tensor, y_soft: Tensor) -> Tensor:
        return -(y_soft * F.log_softmax(self.logits(params, x), dim=-1)).sum()

    def sample_grad(self, x: Tensor, y_soft: Tensor) -> dict[str, Tensor]:
        return grad(self.loss)(self.params, x, y_soft)

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def bn_prior(self, x: Tensor) -> Tensor:
        self.bn_inputs.clear()
        self.collect = True
        try:
            self.logits(self.params, x)
        finally:
            self.collect = False
        inputs, self.bn_inputs = self.bn_inputs, []
        return _batchnorm_prior(self.bn, inputs)[0]


def infer_labels(target: dict[str, Tensor], last_weight: str) -> Tensor:
    """iDLG: the row of the last layer's weight gradient with a negative sum is the true class."""
    return target[last_weight].sum(dim=-1).argmin(dim=-1)


def _initial_dummies(shape: tuple[int, ...], seeds: list[int]) -> Tensor:
    return torch.stack([torch.rand(shape, generator=torch.Generator().manual_seed(s)) for s in seeds])


class _Objective(abc.ABC):
    """One attack's objective for a batch of independent attacks: per-sample targets, gradients, values."""

    engine = ""
    last_weight: str | None = None

    @abc.abstractmethod
    def targets(self, x: Tensor, onehot: Tensor) -> dict[str, Tensor]:
        """The clean per-sample gradients ``{name: (B, ...)}`` that the attacks match."""

    @abc.abstractmethod
    def gradient(
        self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        """Per-attack gradient of the objective w.r.t. the dummies (and the label parameters when optimised)."""

    @abc.abstractmethod
    def values(self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]) -> Tensor:
        """The objective of each attack ``(B,)``."""

    def close(self) -> None:  # noqa: B027 - optional: most objectives hold no hooks
        """Release hooks."""


class _LayerwiseObjective(_Objective):
    """Batched with ``LayerwiseGradients``: the victim runs once per step on the whole batch."""

    engine = "layerwise"

    def __init__(
        self,
        layerwise: LayerwiseGradients,
        cfg: AttackConfig,
        definition: AttackDefinition,
        last_weight: str | None,
    ) -> None:
        self.lw, self.cfg, self.definition, self.last_weight = layerwise, cfg, definition, last_weight
        self.optimised = definition.labels == "optimised"
        self.distance = vmap(definition.gradient_distance)
        self.prior = bool(definition.batchnorm_prior and cfg.bn_weight)

    def targets(self, x: Tensor, onehot: Tensor) -> dict[str, Tensor]:
        grads, _ = self.lw.gradients(x, onehot, create_graph=False)
        return {k: v.detach() for k, v in grads.items()}

    def _values(
        self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor], create_graph: bool
    ) -> Tensor:
        y_soft = F.softmax(label_param, dim=-1) if self.optimised else label_param
        grads, bn_inputs = self.lw.gradients(dummy, y_soft, create_graph=create_graph)
        value = self.distance(grads, target)
        if self.cfg.tv_weight:
            value = value + self.cfg.tv_weight * _tv_batched(dummy)
        if self.prior and bn_inputs:
            value = value + self.cfg.bn_weight * _batchnorm_prior(
                [m for m, _ in bn_inputs], [f for _, f in bn_inputs]
            )
        return value

    def gradient(
        self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        with torch.enable_grad():
            d = dummy.detach().requires_grad_(True)
            lp = label_param.detach().requires_grad_(self.optimised)
            value = self._values(d, lp, target, create_graph=True).sum()  # attacks are independent
            grads = torch.autograd.grad(value, [d, lp] if self.optimised else [d])
        return grads[0], (grads[1] if self.optimised else None)

    def values(self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]) -> Tensor:
        with torch.enable_grad():
            return self._values(dummy.detach(), label_param.detach(), target, create_graph=False).detach()


class _VmapObjective(_Objective):
    """Batched with ``torch.func``: ``vmap`` over per-sample ``grad`` of ``grad`` (any victim)."""

    engine = "vmap"

    def __init__(self, victim: nn.Module, cfg: AttackConfig, definition: AttackDefinition) -> None:
        self.fv = _Functional(victim)
        self.last_weight = self.fv.last_weight
        self.optimised = definition.labels == "optimised"
        fv = self.fv
        prior = bool(definition.batchnorm_prior and cfg.bn_weight and fv.bn)

        def objective(dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]) -> Tensor:
            y_soft = F.softmax(label_param, dim=-1) if self.optimised else label_param
            value = definition.gradient_distance(fv.sample_grad(dummy, y_soft), target)
            if cfg.tv_weight:
                value = value + cfg.tv_weight * _tv(dummy)
            if prior:
                value = value + cfg.bn_weight * fv.bn_prior(dummy)
            return value

        self._step = vmap(grad(objective, argnums=(0, 1) if self.optimised else 0), in_dims=(0, 0, 0))
        self._value = vmap(objective, in_dims=(0, 0, 0))

    def targets(self, x: Tensor, onehot: Tensor) -> dict[str, Tensor]:
        return {k: v.detach() for k, v in vmap(self.fv.sample_grad)(x, onehot).items()}

    def gradient(
        self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor | None]:
        grads = self._step(dummy.detach(), label_param.detach(), target)
        return (grads[0], grads[1]) if self.optimised else (grads, None)

    def values(self, dummy: Tensor, label_param: Tensor, target: dict[str, Tensor]) -> Tensor:
        with torch.no_grad():
            return self._value(dummy.detach(), label_param.detach(), target)

    def close(self) -> None:
        self.fv.close()


def _same_gradients(a: dict[str, Tensor], b: dict[str, Tensor]) -> bool:
    """Whether two sets of per-sample gradients agree to float32 rounding (relative to each tensor's scale)."""
    for k, reference in b.items():
        if k not in a or a[k].shape != reference.shape:
            return False
        if (
            reference.numel()
            and float((a[k] - reference).abs().max()) > 1e-3 * float(reference.abs().max()) + 1e-7
        ):
            return False
    return True


def _make_objective(
    victim: nn.Module, cfg: AttackConfig, definition: AttackDefinition, probe_x: Tensor, probe_y: Tensor
) -> _Objective:
    """The layer-wise engine when the victim allows it and it agrees with ``vmap`` on a probe, else ``vmap``.

    The probe (the first two originals, run together by the layer-wise engine and one by one by ``vmap``)
    catches layers modified in place and forward passes that mix the samples of a batch.
    """
    fallback = _VmapObjective(victim, cfg, definition)
    try:
        layerwise = LayerwiseGradients(victim).to(probe_x.device)
        candidate = _LayerwiseObjective(layerwise, cfg, definition, fallback.last_weight)
        agree = _same_gradients(candidate.targets(probe_x, probe_y), fallback.targets(probe_x, probe_y))
    except (UnsupportedVictimError, RuntimeError) as err:
        logger.debug("attack engine: vmap (%s)", err)
        return fallback
    if not agree:
        logger.debug(
            "attack engine: vmap (the layer-wise per-sample gradients disagree with vmap on a probe)"
        )
        return fallback
    fallback.close()
    return candidate


@dataclass(frozen=True)
class BatchPlan:
    """How ``run_attack`` splits its attacks: ``chunk`` at once, by the engine's memory estimate."""

    engine: str
    chunk: int
    bytes_per_attack: int
    budget: int


def plan_batches(
    victim: nn.Module,
    image_shape: tuple[int, ...],
    n: int,
    *,
    engine: str = "layerwise",
    device: torch.device | str = "cpu",
    max_memory: int | None = None,
) -> BatchPlan:
    """The chunk of attacks that fits the memory budget (see ``semsim_metric.generate.attacks._memory``).

    Args:
        victim: the attacked classifier.
        image_shape: ``(C, H, W)`` of one original.
        n: the number of attacks.
        engine: ``"layerwise"`` or ``"vmap"``.
        device: where they run.
        max_memory: cap in bytes (default ``$SEMSIM_ATTACK_MEMORY``, else 1 GiB on the CPU, none on a GPU).

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown engine, a cap below 1 byte, or an unreadable
            ``$SEMSIM_ATTACK_MEMORY``.
    """
    per = bytes_per_attack(victim, tuple(image_shape), engine)
    chunk, budget = chunk_size(n, per, torch.device(device), max_memory)
    return BatchPlan(engine, chunk, per, budget)


def _attack_chunk(
    objective: _Objective,
    x: Tensor,
    labels: Tensor,
    cfg: AttackConfig,
    definition: AttackDefinition,
    seeds: list[int],
    num_classes: int,
    desc: str,
    progress: bool,
) -> dict[str, Tensor]:
    device = x.device
    optimised = definition.labels == "optimised"
    onehot = F.one_hot(labels, num_classes).float()
    target = objective.targets(x, onehot)
    if definition.labels == "inferred":
        if objective.last_weight is None:
            raise UnsupportedVictimError(
                f"{cfg.name} needs a victim whose last layer is linear (it reads the label off it)."
            )
        used_labels = infer_labels(target, objective.last_weight)
        label_param = F.one_hot(used_labels, num_classes).float()
    elif optimised:
        label_param = torch.stack(
            [torch.randn(num_classes, generator=torch.Generator().manual_seed(s + 7)) for s in seeds]
        ).to(device)
        used_labels = labels
    else:
        label_param, used_labels = onehot, labels
    dummy = _initial_dummies(tuple(x.shape[1:]), seeds).to(device).requires_grad_(True)
    variables = [dummy] + ([label_param.requires_grad_(True)] if optimised else [])
    opt = torch.optim.Adam(variables, lr=cfg.learning_rate)
    drops = [int(m * cfg.iterations) for m in cfg.milestones]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=drops, gamma=0.1)
    for _ in track(range(cfg.iterations), desc, unit="it", progress=progress, leave=False):
        g_dummy, g_label = objective.gradient(dummy, label_param, target)
        dummy.grad = g_dummy.sign() if cfg.signed else g_dummy
        if optimised:
            label_param.grad = g_label
        del g_dummy, g_label  # nothing of one step outlives it: memory is flat in the iterations
        opt.step()
        sched.step()
        with torch.no_grad():
            dummy.clamp_(0, 1)
    final = objective.values(dummy, label_param, target)
    if optimised:
        used_labels = label_param.detach().argmax(-1)
    return {"reconstructions": dummy.detach().cpu(), "labels": used_labels.cpu(), "final_loss": final.cpu()}


def run_attack(
    victim: nn.Module,
    originals: Tensor,
    labels: Tensor,
    cfg: AttackConfig,
    *,
    seeds: list[int] | None = None,
    device: torch.device | str | None = None,
    progress: bool = False,
    max_memory: int | None = None,
) -> dict[str, Tensor]:
    """Run ``len(originals)`` independent attacks, as many at once as the memory allows.

    The attacks are split into chunks that fit the memory budget (``plan_batches``; ``max_memory``, else
    ``$SEMSIM_ATTACK_MEMORY``, else 1 GiB on the CPU, and at most half the available memory); each chunk is
    one batch of attacks run to the end. Attack ``b`` follows the trajectory it would follow alone, so the
    chunk size does not change the result (beyond float rounding of batched kernels; tested).

    Args:
        victim: the attacked classifier (put in eval mode).
        originals: float images ``(B, C, H, W)`` in [0, 1] whose clean gradients are attacked.
        labels: their labels ``(B,)``.
        cfg: attack settings.
        seeds: per-attack seeds of the random start (default ``item_seed(cfg.seed, index)``).
        device: where to run (default: the victim's device).
        progress: show a bar (terminal) or progress lines (piped log) per chunk.
        max_memory: memory budget in bytes for one chunk of attacks (see above).

    Returns:
        ``{"reconstructions": (B, C, H, W) in [0, 1], "labels": labels used or recovered (B,),
        "final_loss": (B,)}``.

    Raises:
        InvalidInputError: (a ``ValueError``) not as many seeds as attacks, or an unreadable memory budget.
        UnsupportedVictimError: (a ``ValueError``) iDLG on a victim without a final linear layer.
    """
    device = torch.device(device) if device is not None else next(victim.parameters()).device
    victim = victim.to(device).eval()
    n = originals.shape[0]
    seeds = seeds if seeds is not None else [item_seed(cfg.seed, i) for i in range(n)]
    if len(seeds) != n:
        raise InvalidInputError(f"{len(seeds)} seeds for {n} attacks.")
    definition = ATTACKS[cfg.name]
    with exact_math():
        x = originals.to(device, torch.float32)
        y = labels.to(device)
        two_d = [v for v in victim.parameters() if v.ndim == 2]
        num_classes = two_d[-1].shape[0] if two_d else int(labels.max()) + 1
        probe = slice(0, min(2, n))
        objective = _make_objective(
            victim, cfg, definition, x[probe], F.one_hot(y[probe], num_classes).float()
        )
        try:
            plan = plan_batches(
                victim, tuple(x.shape[1:]), n, engine=objective.engine, device=device, max_memory=max_memory
            )
            logger.debug(
                "%s: %d attack(s) in chunks of %d (%s engine, about %.0f MB per attack, budget %.0f MB)",
                cfg.name,
                n,
                plan.chunk,
                plan.engine,
                plan.bytes_per_attack / 2**20,
                plan.budget / 2**20,
            )
            chunks = list(range(0, n, plan.chunk))
            parts = []
            for i, start in enumerate(chunks):
                end = min(start + plan.chunk, n)
                desc = cfg.name if len(chunks) == 1 else f"{cfg.name} {i + 1}/{len(chunks)}"
                parts.append(
                    _attack_chunk(
                        objective,
                        x[start:end],
                        y[start:end],
                        cfg,
                        definition,
                        seeds[start:end],
                        num_classes,
                        desc,
                        progress,
                    )
                )
        finally:
            objective.close()
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def run_attack_one_at_a_time(
    victim: nn.Module,
    originals: Tensor,
    labels: Tensor,
    cfg: AttackConfig,
    *,
    seeds: list[int] | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Tensor]:
    """The same attacks run one after another: the reference that ``run_attack`` must equal (same seeds, same
    result) and the baseline ``benchmarks/bench_attacks.py`` measures batching against."""
    n = originals.shape[0]
    seeds = seeds if seeds is not None else [item_seed(cfg.seed, i) for i in range(n)]
    parts = [
        run_attack(victim, originals[i : i + 1], labels[i : i + 1], cfg, seeds=[seeds[i]], device=device)
        for i in range(n)
    ]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
