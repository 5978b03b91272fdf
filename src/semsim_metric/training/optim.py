"""The one optimiser and learning-rate schedule factory of every training stage.

Every stage trains with SGD (momentum, optional Nesterov, weight decay) and one of three schedules,
stepped once per optimiser step by ``transformers.Trainer``:

* ``"multistep"`` - the paper's: multiply by ``gamma`` at fractions ``milestones`` of training;
* ``"onecycle"`` - warm up for ``warmup`` of training to ``learning_rate``, then anneal (stage 1);
* ``"cosine"`` - cosine decay from ``learning_rate`` to 0 (stage 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import InvalidInputError

__all__ = ["OptimiserSettings", "build_optimiser"]


@dataclass(frozen=True)
class OptimiserSettings:
    """SGD and its schedule.

    Examples:
        >>> opt, sched = build_optimiser([torch.nn.Parameter(torch.zeros(1))], OptimiserSettings(0.1), 10)
        >>> opt.defaults.get("lr"), type(sched).__name__
        (0.1, 'LambdaLR')
    """

    learning_rate: float
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: Literal["multistep", "onecycle", "cosine"] = "multistep"
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    warmup: float = 0.15

    def __post_init__(self) -> None:
        if not self.learning_rate >= 0:
            raise InvalidInputError(f"learning_rate must be >= 0, got {self.learning_rate}.")
        if self.schedule not in ("multistep", "onecycle", "cosine"):
            raise InvalidInputError(f"schedule must be multistep, onecycle or cosine, got {self.schedule!r}.")


def build_optimiser(
    params: Iterable[torch.nn.Parameter], settings: OptimiserSettings, total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """SGD over ``params`` and its schedule for ``total_steps`` optimiser steps (values below 1 count as 1)."""
    opt = torch.optim.SGD(
        list(params),
        lr=settings.learning_rate,
        momentum=settings.momentum,
        nesterov=settings.nesterov,
        weight_decay=settings.weight_decay,
    )
    total_steps = max(1, int(total_steps))
    sched: torch.optim.lr_scheduler.LRScheduler
    if settings.schedule == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=settings.learning_rate, total_steps=total_steps, pct_start=settings.warmup
        )
    elif settings.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total_steps)
    else:
        drops = [round(m * total_steps) for m in settings.milestones]
        gamma = settings.gamma
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: gamma ** sum(step >= d for d in drops))
    return opt, sched
