"""Conversion speed on the official labels layout at full scale (600 originals x 14 victims = 8,400 rows).

    python benchmarks/bench_convert.py [--originals 600] [--victims 14]

Target (issue 3): the full official CIFAR-100 set converts in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from semsim_metric.data import DatasetCard, convert_official_labels, split_by_original, write_dataset_folder

VICTIM_TEMPLATE = "ConvNet_200_inversed_aug_auglist_3-1-7_rlabel_False_defense_v{}"


def build(root: Path, n_orig: int, n_victims: int) -> None:
    rng = np.random.default_rng(0)
    (root / "original-img").mkdir(parents=True)
    for i in range(n_orig):
        cls = i % 100
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
            root / "original-img" / f"{i}_{cls}_ori.png"
        )
    for v in range(n_victims):
        folder = root / "img" / VICTIM_TEMPLATE.format(v)
        folder.mkdir(parents=True)
        for i in range(n_orig):
            cls = i % 100
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(
                folder / f"{i}_{cls}_rec.png"
            )
            votes = rng.choice([cls, -1], 5)
            (folder / f"{i}_{cls}_gt.txt").write_text(" ".join(map(str, votes)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--originals", type=int, default=600)
    parser.add_argument("--victims", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "human_annos_subset"
        build(root, args.originals, args.victims)
        t = time.perf_counter()
        rows, _report = convert_official_labels(root, strict=True)
        convert_s = time.perf_counter() - t
        splits, _ = split_by_original(rows, seed=0)
        write_dataset_folder(splits, Path(tmp) / "out", DatasetCard(title="bench", summary="bench"))
        seconds = time.perf_counter() - t
    n = len(rows)
    print(
        f"converted {n} rows in {convert_s:.1f} s; with splitting and writing Parquet + card: {seconds:.1f} s "
        f"= {n / seconds:.0f} rows/s"
    )
    print(
        f"full official set (8,400 rows): {8400 / (n / seconds):.1f} s  (target < 120 s: "
        f"{'met' if 8400 / (n / seconds) < 120 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
