"""Attack batching (issue 23): the layer-wise per-sample engine, its fallback, memory chunking, generation rate.

What each test would catch is in its docstring.
"""

from __future__ import annotations

import gc
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from semsim_metric.generate.attacks import (
    AttackConfig,
    _memory,
    attack_preset,
    engine,
    plan_batches,
    run_attack,
    run_attack_one_at_a_time,
)
from semsim_metric.generate.attacks._per_sample import LayerwiseGradients, UnsupportedVictimError
from semsim_metric.generate.victims import VictimSpec, build_victim

ARCHS = [("lenet_sigmoid", 0), ("conv_relu", 4), ("resnet20", 1)]
DOMAINS = [(1, 12), (3, 12)]  # greyscale and colour (small sides keep the tests fast)


def _victim(arch: str, width: int, channels: int, size: int) -> nn.Module:
    """A victim whose BatchNorm running statistics are not the defaults (so eval-mode BatchNorm matters)."""
    torch.manual_seed(0)
    victim = build_victim(VictimSpec(arch, width=width), channels, 10, size).eval()
    gen = torch.Generator().manual_seed(1)
    for m in victim.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
    return victim


def _images(n: int, channels: int, size: int, seed: int = 2) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed))


def _engine(victim: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str = "inverting_gradients") -> str:
    cfg = AttackConfig(name, 2)
    objective = engine._make_objective(victim, cfg, engine.ATTACKS[name], x[:2], F.one_hot(y[:2], 10).float())
    objective.close()
    return objective.engine


# --------------------------------------------------------------------------- per-sample gradients
@pytest.mark.parametrize("arch, width", ARCHS)
@pytest.mark.parametrize("channels, size", DOMAINS)
def test_layerwise_gradients_equal_plain_autograd_image_by_image(arch, width, channels, size):
    """Per-sample gradients and their derivative w.r.t. each image, against plain autograd on one image at a time.

    Bugs caught: a wrong per-sample weight gradient of a layer kind (conv stride/padding, 1x1 shortcut,
    Linear, BatchNorm weight/bias with running statistics), samples mixed in the batch, a broken second
    derivative (the attack's update direction).
    """
    victim = _victim(arch, width, channels, size)
    lw = LayerwiseGradients(victim)
    x = _images(3, channels, size)
    y_soft = F.softmax(torch.randn(3, 10, generator=torch.Generator().manual_seed(3)), dim=-1)
    params = dict(victim.named_parameters())
    direction = {
        k: torch.randn((3, *p.shape), generator=torch.Generator().manual_seed(4)) for k, p in params.items()
    }
    xb = x.clone().requires_grad_(True)
    grads, bn_inputs = lw.gradients(xb, y_soft, create_graph=True)
    (batched_dx,) = torch.autograd.grad(sum((grads[k] * direction[k]).sum() for k in grads), [xb])
    assert set(grads) == set(params) and all(grads[k].shape == (3, *params[k].shape) for k in params)
    assert len(bn_inputs) == sum(isinstance(m, nn.BatchNorm2d) for m in victim.modules())
    for i in range(3):
        xi = x[i : i + 1].clone().requires_grad_(True)
        loss = -(y_soft[i : i + 1] * F.log_softmax(victim(xi), dim=-1)).sum()
        reference = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        for (name, _), ref in zip(params.items(), reference):
            torch.testing.assert_close(
                grads[name][i], ref, atol=2e-6, rtol=2e-4, msg=f"{arch} {name} image {i}"
            )
        (dx,) = torch.autograd.grad(sum((g * direction[k][i]).sum() for k, g in zip(params, reference)), [xi])
        torch.testing.assert_close(batched_dx[i], dx[0], atol=2e-6, rtol=2e-4, msg=f"{arch} d/dx image {i}")


