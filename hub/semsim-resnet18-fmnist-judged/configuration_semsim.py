# Exported from semsim-metric 0.1.0 (semsim_metric/models/configuration_semsim.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""Configuration of a SemSim model (``config.json``), kept apart from the network as transformers does."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from transformers import PretrainedConfig

if TYPE_CHECKING:
    from torch import Tensor

from .errors import InvalidInputError, InvalidInputTypeError
from .backbones import (
    BACKBONES,
    EMBEDDINGS,
    MAX_NUM_LABELS,
    check_backbone_config,
    check_num_labels,
    infer_feature_dim,
    transformers_config,
)

__all__ = [
    "CIFAR100_MEAN",
    "CIFAR100_STD",
    "FLOAT_DTYPES",
    "LAYOUT_CHANNELS",
    "MAX_BASE_WIDTH",
    "MAX_IMAGE_SIZE",
    "MAX_NUM_LABELS",
    "Calibration",
    "SemSimConfig",
    "check_dtype_name",
    "check_image_settings",
    "check_layout_channels",
    "check_layout_size",
    "check_layout_weight",
    "check_training_domain",
]

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


#: largest accepted ``base_width`` (the paper uses 64; 256 is already a 180M-parameter ResNet-18)
MAX_BASE_WIDTH = 256
#: largest accepted ``image_size`` (the paper uses 32)
MAX_IMAGE_SIZE = 512


#: the dtypes a SemSim model can be stored and run in (``dtype`` in ``config.json``, ``from_pretrained(dtype=...)``)
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")
#: what the layout part of the embedding can hold (``SemSimConfig.layout_channels``)
LAYOUT_CHANNELS = ("rgb", "luminance")


def check_dtype_name(value: Any, field: str = "dtype") -> str | None:
    """The name (``"float16"``, ...) of a floating-point dtype given as a name or a ``torch.dtype``; ``None`` stays
    ``None``.

    Raises:
        ValueError: anything else (an unknown name, an integer dtype, another type), naming ``field``.

    Examples:
        >>> import torch
        >>> check_dtype_name(torch.float16), check_dtype_name("float32"), check_dtype_name(None)
        ('float16', 'float32', None)
    """
    if value is None:
        return None
    name = str(value).removeprefix("torch.") if type(value).__name__ == "dtype" else value
    if not isinstance(name, str) or name not in FLOAT_DTYPES:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        # a ValueError like every malformed config field (load_config turns it into an InvalidModelError)
        raise InvalidInputError(
            f"{field} must be one of {', '.join(FLOAT_DTYPES)} (the dtype of the weights), got {shown}."
        )
    return name


