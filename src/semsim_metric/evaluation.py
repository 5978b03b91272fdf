"""Agreement of SemSim and baseline metrics with annotators' judgements (the paper's protocol).

* **Per image**: ROC-AUC of each metric as a score for "recognised" and accuracy at the best threshold,
  with bootstrap 95% intervals over originals.
* **Per victim (model level)**: Spearman, Kendall and Pearson correlation between a victim's mean metric
  and its recognised share, with p-values and bootstrap 95% intervals over originals.
* **Contradictions**: how often two metrics order the same pair of reconstructions in opposite ways.

Every metric's direction is declared (:class:`MetricSpec`); all statistics use the leakage-oriented
value (higher = more leakage), so a positive correlation or an AUC above 0.5 means agreement with the
annotators. The same protocol runs on metric values computed here (:func:`evaluate_dataset`) or already
present in a table (:func:`evaluate_table`).
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BASELINES",
    "EvaluationReport",
    "MetricSpec",
    "compare_on_split",
    "evaluate_dataset",
    "evaluate_table",
    "image_level",
    "model_level",
    "pair_metric_values",
    "write_report",
]


@dataclass(frozen=True)
class MetricSpec:
    """A full-reference metric and its direction.

    Args:
        name: display name.
        fn: ``fn(preds, target)`` on float images in [0, 1] -> per-pair values ``(N,)``; ``None`` for
            metrics that are only read from tables.
        higher_means_more_leakage: True for similarities (PSNR, SSIM), False for distances (MSE, SemSim).
        min_size: smallest image side the metric accepts.
        needs_weights: file names in the torch hub cache that a learned metric needs (never downloaded here).
    """

    name: str
    fn: Callable[[Tensor, Tensor], Tensor] | None
    higher_means_more_leakage: bool
    min_size: int = 1
    needs_weights: tuple[str, ...] = ()

    def orient(self, values: np.ndarray) -> np.ndarray:
        """Leakage-oriented values (higher = more leakage)."""
        return values if self.higher_means_more_leakage else -values


def _tm(name: str, **kw: Any) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        import torchmetrics.functional.image as tmf

        return getattr(tmf, name)(x, y, **kw)

    return fn


def _piq(name: str, **kw: Any) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        import piq

        return getattr(piq, name)(x, y, data_range=1.0, reduction="none", **kw)

    return fn


def _mse(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).pow(2).flatten(1).mean(1)


def _psnr(x: Tensor, y: Tensor) -> Tensor:
    return 10 * torch.log10(1.0 / _mse(x, y).clamp_min(1e-10))


def _learned(cls_name: str) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        import piq

        return getattr(piq, cls_name)(reduction="none")(x, y)

    return fn


BASELINES: dict[str, MetricSpec] = {
    "PSNR": MetricSpec("PSNR", _psnr, True),
    "SSIM": MetricSpec("SSIM", _tm("structural_similarity_index_measure", data_range=1.0, reduction="none"), True),
    "MS-SSIM": MetricSpec("MS-SSIM", _piq("multi_scale_ssim"), True, min_size=161),
    "MSE": MetricSpec("MSE", _mse, False),
    "UQI": MetricSpec("UQI", lambda x, y: _tm("universal_image_quality_index", reduction="none")(x, y).flatten(1).mean(1),
                      True),
    "GMSD": MetricSpec("GMSD", _piq("gmsd"), False),
    "MS-GMSD": MetricSpec("MS-GMSD", _piq("multi_scale_gmsd", chromatic=False), False, min_size=64),
    "VIF-p": MetricSpec("VIF-p", _piq("vif_p"), True, min_size=41),
    "FSIM": MetricSpec("FSIM", _piq("fsim", chromatic=False), True),
    "HaarPSI": MetricSpec("HaarPSI", _piq("haarpsi"), True),
    "MDSI": MetricSpec("MDSI", _piq("mdsi"), False),
    "DSS": MetricSpec("DSS", _piq("dss"), True),
    "SR-SIM": MetricSpec("SR-SIM", _piq("srsim", chromatic=False), True, min_size=40),
    "LPIPS": MetricSpec("LPIPS", _learned("LPIPS"), False, needs_weights=("lpips_weights.pt", "vgg16-397923af.pth")),
    "DISTS": MetricSpec("DISTS", _learned("DISTS"), False, needs_weights=("dists_weights.pt", "vgg16-397923af.pth")),
}
"""Baselines with their direction. LPIPS and DISTS need weights that must already be in the torch hub cache."""

SEMSIM_SPEC = MetricSpec("SemSim", None, False)


def _spec(name: str, extra: dict[str, MetricSpec] | None = None) -> MetricSpec:
    if extra and name in extra:
        return extra[name]
    if name == "SemSim" or name.startswith("SemSim"):
        return SEMSIM_SPEC
    if name in BASELINES:
        return BASELINES[name]
    raise KeyError(f"unknown metric {name!r}: declare its direction with a MetricSpec.")


def leakage_score(name: str, values: np.ndarray) -> np.ndarray:
    """Orient a metric's values so that higher = more leakage."""
    return _spec(name).orient(np.asarray(values, dtype=float))


