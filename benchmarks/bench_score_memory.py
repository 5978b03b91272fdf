"""Peak memory of `semsim score` for 4, 16 and 64 pairs of large PNGs, side by side (issue 21).

    python benchmarks/bench_score_memory.py [--counts 4,16,64] [--side 4000] [--batch-size 256]

Each count runs `semsim score` (default model, default batch size) in a fresh process that reports its own
peak resident memory (``ru_maxrss``); a first row scores one pair of 32x32 images, so what the imports alone
take is visible. Target: the peak is flat in the number of files - each file is reduced while it is read
and brought to the model's size at once, so memory holds one decoded file and a batch of 32x32 images.
Before the fix, 16 pairs of 4000x4000 PNGs took several GB, because a whole batch was decoded at full size
and converted to float before resizing.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: the child prints its own high-water mark on exit (a parent's RUSAGE_CHILDREN is a maximum over all children)
_CHILD = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from semsim_metric.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


def build(folder: Path, n: int, side: int, sources: Path) -> tuple[Path, Path]:
    """``n`` (original, reconstruction) pairs of ``side`` x ``side`` RGB PNGs, copies of four distinct pairs."""
    if not sources.exists():
        sources.mkdir(parents=True)
        rng = np.random.default_rng(0)
        for k in range(4):
            a = np.zeros((side, side, 3), dtype=np.uint8)
            a[..., k % 3] = 200
            a[k * side // 8 : (k + 4) * side // 8, side // 4 : side // 2] = rng.integers(0, 256, 3)
            Image.fromarray(a).save(sources / f"o{k}.png")
            Image.fromarray(255 - a).save(sources / f"r{k}.png")
    o, r = folder / f"originals_{n}", folder / f"reconstructions_{n}"
    o.mkdir(parents=True)
    r.mkdir(parents=True)
    for i in range(n):
        shutil.copyfile(sources / f"o{i % 4}.png", o / f"{i:04d}.png")
        shutil.copyfile(sources / f"r{i % 4}.png", r / f"{i:04d}.png")
    return o, r


def peak_of_score(o: Path, r: Path, batch_size: int) -> tuple[float, float, str]:
    """(peak RSS in MB, seconds, last line printed) of one `semsim score` run in a fresh process."""
    t = time.perf_counter()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _CHILD,
            "score",
            str(o),
            str(r),
            "--quiet",
            "--no-domain-check",
            "--batch-size",
            str(batch_size),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"semsim score failed:\n{out.stderr[-3000:]}")
    peak_kb = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK_KB"))
    mean = next((line for line in out.stdout.splitlines() if line.startswith("mean SemSim")), "")
    return peak_kb / 1024, seconds, mean.split("  ")[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--counts", default="4,16,64", help="numbers of pairs, comma-separated")
    parser.add_argument("--side", type=int, default=4000, help="side of the square PNGs (default 4000)")
    parser.add_argument("--batch-size", type=int, default=256, help="semsim score --batch-size (default 256)")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small_o, small_r = root / "small_o", root / "small_r"
        small_o.mkdir()
        small_r.mkdir()
        Image.new("RGB", (32, 32), (10, 20, 30)).save(small_o / "a.png")
        Image.new("RGB", (32, 32), (30, 20, 10)).save(small_r / "a.png")
        rows = [("1 pair of 32x32 (imports only)", *peak_of_score(small_o, small_r, args.batch_size))]
        for n in counts:
            o, r = build(root, n, args.side, root / "sources")
            size_kb = sum(p.stat().st_size for p in o.iterdir()) / n / 1024
            rows.append(
                (
                    f"{n} pairs of {args.side}x{args.side} PNG (~{size_kb:.0f} KB each)",
                    *peak_of_score(o, r, args.batch_size),
                )
            )
    print(f"{'semsim score on':<44} {'peak RSS':>10} {'time':>8}  result")
    for label, mb, seconds, mean in rows:
        print(f"{label:<44} {mb:>7.0f} MB {seconds:>6.1f} s  {mean}")
    peaks = [mb for _, mb, _, _ in rows[1:]]
    spread = max(peaks) - min(peaks)
    print(
        f"spread of the peak over {', '.join(map(str, counts))} pairs: {spread:.0f} MB "
        f"({'flat' if spread < 0.1 * min(peaks) else 'NOT flat'}; target: under 10% of the smallest peak)"
    )


if __name__ == "__main__":
    main()
