"""Sanity of a SemSim model in any image domain: what any person would answer, checked without annotators.

For originals of four domains - Fashion-MNIST test images (greyscale 28x28), emoji-scenes test images
(colour 32x32), crops of the scikit-image
photographs never used in training (``HELD_OUT_PHOTOS``, colour and
greyscale, 48-128 px) and synthetic shapes and letters drawn with PIL (seeds disjoint from training) -
each scored at its own size through the input gate, as users would:

* pure uniform or Gaussian noise against an original: ``p_recognised < 0.05`` for at least 99% of pairs;
* an identical copy: distance 0;
* a copy with Gaussian noise of standard deviation 0.03: ``p_recognised > 0.5`` for at least 95% of pairs;
* a different original of another class lies farther than that mild copy for at least 95% of pairs.

``python -m semsim_metric.evaluation.sanity [--model M]`` prints the table.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..data.anchors import HELD_OUT_PHOTOS, load_photos, synthetic_image
from ..errors import InvalidInputError
from ..functional import get_model, semsim
from ..models import SemSimModel

__all__ = ["SanityResult", "domain_originals", "run_sanity", "sanity_table"]

#: the thresholds of each check (share of pairs that must pass)
TARGETS = {
    "noise_unrecognised": 0.99,
    "identical_zero": 1.0,
    "mild_copy_recognised": 0.95,
    "other_farther": 0.95,
}


@dataclass
class SanityResult:
    """Shares of pairs that pass each check, per domain."""

    domain: str
    n: int
    shares: dict[str, float] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(self.shares[k] >= t for k, t in TARGETS.items())


def domain_originals(domain: str, n: int, *, seed: int = 0) -> tuple[list[Tensor], list[int]]:
    """``n`` originals of ``domain`` (``fashion-mnist``, ``emoji-scenes``, ``photos``, ``synthetic``) as uint8 ``(C, H, W)``
    with labels (different labels = different classes)."""
    rng = np.random.default_rng(seed)
    if domain in ("fashion-mnist", "emoji-scenes"):
        from ..data.sources import load_source

        src = load_source(domain, "test")
        idx = rng.choice(len(src), size=min(n, len(src)), replace=False)
        return [src.images[i] for i in idx], [int(src.labels[i]) for i in idx]
    if domain == "photos":
        photos = load_photos(HELD_OUT_PHOTOS)
        out, labels = [], []
        for _ in range(n):
            p = int(rng.integers(0, len(photos)))
            img = photos[p]
            side = int(rng.integers(48, min(128, *img.shape[1:]) + 1))
            y, x = (
                int(rng.integers(0, img.shape[1] - side + 1)),
                int(rng.integers(0, img.shape[2] - side + 1)),
            )
            out.append(img[:, y : y + side, x : x + side].contiguous())
            labels.append(p)
        return out, labels
    if domain == "synthetic":
        made = [
            synthetic_image(10**9 + seed * 100_003 + k, size=int(rng.choice([32, 48, 64]))) for k in range(n)
        ]
        return [m[0] for m in made], [m[1] for m in made]
    raise InvalidInputError(
        f"unknown domain {domain!r}; choose fashion-mnist, emoji-scenes, photos or synthetic."
    )


def _score(model: SemSimModel, recs: list[Tensor], origs: list[Tensor]) -> tuple[np.ndarray, np.ndarray]:
    """Distance and probability per pair, each pair at its own size through the public function."""
    dist = []
    with torch.inference_mode():
        for r, o in zip(recs, origs):
            dist.append(float(semsim(r[None], o[None], model=model, check_domain=False)))
    d = torch.tensor(dist)
    p = model.probability(d) if model.config.calibration else torch.full_like(d, float("nan"))
    return d.numpy(), p.numpy()


def run_sanity(
    model: Any = None,
    *,
    n: int = 200,
    seed: int = 0,
    domains: tuple[str, ...] = ("fashion-mnist", "emoji-scenes", "photos", "synthetic"),
) -> list[SanityResult]:
    """Run every check on ``n`` originals of each domain (``model``: as for ``semsim_metric.semsim``)."""
    net = get_model(model)  # a SemSimModel is returned as it is
    out = []
    for domain in domains:
        g = torch.Generator().manual_seed(seed)
        origs, labels = domain_originals(domain, n, seed=seed)
        o = [x.float() / 255 for x in origs]
        uniform = [torch.rand(x.shape, generator=g) for x in o]
        gauss = [(0.5 + 0.25 * torch.randn(x.shape, generator=g)).clamp(0, 1) for x in o]
        mild = [(x + 0.03 * torch.randn(x.shape, generator=g)).clamp(0, 1) for x in o]
        others = []
        for i, x in enumerate(o):
            j = next(j for j in np.random.default_rng(seed + i).permutation(len(o)) if labels[j] != labels[i])
            other = torch.nn.functional.interpolate(
                o[j][None], size=tuple(x.shape[1:]), mode="bilinear", antialias=True, align_corners=False
            )[0]
            if other.shape[0] != x.shape[0]:
                other = other.mean(0, keepdim=True) if x.shape[0] == 1 else other.expand(3, -1, -1)
            others.append(other.clamp(0, 1))
        d_u, p_u = _score(net, uniform, o)
        d_g, p_g = _score(net, gauss, o)
        d_same, _ = _score(net, o, o)
        d_mild, p_mild = _score(net, mild, o)
        d_other, _ = _score(net, others, o)
        noise_p = np.concatenate([p_u, p_g])
        out.append(
            SanityResult(
                domain,
                n,
                shares={
                    "noise_unrecognised": float((noise_p < 0.05).mean()),
                    "identical_zero": float((np.abs(d_same) < 1e-4).mean()),
                    "mild_copy_recognised": float((p_mild > 0.5).mean()),
                    "other_farther": float((d_other > d_mild).mean()),
                },
                details={
                    "median_distance_noise": float(np.median(np.concatenate([d_u, d_g]))),
                    "median_distance_mild_copy": float(np.median(d_mild)),
                    "median_distance_other": float(np.median(d_other)),
                    "median_p_noise": float(np.median(noise_p)),
                    "median_p_mild_copy": float(np.median(p_mild)),
                },
            )
        )
    return out


def sanity_table(results: list[SanityResult]) -> str:
    """The results as a Markdown table (share of pairs passing; target in the header)."""
    lines = [
        "| domain | pairs | noise: p < 0.05 (>= 99%) | identical: d = 0 (100%) | noise 0.03 copy: p > 0.5 (>= 95%) "
        "| other class farther than that copy (>= 95%) | median d: noise / copy / other | all met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s, d = r.shares, r.details
        lines.append(
            f"| {r.domain} | {r.n} | {s['noise_unrecognised']:.1%} | {s['identical_zero']:.1%} | "
            f"{s['mild_copy_recognised']:.1%} | {s['other_farther']:.1%} | {d['median_distance_noise']:.3f} / "
            f"{d['median_distance_mild_copy']:.3f} / {d['median_distance_other']:.3f} | "
            f"{'yes' if r.passed else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="folder or Hub id (default: the bundled default model)")
    parser.add_argument("--n", type=int, default=200, help="originals per domain (default 200)")
    args = parser.parse_args()
    print(sanity_table(run_sanity(args.model, n=args.n)))


if __name__ == "__main__":
    main()
