"""Feature extractors that SemSim puts its embedding on.

Two families are supported:

* ``"cifar_resnet18"`` - the paper's CIFAR-style ResNet-18: a 3x3 stride-1 stem without max-pool,
  BasicBlocks ``[2, 2, 2, 2]`` with widths ``w, 2w, 4w, 8w`` and global average pooling. It is randomly
  initialised and never downloads anything.
* ``"transformers"`` - any vision model that ``transformers.AutoModel.from_config`` can build from a
  config dictionary (ResNet, ViT, ConvNeXt, ...). The pooled output (or the mean of the last hidden
  state) is the feature vector. Only the architecture is stored in ``SemSimConfig``;
  the weights travel in SemSim's own ``model.safetensors``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import BasicBlock

#: the embeddings a CIFAR ResNet-18 backbone can produce (see ``CifarResNet18`` and ``SemSimConfig``)
EMBEDDINGS = ("pooled", "spatial", "spatial_smooth")

__all__ = ["EMBEDDINGS", "CifarResNet18", "TransformersBackbone", "build_backbone", "infer_feature_dim"]


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

    def __init__(self, base_width: int = 64, in_channels: int = 3, embedding: str = "pooled") -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be a positive integer, got {base_width}.")
        if embedding not in EMBEDDINGS:
            raise ValueError(f"embedding must be one of {EMBEDDINGS}, got {embedding!r}.")
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
        if self.embedding == "spatial_smooth":  # each cell averaged with its neighbours: small shifts move it little
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
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if "model_type" not in backbone_config:
            raise ValueError(
                "backbone_config needs a 'model_type' entry (e.g. 'resnet' or 'vit'); "
                "pass `SomeConfig(...).to_dict()` from transformers."
            )
        cfg_dict = dict(backbone_config)
        model_type = cfg_dict.pop("model_type")
        config = AutoConfig.for_model(model_type, **cfg_dict)
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
    raise ValueError(
        f"Cannot tell the feature size of a '{config.model_type}' backbone: its config has none of "
        "hidden_sizes, hidden_size, embed_dim, dims."
    )


def build_backbone(config: Any) -> nn.Module:
    """Build the feature extractor described by a ``SemSimConfig``."""
    if config.backbone == "cifar_resnet18":
        return CifarResNet18(base_width=config.base_width, embedding=getattr(config, "embedding", "pooled"))
    if config.backbone == "transformers":
        if not config.backbone_config:
            raise ValueError("backbone='transformers' needs backbone_config (a transformers config dict).")
        return TransformersBackbone(config.backbone_config)
    raise ValueError(
        f"Unknown backbone {config.backbone!r}; expected 'cifar_resnet18' or 'transformers'."
    )
