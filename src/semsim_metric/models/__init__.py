"""SemSim models: configuration and modeling side by side (as in ``transformers``), the image processor and the
``semsim`` pipeline, backbones and blocks.

The names are imported lazily (``semsim_metric.models`` itself imports nothing heavy). ``import semsim_metric``
registers ``SemSimConfig``, ``SemSimModel`` and ``SemSimImageProcessor`` with ``AutoConfig``, ``AutoModel`` and
``AutoImageProcessor``, and the ``semsim`` task with transformers' pipelines, when transformers imports those
registries (``semsim_metric.models.registration``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

_PUBLIC = {
    "CIFAR100_MEAN": ".configuration_semsim",
    "CIFAR100_STD": ".configuration_semsim",
    "SemSimConfig": ".configuration_semsim",
    "SemSimModel": ".modeling_semsim",
    "SemSimOutput": ".modeling_semsim",
    "load_weights_strict": ".modeling_semsim",
    "SemSimImageProcessor": ".image_processing_semsim",
    "SemSimPipeline": ".pipeline_semsim",
}

__all__ = [
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "SemSimConfig",
    "SemSimImageProcessor",
    "SemSimModel",
    "SemSimOutput",
    "SemSimPipeline",
    "load_weights_strict",
]

if TYPE_CHECKING:
    from .configuration_semsim import CIFAR100_MEAN, CIFAR100_STD, SemSimConfig
    from .image_processing_semsim import SemSimImageProcessor
    from .modeling_semsim import SemSimModel, SemSimOutput, load_weights_strict
    from .pipeline_semsim import SemSimPipeline

__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
