"""Plots of an evaluation: per-metric model-level scatter with a bootstrap band, ROC curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .._deps import require
from .baselines import leakage_score
from .report import EvaluationReport, fmt

__all__ = ["plot_model_level", "plot_roc"]


def plot_model_level(report: EvaluationReport, path: Path, *, n_boot: int = 500, seed: int = 0) -> Path:
    """Per-metric scatter of the group mean (leakage-oriented) vs recognised share, with a least-squares
    fit and its 95% bootstrap confidence band, as in the study's figures."""
    matplotlib = require("matplotlib", "plots")

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
        ax.set_title(f"{name}  Kendall {fmt(mo.get('kendall'))}", fontsize=9)
        ax.set_xlabel(f"mean {name}", fontsize=8)
        ax.set_ylabel("recognised share", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(values: dict[str, np.ndarray], recognized: np.ndarray, path: Path) -> Path:
    """ROC curves for recognised vs not, one per metric."""
    matplotlib = require("matplotlib", "plots")

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = require("sklearn.metrics", "ROC curves")
    roc_auc_score, roc_curve = metrics.roc_auc_score, metrics.roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    y = np.asarray(recognized, dtype=bool)
    for name, vals in sorted(values.items(), key=lambda kv: -roc_auc_score(y, leakage_score(kv[0], kv[1]))):
        score = leakage_score(name, vals)
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(
            fpr,
            tpr,
            label=f"{name} ({roc_auc_score(y, score):.3f})",
            lw=2 if name.startswith("SemSim") else 1,
        )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("recognised vs not: ROC")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
