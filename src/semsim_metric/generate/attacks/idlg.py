"""Improved DLG (Zhao et al. 2020): DLG with the label read off the last layer's weight gradient (the row
of the true class sums to a negative value when features are non-negative)."""

from .engine import AttackDefinition, l2_gradient_distance, register_attack

IDLG = register_attack(
    AttackDefinition(
        name="idlg",
        gradient_distance=l2_gradient_distance,
        labels="inferred",
        paper={
            "iterations": 300,
            "learning_rate": 0.05,
            "tv_weight": 0.0,
            "bn_weight": 0.0,
            "signed": False,
            "milestones": (),
        },
        summary="L2 gradient matching, label inferred from the last layer (Zhao et al. 2020)",
    )
)
