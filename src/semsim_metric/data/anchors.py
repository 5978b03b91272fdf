"""Label-free anchor pairs that pin SemSim's scale in any image domain.

An anchor pair is an image and a second image whose recognisability is known without asking anyone:

* **recognised** (target 1): a mild copy - Gaussian noise of standard deviation up to 0.04, a one-pixel
  shift, a slight blur, or a small contrast/brightness change;
* **not recognised** (target 0): uniform noise, Gaussian noise, a constant image, or a different image of
  another class from the pool.

The pool mixes image domains, each brought to the model's size by the input gate as at scoring time:
the Fashion-MNIST *train* split (greyscale; the annotated originals are *test* images), random crops of
the colour and greyscale photographs that scikit-image ships (only ``TRAIN_PHOTOS``; the others,
``HELD_OUT_PHOTOS``, are kept for the sanity tests), and synthetic shapes and letters drawn with PIL.
MNIST digits are never used: they are reserved as an unseen domain for evaluation.

Every pair is a fixed function of its seed (``anchor_pair``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["HELD_OUT_PHOTOS", "TRAIN_PHOTOS", "AnchorPool", "anchor_pair", "load_photos", "synthetic_image"]

#: scikit-image photographs used for anchors during training.
TRAIN_PHOTOS = ("astronaut", "coffee", "hubble_deep_field", "immunohistochemistry", "camera", "coins", "moon",
                "brick", "grass")
#: scikit-image photographs never used in training (sanity tests and evaluation).
HELD_OUT_PHOTOS = ("chelsea", "rocket", "retina", "colorwheel", "clock", "page", "text", "gravel")


def load_photos(names: Sequence[str]) -> list[Tensor]:
    """scikit-image's bundled photographs as uint8 ``(C, H, W)`` (RGBA and boolean images converted)."""
    from .._deps import require

    skdata = require("skimage.data", "photographs for anchors and sanity tests")
    out = []
    for name in names:
        arr = np.asarray(getattr(skdata, name)())
        if arr.dtype == bool:
            arr = arr.astype(np.uint8) * 255
        if arr.ndim == 3:
            arr = arr[..., :3]
        t = torch.from_numpy(np.ascontiguousarray(arr))
        out.append(t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous())
    return out


