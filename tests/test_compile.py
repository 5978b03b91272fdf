"""torch.compile: a compiled model, model.compile(), or SemSim(..., compile=...) give the same scores."""

from __future__ import annotations

import pytest
import torch

from semsim_metric import SemSim, SemSimConfig, SemSimLoss, SemSimModel, semsim


@pytest.fixture
def model_and_pairs():
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=4)).eval()
    return model, torch.rand(4, 3, 32, 32), torch.rand(4, 3, 32, 32)


def _reference(model, x, y):
    return semsim(x, y, model=model, reduction="none").detach()


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_metric_and_loss_compile_their_forward_pass(model_and_pairs, backend):
    model, x, y = model_and_pairs
    ref = _reference(model, x, y)
    metric = SemSim(model, reduction="none", compile={"backend": backend})
    assert metric.net._compiled_call_impl is not None  # the forward that scoring calls is compiled
    torch.testing.assert_close(metric(x, y), ref, atol=1e-6, rtol=0)
    loss = SemSimLoss(model, compile={"backend": backend})
    torch.testing.assert_close(loss(x, y).detach(), ref.mean(), atol=1e-6, rtol=0)
    assert model._compiled_call_impl is None  # the caller's model is left as it was


def test_a_torch_compiled_model_is_accepted_everywhere(model_and_pairs):
    model, x, y = model_and_pairs
    ref = _reference(model, x, y)
    compiled = torch.compile(model, backend="eager")
    torch.testing.assert_close(
        semsim(x, y, model=compiled, reduction="none").detach(), ref, atol=1e-6, rtol=0
    )
    metric = SemSim(compiled, reduction="none")
    torch.testing.assert_close(metric(x, y), ref, atol=1e-6, rtol=0)


def test_model_compile_is_used_by_scoring(model_and_pairs):
    model, x, y = model_and_pairs
    ref = _reference(model, x, y)
    calls = []
    model.compile(backend=lambda gm, inputs: (calls.append(1), gm.forward)[1])
    torch.testing.assert_close(semsim(x, y, model=model, reduction="none").detach(), ref, atol=1e-6, rtol=0)
    assert calls, "scoring did not go through the compiled forward"


@pytest.mark.slow
def test_inductor_gives_the_same_scores(model_and_pairs):
    model, x, y = model_and_pairs
    ref = _reference(model, x, y)
    metric = SemSim(model, reduction="none", compile=True)
    torch.testing.assert_close(metric(x, y), ref, atol=1e-5, rtol=0)
