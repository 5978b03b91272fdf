"""Gradient-inversion attacks behind a registry: the batched engine (``.engine``) and one module per
attack. Add an attack by adding a module here that calls
``register_attack``."""

from .engine import (
    ATTACKS,
    AttackConfig,
    AttackDefinition,
    BatchPlan,
    DuplicateAttackWarning,
    attack_names,
    attack_preset,
    plan_batches,
    register_attack,
    run_attack,
    run_attack_one_at_a_time,
)

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

attack_names()  # register every attack module of this package
