"""semsim-metric: SemSim, a learned, human-aligned measure of privacy leakage in reconstructed images.

SemSim is a **distance** between an original image and its reconstruction: 0 = semantically
identical (the attack leaked what a person can recognise), larger = less leakage, range [0, 2].

The public names are imported lazily, so ``import semsim_metric`` is cheap and never imports training,
evaluation or generation code (nor torch or transformers). It registers SemSim with transformers all the same:
``AutoConfig``, ``AutoModel``, ``AutoImageProcessor`` and ``pipeline("semsim", ...)`` know it from the moment
transformers imports those registries (``semsim_metric.models.registration``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
from .models.registration import register_with_transformers

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


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
register_with_transformers()
