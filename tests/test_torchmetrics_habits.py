"""SemSim, SemSimLoss and ``semsim`` behave as the torchmetrics and Lightning ecosystem expects (issue 22).

- the orientation and plot bounds follow ``output`` (``MetricTracker`` picks the best step for both outputs);
- ``compute()`` with no pairs warns and gives NaN for the mean instead of raising;
- a module holding ``SemSimLoss`` checkpoints without the frozen network, and loads old checkpoints with it;
- float64 stays float64 end to end (``torch.autograd.gradcheck``), float32 scores are unchanged bit for bit;
- ``FeatureShare`` accepts SemSim, and ``torch.jit.script`` treats it as any torchmetrics metric.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio
from torchmetrics.wrappers import FeatureShare, MetricTracker

from semsim_metric import SemSim, SemSimLoss, SemSimModel, semsim
from semsim_metric.preprocessing import to_model_input


def _pairs(n: int = 3, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.rand(n, 3, size, size, generator=g)


@pytest.fixture
def tiny64(tiny_model_dir) -> SemSimModel:
    """The committed tiny model (calibrated), in float64."""
    return SemSimModel.from_pretrained(tiny_model_dir).double().eval()


# --------------------------------------------------------------------------- orientation follows the output
@pytest.mark.parametrize(
    ("output", "higher", "upper"), [("distance", False, 2.0), ("probability", True, 1.0)]
)
def test_orientation_and_plot_bounds_follow_the_output(tiny_model, output, higher, upper):
    metric = SemSim(tiny_model, output=output)
    assert metric.higher_is_better is higher
    assert (metric.plot_lower_bound, metric.plot_upper_bound) == (0.0, upper)
    assert metric.full_state_update is False
    p, t = _pairs()
    _, ax = metric.plot([metric(p, t), metric(t, t)])
    assert ax.get_ylim() == pytest.approx((-0.1 * upper, 1.1 * upper))  # torchmetrics pads the bounds by 10%


@pytest.mark.parametrize("output", ["distance", "probability"])
def test_metric_tracker_picks_the_step_with_the_best_reconstruction(tiny_model, output):
    originals, noise = _pairs(seed=1)
    # step 1 reconstructs the originals exactly (the most leakage); steps 0 and 2 are noise
    steps = [noise, originals, torch.rand(originals.shape, generator=torch.Generator().manual_seed(7))]
    tracker = MetricTracker(SemSim(tiny_model, output=output))  # maximize is read from higher_is_better
    for reconstructions in steps:
        tracker.increment()
        tracker.update(reconstructions, originals)
    best, step = tracker.best_metric(return_step=True)
    assert step == 1
    assert best == pytest.approx(
        0.0 if output == "distance" else float(torch.sigmoid(torch.tensor(2.0))), abs=1e-6
    )


def test_metric_tracker_of_a_collection_orients_each_member(tiny_model):
    originals, noise = _pairs(seed=2)
    tracker = MetricTracker(
        MetricCollection(
            {
                "d": SemSim(tiny_model),
                "p": SemSim(tiny_model, output="probability"),
                "psnr": PeakSignalNoiseRatio(data_range=1.0),
            }
        )
    )
    assert tracker.maximize == [False, True, True]
    for reconstructions in (noise, originals * 0.98 + noise * 0.02, noise.flip(0)):
        tracker.increment()
        tracker.update(reconstructions, originals)
    _, steps = tracker.best_metric(return_step=True)
    assert steps == {"d": 1, "p": 1, "psnr": 1}


# --------------------------------------------------------------------------- compute() with no pairs
def test_compute_with_no_pairs_warns_and_gives_nan_inside_a_collection(tiny_model):
    collection = MetricCollection(
        {"psnr": PeakSignalNoiseRatio(data_range=1.0), "semsim": SemSim(tiny_model)}
    )
    with pytest.warns(UserWarning, match="SemSim.compute\\(\\) found no pairs to average"):
        out = collection.compute()
    assert torch.isnan(out["semsim"]) and out["semsim"].shape == ()
    # after pairs and a reset the same holds; the sum is 0 and "none" is empty, with no SemSim warning
    metric = SemSim(tiny_model)
    metric.update(*_pairs())
    assert torch.isfinite(metric.compute())
    metric.reset()
    with pytest.warns(UserWarning, match="no pairs"):
        assert torch.isnan(metric.compute())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert float(SemSim(tiny_model, reduction="sum").compute()) == 0.0
        assert SemSim(tiny_model, reduction="none").compute().numel() == 0
    assert not [w for w in caught if "SemSim.compute" in str(w.message)]


def test_a_lightning_validation_epoch_without_pairs_logs_nan_instead_of_failing(tiny_model):
    lightning = pytest.importorskip("lightning")
    from torch.utils.data import DataLoader, TensorDataset

    class Module(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = torch.nn.Conv2d(1, 1, 3, padding=1)
            self.val_metrics = MetricCollection(
                {
                    "psnr": PeakSignalNoiseRatio(data_range=1.0),
                    "semsim": SemSim(tiny_model, check_domain=False),
                },
                prefix="val/",
            )

        def validation_step(self, batch, batch_idx):
            (originals,) = batch
            if batch_idx >= 10:  # this epoch has fewer batches: nothing reaches the metrics
                self.val_metrics.update(torch.sigmoid(self.net(originals)), originals)

        def on_validation_epoch_end(self) -> None:
            self.log_dict(self.val_metrics.compute())
            self.val_metrics.reset()

    loader = DataLoader(TensorDataset(torch.rand(4, 1, 28, 28)), batch_size=2)
    trainer = lightning.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = trainer.validate(Module(), loader, verbose=False)[0]
    assert set(results) == {"val/psnr", "val/semsim"}
    assert results["val/semsim"] != results["val/semsim"]  # NaN


# --------------------------------------------------------------------------- the loss stays out of checkpoints
class _Holder(torch.nn.Module):
    def __init__(self, model: SemSimModel) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 3, 1)
        self.loss_fn = SemSimLoss(model, check_domain=False)


def test_a_module_holding_the_loss_checkpoints_only_its_own_weights(tiny_model):
    holder = _Holder(tiny_model)
    assert sorted(holder.state_dict()) == ["conv.bias", "conv.weight"]
    assert SemSimLoss(tiny_model).state_dict() == {}
    assert list(holder.loss_fn.parameters()) == []
    # the network still follows the module (dtype here; the device goes the same way) and still scores
    holder.double()
    assert holder.loss_fn.model.backbone.conv1.weight.dtype == torch.float64
    p, t = _pairs()
    assert holder.loss_fn(p.double(), t.double()).dtype == torch.float64


def test_old_checkpoints_with_the_network_and_new_ones_load_strictly(tiny_model):
    holder = _Holder(tiny_model)
    new = {k: v.clone() for k, v in holder.state_dict().items()}
    old = dict(new, **{f"loss_fn.model.{k}": torch.zeros_like(v) for k, v in tiny_model.state_dict().items()})
    assert len(old) - len(new) == len(tiny_model.state_dict()) > 100
    p, t = _pairs()
    before = holder.loss_fn(p, t).detach()
    for checkpoint in (old, new):
        fresh = _Holder(tiny_model)
        result = fresh.load_state_dict(checkpoint, strict=True)
        assert (result.missing_keys, result.unexpected_keys) == ([], [])
        assert torch.equal(fresh.conv.weight, holder.conv.weight)
        assert torch.equal(
            fresh.loss_fn(p, t).detach(), before
        )  # the old (zeroed) network weights are ignored
    # strict loading still catches real mismatches
    with pytest.raises(RuntimeError, match="Unexpected key.*loss_fn.bogus"):
        _Holder(tiny_model).load_state_dict(dict(new, **{"loss_fn.bogus": torch.zeros(1)}))
    with pytest.raises(RuntimeError, match="Missing key.*conv.weight"):
        _Holder(tiny_model).load_state_dict({"conv.bias": new["conv.bias"]})


# --------------------------------------------------------------------------- float64 end to end
def _inside(*shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # away from the clamp's bounds; sizes and seeds chosen so that no pixel sits within gradcheck's step
    # (1e-6) of a ReLU kink, where finite differences are wrong in any precision
    return torch.rand(*shape, generator=g, dtype=torch.float64) * 0.8 + 0.1


@pytest.mark.parametrize("output", ["distance", "probability"])
def test_gradcheck_passes_for_a_float64_model_through_the_functional_api(tiny64, output):
    x = _inside(1, 1, 8, 8, seed=0).requires_grad_(True)
    y = _inside(1, 1, 8, 8, seed=1)
    score = semsim(x, y, model=tiny64, output=output, check_domain=False)
    assert score.dtype == torch.float64
    assert torch.autograd.gradcheck(
        lambda a: semsim(a, y, model=tiny64, output=output, check_domain=False), (x,), eps=1e-6, atol=1e-6
    )


def test_gradcheck_passes_through_the_float64_metric_and_loss(tiny_model, tiny64):
    x = _inside(1, 3, 5, 5, seed=2).requires_grad_(True)
    y = _inside(1, 3, 5, 5, seed=3)
    metrics = [
        SemSim(tiny_model, check_domain=False).double(),
        SemSim(tiny64, check_domain=False).to("cpu"),
        SemSim(tiny_model, check_domain=False, output="probability").set_dtype(torch.float64),
    ]
    for metric in metrics:
        assert metric.net.backbone.conv1.weight.dtype == torch.float64 and metric.dtype == torch.float64
        assert torch.autograd.gradcheck(lambda a, m=metric: m(a, y), (x,), eps=1e-6, atol=1e-6)
    loss_fn = SemSimLoss(tiny_model, check_domain=False).double()
    assert torch.autograd.gradcheck(lambda a: loss_fn(a, y), (x,), eps=1e-6, atol=1e-6)
    # .float() goes back to float32 (torchmetrics' own .float()/.double() change nothing)
    assert SemSim(tiny64).float().net.backbone.conv1.weight.dtype == torch.float32


def test_float32_scores_are_the_models_own_bit_for_bit(tiny_model):
    g = torch.Generator().manual_seed(11)
    x, y = torch.rand(4, 3, 20, 20, generator=g), torch.rand(4, 1, 20, 20, generator=g)
    cfg = tiny_model.config
    kwargs = {"data_range": 1.0, "image_size": cfg.image_size, "mean": cfg.image_mean, "std": cfg.image_std}
    distance = tiny_model.eval().distance(to_model_input(x, **kwargs), to_model_input(y, **kwargs)).detach()
    assert distance.dtype == torch.float32
    assert torch.equal(semsim(x, y, model=tiny_model, reduction="none").detach(), distance)
    assert torch.equal(
        semsim(x, y, model=tiny_model, reduction="none", output="probability").detach(),
        tiny_model.probability(distance),
    )
    metric = SemSim(tiny_model, reduction="none")
    metric.update(x, y)
    assert torch.equal(metric.compute(), distance)
    assert torch.equal(SemSimLoss(tiny_model, reduction="none")(x, y).detach(), distance)


def test_set_dtype_keeps_the_count_of_pairs_an_integer(tiny_model):
    metric = SemSim(tiny_model, check_domain=False)
    metric.set_dtype(torch.bfloat16)
    assert metric.sum_scores.dtype == torch.bfloat16 and metric.total.dtype == torch.int64
    x = torch.rand(256, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    metric.update(x, x)
    metric.update(x[:1], x[:1])
    assert int(metric.total) == 257  # a bfloat16 count would stay at 256


# --------------------------------------------------------------------------- FeatureShare and TorchScript
def test_feature_share_shares_one_network_and_keeps_the_scores(tiny_model):
    shared = FeatureShare(
        {"distance": SemSim(tiny_model), "probability": SemSim(tiny_model, output="probability")}
    )
    assert shared["distance"].net is shared["probability"].net
    assert shared.state_dict() == {}  # the shared network stays out of checkpoints
    p, t = _pairs()
    shared.update(p, t)
    out = shared.compute()
    torch.testing.assert_close(out["distance"], semsim(p, t, model=tiny_model).detach())
    torch.testing.assert_close(
        out["probability"], semsim(p, t, model=tiny_model, output="probability").detach()
    )


def test_net_accepts_only_a_semsim_network(tiny_model, random_model):
    metric = SemSim(tiny_model, output="probability")
    with pytest.raises(TypeError, match="SemSimModel"):
        metric.net = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="calibrat"):
        metric.net = random_model


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
def test_torch_jit_script_treats_semsim_as_any_torchmetrics_metric(tiny_model):
    for reduction in ("mean", "none"):
        torch.jit.script(SemSim(tiny_model, reduction=reduction))  # as for PSNR, SSIM, MeanMetric

    class Reconstructor(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.metric = SemSim(tiny_model)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    module = Reconstructor()
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(torch.jit.script(module)(x), module(x))  # a module holding SemSim can be exported
