"""Training SemSim: recipes, the stages and their one ``Trainer``, losses, calibration, validation and
model cards. Needs the ``[train]`` extra. Names are imported lazily (``semsim train --help`` stays fast).

Example:
    >>> from semsim_metric.training import get_recipe
    >>> get_recipe("semantic").vote_epochs
    4
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "RECIPES": ".recipes", "Recipe": ".recipes", "get_recipe": ".recipes",
    "TrainResult": ".run", "train": ".run",
    "fit_calibration": ".calibration",
    "pair_distances": ".validation", "validation_metrics": ".validation",
    "write_model_card": ".model_card",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semsim_metric.training' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
