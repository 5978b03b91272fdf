"""The input gate clamps pixels within its rounding tolerance to ``[0, data_range]`` in value only: the gradient
of ``SemSimLoss`` reaches pixels at 0 and at ``data_range`` (issue 21: a plain clamp gave 417 of the 784 pixels
of a Fashion-MNIST original exactly zero gradient, so an optimiser that pushed a pixel to a bound never moved
it again)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from semsim_metric import SemSimLoss, semsim
from semsim_metric.preprocessing import to_model_input, to_unit_rgb

ROOT = Path(__file__).resolve().parents[1]


def _at_bounds(data_range: float, *, seed: int = 0) -> torch.Tensor:
    """Images ``(2, 1, 28, 28)`` with about 40% of the pixels exactly 0 and 30% exactly ``data_range``."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(2, 1, 28, 28, generator=g)
    x = torch.rand(2, 1, 28, 28, generator=g) * data_range
    x[u < 0.4] = 0.0
    x[u > 0.7] = data_range
    return x


def _bound_gradient(loss_fn: SemSimLoss, x: torch.Tensor, y: torch.Tensor, data_range: float) -> torch.Tensor:
    """The gradient of ``loss_fn(x, y)`` at the pixels of ``x`` that are exactly 0 or ``data_range``."""
    x = x.clone().requires_grad_(True)
    loss_fn(x, y).backward()
    at_bound = (x.detach() == 0) | (x.detach() == data_range)
    assert int(at_bound.sum()) > 0.6 * x.numel()
    return x.grad[at_bound]


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_pixels_at_zero_and_at_data_range_get_a_gradient(tiny_model, data_range):
    loss_fn = SemSimLoss(tiny_model, data_range=data_range, check_domain=False)
    x, y = _at_bounds(data_range, seed=0), _at_bounds(data_range, seed=1)
    g = _bound_gradient(loss_fn, x, y, data_range)
    assert bool(g.isfinite().all())
    assert float((g != 0).float().mean()) > 0.99  # a plain clamp: exactly 0 at every one of them


def test_the_issues_fashion_mnist_original_gets_a_gradient_at_every_pixel():
    """The issue's reproducer: the shipped model, a Fashion-MNIST original of the judged data as the
    reconstruction (most of its background is exactly 0)."""
    from semsim_metric.data.loading import load_folder_or_hub, unique_originals

    originals = unique_originals(
        {"train": load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"), "train")}
    )
    x = originals[0].float().unsqueeze(0) / 255
    y = originals[1].float().unsqueeze(0) / 255
    assert int((x == 0).sum()) > 300
    x.requires_grad_(True)
    SemSimLoss(check_domain=False)(x, y).backward()
    assert int((x.grad == 0).sum()) == 0, f"{int((x.grad == 0).sum())} of {x.numel()} pixels get no gradient"


@pytest.mark.parametrize("start", [0.0, 1.0])
def test_an_optimiser_moves_pixels_off_a_bound(tiny_model, start):
    """Adam from an all-black (all-white) image, pixels clamped to [0, 1] after each step as attacks do: with a
    plain clamp in the gate every gradient is zero and the image never changes."""
    loss_fn = SemSimLoss(tiny_model, check_domain=False)
    target = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    x = torch.full_like(target, start).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        loss_fn(x, target).sum().backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
    moved = (x.detach() != start).float().mean()
    assert float(moved) > 0.5


def test_a_pixel_within_the_tolerance_above_data_range_gets_a_gradient(tiny_model):
    """A bf16-style rounding above ``data_range`` is accepted by the gate; the clamp still passes its gradient."""
    x = _at_bounds(1.0, seed=4)
    x[x == 1.0] = 1.0 + 5e-5
    x.requires_grad_(True)
    SemSimLoss(tiny_model, check_domain=False)(x, _at_bounds(1.0, seed=5)).backward()
    assert float((x.grad[x.detach() > 1] != 0).float().mean()) > 0.99


@pytest.mark.parametrize("data_range", [1.0, 255.0])
def test_the_clamp_leaves_values_bit_for_bit_as_before(tiny_model, data_range):
    """In value the gate is exactly the old ``clamp(0, 1)``, with or without gradients; scores are unchanged."""
    x = _at_bounds(data_range, seed=6)
    x[0, 0, 0, :3] = torch.tensor([-1e-5, 1e-7, data_range * (1 + 5e-5)])  # within the gate's tolerance
    old = (x / data_range).clamp(0.0, 1.0).expand(-1, 3, -1, -1)
    for inp in (x, x.clone().requires_grad_(True)):
        new = to_unit_rgb(inp, data_range=data_range, image_size=28)
        assert torch.equal(new.detach(), old)
        assert new.min() >= 0 and new.max() <= 1
    cfg = tiny_model.config
    kw = {
        "data_range": data_range,
        "image_size": cfg.image_size,
        "mean": cfg.image_mean,
        "std": cfg.image_std,
    }
    assert torch.equal(to_model_input(x, **kw), to_model_input(x.clone().requires_grad_(True), **kw).detach())
    y = _at_bounds(data_range, seed=7)
    plain = semsim(x, y, model=tiny_model, data_range=data_range, reduction="none", check_domain=False)
    with_grad = semsim(
        x.clone().requires_grad_(True),
        y,
        model=tiny_model,
        data_range=data_range,
        reduction="none",
        check_domain=False,
    )
    assert torch.equal(plain, with_grad.detach())


def test_the_gradient_works_under_torch_func():
    """The straight-through clamp is element-wise: ``torch.func.grad`` and ``vmap`` see the identity too."""
    x = torch.full((1, 1, 5, 5), 0.5)
    x[0, 0, 0] = torch.tensor([-1e-5, 0.0, 0.5, 1.0, 1.0 + 5e-5])
    weights = torch.arange(25.0).view(5, 5)

    def f(v: torch.Tensor) -> torch.Tensor:
        return (to_unit_rgb(v, data_range=1.0, image_size=5)[:, 0] * weights).sum()

    assert torch.equal(torch.func.grad(f)(x)[0, 0], weights)
    assert torch.equal(
        torch.func.vmap(torch.func.grad(f))(x.repeat(2, 1, 1, 1, 1))[:, 0, 0], weights.expand(2, 5, 5)
    )
