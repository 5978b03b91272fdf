"""The families of checks of torchmetrics' ``MetricTester``, run for ``SemSim`` by a harness of our own (issue 22).

torchmetrics tests each metric class against a reference implementation with ``MetricTester`` (in torchmetrics'
own test tree, ``tests/unittests/_helpers/testers.py``, not in the installed package). Here the reference is the
functional ``semsim_metric.semsim``, every case runs for both outputs and the three reductions, and the families are:

- the class test (``run_class_metric_test``): constant attributes, ``clone``, the metric used after pickling,
  ``forward`` per batch against the functional on that batch (``check_batch``), ``forward`` = ``update`` +
  ``compute`` on the first batch, ``hash``, an empty ``state_dict``, ``compute`` against the functional on all the
  data; besides: ``compute`` twice, ``update`` after ``compute``, ``reset``; on CUDA too when there is one;
- the functional test (``run_functional_metric_test``): ``semsim`` per batch against the network's own distance;
- the same class test under DDP (2 gloo processes on 127.0.0.1): different and uneven batches per rank, the synced
  result on every rank, local accumulation going on after ``compute``, ``dist_sync_on_step`` (``check_dist_sync_on_step``),
  a rank without batches, a ``MetricCollection`` with compute groups;
- state: pickling a metric with state, ``state_dict`` / ``load_state_dict`` with ``persistent``, ``clone``;
- precision (``run_precision_test_cpu``): half and bfloat16 images on CPU, ``set_dtype`` to them, float64;
- differentiability (``run_differentiability_test``, ``_assert_requires_grad``): ``is_differentiable`` agrees
  with the forward output, gradients reach the images, ``gradcheck`` in float64, no graph kept in the states;
- ``MetricCollection`` membership and ``compute_groups``.

``docs/lightning.md`` ("Checked as torchmetrics checks its own metrics") says which families run and where.
"""

from __future__ import annotations

import copy
import os
import pickle
import socket
import warnings
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor
from torchmetrics import MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio

from semsim_metric import SemSim, SemSimModel, semsim
from semsim_metric.preprocessing import to_model_input
from tests.conftest import FIXTURES

OUTPUTS = ("distance", "probability")
REDUCTIONS = ("mean", "sum", "none")
CASES = [(o, r) for o in OUTPUTS for r in REDUCTIONS]
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]
# the attributes torchmetrics refuses to let a user change (Metric.__setattr__)
CONSTANTS = (
    "higher_is_better",
    "is_differentiable",
    "full_state_update",
    "plot_lower_bound",
    "plot_upper_bound",
)
NOT_UPDATED = "ignore:The ``compute`` method of metric SemSim was called before the ``update``:UserWarning"


