"""Throughput of the SemSim metric vs the bare backbone forward vs torchmetrics SSIM, side by side.

    python benchmarks/bench_metric.py [--batch-size 256] [--repeats 5] [--width 64] [--device cpu|cuda]

Prints pairs/s for each and the ratios measured in this one run. Target (issue 2): the metric's
overhead over the bare backbone forward is at most 15% at batch 256. On CUDA it also reports bf16
pairs/s and the share of the GPU's bf16 peak (pass --peak-tflops for your card; H100 SXM: 989).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchmetrics.image import StructuralSimilarityIndexMeasure

from semsim_metric import SemSim, SemSimConfig, SemSimModel
from semsim_metric.preprocessing import to_model_input


def timeit(fn, repeats: int, device: torch.device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def conv_flops_per_image(model: SemSimModel) -> float:
    flops = 0.0
    hooks = []

    def hook(mod, inp, out):
        nonlocal flops
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        flops += 2.0 * k * out.numel() / out.shape[0]

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            hooks.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model.backbone(
            torch.zeros(
                1,
                3,
                model.config.image_size,
                model.config.image_size,
                device=next(model.parameters()).device,
                dtype=next(model.parameters()).dtype,
            )
        )
    for h in hooks:
        h.remove()
    return flops


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--width", type=int, default=64, help="ResNet-18 base width (64 = the paper's default)"
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="bf16 dense peak of the GPU")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=args.width)).eval().to(device)
    n = args.batch_size
    preds = torch.rand(n, 3, 32, 32, device=device)
    target = torch.rand(n, 3, 32, 32, device=device)
    cfg = model.config
    ready = torch.cat(
        [
            to_model_input(
                x, data_range=1.0, image_size=cfg.image_size, mean=cfg.image_mean, std=cfg.image_std
            )
            for x in (preds, target)
        ]
    )
    metric = SemSim(model).to(device)
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0).to(device)

    def run_metric():
        metric.reset()
        metric.update(preds, target)
        return metric.compute()

    def run_backbone():
        with torch.inference_mode():
            return model.backbone(ready)

    def run_ssim():
        ssim.reset()
        ssim.update(preds, target)
        return ssim.compute()

    # interleave the candidates so that they share the machine's noise; report medians
    fns = {"bare backbone forward": run_backbone, "SemSim metric": run_metric, "torchmetrics SSIM": run_ssim}
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(args.repeats):
        for name, fn in fns.items():
            times[name].append(timeit(fn, 1, device))
    results = {name: n / statistics.median(t) for name, t in times.items()}
    print(
        f"device={device} width={args.width} batch={n} repeats={args.repeats} threads={torch.get_num_threads()}"
    )
    for name, v in results.items():
        print(f"  {name:<24} {v:10.1f} pairs/s")
    overhead = results["bare backbone forward"] / results["SemSim metric"] - 1
    print(f"  metric overhead over bare backbone: {overhead:+.1%} (target <= +15%)")
    print(
        f"  SemSim / SSIM throughput ratio:     {results['SemSim metric'] / results['torchmetrics SSIM']:.3f}"
    )
    if device.type == "cuda":
        metric_bf16 = SemSim(model)
        metric_bf16.set_dtype(torch.bfloat16)
        metric_bf16 = metric_bf16.to(device)

        def run_bf16():
            metric_bf16.reset()
            metric_bf16.update(preds.bfloat16(), target.bfloat16())
            return metric_bf16.compute()

        run_bf16()  # warm-up
        rate = n / timeit(run_bf16, args.repeats, device)
        achieved = rate * 2 * conv_flops_per_image(model) / 1e12
        print(
            f"  SemSim metric bf16         {rate:10.1f} pairs/s = {achieved:.1f} TFLOP/s "
            f"({achieved / args.peak_tflops:.1%} of a {args.peak_tflops:.0f} TFLOP/s bf16 peak)"
        )


if __name__ == "__main__":
    main()
