"""Label-free anchor pairs that pin SemSim's scale in any image domain.

An anchor pair is an image and a second image whose recognisability is known without asking anyone:

* **recognised** (target 1): a mild copy - Gaussian noise of standard deviation up to 0.04, a one-pixel
  shift, a slight blur, or a small contrast/brightness change (``kind="mild"``); with
  ``kind="invariances"`` also the changes people ignore at the model's size (32 px): shifts of 1-2 px,
  contrast x0.5-1.2, brightness +-0.2, Gaussian blur of sigma up to 1.3 px, JPEG quality 20-90, and pairs
  of these;
* **not recognised** (target 0): uniform noise, Gaussian noise, a constant image, or a different image of
  another class from the pool.

The pool mixes image domains, each brought to the model's size by the input gate as at scoring time:
the Fashion-MNIST *train* split (greyscale; the annotated originals are *test* images), the emoji-scenes
*train* split (colour; ``emoji-scenes``, also only its train split), random crops of
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

from ..errors import InvalidInputError
from .augmentation import item_seed
from .sources import parse_source_list

__all__ = [
    "ANCHOR_DOMAINS",
    "ANCHOR_KINDS",
    "HELD_OUT_PHOTOS",
    "TRAIN_PHOTOS",
    "AnchorPool",
    "anchor_pair",
    "invariant_copy",
    "jpeg_copy",
    "load_photos",
    "shift_image",
    "synthetic_image",
]

#: the domains an anchor pool can draw from
ANCHOR_DOMAINS = ("fashion-mnist", "photos", "synthetic", "emoji-scenes")
#: which copies count as recognised (see the module docstring)
ANCHOR_KINDS = ("mild", "invariances")

#: scikit-image photographs used for anchors during training.
TRAIN_PHOTOS = (
    "astronaut",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "camera",
    "coins",
    "moon",
    "brick",
    "grass",
)
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
    def from_domains(
        cls, domains: str | Sequence[str], *, seed: int = 0, root: str | None = None
    ) -> AnchorPool:
        """A pool of the named domains (see ``ANCHOR_DOMAINS``), each with its default size: a sequence of
        names, or names joined by ``+`` (``"fashion-mnist+photos"``, read by ``parse_source_list``).

        Raises:
            InvalidInputError: (a ``ValueError``) an unknown domain name, an empty one, or none.
        """
        names = parse_source_list(domains) if isinstance(domains, str) else tuple(domains)
        unknown = sorted(set(names) - set(ANCHOR_DOMAINS))
        if unknown or not names:
            raise InvalidInputError(
                f"unknown anchor domain(s) {unknown or [domains]}; choose from {list(ANCHOR_DOMAINS)} "
                "joined by '+'."
            )
        return cls.default(
            seed=seed,
            root=root,
            fashion_mnist=4000 if "fashion-mnist" in names else 0,
            photo_crops=2000 if "photos" in names else 0,
            synthetic=2000 if "synthetic" in names else 0,
            emoji_scenes=3000 if "emoji-scenes" in names else 0,
        )

    @classmethod
    def default(
        cls,
        *,
        seed: int = 0,
        fashion_mnist: int = 4000,
        photo_crops: int = 2000,
        synthetic: int = 2000,
        root: str | None = None,
        emoji_scenes: int = 0,
    ) -> AnchorPool:
        """The default mix: Fashion-MNIST train images, crops of ``TRAIN_PHOTOS``, synthetic images (and
        emoji-scenes train images when ``emoji_scenes > 0``)."""
        from .sources import load_fashion_mnist

        pool = cls()
        rng = np.random.default_rng(seed)
        if emoji_scenes:
            from .sources import load_source

            emoji = load_source("emoji-scenes", "train")
            idx = np.random.default_rng(seed + 1).choice(
                len(emoji), size=min(emoji_scenes, len(emoji)), replace=False
            )
            pool.add("emoji-scenes", [emoji.images[i] for i in idx], [int(emoji.labels[i]) for i in idx])
        if fashion_mnist:
            src = load_fashion_mnist("train", root)
            idx = rng.choice(len(src), size=min(fashion_mnist, len(src)), replace=False)
            pool.add("fashion-mnist", [src.images[i] for i in idx], [int(src.labels[i]) for i in idx])
        if photo_crops:
            photos = load_photos(TRAIN_PHOTOS)
            crops, labels = [], []
            for _k in range(photo_crops):
                p = int(rng.integers(0, len(photos)))
                img = photos[p]
                side = int(rng.integers(24, min(img.shape[1:]) // 2 + 1))
                y, x = (
                    int(rng.integers(0, img.shape[1] - side + 1)),
                    int(rng.integers(0, img.shape[2] - side + 1)),
                )
                crops.append(img[:, y : y + side, x : x + side].contiguous())
                labels.append(p)
            pool.add("photos", crops, labels)
        if synthetic:
            made = [
                synthetic_image(item_seed(seed, k), size=int(rng.choice([28, 32, 48])))
                for k in range(synthetic)
            ]
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
        mean, std = (
            0.2 + 0.6 * float(torch.rand(1, generator=g)),
            0.1 + 0.25 * float(torch.rand(1, generator=g)),
        )
        return (mean + std * torch.randn(x.shape, generator=g)).clamp(0, 1)
    if kind == 2:
        return torch.full(x.shape, float(torch.rand(1, generator=g)))
    for _ in range(20):
        j = int(torch.randint(0, len(pool), (1,), generator=g))
        if pool.labels[j] != pool.labels[i]:
            break
    other = _float(pool.images[j])
    other = F.interpolate(
        other[None], size=tuple(x.shape[1:]), mode="bilinear", align_corners=False, antialias=True
    )[0]
    if other.shape[0] != x.shape[0]:
        other = (
            other.mean(0, keepdim=True).expand(x.shape[0], -1, -1)
            if x.shape[0] == 1
            else other.expand(3, -1, -1)
        )
    return other[: x.shape[0]].contiguous()


def _at_model_size(x: Tensor, size: int = 32) -> Tensor:
    if max(x.shape[1:]) <= size:
        return x
    return F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[
        0
    ].clamp(0, 1)


def shift_image(x: Tensor, dy: int, dx: int) -> Tensor:
    """Translate an image ``(C, H, W)`` by whole pixels (down ``dy``, right ``dx``), filling the uncovered border
    by replicating the edge.

    Examples:
        >>> x = torch.zeros(1, 5, 5); x[0, 1, 1] = 1
        >>> float(shift_image(x, 2, 1)[0, 3, 2])
        1.0
    """
    h, w = x.shape[1:]
    p = max(abs(dy), abs(dx))
    padded = F.pad(x[None], (p, p, p, p), mode="replicate")[0]
    return padded[:, p - dy : p - dy + h, p - dx : p - dx + w].contiguous()


def jpeg_copy(x: Tensor, quality: int) -> Tensor:
    """``x`` (float ``(C, H, W)`` in ``[0, 1]``, C in {1, 3}) saved as JPEG at ``quality`` and decoded again."""
    import io

    from PIL import Image

    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    out = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L" if arr.shape[2] == 1 else "RGB"))
    t = torch.from_numpy(out.copy()).float() / 255
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def invariant_copy(x: Tensor, g: torch.Generator, *, combine: float = 0.3) -> Tensor:
    """A copy of ``x`` (float ``(C, H, W)`` in ``[0, 1]``, at the model's size) changed in a way people ignore:
    a 1-2 px shift, contrast x0.5-1.2, brightness +-0.2, Gaussian blur of sigma 0.3-1.3 px, JPEG quality
    20-90, or faint Gaussian noise; with probability ``combine`` two of these.

    Examples:
        >>> x = torch.rand(3, 32, 32)
        >>> y = invariant_copy(x, torch.Generator().manual_seed(0))
        >>> y.shape == x.shape, float(y.min()) >= 0, float(y.max()) <= 1
        (True, True, True)
    """
    from .augmentation import gaussian_blur

    rounds = 2 if float(torch.rand(1, generator=g)) < combine else 1
    out = x
    for _ in range(rounds):
        kind = int(torch.randint(0, 6, (1,), generator=g))
        if kind == 0:
            dy, dx = 0, 0
            while dy == 0 and dx == 0:
                dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=g))
            out = shift_image(out, dy, dx)
        elif kind == 1:
            factor = 0.5 + 0.7 * float(torch.rand(1, generator=g))
            m = out.mean()
            out = ((out - m) * factor + m).clamp(0, 1)
        elif kind == 2:
            out = (out + (float(torch.rand(1, generator=g)) * 2 - 1) * 0.2).clamp(0, 1)
        elif kind == 3:
            out = gaussian_blur(out, 0.3 + float(torch.rand(1, generator=g)))
        elif kind == 4:
            out = jpeg_copy(out, 20 + int(torch.randint(0, 71, (1,), generator=g)))
        else:
            sigma = 0.005 + 0.035 * float(torch.rand(1, generator=g))
            out = (out + sigma * torch.randn(out.shape, generator=g)).clamp(0, 1)
    return out


def anchor_pair(pool: AnchorPool, seed: int, kind: str = "mild") -> tuple[Tensor, Tensor, float]:
    """``(image, second image, target)`` as float ``(C, H, W)`` in ``[0, 1]``: target 1 = a mild copy
    (recognised), 0 = noise, a constant or another class (not recognised). Half of the pairs are each.

    Examples:
        >>> pool = AnchorPool()
        >>> pool.add("synthetic", [synthetic_image(k)[0] for k in range(4)], [0, 1, 2, 3])
        >>> a, b, t = anchor_pair(pool, 7)
        >>> a.shape == b.shape, t in (0.0, 1.0)
        (True, True)
    """
    if kind not in ANCHOR_KINDS:
        raise InvalidInputError(f"unknown anchor kind {kind!r}; choose from {list(ANCHOR_KINDS)}.")
    g = torch.Generator().manual_seed(int(seed))
    i = int(torch.randint(0, len(pool), (1,), generator=g))
    x = _float(pool.images[i])
    if kind == "invariances":
        x = _at_model_size(x)
    if float(torch.rand(1, generator=g)) < 0.5:
        return x, (invariant_copy(x, g) if kind == "invariances" else _mild(x, g)), 1.0
    return x, _unrelated(pool, i, x, g), 0.0
