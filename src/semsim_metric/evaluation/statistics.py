"""Statistics of the protocol: ROC-AUC and best-threshold accuracy per image, correlations per victim
setting (model level), cluster bootstrap intervals over originals, contradiction rates."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._deps import require

__all__ = ["best_threshold_accuracy", "cluster_bootstrap", "contradiction_rate", "image_level", "model_level",
           "percentile_interval"]


def cluster_bootstrap(ids: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """Row-index resamples drawn by resampling originals (clusters) with replacement."""
    rng = np.random.default_rng(seed)
    uniq, inverse = np.unique(ids, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(len(uniq))]
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), len(uniq))
        out.append(np.concatenate([members[k] for k in pick]))
    return out


def percentile_interval(samples: list[float]) -> list[float]:
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
    """ROC-AUC and best-threshold accuracy of a leakage-oriented score for ``y`` (recognised).

    The ROC-AUC is NaN (undefined) when every row has the same label.
    """
    roc_auc_score = require("sklearn.metrics", "ROC-AUC").roc_auc_score

    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype=float)
    both = bool(y.any() and not y.all())
    res: dict[str, Any] = {"n": int(len(y)), "roc_auc": float(roc_auc_score(y, score)) if both else math.nan,
                           "accuracy": best_threshold_accuracy(y, score)}
    if n_boot and ids is not None:
        aucs = []
        for idx in cluster_bootstrap(np.asarray(ids), n_boot, seed):
            yy = y[idx]
            aucs.append(float(roc_auc_score(yy, score[idx])) if yy.any() and not yy.all() else math.nan)
        res["roc_auc_ci"] = percentile_interval(aucs)
    return res


def _group_means(groups: np.ndarray, values: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    uniq, inv = np.unique(groups, return_inverse=True)
    counts = np.bincount(inv, minlength=len(uniq)).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(inv, values, len(uniq)) / counts, np.bincount(inv, y.astype(float), len(uniq)) / counts


def model_level(groups: np.ndarray, y: np.ndarray, score: np.ndarray, ids: np.ndarray | None = None, *,
                n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Spearman / Kendall / Pearson between per-group mean score and per-group recognised share."""
    stats = require("scipy.stats", "correlations")

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
        for idx in cluster_bootstrap(np.asarray(ids), n_boot, seed):
            m, s = _group_means(groups[idx], score[idx], y[idx])
            ok = np.isfinite(m) & np.isfinite(s)
            for name, fn in tests.items():
                if ok.sum() >= 3 and np.ptp(m[ok]) > 0 and np.ptp(s[ok]) > 0:
                    boot[name].append(float(fn(m[ok], s[ok])[0]))
        for name in tests:
            res[f"{name}_ci"] = percentile_interval(boot[name])
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


