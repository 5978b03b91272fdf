"""SemSim as a torchmetrics Metric, the functional core and the loss (torchmetrics/piq conventions)."""

import copy
import json
import pickle

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from semsim_metric import SemSim, SemSimLoss, semsim
from tests.conftest import FIXTURES


def batches(k=3, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, 3, 32, 32, generator=g), torch.rand(n, 3, 32, 32, generator=g)) for _ in range(k)]


def test_golden_values_of_the_committed_tiny_checkpoint(tiny_model):
    g = torch.Generator().manual_seed(99)
    preds, target = torch.rand(4, 3, 32, 32, generator=g), torch.rand(4, 3, 32, 32, generator=g)
    expected = json.loads((FIXTURES / "tiny_model" / "golden.json").read_text())["distances"]
    got = semsim(preds, target, model=tiny_model, reduction="none").detach()
    torch.testing.assert_close(got, torch.tensor(expected), rtol=1e-5, atol=1e-6)


def test_same_input_same_output_across_calls(tiny_model):
    ((p, t),) = batches(1)
    assert torch.equal(semsim(p, t, model=tiny_model), semsim(p, t, model=tiny_model))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_accumulated_batches_equal_one_functional_call(tiny_model, reduction):
    metric = SemSim(tiny_model, reduction=reduction)
    data = batches()
    for p, t in data:
        metric.update(p, t)
    preds = torch.cat([p for p, _ in data])
    target = torch.cat([t for _, t in data])
    expected = semsim(preds, target, model=tiny_model, reduction=reduction).detach()
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-5, atol=1e-6)


def test_forward_equals_update_then_compute(tiny_model):
    ((p, t),) = batches(1)
    a, b = SemSim(tiny_model), SemSim(tiny_model)
    batch_value = a(p, t)
    b.update(p, t)
    torch.testing.assert_close(batch_value, b.compute())
    torch.testing.assert_close(a.compute(), b.compute())


def test_forward_keeps_gradients_for_the_inputs(tiny_model):
    p = torch.rand(2, 3, 32, 32, requires_grad=True)
    SemSim(tiny_model)(p, torch.rand(2, 3, 32, 32)).backward()
    assert p.grad is not None and bool(p.grad.isfinite().all())


def test_network_is_frozen_out_of_state_dict_and_stays_in_eval(tiny_model):
    metric = SemSim(tiny_model)
    assert metric.state_dict() == {}
    assert list(metric.parameters()) == []
    metric.train()
    assert not metric.net.training
    assert all(not p.requires_grad for p in metric.net.parameters())
    assert tiny_model.backbone.conv1.weight.requires_grad  # the caller's model is copied, not modified


def test_pickle_and_clone_keep_behaviour(tiny_model):
    metric = SemSim(tiny_model)
    ((p, t),) = batches(1)
    metric.update(p, t)
    for other in (pickle.loads(pickle.dumps(metric)), metric.clone(), copy.deepcopy(metric)):
        torch.testing.assert_close(other.compute(), metric.compute())
        other.update(p, t)
        torch.testing.assert_close(other.compute(), metric.compute())


def test_reset_clears_the_states(tiny_model):
    metric = SemSim(tiny_model, reduction="none")
    metric.update(*batches(1)[0])
    metric.reset()
    assert metric.compute().numel() == 0


def test_float64_follows_to_dtype(tiny_model):
    metric = SemSim(tiny_model).to(torch.float64)
    assert metric.net.backbone.conv1.weight.dtype == torch.float64
    ((p, t),) = batches(1)
    metric.update(p.double(), t.double())
    out = metric.compute()
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), semsim(p, t, model=tiny_model).detach(), rtol=1e-4, atol=1e-5)


def test_bf16_on_cpu_is_close_to_float32(tiny_model):
    metric = SemSim(tiny_model)
    metric.set_dtype(torch.bfloat16)
    assert metric.net.backbone.conv1.weight.dtype == torch.bfloat16
    ((p, t),) = batches(1)
    metric.update(p, t)
    torch.testing.assert_close(
        metric.compute().float(), semsim(p, t, model=tiny_model).detach(), atol=0.05, rtol=0.1
    )


def test_works_in_a_metric_collection_with_psnr_and_ssim(tiny_model):
    collection = MetricCollection(
        {
            "psnr": PeakSignalNoiseRatio(data_range=1.0),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
            "semsim": SemSim(tiny_model),
        }
    )
    for p, t in batches():
        collection.update(p, t)
    out = collection.compute()
    assert set(out) == {"psnr", "ssim", "semsim"}
    pairs = batches()
    direct = torch.cat([semsim(p, t, model=tiny_model, reduction="none").detach() for p, t in pairs]).mean()
    assert float(out["semsim"]) == pytest.approx(float(direct), abs=1e-6)  # the collection's SemSim is SemSim


