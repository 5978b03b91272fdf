"""Copy a held-out experiment report (from `semsim evaluate --heldout ... --out DIR`) into the docs.

    python scripts/publish_heldout.py runs/heldout-v5

Writes docs/heldout.md, its plots and the per-row scores under docs/heldout/ (trained models are not copied).
"""

import math
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

## Domains, calibration and pooling

With rows from two or more image domains (`source_dataset`), `--heldout all` also leaves each domain out
(`domain=<source_dataset>`: trained on the other domains only, evaluated on every row of the held-out
one, whose originals are never trained on), and every evaluation split that holds several domains is
also reported per domain (entries `<protocol> [domain=<d>]`, same baselines, same bootstrap). The
second table of the summary checks that SemSim's scale holds across settings: the expected calibration
error (10 equal-width bins) of its calibrated probability on the held-out rows - overall, per domain and
per victim architecture, target <= 0.05 each - and its pooled ROC-AUC beside the mean of its
per-architecture ROC-AUCs (target: pooled >= mean; SSIM's for comparison). Entries read "n/a" where the
committed scores predate the probability, domain and architecture columns.

To run it (one model per protocol and recipe; `domain=NAME` runs a single domain):

```bash
semsim evaluate DATASET --heldout all --recipe semantic --bootstrap 1000 --out runs/heldout
python -m semsim_metric.evaluation.heldout runs/heldout/scores   # both tables, from the per-row scores
```

What the summary (`heldout_summary.json`) and the scores files add:

| field / column | meaning |
|---|---|
| `parent`, `domain` | for a per-domain entry `<protocol> [domain=<d>]`: the protocol it is part of, and its domain (`null` otherwise) |
| `semsim_ece` | expected calibration error of `SemSim[recipe]`'s calibrated probability on the entry's rows (`null` without a calibration) |
| `semsim_ece_per_domain`, `semsim_ece_per_arch` | the same within each domain / victim architecture |
| `ece_target_met` | every one of these ECEs <= 0.05 |
| `semsim_auc_per_arch`, `semsim_auc_per_arch_mean` | SemSim's ROC-AUC within each victim architecture, and their mean (`semsim_auc` is the pooled one) |
| `ssim_auc_per_arch`, `ssim_auc_per_arch_mean` | the same for SSIM |
| `pooled_auc_met` | pooled SemSim ROC-AUC >= the mean of its per-architecture ones (`null` with fewer than two architectures) |
| scores columns `domain`, `victim_arch` | each row's `source_dataset` and victim architecture |
| scores column `p[SemSim[recipe]]` | each row's calibrated probability of "recognised" (not a metric column) |

The per-row values of every metric on every held-out split are committed in
[`docs/heldout/scores/`](heldout/scores/index.json); `python -m semsim_metric.evaluation.heldout
docs/heldout/scores` recomputes the summary table above from them (a test does, and checks the
published numbers and the default model's calibration against them).
"""


def _num(v) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:.3f}"


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
    per_domain = [s for s in summary if s.get("parent")]  # "<protocol> [domain=<d>]": subsets, not splits of their own
    summary = [s for s in summary if not s.get("parent")]
    verdict = ["", "Best recipe per held-out split (by ROC-AUC):", ""]
    for protocol in dict.fromkeys(s["protocol"] for s in summary):
        rows = sorted((s for s in summary if s["protocol"] == protocol), key=lambda s: -s["semsim_auc"])
        verdict.append(f"- {protocol}: `{rows[0]['recipe']}` {rows[0]['semsim_auc']:.3f} (SSIM {_num(rows[0]['ssim_auc'])}, "
                       f"best baseline {rows[0]['best_baseline']} {_num(rows[0]['best_baseline_auc'])})"
                       + ("; then " + ", ".join(f"`{r['recipe']}` {r['semsim_auc']:.3f}" for r in rows[1:])
                          if rows[1:] else ""))
    recipes = list(dict.fromkeys(s["recipe"] for s in summary))
    means = {r: sum(s["semsim_auc"] for s in summary if s["recipe"] == r) / sum(s["recipe"] == r for s in summary)
             for r in recipes}
    verdict += ["", "Mean SemSim ROC-AUC over the " + str(sum(s["recipe"] == recipes[0] for s in summary))
                + " evaluable splits: " + ", ".join(f"`{r}` {m:.3f}" for r, m in means.items()) + "."]
    if per_domain:
        verdict += ["", f"Per-domain entries (subsets of the splits above, not counted in the mean): {len(per_domain)}."]
    for recipe in recipes:
        mine = [s for s in summary if s["recipe"] == recipe]
        ece = [s["ece_target_met"] for s in mine if s.get("ece_target_met") is not None]
        pooled = [s["pooled_auc_met"] for s in mine if s.get("pooled_auc_met") is not None]
        if ece or pooled:
            verdict += ["", (f"`{recipe}`: expected calibration error <= 0.05 overall, per domain and per victim "
                             f"architecture on {sum(ece)} of {len(ece)} splits; pooled ROC-AUC >= the mean of the "
                             f"per-architecture ones on {sum(pooled)} of {len(pooled)} splits with two or more "
                             "architectures.")]
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
