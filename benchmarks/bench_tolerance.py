"""How far ``semsim score``'s fast path moves SemSim's distances, on judged reconstructions.

    python benchmarks/bench_tolerance.py [--dataset hub/semsim-judged-v3] [--split test] [--model M]

Scores every (reconstruction, original) pair of the split three ways with the default model (or ``--model``): the
plain float32 model (the reference: what the Python API computes); ``functional.scoring_copy`` in float32 (BatchNorms
folded into their convolutions, channels-last weights); and ``semsim score``'s default on CPUs with native bf16 (the
same copy under bf16 autocast, each distinct original embedded once per batch). Prints each path's largest and median
|distance - reference| and its ROC-AUC for the ``recognized`` label (lower distance = recognised), beside the
reference's. Issue 23's tolerance: |difference| <= 0.01 and the ROC-AUC unchanged to 3 decimals.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.data.scoring import iter_pair_batches
from semsim_metric.functional import _semsim_update, get_model, scoring_copy


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="hub/semsim-judged-v3")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", default=None, help="folder or Hub id (default: the bundled default model)")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    ds = load_folder_or_hub(args.dataset, split=args.split)
    reference = get_model(args.model)
    fast = scoring_copy(reference)
    paths = {
        "float32 (reference)": (reference, False, False),
        "scoring_copy, float32": (fast, False, False),
        "scoring_copy, bf16 + dedup (semsim score)": (fast, True, True),
    }
    distances = {}
    for name, (model, bf16, dedup) in paths.items():
        start, out = time.perf_counter(), []
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            for preds, target in iter_pair_batches(ds, args.batch_size):
                out.append(
                    _semsim_update(
                        preds, target, model, data_range=1.0, check_domain=False, dedup_target=dedup
                    )
                )
        distances[name] = torch.cat(out).float().numpy()
        print(
            f"scored {len(ds)} pairs of {args.dataset} [{args.split}] with {name} in {time.perf_counter() - start:.1f} s"
        )
    recognised = np.asarray(ds["recognized"], dtype=bool)
    ref = distances["float32 (reference)"]
    print("\n| path | max \\|d - d_ref\\| | median | ROC-AUC (recognized) |\n|---|---|---|---|")
    for name, d in distances.items():
        diff = np.abs(d - ref)
        print(f"| {name} | {diff.max():.5f} | {np.median(diff):.6f} | {roc_auc_score(recognised, -d):.4f} |")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