def test_metadata_and_plot(tiny_model):
    metric = SemSim(tiny_model)
    assert (metric.higher_is_better, metric.is_differentiable, metric.full_state_update) == (
        False,
        True,
        False,
    )
    values = [metric(p, t) for p, t in batches()]
    fig, _ax = metric.plot(values)
    assert fig is not None


def test_probability_output_uses_the_calibration(tiny_model):
    ((p, t),) = batches(1)
    d = semsim(p, t, model=tiny_model, reduction="none").detach()
    prob = SemSim(tiny_model, output="probability", reduction="none")
    prob.update(p, t)
    torch.testing.assert_close(prob.compute(), torch.sigmoid(2.0 - 4.0 * d))


def test_probability_needs_a_calibrated_model(random_model):
    with pytest.raises(ValueError, match="calibrat"):
        SemSim(random_model, output="probability")


@pytest.mark.parametrize("kwargs", [{"reduction": "avg"}, {"data_range": 0}, {"output": "logit"}])
def test_bad_arguments_fail_in_init(tiny_model, kwargs):
    with pytest.raises(ValueError):
        SemSim(tiny_model, **kwargs)
    if "output" not in kwargs:
        with pytest.raises(ValueError):
            SemSimLoss(tiny_model, **kwargs)


def test_inputs_on_another_device_than_the_network_are_an_error(tiny_model):
    metric = SemSim(tiny_model)
    p = torch.rand(1, 3, 32, 32, device="meta")
    with pytest.raises(ValueError, match="on meta but the SemSim network is on cpu"):
        metric.update(p, p)


@pytest.mark.parametrize("make", [lambda: torch.zeros(2, 3, 32, 32), lambda: torch.full((2, 3, 32, 32), 0.7)])
def test_loss_gradients_reach_inputs_only_and_are_finite(tiny_model, make):
    loss_fn = SemSimLoss(tiny_model)
    x = make().requires_grad_(True)
    for y in (make(), torch.rand(2, 3, 32, 32)):  # identical and different targets
        x.grad = None
        loss = loss_fn(x, y)
        loss.backward()
        assert torch.isfinite(loss) and bool(x.grad.isfinite().all())
    assert all(p.grad is None for p in loss_fn.model.parameters())


def test_loss_reductions(tiny_model):
    ((p, t),) = batches(1)
    none = SemSimLoss(tiny_model, reduction="none")(p, t)
    torch.testing.assert_close(SemSimLoss(tiny_model, reduction="sum")(p, t), none.sum())
    torch.testing.assert_close(SemSimLoss(tiny_model)(p, t), none.mean())
    loss = SemSimLoss(tiny_model)
    loss.train()
    assert not loss.model.training


def test_compute_before_update_warns_and_gives_nan_for_the_mean(random_model):
    with pytest.warns(UserWarning, match="no pairs to average"):
        assert torch.isnan(SemSim(random_model).compute())  # as torchmetrics' means: no exception (issue 22)
    assert float(SemSim(random_model, reduction="sum").compute()) == 0.0
    assert SemSim(random_model, reduction="none").compute().numel() == 0


def test_a_call_on_the_meta_device_leaves_the_cached_default_model_alone():
    x = torch.rand(1, 3, 8, 8)
    before = float(semsim(x, torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))))
    meta = torch.empty(1, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match="meta"):
        semsim(meta, meta, validate_args=False)
    from semsim_metric.functional import get_model

    assert next(get_model(None).parameters()).device.type == "cpu"
    assert float(semsim(x, torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)))) == before
    SemSim()  # still builds


def test_a_device_copy_is_used_instead_of_moving_the_shared_model():
    from semsim_metric.functional import get_model

    shared = get_model(None)
    on_meta_guard = get_model(None, device="cpu")
    assert on_meta_guard is shared
    with pytest.raises(ValueError, match="meta"):
        get_model(None, device="meta")
    assert next(shared.parameters()).device.type == "cpu"


def test_the_loss_honours_data_range_and_reduction(random_model):
    from semsim_metric import SemSimLoss

    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    per_pair = semsim(x, y, model=random_model, reduction="none").detach()
    torch.testing.assert_close(
        SemSimLoss(random_model, data_range=255)(x * 255, y * 255).detach(), per_pair.mean()
    )
    torch.testing.assert_close(SemSimLoss(random_model, reduction="none")(x, y).detach(), per_pair)
    torch.testing.assert_close(SemSimLoss(random_model, reduction="sum")(x, y).detach(), per_pair.sum())
    loss = SemSimLoss(random_model).train()
    assert not loss.model.training  # the network stays in eval mode
