"""Reconstructions per minute: batched (torch.func vmap) vs one at a time, same victim and iterations.

    python benchmarks/bench_attacks.py [--victim lenet_sigmoid] [--batch 32] [--iterations 50] [--device cpu]

Target (issue 4): at least 10x for LeNet-class victims on CPU.
"""

from __future__ import annotations

import argparse
import time

import torch

from semsim_metric.generate.attacks import AttackConfig, run_attack, run_attack_one_at_a_time
from semsim_metric.generate.victims import VictimSpec, build_victim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--victim", default="lenet_sigmoid")
    parser.add_argument("--attack", default="inverting_gradients")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    victim = build_victim(VictimSpec(args.victim), 1, 10, 28).eval()
    x = torch.rand(args.batch, 1, 28, 28)
    y = torch.arange(args.batch) % 10
    cfg = AttackConfig(args.attack, args.iterations)
    run_attack(victim, x[:2], y[:2], AttackConfig(args.attack, 2), device=args.device)  # warm-up
    t = time.perf_counter()
    run_attack(victim, x, y, cfg, device=args.device)
    batched = time.perf_counter() - t
    n_single = max(2, args.batch // 8)  # time a subset one at a time, per-reconstruction cost is constant
    t = time.perf_counter()
    run_attack_one_at_a_time(victim, x[:n_single], y[:n_single], cfg, device=args.device)
    single = (time.perf_counter() - t) / n_single * args.batch
    print(f"victim={args.victim} attack={args.attack} iterations={args.iterations} batch={args.batch} "
          f"device={args.device} threads={torch.get_num_threads()}")
    print(f"  batched:       {args.batch / batched * 60:8.1f} reconstructions/min")
    print(f"  one at a time: {args.batch / single * 60:8.1f} reconstructions/min")
    print(f"  speed-up: {single / batched:.1f}x (target >= 10x for LeNet-class victims)")


if __name__ == "__main__":
    main()