@pytest.mark.parametrize("arch, width", ARCHS)
@pytest.mark.parametrize("channels, size", DOMAINS)
def test_batched_attacks_equal_one_at_a_time_for_every_architecture(arch, width, channels, size):
    """Every victim architecture, greyscale and colour, on the layer-wise engine: batched == one at a time.

    Bugs caught: attacks in a batch influencing each other, a victim silently falling back to vmap.
    """
    victim = _victim(arch, width, channels, size)
    x = _images(3, channels, size)
    y = torch.tensor([1, 5, 7])
    assert _engine(victim, x, y) == "layerwise"
    for name in ("inverting_gradients", "idlg", "gradinversion"):
        cfg = attack_preset(name, "quick", iterations=6)
        batched = run_attack(victim, x, y, cfg)
        single = run_attack_one_at_a_time(victim, x, y, cfg)
        torch.testing.assert_close(batched["reconstructions"], single["reconstructions"], atol=1e-4, rtol=0)
        torch.testing.assert_close(batched["final_loss"], single["final_loss"], atol=1e-6, rtol=1e-3)
        assert torch.equal(batched["labels"], single["labels"])


@pytest.mark.parametrize("name", ["inverting_gradients", "dlg", "gradinversion"])
def test_layerwise_engine_equals_the_vmap_engine(name, monkeypatch):
    """The new engine keeps the attacks' results: the same seeds give the same reconstructions as the vmap
    engine (which all attacks used before), within float rounding.

    Bugs caught: a changed objective (TV, BatchNorm prior, soft-label softmax, distance) in the new engine.
    """
    victim = _victim("conv_relu", 4, 3, 12)
    x, y = _images(4, 3, 12), torch.tensor([0, 3, 6, 9])
    cfg = attack_preset(name, "quick", iterations=8)
    layerwise = run_attack(victim, x, y, cfg)

    def refuse(*args, **kwargs):
        raise UnsupportedVictimError("forced for the test")

    monkeypatch.setattr(engine, "LayerwiseGradients", refuse)
    assert _engine(victim, x, y, name) == "vmap"
    vmapped = run_attack(victim, x, y, cfg)
    torch.testing.assert_close(layerwise["reconstructions"], vmapped["reconstructions"], atol=1e-4, rtol=0)
    torch.testing.assert_close(layerwise["final_loss"], vmapped["final_loss"], atol=1e-6, rtol=1e-3)


# --------------------------------------------------------------------------- fallback and its safety net
def test_unsupported_victims_fall_back_to_vmap_and_still_batch():
    """A GroupNorm victim cannot be handled layer by layer: refused, and the attack runs on vmap.

    Bugs caught: an unsupported layer silently treated as parameter-free (its gradient missing).
    """
    torch.manual_seed(0)
    victim = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.GroupNorm(2, 4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 10)
    ).eval()
    with pytest.raises(UnsupportedVictimError, match="GroupNorm"):
        LayerwiseGradients(victim)
    x, y = _images(3, 1, 8), torch.tensor([1, 2, 3])
    assert _engine(victim, x, y) == "vmap"
    cfg = attack_preset("idlg", "quick", iterations=5)
    torch.testing.assert_close(
        run_attack(victim, x, y, cfg)["reconstructions"],
        run_attack_one_at_a_time(victim, x, y, cfg)["reconstructions"],
        atol=1e-5,
        rtol=0,
    )


def test_an_in_place_activation_is_caught_and_the_attack_falls_back():
    """ReLU(inplace=True) overwrites the BatchNorm output whose gradient the layer-wise engine needs.

    Bugs caught: per-sample gradients formed from an overwritten activation (silently wrong attacks).
    """
    torch.manual_seed(0)
    victim = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Flatten(),
        nn.Linear(4 * 8 * 8, 10),
    ).eval()
    x, y = _images(2, 1, 8), torch.tensor([1, 2])
    with pytest.raises(RuntimeError, match="modified in place"):
        LayerwiseGradients(victim).gradients(x, F.one_hot(y, 10).float(), create_graph=False)
    assert _engine(victim, x, y) == "vmap"


def test_the_probe_refuses_layerwise_gradients_that_disagree_with_vmap(monkeypatch):
    """The probe compares both engines on two originals before trusting the fast one.

    Bugs caught: a wrong layer-wise gradient used for a whole generation run.
    """
    victim = _victim("conv_relu", 4, 1, 12)
    x, y = _images(3, 1, 12), torch.tensor([1, 5, 7])
    cfg = attack_preset("idlg", "quick", iterations=4)
    good = run_attack(victim, x, y, cfg)
    original = LayerwiseGradients._layer_gradients

    def doubled(self, call, delta, batch):
        return {k: 2 * v for k, v in original(self, call, delta, batch).items()}

    monkeypatch.setattr(LayerwiseGradients, "_layer_gradients", doubled)
    assert _engine(victim, x, y) == "vmap"
    torch.testing.assert_close(
        run_attack(victim, x, y, cfg)["reconstructions"], good["reconstructions"], atol=1e-4, rtol=0
    )


