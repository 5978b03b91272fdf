"""Training-step time of the paper recipe (width 64) vs the CPU recipes (width 32, with and without the global loss).

    python benchmarks/bench_training.py [--steps 5] [--device cpu|cuda]

Prints seconds per step of 64 triplets for both widths, their ratio, and the time a full run of each
recipe would take on the default dataset (1,491 triplets per epoch at the time of writing: read from
the dataset).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.training import RECIPES

ROOT = Path(__file__).resolve().parents[1]


def step_time(width: int, steps: int, device: torch.device, bf16: bool, global_loss_weight: float = 0.0) -> float:
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=width, global_loss_weight=global_loss_weight)).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = [torch.randn(64, 3, 32, 32, device=device) for _ in range(3)]
    share = torch.rand(64, device=device)
    times = []
    for i in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(*x, positive_share=share, negative_share=1 - share).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    bf16 = device.type == "cuda"
    triplets = 0
    try:
        from semsim_metric.data import TripletDataset
        from semsim_metric.data.loading import load_folder_or_hub

        triplets = len(TripletDataset(load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"), split="train")))
    except Exception as err:  # the dataset is optional for the step timing
        print(f"(default dataset unavailable: {err})")
    print(f"device={device} bf16={bf16} threads={torch.get_num_threads()} triplets/epoch={triplets}")
    results = {}
    for name in ("paper", "cpu", "judged"):
        r = RECIPES[name]
        s = step_time(r.base_width, args.steps, device, bf16, r.global_loss_weight)
        results[name] = s
        steps = math.ceil(triplets / r.batch_size) * r.epochs if triplets else 0
        print(f"  {name:<6} width {r.base_width:<3} {s:.3f} s/step  -> full run ({r.epochs} epochs): "
              f"{steps * s / 60:.1f} min")
    print(f"  paper/cpu step-time ratio: {results['paper'] / results['cpu']:.2f}; "
          f"judged/cpu: {results['judged'] / results['cpu']:.2f}")


if __name__ == "__main__":
    main()
