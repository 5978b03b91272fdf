# Exported from semsim-metric 0.1.0 (semsim_metric/models/backbones.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""Feature extractors that SemSim puts its embedding on.

Two families are supported:

* ``"cifar_resnet18"`` - the paper's CIFAR-style ResNet-18: a 3x3 stride-1 stem without max-pool,
  BasicBlocks ``[2, 2, 2, 2]`` with widths ``w, 2w, 4w, 8w`` and global average pooling. It is randomly
  initialised and never downloads anything.
* ``"transformers"`` - any vision model that ``transformers.AutoModel.from_config`` can build from a
  config dictionary (ResNet, ViT, ConvNeXt, ...). The pooled output (or the mean of the last hidden
  state) is the feature vector. Only the architecture is stored in ``SemSimConfig``;
  the weights travel in SemSim's own ``model.safetensors``.

A ``backbone_config`` read from a model folder is untrusted: ``check_backbone_config`` refuses one that names
another model (``backbone: "org/name"``, a timm model, ``use_pretrained_backbone``, ``auto_map``), which
transformers would fetch from the Hub or a path while building it, and one with integers too large for any
vision backbone (``MAX_BACKBONE_INT``) or a huge label table (``MAX_NUM_LABELS``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import InvalidInputError, InvalidInputTypeError
from .blocks import BasicBlock

#: the embeddings a CIFAR ResNet-18 backbone can produce (see ``CifarResNet18`` and ``SemSimConfig``)
EMBEDDINGS = ("pooled", "spatial", "spatial_smooth")
#: the backbones a SemSim config can name: the paper's network, or any transformers vision model
BACKBONES = ("cifar_resnet18", "transformers")

__all__ = [
    "BACKBONES",
    "EMBEDDINGS",
    "MAX_BACKBONE_INT",
    "MAX_NUM_LABELS",
    "CifarResNet18",
    "TransformersBackbone",
    "build_backbone",
    "check_backbone_config",
    "check_num_labels",
    "infer_feature_dim",
    "transformers_config",
]

#: largest integer (in absolute value) accepted anywhere in a ``backbone_config``: widths, depths, sizes and counts of
#: real vision backbones stay far below it, and it bounds what a crafted config can make transformers build
MAX_BACKBONE_INT = 65_536
#: largest ``num_labels`` (and ``id2label`` size) accepted in a model config. SemSim never uses the labels, but
#: transformers builds a table of ``num_labels`` names when it reads a config (ImageNet-21k has 21,843 classes)
MAX_NUM_LABELS = 100_000
#: deepest nesting of dictionaries and lists accepted in a ``backbone_config``
_MAX_DEPTH = 16
#: transformers model types that build their network by name with timm (which may download weights)
_BUILT_BY_NAME = ("timm_backbone", "timm_wrapper")
_HOW = (
    "a SemSim model folder describes its whole network inline in backbone_config and carries every weight in "
    "model.safetensors"
)


def check_num_labels(value: Any, field: str = "num_labels") -> None:
    """Refuse a ``num_labels`` that is not an integer in ``[0, MAX_NUM_LABELS]``.

    Raises:
        ValueError: naming ``field``, the value and the limit.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NUM_LABELS:
        raise InvalidInputError(
            f"{field} must be an integer between 0 and {MAX_NUM_LABELS:,} (SemSim does not use it; the "
            f"limit keeps transformers from building a huge label table), got {_short_repr(value)}. "
            f"Fix: remove {field} from the config or set it to the real number of classes."
        )


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_entry(key: str, value: Any, path: str) -> None:
    """Refuse one entry of a (nested) backbone config that points at another model or builds a label table."""
    if key == "backbone" and value is not None:
        raise InvalidInputError(
            f"{path} = {_short_repr(value)} names another model, which transformers would fetch from the "
            f"Hugging Face Hub (or a path, or timm) while building the network; {_HOW}. Fix: set {path} "
            "to null and give the backbone's own config as a backbone_config dictionary."
        )
    if key in ("use_pretrained_backbone", "use_timm_backbone", "trust_remote_code") and value:
        what = {
            "use_pretrained_backbone": "would download pretrained backbone weights",
            "use_timm_backbone": "builds the backbone by name with timm (which may download weights)",
            "trust_remote_code": "would run model code from another repository",
        }[key]
        raise InvalidInputError(f"{path} = {_short_repr(value)} {what}; {_HOW}. Fix: set {path} to false.")
    if key == "auto_map" and value:
        raise InvalidInputError(
            f"{path} points at model code in another repository; {_HOW}. Fix: remove {path}."
        )
    if key == "model_type" and value in _BUILT_BY_NAME:
        raise InvalidInputError(
            f"{path} = {value!r} builds its network by name with timm (which may download weights); "
            f"{_HOW}. Fix: use a transformers vision model type such as 'resnet', 'vit' or 'convnext'."
        )
    if key == "num_labels" and value is not None:
        check_num_labels(value, path)
    if (
        key in ("id2label", "label2id")
        and value is not None
        and (not isinstance(value, dict) or len(value) > MAX_NUM_LABELS)
    ):
        raise InvalidInputError(
            f"{path} must be a dictionary of at most {MAX_NUM_LABELS:,} labels, got "
            f"{type(value).__name__} of size {len(value) if isinstance(value, (dict, list)) else 1}. "
            f"Fix: remove {path} (SemSim does not use labels)."
        )


def _walk(value: Any, path: str, depth: int, check_ints: bool) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidInputError(
            f"{path} is nested more than {_MAX_DEPTH} levels deep; no vision backbone config is. "
            "Fix: give a backbone_config as written by transformers' PretrainedConfig.to_dict()."
        )
    if isinstance(value, dict):
        for key, item in value.items():
            sub = f"{path}.{key}"
            _check_entry(str(key), item, sub)
            if key not in ("id2label", "label2id", "num_labels"):
                _walk(item, sub, depth + 1, check_ints)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", depth + 1, check_ints)
    elif (
        check_ints
        and isinstance(value, int)
        and not isinstance(value, bool)
        and abs(value) > MAX_BACKBONE_INT
    ):
        raise InvalidInputError(
            f"{path} = {value} is larger than {MAX_BACKBONE_INT:,}, more than any vision backbone needs "
            "(it would make the network or its config enormous). Fix: correct the value."
        )


def check_backbone_config(
    backbone_config: Any, *, field: str = "backbone_config", check_ints: bool = True
) -> None:
    """Refuse a ``backbone_config`` that would reach outside the model folder or build something enormous.

    Checked at every depth (nested ``backbone_config``, ``vision_config``, ...): no ``backbone`` naming another model
    (a Hub id, a path or a timm name), no ``use_pretrained_backbone``/``use_timm_backbone``/``trust_remote_code``,
    no ``auto_map``, no timm model types; ``num_labels`` and label tables at most ``MAX_NUM_LABELS``; with
    ``check_ints`` every integer at most ``MAX_BACKBONE_INT`` in absolute value; at most 16 levels of nesting.

    Args:
        backbone_config: the dictionary (``PreTrainedConfig.to_dict()``) to check; it needs a ``model_type``.
        field: the name used in messages.
        check_ints: also bound every integer (off for configs transformers filled in with its own defaults).

    Raises:
        TypeError: ``backbone_config`` is not a dictionary.
        ValueError: naming the offending field (e.g. ``backbone_config.backbone``) and how to fix it.

    Examples:
        >>> check_backbone_config({"model_type": "upernet", "backbone": "microsoft/resnet-50"})
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputError: backbone_config.backbone = 'microsoft/resnet-50' names another model, ...
    """
    if not isinstance(backbone_config, dict):
        raise InvalidInputTypeError(
            f"{field} must be a transformers config dictionary with a 'model_type' (e.g. "
            f"ResNetConfig(...).to_dict()), got {type(backbone_config).__name__}."
        )
    if not isinstance(backbone_config.get("model_type"), str):  # a missing field, not a wrong argument type
        raise InvalidInputError(
            f"{field} must be a transformers config dictionary with a 'model_type' (e.g. "
            f"ResNetConfig(...).to_dict()), got {_short_repr(backbone_config)}."
        )
    _walk(backbone_config, field, 0, check_ints)


def transformers_config(backbone_config: dict[str, Any], *, field: str = "backbone_config") -> Any:
    """The ``transformers`` config object described by ``backbone_config``, checked before and after it is built.

    The dictionary is checked first (``check_backbone_config``: nothing is fetched while building it), then the
    built config again, with the defaults its class filled in (a DETR-style config defaults to a timm backbone).

    Raises:
        ValueError: an unknown ``model_type``, a dictionary transformers refuses, or a field
            ``check_backbone_config`` refuses (named).
    """
    from transformers import AutoConfig
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    check_backbone_config(backbone_config, field=field)
    cfg = dict(backbone_config)
    model_type = cfg.pop("model_type")
    if model_type not in CONFIG_MAPPING:
        raise InvalidInputError(
            f"{field}.model_type = {model_type!r} is not a model type this version of transformers "
            "knows. Fix: upgrade transformers or use a known vision model type such as 'resnet' or 'vit'."
        )
    try:
        config = AutoConfig.for_model(model_type, **cfg)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        raise InvalidInputError(
            f"{field} is not a valid transformers {model_type!r} config ({err})."
        ) from err
    check_backbone_config(config.to_dict(), field=field, check_ints=False)
    return config


class CifarResNet18(nn.Module):
    """The CIFAR-style ResNet-18 used by SemSim, without its classifier.

    Args:
        base_width: channels of the first stage; the stages have ``w, 2w, 4w, 8w`` channels and the
            feature vector has ``8 * base_width`` dimensions (512 for the paper's width 64).
        in_channels: image channels (3; greyscale is repeated by the input gate).
        embedding: ``"pooled"`` (the paper: global average pooling, ``8 * base_width`` values) or
            ``"spatial"`` (the last feature map flattened, ``8 * base_width * (S / 8) ** 2`` values for an
            ``S x S`` input), which keeps where things are, or ``"spatial_smooth"`` (the same size, each cell
            averaged over its 3x3 neighbourhood first, so that a shift of a few pixels moves it little).

    Examples:
        >>> net = CifarResNet18(base_width=8)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 64])
        >>> CifarResNet18(base_width=8, embedding="spatial")(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 1024])
    """

    #: the stem's (convolution, BatchNorm) pair, for ``blocks.fold_batchnorm``
    conv_bn_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("conv1", "bn1"),)

    def __init__(self, base_width: int = 64, in_channels: int = 3, embedding: str = "pooled") -> None:
        super().__init__()
        if base_width < 1:
            raise InvalidInputError(f"base_width must be a positive integer, got {base_width}.")
        if embedding not in EMBEDDINGS:
            raise InvalidInputError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}.")
        self.embedding = embedding
        widths = [base_width, 2 * base_width, 4 * base_width, 8 * base_width]
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        layers = []
        in_w = widths[0]
        for stage, width in enumerate(widths):
            stride = 1 if stage == 0 else 2
            layers.append(nn.Sequential(BasicBlock(in_w, width, stride), BasicBlock(width, width, 1)))
            in_w = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.feature_dim = widths[-1]

    def feature_map(self, x: Tensor) -> Tensor:
        """The last stage's feature map ``(N, 8 * base_width, S / 8, S / 8)`` of model-ready images
        ``(N, 3, S, S)`` (normalised by the input gate)."""
        out = torch.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(out))))

    def pooled(self, x: Tensor) -> Tensor:
        """Globally average-pooled features ``(N, 8 * base_width)`` (what classifiers in training use)."""
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Tensor:
        out = self.feature_map(x)
        if self.embedding == "pooled":
            return out.mean(dim=(2, 3))
        if (
            self.embedding == "spatial_smooth"
        ):  # each cell averaged with its neighbours: small shifts move it little
            out = F.avg_pool2d(out, 3, stride=1, padding=1, count_include_pad=False)
        return out.flatten(1)


class TransformersBackbone(nn.Module):
    """Adapter that turns any ``transformers`` vision model into a feature extractor.

    Args:
        backbone_config: a config dictionary as written by ``PreTrainedConfig.to_dict()``; it must
            contain ``model_type``.
        pretrained_id: optional Hub id or folder whose weights initialise the backbone (used by
            training only; a saved SemSim model carries all weights itself).

    Examples:
        >>> from transformers import ResNetConfig
        >>> cfg = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]).to_dict()
        >>> TransformersBackbone(cfg)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 16])
    """

    def __init__(self, backbone_config: dict[str, Any], pretrained_id: str | None = None) -> None:
        """Build the backbone (randomly initialised unless ``pretrained_id``).

        Raises:
            ValueError: ``backbone_config`` has no ``model_type``, is not a valid transformers config, or points
                at another model (see ``check_backbone_config``).
        """
        super().__init__()
        from transformers import AutoModel

        config = transformers_config(backbone_config)
        if pretrained_id is not None:
            self.model = AutoModel.from_pretrained(pretrained_id, config=config)
        else:
            self.model = AutoModel.from_config(config)
        self.feature_dim = infer_feature_dim(config)

    def pooled(self, x: Tensor) -> Tensor:
        """Pooled features ``(N, feature_dim)`` (the same as ``forward``)."""
        return self.forward(x)

    def forward(self, x: Tensor) -> Tensor:
        out = self.model(pixel_values=x)
        pooled = getattr(out, "pooler_output", None)
        if pooled is not None:
            return pooled.flatten(1)
        hidden = out.last_hidden_state
        if hidden.ndim == 4:  # (N, C, H, W) feature map
            return hidden.mean(dim=(2, 3))
        return hidden.mean(dim=1)  # (N, tokens, D)


def infer_feature_dim(config: Any) -> int:
    """Size of the pooled features of a ``transformers`` vision config."""
    for name in ("hidden_sizes", "hidden_size", "embed_dim", "dims"):
        value = getattr(config, name, None)
        if isinstance(value, (list, tuple)) and value:
            return int(value[-1])
        if isinstance(value, int):
            return value
    raise InvalidInputError(
        f"Cannot tell the feature size of a '{config.model_type}' backbone: its config has none of "
        "hidden_sizes, hidden_size, embed_dim, dims."
    )


def build_backbone(config: Any) -> nn.Module:
    """Build the feature extractor described by a ``SemSimConfig``."""
    if config.backbone == "cifar_resnet18":
        return CifarResNet18(base_width=config.base_width, embedding=getattr(config, "embedding", "pooled"))
    if config.backbone == "transformers":
        if not config.backbone_config:
            raise InvalidInputError(
                "backbone='transformers' needs backbone_config (a transformers config dict)."
            )
        return TransformersBackbone(config.backbone_config)
    raise InvalidInputError(
        f"Unknown backbone {config.backbone!r}; expected 'cifar_resnet18' or 'transformers'."
    )