# ------------------------------------------------------------------------------ per-pair values
def _decode_split(ds: Any) -> tuple[Tensor, Tensor]:
    from .data.triplets import decode_image, stack_images

    cols = ds.select_columns(["original", "reconstruction"])
    images = [(decode_image(row["reconstruction"]), decode_image(row["original"])) for row in cols]
    both = stack_images([img for pair in images for img in pair]).float() / 255
    return both[0::2], both[1::2]


def _weights_available(files: Sequence[str]) -> tuple[bool, str]:
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        return False, f"needs downloaded weights {missing} in {folder} (not available offline)"
    return True, ""


def pair_metric_values(
    models: dict[str, Any] | Any,
    ds: Any,
    *,
    batch_size: int = 256,
    baselines: Sequence[str] | None = None,
    skipped: dict[str, str] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-row values of each SemSim model and each applicable baseline on a schema split.

    Args:
        models: ``{"SemSim": model}`` (or a single model, named "SemSim"; ``None`` for baselines only).
        ds: a split in the SemSim schema.
        baselines: names from :data:`BASELINES` (default: all).
        skipped: filled with ``name -> reason`` for each baseline that could not run.
    """
    from tqdm.auto import tqdm

    from .functional import _semsim_update

    if models is None:
        models = {}
    elif not isinstance(models, dict):
        models = {"SemSim": models}
    names = list(BASELINES) if baselines is None else list(baselines)
    skipped = {} if skipped is None else skipped
    preds, target = _decode_split(ds)
    size = min(preds.shape[-2:])
    active = {}
    for name in names:
        spec = BASELINES[name]
        if size < spec.min_size:
            skipped[name] = f"needs images of at least {spec.min_size}x{spec.min_size} px, these are {size}x{size}"
            continue
        if spec.needs_weights:
            ok, reason = _weights_available(spec.needs_weights)
            if not ok:
                skipped[name] = reason
                continue
        active[name] = spec
    out: dict[str, list[np.ndarray]] = {}
    starts = range(0, len(preds), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc="metrics", unit="batch", disable=not progress):
            p, t = preds[start:start + batch_size], target[start:start + batch_size]
            for name, model in models.items():
                device = next(model.parameters()).device
                d = _semsim_update(p.to(device), t.to(device), model, data_range=1.0)
                out.setdefault(name, []).append(d.float().cpu().numpy())
            for name, spec in list(active.items()):
                try:
                    values = spec.fn(p, t)
                except Exception as err:  # a baseline that fails is reported, never silently dropped
                    skipped[name] = f"failed: {type(err).__name__}: {err}"
                    del active[name]
                    out.pop(name, None)
                    continue
                out.setdefault(name, []).append(values.float().reshape(-1).cpu().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


# --------------------------------------------------------------------------------- statistics
def _cluster_bootstrap(ids: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """Row-index resamples drawn by resampling originals (clusters) with replacement."""
    rng = np.random.default_rng(seed)
    uniq, inverse = np.unique(ids, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        out.append(np.concatenate([members[k] for k in pick]))
    return out


def _ci(samples: list[float]) -> list[float]:
    vals = np.asarray([s for s in samples if s == s])
    if len(vals) == 0:
        return [math.nan, math.nan]
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))]


def best_threshold_accuracy(y: np.ndarray, score: np.ndarray) -> float:
    """Accuracy of the best single threshold on ``score`` (higher = predict recognised)."""
    order = np.argsort(-score, kind="mergesort")
    s, yy = score[order], y[order].astype(int)
    tp = np.cumsum(yy)
    fp = np.cumsum(1 - yy)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # thresholds between distinct values
    neg = len(yy) - yy.sum()
    acc = (tp[last] + (neg - fp[last])) / len(yy)
    return float(max(acc.max(), max(yy.mean(), 1 - yy.mean())))


def image_level(y: np.ndarray, score: np.ndarray, ids: np.ndarray | None = None, *, n_boot: int = 1000,
                seed: int = 0) -> dict[str, Any]:
    """ROC-AUC and best-threshold accuracy of a leakage-oriented score for ``y`` (recognised)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype=float)
    res: dict[str, Any] = {"n": int(len(y)), "roc_auc": float(roc_auc_score(y, score)),
                           "accuracy": best_threshold_accuracy(y, score)}
    if n_boot and ids is not None:
        aucs = []
        for idx in _cluster_bootstrap(np.asarray(ids), n_boot, seed):
            yy = y[idx]
            aucs.append(float(roc_auc_score(yy, score[idx])) if yy.any() and not yy.all() else math.nan)
        res["roc_auc_ci"] = _ci(aucs)
    return res


