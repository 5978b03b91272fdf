"""Screen layout settings on the held-out models of a run, without training anything.

    python scripts/screen_layouts.py RUN_DIR --recipe RECIPE [--sizes 16 8 4] [--weights 0.3 0.5 0.7]

RUN_DIR is a `semsim evaluate --heldout ... --out RUN_DIR` folder (or several, one per protocol) whose `models/`
hold the recipe's held-out model of each protocol and whose `scores/` name each protocol's evaluation rows.

The layout is set after training (`layout_weight`, `layout_size`, `layout_channels`), so every layout setting of a
split shares that split's network. Both parts of the embedding have unit length, so a model's squared distance is
exactly `(1 - w) * network^2 + w * layout^2`: the script measures the network's distance of every held-out row once,
the layout's once per (channels, size), each through `SemSimModel` itself, and prints the ROC-AUC of every
(channels, size, weight) per split and their mean over the splits, beside SSIM from the run's own scores. Only the
ordering is measured (ROC-AUC); a chosen setting still goes through `semsim evaluate` for calibration and the
tables with every baseline.
"""

from __future__ import annotations

import argparse
import copy
import csv
import gzip
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "hub" / "semsim-judged-v3"


def _scored_protocols(run: Path) -> list[tuple[str, Path, list[dict[str, str]]]]:
    """(protocol, run folder, rows of its scores file) for every protocol of ``run`` (a run or a folder of runs)."""
    from semsim_metric.evaluation.heldout import SCORES_INDEX

    runs = (
        [run]
        if (run / "scores" / SCORES_INDEX).is_file()
        else sorted(p.parent.parent for p in run.glob(f"*/scores/{SCORES_INDEX}"))
    )
    if not runs:
        raise SystemExit(
            f"{run}: no scores/{SCORES_INDEX} here or in its subfolders (a held-out run's --out folder?)"
        )
    found = []
    for folder in runs:
        for entry in json.loads((folder / "scores" / SCORES_INDEX).read_text()):
            with gzip.open(folder / "scores" / entry["file"], "rt", newline="") as fh:
                found.append((entry["protocol"], folder, list(csv.DictReader(fh))))
    return found


def screen(run: Path, recipe: str, sizes: list[int], weights: list[float]) -> dict[str, dict[str, float]]:
    """ROC-AUC per setting (``"<channels> <size> @<weight>"``, ``"network"``, ``"SSIM"``) per protocol."""
    import datasets
    from sklearn.metrics import roc_auc_score

    from semsim_metric.data.loading import load_folder_or_hub
    from semsim_metric.evaluation.heldout import run_folder_name
    from semsim_metric.models import SemSimModel
    from semsim_metric.training.validation import pair_distances

    dataset = load_folder_or_hub(str(DATASET))
    table: dict[str, dict[str, float]] = {}
    for protocol, folder, rows in _scored_protocols(run):
        model_dir = folder / "models" / run_folder_name(protocol, recipe)
        if not (model_dir / "model.safetensors").is_file():
            raise SystemExit(f"{model_dir} is missing: was {folder} run with --recipe {recipe}?")
        wanted = {r["reconstruction_id"]: i for i, r in enumerate(rows)}
        held = [
            split.select([i for i, rid in enumerate(split["reconstruction_id"]) if rid in wanted])
            for split in dataset.values()
        ]
        held_rows = datasets.concatenate_datasets([h for h in held if len(h)])
        order = np.array([wanted[i] for i in held_rows["reconstruction_id"]])
        y = np.array([rows[i]["recognized"] == "1" for i in order])
        model = SemSimModel.from_pretrained(model_dir).eval()
        network = copy.deepcopy(model)
        network.config.layout_weight = 0.0
        dn2 = pair_distances(network, held_rows).astype(np.float64) ** 2
        aucs = {
            "network": roc_auc_score(y, -dn2),
            "SSIM": roc_auc_score(y, [float(rows[i]["SSIM"]) for i in order]),
        }
        for channels in ("rgb", "luminance"):
            for size in sizes:
                half = copy.deepcopy(model)
                half.config.layout_weight, half.config.layout_size, half.config.layout_channels = (
                    0.5,
                    size,
                    channels,
                )
                dl2 = 2 * pair_distances(half, held_rows).astype(np.float64) ** 2 - dn2
                for w in weights:
                    aucs[f"{channels} {size} @{w}"] = roc_auc_score(y, -((1 - w) * dn2 + w * dl2))
        table[protocol] = aucs
        print(f"{protocol}: {len(rows)} rows", flush=True)
    return table


def markdown(table: dict[str, dict[str, float]]) -> str:
    protocols = list(table)
    settings = list(next(iter(table.values())))
    means = {s: float(np.mean([table[p][s] for p in protocols])) for s in settings}
    lines = [
        "| setting | " + " | ".join(protocols) + " | mean |",
        "|---" * (len(protocols) + 2) + "|",
    ]
    for s in sorted(settings, key=lambda s: -means[s]):
        lines.append(
            f"| {s} | " + " | ".join(f"{table[p][s]:.3f}" for p in protocols) + f" | {means[s]:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path)
    parser.add_argument("--recipe", required=True, help="the recipe whose held-out models are screened")
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 8, 4])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    args = parser.parse_args()
    print(markdown(screen(args.run, args.recipe, args.sizes, args.weights)))


if __name__ == "__main__":
    main()
