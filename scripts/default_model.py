"""Ship, check and retrain the default model.

python scripts/default_model.py ship RUN_DIR [--name semsim-resnet18-fmnist-judged]
    copy a trained model folder into hub/<name>/ (fp16 weights, card regenerated from the stored
    weights, results.json) and into the package (src/semsim_metric/_bundled/<name>/)
python scripts/default_model.py check
    recompute the card's ROC-AUC table from the bundled weights and compare it with results.json
python scripts/default_model.py retrain OUT
    retrain with the recipe recorded in hub/<name>/training_info.json (same data, same seed)
python scripts/default_model.py train-all OUT --heldout runs/heldout-v6 --recipe colour
    after model selection on the held-out splits: train the recipe on every judged original (all
    splits), calibrate with the same recipe's unseen-originals held-out model (its distances on
    originals it never saw), and write a model folder to ship with `ship OUT --heldout ...`
python scripts/default_model.py folders [--name NAME ...]
    make every model folder under hub/ (or the named ones) exactly what its Hub repository holds, from
    the files it already has - nothing is trained or evaluated: config.json (the stored weights' dtype,
    auto_map, custom_pipelines), preprocessor_config.json, the model code for trust_remote_code
    (semsim_metric.models.remote_code) and the card's metadata (rewritten by the card writer: the
    training dataset's Hub id and, as model-index, the held-out results of the model's recipe in
    docs/heldout/heldout_summary.json, or its results.json; the card's text is kept); the default's
    files are copied into the package again (src/semsim_metric/_bundled/)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import torch

from semsim_metric.data.loading import load_folder_or_hub, undecoded
from semsim_metric.evaluation.protocol import compare_on_split
from semsim_metric.models import SemSimModel
from semsim_metric.training.model_card import rewrite_card_metadata, write_model_card

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "hub" / "semsim-judged-v3"
DEFAULT_NAME = "semsim-resnet18-fmnist-judged"
#: the published held-out summary (scripts/publish_heldout.py copies a run's heldout_summary.json there)
PUBLISHED_HELDOUT = ROOT / "docs" / "heldout" / "heldout_summary.json"
#: the files of a shipped model folder that the package bundles (the default model)
BUNDLED_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")

#: why held-out targets can be missed on this data (quoted in the card when they are)
LIMITS = (
    "What limits it: a few hundred training originals per image domain (CPU-only training: width 16, no "
    "larger backbone tried); labels from five model judges, not people, whose disagreement is label noise no "
    "metric can explain (kappa in the dataset READMEs); held-out victim architectures whose reconstructions are "
    "rarely recognised and look unlike those left for training; and model-level Kendall computed over only the "
    "few settings of a split, where one swapped pair moves Kendall by a large step."
)


def results(folder: Path) -> dict[str, dict[str, float]]:
    """ROC-AUC per split of the default dataset (in-sample for splits the model was trained on)."""
    model = SemSimModel.from_pretrained(folder)
    dsd = load_folder_or_hub(str(DATASET))
    return {split: compare_on_split(model, dsd[split]) for split in ("validation", "test")}


def all_rows_dataset(folder: Path) -> Path:
    """A dataset folder whose train split holds every row of the default dataset."""
    import datasets

    dsd = load_folder_or_hub(str(DATASET))
    merged = datasets.concatenate_datasets([dsd[s] for s in ("train", "validation", "test")])
    (folder / "data").mkdir(parents=True, exist_ok=True)
    merged.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder


def train_all(out: Path, recipe: str, heldout: Path) -> None:
    import datasets

    from semsim_metric.evaluation.heldout import build_protocol_splits, run_folder_name
    from semsim_metric.training.calibration import fit_calibration
    from semsim_metric.training.run import TrainOptions, train
    from semsim_metric.training.validation import pair_distances

    data = all_rows_dataset(out.parent / f"{out.name}-data")
    # resumable: a stage OUT already finished (or checkpointed) is not trained again
    options = TrainOptions(write_card=False, pretrain_cache=heldout / "pretrained", resume=True)
    result = train(data, out, recipe=recipe, options=options)
    # calibration: the same recipe trained without the unseen-originals test originals, on those originals
    selected = heldout / "models" / run_folder_name("unseen-originals", recipe)
    if not (selected / "model.safetensors").is_file():
        raise SystemExit(f"{selected} is missing: run the held-out evaluation with --recipe {recipe} first.")
    dsd = load_folder_or_hub(str(DATASET))
    raw = datasets.concatenate_datasets(list(dsd.values()))
    rows = list(undecoded(raw))
    splits, ev = build_protocol_splits(rows, "unseen-originals", seed=0)
    ids = {r["reconstruction_id"] for r in splits[ev]}
    held = raw.filter(lambda r: r["reconstruction_id"] in ids)
    distances = pair_distances(SemSimModel.from_pretrained(selected), held)
    model = SemSimModel.from_pretrained(out)
    model.config.calibration = fit_calibration(
        distances,
        held["recognized"],
        fitted_on=f"distances of the held-out model {selected.name} (same recipe, trained without these "
        f"originals) on the unseen-originals test rows of {DATASET.name} (annotator_kind: model-judge)",
    )
    if model.config.training_domain:  # name the dataset, not the temporary all-rows copy it was read from
        model.config.training_domain["description"] = (
            f"the annotated originals of hub/{DATASET.name} (all splits)"
        )
    model.save_pretrained(out)
    info = json.loads((out / "training_info.json").read_text())
    n_originals = len(set(raw["original_id"]))
    info["trained_on"] = (
        f"every row of hub/{DATASET.name} (train + validation + test splits, {n_originals} originals)"
    )
    (out / "training_info.json").write_text(json.dumps(info, indent=2))
    print(
        f"trained on all originals in {result.train_seconds:.0f} s -> {out}; calibration {model.config.calibration}"
    )


def heldout_note(heldout: Path, recipe: str) -> str:
    from semsim_metric.evaluation.heldout import summary_table

    summary = json.loads((heldout / "heldout_summary.json").read_text())
    mine = [s for s in summary if s["recipe"] == recipe]
    groups = {
        rep["title"].split(" (")[0]: len(rep["per_group"])
        for rep in json.loads((heldout / "report.json").read_text())
    }
    for s in mine:
        s.setdefault("groups", groups.get(s["protocol"], "the held-out"))

    def misses(s: dict) -> bool:
        auc_short = not s["semsim_auc"] >= s["ssim_auc"] + 0.05
        kendall_short = (
            s.get("semsim_kendall") is not None
            and s.get("ssim_kendall") is not None
            and s["semsim_kendall"] < s["ssim_kendall"]
        )
        return auc_short or kendall_short

    def num(v: object) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    missed = [s for s in mine if misses(s)]
    verdict = (
        "The target (ROC-AUC >= SSIM + 0.05 and Kendall >= SSIM's on every held-out split) is met."
        if not missed
        else (
            "**The target (ROC-AUC >= SSIM + 0.05 and Kendall >= SSIM's on every held-out split) is not met** on "
            + "; ".join(
                f"{s['protocol']} (ROC-AUC {num(s['semsim_auc'])} vs SSIM {num(s['ssim_auc'])}, Kendall "
                f"{num(s.get('semsim_kendall'))} vs {num(s.get('ssim_kendall'))} over {s.get('groups', 'the held-out')} "
                "settings)"
                for s in missed
            )
            + ". "
            + LIMITS
            + f" SemSim has the highest ROC-AUC of all metrics on "
            f"{sum(s['best_baseline_auc'] is not None and s['semsim_auc'] > s['best_baseline_auc'] for s in mine)} "
            f"of the {len(mine)} held-out splits."
        )
    )
    return (
        "**Held-out evaluation** (model selection; each row is a model of this recipe trained *without* the "
        "held-out rows, evaluated beside every baseline in one run; the ablations are in docs/heldout.md):\n\n"
        + summary_table(mine)
        + "\n\n"
        + verdict
        + "\n\n"
        + heldout_tables(heldout, recipe)
    )


def heldout_tables(heldout: Path, recipe: str) -> str:
    """Per held-out split: this recipe's model beside every baseline, with 95% bootstrap intervals over originals."""

    def ci(v: dict, key: str) -> str:
        c = v.get(f"{key}_ci")
        return f" [{c[0]:.3f}, {c[1]:.3f}]" if c else ""

    parts = []
    for rep in json.loads((heldout / "report.json").read_text()):
        names = [n for n in rep["image_level"] if not n.startswith("SemSim") or n == f"SemSim[{recipe}]"]
        names.sort(
            key=lambda n: (
                -(
                    rep["image_level"][n]["roc_auc"]
                    if rep["image_level"][n]["roc_auc"] == rep["image_level"][n]["roc_auc"]
                    else -1
                )
            )
        )
        lines = [
            f"*{rep['title']}* (model level over {len(rep['per_group'])} settings: victim x attack x iterations)",
            "",
            "| metric | ROC-AUC [95% CI] | Kendall [95% CI] | Spearman [95% CI] |",
            "|---|---|---|---|",
        ]
        for n in names:
            im, mo = rep["image_level"][n], rep["model_level"].get(n, {})
            kendall = f"{mo['kendall']:.3f}{ci(mo, 'kendall')}" if "kendall" in mo else "-"
            spearman = f"{mo['spearman']:.3f}{ci(mo, 'spearman')}" if "spearman" in mo else "-"
            lines.append(f"| {n} | {im['roc_auc']:.3f}{ci(im, 'roc_auc')} | {kendall} | {spearman} |")
        if rep.get("skipped"):
            lines += [
                "",
                "Not computable here: " + "; ".join(f"{k} ({v})" for k, v in rep["skipped"].items()) + ".",
            ]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def ship(run: Path, name: str, compare_with: Path | None = None, heldout: Path | None = None) -> None:
    target = ROOT / "hub" / name
    target.mkdir(parents=True, exist_ok=True)
    model = SemSimModel.from_pretrained(run)
    model.save_pretrained(target, dtype=torch.float16)
    info = json.loads((run / "training_info.json").read_text())
    info["dataset"] = f"hub/{DATASET.name}"
    if compare_with is not None:
        mine, other = results(run), results(compare_with)
        info["notes"] = [
            f"**Model selection.** This model (recipe `{info['recipe']['name']}`) was chosen over `{compare_with.name}` "
            f"by validation ROC-AUC ({mine['validation']['SemSim']:.3f} vs {other['validation']['SemSim']:.3f}; "
            f"test: {mine['test']['SemSim']:.3f} vs {other['test']['SemSim']:.3f}). It was trained on the train split (70% of the originals) only; retraining "
            "on all originals after selection was not done for lack of CPU time."
        ]
    if heldout is not None:
        info["notes"] = [
            heldout_note(heldout, info["recipe"]["name"]),
            "This model was trained on **every** original of the dataset after model selection, so the "
            "dataset's validation/test splits are training data for it: judge it by the held-out table "
            "above, not by in-sample numbers.",
        ]
    from semsim_metric.evaluation.sanity import TARGETS, run_sanity, sanity_table

    sanity = run_sanity(model)
    met = [r.domain for r in sanity if r.passed]
    info.setdefault("notes", []).append(
        "**Sanity in four image domains** (`python -m semsim_metric.evaluation.sanity --model <folder>`; originals never "
        "used in training, each scored at its own size; share of pairs that pass, target in the header):\n\n"
        + sanity_table(sanity)
        + "\n\n"
        + (
            "All checks are met in every domain."
            if len(met) == len(sanity)
            else f"All checks are met in: {', '.join(met) or 'no domain'}; not met in: "
            f"{', '.join(r.domain for r in sanity if not r.passed)} (targets: {TARGETS})."
        )
        + " The calibration behind `p_recognised` was fitted on model-judge answers for Fashion-MNIST and emoji-scenes "
        "reconstructions, so outside those domains only the ordering is meaningful."
    )
    info["notes"].append(invariance_note(model, target))
    (target / "training_info.json").write_text(json.dumps(info, indent=2))
    (target / "results.json").write_text(json.dumps(results(target), indent=2))
    summary = json.loads((heldout / "heldout_summary.json").read_text()) if heldout is not None else None
    write_card(target, name, summary)
    publish_folder(target)
    print(f"shipped {run} -> {target}")


