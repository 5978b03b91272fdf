"""SemSim as a loss is hard to fool: an optimiser cannot make noise "recognised" without making it look
like the original.

200 Adam steps of ``SemSimLoss`` from uniform noise toward an original, at learning rates 0.01, 0.05 and
0.1, must not reach ``p_recognised > 0.5`` while the image's SSIM to the original is below 0.3. The PGD
check (8/255 around a far reconstruction) is reported by ``python -m semsim_metric.evaluation.robustness``
and in the model card; it has no target.
"""

from __future__ import annotations

import pytest
import torch

from semsim_metric.evaluation.robustness import FOOLED_SSIM, from_noise, pgd_toward, run_robustness


def test_the_attack_from_noise_really_optimises_the_distance(tiny_model):
    originals = torch.rand(2, 3, 32, 32)
    start = from_noise(tiny_model, originals, lr=0.05, steps=1)
    end = from_noise(tiny_model, originals, lr=0.05, steps=30)
    assert end["distance"].mean() < start["distance"].mean()


def test_pgd_stays_inside_its_ball_and_lowers_the_distance(tiny_model):
    originals, recs = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = pgd_toward(tiny_model, recs, originals, steps=10)
    assert out["p"].mean() >= out["p_before"].mean() - 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("domain", ["fashion-mnist", "emoji-scenes", "photos"])
def test_noise_optimised_toward_an_original_is_not_recognised_unless_it_looks_like_it(domain):
    results = [r for r in run_robustness(None, n=12, seed=2, domains=(domain,)) if r.attack.startswith("Adam")]
    assert len(results) == 3
    for r in results:
        assert r.shares["fooled"] == 0.0, (f"{domain}, {r.attack}: {r.shares['fooled']:.0%} reach p > 0.5 with SSIM "
                                           f"< {FOOLED_SSIM} ({r.details})")