def _group_means(groups: np.ndarray, values: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv = np.unique(groups, return_inverse=True)
    counts = np.bincount(inv, minlength=len(uniq)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(inv, values, len(uniq)) / counts, np.bincount(inv, y.astype(float), len(uniq)) / counts


def model_level(groups: np.ndarray, y: np.ndarray, score: np.ndarray, ids: np.ndarray | None = None, *,
                n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Spearman / Kendall / Pearson between per-group mean score and per-group recognised share."""
    from scipy import stats

    groups, y, score = np.asarray(groups), np.asarray(y, dtype=bool), np.asarray(score, dtype=float)
    means, shares = _group_means(groups, score, y)
    res: dict[str, Any] = {"groups": int(len(means))}
    if len(means) < 3:
        return res
    tests = {"spearman": stats.spearmanr, "kendall": stats.kendalltau, "pearson": stats.pearsonr}
    for name, fn in tests.items():
        r = fn(means, shares)
        res[name] = float(r[0])
        res[f"{name}_p"] = float(r[1])
    if n_boot and ids is not None:
        boot: dict[str, list[float]] = {k: [] for k in tests}
        for idx in _cluster_bootstrap(np.asarray(ids), n_boot, seed):
            m, s = _group_means(groups[idx], score[idx], y[idx])
            ok = np.isfinite(m) & np.isfinite(s)
            for name, fn in tests.items():
                if ok.sum() >= 3 and np.ptp(m[ok]) > 0 and np.ptp(s[ok]) > 0:
                    boot[name].append(float(fn(m[ok], s[ok])[0]))
        for name in tests:
            res[f"{name}_ci"] = _ci(boot[name])
    return res


def contradiction_rate(a: np.ndarray, b: np.ndarray, *, n_pairs: int = 200_000, seed: int = 0) -> float:
    """Share of random pairs of reconstructions that two leakage-oriented metrics order oppositely
    (pairs tied under either metric are not counted)."""
    rng = np.random.default_rng(seed)
    n = len(a)
    i, j = rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    valid = (da != 0) & (db != 0)
    return float((da[valid] != db[valid]).mean()) if valid.any() else math.nan


# ------------------------------------------------------------------------------------- reports
@dataclass
class EvaluationReport:
    """Results of the protocol on one set of rows."""

    title: str
    n: int
    recognised_share: float
    image: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: dict[str, dict[str, Any]] = field(default_factory=dict)
    contradictions: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    group_by: str = "victim"
    per_group: dict[str, Any] = field(default_factory=dict)
    #: free-form facts about how the compared models were made (e.g. training time)
    notes: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "n": self.n, "recognised_share": self.recognised_share, "image_level": self.image,
                "model_level": self.model, "contradictions": self.contradictions, "skipped": self.skipped,
                "group_by": self.group_by, "per_group": self.per_group, "notes": self.notes}

    def table(self) -> str:
        """The agreement table as Markdown."""
        lines = ["| metric | ROC-AUC [95% CI] | accuracy | model-level Spearman [95% CI] | Kendall [95% CI] "
                 "| Pearson |", "|---|---|---|---|---|---|"]
        for name in sorted(self.image, key=lambda k: -self.image[k]["roc_auc"]):
            im, mo = self.image[name], self.model.get(name, {})
            lines.append(f"| {name} | {im['roc_auc']:.3f} {_fmt_ci(im.get('roc_auc_ci'))} | {im['accuracy']:.3f} | "
                         f"{_fmt(mo.get('spearman'))} {_fmt_ci(mo.get('spearman_ci'))} | {_fmt(mo.get('kendall'))} "
                         f"{_fmt_ci(mo.get('kendall_ci'))} | {_fmt(mo.get('pearson'))} |")
        return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.3f}"


def _fmt_ci(ci: list[float] | None) -> str:
    return "" if not ci or ci[0] != ci[0] else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def evaluate_table(
    values: dict[str, np.ndarray],
    recognized: np.ndarray,
    groups: np.ndarray,
    original_ids: np.ndarray | None = None,
    *,
    specs: dict[str, MetricSpec] | None = None,
    title: str = "evaluation",
    group_by: str = "victim",
    n_boot: int = 1000,
    seed: int = 0,
    skipped: dict[str, str] | None = None,
) -> EvaluationReport:
    """Run the protocol on metric values already in a table (one array per metric, one row per image).

    Example:
        >>> import numpy as np
        >>> y = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
        >>> v = {"PSNR": np.array([30., 28, 10, 12, 25, 11])}
        >>> r = evaluate_table(v, y, np.array(list("aabbcc")), n_boot=0)
        >>> psnr = r.image["PSNR"]
        >>> psnr["roc_auc"]
        1.0
    """
    y = np.asarray(recognized, dtype=bool)
    groups = np.asarray(groups)
    report = EvaluationReport(title=title, n=int(len(y)), recognised_share=float(y.mean()), group_by=group_by,
                              skipped=dict(skipped or {}))
    oriented = {}
    for name, vals in values.items():
        spec = (specs or {}).get(name) or _spec(name)
        oriented[name] = spec.orient(np.asarray(vals, dtype=float))
        if not np.isfinite(oriented[name]).all():
            report.skipped[name] = "non-finite values"
            del oriented[name]
            continue
        report.image[name] = image_level(y, oriented[name], original_ids, n_boot=n_boot, seed=seed)
        report.model[name] = model_level(groups, y, oriented[name], original_ids, n_boot=n_boot, seed=seed)
    names = list(oriented)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            report.contradictions[f"{a} vs {b}"] = contradiction_rate(oriented[a], oriented[b], seed=seed)
    uniq = np.unique(groups)
    report.per_group = {
        str(g): {"n": int((groups == g).sum()), "recognised_share": float(y[groups == g].mean()),
                 "mean": {k: float(np.asarray(values[k], dtype=float)[groups == g].mean()) for k in oriented}}
        for g in uniq}
    return report


def evaluate_dataset(
    ds: Any,
    models: dict[str, Any] | Any = None,
    *,
    baselines: Sequence[str] | None = None,
    group_by: str = "victim",
    title: str = "evaluation",
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[EvaluationReport, dict[str, np.ndarray]]:
    """Compute every metric on a schema split and run the protocol. Returns the report and the values."""
    skipped: dict[str, str] = {}
    values = pair_metric_values(models, ds, baselines=baselines, skipped=skipped, progress=progress)
    groups = group_keys(ds, group_by)
    report = evaluate_table(values, np.asarray(ds["recognized"], dtype=bool), groups, np.asarray(ds["original_id"]),
                            title=title, group_by=group_by, n_boot=n_boot, seed=seed, skipped=skipped)
    return report, values


def group_keys(ds: Any, group_by: str) -> np.ndarray:
    """Group key per row: one column (``"victim"``) or several joined (``"victim,attack,attack_iterations"``)."""
    cols = [c.strip() for c in group_by.split(",") if c.strip()]
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise ValueError(f"group_by column(s) {missing} not in the dataset (it has {ds.column_names}).")
    values = [ds[c] for c in cols]
    return np.asarray(["/".join(str(v[i]) for v in values) for i in range(len(ds))])


def compare_on_split(model: Any, ds: Any, baselines: Sequence[str] = ("PSNR", "SSIM", "MSE")) -> dict[str, float]:
    """ROC-AUC for recognised vs not, for SemSim and a few baselines, on one split (used by model cards)."""
    from sklearn.metrics import roc_auc_score

    values = pair_metric_values(model, ds, baselines=baselines)
    y = np.asarray(ds["recognized"], dtype=bool)
    if y.all() or not y.any():
        return {}
    return {name: float(roc_auc_score(y, leakage_score(name, v))) for name, v in values.items()}


# ----------------------------------------------------------------------------------------- plots
def plot_model_level(report: EvaluationReport, path: Path, *, n_boot: int = 500, seed: int = 0) -> Path:
    """Per-metric scatter of the group mean (leakage-oriented) vs recognised share, with a least-squares
    fit and its 95% bootstrap confidence band, as in the study's figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.image)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    rng = np.random.default_rng(seed)
    for ax, name in zip(axes.flat, names):
        x = np.array([g["mean"][name] for g in report.per_group.values()])
        y = np.array([g["recognised_share"] for g in report.per_group.values()])
        ax.scatter(x, y, s=18, color="C0")
        if len(x) >= 3 and np.ptp(x) > 0:
            grid = np.linspace(x.min(), x.max(), 50)
            fits = []
            for _ in range(n_boot):
                idx = rng.integers(0, len(x), len(x))
                if np.ptp(x[idx]) > 0:
                    fits.append(np.polyval(np.polyfit(x[idx], y[idx], 1), grid))
            ax.plot(grid, np.polyval(np.polyfit(x, y, 1), grid), color="C1")
            if fits:
                lo, hi = np.percentile(np.array(fits), [2.5, 97.5], axis=0)
                ax.fill_between(grid, lo, hi, color="C1", alpha=0.2)
        mo = report.model.get(name, {})
        ax.set_title(f"{name}  Kendall {_fmt(mo.get('kendall'))}", fontsize=9)
        ax.set_xlabel(f"mean {name}", fontsize=8)
        ax.set_ylabel("recognised share", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(values: dict[str, np.ndarray], recognized: np.ndarray, path: Path) -> Path:
    """ROC curves for recognised vs not, one per metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    y = np.asarray(recognized, dtype=bool)
    for name, vals in sorted(values.items(), key=lambda kv: -roc_auc_score(y, leakage_score(kv[0], kv[1]))):
        score = leakage_score(name, vals)
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=f"{name} ({roc_auc_score(y, score):.3f})", lw=2 if name.startswith("SemSim") else 1)
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("recognised vs not: ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(reports: Sequence[EvaluationReport], out: str | Path, *,
                 values: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] | None = None,
                 intro: str = "") -> Path:
    """Write ``report.md``, ``report.json`` and the plots for each report into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md = ["# SemSim agreement report", "", intro, ""] if intro else ["# SemSim agreement report", ""]
    for k, rep in enumerate(reports):
        slug = "".join(c if c.isalnum() else "_" for c in rep.title.lower()).strip("_") or f"part{k}"
        md += [f"## {rep.title}", "",
               f"{rep.n} reconstructions, {rep.recognised_share:.1%} recognised; model level = {len(rep.per_group)} groups "
               f"by `{rep.group_by}`. Every metric is oriented so that higher = more leakage; ROC-AUC intervals and correlation "
               "intervals are 95% bootstrap intervals over originals.", "", rep.table(), ""]
        if rep.skipped:
            md += ["Skipped metrics:", ""] + [f"- {k2}: {v}" for k2, v in rep.skipped.items()] + [""]
        if rep.notes:
            md += ["Notes:", ""] + [f"- {k2}: {v}" for k2, v in rep.notes.items()] + [""]
        if rep.contradictions:
            top = sorted(rep.contradictions.items(), key=lambda kv: -kv[1])[:8]
            md += ["Metrics that contradict each other most (share of reconstruction pairs ordered oppositely):", ""]
            md += [f"- {k2}: {v:.1%}" for k2, v in top] + [""]
        if len(rep.per_group) >= 3:
            plot_model_level(rep, out / f"{slug}_model_level.png")
            md += [f"![model level]({slug}_model_level.png)", ""]
        if values and rep.title in values:
            vals, y = values[rep.title]
            plot_roc({k: v for k, v in vals.items() if k in rep.image}, y, out / f"{slug}_roc.png")
            md += [f"![ROC]({slug}_roc.png)", ""]
    (out / "report.md").write_text("\n".join(md))
    (out / "report.json").write_text(json.dumps([r.to_dict() for r in reports], indent=2))
    return out / "report.md"


# -------------------------------------------------------------------------------------------- CLI
def register_cli(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim evaluate`` to the command line."""
    p = sub.add_parser(
        "evaluate", help="agreement of SemSim and baselines with annotators' judgements",
        description="Run the paper's protocol (image-level ROC-AUC, model-level correlations, contradictions) on a "
        "dataset folder/Hub id in the SemSim schema, or on metric columns of a CSV table (--table).")
    p.add_argument("dataset", nargs="?", help="dataset folder or Hub id (omit with --table)")
    p.add_argument("--split", action="append", default=None, help="split(s) to evaluate (default: test)")
    p.add_argument("--model", action="append", default=None,
                   help="SemSim model(s): folder or Hub id, optionally NAME=PATH (default: the bundled model)")
    p.add_argument("--baselines", default=None, help="comma-separated baselines (default: all that apply)")
    p.add_argument("--group-by", default="victim",
                   help="column(s) defining a victim setting for the model-level protocol, comma-separated "
                        "(default victim; e.g. victim,attack,attack_iterations)")
    p.add_argument("--table", type=Path, default=None, help="CSV with precomputed metric columns")
    p.add_argument("--metric", action="append", default=[],
                   help="with --table: COLUMN:higher|lower (higher/lower value = more leakage)")
    p.add_argument("--label", default="n_correct>=3", help="with --table: recognised rule, 'COLUMN>=K' or a bool column")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--out", type=Path, default=None, help="folder for report.md, report.json and plots")
    h = p.add_argument_group("generalisation (train without some settings, evaluate on them)")
    h.add_argument("--heldout", action="append", default=None,
                   help="protocol: unseen-originals | victim_arch=ARCH | victim=NAME[+NAME] | victim_train_epochs=N | "
                        "attack=NAME (repeatable); trains one model per protocol and recipe")
    h.add_argument("--recipe", action="append", default=None, help="training recipe(s) for --heldout (default cpu)")
    h.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs for --heldout")
    h.add_argument("--base-width", type=int, default=None, help="override the recipe's width for --heldout")
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    from .cli import CLIError

    if args.heldout:
        from .heldout import run_heldout

        if not args.dataset or not args.out:
            raise CLIError("--heldout needs a dataset and --out.")
        overrides = {k: v for k, v in (("epochs", args.epochs), ("base_width", args.base_width)) if v is not None}
        group_by = args.group_by if args.group_by != "victim" else "victim,attack,attack_iterations"
        baselines = args.baselines.split(",") if args.baselines else None
        try:
            run_heldout(args.dataset, args.heldout, args.recipe or ["cpu"], args.out, group_by=group_by,
                        n_boot=args.bootstrap, baselines=baselines, **overrides)
        except ValueError as err:
            raise CLIError(str(err)) from err
        print((args.out / "report.md").read_text())
        return 0
    if args.table is not None:
        report = _evaluate_csv(args)
        reports, values = [report], None
    else:
        if not args.dataset:
            raise CLIError("give a dataset folder/Hub id, or --table CSV.")
        reports, values = _evaluate_folder(args)
    for rep in reports:
        print(f"\n## {rep.title}: {rep.n} rows, {rep.recognised_share:.1%} recognised\n")
        print(rep.table())
        for name, reason in rep.skipped.items():
            print(f"skipped {name}: {reason}")
    if args.out:
        path = write_report(reports, args.out, values=values)
        print(f"\nreport written to {path}")
    return 0


def _evaluate_folder(args: argparse.Namespace) -> tuple[list[EvaluationReport], dict]:
    from .data.loading import load_folder_or_hub

    from .cli import CLIError
    from .functional import freeze, get_model

    try:
        dsd = load_folder_or_hub(args.dataset)
    except Exception as err:
        raise CLIError(f"cannot load dataset {args.dataset!r}: {err}") from err
    splits = args.split or ["test"]
    missing = [s for s in splits if s not in dsd]
    if missing:
        raise CLIError(f"split(s) {missing} not in the dataset (it has {list(dsd)}).")
    models = {}
    for spec in args.model or [None]:
        name, _, path = (spec or "").rpartition("=") if spec and "=" in spec else ("", "", spec)
        try:
            model = freeze(get_model(path))
        except OSError as err:
            raise CLIError(str(err)) from err
        models[name or ("SemSim" if len(args.model or [None]) == 1 else f"SemSim[{Path(str(path)).name}]")] = model
    baselines = args.baselines.split(",") if args.baselines else None
    if baselines:
        unknown = [b for b in baselines if b not in BASELINES]
        if unknown:
            raise CLIError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)}.")
    reports, values = [], {}
    for split in splits:
        ds = dsd[split]
        rep, vals = evaluate_dataset(ds, models, baselines=baselines, group_by=args.group_by,
                                     title=f"{args.dataset} / {split}", n_boot=args.bootstrap)
        reports.append(rep)
        values[rep.title] = (vals, np.asarray(ds["recognized"], dtype=bool))
    return reports, values


def _evaluate_csv(args: argparse.Namespace) -> EvaluationReport:
    import csv

    from .cli import CLIError

    if not args.metric:
        raise CLIError("--table needs at least one --metric COLUMN:higher|lower.")
    with args.table.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise CLIError(f"{args.table} has no rows.")
    specs, values = {}, {}
    for m in args.metric:
        col, _, direction = m.partition(":")
        if direction not in ("higher", "lower") or col not in rows[0]:
            raise CLIError(f"--metric {m!r}: expected COLUMN:higher|lower with a column of {args.table.name}.")
        specs[col] = MetricSpec(col, None, direction == "higher")
        values[col] = np.array([float(r[col]) for r in rows])
    if ">=" in args.label:
        col, _, k = args.label.partition(">=")
        y = np.array([float(r[col]) >= float(k) for r in rows])
    else:
        y = np.array([r[args.label].strip().lower() in ("1", "true", "yes") for r in rows])
    if args.group_by not in rows[0]:
        raise CLIError(f"--group-by column {args.group_by!r} not in {args.table.name}.")
    groups = np.array([r[args.group_by] for r in rows])
    id_col = next((c for c in ("original_id", "image_index") if c in rows[0]), None)
    ids = np.array([r[id_col] for r in rows]) if id_col else None
    return evaluate_table(values, y, groups, ids, specs=specs, title=f"{args.table.name}", group_by=args.group_by,
                          n_boot=args.bootstrap)
