"""The residual BasicBlock (He et al., 2016), shared by SemSim's backbone and the ResNet victims."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["BasicBlock", "fold_batchnorm"]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection (1x1 projection when the shape changes).

    Examples:
        >>> BasicBlock(8, 16, stride=2)(torch.zeros(1, 8, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    #: (convolution, the BatchNorm applied to its output and nothing else) pairs, for ``fold_batchnorm``
    conv_bn_pairs: ClassVar[tuple[tuple[str, str], ...]] = (("conv1", "bn1"), ("conv2", "bn2"))

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


def fold_batchnorm(module: nn.Module) -> int:
    """Fold every BatchNorm of ``module`` that only normalises one convolution's output into that convolution, in
    place, for inference: the convolution gets the BatchNorm's scale and shift as its weights and bias, and the
    BatchNorm becomes ``nn.Identity``. The outputs are the same up to float rounding (about 1e-7 in float32) and the
    network runs faster (one pass over each activation less). The BatchNorms must be in eval mode (running
    statistics): ``module`` is put in eval mode.

    Folded are the ``conv_bn_pairs`` that a submodule declares (``BasicBlock``, ``CifarResNet18``) and every
    ``nn.Sequential`` of exactly a ``Conv2d`` and a ``BatchNorm2d`` (the residual projections); other modules are left
    as they are.

    Returns:
        The number of BatchNorms folded.

    Examples:
        >>> block = BasicBlock(4, 8, stride=2).eval()
        >>> x = torch.randn(2, 4, 8, 8)
        >>> before = block(x)
        >>> fold_batchnorm(block), torch.allclose(before, block(x), atol=1e-5)
        (3, True)
    """
    module.eval()
    folded = 0
    for sub in list(module.modules()):
        for conv_name, bn_name in getattr(sub, "conv_bn_pairs", ()):
            conv, bn = getattr(sub, conv_name), getattr(sub, bn_name)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(sub, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(sub, bn_name, nn.Identity())
                folded += 1
        if (
            isinstance(sub, nn.Sequential)
            and len(sub) == 2
            and isinstance(sub[0], nn.Conv2d)
            and isinstance(sub[1], nn.BatchNorm2d)
        ):
            sub[0], sub[1] = fuse_conv_bn_eval(sub[0], sub[1]), nn.Identity()
            folded += 1
    return folded