def check_layout_weight(value: Any) -> float:
    """``layout_weight`` as a float in ``[0, 1)``.

    Raises:
        ValueError: not a number, or outside ``[0, 1)`` (1 would leave the network out altogether).

    Examples:
        >>> check_layout_weight(0.5)
        0.5
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise InvalidInputError(
            f"layout_weight must be a number in [0, 1) (the layout's share of the embedding), got {value!r}."
        )
    return float(value)


def check_layout_size(value: Any, image_size: int) -> int:
    """``layout_size`` as an integer in ``[1, image_size]``: the layout is a thumbnail of the ``image_size`` model input.

    Raises:
        ValueError: not an integer, below 1, or larger than ``image_size``.

    Examples:
        >>> check_layout_size(8, 32)
        8
    """
    size = _int_field("layout_size", value, 1, MAX_IMAGE_SIZE)
    if size > image_size:
        raise InvalidInputError(
            f"layout_size ({size}) must not exceed image_size ({image_size}) when layout_weight > 0: "
            "the layout is a thumbnail of the model input. Fix: a smaller layout_size."
        )
    return size


def check_layout_channels(value: Any) -> str:
    """``layout_channels``: one of ``LAYOUT_CHANNELS``.

    Raises:
        ValueError: anything else.

    Examples:
        >>> check_layout_channels("luminance")
        'luminance'
    """
    if not isinstance(value, str) or value not in LAYOUT_CHANNELS:
        raise InvalidInputError(
            f"layout_channels must be one of {', '.join(LAYOUT_CHANNELS)}, got {repr(value)[:40]}."
        )
    return value


def _int_field(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or (
        not isinstance(value, int) and not (isinstance(value, float) and value.is_integer())
    ):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}.")
    if not low <= int(value) <= high:
        raise InvalidInputError(f"{name} must be between {low} and {high}, got {value}.")
    return int(value)


def _triple(name: str, values: Any) -> list[float]:
    if not isinstance(values, (list, tuple)) or len(values) != 3:
        raise InvalidInputError(f"{name} needs 3 numbers (R, G, B), got {values!r}.")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidInputError(f"{name} needs 3 finite numbers (R, G, B), got {values!r}.")
        out.append(float(v))
    return out


def check_image_settings(
    image_size: Any, image_mean: Any, image_std: Any
) -> tuple[int, list[float], list[float]]:
    """Validate the input settings of a model (``config.json``) or an image processor (``preprocessor_config.json``):
    the side of the square input and the per-channel mean and standard deviation of the normalisation.

    Raises:
        ValueError: ``image_size`` not an integer in ``[4, MAX_IMAGE_SIZE]``, mean or std not 3 finite numbers, or a
            standard deviation that is not positive; the message names the field.

    Examples:
        >>> check_image_settings(32, (0.5, 0.5, 0.5), [0.25, 0.25, 0.25])
        (32, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    """
    image_size = _int_field("image_size", image_size, 4, MAX_IMAGE_SIZE)
    image_mean, image_std = _triple("image_mean", image_mean), _triple("image_std", image_std)
    if any(s <= 0 for s in image_std):
        raise InvalidInputError(f"image_std must be positive, got {tuple(image_std)}.")
    return image_size, image_mean, image_std


@dataclass(frozen=True)
class Calibration:
    """A model's logistic calibration: ``p_recognised = sigmoid(intercept + slope * distance)``.

    Read from ``config.calibration`` (``SemSimConfig.calibration_curve``); it owns both directions of the map
    (``probability``, ``distance_at``) and says who the annotators were (``annotator_kind``).

    Examples:
        >>> cal = Calibration(intercept=3.0, slope=-6.0, fitted_on="validation split (annotator_kind: human)")
        >>> cal.distance_at(0.5), cal.annotator_kind
        (0.5, 'human')
    """

    intercept: float
    slope: float
    #: what the rows were and who annotated them, as recorded (``"... (annotator_kind: model-judge)"``)
    fitted_on: str = ""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Calibration:
        """The calibration of a ``config.calibration`` dictionary (checked by ``SemSimConfig``)."""
        return cls(
            intercept=record["intercept"], slope=record["slope"], fitted_on=str(record.get("fitted_on", ""))
        )

    def probability(self, distance: Tensor) -> Tensor:
        """The calibrated probability that a reconstruction at ``distance`` is recognised."""
        return (self.intercept + self.slope * distance).sigmoid()

    def distance_at(self, probability: float = 0.5) -> float | None:
        """The distance at which ``p_recognised`` equals ``probability`` (``None`` when the slope is 0: no distance
        does); with a negative slope, smaller distances have larger probabilities.

        Raises:
            ValueError: ``probability`` not strictly between 0 and 1.
        """
        if not 0 < probability < 1:
            raise InvalidInputError(f"probability must lie strictly between 0 and 1, got {probability}.")
        if not self.slope:
            return None
        return (math.log(probability / (1 - probability)) - self.intercept) / self.slope

    @property
    def annotator_kind(self) -> str | None:
        """Who annotated the rows the calibration was fitted on (``"model-judge"``, ``"human"``, ...), as recorded
        in ``fitted_on``; ``None`` when it is not recorded."""
        key = "annotator_kind"
        if key not in self.fitted_on:
            return None
        kind = self.fitted_on[self.fitted_on.find(key) + len(key) :].lstrip(" :=").strip(" ()")
        return kind or None


def _check_calibration(calibration: Any) -> dict[str, Any]:
    if not isinstance(calibration, dict):
        raise InvalidInputError(
            f"calibration must be a dictionary with 'intercept' and 'slope', got {calibration!r}."
        )
    for key in ("intercept", "slope"):
        v = calibration.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise InvalidInputError(
                f"calibration needs a finite number '{key}', got {v!r} (it maps a distance d to "
                "sigmoid(intercept + slope * d))."
            )
    return dict(calibration)


def _domain_error(field: str, expected: str, value: Any, *, shown: str | None = None) -> ValueError:
    if shown is None:
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ValueError(
        f"training_domain.{field} must be {expected}, got {shown}. The record is written by `semsim train` "
        "(semsim_metric.domain.summarise_domain); fix or delete the field, or remove training_domain to "
        "load the model without a domain check."
    )


def _count(field: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise _domain_error(field, f"an integer >= {low}", value)
    return value


def _similarity(field: str, value: Any) -> float:
    # cosine similarities of L2-normalised vectors, with room for float32 rounding
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -1.001 <= value <= 1.001:
        raise _domain_error(field, "a finite number between -1 and 1 (a cosine similarity)", value)
    return float(value)


def check_training_domain(record: Any, *, embedding_dim: int | None = None) -> dict[str, Any]:
    """Validate a ``training_domain`` record (``semsim_metric.domain``) as read from ``config.json``; returns a copy.

    Every field is optional (older models record fewer), but a field that is present must have the shape
    ``summarise_domain`` writes: ``description`` a string, ``n`` a count, ``channels`` a list of channel counts
    (1-4), ``image_sizes`` a list of ``[height, width]`` pairs, ``embedding_mean`` a list of ``embedding_dim``
    finite numbers together with ``similarity_q01`` (and optionally ``similarity_median``) in ``[-1, 1]``,
    ``original_fingerprints`` a list of strings. Unknown fields are kept (newer versions may add some).

    Args:
        record: the value of the config's ``training_domain`` field.
        embedding_dim: the size of the network's part of the model's embedding (``network_embedding_dim``: the
            layout part is not summarised); ``embedding_mean`` must have this many values.

    Raises:
        TypeError: the record is not a dictionary.
        ValueError: naming the field (``training_domain.<field>``), what it must be and what it holds.

    Examples:
        >>> check_training_domain({"channels": [1], "image_sizes": [[28, 28]]})["channels"]
        [1]
        >>> check_training_domain({"channels": "grey"})
        Traceback (most recent call last):
        ...
        ValueError: training_domain.channels must be a list of channel counts (1 to 4), got 'grey'. ...
    """
    if not isinstance(record, dict):
        raise InvalidInputTypeError(
            f"training_domain must be a dictionary (the record `semsim train` writes), got "
            f"{type(record).__name__}. Remove the field to load the model without a domain check."
        )
    out = dict(record)
    if "description" in out and not isinstance(out["description"], str):
        raise _domain_error("description", "a string", out["description"])
    if "n" in out:
        _count("n", out["n"], 0)
    if "channels" in out:
        channels = out["channels"]
        if not isinstance(channels, list) or any(
            isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= 4 for c in channels
        ):
            raise _domain_error("channels", "a list of channel counts (1 to 4)", channels)
    if "image_sizes" in out:
        sizes = out["image_sizes"]
        if not isinstance(sizes, list) or any(
            not isinstance(s, list)
            or len(s) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in s)
            for s in sizes
        ):
            raise _domain_error("image_sizes", "a list of [height, width] pairs of positive integers", sizes)
    if out.get("embedding_mean") is not None:
        mean = out["embedding_mean"]
        if (
            not isinstance(mean, list)
            or not mean
            or any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) for v in mean
            )
        ):
            raise _domain_error("embedding_mean", "a non-empty list of finite numbers", mean)
        if embedding_dim is not None and len(mean) != embedding_dim:
            raise _domain_error(
                "embedding_mean",
                f"a list of {embedding_dim} numbers (the model's embedding size)",
                mean,
                shown=f"{len(mean)} numbers",
            )
        if "similarity_q01" not in out:
            raise _domain_error(
                "similarity_q01",
                "present with embedding_mean (the content check compares with it)",
                None,
                shown="nothing",
            )
    for field in ("similarity_q01", "similarity_median"):
        if field in out:
            _similarity(field, out[field])
    if "original_fingerprints" in out:
        prints = out["original_fingerprints"]
        if not isinstance(prints, list) or any(not isinstance(f, str) for f in prints):
            raise _domain_error("original_fingerprints", "a list of strings (image fingerprints)", prints)
    return out


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
            summary); inputs far outside it raise an ``OutOfDomainWarning``. Checked field by field
            (``check_training_domain``).
        layout_weight: share in ``[0, 1)`` of the embedding given to the image's *layout*: its
            ``layout_size x layout_size`` thumbnail with the mean subtracted and the length set to 1 (so that
            brightness and contrast do not change it, and blur, JPEG and mild noise hardly do). The embedding is
            ``[sqrt(1 - w) * network, sqrt(w) * layout]``, L2-normalised, so the squared distance is the
            ``w``-weighted mix of the network's and the layout's. 0 (the default) = the network alone. The layout has
            no weights; training learns the network alone and sets this at the end (``Recipe.layout_weight``).
        layout_size: side of the layout thumbnail (16 by default; at most ``image_size`` when ``layout_weight > 0``).
        layout_channels: what the layout thumbnail holds (``LAYOUT_CHANNELS``): ``"rgb"`` (the default: the three
            colour channels, ``3 * layout_size ** 2`` values) or ``"luminance"`` (light and dark only, ITU-R BT.601
            weights, ``layout_size ** 2`` values: a reconstruction with the right shapes in the wrong colours keeps
            its layout). The same for greyscale images.

    A config read from a model folder is untrusted, so every field is checked here, before anything is built:
    sizes are capped (``MAX_BASE_WIDTH``, ``MAX_IMAGE_SIZE``, ``num_labels <= MAX_NUM_LABELS``), and a
    ``backbone_config`` may not name another model to fetch (``backbone``, ``use_pretrained_backbone``, timm,
    ``auto_map``) nor hold integers above ``MAX_BACKBONE_INT`` (``semsim_metric.models.backbones``).

    The dtype the weights are stored in is recorded as ``dtype`` (as transformers 5 does; an older ``torch_dtype``
    is read as ``dtype``); it must be a floating-point dtype (``FLOAT_DTYPES``).

    Raises:
        ValueError: a field of the wrong type, out of range, or pointing outside the model folder; the message
            names the field.

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
        layout_weight: float = 0.0,
        layout_size: int = 16,
        layout_channels: str = "rgb",
        **kwargs: Any,
    ) -> None:
        if backbone not in BACKBONES:
            raise InvalidInputError(f"backbone must be one of {BACKBONES}, got {backbone!r}.")
        base_width = _int_field("base_width", base_width, 1, MAX_BASE_WIDTH)
        image_size, image_mean, image_std = check_image_settings(image_size, image_mean, image_std)
        # transformers turns a dtype name into getattr(torch, name): only floating-point dtype names get there
        for field in ("dtype", "torch_dtype"):
            if kwargs.get(field) is not None:
                kwargs[field] = check_dtype_name(kwargs[field], field)
        # transformers turns num_labels into a table of label names: refuse a huge one before it is built
        if kwargs.get("num_labels") is not None:
            check_num_labels(kwargs["num_labels"])
        for labels in ("id2label", "label2id"):
            if kwargs.get(labels) is not None and (
                not isinstance(kwargs[labels], dict) or len(kwargs[labels]) > MAX_NUM_LABELS
            ):
                raise InvalidInputError(
                    f"{labels} must be a dictionary of at most {MAX_NUM_LABELS:,} labels. Fix: remove "
                    f"{labels} (SemSim does not use labels)."
                )
        if backbone_config is not None:
            check_backbone_config(backbone_config)  # never fetches anything, whatever the backbone
            if backbone == "transformers":
                transformers_config(backbone_config)  # and again with the defaults transformers fills in
        if calibration is not None:
            calibration = _check_calibration(calibration)
        if embedding not in EMBEDDINGS:
            raise InvalidInputError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}.")
        if embedding != "pooled" and backbone != "cifar_resnet18":
            raise InvalidInputError(
                f"embedding={embedding!r} is only available for backbone='cifar_resnet18'."
            )
        self.backbone = backbone
        self.embedding = embedding
        self.base_width = base_width
        self.backbone_config = dict(backbone_config) if backbone_config is not None else None
        self.image_size = image_size
        self.image_mean = image_mean
        self.image_std = image_std
        self.calibration = calibration
        self.layout_weight = check_layout_weight(layout_weight)
        self.layout_size = (
            check_layout_size(layout_size, image_size)
            if self.layout_weight > 0
            else _int_field("layout_size", layout_size, 1, MAX_IMAGE_SIZE)
        )
        self.layout_channels = check_layout_channels(layout_channels)
        self.training_domain = None
        if training_domain is not None:
            known_dim = backbone == "cifar_resnet18" or backbone_config is not None
            self.training_domain = check_training_domain(
                training_domain, embedding_dim=self.network_embedding_dim if known_dim else None
            )
        super().__init__(**kwargs)

    @property
    def calibration_curve(self) -> Calibration | None:
        """``calibration`` as a ``Calibration`` (its probability, its inverse, its annotators); ``None`` for an
        uncalibrated model."""
        return Calibration.from_record(self.calibration) if self.calibration else None

    @property
    def embedding_dim(self) -> int:
        """Size of the embedding: the network's (``8 * base_width`` for the pooled CIFAR ResNet-18) plus, with a
        ``layout_weight``, the layout's ``layout_size ** 2`` values per layout channel (3 for ``"rgb"``, 1 for
        ``"luminance"``)."""
        channels = 1 if self.layout_channels == "luminance" else 3
        layout = channels * self.layout_size**2 if self.layout_weight > 0 else 0
        return self.network_embedding_dim + layout

    @property
    def network_embedding_dim(self) -> int:
        """Size of the network's part of the embedding."""
        if self.backbone == "cifar_resnet18" and self.embedding != "pooled":
            return 8 * self.base_width * math.ceil(self.image_size / 8) ** 2
        return self.feature_dim

    @property
    def feature_dim(self) -> int:
        """Size of the backbone's pooled features (input of the classifiers used in training)."""
        if self.backbone == "cifar_resnet18":
            return 8 * self.base_width
        if not self.backbone_config:
            raise InvalidInputError(
                "backbone='transformers' needs backbone_config (a transformers config dictionary)."
            )
        return infer_feature_dim(transformers_config(self.backbone_config))
