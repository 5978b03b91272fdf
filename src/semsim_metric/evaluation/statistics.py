"""Statistics of the protocol: ROC-AUC and best-threshold accuracy per image, correlations per victim
setting (model level), cluster bootstrap intervals over originals, contradiction rates, and the expected
calibration error of calibrated probabilities."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from .._deps import require
from ..errors import InvalidInputError

__all__ = [
    "best_threshold_accuracy",
    "cluster_bootstrap",
    "contradiction_rate",
    "expected_calibration_error",
    "image_level",
    "model_level",
    "percentile_interval",
]


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
    # thresholds between distinct values only: compared, not subtracted (inf - inf is NaN), and NaNs tie each other
    differs = (s[1:] != s[:-1]) & ~(np.isnan(s[1:]) & np.isnan(s[:-1]))
    last = np.r_[np.flatnonzero(differs), len(s) - 1]
    neg = len(yy) - yy.sum()
    acc = (tp[last] + (neg - fp[last])) / len(yy)
    return float(max(acc.max(), max(yy.mean(), 1 - yy.mean())))


def image_level(
    y: np.ndarray, score: np.ndarray, ids: np.ndarray | None = None, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """ROC-AUC and best-threshold accuracy of a leakage-oriented score for ``y`` (recognised).

    The ROC-AUC is NaN (undefined) when every row has the same label.
    """
    roc_auc_score = require("sklearn.metrics", "ROC-AUC").roc_auc_score

    y = np.asarray(y, dtype=bool)
    score = np.asarray(score, dtype=float)
    both = bool(y.any() and not y.all())
    res: dict[str, Any] = {
        "n": len(y),
        "roc_auc": float(roc_auc_score(y, score)) if both else math.nan,
        "accuracy": best_threshold_accuracy(y, score),
    }
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
        return np.bincount(inv, values, len(uniq)) / counts, np.bincount(
            inv, y.astype(float), len(uniq)
        ) / counts


def model_level(
    groups: np.ndarray,
    y: np.ndarray,
    score: np.ndarray,
    ids: np.ndarray | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Spearman / Kendall / Pearson between per-group mean score and per-group recognised share."""
    stats = require("scipy.stats", "correlations")

    groups, y, score = np.asarray(groups), np.asarray(y, dtype=bool), np.asarray(score, dtype=float)
    means, shares = _group_means(groups, score, y)
    res: dict[str, Any] = {"groups": len(means)}
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
    (pairs tied under either metric are not counted).

    ``n_pairs`` ordered pairs ``(i, j)`` are drawn with replacement (seeded); with few reconstructions the
    draws are counted per distinct pair once and the share is weighted by those counts, which gives the same
    value as going through every draw.

    Examples:
        >>> a = np.array([0.1, 0.2, 0.3, 0.4])
        >>> contradiction_rate(a, a), contradiction_rate(a, -a)
        (0.0, 1.0)
    """
    n = len(a)
    if len(b) != n:
        raise InvalidInputError(
            f"contradiction_rate needs two scores per reconstruction, got {n} and {len(b)} values."
        )
    if n * n <= n_pairs:
        counts = _pair_counts(n, n_pairs, seed)
        da, db = np.sign(a[:, None] - a[None, :]), np.sign(b[:, None] - b[None, :])
        valid = (da != 0) & (db != 0)
        n_valid = int(counts[valid].sum())
        return float(counts[valid & (da != db)].sum() / n_valid) if n_valid else math.nan
    i, j = _pair_draws(n, n_pairs, seed)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    valid = (da != 0) & (db != 0)
    return float((da[valid] != db[valid]).mean()) if valid.any() else math.nan


def _draw_pairs(n: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded ordered pairs of ``contradiction_rate`` (the same for every pair of metrics of a table)."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, n, n_pairs), rng.integers(0, n, n_pairs)
    i.flags.writeable = j.flags.writeable = False
    return i, j


def _count_pairs(n: int, n_pairs: int, seed: int) -> np.ndarray:
    """How often each ordered pair ``(i, j)`` is among the draws of ``_draw_pairs`` (an ``n x n`` matrix)."""
    i, j = _draw_pairs(n, n_pairs, seed)
    counts = np.bincount(i * n + j, minlength=n * n).reshape(n, n)
    counts.flags.writeable = False
    return counts


# cached per table (plain functions above, so that the mutation run mutates them: it skips decorated ones)
_pair_draws = functools.lru_cache(maxsize=16)(_draw_pairs)
_pair_counts = functools.lru_cache(maxsize=16)(_count_pairs)


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """Expected calibration error (ECE) of predicted probabilities of "recognised" against the labels.

    The interval ``[0, 1]`` is cut into ``n_bins`` equal-width bins (``[0, 1/n), [1/n, 2/n), ...``, the last
    one closed, so a probability of exactly 1 is in the last bin). In each non-empty bin the mean
    probability is compared with the share of recognised rows; the ECE is the mean of these absolute gaps
    weighted by the share of rows in each bin. 0 is perfect calibration; NaN for no rows.

    Examples:
        Two bins: ``[0, 0.5)`` holds 0.1 and 0.2 (mean 0.15) with labels 0 and 1 (share 0.5): gap 0.35;
        ``[0.5, 1]`` holds 0.8 and 0.9 (mean 0.85), both recognised (share 1.0): gap 0.15. Each bin holds
        half of the rows, so the ECE is 0.5 * 0.35 + 0.5 * 0.15 = 0.25.

        >>> round(expected_calibration_error([0.1, 0.2, 0.8, 0.9], [0, 1, 1, 1], n_bins=2), 6)
        0.25
        >>> expected_calibration_error([0.25, 0.25, 0.25, 0.25], [1, 0, 0, 0]) < 1e-12  # 1 of 4 recognised at 0.25
        True
    """
    p = np.asarray(probabilities, dtype=float).reshape(-1)
    y = np.asarray(labels, dtype=float).reshape(-1)
    if p.shape != y.shape:
        raise InvalidInputError(
            f"probabilities ({p.shape[0]}) and labels ({y.shape[0]}) must have the same length."
        )
    if n_bins < 1:
        raise InvalidInputError(f"n_bins must be at least 1, got {n_bins}.")
    if len(p) == 0:
        return math.nan
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise InvalidInputError("probabilities must be finite and in [0, 1].")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins).astype(float)
    filled = counts > 0
    mean_p = np.bincount(bins, p, n_bins)[filled] / counts[filled]
    mean_y = np.bincount(bins, y, n_bins)[filled] / counts[filled]
    return float(np.sum(counts[filled] / len(p) * np.abs(mean_p - mean_y)))
