"""Configuration of a SemSim model (``config.json``), kept apart from the network as transformers does."""

from __future__ import annotations

import math
from typing import Any

from transformers import AutoConfig, PretrainedConfig

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "SemSimConfig"]

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


class SemSimConfig(PretrainedConfig):
    """Configuration of a :class:`SemSimModel`.

    Args:
        backbone: ``"cifar_resnet18"`` (the paper's network) or ``"transformers"`` (any vision model
            described by ``backbone_config``).
        base_width: width of the first ResNet stage (64 in the paper -> 512-d embedding).
        backbone_config: ``transformers`` config dictionary of the backbone when
            ``backbone="transformers"``.
        embedding: ``"pooled"`` (the paper: globally pooled features) or ``"spatial"`` (the flattened
            last feature map; CIFAR ResNet-18 only).
        image_size: side of the square model input; every image is resized to it (32 in the paper).
        image_mean: per-channel mean used for normalisation (CIFAR-100's by default).
        image_std: per-channel standard deviation used for normalisation (CIFAR-100's by default).
        calibration: optional logistic calibration ``{"intercept": a, "slope": b, ...}`` mapping a
            distance ``d`` to the probability ``sigmoid(a + b * d)`` that a person (or the annotator
            panel named in ``"fitted_on"``) would recognise the reconstruction.
        training_domain: what the annotated training originals were (channels, sizes, an embedding
            summary); inputs far outside it raise an :class:`~semsim_metric.domain.OutOfDomainWarning`.

    Example:
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
        if len(image_mean) != 3 or len(image_std) != 3:
            raise ValueError("image_mean and image_std need 3 values (R, G, B).")
        if any(s <= 0 for s in image_std):
            raise ValueError(f"image_std must be positive, got {tuple(image_std)}.")
        if embedding not in ("pooled", "spatial"):
            raise ValueError(f"embedding must be 'pooled' or 'spatial', got {embedding!r}.")
        if embedding == "spatial" and backbone != "cifar_resnet18":
            raise ValueError("embedding='spatial' is only available for backbone='cifar_resnet18'.")
        self.backbone = backbone
        self.embedding = embedding
        self.base_width = int(base_width)
        self.backbone_config = dict(backbone_config) if backbone_config is not None else None
        self.image_size = int(image_size)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        self.calibration = dict(calibration) if calibration is not None else None
        self.training_domain = dict(training_domain) if training_domain is not None else None
        super().__init__(**kwargs)

    @property
    def embedding_dim(self) -> int:
        """Size of the embedding (``8 * base_width`` for the pooled CIFAR ResNet-18)."""
        if self.backbone == "cifar_resnet18" and self.embedding == "spatial":
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
