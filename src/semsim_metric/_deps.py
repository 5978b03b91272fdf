"""Optional dependencies: which extra of ``semsim-metric`` brings each one, and a clear error when missing.

The core install (the metric, the loss, Hub loading) needs only torch, torchmetrics, transformers,
huggingface-hub, safetensors, numpy and pillow. Training, evaluation, data generation and the annotation
app bring more through extras, e.g. ``pip install "semsim-metric[train]"``.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from .errors import MissingExtraError

__all__ = ["EXTRAS", "MissingExtraError", "require"]

#: Import name -> (distribution name, the extra that installs it).
EXTRAS: dict[str, tuple[str, str]] = {
    "datasets": ("datasets", "data"),
    "pyarrow": ("pyarrow", "data"),
    "accelerate": ("accelerate", "train"),
    "sklearn": ("scikit-learn", "train"),
    "scipy": ("scipy", "eval"),
    "matplotlib": ("matplotlib", "eval"),
    "piq": ("piq", "eval"),
    "torchvision": ("torchvision", "eval"),
    "skimage": ("scikit-image", "train"),
    "starlette": ("starlette", "annotate"),
    "uvicorn": ("uvicorn", "annotate"),
}


def require(module: str, purpose: str = "") -> ModuleType:
    """Import ``module`` or raise ``MissingExtraError`` naming the extra that installs it.

    Examples:
        >>> require("json").__name__
        'json'
    """
    try:
        return import_module(module)
    except ModuleNotFoundError as err:
        top = module.split(".")[0]
        if err.name is not None and err.name.split(".")[0] != top:
            raise
        dist, extra = EXTRAS.get(top, (top, "all"))
        what = f" for {purpose}" if purpose else ""
        raise MissingExtraError(
            f"semsim-metric needs the package {dist!r}{what}, which is not installed. "
            f'Install it with: pip install "semsim-metric[{extra}]"',
            name=top,
        ) from err
