"""Copy a held-out experiment report (from `semsim evaluate --heldout ... --out DIR`) into the docs.

    python scripts/publish_heldout.py runs/heldout-v5

Writes docs/heldout.md, its plots and the per-row scores under docs/heldout/ (trained models are not copied).
"""

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GUIDE = """
Each row is a model trained *without* the held-out rows and evaluated beside every baseline in the same
run, on the same splits. The recipes:

- `semantic:vote_anchor_weight=1` - the previous default (revision `v4`): stage 1 (class-supervised
  pre-training on the Fashion-MNIST train split, annotated originals excluded) + stage 2 (vote tuning on
  the annotators' answers) with label-free anchors (mild copies near; noise, constants and other classes
  far; in Fashion-MNIST, photographs and synthetic images; see `semsim_metric.data.anchors`) at the
  anchor loss's default scale (centre 0.65); see [Training](training.md#the-semantic-recipe).
- `semantic:vote_anchor_weight=3,vote_anchor_centre=0.95` - the same with the anchors weighted 3x and
  their boundary moved to distance 0.95, so that noise lands beyond the distances the calibration maps
  to p < 0.05 in every domain.

The shipped default (revision `v5`) uses `semantic:vote_anchor_weight=3,vote_anchor_centre=0.95`: its
mean ROC-AUC over the evaluable splits is the higher of the two (listed below), it is the only one of the
two whose sanity holds in photographs and synthetic images (the sanity tables below), and on the large
splits its numbers are within the other's intervals.

## Choosing the anchor scale

The anchor weight and centre were chosen on the unseen-originals split and the sanity checks (never on
one held-out axis alone), by these runs (same code, same stage-1 cache):

```bash
semsim evaluate hub/fmnist-judged-v2 --heldout unseen-originals --bootstrap 200 --out runs/anchor-scale \\
    --recipe semantic:vote_anchor_weight=2,vote_anchor_centre=0.85 \\
    --recipe semantic:vote_anchor_weight=1,vote_anchor_centre=0.85,vote_anchor_temperature=0.05 \\
    --recipe semantic:vote_anchor_weight=4,vote_anchor_centre=0.85 \\
    --recipe semantic:vote_anchor_weight=3,vote_anchor_centre=0.95
python -m semsim_metric.evaluation.sanity --model runs/anchor-scale/models/unseen_originals__<recipe>
```

| recipe | unseen-originals ROC-AUC | noise p < 0.05: fashion-mnist / photos / synthetic |
|---|---|---|
| `semantic:vote_anchor_weight=1` (v4) | 0.917 | 99.2% / 69.2% / 79.2% |
| `semantic:vote_anchor_weight=1,vote_anchor_centre=0.85,vote_anchor_temperature=0.05` | 0.917 | 98.5% / 90.5% / 97.8% |
| `semantic:vote_anchor_weight=2,vote_anchor_centre=0.85` | 0.917 | 99.8% / 97.2% / 100.0% |
| `semantic:vote_anchor_weight=4,vote_anchor_centre=0.85` | 0.919 | 100.0% / 97.5% / 100.0% |
| `semantic:vote_anchor_weight=3,vote_anchor_centre=0.95` | 0.916 | 100.0% / 100.0% / 100.0% |

Every other sanity check (identical copy at distance 0, a copy with noise 0.03 recognised, another class
farther than that copy) held for at least 99% of pairs in every run. At weight 4 and centre 0.85 the missed
photographs were crops of the retina photograph (dark, nearly featureless) against noise; the boundary at
0.95 fixed them without moving the ROC-AUC.

Stage 1 ran once per run (it is cached and shared: identical settings, identical excluded originals); its
time is counted in every model. The `v4` recipe's models were reused from its own run (`runs/heldout-v4`:
the finished stages of an identical plan are loaded), and give the numbers published for `v4` to the last
digit. Ablations of earlier choices (pooled vs spatial embedding, no stage 1, no stage 2, the distance
loss, a triplet stage afterwards) were run with the code before the architecture change (commit 7dd52f7),
so their numbers are not quoted here. Rerun them by adding e.g. `--recipe semantic:embedding=pooled
--recipe semantic:vote_epochs=0` to the command above.

The per-row values of every metric on every held-out split are committed in
[`docs/heldout/scores/`](heldout/scores/index.json); `python -m semsim_metric.evaluation.heldout
docs/heldout/scores` recomputes the summary table above from them (a test does, and checks the
published numbers and the default model's calibration against them).
"""