# --------------------------------------------------------------------------- memory
def test_a_tiny_memory_budget_gives_smaller_chunks_and_the_same_results(caplog, monkeypatch):
    """The batch is chosen from the memory budget; chunks do not change the result.

    Bugs caught: the budget ignored (one batch whatever the memory), chunks that reuse or drop seeds,
    labels or optimiser state of another chunk, the environment variable ignored.
    """
    victim = _victim("resnet20", 1, 3, 12)
    x, y = _images(5, 3, 12), torch.tensor([0, 2, 4, 6, 8])
    per = plan_batches(victim, (3, 12, 12), 5).bytes_per_attack
    big = plan_batches(victim, (3, 12, 12), 5, max_memory=1 << 40)
    small = plan_batches(victim, (3, 12, 12), 5, max_memory=2 * per + 1)
    assert big.chunk == 5 and small.chunk == 2 and small.budget == 2 * per + 1
    assert plan_batches(victim, (3, 12, 12), 5, max_memory=1).chunk == 1  # tried, not refused
    for name in ("inverting_gradients", "dlg"):
        cfg = attack_preset(name, "quick", iterations=5)
        whole = run_attack(victim, x, y, cfg, max_memory=1 << 40)
        with caplog.at_level(logging.DEBUG, logger="semsim_metric"):
            caplog.clear()
            chunked = run_attack(victim, x, y, cfg, max_memory=2 * per + 1)
        assert "in chunks of 2" in caplog.text
        for key in ("reconstructions", "final_loss"):
            torch.testing.assert_close(chunked[key], whole[key], atol=1e-5, rtol=1e-5)
        assert torch.equal(chunked["labels"], whole["labels"])
    monkeypatch.setenv(_memory.MEMORY_ENV, str(per + 1))
    assert plan_batches(victim, (3, 12, 12), 5).chunk == 1
    monkeypatch.setenv(_memory.MEMORY_ENV, "lots")
    with pytest.raises(ValueError, match="memory 'lots'"):
        plan_batches(victim, (3, 12, 12), 5)


def test_the_budget_is_the_least_of_cap_and_half_the_available_memory(tmp_path, monkeypatch):
    """Available memory: MemAvailable, the cgroup limit, whichever is less; half of it at most.

    Bugs caught: a cgroup limit ignored (a container killed for memory), ``max`` read as a number, the
    cap ignored on a large machine.
    """
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       8000000 kB\nMemAvailable:   4000000 kB\n")
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("max\n")
    (cgroup / "memory.current").write_text("100\n")
    monkeypatch.setattr(_memory, "MEMINFO", meminfo)
    monkeypatch.setattr(_memory, "CGROUP_ROOT", cgroup)
    monkeypatch.delenv(_memory.MEMORY_ENV, raising=False)
    cpu = torch.device("cpu")
    if _memory._rlimit_room() is None:
        assert _memory.available_memory(cpu) == 4000000 * 1024
    assert _memory.chunk_size(1000, 1 << 20, cpu) == (1000, 1 << 30)  # the 1 GiB default cap
    (cgroup / "memory.max").write_text(str(300 * 2**20 + 100))  # 300 MiB left under the container's limit
    assert _memory.available_memory(cpu) == 300 * 2**20
    assert _memory.chunk_size(1000, 1 << 20, cpu) == (150, 150 * 2**20)  # half of it: 150 attacks of 1 MiB
    assert _memory.chunk_size(1000, 1 << 20, cpu, max_memory=10 * 2**20)[0] == 10
    with pytest.raises(ValueError):
        _memory.chunk_size(10, 1, cpu, max_memory=0)


@pytest.mark.parametrize(
    "text, expected",
    [("1024", 1024), ("512M", 512 * 2**20), ("1.5G", 3 * 2**29), ("800k", 800 * 1024), ("2GiB", 2 * 2**30)],
)
def test_memory_sizes_are_parsed(text, expected):
    """Bugs caught: suffixes read as powers of 1000, or case-sensitively."""
    assert _memory.parse_memory(text) == expected