def _card_facts(target: Path, name: str, summary: list[dict] | None) -> dict:
    """What the card of ``target`` states in its metadata: the training dataset, the held-out results of its recipe
    (``summary``: a heldout_summary.json) and, for a model not trained on every original, its results.json."""
    info = json.loads((target / "training_info.json").read_text())
    comparison = None
    if not info.get("trained_on", "").startswith("every row") and (target / "results.json").is_file():
        comparison = json.loads(
            (target / "results.json").read_text()
        )  # the default's are in-sample: not quoted
    heldout = [s for s in summary or [] if s["recipe"] == info["recipe"]["name"]] or None
    return {
        "info": info,
        "dataset": info.get("dataset") or f"hub/{DATASET.name}",
        "comparison": comparison,
        "heldout": heldout,
    }


def write_card(target: Path, name: str, summary: list[dict] | None) -> None:
    """Write the card of the shipped model folder ``target`` (``write_model_card``) from its ``training_info.json``,
    ``results.json`` and the held-out ``summary`` (its rows for the model's recipe become model-index results)."""
    facts = _card_facts(target, name, summary)
    info = facts["info"]
    splits = load_folder_or_hub(str(ROOT / facts["dataset"]))
    if info.get("trained_on", "").startswith("every row"):
        import datasets

        splits = {"train (all splits)": datasets.concatenate_datasets(list(splits.values()))}
    option = "" if name == DEFAULT_NAME else f" --name {name}"
    write_model_card(
        target,
        dataset=facts["dataset"],
        training_info=info,
        splits=splits,
        comparison=facts["comparison"],
        default_model=name == DEFAULT_NAME,
        repo_id=f"semsim-metric/{name}",
        heldout=facts["heldout"],
        reproduce=f"Reproduce: `python scripts/default_model.py check{option}` (recomputes the stored "
        f"`results.json` from the weights) or `python scripts/default_model.py retrain OUT{option}` "
        "(retrain with the recorded recipe and seed).",
    )


