"""SemSim models: configuration and modeling side by side (as in ``transformers``), backbones and blocks.

Importing this package registers ``SemSimConfig`` / ``SemSimModel`` with ``AutoConfig`` / ``AutoModel``.
"""

from .configuration_semsim import CIFAR100_MEAN, CIFAR100_STD, SemSimConfig
from .modeling_semsim import SemSimModel, SemSimOutput, load_weights_strict

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "SemSimConfig", "SemSimModel", "SemSimOutput", "load_weights_strict"]
