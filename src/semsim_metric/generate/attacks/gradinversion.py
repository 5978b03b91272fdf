"""GradInversion-style attack (Yin et al. 2021): L2 gradient matching + a BatchNorm-statistics prior (the
dummy's per-channel mean/variance at each BatchNorm input vs the running statistics) + TV, Adam. On
victims without BatchNorm the prior is zero."""

from .engine import AttackDefinition, l2_gradient_distance, register_attack

GRADINVERSION = register_attack(
    AttackDefinition(
        name="gradinversion",
        gradient_distance=l2_gradient_distance,
        labels="known",
        batchnorm_prior=True,
        paper={
            "iterations": 8000,
            "learning_rate": 0.05,
            "tv_weight": 1e-4,
            "bn_weight": 1e-2,
            "signed": False,
            "milestones": (3 / 8, 5 / 8, 7 / 8),
        },
        summary="L2 gradient matching + BatchNorm-statistics prior + TV (Yin et al. 2021 style)",
    )
)
