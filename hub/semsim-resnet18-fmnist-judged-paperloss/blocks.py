# Exported from semsim-metric 0.1.0 (semsim_metric/models/blocks.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""The residual BasicBlock (He et al., 2016), shared by SemSim's backbone and the ResNet victims."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["BasicBlock"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (1x1 projection when the shape changes).

    Examples:
        >>> BasicBlock(8, 16, stride=2)(torch.zeros(1, 8, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))