def synthetic_image(seed: int, size: int = 32) -> tuple[Tensor, int]:
    """A random shape (disc, box, triangle) or letter on a random background: uint8 ``(3, size, size)`` and
    its kind (0-3) as the label.

    Examples:
        >>> img, kind = synthetic_image(3)
        >>> img.shape, img.dtype, 0 <= kind < 4
        (torch.Size([3, 32, 32]), torch.uint8, True)
    """
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    bg, fg = (tuple(int(v) for v in rng.integers(0, 256, 3)) for _ in range(2))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    kind = int(rng.integers(0, 4))
    x0, y0 = (int(v) for v in rng.integers(1, size // 3, 2))
    x1, y1 = (int(v) for v in rng.integers(2 * size // 3, size - 1, 2))
    if kind == 0:
        draw.ellipse((x0, y0, x1, y1), fill=fg)
    elif kind == 1:
        draw.rectangle((x0, y0, x1, y1), fill=fg)
    elif kind == 2:
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fg)
    else:
        letter = chr(int(rng.integers(65, 91)))
        draw.text((size // 4, size // 6), letter, fill=fg, font_size=int(size * 0.7))
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).contiguous(), kind


@dataclass
class AnchorPool:
    """Images of several domains with labels (pairs of different labels are negatives).

    Args:
        images: uint8 ``(C, H, W)`` images of any sizes.
        labels: one label per image (unique per domain: the pool offsets them).
        domains: the domain name of each image.
    """

    images: list[Tensor] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)

    def add(self, domain: str, images: Sequence[Tensor], labels: Sequence[int]) -> None:
        offset = max(self.labels, default=-1) + 1
        self.images += list(images)
        self.labels += [offset + int(v) for v in labels]
        self.domains += [domain] * len(images)

    def __len__(self) -> int:
        return len(self.images)

    @classmethod
    def default(cls, *, seed: int = 0, fashion_mnist: int = 4000, photo_crops: int = 2000, synthetic: int = 2000,
                root: str | None = None) -> AnchorPool:
        """The default mix: Fashion-MNIST train images, crops of ``TRAIN_PHOTOS``, synthetic images."""
        from .sources import load_fashion_mnist

        pool = cls()
        rng = np.random.default_rng(seed)
        if fashion_mnist:
            src = load_fashion_mnist("train", root)
            idx = rng.choice(len(src), size=min(fashion_mnist, len(src)), replace=False)
            pool.add("fashion-mnist", [src.images[i] for i in idx], [int(src.labels[i]) for i in idx])
        if photo_crops:
            photos = load_photos(TRAIN_PHOTOS)
            crops, labels = [], []
            for k in range(photo_crops):
                p = int(rng.integers(0, len(photos)))
                img = photos[p]
                side = int(rng.integers(24, min(img.shape[1:]) // 2 + 1))
                y, x = int(rng.integers(0, img.shape[1] - side + 1)), int(rng.integers(0, img.shape[2] - side + 1))
                crops.append(img[:, y:y + side, x:x + side].contiguous())
                labels.append(p)
            pool.add("photos", crops, labels)
        if synthetic:
            made = [synthetic_image(seed * 1_000_003 + k, size=int(rng.choice([28, 32, 48]))) for k in range(synthetic)]
            pool.add("synthetic", [m[0] for m in made], [m[1] for m in made])
        return pool


def _float(img: Tensor) -> Tensor:
    return img.float() / 255


def _mild(x: Tensor, g: torch.Generator) -> Tensor:
    kind = int(torch.randint(0, 4, (1,), generator=g))
    if kind == 0:
        sigma = 0.005 + 0.035 * float(torch.rand(1, generator=g))
        return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)
    if kind == 1:
        dy, dx = (int(v) for v in torch.randint(-1, 2, (2,), generator=g))
        return torch.roll(x, shifts=(dy, dx), dims=(1, 2))
    if kind == 2:
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16
        w = k.expand(x.shape[0], 1, 3, 3)
        return F.conv2d(F.pad(x[None], (1, 1, 1, 1), mode="replicate"), w, groups=x.shape[0])[0]
    factor = 0.85 + 0.3 * float(torch.rand(1, generator=g))
    shift = (float(torch.rand(1, generator=g)) - 0.5) * 0.1
    m = x.mean()
    return ((x - m) * factor + m + shift).clamp(0, 1)


def _unrelated(pool: AnchorPool, i: int, x: Tensor, g: torch.Generator) -> Tensor:
    kind = int(torch.randint(0, 4, (1,), generator=g))
    if kind == 0:
        return torch.rand(x.shape, generator=g)
    if kind == 1:
        mean, std = 0.2 + 0.6 * float(torch.rand(1, generator=g)), 0.1 + 0.25 * float(torch.rand(1, generator=g))
        return (mean + std * torch.randn(x.shape, generator=g)).clamp(0, 1)
    if kind == 2:
        return torch.full(x.shape, float(torch.rand(1, generator=g)))
    for _ in range(20):
        j = int(torch.randint(0, len(pool), (1,), generator=g))
        if pool.labels[j] != pool.labels[i]:
            break
    other = _float(pool.images[j])
    other = F.interpolate(other[None], size=tuple(x.shape[1:]), mode="bilinear", align_corners=False,
                          antialias=True)[0]
    if other.shape[0] != x.shape[0]:
        other = other.mean(0, keepdim=True).expand(x.shape[0], -1, -1) if x.shape[0] == 1 else other.expand(3, -1, -1)
    return other[: x.shape[0]].contiguous()


def anchor_pair(pool: AnchorPool, seed: int) -> tuple[Tensor, Tensor, float]:
    """``(image, second image, target)`` as float ``(C, H, W)`` in ``[0, 1]``: target 1 = a mild copy
    (recognised), 0 = noise, a constant or another class (not recognised). Half of the pairs are each.

    Examples:
        >>> pool = AnchorPool()
        >>> pool.add("synthetic", [synthetic_image(k)[0] for k in range(4)], [0, 1, 2, 3])
        >>> a, b, t = anchor_pair(pool, 7)
        >>> a.shape == b.shape, t in (0.0, 1.0)
        (True, True)
    """
    g = torch.Generator().manual_seed(int(seed))
    i = int(torch.randint(0, len(pool), (1,), generator=g))
    x = _float(pool.images[i])
    if float(torch.rand(1, generator=g)) < 0.5:
        return x, _mild(x, g), 1.0
    return x, _unrelated(pool, i, x, g), 0.0
