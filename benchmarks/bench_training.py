"""Training time of every recipe, measured side by side: paper (width 64), cpu and judged (width 32) and
the two-stage semantic recipe (width 16).

    python benchmarks/bench_training.py [--steps 5] [--device cpu|cuda]

Prints the median seconds per optimiser step of each stage (triplet steps of 64 triplets; semantic
stage 1: 128 labelled images; stage 2: 128 reconstructions + their originals), their ratios, and the
time a full run of each recipe would take on the default dataset (triplets per epoch and rows read from
the dataset; 58,000 Fashion-MNIST training images for stage 1).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.training import RECIPES
from semsim_metric.training.stages.triplets import TripletObjective

ROOT = Path(__file__).resolve().parents[1]


def _median_step_seconds(
    step: Callable[[], torch.Tensor],
    steps: int,
    device: torch.device,
    bf16: bool,
    optimizer: torch.optim.Optimizer,
) -> float:
    """Median wall time of ``steps`` optimiser steps (after one warm-up step)."""
    times = []
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = step()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def step_time(
    width: int, steps: int, device: torch.device, bf16: bool, global_loss_weight: float = 0.0
) -> float:
    """One triplet step (64 triplets)."""
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=width)).to(device).train()
    objective = TripletObjective(model, global_loss_weight=global_loss_weight)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = [torch.randn(64, 3, 32, 32, device=device) for _ in range(3)]
    share = torch.rand(64, device=device)
    return _median_step_seconds(
        lambda: objective(*x, positive_share=share, negative_share=1 - share)["loss"],
        steps,
        device,
        bf16,
        opt,
    )


def classifier_step_time(
    width: int, batch: int, steps: int, device: torch.device, bf16: bool, embedding: str = "spatial"
) -> float:
    """One step of stage 1 (``batch`` images) or stage 2 (``batch`` reconstructions + ``batch`` originals)."""
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=width, embedding=embedding)).to(device).train()
    head = torch.nn.Linear(model.config.feature_dim, 11).to(device)
    opt = torch.optim.SGD(
        list(model.parameters()) + list(head.parameters()), lr=0.01, momentum=0.9, nesterov=True
    )
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 11, (batch,), device=device)
    return _median_step_seconds(
        lambda: torch.nn.functional.cross_entropy(head(model.backbone.pooled(x)), y), steps, device, bf16, opt
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    triplets = rows = 0
    try:
        from semsim_metric.data import TripletDataset
        from semsim_metric.data.loading import load_folder_or_hub

        train_split = load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"), split="train")
        triplets, rows = len(TripletDataset(train_split)), len(train_split)
    except Exception as err:  # the dataset is optional for the step timing
        print(f"(default dataset unavailable: {err})")
    print(f"device={device} bf16={bf16} threads={torch.get_num_threads()} triplets/epoch={triplets}")
    results = {}
    for name in ("paper", "cpu", "judged"):
        r = RECIPES[name]
        s = step_time(r.base_width, args.steps, device, bf16, r.global_loss_weight)
        results[name] = s
        steps = math.ceil(triplets / r.batch_size) * r.epochs if triplets else 0
        print(
            f"  {name:<6} width {r.base_width:<3} {s:.3f} s/step  -> full run ({r.epochs} epochs): "
            f"{steps * s / 60:.1f} min"
        )
    r = RECIPES["semantic"]
    s1 = classifier_step_time(r.base_width, 128, args.steps, device, bf16)
    s2 = classifier_step_time(r.base_width, 256, args.steps, device, bf16)
    steps1 = math.floor(r.pretrain_epochs * 58000 / 128)
    steps2 = r.vote_epochs * (rows // 128)
    total = steps1 * s1 + steps2 * s2
    results["semantic"] = total
    print(
        f"  semantic width {r.base_width:<3} stage 1 {s1:.3f} s/step x {steps1} + stage 2 {s2:.3f} s/step x {steps2} "
        f"-> full run: {total / 60:.1f} min (stage 1 is cached and shared by held-out runs)"
    )
    full = {
        n: math.ceil(triplets / RECIPES[n].batch_size) * RECIPES[n].epochs * results[n]
        for n in ("paper", "cpu")
    }
    print(
        f"  paper/cpu step-time ratio: {results['paper'] / results['cpu']:.2f}; "
        f"judged/cpu: {results['judged'] / results['cpu']:.2f}"
    )
    if triplets:
        print(
            f"  full-run ratios: paper/semantic {full['paper'] / total:.1f}, cpu/semantic {full['cpu'] / total:.2f}"
        )


if __name__ == "__main__":
    main()