def rewrite_metadata(target: Path, name: str, summary: list[dict] | None) -> None:
    """Rewrite only the card's metadata (``rewrite_card_metadata``): its text is kept, since other scripts keep parts
    of it up to date (publish_results.py's Full evaluation, the republished robustness table)."""
    facts = _card_facts(target, name, summary)
    rewrite_card_metadata(
        target / "README.md",
        dataset=facts["dataset"],
        model_name=name,
        comparison=facts["comparison"],
        heldout=facts["heldout"],
    )


def publish_folder(target: Path) -> None:
    """Make the model folder ``target`` what its Hub repository holds, without touching the weights: ``config.json``
    rewritten by the current config class with the stored weights' dtype, ``preprocessor_config.json``, and the model
    code with ``auto_map`` and ``custom_pipelines`` (``semsim_metric.models.remote_code.export_remote_code``)."""
    from semsim_metric.models.image_processing_semsim import SemSimImageProcessor
    from semsim_metric.models.modeling_semsim import load_config, read_weights_header
    from semsim_metric.models.remote_code import export_remote_code

    config = load_config(target / "config.json")
    stored = {dtype for dtype, _ in read_weights_header(target / "model.safetensors").values()}
    names = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}
    floating = sorted(names[d] for d in stored if d in names)
    if len(floating) != 1:
        raise SystemExit(
            f"{target / 'model.safetensors'} stores weights in {floating or 'no floating dtype'}; "
            "expected one floating-point dtype."
        )
    config.dtype = floating[0]
    config.save_pretrained(str(target))
    SemSimImageProcessor.from_model_config(config).save_pretrained(str(target))
    export_remote_code(target)


