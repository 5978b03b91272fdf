"""Can an optimiser fool SemSim? Two attacks on the metric itself, reported per image domain.

1. **From noise** (the loss as a training objective): start from uniform noise and run Adam on the pixels
   for ``steps`` steps of ``SemSimLoss`` toward an original, at several learning rates (pixels clamped to
   ``[0, 1]`` after each step). The result *fools* SemSim when ``p_recognised > 0.5`` although its SSIM to
   the original is below 0.3 (it still does not look like the original). Target: nobody is fooled.
2. **PGD on a far reconstruction**: start from a reconstruction SemSim already scores as not recognised
   and move it inside an L-infinity ball of ``8/255`` (signed-gradient steps) to lower its distance. An
   ``8/255`` change leaves what a person sees unchanged, so the share that crosses ``p_recognised > 0.5``
   measures how brittle the decision is (reported; no target).

``python -m semsim_metric.evaluation.robustness [--model M] [--n 32]`` prints both tables.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError
from ..functional import get_model
from ..loss import SemSimLoss
from ..models import SemSimModel
from .invariance import INVARIANCE_DOMAINS, invariance_originals

__all__ = [
    "FOOLED_SSIM",
    "RobustnessResult",
    "from_noise",
    "from_noise_at_rates",
    "pgd_toward",
    "robustness_table",
    "run_robustness",
]

#: below this SSIM to the original an image does not look like it (the issue's threshold)
FOOLED_SSIM = 0.3


@dataclass
class RobustnessResult:
    """One attack setting in one domain."""

    domain: str
    attack: str
    n: int
    shares: dict[str, float] = field(default_factory=dict)
    details: dict[str, float] = field(default_factory=dict)


def _ssim(x: Tensor, y: Tensor) -> np.ndarray:
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    return ssim(x, y, data_range=1.0, reduction="none").detach().float().numpy()


def _scores(
    model: SemSimModel, loss_fn: SemSimLoss, x: Tensor, originals: Tensor
) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        d = loss_fn(x, originals).detach()
    return d.numpy(), model.probability(d).numpy()


def from_noise(
    model: SemSimModel, originals: Tensor, *, lr: float, steps: int = 200, seed: int = 0
) -> dict[str, np.ndarray]:
    """Adam on the pixels of uniform noise toward ``originals`` (float ``(N, C, H, W)`` in ``[0, 1]``).

    Returns:
        ``distance`` (SemSim, in ``[0, 2]``, lower = more leakage), ``p`` (p_recognised) and ``ssim`` of the
        final images, one value per original.
    """
    return from_noise_at_rates(model, originals, learning_rates=(lr,), steps=steps, seed=seed)[0]


def from_noise_at_rates(
    model: SemSimModel,
    originals: Tensor,
    *,
    learning_rates: Sequence[float],
    steps: int = 200,
    seed: int = 0,
) -> list[dict[str, np.ndarray]]:
    """``from_noise`` at several learning rates in one batch (``originals``: float ``(N, C, H, W)`` in ``[0, 1]``):
    each rate optimises its own copy of the same starting noise (one Adam parameter group per rate), and one
    forward and backward pass per step serves them all. The result for each rate is what ``from_noise`` gives
    for it alone (Adam's update is per pixel and each image's loss depends only on that image), up to float
    rounding.

    Returns:
        One ``from_noise`` result per learning rate, in order (an empty list for no rates): ``distance`` (SemSim,
        in ``[0, 2]``, lower = more leakage), ``p`` (p_recognised) and ``ssim`` of the final images.
    """
    learning_rates = tuple(learning_rates)
    if not learning_rates:
        return []
    loss_fn = SemSimLoss(model, reduction="none", check_domain=False)
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(originals.shape, generator=g)
    xs = [start.clone().requires_grad_(True) for _ in learning_rates]
    opt = torch.optim.Adam([{"params": [x], "lr": lr} for x, lr in zip(xs, learning_rates, strict=True)])
    targets = originals.repeat(len(xs), *([1] * (originals.dim() - 1)))
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(torch.cat(xs), targets).sum().backward()
        opt.step()
        with torch.no_grad():
            for x in xs:
                x.clamp_(0, 1)
    results = []
    for x in xs:
        x = x.detach()
        d, p = _scores(model, loss_fn, x, originals)
        results.append({"distance": d, "p": p, "ssim": _ssim(x, originals)})
    return results


def pgd_toward(
    model: SemSimModel,
    reconstructions: Tensor,
    originals: Tensor,
    *,
    eps: float = 8 / 255,
    steps: int = 50,
    step_size: float = 1 / 255,
) -> dict[str, np.ndarray]:
    """Signed-gradient descent of the SemSim distance inside an L-infinity ball of ``eps`` around each
    reconstruction (float ``(N, C, H, W)`` in ``[0, 1]``, like ``originals``). Returns the ``p`` (p_recognised)
    before and after, the SemSim ``distance`` after (in ``[0, 2]``, lower = more leakage) and the SSIM to the
    original after."""
    loss_fn = SemSimLoss(model, reduction="none", check_domain=False)
    _, p_before = _scores(model, loss_fn, reconstructions, originals)
    x = reconstructions.clone()
    for _ in range(steps):
        x.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(x, originals).sum(), x)
        with torch.no_grad():
            x = x - step_size * grad.sign()
            x = torch.min(torch.max(x, reconstructions - eps), reconstructions + eps).clamp(0, 1)
    x = x.detach()
    d, p = _scores(model, loss_fn, x, originals)
    return {"p_before": p_before, "p": p, "distance": d, "ssim": _ssim(x, originals)}


def _far_reconstructions(domain: str, originals: Tensor, seed: int) -> Tensor:
    """Stand-ins for far reconstructions of ``originals``: the original under heavy Gaussian noise
    (sigma 0.35) and a strong blur, the look of an attack that failed."""
    from ..data.augmentation import gaussian_blur

    g = torch.Generator().manual_seed(seed + 1)
    blurred = torch.stack([gaussian_blur(x, 2.5) for x in originals])
    return (blurred + 0.35 * torch.randn(originals.shape, generator=g)).clamp(0, 1)


def run_robustness(
    model: Any = None,
    *,
    n: int = 32,
    seed: int = 0,
    steps: int = 200,
    learning_rates: Sequence[float] = (0.01, 0.05, 0.1),
    domains: Sequence[str] = INVARIANCE_DOMAINS,
) -> list[RobustnessResult]:
    """Both attacks on ``n`` originals of each domain.

    Raises:
        ValueError: the model has no calibration.

    Examples:
        >>> results = run_robustness(None, n=4, steps=5, domains=("photos",))  # doctest: +SKIP
    """
    net = get_model(model)
    if not net.config.calibration:
        raise InvalidInputError(
            "the robustness checks need a calibrated model (p_recognised); this one has no calibration."
        )
    out = []
    for domain in domains:
        origs_u8, _ = invariance_originals(domain, n, seed=seed)
        originals = torch.stack(origs_u8).float() / 255
        batched = from_noise_at_rates(net, originals, learning_rates=learning_rates, steps=steps, seed=seed)
        for lr, r in zip(learning_rates, batched, strict=True):
            fooled = (r["p"] > 0.5) & (r["ssim"] < FOOLED_SSIM)
            out.append(
                RobustnessResult(
                    domain,
                    f"Adam from noise, {steps} steps, lr {lr:g}",
                    len(originals),
                    shares={"fooled": float(fooled.mean()), "recognised": float((r["p"] > 0.5).mean())},
                    details={
                        "median_p": float(np.median(r["p"])),
                        "median_ssim": float(np.median(r["ssim"])),
                        "median_distance": float(np.median(r["distance"])),
                    },
                )
            )
        far = _far_reconstructions(domain, originals, seed)
        r = pgd_toward(net, far, originals)
        start_far = r["p_before"] < 0.5
        crossed = (r["p"] > 0.5) & start_far
        out.append(
            RobustnessResult(
                domain,
                "PGD 8/255 from a far reconstruction, 50 steps",
                int(start_far.sum()),
                shares={
                    "fooled": float(crossed.sum() / max(1, start_far.sum())),
                    "recognised": float((r["p"] > 0.5).mean()),
                },
                details={
                    "median_p": float(np.median(r["p"])),
                    "median_ssim": float(np.median(r["ssim"])),
                    "median_distance": float(np.median(r["distance"])),
                },
            )
        )
    return out


def robustness_table(results: list[RobustnessResult]) -> str:
    """The results as a Markdown table."""
    header = (
        "| domain | attack | images | fooled (p > 0.5 while SSIM < 0.3; PGD: crossed to p > 0.5) | median p | "
        "median SSIM to the original | median d |"
    )
    lines = [header, "|---|---|---|---|---|---|---|"]
    for r in results:
        d = r.details
        lines.append(
            f"| {r.domain} | {r.attack} | {r.n} | {r.shares['fooled']:.1%} | {d['median_p']:.2f} | "
            f"{d['median_ssim']:.3f} | {d['median_distance']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=None, help="folder or Hub id (default: the bundled default model)")
    parser.add_argument("--n", type=int, default=32, help="originals per domain (default 32)")
    parser.add_argument("--steps", type=int, default=200, help="Adam steps from noise (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(robustness_table(run_robustness(args.model, n=args.n, seed=args.seed, steps=args.steps)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
