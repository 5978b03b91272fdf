"""Random image augmentation, per image and reproducible from one seed per image.

One module for every user: the triplet stage, the class pre-training stage, the vote stage and the
victims of ``semsim generate``. Each image gets its own generator seeded by ``item_seeds``, so an
augmented batch depends only on ``(seed, epoch, item index)`` - not on batch composition, data-loader
workers, the number of processes or where a resumed run restarted.

Operations (applied in this order, each off by default): random crop after zero padding, horizontal
flip, rotation, shear, contrast, brightness, Gaussian blur, Gaussian noise of random strength on a share of the
images.
Inputs and outputs are float images ``(N, C, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InvalidInputError

__all__ = ["Augmentation", "gaussian_blur", "item_seed", "item_seeds"]

_MASK = (1 << 63) - 1


def item_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` of a run seeded with ``seed``: ``seed * 1_000_003 + index``, the one mix of the
    package (per-attack random starts, synthetic anchors, per-epoch augmentation seeds), so distinct items of one
    seed never share a seed.

    Examples:
        >>> item_seed(7, 2)
        7000023
    """
    return int(seed) * 1_000_003 + int(index)


def item_seeds(seed: int, epoch: int, indices: Sequence[int] | Tensor) -> list[int]:
    """One seed per item, a fixed function of ``(seed, epoch, index)``.

    Examples:
        >>> item_seeds(0, 1, [3, 4]) == item_seeds(0, 1, [3, 4]) != item_seeds(0, 2, [3, 4])
        True
    """
    base = item_seed(seed, epoch) * 1_000_033
    return [(base + int(i) * 2_654_435_761) & _MASK for i in indices]


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Blur one image ``(C, H, W)`` with a Gaussian of ``sigma`` pixels (edges replicated); ``sigma < 0.1`` is
    returned as it is.

    Examples:
        >>> x = torch.zeros(1, 9, 9); x[0, 4, 4] = 1
        >>> y = gaussian_blur(x, 1.0)
        >>> round(float(y.sum()), 4), bool(y[0, 4, 4] < 0.2)
        (1.0, True)
    """
    if sigma < 0.1:
        return x
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).to(x.dtype)
    c = x.shape[0]
    out = F.pad(x[None], (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out[0]


@dataclass(frozen=True)
class Augmentation:
    """Per-image augmentation settings; ``augmentation(x, seeds)`` applies them.

    Attributes:
        crop_padding: zero-pad by this many pixels and crop back at a random offset (0 = off; the
            paper's RandomCrop(32, padding=4) is 4).
        flip: horizontal flip with probability 0.5.
        rotate: largest rotation in degrees (uniform in ``[-rotate, rotate]``).
        shear: largest horizontal shear angle in degrees.
        contrast: contrast factor uniform in ``[1 - contrast, 1 + contrast]`` around each image's mean.
        brightness: added brightness uniform in ``[-brightness, brightness]``.
        blur: largest Gaussian blur sigma in pixels (uniform in ``[0, blur]``; drawn from a generator of its own,
            so switching it on leaves every other draw unchanged).
        noise: largest standard deviation of Gaussian noise (uniform in ``[0, noise]``).
        noise_share: probability that an image gets noise at all.

    Examples:
        >>> aug = Augmentation(crop_padding=4, flip=True, noise=0.3)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> torch.equal(aug(x, [1, 2]), aug(x, [1, 2])), aug(x, [1, 2]).shape
        (True, torch.Size([2, 3, 32, 32]))
        >>> torch.equal(Augmentation()(x, [1, 2]), x)
        True
    """

    crop_padding: int = 0
    flip: bool = False
    rotate: float = 0.0
    shear: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0
    noise: float = 0.0
    noise_share: float = 0.5
    blur: float = 0.0

    def __post_init__(self) -> None:
        if (
            self.crop_padding < 0
            or min(self.rotate, self.shear, self.contrast, self.brightness, self.noise, self.blur) < 0
        ):
            raise InvalidInputError(f"augmentation settings must be non-negative, got {self}.")
        if not 0 <= self.noise_share <= 1:
            raise InvalidInputError(f"noise_share must be in [0, 1], got {self.noise_share}.")

    @property
    def is_identity(self) -> bool:
        """True when no operation is switched on."""
        return self == Augmentation(noise_share=self.noise_share)

    @classmethod
    def crop_flip_noise(cls, noise: float, crop_padding: int = 3) -> Augmentation:
        """Shifted crop + flip + Gaussian noise up to ``noise`` on half of the images (stages 1 and 2).

        Examples:
            >>> Augmentation.crop_flip_noise(0.3).noise
            0.3
        """
        return cls(crop_padding=crop_padding, flip=True, noise=noise)

    @classmethod
    def from_policy(cls, policy: str, image_size: int) -> Augmentation:
        """Victim training settings: ``none`` | ``crop_flip`` | ``policy:<op>+<op>...`` with ops hflip, crop,
        rotate, shear, contrast, brightness (crop pads by ``max(2, image_size // 8)``; rotation and shear up
        to 15 degrees; contrast x[0.6, 1.4]; brightness +-0.2).

        Examples:
            >>> Augmentation.from_policy("crop_flip", 32)
            Augmentation(crop_padding=4, flip=True, rotate=0.0, shear=0.0, contrast=0.0, brightness=0.0, noise=0.0, noise_share=0.5, blur=0.0)
        """
        if policy == "none":
            return cls()
        ops = ["crop", "hflip"] if policy == "crop_flip" else policy.removeprefix("policy:").split("+")
        known = {
            "crop": {"crop_padding": max(2, image_size // 8)},
            "hflip": {"flip": True},
            "rotate": {"rotate": 15.0},
            "shear": {"shear": 15.0},
            "contrast": {"contrast": 0.4},
            "brightness": {"brightness": 0.2},
        }
        settings: dict[str, float | int | bool] = {}
        for op in ops:
            if op not in known:
                raise InvalidInputError(
                    f"unknown augmentation op {op!r} in {policy!r}; choose from {sorted(known)} "
                    "(or the settings 'none' and 'crop_flip')."
                )
            settings.update(known[op])
        return cls(**settings)  # type: ignore[arg-type]

    def __call__(self, x: Tensor, seeds: Sequence[int]) -> Tensor:
        """Augment ``x`` ``(N, C, H, W)`` in ``[0, 1]``; image ``i`` uses its own generator ``seeds[i]``."""
        n, _, h, w = x.shape
        if len(seeds) != n:
            raise InvalidInputError(f"{len(seeds)} seeds for {n} images.")
        if self.is_identity:
            return x
        draws = []
        gens = []
        for s in seeds:
            g = torch.Generator().manual_seed(int(s))
            draws.append(torch.rand(8, generator=g, dtype=torch.float64))
            gens.append(g)
        u = torch.stack(draws)  # (N, 8): crop y, crop x, flip, rotate, shear, contrast, brightness, noise on
        out = x
        if self.crop_padding:
            p = self.crop_padding
            padded = F.pad(out, (p, p, p, p))
            offsets = (u[:, :2] * (2 * p + 1)).floor().clamp(max=2 * p).long().tolist()
            out = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
        if self.flip:
            flip = (u[:, 2] < 0.5).to(out.device).view(-1, 1, 1, 1)
            out = torch.where(flip, out.flip(-1), out)
        if self.rotate or self.shear:
            rot = (u[:, 3] * 2 - 1) * math.radians(self.rotate)
            shr = (u[:, 4] * 2 - 1) * math.radians(self.shear)
            cos, sin, tan = torch.cos(rot), torch.sin(rot), torch.tan(shr)
            theta = torch.zeros(n, 2, 3, dtype=torch.float64)  # rotation @ horizontal shear
            theta[:, 0, 0], theta[:, 0, 1] = cos, cos * tan - sin
            theta[:, 1, 0], theta[:, 1, 1] = sin, sin * tan + cos
            grid = F.affine_grid(theta.to(out.dtype).to(out.device), list(out.shape), align_corners=False)
            out = F.grid_sample(out, grid, align_corners=False)
        if self.contrast:
            f = (1 + (u[:, 5] * 2 - 1) * self.contrast).to(out).view(-1, 1, 1, 1)
            m = out.mean(dim=(1, 2, 3), keepdim=True)
            out = ((out - m) * f + m).clamp(0, 1)
        if self.brightness:
            out = (out + ((u[:, 6] * 2 - 1) * self.brightness).to(out).view(-1, 1, 1, 1)).clamp(0, 1)
        if self.blur:
            sigmas = [
                self.blur
                * float(
                    torch.rand(
                        1,
                        generator=torch.Generator().manual_seed((int(s) * 31 + 7) & _MASK),
                        dtype=torch.float64,
                    )
                )
                for s in seeds
            ]
            out = torch.stack([gaussian_blur(out[i], sigma) for i, sigma in enumerate(sigmas)])
        if self.noise:
            noisy = []
            for i, g in enumerate(gens):
                sigma = float(torch.rand(1, generator=g, dtype=torch.float64)) * self.noise
                on = float(u[i, 7]) < self.noise_share
                noisy.append(
                    out[i] + sigma * torch.randn(out[i].shape, generator=g).to(out) if on else out[i]
                )
            out = torch.stack(noisy).clamp(0, 1)
        return out
