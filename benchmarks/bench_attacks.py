"""Attack batching: speed-up over one at a time and peak resident memory, every victim architecture.

    python benchmarks/bench_attacks.py [--attack inverting_gradients] [--batch 32] [--single 2]
        [--iterations 10] [--shard 100] [--shard-iterations 2,8] [--archs lenet_sigmoid,conv_relu,resnet20]
        [--device cpu] [--no-shard]

Part 1 (speed): for each victim architecture (LeNet, ReLU ConvNet, ResNet-20) in greyscale 28x28 and
colour 32x32, ``--batch`` attacks run batched (``run_attack``, batch chosen from the memory budget) and
``--single`` of them one at a time (``run_attack_one_at_a_time``; the cost per reconstruction is constant),
same victim, seeds and iterations, alternating ``--repeats`` times (the fastest of each counts). Prints
reconstructions per minute of both, their ratio (target of issue 23: >= 10x for every architecture), the
same ratio for one plain second-order autograd step (what batching alone gains on this hardware) and
the peak resident memory of the process that ran them.

Part 2 (memory of a generation shard): ``generate()`` of one shard of ``--shard`` colour 32x32 originals
(the emoji-scenes source; random colour images through ``run_attack`` when it is missing) per
architecture, at two iteration counts (``--shard-iterations``): its peak resident memory (target: at most
2 GB, flat in the iterations) and reconstructions per minute (as the generation logs them, and over the
whole call).

Every configuration runs in a fresh Python process; its peak resident memory is that process's
``ru_maxrss`` (``os.wait4``), imports included (the first row says what the imports alone take). Run with
``OMP_NUM_THREADS=1`` on a shared machine: the ratios measured side by side are what count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ARCHS = ("lenet_sigmoid", "conv_relu", "resnet20")
DOMAINS = {"grey 28": (1, 28), "colour 32": (3, 32)}


def _run_worker(args: list[str]) -> dict[str, Any]:
    """Run this script as a worker process; return its JSON result with its peak RSS in MB.

    Raises:
        RuntimeError: the worker failed (its stderr is in the message).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--worker", *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {args} failed:\n{err.read()[-3000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # kilobytes on Linux
    return result


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["imports", "speed", "shard"])
    parser.add_argument("--arch", default="lenet_sigmoid")
    parser.add_argument("--channels", type=int, default=1)
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--attack", default="inverting_gradients")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--single", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    a = parser.parse_args(argv)
    import torch

    from semsim_metric.generate.attacks import AttackConfig, run_attack, run_attack_one_at_a_time
    from semsim_metric.generate.victims import VictimSpec, build_victim

    result: dict[str, Any] = {"threads": torch.get_num_threads()}
    if a.kind == "speed":
        victim = build_victim(VictimSpec(a.arch), a.channels, 10, a.size).eval()
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(a.batch, a.channels, a.size, a.size, generator=gen)
        y = torch.arange(a.batch) % 10
        cfg = AttackConfig(a.attack, a.iterations)
        run_attack(victim, x[:2], y[:2], AttackConfig(a.attack, 2), device=a.device)  # warm-up
        batched_s, single_s = [], []
        for _ in range(
            a.repeats
        ):  # alternating, the fastest of each: robust to other work on a shared machine
            t = time.perf_counter()
            batched = run_attack(victim, x, y, cfg, device=a.device)
            batched_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            single = run_attack_one_at_a_time(victim, x[: a.single], y[: a.single], cfg, device=a.device)
            single_s.append((time.perf_counter() - t) / a.single * a.batch)
        result["batched_s"], result["single_s"] = min(batched_s), min(single_s)
        result["plain_ratio"] = _plain_ratio(victim, x, y, a.repeats)
        result["max_abs_diff"] = float(
            (batched["reconstructions"][: a.single] - single["reconstructions"]).abs().max()
        )
        try:
            from semsim_metric.generate.attacks import plan_batches

            result["chunk"] = plan_batches(
                victim, (a.channels, a.size, a.size), a.batch, device=a.device
            ).chunk
        except ImportError:  # an engine without memory planning (measuring an older commit)
            result["chunk"] = a.batch
    elif a.kind == "shard":
        result.update(_shard(a.arch, a.attack, a.batch, a.iterations, a.device))
    print(json.dumps(result))


def _plain_ratio(victim: Any, x: Any, y: Any, repeats: int) -> float:
    """Per image, how much cheaper one plain second-order step is on the whole batch than on one image.

    The step is the least every attack iteration computes: the victim's parameter gradient (kept
    differentiable) and a derivative of it w.r.t. the images, with plain autograd on the summed loss (no
    per-sample gradients at all). Its batch-vs-one ratio is what batching alone gains on this hardware.
    """
    import torch
    import torch.nn.functional as F

    params = list(victim.parameters())

    def per_image(images: Any, labels: Any) -> float:
        images = images.clone().requires_grad_(True)
        best = float("inf")
        for _ in range(repeats + 1):  # the first is a warm-up
            t = time.perf_counter()
            for _ in range(3):
                g = torch.autograd.grad(
                    F.cross_entropy(victim(images), labels, reduction="sum"), params, create_graph=True
                )
                torch.autograd.grad(sum(t.square().sum() for t in g), [images])
            best = min(best, (time.perf_counter() - t) / 3 / len(images))
        return best

    return per_image(x[:1], y[:1]) / per_image(x, y)