def folders(names: list[str]) -> None:
    """``publish_folder`` and ``write_card`` for the named model folders under hub/ (default: all of them), with the
    published held-out summary; then the default's files are bundled again."""
    names = names or sorted(p.name for p in (ROOT / "hub").iterdir() if (p / "model.safetensors").is_file())
    summary = json.loads(PUBLISHED_HELDOUT.read_text())
    for name in names:
        target = ROOT / "hub" / name
        publish_folder(target)
        rewrite_metadata(target, name, summary)
        print(f"rewrote {target.relative_to(ROOT)}: config, preprocessor config, remote code, card metadata")
    if DEFAULT_NAME in names:
        bundle(DEFAULT_NAME)


INVARIANCE_PAGE = ROOT / "docs" / "invariance.md"
INVARIANCE_INTRO = """# Invariance and robustness

SemSim should move with what a person sees and ignore what a person ignores, and an optimiser should not be
able to satisfy it with an image that does not look like the original. Two checks measure both on the
shipped default model, in three image domains (Fashion-MNIST test images, emoji-scenes test images and
32x32 thumbnails of scikit-image photographs never used in training), each image at its own size:

- **Invariance** (`python -m semsim_metric.evaluation.invariance --n 200 --seed 1`): copies shifted by 1-2 px,
  contrast x0.6, brightness +-0.15, blurred (sigma 1 px at 32 px) or saved as JPEG quality 30 should be
  recognised (`p_recognised > 0.5`) for at least 95% of originals, and another original of another class should
  lie farther than each copy for at least 95%. Tested on the shipped weights by `tests/test_invariance.py`.
- **Robustness** (`python -m semsim_metric.evaluation.robustness --n 32`): 200 Adam steps of `SemSimLoss` from
  uniform noise toward an original (learning rates 0.01, 0.05, 0.1) must not reach `p_recognised > 0.5` while the
  image's SSIM to the original is below 0.3 ("fooled"). PGD inside an 8/255 ball around a far reconstruction
  (the original blurred and heavily noised) is reported without a target. Tested by `tests/test_robustness.py`.

How the default gets there (see [Training](training.md)): its network learns from label-free anchor pairs whose
recognised copies are exactly these changes (and pairs of them), in four image domains, pulled below the distance
at which unrelated images are pushed away; and since `v7` half of its embedding is the image's *layout* (its
16x16 thumbnail with the mean subtracted and the length set to 1, `layout_weight=0.5`; since `v8` of luminance
only, `layout_channels=luminance`), which brightness and contrast cannot move at all, blur and JPEG hardly move,
and noise cannot imitate: to lower that half of the distance an optimiser must give the image the original's light
and dark regions. It does **not** use
adversarial negatives: the `colour` recipe's (noise moved toward an
anchor by signed-gradient steps against the model being trained, then pushed away) made SemSim somewhat harder to
fool from noise but cost most of its agreement with the judges on a colour domain whose judgements it had not
seen ([How the recipe was chosen](heldout.md#how-the-networks-recipe-was-chosen-v6)), and agreeing with people is what SemSim
is for.

A stronger defence was measured and not shipped: a persistent pool of adversarial negatives refined a few steps
at every visit (`vote_adversarial_pool`) cut the share of noise that fools SemSim to 0-6% in the colour domains,
but dropped its agreement with the judges on colour reconstructions from 0.78 to 0.44-0.56 ROC-AUC
([How the recipe was chosen](heldout.md#how-the-networks-recipe-was-chosen-v6)). The judged data explain why: 62.8% of the
colour reconstructions the judges recognised have an SSIM below 0.3 to their original
(`python scripts/dataset_statistics.py`), so "not recognised unless SSIM >= 0.3" is not what the judges do on
noisy colour reconstructions, and a model trained to enforce it stops agreeing with them.

Shifts remain the main miss: the network part of the embedding is a strided CNN whose last feature map moves with
a 1-2 px shift. Averaging that map over neighbouring cells (`embedding=spatial_smooth`) was put through the nine
held-out splits after `v7`: it raised the share of 1-px shifted copies called recognised (64-76% instead of
17-61%) but lowered the ROC-AUC on the colour domain left out from 0.876 to 0.845 and the mean over the splits from
0.887 to 0.884, so it was not shipped ([the experiment](heldout.md#a-smoothed-embedding-for-shift-invariance-tried-after-v7-not-shipped)).

What `v8` traded: its luminance layout (0.3 of the squared distance) raised the agreement with the judges on colour
reconstructions (the mean ROC-AUC over the nine held-out splits from 0.890 to 0.899, the colour domain left out from
0.853 to 0.867; [How the layout was chosen](heldout.md#how-the-layout-was-chosen-v8)), and with less weight on the
thumbnail a 1-px shifted Fashion-MNIST item is recognised far more often (58.5% against 17%); it meets as many
invariance targets as `v7` (11 of 21), but it is easier to fool from noise in colour (see the next section). The
judges' agreement is what SemSim is for, and the held-out protocol chose it.

## What SemSim as a loss can and cannot promise

- It **can** be used as a perceptual term of a training or attack objective *next to* a pixel or SSIM loss: its
  gradients reach the inputs, and it moves little with contrast, brightness, mild blur and JPEG.
- It **cannot** be an objective on its own, least of all on colour or textured images: 200 Adam steps of
  `SemSimLoss` alone from uniform noise toward an original do reach `p_recognised > 0.5`, and the image then has
  the original's light and dark regions - in Fashion-MNIST it has really become like the original (SSIM >= 0.3)
  for 87-100% of originals - but in emoji scenes and photo thumbnails almost all keep so much noise that their SSIM
  stays below 0.3 (shares per domain and learning rate in the table below). In colour the luminance layout of `v8`
  says nothing about hue and holds 0.3 of the distance instead of half, so colour noise costs the optimiser less:
  `v7`, whose layout was in colour and half of the distance, was fooled 47-72% in emoji scenes, `v8` 91-97%; `v6`,
  without the layout, 38-100% in every domain. A pixel term keeps the
  optimiser near images that look like something.
- It **cannot** certify anything: SemSim is a neural network, and a strong enough optimiser (many steps, a
  loss with nothing else in it) finds images it scores as close that a person would not recognise. The shares in
  the table are measured for the attacks named there, not a bound. Do not use SemSim alone as the objective of an
  attack whose success you then judge with SemSim; report PSNR/SSIM/LPIPS beside it.
- Its probability (`p_recognised`) is calibrated on model-judge answers for Fashion-MNIST and emoji-scenes
  reconstructions; elsewhere only the ordering is meaningful.

"""


