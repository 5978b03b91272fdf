"""semsim-metric: SemSim, a learned, human-aligned measure of privacy leakage in reconstructed images.

SemSim is a **distance** between an original image and its reconstruction: 0 = semantically
identical (the attack leaked what a person can recognise), larger = less leakage, range [0, 2].
"""

from .functional import semsim
from .loss import SemSimLoss
from .metric import SemSim
from .modeling import SemSimConfig, SemSimModel

__version__ = "0.1.0"

__all__ = ["SemSim", "SemSimConfig", "SemSimLoss", "SemSimModel", "load_annotations", "semsim", "__version__"]


def load_annotations(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """Load an annotation dataset in the project's schema (see :func:`semsim_metric.data.load_annotations`)."""
    from .data.loading import load_annotations as _load

    return _load(*args, **kwargs)