def _batches(k: int = 4, n: int = 3, seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """``k`` batches of ``n`` (reconstruction, original) pairs; 16x16, so that the network's resize runs too."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, 3, 16, 16, generator=g), torch.rand(n, 3, 16, 16, generator=g)) for _ in range(k)]


def _cat(batches: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    return torch.cat([p for p, _ in batches]), torch.cat([t for _, t in batches])


def _reference(
    batches: list[tuple[Tensor, Tensor]], model: SemSimModel, output: str, reduction: str
) -> Tensor:
    """The functional on all the pairs of ``batches`` at once."""
    return semsim(*_cat(batches), model=model, output=output, reduction=reduction).detach()


def _close(got: Tensor, expected: Tensor, device: str = "cpu") -> None:
    assert isinstance(got, Tensor)
    # one float32 sum over batches against one mean over all pairs; on CUDA the convolutions may run in TF32
    tol = {"rtol": 1e-5, "atol": 1e-6} if device == "cpu" else {"rtol": 2e-3, "atol": 2e-3}
    torch.testing.assert_close(got.detach().cpu(), expected.detach().cpu(), **tol)


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> SemSimModel:
    """The committed tiny model (calibrated, so ``output="probability"`` works), shared by the module's tests."""
    return SemSimModel.from_pretrained(tiny_model_dir).eval()


# --------------------------------------------------------------------------- class test (one process)
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")
@pytest.mark.filterwarnings(
    "ignore:This property will be removed in 2.0.0:DeprecationWarning"
)  # torchmetrics, scripted
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_class_against_the_functional(model, output, reduction, device):
    data = _batches()
    metric = SemSim(model, output=output, reduction=reduction)
    for name in CONSTANTS:
        with pytest.raises(RuntimeError, match="Can't change const"):
            setattr(metric, name, getattr(metric, name))
    torch.jit.script(metric)  # check_scriptable (scoring stays Python: docs/lightning.md, "TorchScript")
    clone = metric.clone()
    assert clone is not metric and type(clone) is SemSim and clone.net is not metric.net
    metric = pickle.loads(pickle.dumps(metric.to(device)))  # MetricTester goes on with the unpickled metric
    twin = copy.deepcopy(metric)
    for i, (p, t) in enumerate(data):
        value = metric(p.to(device), t.to(device))
        assert value.device.type == device
        _close(value, _reference([(p, t)], model, output, reduction), device)  # check_batch
        if i == 0:  # forward = update + compute
            twin.update(p.to(device), t.to(device))
            _close(value, twin.compute(), device)
    assert len({metric, twin, clone}) == 3  # hashable, and distinct
    assert metric.state_dict() == {}
    result = metric.compute()
    assert result.shape == ((len(data) * 3,) if reduction == "none" else ())
    assert result.dtype == torch.float32 and not result.requires_grad
    _close(result, _reference(data, model, output, reduction), device)
    assert torch.equal(metric.compute(), result)  # compute is idempotent
    extra = _batches(1, seed=1)
    metric.update(*(x.to(device) for x in extra[0]))  # compute did not disturb the states
    _close(metric.compute(), _reference(data + extra, model, output, reduction), device)
    metric.reset()
    metric.update(*(x.to(device) for x in extra[0]))
    _close(metric.compute(), _reference(extra, model, output, reduction), device)


# --------------------------------------------------------------------------- functional test
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_functional_against_the_networks_own_distance(model, output, reduction):
    cfg = model.config
    size = {"data_range": 1.0, "image_size": cfg.image_size, "mean": cfg.image_mean, "std": cfg.image_std}
    for p, t in _batches(2, seed=2):
        scores = model.distance(to_model_input(p, **size), to_model_input(t, **size)).detach()
        if output == "probability":
            scores = model.probability(scores)
        expected = {"mean": scores.mean(), "sum": scores.sum(), "none": scores}[reduction]
        _close(semsim(p, t, model=model, output=output, reduction=reduction), expected)


# --------------------------------------------------------------------------- class test under DDP (2 processes)
# rank 0 gets batches 0, 2, 4 and rank 1 gets 1, 3 (uneven); then one more each (5, 6) after a compute
_UNEVEN = {0: [0, 2, 4], 1: [1, 3]}
_MORE = {0: 5, 1: 6}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_cases(rank: int, model: SemSimModel) -> dict:
    """Everything one rank reports: batch values and computed results of every case, as lists."""
    data = _batches(7, seed=3)
    out: dict = {}
    for output, reduction in CASES:
        case = f"{output}-{reduction}"
        metric = SemSim(model, output=output, reduction=reduction)
        batch_values = [metric(*data[i]).tolist() for i in _UNEVEN[rank]]
        first = metric.compute().tolist()
        metric.update(*data[_MORE[rank]])  # compute() restored the local states: accumulation goes on
        out[("uneven", case)] = (batch_values, first, metric.compute().tolist())

        metric = SemSim(model, output=output, reduction=reduction, dist_sync_on_step=True)
        batch_values = [metric(*data[i]).tolist() for i in (rank, rank + 2)]  # each forward is a collective
        out[("sync_on_step", case)] = (batch_values, metric.compute().tolist())

        metric = SemSim(model, output=output, reduction=reduction)
        if rank == 0:  # rank 1 sees no batch at all
            metric.update(*data[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # rank 1: compute before update
            out[("idle_rank", case)] = metric.compute().tolist()

    collection = MetricCollection(
        {f"{o}-{r}": SemSim(model, output=o, reduction=r) for o, r in CASES}, compute_groups=True
    )
    for i in _UNEVEN[rank]:
        collection.update(*data[i])
    out[("collection", "groups")] = sorted(sorted(group) for group in collection.compute_groups.values())
    out[("collection", "values")] = {k: v.tolist() for k, v in collection.compute().items()}
    return out


def _ddp_worker(rank: int, world: int, port: int, queue: Any) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        queue.put((rank, _ddp_cases(rank, SemSimModel.from_pretrained(FIXTURES / "tiny_model").eval())))
        dist.barrier()  # both ranks are done with gloo before either tears it down
    except Exception as err:  # report instead of leaving the parent waiting
        queue.put((rank, f"rank {rank} failed: {err!r}"))
        raise
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results() -> dict[int, dict]:
    """One run of 2 gloo processes for every DDP case (starting processes is the slow part)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    for result in results.values():
        assert not isinstance(result, str), result
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(results) == [0, 1]  # one result from each rank: the tests below loop over these
    return results


def _gathered(model: SemSimModel, output: str, reduction: str, per_rank: dict[int, list[int]]) -> Tensor:
    """The functional on the batches of all ranks, in the order torchmetrics gathers them (rank 0's first)."""
    data = _batches(7, seed=3)
    return _reference([data[i] for r in sorted(per_rank) for i in per_rank[r]], model, output, reduction)


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_ddp_uneven_batches_sync_to_the_functional_on_all_data(ddp_results, model, output, reduction):
    data = _batches(7, seed=3)
    case = f"{output}-{reduction}"
    expected = _gathered(model, output, reduction, _UNEVEN)
    more = _gathered(model, output, reduction, {r: [*_UNEVEN[r], _MORE[r]] for r in _UNEVEN})
    for rank, result in ddp_results.items():
        batch_values, first, second = result[("uneven", case)]
        # forward gives the local batch's value
        for i, value in zip(_UNEVEN[rank], batch_values, strict=True):
            _close(torch.tensor(value), _reference([data[i]], model, output, reduction))
        _close(torch.tensor(first), expected)  # every rank gets the synced result
        _close(torch.tensor(second), more)


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_ddp_dist_sync_on_step(ddp_results, model, output, reduction):
    data = _batches(7, seed=3)
    case = f"{output}-{reduction}"
    for result in ddp_results.values():
        batch_values, final = result[("sync_on_step", case)]
        assert len(batch_values) == 2  # one forward per step, two steps on each rank
        for step, value in enumerate(batch_values):  # the step's value covers both ranks' batches
            _close(
                torch.tensor(value),
                _reference([data[2 * step], data[2 * step + 1]], model, output, reduction),
            )
        _close(torch.tensor(final), _gathered(model, output, reduction, {0: [0, 2], 1: [1, 3]}))


@pytest.mark.ddp
@pytest.mark.slow
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_ddp_a_rank_without_batches(ddp_results, model, output, reduction):
    expected = _gathered(model, output, reduction, {0: [0], 1: []})
    for result in ddp_results.values():
        _close(torch.tensor(result[("idle_rank", f"{output}-{reduction}")]), expected)


@pytest.mark.ddp
@pytest.mark.slow
def test_ddp_metric_collection_with_compute_groups(ddp_results, model):
    for result in ddp_results.values():
        # the mean and the sum of one output keep the same states: one group each; "none" keeps its own
        assert result[("collection", "groups")] == [
            ["distance-mean", "distance-sum"],
            ["distance-none"],
            ["probability-mean", "probability-sum"],
            ["probability-none"],
        ]
        values = result[("collection", "values")]
        for output, reduction in CASES:
            _close(
                torch.tensor(values[f"{output}-{reduction}"]), _gathered(model, output, reduction, _UNEVEN)
            )


# --------------------------------------------------------------------------- state: pickle, state_dict, clone
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_pickle_clone_and_state_dict_keep_the_state(model, output, reduction):
    data = _batches(3, seed=4)
    metric = SemSim(model, output=output, reduction=reduction)
    metric.update(*data[0])
    copies = [pickle.loads(pickle.dumps(metric)), metric.clone()]
    assert metric.state_dict() == {}  # states are not persistent by default, and the network never is
    metric.persistent(True)
    state = metric.state_dict()
    assert set(state) == ({"scores"} if reduction == "none" else {"sum_scores", "total"})
    metric.persistent(False)
    assert metric.state_dict() == {}
    loaded = SemSim(model, output=output, reduction=reduction)
    loaded.persistent(True)
    loading = loaded.load_state_dict(copy.deepcopy(state), strict=True)
    assert (loading.missing_keys, loading.unexpected_keys) == ([], [])
    copies.append(loaded)
    metric.update(*data[1])
    for other in copies:
        assert other.net is not metric.net
        other.update(*data[1])  # each goes on from the state it was given, independently of the others
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "The ``compute`` method", UserWarning
        )  # torchmetrics: no update count
        values = [other.compute() for other in copies]
    expected = _reference(data[:2], model, output, reduction)
    for value in [metric.compute(), *values]:
        _close(value, expected)
    copies[1].update(*data[2])  # the clone's states are its own
    _close(metric.compute(), expected)


# --------------------------------------------------------------------------- precision
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_float64_matches_the_float64_functional(model, output, reduction):
    data = _batches(2, seed=5)
    model64 = copy.deepcopy(model).double()
    casts = {
        "double": lambda m: m.double(),
        "set_dtype": lambda m: m.set_dtype(torch.float64),
        "to": lambda m: m.to(torch.float64),
    }
    for name, cast in casts.items():
        metric = cast(SemSim(model, output=output, reduction=reduction))
        for p, t in data:
            metric.update(p.double(), t.double())
        value = metric.compute()
        assert value.dtype == torch.float64, name
        expected = semsim(
            *(x.double() for x in _cat(data)), model=model64, output=output, reduction=reduction
        )
        torch.testing.assert_close(value, expected.detach(), rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_half_precision_on_cpu(model, output, reduction, dtype):
    ((p, t),) = _batches(1, seed=6)
    low_p, low_t = p.to(dtype), t.to(dtype)
    exact = _reference([(low_p.float(), low_t.float())], model, output, reduction)
    # low-precision images (run_precision_test_cpu): scored by the float32 network as their float32 values
    _close(SemSim(model, output=output, reduction=reduction)(low_p, low_t), exact)
    _close(semsim(low_p, low_t, model=model, output=output, reduction=reduction), exact)
    # .half() / .bfloat16() change nothing, as on every torchmetrics metric (SemSim's docstring, "Precision")
    metric = SemSim(model, output=output, reduction=reduction)
    metric = metric.half() if dtype == torch.float16 else metric.bfloat16()
    assert metric.net.backbone.conv1.weight.dtype == torch.float32
    _close(metric(low_p, low_t), exact)
    # set_dtype does cast: the network and the floating states compute in that dtype
    metric = SemSim(model, output=output, reduction=reduction).set_dtype(dtype)
    assert metric.net.backbone.conv1.weight.dtype == dtype
    value = metric(p, t)
    assert value.dtype == dtype
    torch.testing.assert_close(value.float(), exact, rtol=0.05, atol=0.02)


# --------------------------------------------------------------------------- differentiability
@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_is_differentiable_agrees_with_forward(model, output, reduction):
    metric = SemSim(model, output=output, reduction=reduction)
    assert metric.is_differentiable is True
    for p, t in _batches(2, seed=7):
        p = p.clone().requires_grad_(True)
        value = metric(p, t)
        assert value.requires_grad == metric.is_differentiable  # _assert_requires_grad
        value.sum().backward()
        assert p.grad is not None and bool(p.grad.isfinite().all()) and bool(p.grad.abs().sum() > 0)
        # the accumulated states keep no autograd graph (it would hold every batch's activations until reset)
        states = metric.scores if reduction == "none" else [metric.sum_scores, metric.total]
        assert not any(s.requires_grad for s in states)
    assert not metric.compute().requires_grad  # as update(): compute gives no gradients
    metric.update(*(x.clone().requires_grad_(True) for x in _batches(1, seed=8)[0]))
    assert not metric.compute().requires_grad


@pytest.mark.parametrize(("output", "reduction"), CASES)
def test_gradcheck_of_the_functional_in_float64(tiny_model_dir, output, reduction):
    model64 = SemSimModel.from_pretrained(tiny_model_dir).double().eval()
    g = torch.Generator().manual_seed(
        0
    )  # the inputs of test_torchmetrics_habits' gradcheck: away from ReLU kinks
    x = (torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    g = torch.Generator().manual_seed(1)
    y = torch.rand(1, 1, 8, 8, generator=g, dtype=torch.float64) * 0.8 + 0.1
    assert torch.autograd.gradcheck(
        lambda a: semsim(a, y, model=model64, output=output, reduction=reduction, check_domain=False),
        (x,),
        eps=1e-6,
        atol=1e-6,
    )


# --------------------------------------------------------------------------- MetricCollection
@pytest.mark.parametrize("compute_groups", [True, False])
def test_metric_collection_membership_and_compute_groups(model, compute_groups):
    data = _batches(5, seed=9)
    members = {f"{o}-{r}": SemSim(model, output=o, reduction=r) for o, r in CASES}
    collection = MetricCollection(
        {**members, "psnr": PeakSignalNoiseRatio(data_range=1.0)},
        compute_groups=compute_groups,
        prefix="val/",
    )
    collection.update(*data[0])  # the first update forms the compute groups (forward alone does not)
    batch_values = [collection(p, t) for p, t in data[1:4]]  # each member's own forward
    collection.update(
        *data[4]
    )  # grouped: only the first member of a group updates, the others share its states
    if compute_groups:  # the mean and the sum of one output keep the same states; "none" and PSNR stand alone
        assert sorted(sorted(g) for g in collection.compute_groups.values()) == [
            ["distance-mean", "distance-sum"],
            ["distance-none"],
            ["probability-mean", "probability-sum"],
            ["probability-none"],
            ["psnr"],
        ]
    else:
        assert collection.compute_groups == {}
    result = collection.compute()
    assert set(result) == {f"val/{name}" for name in [*members, "psnr"]}
    for output, reduction in CASES:
        name = f"{output}-{reduction}"
        _close(result[f"val/{name}"], _reference(data, model, output, reduction))
        for (p, t), values in zip(data[1:4], batch_values):
            _close(values[f"val/{name}"], _reference([(p, t)], model, output, reduction))
    collection.reset()
    collection.update(*data[0])
    _close(collection.compute()["val/distance-sum"], _reference(data[:1], model, "distance", "sum"))