def _shard(arch: str, attack: str, n: int, iterations: int, device: str) -> dict[str, Any]:
    """One generation shard of ``n`` colour 32x32 originals (emoji-scenes; random images without it)."""
    from semsim_metric.generate.attacks import AttackConfig, run_attack
    from semsim_metric.generate.victims import VictimSpec, build_victim

    try:
        from semsim_metric.data.sources import emoji_scenes_folder

        emoji_scenes_folder()
    except (ImportError, FileNotFoundError):
        import torch

        victim = build_victim(VictimSpec(arch), 3, 40, 32).eval()
        x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
        t = time.perf_counter()
        run_attack(victim, x, torch.arange(n) % 40, AttackConfig(attack, iterations), device=device)
        seconds = time.perf_counter() - t
        return {"seconds": seconds, "source": "random", "reported_per_minute": n / seconds * 60}
    from semsim_metric.generate.pipeline import GenerationPlan, generate

    plan = GenerationPlan(
        source="emoji-scenes",
        num_originals=n,
        victims=[VictimSpec(arch, 0)],
        attacks=[AttackConfig(attack, iterations)],
        shard_size=n,
    )
    import logging
    import re

    lines: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("semsim_metric")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        generate(plan, Path(tmp) / "out", device=device, progress=True, merge=False)
        seconds = time.perf_counter() - t
    reported = [
        m
        for m in (
            re.search(r"shard 1 of 1: .*\(([0-9,]+) reconstructions per minute", line) for line in lines
        )
        if m
    ]
    rate = float(reported[0].group(1).replace(",", "")) if reported else None  # older commits report none
    return {"seconds": seconds, "source": "emoji-scenes", "reported_per_minute": rate}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--attack", default="inverting_gradients")
    parser.add_argument(
        "--batch", type=int, default=32, help="attacks run batched per configuration (default 32)"
    )
    parser.add_argument("--single", type=int, default=2, help="of them, run one at a time (default 2)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument(
        "--shard", type=int, default=100, help="originals of the generation shard (default 100)"
    )
    parser.add_argument(
        "--shard-iterations", default="2,8", help="two iteration counts for the shard (default 2,8)"
    )
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="timed runs of each path, alternating; the fastest counts (default 2)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-shard", action="store_true", help="skip part 2")
    args = parser.parse_args()
    archs = [s for s in args.archs.split(",") if s]
    imports = _run_worker(["imports"])
    print(
        f"attack={args.attack} device={args.device} threads={imports['threads']} "
        f"(peak RSS of a process that only imports the engine: {imports['peak_rss_mb']:.0f} MB)"
    )
    print(
        f"\nPart 1: {args.batch} attacks batched vs {args.single} one at a time, {args.iterations} iterations"
    )
    print(
        f"{'victim':15s} {'images':10s} {'batched/min':>12s} {'single/min':>11s} {'speed-up':>9s} "
        f"{'plain':>6s} {'chunk':>6s} {'peak RSS':>9s}"
    )
    for arch in archs:
        for domain, (channels, size) in DOMAINS.items():
            r = _run_worker(
                [
                    "speed",
                    "--arch",
                    arch,
                    "--channels",
                    str(channels),
                    "--size",
                    str(size),
                    "--attack",
                    args.attack,
                    "--batch",
                    str(args.batch),
                    "--single",
                    str(args.single),
                    "--iterations",
                    str(args.iterations),
                    "--repeats",
                    str(args.repeats),
                    "--device",
                    args.device,
                ]
            )
            print(
                f"{arch:15s} {domain:10s} {args.batch / r['batched_s'] * 60:12.1f} "
                f"{args.batch / r['single_s'] * 60:11.1f} {r['single_s'] / r['batched_s']:8.1f}x "
                f"{r['plain_ratio']:5.1f}x {r['chunk']:6d} {r['peak_rss_mb']:6.0f} MB"
            )
    print(
        "target: >= 10x for every architecture. plain: the same ratio for one plain second-order autograd step\n"
        "(summed loss, no per-sample gradients) at the batch vs one image - what batching alone gains on this hardware"
    )
    if args.no_shard:
        return
    counts = [int(s) for s in args.shard_iterations.split(",")]
    print(f"\nPart 2: one generation shard of {args.shard} colour 32x32 originals")
    print(f"{'victim':15s} {'iterations':>10s} {'peak RSS':>9s} {'attacks/min':>12s} {'run/min':>8s} source")
    for arch in archs:
        peaks = []
        for iterations in counts:
            r = _run_worker(
                [
                    "shard",
                    "--arch",
                    arch,
                    "--attack",
                    args.attack,
                    "--batch",
                    str(args.shard),
                    "--iterations",
                    str(iterations),
                    "--device",
                    args.device,
                ]
            )
            peaks.append(r["peak_rss_mb"])
            reported = r["reported_per_minute"]
            print(
                f"{arch:15s} {iterations:10d} {r['peak_rss_mb']:6.0f} MB "
                f"{'n/a' if reported is None else f'{reported:.0f}':>12s} {args.shard / r['seconds'] * 60:8.0f} "
                f"{r['source']}"
            )
        print(
            f"{'':15s} {'growth':>10s} {peaks[-1] - peaks[0]:+6.0f} MB over {counts[-1] - counts[0]} iterations"
        )
    print(
        "attacks/min: the shard's reconstructions per minute as generate() logs them (attacks and writing);\n"
        "run/min: the same over the whole call (source loading and victim set-up included)\n"
        "target: at most 2 GB (2048 MB) for every victim, flat in the iterations"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2:])
    else:
        main()
