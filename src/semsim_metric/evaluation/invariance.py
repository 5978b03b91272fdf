"""Invariance of a SemSim model: blind to what people ignore, sensitive to what they see.

For originals of three image domains - Fashion-MNIST test images (greyscale 28x28), emoji-scenes test
images (colour 32x32) and 32x32 RGB thumbnails of the scikit-image photographs never used in training
(``HELD_OUT_PHOTOS``) - every original is changed in ways a person ignores, at its own size:

* shifted by 1 or 2 pixels (the uncovered border repeats the edge),
* contrast x0.6 around the image's mean,
* brightness +0.15 and -0.15,
* a Gaussian blur of sigma 1 px at 32 px (scaled with the image: 0.875 px at 28 px),
* JPEG at quality 30.

Two checks per domain and change (targets in ``INVARIANCE_TARGETS``):

* the copy is recognised: ``p_recognised > 0.5`` for at least 95% of originals;
* a different original of another class lies farther from the original than the copy, for at least 95%.

``python -m semsim_metric.evaluation.invariance [--model M] [--n 200]`` prints the table.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.anchors import HELD_OUT_PHOTOS, jpeg_copy, load_photos, shift_image
from ..data.augmentation import gaussian_blur
from ..errors import InvalidInputError
from ..functional import get_model, semsim
from ..models import SemSimModel
from .sanity import domain_originals

__all__ = [
    "CHANGES",
    "INVARIANCE_DOMAINS",
    "INVARIANCE_TARGETS",
    "InvarianceResult",
    "invariance_originals",
    "invariance_table",
    "run_invariance",
]

#: share of originals that must pass each check
INVARIANCE_TARGETS = {"copy_recognised": 0.95, "other_farther": 0.95}
#: the image domains checked
INVARIANCE_DOMAINS = ("fashion-mnist", "emoji-scenes", "photos")


def _contrast(x: Tensor, factor: float) -> Tensor:
    m = x.mean()
    return ((x - m) * factor + m).clamp(0, 1)


#: change name -> function of a float image ``(C, H, W)`` in ``[0, 1]``
CHANGES: dict[str, Callable[[Tensor], Tensor]] = {
    "shift 1 px": lambda x: shift_image(x, 1, 1),
    "shift 2 px": lambda x: shift_image(x, 2, -2),
    "contrast x0.6": lambda x: _contrast(x, 0.6),
    "brightness +0.15": lambda x: (x + 0.15).clamp(0, 1),
    "brightness -0.15": lambda x: (x - 0.15).clamp(0, 1),
    "blur sigma 1 px @32": lambda x: gaussian_blur(x, x.shape[-1] / 32),
    "JPEG quality 30": lambda x: jpeg_copy(x, 30),
}


@dataclass
class InvarianceResult:
    """Shares of originals that pass each check for one domain and change."""

    domain: str
    change: str
    n: int
    shares: dict[str, float] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.shares[k] >= t for k, t in INVARIANCE_TARGETS.items())


def invariance_originals(domain: str, n: int, *, seed: int = 0) -> tuple[list[Tensor], list[int]]:
    """``n`` originals of ``domain`` (see ``INVARIANCE_DOMAINS``) as uint8 ``(C, H, W)`` with class labels.

    Raises:
        ValueError: an unknown domain.
    """
    rng = np.random.default_rng(seed)
    if domain in ("fashion-mnist", "emoji-scenes"):
        return domain_originals(domain, n, seed=seed)
    if domain == "photos":
        photos = load_photos(HELD_OUT_PHOTOS)
        out, labels = [], []
        for _ in range(n):
            p = int(rng.integers(0, len(photos)))
            img = photos[p]
            side = int(rng.integers(64, min(160, *img.shape[1:]) + 1))
            y, x = (
                int(rng.integers(0, img.shape[1] - side + 1)),
                int(rng.integers(0, img.shape[2] - side + 1)),
            )
            crop = (
                img[:, y : y + side, x : x + side].float().expand(3, -1, -1)[None]
            )  # greyscale photos as RGB
            small = F.interpolate(crop, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)[
                0
            ]
            out.append(small.round().clamp(0, 255).to(torch.uint8))
            labels.append(p)
        return out, labels
    raise InvalidInputError(f"unknown domain {domain!r}; choose one of {list(INVARIANCE_DOMAINS)}.")


def _distances(model: SemSimModel, recs: list[Tensor], origs: list[Tensor]) -> np.ndarray:
    with torch.inference_mode():
        return (
            semsim(torch.stack(recs), torch.stack(origs), model=model, reduction="none", check_domain=False)
            .float()
            .numpy()
        )


def run_invariance(
    model: Any = None, *, n: int = 200, seed: int = 0, domains: tuple[str, ...] = INVARIANCE_DOMAINS
) -> list[InvarianceResult]:
    """Run every change of ``CHANGES`` on ``n`` originals of each domain.

    Args:
        model: as for ``semsim_metric.semsim`` (``None`` = the bundled default); it needs a calibration.
        n: originals per domain.
        seed: seed of the choice of originals and of the other-class partners.
        domains: the domains to check.

    Returns:
        One ``InvarianceResult`` per (domain, change).

    Raises:
        ValueError: the model has no calibration (``p_recognised`` is undefined).

    Examples:
        >>> results = run_invariance(None, n=20, domains=("photos",))  # doctest: +SKIP
        >>> all(r.passed for r in results)  # doctest: +SKIP
        True
    """
    net = get_model(model)
    if not net.config.calibration:
        raise InvalidInputError(
            "the invariance checks need a calibrated model (p_recognised); this one has no calibration."
        )
    out = []
    for domain in domains:
        origs_u8, labels = invariance_originals(domain, n, seed=seed)
        origs = [x.float() / 255 for x in origs_u8]
        others = []
        for i in range(len(origs)):
            j = next(
                j for j in np.random.default_rng(seed + i).permutation(len(origs)) if labels[j] != labels[i]
            )
            others.append(origs[j])
        d_other = _distances(net, others, origs)
        for change, fn in CHANGES.items():
            copies = [fn(x).to(x.dtype) for x in origs]
            d_copy = _distances(net, copies, origs)
            p_copy = net.probability(torch.from_numpy(d_copy)).numpy()
            out.append(
                InvarianceResult(
                    domain,
                    change,
                    len(origs),
                    shares={
                        "copy_recognised": float((p_copy > 0.5).mean()),
                        "other_farther": float((d_other > d_copy).mean()),
                    },
                    details={
                        "median_distance_copy": float(np.median(d_copy)),
                        "median_distance_other": float(np.median(d_other)),
                        "median_p_copy": float(np.median(p_copy)),
                    },
                )
            )
    return out


def invariance_table(results: list[InvarianceResult]) -> str:
    """The results as a Markdown table (share of originals passing; targets in the header)."""
    header = (
        "| domain | change | originals | copy: p > 0.5 (>= 95%) | other class farther than the copy (>= 95%) "
        "| median d: copy / other | median p of the copy | met |"
    )
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s, d = r.shares, r.details
        lines.append(
            f"| {r.domain} | {r.change} | {r.n} | {s['copy_recognised']:.1%} | {s['other_farther']:.1%} | "
            f"{d['median_distance_copy']:.3f} / {d['median_distance_other']:.3f} | {d['median_p_copy']:.2f} | "
            f"{'yes' if r.passed else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="folder or Hub id (default: the bundled default model)")
    parser.add_argument("--n", type=int, default=200, help="originals per domain (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(invariance_table(run_invariance(args.model, n=args.n, seed=args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
