"""Screen candidate models (trained on the train split of a judged dataset) on the originals they never saw.

    python scripts/screen_recipes.py runs/colour-all runs/colour2-all ... [--dataset hub/semsim-judged-v3]

Prints ROC-AUC (recognised vs not, higher = agrees better with the judges) on the validation + test rows,
overall, per image domain and as the mean over victim architectures, beside SSIM. This is the quick screen
that picked which recipe goes through the full held-out protocol (`semsim evaluate --heldout all`); it is
not a substitute for it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import datasets
    from sklearn.metrics import roc_auc_score
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    from semsim_metric.data.loading import load_folder_or_hub
    from semsim_metric.data.scoring import score_pairs, semsim_scorer
    from semsim_metric.models import SemSimModel

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="+", type=Path, help="model folders trained on the train split")
    parser.add_argument("--dataset", default=str(ROOT / "hub" / "semsim-judged-v3"))
    args = parser.parse_args()
    dsd = load_folder_or_hub(args.dataset)
    ds = datasets.concatenate_datasets([dsd["validation"], dsd["test"]])
    scorers = {m.name: semsim_scorer(SemSimModel.from_pretrained(m).eval()) for m in args.models}
    scorers["SSIM"] = lambda p, t: -ssim(p, t, data_range=1.0, reduction="none")
    with torch.inference_mode():
        values = score_pairs(ds, scorers)
    y = np.asarray(ds["recognized"], dtype=bool)
    domains, archs = np.asarray(ds["source_dataset"]), np.asarray(ds["victim_arch"])
    names = sorted(set(domains))
    print("| model | all | " + " | ".join(names) + " | mean over victim architectures |")
    print("|---|---|" + "---|" * len(names) + "---|")
    for name, v in values.items():
        per_domain = [roc_auc_score(y[domains == d], -v[domains == d]) for d in names]
        per_arch = [
            roc_auc_score(y[archs == a], -v[archs == a])
            for a in sorted(set(archs))
            if len(set(y[archs == a])) > 1
        ]
        print(
            f"| {name} | {roc_auc_score(y, -v):.3f} | "
            + " | ".join(f"{a:.3f}" for a in per_domain)
            + f" | {np.mean(per_arch):.3f} |"
        )


if __name__ == "__main__":
    main()
