"""Per image domain: how many reconstructions the judges recognised, and how many of those have an SSIM
below 0.3 to their original (the robustness check's "does not look like it" threshold).

    python scripts/dataset_statistics.py [hub/semsim-judged-v3]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from torchmetrics.functional.image import structural_similarity_index_measure as ssim

from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.data.scoring import score_pairs

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import datasets

    folder = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "hub" / "semsim-judged-v3")
    ds = datasets.concatenate_datasets(list(load_folder_or_hub(folder).values()))
    values = score_pairs(ds, {"SSIM": lambda p, t: ssim(p, t, data_range=1.0, reduction="none")})["SSIM"]
    recognised = np.asarray(ds["recognized"], dtype=bool)
    domains = np.asarray(ds["source_dataset"])
    print("| domain | rows | recognised | recognised with SSIM < 0.3 | median SSIM: recognised / not |")
    print("|---|---|---|---|---|")
    for d in sorted(set(domains)):
        rec, unrec = (domains == d) & recognised, (domains == d) & ~recognised
        print(
            f"| {d} | {int((domains == d).sum())} | {int(rec.sum())} | {(values[rec] < 0.3).mean():.1%} | "
            f"{np.median(values[rec]):.3f} / {np.median(values[unrec]):.3f} |"
        )


if __name__ == "__main__":
    main()
