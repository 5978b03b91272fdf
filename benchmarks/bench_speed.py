"""SemSim's scoring speed vs the LPIPS networks (and SSIM), side by side in one run, on CPU.

    python benchmarks/bench_speed.py [--batch-size 256] [--repeats 5] [--sizes 32,64] [--per-original 14]
    python benchmarks/bench_speed.py --chunk-sizes none,96,160,256   (how SCORING_CHUNK_SIZE was chosen)

Times, interleaved so that they share the machine's noise (medians of ``--repeats``):

* SemSim, the default model (width 16, spatial embedding), fp32, each pair's original embedded with it
  (``embed_pair``: 2 x batch images through the network) - the scoring path before issue 23;
* SemSim with each distinct original embedded once per batch (``dedup``: the batch holds
  ``batch / per_original`` distinct originals, as in the judged datasets and ``semsim score`` of a folder of
  reconstructions of a few originals; exact, the same numbers);
* the candidates channels-last weights, BatchNorms folded into their convolutions (``fold``), the network run on
  at most 160 images at a time (``chunks``; channels-last + fold + chunks is ``functional.scoring_copy``), ``bf16
  autocast`` (on CPUs with AVX-512 BF16 / AMX) and, with ``--compile``, ``torch.compile``; the row marked
  ``(default)`` is what ``semsim score`` runs;
* torchmetrics' LPIPS with AlexNet, SqueezeNet and VGG-16 (random weights: ``_LPIPS(pretrained=False,
  pnet_rand=True)``; speed does not depend on the weights) and torchmetrics SSIM.

Prints pairs/s, SemSim / LPIPS ratios (target, issue 23: SemSim >= LPIPS-SqueezeNet at 32x32, > LPIPS-VGG at every
size) and SemSim's achieved GFLOP/s (network FLOPs from ``torch.utils.flop_counter.FlopCounterMode``, times the
images through the network) against the peak: FP32 ``--peak-gflops`` (default: threads x GHz x 64 FLOP/cycle = two
512-bit FMA units), bf16 threads x GHz x 1,024 FLOP/cycle with AMX (else 128, AVX-512 BF16); and the largest
|distance difference| of each candidate from the fp32 reference.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode
from torchmetrics.functional.image.lpips import _LPIPS
from torchmetrics.image import StructuralSimilarityIndexMeasure

from semsim_metric.functional import _semsim_update, cpu_has_fast_bf16, freeze, get_model, scoring_copy


def cpu_ghz() -> float:
    """The nominal clock of this CPU in GHz (``cpu MHz`` of /proc/cpuinfo; 3.0 when it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("cpu MHz"):
                    return float(line.split(":")[1]) / 1000
    except OSError:
        pass
    return 3.0


def network_flops(model: torch.nn.Module, images: torch.Tensor) -> float:
    """FLOPs of one forward of ``model`` on ``images`` (FlopCounterMode: convolutions and matrix products)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(images)
    return float(counter.get_total_flops())


def compare_chunk_sizes(sizes: str, n: int, per_original: int, repeats: int) -> None:
    """pairs/s of ``scoring_copy`` under bf16 autocast for each ``embed_chunk_size``, with each distinct original
    embedded once (``n + n / per_original`` images through the network) and without (``2 n``); medians of the
    interleaved repeats after two warm-ups."""
    chunks = [None if c.strip() == "none" else int(c) for c in sizes.split(",")]
    model = scoring_copy(get_model(None))
    torch.manual_seed(0)
    originals = torch.rand(max(1, n // per_original), 3, 32, 32)
    target = originals[torch.arange(n) % originals.shape[0]].contiguous(memory_format=torch.channels_last)
    preds = (
        (target + 0.1 * torch.randn_like(target)).clamp(0, 1).contiguous(memory_format=torch.channels_last)
    )
    times: dict[tuple[bool, int | None], list[float]] = {(d, c): [] for d in (True, False) for c in chunks}
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        for _ in range(repeats + 2):
            for dedup, chunk in times:
                model.embed_chunk_size = chunk
                start = time.perf_counter()
                _semsim_update(preds, target, model, data_range=1.0, check_domain=False, dedup_target=dedup)
                times[(dedup, chunk)].append(time.perf_counter() - start)
    print(
        f"threads={torch.get_num_threads()} batch={n} per_original={per_original} (32x32, bf16, scoring_copy)"
    )
    for (dedup, chunk), t in times.items():
        label = "dedup" if dedup else "no dedup"
        print(f"  {label:<9} embed_chunk_size={chunk!s:<5} {n / statistics.median(t[2:]):8.1f} pairs/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="32", help="comma-separated image sides (the model resizes to 32)")
    parser.add_argument(
        "--per-original", type=int, default=14, help="reconstructions per original in a batch"
    )
    parser.add_argument("--peak-gflops", type=float, default=None, help="FP32 peak of the cores used")
    parser.add_argument("--no-vgg", action="store_true", help="skip LPIPS-VGG (slow)")
    parser.add_argument(
        "--compile", action="store_true", help="also time torch.compile of the model (slow start)"
    )
    parser.add_argument(
        "--chunk-sizes",
        default=None,
        help="instead: time scoring_copy's bf16 path, with and without dedup, for each of these comma-separated "
        "embed_chunk_size values ('none' = whole batches), interleaved",
    )
    args = parser.parse_args()
    if args.chunk_sizes:
        compare_chunk_sizes(args.chunk_sizes, args.batch_size, args.per_original, max(args.repeats, 10))
        return
    threads = torch.get_num_threads()
    peak = args.peak_gflops or threads * cpu_ghz() * 64
    # bf16: AMX tiles (1,024 bf16 FLOP/cycle/core) where present, else AVX-512 BF16 dot products (128)
    amx = False
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as fh:
            amx = "amx_bf16" in fh.read()
    peak_bf16 = threads * cpu_ghz() * (1024 if amx else 128)
    model = get_model(None)
    n = args.batch_size
    torch.manual_seed(0)
    lpips = {
        name: _LPIPS(pretrained=False, net=net, pnet_rand=True).eval()
        for name, net in (("LPIPS-AlexNet", "alex"), ("LPIPS-SqueezeNet", "squeeze"), ("LPIPS-VGG", "vgg"))
        if not (args.no_vgg and net == "vgg")
    }
    ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
    # the same weights in channels-last (NHWC) layout; and with the BatchNorms folded too, as the scoring loops use
    cl_model = freeze(copy.deepcopy(model)).to(memory_format=torch.channels_last)
    fast_model = scoring_copy(model)
    fold_model = copy.deepcopy(fast_model)
    fold_model.embed_chunk_size = None
    compiled = torch.compile(copy.deepcopy(model), dynamic=True) if args.compile else None
    print(
        f"threads={threads} batch={n} repeats={args.repeats} per_original={args.per_original} "
        f"peak={peak:.0f} GFLOP/s FP32 ({threads} cores x {cpu_ghz():.2f} GHz x 64 FLOP/cycle), "
        f"{peak_bf16:.0f} GFLOP/s bf16 ({'AMX, 1,024' if amx else 'AVX-512 BF16, 128'} FLOP/cycle); "
        f"native bf16: {cpu_has_fast_bf16()}"
    )
    for side in (int(s) for s in args.sizes.split(",")):
        n_orig = max(1, n // args.per_original)
        originals = torch.rand(n_orig, 3, side, side)
        target = originals[torch.arange(n) % n_orig]
        preds = (target + 0.1 * torch.randn_like(target)).clamp(0, 1)

        def semsim(
            dedup: bool,
            bf16: bool = False,
            cl: bool = False,
            fold: bool = False,
            chunks: bool = False,
            net: torch.nn.Module | None = None,
            preds: torch.Tensor = preds,
            target: torch.Tensor = target,
        ) -> Callable[[], torch.Tensor]:
            def run() -> torch.Tensor:
                p, t = (
                    (preds, target)
                    if not (cl or fold or chunks)
                    else (
                        preds.contiguous(memory_format=torch.channels_last),
                        target.contiguous(memory_format=torch.channels_last),
                    )
                )
                # the most optimised variant asked for: chunks > fold > channels-last > the model as loaded
                variants = ((chunks, fast_model), (fold, fold_model), (cl, cl_model), (True, model))
                chosen = net if net is not None else next(m for wanted, m in variants if wanted)
                with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    return _semsim_update(
                        p, t, chosen, data_range=1.0, check_domain=False, dedup_target=dedup
                    ).float()

            return run

        fns: dict[str, Callable[[], torch.Tensor]] = {
            "SemSim fp32 (before)": semsim(False),
            "SemSim fp32 + dedup": semsim(True),
            "SemSim fp32 + dedup + chlast": semsim(True, cl=True),
            "SemSim fp32 + dedup + chlast + fold": semsim(True, fold=True),
            "SemSim fp32 + dedup + chlast + fold + chunks": semsim(True, chunks=True),
            "SemSim bf16": semsim(False, bf16=True),
            "SemSim bf16 + dedup": semsim(True, bf16=True),
            "SemSim bf16 + chlast (no dedup)": semsim(False, bf16=True, cl=True),
            "SemSim bf16 + chlast + fold (no dedup)": semsim(False, bf16=True, fold=True),
            "SemSim bf16 + chlast+fold+chunks (no dedup)": semsim(False, bf16=True, chunks=True),
            "SemSim bf16+dedup+chlast": semsim(True, bf16=True, cl=True),
            "SemSim bf16+dedup+chlast+fold": semsim(True, bf16=True, fold=True),
            "SemSim bf16+dedup+chlast+fold+chunks (default)": semsim(True, bf16=True, chunks=True),
        }
        if compiled is not None:
            fns["SemSim compiled fp32 + dedup"] = semsim(True, net=compiled)
            fns["SemSim compiled bf16 + dedup"] = semsim(True, bf16=True, net=compiled)
        for name, net in lpips.items():
            fns[name] = lambda net=net, p=preds, t=target: net(p, t, normalize=True)
        fns["torchmetrics SSIM"] = lambda p=preds, t=target: (
            ssim.reset(),
            ssim.update(p, t),
            ssim.compute(),
        )[-1]
        with torch.inference_mode():
            outs = {name: fn() for name, fn in fns.items()}  # warm-up, and the scores compared below
        times: dict[str, list[float]] = {name: [] for name in fns}
        for _ in range(args.repeats):
            for name, fn in fns.items():
                t0 = time.perf_counter()
                with torch.inference_mode():
                    fn()
                times[name].append(time.perf_counter() - t0)
        rate = {name: n / statistics.median(t) for name, t in times.items()}
        ref = outs["SemSim fp32 (before)"]
        cfg = model.config
        x = torch.rand(1, 3, cfg.image_size, cfg.image_size)
        flops_img = network_flops(model, x)
        print(
            f"\n{side}x{side} RGB, {n_orig} distinct originals per batch of {n}; "
            f"SemSim network: {flops_img / 1e6:.1f} MFLOP per image"
        )
        for name, r in rate.items():
            line = f"  {name:<47} {r:9.1f} pairs/s"
            if name.startswith("SemSim"):
                images = n + (n_orig if "dedup" in name and "no dedup" not in name else n)
                gflops = flops_img * images / statistics.median(times[name]) / 1e9
                diff = float((outs[name].float() - ref).abs().max())
                share = (
                    f"{gflops / peak_bf16:5.1%} of bf16"
                    if "bf16" in name
                    else f"{gflops / peak:5.1%} of FP32"
                )
                line += f"  {gflops:6.1f} GFLOP/s ({share} peak)  max|d - d_fp32| {diff:.5f}"
            print(line)
        print("  ratios (SemSim / other):")
        for name in [k for k in rate if k.startswith("SemSim")]:
            ratios = "  ".join(
                f"/{o.replace('LPIPS-', '')} {rate[name] / rate[o]:5.2f}"
                for o in rate
                if not o.startswith("SemSim")
            )
            print(f"    {name:<47} {ratios}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
