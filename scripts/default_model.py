"""Ship, check and retrain the default model.

    python scripts/default_model.py ship RUN_DIR [--name semsim-resnet18-fmnist-judged]
        copy a trained model folder into hub/<name>/ (fp16 weights, card regenerated from the stored
        weights, results.json) and into the package (src/semsim_metric/_bundled/<name>/)
    python scripts/default_model.py check
        recompute the card's ROC-AUC table from the bundled weights and compare it with results.json
    python scripts/default_model.py retrain OUT
        retrain with the recipe recorded in hub/<name>/training_info.json (same data, same seed)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path


from semsim_metric.data.loading import load_folder_or_hub
import torch

from semsim_metric.evaluation import compare_on_split
from semsim_metric.model_card import write_model_card
from semsim_metric.modeling import SemSimModel

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "hub" / "fmnist-judged-v1"
DEFAULT_NAME = "semsim-resnet18-fmnist-judged"


def results(folder: Path) -> dict[str, dict[str, float]]:
    model = SemSimModel.from_pretrained(folder)
    dsd = load_folder_or_hub(str(DATASET))
    return {split: compare_on_split(model, dsd[split]) for split in ("validation", "test")}


def ship(run: Path, name: str, compare_with: Path | None = None) -> None:
    target = ROOT / "hub" / name
    target.mkdir(parents=True, exist_ok=True)
    model = SemSimModel.from_pretrained(run)
    model.save_pretrained(target, dtype=torch.float16)
    info = json.loads((run / "training_info.json").read_text())
    info["dataset"] = "hub/fmnist-judged-v1"
    if compare_with is not None:
        mine, other = results(run), results(compare_with)
        info["notes"] = [
            f"**Model selection.** This model (recipe `{info['recipe']['name']}`) was chosen over `{compare_with.name}` "
            f"by validation ROC-AUC ({mine['validation']['SemSim']:.3f} vs {other['validation']['SemSim']:.3f}; "
            f"test: {mine['test']['SemSim']:.3f} vs {other['test']['SemSim']:.3f}). It was trained on the train split (70% of the originals) only; retraining "
            "on all originals after selection was not done for lack of CPU time."]
    (target / "training_info.json").write_text(json.dumps(info, indent=2))
    write_model_card(target, dataset="hub/fmnist-judged-v1", training_info=info, splits=load_folder_or_hub(str(DATASET)))
    (target / "results.json").write_text(json.dumps(results(target), indent=2))
    print(f"shipped {run} -> {target}")


def bundle(name: str) -> None:
    src, dst = ROOT / "hub" / name, ROOT / "src" / "semsim_metric" / "_bundled" / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in ("config.json", "model.safetensors", "README.md"):
        shutil.copy2(src / f, dst / f)
    print(f"bundled {src} -> {dst}")


def check(name: str) -> int:
    from semsim_metric.hub import bundled_model_path

    folder = bundled_model_path() or ROOT / "hub" / name
    expected = json.loads((ROOT / "hub" / name / "results.json").read_text())
    got = results(folder)
    bad = [(s, m, expected[s][m], got[s].get(m)) for s in expected for m in expected[s]
           if abs(expected[s][m] - got[s].get(m, float("nan"))) > 1e-4]
    for split, table in got.items():
        print(split, {k: round(v, 4) for k, v in table.items()})
    if bad:
        print("MISMATCH:", bad)
        return 1
    print("the card's numbers are reproduced")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ship")
    p.add_argument("run", type=Path)
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--no-bundle", action="store_true")
    p.add_argument("--compare-with", type=Path, default=None, help="model folder this one was selected over")
    c = sub.add_parser("check")
    c.add_argument("--name", default=DEFAULT_NAME)
    r = sub.add_parser("retrain")
    r.add_argument("out", type=Path)
    r.add_argument("--name", default=DEFAULT_NAME)
    args = parser.parse_args()
    if args.cmd == "ship":
        ship(args.run, args.name, args.compare_with)
        if not args.no_bundle:
            bundle(args.name)
        return 0
    if args.cmd == "check":
        return check(args.name)
    from semsim_metric.training import Recipe, train

    info = json.loads((ROOT / "hub" / args.name / "training_info.json").read_text())
    recipe = Recipe(**{**info["recipe"], "milestones": tuple(info["recipe"]["milestones"])})
    result = train(DATASET, args.out, recipe=recipe)
    print(result.validation, result.test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
