"""Configuration of a SemSim model (``config.json``), kept apart from the network as transformers does."""

from __future__ import annotations

import math
from typing import Any

from transformers import AutoConfig, PretrainedConfig

from .backbones import EMBEDDINGS

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "MAX_BASE_WIDTH", "MAX_IMAGE_SIZE", "SemSimConfig"]

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


#: largest accepted ``base_width`` (the paper uses 64; 256 is already a 180M-parameter ResNet-18)
MAX_BASE_WIDTH = 256
#: largest accepted ``image_size`` (the paper uses 32)
MAX_IMAGE_SIZE = 512


def _int_field(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, float) and value.is_integer()):
        raise ValueError(f"{name} must be an integer, got {value!r}.")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}.")
    return int(value)


def _triple(name: str, values: Any) -> list[float]:
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        raise ValueError(f"{name} needs 3 numbers (R, G, B), got {values!r}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} needs 3 finite numbers (R, G, B), got {values!r}.")
        out.append(float(v))
    return out


def _check_calibration(calibration: Any) -> dict[str, Any]:
    if not isinstance(calibration, dict):
        raise ValueError(f"calibration must be a dictionary with 'intercept' and 'slope', got {calibration!r}.")
    for key in ("intercept", "slope"):
        v = calibration.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"calibration needs a finite number '{key}', got {v!r} (it maps a distance d to "
                             "sigmoid(intercept + slope * d)).")
    return dict(calibration)


class SemSimConfig(PretrainedConfig):
    """Configuration of a ``SemSimModel``.

    Args:
        backbone: ``"cifar_resnet18"`` (the paper's network) or ``"transformers"`` (any vision model
            described by ``backbone_config``).
        base_width: width of the first ResNet stage (64 in the paper -> 512-d embedding).
        backbone_config: ``transformers`` config dictionary of the backbone when
            ``backbone="transformers"``.
        embedding: ``"pooled"`` (the paper: globally pooled features), ``"spatial_smooth"`` (the last
            feature map averaged over each cell's 3x3 neighbourhood, then flattened: layout kept, small
            shifts absorbed) or ``"spatial"`` (the flattened
            last feature map; CIFAR ResNet-18 only).
        image_size: side of the square model input; every image is resized to it (32 in the paper).
        image_mean: per-channel mean used for normalisation (CIFAR-100's by default).
        image_std: per-channel standard deviation used for normalisation (CIFAR-100's by default).
        calibration: optional logistic calibration ``{"intercept": a, "slope": b, ...}`` mapping a
            distance ``d`` to the probability ``sigmoid(a + b * d)`` that a person (or the annotator
            panel named in ``"fitted_on"``) would recognise the reconstruction.
        training_domain: what the annotated training originals were (channels, sizes, an embedding
            summary); inputs far outside it raise an ``OutOfDomainWarning``.

    Examples:
        >>> cfg = SemSimConfig(base_width=16)
        >>> cfg.model_type, cfg.embedding_dim
        ('semsim', 128)
    """

    model_type = "semsim"

    def __init__(
        self,
        backbone: str = "cifar_resnet18",
        base_width: int = 64,
        backbone_config: dict[str, Any] | None = None,
        embedding: str = "pooled",
        image_size: int = 32,
        image_mean: tuple[float, ...] | list[float] = CIFAR100_MEAN,
        image_std: tuple[float, ...] | list[float] = CIFAR100_STD,
        calibration: dict[str, Any] | None = None,
        training_domain: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if backbone not in ("cifar_resnet18", "transformers"):
            raise ValueError(f"backbone must be 'cifar_resnet18' or 'transformers', got {backbone!r}.")
        base_width = _int_field("base_width", base_width, 1, MAX_BASE_WIDTH)
        image_size = _int_field("image_size", image_size, 4, MAX_IMAGE_SIZE)
        image_mean, image_std = _triple("image_mean", image_mean), _triple("image_std", image_std)
        if any(s <= 0 for s in image_std):
            raise ValueError(f"image_std must be positive, got {tuple(image_std)}.")
        if backbone_config is not None and (not isinstance(backbone_config, dict)
                                            or not isinstance(backbone_config.get("model_type"), str)):
            raise ValueError("backbone_config must be a transformers config dictionary with a 'model_type'.")
        if calibration is not None:
            calibration = _check_calibration(calibration)
        if training_domain is not None and not isinstance(training_domain, dict):
            raise ValueError(f"training_domain must be a dictionary, got {type(training_domain).__name__}.")
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}.")
        if embedding != "pooled" and backbone != "cifar_resnet18":
            raise ValueError(f"embedding={embedding!r} is only available for backbone='cifar_resnet18'.")
        self.backbone = backbone
        self.embedding = embedding
        self.base_width = base_width
        self.backbone_config = dict(backbone_config) if backbone_config is not None else None
        self.image_size = image_size
        self.image_mean = image_mean
        self.image_std = image_std
        self.calibration = calibration
        self.training_domain = dict(training_domain) if training_domain is not None else None
        super().__init__(**kwargs)

    @property
    def embedding_dim(self) -> int:
        """Size of the embedding (``8 * base_width`` for the pooled CIFAR ResNet-18)."""
        if self.backbone == "cifar_resnet18" and self.embedding != "pooled":
            return 8 * self.base_width * math.ceil(self.image_size / 8) ** 2
        return self.feature_dim

    @property
    def feature_dim(self) -> int:
        """Size of the backbone's pooled features (input of the classifiers used in training)."""
        if self.backbone == "cifar_resnet18":
            return 8 * self.base_width
        from .backbones import infer_feature_dim

        cfg = dict(self.backbone_config or {})
        return infer_feature_dim(AutoConfig.for_model(cfg.pop("model_type"), **cfg))