def invariance_note(model: SemSimModel, target: Path) -> str:
    """Invariance and robustness tables of ``model`` (written to the card, to docs/invariance.md and, as numbers,
    to ``target/checks.json``, which tests/test_invariance.py and tests/test_robustness.py hold the weights to)."""
    from semsim_metric.evaluation.invariance import invariance_table, run_invariance
    from semsim_metric.evaluation.robustness import robustness_table, run_robustness

    inv = run_invariance(model, n=200, seed=1)
    rob = run_robustness(model, n=32, seed=0)
    missed = [f"{r.domain} / {r.change}" for r in inv if not r.passed]
    fooled = [
        f"{r.domain} / {r.attack} ({r.shares['fooled']:.0%})"
        for r in rob
        if r.attack.startswith("Adam") and r.shares["fooled"] > 0
    ]
    text = (
        "**Invariance** (`python -m semsim_metric.evaluation.invariance --n 200 --seed 1`; share of originals):\n\n"
        + invariance_table(inv)
        + "\n\n"
        + (
            "Every invariance target is met."
            if not missed
            else f"Targets met for {len(inv) - len(missed)} of {len(inv)} (domain, change) pairs; not met: {', '.join(missed)}."
        )
        + "\n\n**Robustness** (`python -m semsim_metric.evaluation.robustness --n 32`):\n\n"
        + robustness_table(rob)
        + "\n\n"
        + (
            "No attack from noise fooled it."
            if not fooled
            else f"Fooled from noise (target 0%): {', '.join(fooled)}."
        )
    )
    INVARIANCE_PAGE.write_text(INVARIANCE_INTRO + "## The shipped default\n\n" + text + "\n")
    checks = {
        "invariance": [
            {"domain": r.domain, "change": r.change, "n": r.n, "shares": r.shares, "passed": r.passed}
            for r in inv
        ],
        "robustness": [{"domain": r.domain, "attack": r.attack, "n": r.n, "shares": r.shares} for r in rob],
    }
    (target / "checks.json").write_text(json.dumps(checks, indent=2))
    return text


