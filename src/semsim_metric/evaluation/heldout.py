"""Generalisation experiments: train SemSim without some victims or attacks, evaluate on them.

A protocol names what is held out:

* ``unseen-originals`` - the plain split by original (test originals, every setting);
* ``victim_arch=<arch>`` / ``victim=<name>[+<name>...]`` - every setting of those victims;
* ``attack=<name>`` - every setting of that attack;
* ``defense=<name>`` - every victim trained with that defence (e.g. ``noise:1e-3``, ``prune:70``);
* ``all`` - every one of these axes the data has (see ``expand_protocols``).

For each protocol the dataset's rows are re-split by original (seeded); held-out rows of training and
validation originals are dropped, held-out rows of test originals form the ``test_victim`` /
``test_attack`` split (so no original is in two splits). SemSim is trained on the rest with each recipe
and evaluated with the paper's protocol beside every baseline, in one run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.hub_folder import DatasetCard, write_dataset_folder
from ..data.loading import load_folder_or_hub, undecoded
from ..data.splits import split_by_original
from ..functional import freeze
from ..models import SemSimModel
from ..training.run import train
from .protocol import evaluate_dataset
from .report import EvaluationReport
from .writer import write_report

__all__ = ["HeldoutResult", "build_protocol_splits", "expand_protocols", "run_folder_name", "run_heldout", "slug",
           "summary_from_scores", "summary_table", "write_scores"]


@dataclass
class HeldoutResult:
    protocol: str
    recipe: str
    report: EvaluationReport
    values: dict[str, np.ndarray]
    recognized: np.ndarray


def build_protocol_splits(rows: list[dict[str, Any]], protocol: str, *, seed: int = 0,
                          fractions: dict[str, float] | None = None) -> tuple[dict[str, list], str]:
    """Splits for one protocol; returns ``(splits, name of the evaluation split)``."""
    fractions = fractions or {"train": 0.7, "validation": 0.1, "test": 0.2}
    if protocol == "unseen-originals":
        splits, _ = split_by_original(rows, fractions=fractions, seed=seed)
        return splits, "test"
    key, _, value = protocol.partition("=")
    if key == "attack":
        splits, _ = split_by_original(rows, fractions=fractions, seed=seed, holdout_attacks=value.split("+"))
        return splits, "test_attack"
    if key == "victim":
        victims = value.split("+")
    elif key == "victim_arch":
        victims = sorted({r["victim"] for r in rows if r["victim_arch"] == value})
    elif key == "victim_train_epochs":
        victims = sorted({r["victim"] for r in rows if str(r["victim_train_epochs"]) == value})
    elif key == "defense":
        victims = sorted({r["victim"] for r in rows if r["defense"] == value})
    else:
        raise ValueError(f"unknown protocol {protocol!r}: use unseen-originals, victim=, victim_arch=, "
                         "victim_train_epochs=, defense= or attack= (or 'all').")
    if not victims:
        raise ValueError(f"protocol {protocol!r} selects no rows.")
    splits, _ = split_by_original(rows, fractions=fractions, seed=seed, holdout_victims=victims)
    return splits, "test_victim"


def expand_protocols(rows: list[dict[str, Any]], protocols: Sequence[str]) -> list[str]:
    """Replace ``"all"`` by every axis the data has: unseen originals, each victim architecture, each attack
    and each training defence (other protocols are kept as given, in order).

    Examples:
        >>> rows = [{"victim_arch": "a", "attack": "x", "defense": "none"}, {"victim_arch": "b", "attack": "x",
        ...          "defense": "noise:1e-3"}]
        >>> expand_protocols(rows, ["all"])
        ['unseen-originals', 'victim_arch=a', 'victim_arch=b', 'attack=x', 'defense=noise:1e-3']
    """
    out: list[str] = []
    for protocol in protocols:
        if protocol != "all":
            out.append(protocol)
            continue
        out.append("unseen-originals")
        out += [f"victim_arch={v}" for v in sorted({r["victim_arch"] for r in rows})]
        out += [f"attack={a}" for a in sorted({r["attack"] for r in rows})]
        out += [f"defense={d}" for d in sorted({r["defense"] for r in rows} - {"none", ""})]
    return list(dict.fromkeys(out))


def run_heldout(
    dataset: str | Path,
    protocols: Sequence[str],
    recipes: Sequence[str],
    out: str | Path,
    *,
    group_by: str = "victim,attack,attack_iterations",
    n_boot: int = 1000,
    seed: int = 0,
    baselines: Sequence[str] | None = None,
    **overrides: Any,
) -> list[HeldoutResult]:
    """Train one model per (protocol, recipe), evaluate on the held-out rows, write one report into ``out``."""
    out = Path(out)
    dsd = undecoded(load_folder_or_hub(dataset))
    rows = [r for split in dsd.values() for r in split]
    results: list[HeldoutResult] = []
    skipped: dict[str, str] = {}
    for protocol in expand_protocols(rows, protocols):
        splits, eval_split = build_protocol_splits(rows, protocol, seed=seed)
        labels = {bool(r["recognized"]) for r in splits[eval_split]}
        if len(labels) < 2:
            skipped[protocol] = (f"all {len(splits[eval_split])} held-out rows are "
                                 f"{'recognised' if labels == {True} else 'unrecognised'}: no metric can be ranked "
                                 "against the annotators there (ROC-AUC undefined); no model trained")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_dataset_folder(splits, Path(tmp) / "ds", DatasetCard(title=protocol, summary=protocol))
            eval_ds = load_folder_or_hub(folder, eval_split)
            models = {}
            for recipe in recipes:
                run_dir = out / "models" / run_folder_name(protocol, recipe)
                result = train(folder, run_dir, recipe=recipe, write_card=False, resume=True,
                               pretrain_cache=out / "pretrained", **overrides)
                models[recipe] = (freeze(SemSimModel.from_pretrained(run_dir)), result.train_seconds)
            named = {f"SemSim[{r}]": m for r, (m, _) in models.items()}
            title = f"{protocol} ({eval_split}, {len(eval_ds)} rows)"
            report, values = evaluate_dataset(eval_ds, named, baselines=baselines, group_by=group_by,
                                              title=title, n_boot=n_boot, seed=seed, progress=False)
            write_scores(out / "scores", protocol, title, eval_ds, values, group_by, report.skipped, recipes)
            report.notes.update({f"training time of SemSim[{r}]": f"{s:.0f} s (stage 1 counted as recorded when "
                                 "reused from the cache)" for r, (_, s) in models.items()})
            y = np.asarray(eval_ds["recognized"], dtype=bool)
            for recipe in recipes:
                results.append(HeldoutResult(protocol, recipe, report, values, y))
    reports = list({id(r.report): r.report for r in results}.values())
    values = {r.report.title: (r.values, r.recognized) for r in results}
    intro = _summary(results) + "".join(f"\n\n- **{p} not evaluated**: {why}." for p, why in skipped.items())
    write_report(reports, out, values=values, intro=intro)
    (out / "heldout_summary.json").write_text(json.dumps(_summary_dict(results), indent=2))
    (out / "heldout_skipped.json").write_text(json.dumps(skipped, indent=2))
    return results


def slug(text: str) -> str:
    """``text`` with every character that is not a letter or digit replaced by ``_`` (safe as a folder name).

    Examples:
        >>> slug("victim_arch=conv_relu")
        'victim_arch_conv_relu'
    """
    return "".join(c if c.isalnum() else "_" for c in text)


def run_folder_name(protocol: str, recipe: str) -> str:
    """Folder (under ``<out>/models``) of the model trained for ``protocol`` with ``recipe`` (both slugged:
    a recipe string never reaches the file system as it is).

    Examples:
        >>> run_folder_name("victim_arch=resnet20", "../../x")
        'victim_arch_resnet20________x'
    """
    return f"{slug(protocol)}__{slug(recipe)}"


SCORES_INDEX = "index.json"


def write_scores(folder: Path, protocol: str, title: str, ds: Any, values: dict[str, np.ndarray], group_by: str,
                 skipped: dict[str, str], recipes: Sequence[str]) -> Path:
    """Write the per-row values of every metric on one held-out split (``<folder>/<protocol>.csv.gz``) and
    record it in ``<folder>/index.json``: enough to recompute every held-out table without images or models
    (``summary_from_scores``)."""
    import csv
    import gzip

    from .protocol import group_keys

    folder.mkdir(parents=True, exist_ok=True)
    name = f"{slug(protocol)}.csv.gz"
    groups = group_keys(ds, group_by)
    metrics = list(values)
    with gzip.open(folder / name, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["reconstruction_id", "original_id", "group", "recognized", *metrics])
        for i, (rid, oid, rec) in enumerate(zip(ds["reconstruction_id"], ds["original_id"], ds["recognized"])):
            w.writerow([rid, oid, groups[i], int(bool(rec)), *(repr(float(values[m][i])) for m in metrics)])
    index_path = folder / SCORES_INDEX
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    index = [e for e in index if e["protocol"] != protocol]
    index.append({"protocol": protocol, "title": title, "file": name, "group_by": group_by, "recipes": list(recipes),
                  "skipped": skipped})
    index_path.write_text(json.dumps(index, indent=2))
    return folder / name


def summary_from_scores(folder: str | Path, *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Recompute the held-out summary (``heldout_summary.json`` entries) from the per-row values written by
    ``write_scores``: the published tables are reproducible from these files alone.

    Examples:
        >>> summary = summary_from_scores("results/heldout", n_boot=0)  # doctest: +SKIP
    """
    import csv
    import gzip

    from .protocol import evaluate_table

    folder = Path(folder)
    results = []
    for entry in json.loads((folder / SCORES_INDEX).read_text()):
        with gzip.open(folder / entry["file"], "rt", newline="") as fh:
            rows = list(csv.DictReader(fh))
        fixed = {"reconstruction_id", "original_id", "group", "recognized"}
        metrics = [c for c in rows[0] if c not in fixed]
        values = {m: np.array([float(r[m]) for r in rows]) for m in metrics}
        y = np.array([r["recognized"] == "1" for r in rows])
        report = evaluate_table(values, y, np.array([r["group"] for r in rows]), np.array([r["original_id"] for r in rows]),
                                title=entry["title"], group_by=entry["group_by"], n_boot=n_boot, seed=seed,
                                skipped=entry.get("skipped"))
        results += [HeldoutResult(entry["protocol"], recipe, report, values, y) for recipe in entry["recipes"]]
    return _summary_dict(results)


