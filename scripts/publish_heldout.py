"""Copy a held-out experiment report (from `semsim evaluate --heldout ... --out DIR`) into the docs.

    python scripts/publish_heldout.py runs/heldout-v8 v7-scores=runs/heldout-v7 v6-choice-scores=runs/heldout-final ...

Writes docs/heldout.md, its plots and the per-row scores under docs/heldout/ (trained models are not copied);
each NAME=RUN_DIR also publishes that run's per-row scores under docs/heldout/NAME/ (NAME=SCORES_DIR: a scores
folder itself, such as one written by scripts/merge_heldout_scores.py).
"""

import math
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GUIDE = """
Each row is a model trained *without* the held-out rows and evaluated beside every baseline in the same
run, on the same splits. The data is `hub/semsim-judged-v3`: greyscale Fashion-MNIST and colour emoji-scenes
reconstructions, judged by vision-language-model judges (not people). The four recipes share one network per
split (the `v7` network's recipe, `colour:embedding=spatial,vote_anchor_copy_centre=-1,vote_adversarial_share=0`)
and differ only in the finished model's layout (see
[Training](training.md#the-colour-recipe-several-image-domains-invariances-adversarial-negatives)):

- `...,layout_weight=0.5`: half of the embedding is the image's 16x16 colour thumbnail, mean-free and of unit
  length - the previous default (revision `v7`);
- `...,layout_weight=0.3|0.5|0.7,layout_channels=luminance`: the thumbnail holds light and dark only
  (0.299 R + 0.587 G + 0.114 B), with that share of the squared distance. **`layout_weight=0.3,
  layout_channels=luminance` is the shipped default (revision `v8`).** On greyscale images both layouts measure
  the same distances, so the Fashion-MNIST rows of a split score the same under both at weight 0.5.

The networks were trained afresh for this run, one split at a time (`runs/v9/<split>`, which also scored the
coarser layouts of the next section), and copied into `runs/heldout-v8/models/` under the first recipe's folder
name; the command above resumes them, or trains them from scratch when those folders are absent (about 4 minutes
per split on 2 CPU cores once the stage-1 backbone is cached, 14 minutes for that). Retrained, the `v7` recipe
does not give the `v7` run's numbers: its mean over the nine splits is 0.890 (0.887 in the `v7` run) and on the
colour domain left out 0.853 (0.876), the spread of training the same recipe twice. Compare recipes inside one
run, where they share their networks.

**How the layout was chosen**: by the mean SemSim ROC-AUC over the nine held-out splits (unseen originals, each
domain left out, each victim architecture left out, a defence and two attacks left out), printed below the table:
0.890 for the colour layout (`v7`), 0.899 / 0.901 / 0.895 for the luminance layout at weights 0.3 / 0.5 /
0.7 (SSIM 0.868), and with the sanity checks of the model trained on every original (below). At weight 0.5 the
luminance layout changes only colour rows, and helps on almost all of them: the colour domain left out 0.853 ->
0.878 (SSIM 0.877), the colour originals of the unseen-originals split 0.871 -> 0.902 (SSIM 0.826), the ResNet-20
victims 0.829 -> 0.882, and the colour rows of the LeNet, iDLG and DLG splits by 0.04-0.08; the colour rows of the
noise defence lose 0.024 (38 rows). Weight 0.3 keeps most of that (mean 0.899; colour domain left out 0.867,
ResNet-20 0.859) and is the one shipped, because at 0.5 the model trained on every original missed a sanity
check: a mildly noised copy (noise 0.03) of a synthetic shape was recognised for only 91.5% of originals (target
95%; 95.5% at 0.3). Shapes on flat colour backgrounds can have almost no light-dark contrast, and a luminance
thumbnail scaled to unit length then magnifies the noise. Gradient-inversion reconstructions of colour
images often have the right shapes in the wrong colours, and the judges recognise them by their shapes; the colour
thumbnail counted the wrong colours as a different layout. The choice among layout settings is in
[the next section](#how-the-layout-was-chosen-v8). `python -m semsim_metric.evaluation.heldout
docs/heldout/scores` prints both tables from the committed per-row scores.

Earlier runs are published beside: the `v7` run (the network alone and the colour layout at weights 0.3, 0.5,
0.7; `runs/heldout-v7`, `docs/heldout/v7-scores/`), coarser colour layouts (`runs/v9`,
`docs/heldout/layout-size-scores/`), the choice of `v6` among three `colour` variants (`runs/heldout-final`,
`docs/heldout/v6-choice-scores/`), `colour` on every victim architecture and with Fashion-MNIST left out
(`runs/heldout-v6`, `docs/heldout/colour-scores/`), the `v6` recipe on more axes (`runs/heldout-v6-more`,
`docs/heldout/v6-more-scores/`) and the smoothed embedding (`docs/heldout/smooth-embedding-scores/`);
`python -m semsim_metric.evaluation.heldout docs/heldout/<name>` prints each. The attacks gradinversion,
l2_gradient_matching and inverting_gradients were not held out (CPU time), and `defense=prune:70` is not
evaluable (its held-out rows all carry one label).

What "leaving a domain out" leaves out: every judged reconstruction and original of that domain. The domain's
*train* split still reaches stage 1 (its classes) and the label-free anchors, as it does for the shipped model;
a domain nobody has images of is a harder case that this split does not measure.

## How the layout was chosen (v8)

`v7` gave half of the embedding to a 16x16 colour thumbnail. Two ways to change that layout were put through the
nine held-out splits on `v7`'s networks (the layout is set after training, so each split's network is shared):
coarser thumbnails, which a 1-2 px shift moves less (`layout_size=8` or `4`, in `runs/v9`, one split at a time),
and a thumbnail of luminance only (`layout_channels=luminance`, in the run above). The idea of the luminance layout
came from screening layout settings on the held-out models of `runs/v9` without training
(`python scripts/screen_layouts.py runs/v9 --recipe <the v7 recipe>` prints the ROC-AUC of every channels x size x
weight per split); edge-magnitude and high-pass thumbnails were also tried there by hand and agreed somewhat more on
colour rows, but make a 2-px shifted copy about as far as another image, so they were not pursued. SemSim ROC-AUC
per held-out split (2026-12-07; per-row scores in `docs/heldout/scores/` and `docs/heldout/layout-size-scores/`;
a test recomputes this table from them):

| held out | colour 16, 0.5 (`v7`) | colour 8, 0.5 | colour 8, 0.7 | colour 4, 0.5 | colour 4, 0.7 | luminance 16, 0.3 (`v8`) | luminance 16, 0.5 | luminance 16, 0.7 | SSIM |
|---|---|---|---|---|---|---|---|---|---|
| unseen originals | 0.911 | 0.912 | 0.906 | 0.912 | 0.906 | **0.916** | 0.912 | 0.905 | 0.867 |
| emoji scenes (domain) | 0.853 | 0.844 | 0.845 | 0.830 | 0.824 | 0.867 | 0.878 | **0.879** | 0.877 |
| Fashion-MNIST (domain) | **0.894** | 0.892 | 0.891 | 0.890 | 0.889 | 0.893 | 0.894 | 0.893 | 0.871 |
| ResNet-20 victims | 0.829 | 0.799 | 0.766 | 0.753 | 0.688 | 0.859 | **0.882** | 0.862 | 0.816 |
| ReLU ConvNet victims | 0.946 | 0.945 | 0.941 | 0.944 | 0.938 | **0.949** | 0.947 | 0.942 | 0.939 |
| LeNet victims | 0.848 | 0.849 | 0.844 | 0.849 | 0.844 | **0.852** | 0.849 | 0.842 | 0.787 |
| noise defence | 0.917 | 0.916 | 0.913 | 0.911 | 0.912 | 0.916 | 0.914 | **0.919** | 0.906 |
| iDLG | 0.910 | 0.908 | 0.902 | 0.906 | 0.890 | **0.922** | 0.919 | 0.914 | 0.885 |
| DLG | 0.901 | 0.903 | 0.888 | 0.892 | 0.882 | **0.919** | 0.916 | 0.902 | 0.860 |
| **mean of the nine** | 0.890 | 0.885 | 0.877 | 0.876 | 0.863 | 0.899 | **0.901** | 0.895 | 0.868 |

```bash
R=colour:embedding=spatial,vote_anchor_copy_centre=-1,vote_adversarial_share=0
for p in domain=emoji_scenes unseen-originals victim_arch=resnet20 domain=fashion_mnist victim_arch=conv_relu \\
         victim_arch=lenet_sigmoid defense=noise:1e-3 attack=idlg attack=dlg; do
  semsim evaluate hub/semsim-judged-v3 --heldout $p --recipe $R,layout_weight=0.5 \\
    --recipe $R,layout_weight=0.5,layout_size=8 --recipe $R,layout_weight=0.7,layout_size=8 \\
    --recipe $R,layout_weight=0.5,layout_size=4 --recipe $R,layout_weight=0.7,layout_size=4 \\
    --bootstrap 1000 --out runs/v9/$(echo $p | tr '=:' '__')
done
python scripts/merge_heldout_scores.py docs/heldout/layout-size-scores runs/v9/*
```

Coarser thumbnails lose: they blur exactly the detail that tells a recognisable colour reconstruction from an
unrecognisable one (the colour domain left out 0.853 -> 0.830-0.845, ResNet-20 0.829 -> 0.688-0.799). The luminance
layout wins on the mean and on every split with colour rows except the noise defence; on Fashion-MNIST rows it
changes nothing. Weight 0.5 has the best mean (0.901); 0.3 is close (0.899) and ahead on five splits by at most
0.004, while 0.5 is ahead where generalising to colour is hardest (ResNet-20 victims by 0.023; the colour domain left
out by 0.011). The default ships 0.3, the weight at which the model trained on every original keeps every sanity
check (see above).

## How the network's recipe was chosen (v6)

This screen chose the network that `v6` and `v7` share; it was measured before the gate's straight-through clamp
(so its robustness columns are the old model's). Candidates were trained on the train split of `hub/semsim-judged-v3` (same stage-1 cache, so they differ
only in stage 2 and the embedding) and screened on the validation + test originals none of them saw, per
domain, by `python scripts/screen_recipes.py runs/<candidate> ...`, and by the invariance and robustness
checks (`python -m semsim_metric.evaluation.invariance --n 100 --model runs/<candidate>`,
`python -m semsim_metric.evaluation.robustness --n 16 --model runs/<candidate>`). Recipe strings are relative to
the `colour` recipe as shipped:

| candidate | recipe | ROC-AUC all / emoji scenes / Fashion-MNIST | invariance checks met (of 21) | Adam-from-noise fooled (of 9 domain x lr, n=16) |
|---|---|---|---|---|
| c1 | `colour:embedding=spatial,vote_anchor_copy_centre=-1,vote_balance_domains=0` | 0.891 / 0.780 / 0.904 | 9 | 9 fooled, 38-100% |
| c2 | c1 + `vote_anchor_copy_centre=0.3,vote_adversarial_pool=512,vote_adversarial_steps=3` | 0.860 / 0.508 / 0.896 | 10 | 3 at 0%, the others 6-69% |
| c3 | c2 + `embedding=spatial_smooth` | 0.859 / 0.438 / 0.898 | 10 | 3 at 0%, the others 6-50% |
| c4 | c1 + `vote_adversarial_pool=512,vote_adversarial_steps=3` | 0.864 / 0.557 / 0.896 | - | - |
| c5 | c1 + `vote_anchor_copy_centre=0.3` | 0.889 / 0.772 / 0.898 | 12 | 1 at 0%, the others 25-100% |
| c6 | c1 + `vote_balance_domains=0.5` | 0.896 / 0.803 / 0.903 | - | - |
| SSIM | | 0.859 / 0.866 / 0.861 | | |

What this says:

- **A persistent pool of adversarial negatives makes SemSim much harder to fool from noise but costs the colour
  domain most of its agreement with the judges** (c2-c4: emoji-scenes ROC-AUC 0.44-0.56). The reason is in the
  data: of the colour reconstructions the judges recognised, 62.8% have an SSIM below 0.3 to their original
  (`python scripts/dataset_statistics.py`; 0.5% in Fashion-MNIST), so "pushed away unless SSIM >= 0.3" teaches the
  model to reject exactly the noisy reconstructions people-like judges still read. The shipped recipe keeps only
  fresh 5-step adversarial negatives (no pool) and states the robustness it has (see
  [Invariance and robustness](invariance.md)).
- Pulling copies people ignore below 0.3 (c5) raised the invariance checks met from 9 (c1) to 12 of 21 at no cost in
  ROC-AUC on these originals; smoothing the embedding (c3 vs c2) fixed most 2-px shifts; balancing the domains'
  rows (c6) raised the emoji-scenes ROC-AUC from 0.780 to 0.803. `colour` combines c5, c6 and the smoothed
  embedding. The screen is on the same originals as the unseen-originals split, so it is not an independent
  estimate; the held-out protocol above then compared `colour` with two simpler variants, and leaving the
  colour domain out showed that the adversarial negatives (and, less, the stricter copy pull with the smoothed
  embedding) cost agreement on a domain without judgements - so the default drops them.

## A smoothed embedding for shift invariance (tried after v7, not shipped)

The network part of `v7` moves with small shifts (see [Invariance and robustness](invariance.md)), and
`embedding=spatial_smooth` (each cell of the last feature map averaged with its 3x3 neighbours before it is
flattened) is the embedding that pools over small shifts. Without the adversarial negatives and the stricter copy
pull that it came with in `colour` (see above), it had not been through the held-out protocol. It was, on the same
nine splits (same seed, so the same held-out rows as the `v7` run and the table above), one split at a time:

```bash
for p in domain=emoji_scenes unseen-originals victim_arch=resnet20 domain=fashion_mnist victim_arch=conv_relu \\
         victim_arch=lenet_sigmoid defense=noise:1e-3 attack=idlg attack=dlg; do
  semsim evaluate hub/semsim-judged-v3 --heldout $p --recipe colour:vote_anchor_copy_centre=-1,vote_adversarial_share=0 \\
    --recipe colour:vote_anchor_copy_centre=-1,vote_adversarial_share=0,layout_weight=0.3 \\
    --recipe colour:vote_anchor_copy_centre=-1,vote_adversarial_share=0,layout_weight=0.5 \\
    --bootstrap 1000 --out runs/smooth/$(echo $p | tr '=:' '__')
done
python scripts/merge_heldout_scores.py docs/heldout/smooth-embedding-scores runs/smooth/*
python scripts/merge_heldout_scores.py runs/side-by-side docs/heldout/v7-scores docs/heldout/smooth-embedding-scores
python -m semsim_metric.evaluation.heldout runs/side-by-side   # both recipes' tables, every baseline
```

SemSim ROC-AUC on each held-out split (2026-12-07, about 4 minutes per split on 2 CPU cores once the stage-1
backbone is cached; per-row scores in `docs/heldout/smooth-embedding-scores/`):

| held out | `v7` network alone | `v7` (layout 0.5) | smoothed, alone | smoothed, layout 0.3 | smoothed, layout 0.5 | SSIM |
|---|---|---|---|---|---|---|
| unseen originals | 0.917 | 0.912 | 0.913 | 0.912 | 0.908 | 0.867 |
| emoji scenes (domain) | 0.860 | **0.876** | 0.778 | 0.828 | 0.845 | 0.877 |
| Fashion-MNIST (domain) | 0.893 | 0.896 | 0.893 | 0.897 | 0.897 | 0.871 |
| ResNet-20 victims | 0.664 | 0.766 | 0.704 | 0.780 | **0.816** | 0.816 |
| ReLU ConvNet victims | 0.945 | 0.944 | 0.946 | 0.947 | 0.945 | 0.939 |
| LeNet victims | 0.856 | 0.852 | 0.848 | 0.848 | 0.844 | 0.787 |
| noise defence | 0.905 | 0.916 | 0.909 | 0.912 | 0.909 | 0.906 |
| iDLG | 0.917 | 0.915 | 0.911 | 0.913 | 0.905 | 0.885 |
| DLG | 0.917 | 0.903 | 0.899 | 0.892 | 0.890 | 0.860 |
| **mean of the nine** | 0.875 | **0.887** | 0.867 | 0.881 | 0.884 | 0.868 |

The smoothed embedding loses where it matters most for a default that will meet image domains it never saw: on
the colour domain left out it falls from 0.876 to 0.845 (network alone 0.860 -> 0.778), and on the colour originals
of the unseen-originals split from 0.890 to 0.857. Its one clear gain is the ResNet-20 split (0.766 -> 0.816, 80
rows: a 95% interval about 0.4 wide). And the shift invariance it buys is partial: its unseen-originals model
(layout 0.5; `python -m semsim_metric.evaluation.invariance --n 200 --seed 1 --model <that folder>`) calls a 1-px
shifted copy recognised for 64% / 76% / 64% of Fashion-MNIST / emoji-scenes / photo originals and a 2-px one for
0% / 17% / 49% (the shipped `v7`, trained on all rows: 17% / 61% / 60% and 0% / 6% / 40%), far from the 95%
target, and meets 12 of the 21 invariance targets (`v7`: 11). Averaging the last feature map blurs colour layout
detail that separates a recognisable emoji reconstruction from an unrecognisable one; the shift invariance bought
that way costs more agreement than it buys. The default stays `v7`; making the network itself shift-invariant
(anti-aliased downsampling, shifted copies as training anchors with the plain spatial embedding) is the open
direction.

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
    from semsim_metric.evaluation.heldout import SCORES_INDEX

    # further held-out runs (or merged scores folders) whose per-row scores are published beside (NAME=DIR)
    for extra in sys.argv[2:]:
        name, _, folder = extra.partition("=")
        scores = Path(folder) if (Path(folder) / SCORES_INDEX).is_file() else Path(folder) / "scores"
        shutil.copytree(scores, dst / name)
    import json

    summary = json.loads((src / "heldout_summary.json").read_text())
    per_domain = [
        s for s in summary if s.get("parent")
    ]  # "<protocol> [domain=<d>]": subsets, not splits of their own
    summary = [s for s in summary if not s.get("parent")]
    verdict = ["", "Best recipe per held-out split (by ROC-AUC):", ""]
    for protocol in dict.fromkeys(s["protocol"] for s in summary):
        rows = sorted((s for s in summary if s["protocol"] == protocol), key=lambda s: -s["semsim_auc"])
        verdict.append(
            f"- {protocol}: `{rows[0]['recipe']}` {rows[0]['semsim_auc']:.3f} (SSIM {_num(rows[0]['ssim_auc'])}, "
            f"best baseline {rows[0]['best_baseline']} {_num(rows[0]['best_baseline_auc'])})"
            + (
                "; then " + ", ".join(f"`{r['recipe']}` {r['semsim_auc']:.3f}" for r in rows[1:])
                if rows[1:]
                else ""
            )
        )
    recipes = list(dict.fromkeys(s["recipe"] for s in summary))
    means = {
        r: sum(s["semsim_auc"] for s in summary if s["recipe"] == r) / sum(s["recipe"] == r for s in summary)
        for r in recipes
    }
    verdict += [
        "",
        "Mean SemSim ROC-AUC over the "
        + str(sum(s["recipe"] == recipes[0] for s in summary))
        + " evaluable splits: "
        + ", ".join(f"`{r}` {m:.3f}" for r, m in means.items())
        + ".",
    ]
    if per_domain:
        verdict += [
            "",
            f"Per-domain entries (subsets of the splits above, not counted in the mean): {len(per_domain)}.",
        ]
    for recipe in recipes:
        mine = [s for s in summary if s["recipe"] == recipe]
        ece = [s["ece_target_met"] for s in mine if s.get("ece_target_met") is not None]
        pooled = [s["pooled_auc_met"] for s in mine if s.get("pooled_auc_met") is not None]
        if ece or pooled:
            verdict += [
                "",
                (
                    f"`{recipe}`: expected calibration error <= 0.05 overall, per domain and per victim "
                    f"architecture on {sum(ece)} of {len(ece)} splits; pooled ROC-AUC >= the mean of the "
                    f"per-architecture ones on {sum(pooled)} of {len(pooled)} splits with two or more "
                    "architectures."
                ),
            ]
    sanity_rows = sanity_of_heldout_models(src, recipes)
    if sanity_rows:
        verdict += [
            "",
            "Sanity of each recipe's unseen-originals model (`python -m semsim_metric.evaluation.sanity "
            "--model <folder>`, 200 originals per domain never used in training):",
            "",
        ] + sanity_rows
    text = (src / "report.md").read_text().replace("](", "](heldout/")
    text = text.replace("\n## ", "\n" + "\n".join(verdict) + "\n\n## ", 1)
    command = (
        (src / "command.txt").read_text().strip().replace(str(ROOT) + "/", "")
    )  # by `semsim evaluate --heldout`
    header = (
        "# Held-out evaluation\n\nGenerated by:\n\n```bash\n"
        + command
        + f"\npython scripts/publish_heldout.py {' '.join(sys.argv[1:])}\n```\n"
        + GUIDE
    )
    (ROOT / "docs" / "heldout.md").write_text(text.replace("# SemSim agreement report", header, 1))
    print(ROOT / "docs" / "heldout.md")


if __name__ == "__main__":
    main()
