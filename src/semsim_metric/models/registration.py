"""SemSim in transformers' registries: ``AutoConfig``, ``AutoModel``, ``AutoImageProcessor`` and the pipelines.

``import semsim_metric`` calls ``register_with_transformers()``, which imports nothing: each registration runs when
transformers imports the registry it goes into (``semsim_metric._lazy.call_after_import``), or at once when that
registry is already imported. So

    import semsim_metric
    from transformers import AutoModel
    AutoModel.from_pretrained("hub/semsim-resnet18-fmnist-judged")

works, while ``import semsim_metric`` stays as fast as before (it imports neither torch nor transformers). The model
class is registered as ``LazySemSimModel``, a stand-in that imports ``semsim_metric.models.modeling_semsim`` (and with
it ``transformers.modeling_utils``) only when ``AutoModel`` actually builds or loads a model; importing
``modeling_semsim`` registers the real class in its place.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType
from typing import Any

from .._lazy import call_after_import

__all__ = ["LazySemSimModel", "register_with_transformers"]

#: the task name of the SemSim pipeline (``pipeline("semsim", model=...)``)
PIPELINE_TASK = "semsim"


def _real_model_class() -> type:
    return import_module("semsim_metric.models.modeling_semsim").SemSimModel


class _LazyModelClass(type):
    """Metaclass of the stand-in: any attribute it lacks (``from_pretrained``, ``_from_config``, ...) is the real
    class's, imported on first use."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(_real_model_class(), name)

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, _real_model_class())

    def __subclasscheck__(cls, subclass: type) -> bool:
        return issubclass(subclass, _real_model_class())


class LazySemSimModel(metaclass=_LazyModelClass):
    """What ``AutoModel`` holds for ``SemSimConfig`` until the model code is imported: ``AutoModel.from_pretrained``
    and ``AutoModel.from_config`` call ``from_pretrained`` / ``_from_config`` on it, which are
    ``semsim_metric.SemSimModel``'s (and ``isinstance(model, LazySemSimModel)`` is ``isinstance(model,
    SemSimModel)``)."""

    config_class: type = type  # replaced by SemSimConfig when registered


# the name transformers shows and matches (pipelines compare a model's class name with the registered ones)
LazySemSimModel.__name__ = "SemSimModel"


def _register_config(auto: ModuleType) -> None:
    from .configuration_semsim import SemSimConfig

    auto.AutoConfig.register("semsim", SemSimConfig, exist_ok=True)


def _register_model(auto: ModuleType) -> None:
    from .configuration_semsim import SemSimConfig

    mapping = auto.AutoModel._model_mapping
    if SemSimConfig in mapping._extra_content:
        return  # the real class is registered already (modeling_semsim was imported first)
    LazySemSimModel.config_class = SemSimConfig
    auto.AutoModel.register(SemSimConfig, LazySemSimModel, exist_ok=True)


def register_model_class(model_class: type) -> None:
    """Register the real ``SemSimModel`` (called when ``modeling_semsim`` is imported, replacing the stand-in)."""
    from transformers import AutoConfig, AutoModel

    AutoConfig.register("semsim", model_class.config_class, exist_ok=True)
    AutoModel.register(model_class.config_class, model_class, exist_ok=True)


def _register_image_processor(auto: ModuleType) -> None:
    from .configuration_semsim import SemSimConfig
    from .image_processing_semsim import SemSimImageProcessor

    auto.AutoImageProcessor.register(
        SemSimConfig,
        image_processor_classes={"pil": SemSimImageProcessor, "torchvision": SemSimImageProcessor},
        exist_ok=True,
    )


def _register_pipeline(pipelines: ModuleType) -> None:
    from transformers import AutoModel

    # transformers' own tasks name their class by its dotted path ("impl"), imported when a pipeline is built: so does
    # this one (registering the class itself would import it while transformers.pipelines is still being imported)
    pipelines.PIPELINE_REGISTRY.supported_tasks.setdefault(
        PIPELINE_TASK,
        {"impl": "semsim_metric.models.pipeline_semsim.SemSimPipeline", "pt": (AutoModel,), "type": "image"},
    )


def register_with_transformers() -> None:
    """Arrange for SemSim's classes to enter transformers' registries when transformers imports them (at once for
    those already imported). Imports nothing itself; safe to call more than once."""
    call_after_import("transformers.models.auto.configuration_auto", _register_config)
    call_after_import("transformers.models.auto.modeling_auto", _register_model)
    call_after_import("transformers.models.auto.image_processing_auto", _register_image_processor)
    call_after_import("transformers.pipelines", _register_pipeline)