def bundle(name: str) -> None:
    src, dst = ROOT / "hub" / name, ROOT / "src" / "semsim_metric" / "_bundled" / name
    dst.mkdir(parents=True, exist_ok=True)
    for f in BUNDLED_FILES:
        shutil.copy2(src / f, dst / f)
    print(f"bundled {src} -> {dst}")


def check(name: str) -> int:
    from semsim_metric.hub import bundled_model_path

    folder = (bundled_model_path() if name == DEFAULT_NAME else None) or ROOT / "hub" / name
    expected = json.loads((ROOT / "hub" / name / "results.json").read_text())
    got = results(folder)
    bad = [
        (s, m, expected[s][m], got[s].get(m))
        for s in expected
        for m in expected[s]
        if abs(expected[s][m] - got[s].get(m, float("nan"))) > 1e-4
    ]
    for split, table in got.items():
        print(split, {k: round(v, 4) for k, v in table.items()})
    if bad:
        print("MISMATCH:", bad)
        return 1
    print("the card's numbers are reproduced")
    return 0


def main() -> int:
    global DATASET
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        default=DATASET,
        help=f"the judged dataset folder (default {DATASET.relative_to(ROOT)})",
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ship")
    p.add_argument("run", type=Path)
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--no-bundle", action="store_true")
    p.add_argument("--compare-with", type=Path, default=None, help="model folder this one was selected over")
    p.add_argument("--heldout", type=Path, default=None, help="held-out run whose table goes into the card")
    a = sub.add_parser("train-all")
    a.add_argument("out", type=Path)
    a.add_argument("--heldout", type=Path, required=True, help="held-out run (model selection + calibration)")
    a.add_argument("--recipe", default="semantic")
    c = sub.add_parser("check")
    c.add_argument("--name", default=DEFAULT_NAME)
    f = sub.add_parser(
        "folders", help="rewrite configs, preprocessor configs, remote code and cards of hub/ models"
    )
    f.add_argument(
        "--name", action="append", default=[], help="a model folder under hub/ (default: every one)"
    )
    r = sub.add_parser("retrain")
    r.add_argument("out", type=Path)
    r.add_argument("--name", default=DEFAULT_NAME)
    r.add_argument(
        "--heldout",
        type=Path,
        default=ROOT / "runs" / "heldout-v6",
        help="held-out run for models trained on every original (calibration)",
    )
    args = parser.parse_args()
    DATASET = args.dataset.resolve()
    if args.cmd == "ship":
        ship(args.run, args.name, args.compare_with, args.heldout)
        if not args.no_bundle:
            bundle(args.name)
        return 0
    if args.cmd == "check":
        return check(args.name)
    if args.cmd == "folders":
        folders(args.name)
        return 0
    if args.cmd == "train-all":
        train_all(args.out, args.recipe, args.heldout)
        return 0
    from semsim_metric.training import Recipe, train

    info = json.loads((ROOT / "hub" / args.name / "training_info.json").read_text())
    if info.get("trained_on", "").startswith("every row"):
        train_all(args.out, info["recipe"]["name"], args.heldout)
        return 0
    recipe = Recipe.from_flat(info["recipe"])
    result = train(DATASET, args.out, recipe=recipe)
    print(result.validation, result.test)
    return 0


if __name__ == "__main__":
    sys.exit(main())