def test_the_estimate_grows_with_the_victim():
    """Bugs caught: an estimate that ignores activations or parameters (wide victims overflow the budget)."""
    small = _memory.bytes_per_attack(
        build_victim(VictimSpec("resnet20"), 3, 10, 32), (3, 32, 32), "layerwise"
    )
    wide = _memory.bytes_per_attack(
        build_victim(VictimSpec("resnet20", width=4), 3, 10, 32), (3, 32, 32), "layerwise"
    )
    larger_images = _memory.bytes_per_attack(
        build_victim(VictimSpec("resnet20"), 3, 10, 64), (3, 64, 64), "layerwise"
    )
    assert wide > 4 * small and larger_images > 3 * small
    assert (
        _memory.bytes_per_attack(build_victim(VictimSpec("resnet20"), 3, 10, 32), (3, 32, 32), "vmap") > small
    )


def _live_tensors() -> tuple[int, int]:
    gc.collect()
    tensors = [o for o in gc.get_objects() if issubclass(type(o), torch.Tensor)]
    return len(tensors), sum(t.numel() * t.element_size() for t in tensors)


@pytest.mark.parametrize("force_vmap", [False, True])
def test_memory_is_flat_in_the_iterations(force_vmap, monkeypatch):
    """Live tensors after each iteration stay the same in number and size, on both engines.

    Bugs caught: the BatchNorm inputs of every forward pass kept by a hook (what made one shard of 100
    colour images hold 11 GB), a graph or a step's gradient kept across iterations.
    """
    victim = _victim("conv_relu", 4, 3, 12)
    x, y = _images(3, 3, 12), torch.tensor([1, 2, 3])
    if force_vmap:

        def refuse(*args, **kwargs):
            raise UnsupportedVictimError("forced for the test")

        monkeypatch.setattr(engine, "LayerwiseGradients", refuse)
    seen: list[tuple[int, int]] = []
    real_track = engine.track

    def counting(iterable, *args, **kwargs):
        for item in real_track(iterable, *args, **kwargs):
            yield item
            seen.append(_live_tensors())

    monkeypatch.setattr(engine, "track", counting)
    for name in ("inverting_gradients", "gradinversion"):
        seen.clear()
        run_attack(victim, x, y, attack_preset(name, "quick", iterations=8))
        assert len(seen) == 8
        assert len(set(seen[2:])) == 1, (name, seen)


# --------------------------------------------------------------------------- generation
def _colour_folder(root, classes=("cat", "dog"), per_class=3, size=12):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, cls in enumerate(classes):
            (root / split / cls).mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8) // (c + 1)
                Image.fromarray(pixels).save(root / split / cls / f"{split}{i}.png")
    return root


def test_generation_reports_reconstructions_per_minute_and_chunks_do_not_change_shards(tmp_path, caplog):
    """Bugs caught: no rate in the generation log, ``max_memory`` not reaching the attacks, a chunked shard
    that differs from one batch."""
    from semsim_metric.generate.pipeline import GenerationPlan, generate

    source = _colour_folder(tmp_path / "source")
    plan = GenerationPlan(
        source=str(source),
        num_originals=4,
        victims=[VictimSpec("conv_relu", 0, width=4)],
        attacks=[AttackConfig("inverting_gradients", 4)],
        shard_size=4,
    )
    with caplog.at_level(logging.DEBUG, logger="semsim_metric"):
        generate(plan, tmp_path / "one", progress=True, merge=False, max_memory=1 << 40)
        assert "in chunks of 4" in caplog.text
        caplog.clear()
        generate(plan, tmp_path / "chunked", progress=True, merge=False, max_memory=1)
        assert "in chunks of 1" in caplog.text
    assert "shard 1 of 1: 4 reconstructions in" in caplog.text
    assert "generated 4 reconstructions in" in caplog.text and "reconstructions per minute" in caplog.text
    one = sorted((tmp_path / "one" / "shards").glob("*.parquet"))
    chunked = sorted((tmp_path / "chunked" / "shards").glob("*.parquet"))
    assert len(one) == 1 and [p.name for p in one] == [p.name for p in chunked]
    assert one[0].read_bytes() == chunked[0].read_bytes()
