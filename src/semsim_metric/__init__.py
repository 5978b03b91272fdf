"""semsim-metric: SemSim, a learned, human-aligned measure of privacy leakage in reconstructed images.

SemSim is a **distance** between an original image and its reconstruction: 0 = semantically
identical (the attack leaked what a person can recognise), larger = less leakage, range [0, 2].

The public names are imported lazily, so ``import semsim_metric`` is cheap and never imports training,
evaluation or generation code.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "SemSim": ".metric",
    "SemSimLoss": ".loss",
    "semsim": ".functional",
    "SemSimConfig": ".models",
    "SemSimModel": ".models",
    "load_annotations": ".data.loading",
}

__all__ = ["SemSim", "SemSimConfig", "SemSimLoss", "SemSimModel", "__version__", "load_annotations", "semsim"]

if TYPE_CHECKING:
    from .data.loading import load_annotations
    from .functional import semsim
    from .loss import SemSimLoss
    from .metric import SemSim
    from .models import SemSimConfig, SemSimModel


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semsim_metric' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