def sanity_of_heldout_models(src: Path, recipes: list[str]) -> list[str]:
    """Sanity table rows (one block per recipe) for the unseen-originals model of each recipe."""
    from semsim_metric.evaluation.heldout import run_folder_name
    from semsim_metric.evaluation.sanity import run_sanity, sanity_table
    from semsim_metric.models import SemSimModel

    lines = []
    for recipe in recipes:
        folder = src / "models" / run_folder_name("unseen-originals", recipe)
        if not (folder / "model.safetensors").is_file():
            continue
        table = sanity_table(run_sanity(SemSimModel.from_pretrained(folder).eval())).splitlines()
        lines += [f"`{recipe}`:", ""] + table + [""]
    return lines


def main() -> None:
    src = Path(sys.argv[1])
    dst = ROOT / "docs" / "heldout"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for png in src.glob("*.png"):
        shutil.copy2(png, dst / png.name)
    shutil.copy2(src / "heldout_summary.json", dst / "heldout_summary.json")
    shutil.copytree(src / "scores", dst / "scores")  # per-row values: the tables are reproducible from them
    import json

    summary = json.loads((src / "heldout_summary.json").read_text())
    verdict = ["", "Best recipe per held-out split (by ROC-AUC):", ""]
    for protocol in dict.fromkeys(s["protocol"] for s in summary):
        rows = sorted((s for s in summary if s["protocol"] == protocol), key=lambda s: -s["semsim_auc"])
        verdict.append(f"- {protocol}: `{rows[0]['recipe']}` {rows[0]['semsim_auc']:.3f} (SSIM {rows[0]['ssim_auc']:.3f}, "
                       f"best baseline {rows[0]['best_baseline']} {rows[0]['best_baseline_auc']:.3f})"
                       + ("; then " + ", ".join(f"`{r['recipe']}` {r['semsim_auc']:.3f}" for r in rows[1:])
                          if rows[1:] else ""))
    recipes = list(dict.fromkeys(s["recipe"] for s in summary))
    means = {r: sum(s["semsim_auc"] for s in summary if s["recipe"] == r) / sum(s["recipe"] == r for s in summary)
             for r in recipes}
    verdict += ["", "Mean SemSim ROC-AUC over the " + str(sum(s["recipe"] == recipes[0] for s in summary))
                + " evaluable splits: " + ", ".join(f"`{r}` {m:.3f}" for r, m in means.items()) + "."]
    sanity_rows = sanity_of_heldout_models(src, recipes)
    if sanity_rows:
        verdict += ["", "Sanity of each recipe's unseen-originals model (`python -m semsim_metric.evaluation.sanity "
                    "--model <folder>`, 200 originals per domain never used in training):", ""] + sanity_rows
    text = (src / "report.md").read_text().replace("](", "](heldout/")
    text = text.replace("\n## ", "\n" + "\n".join(verdict) + "\n\n## ", 1)
    command = (src / "command.txt").read_text().strip().replace(str(ROOT) + "/", "")  # by `semsim evaluate --heldout`
    header = ("# Held-out evaluation\n\nGenerated by:\n\n```bash\n" + command
              + f"\npython scripts/publish_heldout.py {sys.argv[1]}\n```\n" + GUIDE)
    (ROOT / "docs" / "heldout.md").write_text(text.replace("# SemSim agreement report", header, 1))
    print(ROOT / "docs" / "heldout.md")


if __name__ == "__main__":
    main()
