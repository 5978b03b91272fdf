"""Training SemSim: recipes, the stages and their one ``Trainer``, losses, calibration, validation and
model cards. Needs the ``[train]`` extra. Names are imported lazily (``semsim train --help`` stays fast).

Examples:
    >>> from semsim_metric.training import get_recipe
    >>> get_recipe("semantic").vote_tuning.epochs
    4
"""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "RECIPES": ".recipes",
    "Recipe": ".recipes",
    "get_recipe": ".recipes",
    "PretrainSettings": ".settings",
    "TripletSettings": ".settings",
    "VoteTuningSettings": ".settings",
    "TrainOptions": ".run",
    "TrainResult": ".run",
    "train": ".run",
    "TrainerOptions": ".trainer",
    "fit_calibration": ".calibration",
    "pair_distances": ".validation",
    "validation_metrics": ".validation",
    "write_model_card": ".model_card",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
