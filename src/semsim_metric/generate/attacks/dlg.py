"""Deep Leakage from Gradients (Zhu et al. 2019): squared L2 distance of gradients, the label optimised
jointly as a soft label. The original uses L-BFGS (~300 steps), which cannot be batched with vmap without
changing it; here Adam is used (documented deviation)."""

from .engine import AttackDefinition, l2_gradient_distance, register_attack

DLG = register_attack(
    AttackDefinition(
        name="dlg",
        gradient_distance=l2_gradient_distance,
        labels="optimised",
        paper={
            "iterations": 300,
            "learning_rate": 0.05,
            "tv_weight": 0.0,
            "bn_weight": 0.0,
            "signed": False,
            "milestones": (),
        },
        summary="L2 gradient matching with a jointly optimised soft label (Zhu et al. 2019; Adam instead of L-BFGS)",
    )
)
