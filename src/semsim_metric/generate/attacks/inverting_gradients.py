"""Inverting Gradients (Geiping et al. 2020): 1 - cosine similarity of all gradients + total variation;
Adam on the *sign* of the gradient, lr 0.1, lr x0.1 at 3/8, 5/8, 7/8 of the iterations; pixels clamped to
[0, 1]; the true label is known. Paper setting: 8,000 iterations (24,000 in the original work)."""

from .engine import AttackDefinition, cosine_gradient_distance, register_attack

INVERTING_GRADIENTS = register_attack(
    AttackDefinition(
        name="inverting_gradients",
        gradient_distance=cosine_gradient_distance,
        labels="known",
        paper={
            "iterations": 8000,
            "learning_rate": 0.1,
            "tv_weight": 1e-4,
            "bn_weight": 0.0,
            "signed": True,
            "milestones": (3 / 8, 5 / 8, 7 / 8),
        },
        summary="cosine gradient matching + TV, signed Adam (Geiping et al. 2020)",
    )
)
