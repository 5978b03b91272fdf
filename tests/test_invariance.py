"""SemSim is blind to what people ignore and sees what they see, in every image domain.

The shipped default model scores copies of an original that a person would call the same image - shifted
by 1-2 px, contrast x0.6, brightness +-0.15, blurred (sigma 1 px at 32 px), JPEG quality 30 - as
recognised (p > 0.5) for at least 95% of originals, and a different original of another class farther
than each of those copies for at least 95%, in Fashion-MNIST, emoji scenes and photo thumbnails. The
changes themselves are checked first, so that a broken change cannot make the model look good.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from semsim_metric.data.anchors import invariant_copy
from semsim_metric.evaluation.invariance import (
    CHANGES,
    INVARIANCE_DOMAINS,
    INVARIANCE_TARGETS,
    invariance_originals,
    run_invariance,
)


def test_each_change_keeps_the_image_size_and_range_and_really_changes_it():
    x = torch.rand(3, 32, 32)
    for name, change in CHANGES.items():
        y = change(x)
        assert y.shape == x.shape, name
        assert float(y.min()) >= 0 and float(y.max()) <= 1, name
        assert float((y - x).abs().mean()) > 0.005, f"{name} leaves the image as it is"


def test_a_shift_moves_content_by_whole_pixels():
    x = torch.zeros(1, 32, 32)
    x[0, 10, 10] = 1
    assert float(CHANGES["shift 2 px"](x)[0, 12, 8]) == 1.0
    assert float(CHANGES["shift 1 px"](x)[0, 11, 11]) == 1.0


def test_invariance_originals_are_uint8_of_the_domain_and_unknown_domains_are_refused():
    imgs, labels = invariance_originals("photos", 5, seed=3)
    assert len(imgs) == len(labels) == 5
    assert all(i.dtype == torch.uint8 and tuple(i.shape) == (3, 32, 32) for i in imgs)
    with pytest.raises(ValueError, match="unknown domain"):
        invariance_originals("mnist", 5)


def test_training_copies_people_ignore_are_reproducible_and_in_range():
    x = torch.rand(3, 32, 32)
    a = invariant_copy(x, torch.Generator().manual_seed(5))
    b = invariant_copy(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape
    assert float(a.min()) >= 0 and float(a.max()) <= 1


SHIPPED_CHECKS = Path(__file__).resolve().parents[1] / "hub" / "semsim-resnet18-fmnist-judged" / "checks.json"


def _published_invariance() -> dict[tuple[str, str], dict]:
    return {(c["domain"], c["change"]): c for c in json.loads(SHIPPED_CHECKS.read_text())["invariance"]}


@pytest.mark.slow
class TestShippedDefault:
    """The shipped weights against the targets. The card (and ``checks.json`` beside it) publishes every
    share; a pair it reports as missed is an expected failure here (strict: meeting it later fails the test
    until the card is regenerated), every other pair must meet the target, and the recomputed shares must be
    the published ones."""

    @pytest.fixture(scope="class")
    def results(self):
        return {(r.domain, r.change): r for r in run_invariance(None, n=200, seed=1)}

    def test_the_published_shares_are_what_the_weights_give(self, results):
        published = _published_invariance()
        assert set(published) == set(results)
        for key, r in results.items():
            for check, share in published[key]["shares"].items():
                assert r.shares[check] == pytest.approx(share, abs=0.011), (
                    key,
                    check,
                )  # 2 of 200 for float noise

    @pytest.mark.parametrize("domain", INVARIANCE_DOMAINS)
    @pytest.mark.parametrize("change", list(CHANGES))
    def test_a_copy_people_ignore_is_recognised_and_another_class_is_farther(
        self, results, domain, change, request
    ):
        r = results[(domain, change)]
        if not _published_invariance()[(domain, change)]["passed"]:
            request.applymarker(
                pytest.mark.xfail(strict=True, reason=f"the card reports {domain}, {change} as missed")
            )
        for check, target in INVARIANCE_TARGETS.items():
            assert r.shares[check] >= target, (
                f"{domain}, {change}: {check} holds for {r.shares[check]:.1%} of "
                f"originals (target {target:.0%}); {r.details}"
            )


@pytest.mark.slow
@pytest.mark.parametrize(
    "domain",
    [
        "emoji-scenes",
        "fashion-mnist",
        # photo thumbnails were a borderline miss of the content check with the v6/v7 network; v8's network (trained
        # afresh) takes them as in domain
        "photos",
    ],
)
def test_the_default_model_takes_colour_and_greyscale_originals_as_in_domain(domain):
    import warnings

    from semsim_metric import SemSimModel, semsim
    from semsim_metric.domain import OutOfDomainWarning
    from semsim_metric.hub import bundled_model_path

    model = SemSimModel.from_pretrained(bundled_model_path()).eval()  # a fresh config: nothing warned yet
    originals = torch.stack(invariance_originals(domain, 64, seed=4)[0]).float() / 255
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        semsim((originals + 0.05 * torch.randn_like(originals)).clamp(0, 1), originals, model=model)