def _summary_dict(results: list[HeldoutResult]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        name = f"SemSim[{r.recipe}]"
        ssim = r.report.image.get("SSIM", {})
        others = {k: v for k, v in r.report.image.items() if not k.startswith("SemSim")}
        finite = {k: v for k, v in others.items() if v["roc_auc"] == v["roc_auc"]}
        best = max(finite, key=lambda k: finite[k]["roc_auc"]) if finite else None
        out.append({"protocol": r.protocol, "recipe": r.recipe, "rows": r.report.n, "groups": len(r.report.per_group),
                    "semsim_auc": r.report.image[name]["roc_auc"], "semsim_auc_ci": r.report.image[name].get("roc_auc_ci"),
                    "ssim_auc": ssim.get("roc_auc"), "ssim_auc_ci": ssim.get("roc_auc_ci"),
                    "psnr_auc": r.report.image.get("PSNR", {}).get("roc_auc"),
                    "best_baseline": best, "best_baseline_auc": others[best]["roc_auc"] if best else None,
                    "semsim_kendall": r.report.model[name].get("kendall"),
                    "ssim_kendall": r.report.model.get("SSIM", {}).get("kendall")})
    return out


def summary_table(summary: list[dict[str, Any]]) -> str:
    """The held-out target table (Markdown) from ``heldout_summary.json`` entries."""
    def num(v: Any) -> str:
        return "n/a" if v is None or v != v else f"{v:.3f}"

    lines = ["| protocol | recipe | rows | SemSim ROC-AUC [95% CI] | SSIM ROC-AUC | SemSim - SSIM | AUC target met "
             "| best baseline | settings | SemSim Kendall | SSIM Kendall | Kendall target met |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summary:
        gap = s["semsim_auc"] - s["ssim_auc"] if s.get("ssim_auc") is not None else float("nan")
        ci = s.get("semsim_auc_ci")
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] == ci[0] else ""
        best = f"{s['best_baseline']} {s['best_baseline_auc']:.3f}" if s.get("best_baseline") else "-"
        sk, kk = s.get("semsim_kendall"), s.get("ssim_kendall")
        k_met = "n/a (< 3 settings)" if sk is None or kk is None else ("yes" if sk >= kk else "no")
        lines.append(f"| {s['protocol']} | {s['recipe']} | {s.get('rows', '')} | {num(s['semsim_auc'])}{ci_text} | "
                     f"{num(s['ssim_auc'])} | {gap:+.3f} | {'yes' if gap >= 0.05 else 'no'} | {best} | "
                     f"{s.get('groups', '')} | {num(sk)} | {num(kk)} | {k_met} |")
    return "\n".join(lines)


def _summary(results: list[HeldoutResult]) -> str:
    return ("Target: SemSim ROC-AUC >= SSIM + 0.05 and model-level Kendall >= SSIM's on every held-out split.\n\n"
            + summary_table(_summary_dict(results)))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m semsim_metric.evaluation.heldout SCORES_FOLDER``: the held-out summary table from the
    committed per-row values (see ``summary_from_scores``)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("scores", type=Path, help="folder with index.json and <protocol>.csv.gz files")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    summary = summary_from_scores(args.scores, n_boot=args.bootstrap)
    print(summary_table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
