"""Contracts of the protocol's statistics (``evaluation/statistics.py``) and of ``SemSimLoss`` (issue 21 item 10).

Each test pins one function's exact behaviour against an independent computation written out here (numpy, scipy,
rank formulas), a small example worked by hand, or an edge case: ties, one class only, empty bins, the bin
boundaries 0 and 1 of the calibration error, the draws of the cluster bootstrap by seed and by original, the
percentile bounds, and the argument plumbing of the loss.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats

import semsim_metric.evaluation.statistics as statistics
from semsim_metric import SemSimLoss, SemSimModel
from semsim_metric.domain import OutOfDomainWarning
from semsim_metric.errors import InvalidInputError
from semsim_metric.evaluation.statistics import (
    best_threshold_accuracy,
    cluster_bootstrap,
    contradiction_rate,
    expected_calibration_error,
    image_level,
    model_level,
    percentile_interval,
)
from tests.helpers import contradiction_rate_by_hand, model_with_bar_domain


# --------------------------------------------------------------------------- independent references
def _resamples(ids, n_boot: int, seed: int) -> list[np.ndarray]:
    """The cluster bootstrap written out: each resample draws ``k`` of the ``k`` originals (sorted) with replacement
    from ``default_rng(seed)`` and takes all rows of each drawn original, in the order drawn."""
    rng = np.random.default_rng(seed)
    ids = list(ids)
    clusters = sorted(set(ids))
    rows = {c: [i for i, v in enumerate(ids) if v == c] for c in clusters}
    out = []
    for _ in range(n_boot):
        drawn = rng.integers(0, len(clusters), len(clusters))
        out.append(np.array([i for k in drawn for i in rows[clusters[k]]], dtype=np.int64))
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic (average ranks for ties); NaN with one class only."""
    y = np.asarray(y, dtype=bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        return math.nan
    ranks = stats.rankdata(score)
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def _percentiles(values: list[float]) -> list[float]:
    finite = [v for v in values if not math.isnan(v)]
    return (
        [float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))] if finite else [math.nan] * 2
    )


def _brute_force_accuracy(y: np.ndarray, score: np.ndarray) -> float:
    """Best accuracy of ``score >= t`` over every threshold, including predicting nobody (t = inf)."""
    return max(float(((score >= t) == y).mean()) for t in np.r_[score, np.inf])


def _quietly(fn, *args, **kwargs):
    """Call ``fn`` with every warning turned into an error (the statistics warn about nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- cluster_bootstrap
IDS = np.array(["b", "a", "c", "a", "b", "b", "d"])  # 4 originals of sizes 2 (a), 3 (b), 1 (c), 1 (d)


def test_cluster_bootstrap_draws_originals_with_replacement_as_written_out():
    got = cluster_bootstrap(IDS, 25, 3)
    want = _resamples(IDS, 25, 3)
    assert len(got) == 25
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def test_each_resample_holds_whole_originals_and_as_many_draws_as_originals():
    sizes = {"a": 2, "b": 3, "c": 1, "d": 1}
    seen = set()
    for idx in cluster_bootstrap(IDS, 200, 0):
        drawn = IDS[idx]
        counts = {c: int((drawn == c).sum()) for c in sizes}
        assert all(counts[c] % sizes[c] == 0 for c in sizes)  # an original comes with all of its rows
        assert sum(counts[c] // sizes[c] for c in sizes) == len(sizes)  # 4 originals drawn each time
        seen |= {c for c in sizes if counts[c]}
    assert seen == set(sizes)  # the first and the last original are drawn too


def test_cluster_bootstrap_is_reproducible_by_seed_and_changes_with_it():
    a, b, c = cluster_bootstrap(IDS, 10, 5), cluster_bootstrap(IDS, 10, 5), cluster_bootstrap(IDS, 10, 6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    assert cluster_bootstrap(IDS, 0, 5) == []


def test_numeric_cluster_ids_are_resampled_by_value_not_by_position():
    ids = np.array([7, 7, 3, 3, 3, 10])
    for got, want in zip(cluster_bootstrap(ids, 30, 1), _resamples(ids, 30, 1), strict=True):
        np.testing.assert_array_equal(got, want)


# --------------------------------------------------------------------------- percentile_interval
def test_percentile_interval_is_the_2_5th_and_97_5th_percentile_worked_by_hand():
    # numpy's linear percentile of 1..200: position 0.025 * 199 = 4.975 -> 5.975; 0.975 * 199 = 194.025 -> 195.025
    assert percentile_interval(list(range(200, 0, -1))) == pytest.approx([5.975, 195.025])
    assert all(type(v) is float for v in percentile_interval([1.0, 2.0]))


def test_percentile_interval_drops_nans_and_is_nan_without_values():
    values = [3.0, math.nan, 1.0, 2.0, math.nan, 4.0]
    assert percentile_interval(values) == pytest.approx([1.075, 3.925])  # 1 + 0.075, 1 + 2.925 of 1..4
    assert percentile_interval([2.5]) == [2.5, 2.5]
    for empty in ([], [math.nan, math.nan]):
        lo, hi = percentile_interval(empty)
        assert math.isnan(lo) and math.isnan(hi)


# --------------------------------------------------------------------------- best_threshold_accuracy
@pytest.mark.parametrize("seed", range(6))
def test_best_threshold_accuracy_equals_brute_force_over_all_thresholds_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(40) < [0.2, 0.5, 0.8, 0.5, 0.3, 0.7][seed]
    score = np.round(rng.normal(size=40) + y, 0)  # coarse: many ties across both classes
    assert best_threshold_accuracy(y, score) == pytest.approx(_brute_force_accuracy(y, score))


def test_a_threshold_never_splits_tied_scores():
    # tied at 1 are one recognised and one not: taking only the first of them would score 3/3
    assert best_threshold_accuracy(np.array([True, True, False]), np.array([3.0, 1.0, 1.0])) == pytest.approx(
        2 / 3
    )
    assert best_threshold_accuracy(np.array([False, True, True]), np.array([1.0, 1.0, 3.0])) == pytest.approx(
        2 / 3
    )


def test_predicting_nobody_or_everybody_recognised_are_candidates():
    # the one recognised row scores lowest: no threshold beats predicting nobody (2 of 3 right)
    assert best_threshold_accuracy(
        np.array([False, False, True]), np.array([3.0, 2.0, 1.0])
    ) == pytest.approx(2 / 3)
    # the one unrecognised row scores highest: predicting everybody (3 of 4) is best
    assert best_threshold_accuracy(np.array([False, True, True, True]), np.array([4.0, 3, 2, 1])) == 0.75
    assert best_threshold_accuracy(np.array([True, True]), np.array([0.3, 0.1])) == 1.0
    assert (
        best_threshold_accuracy(np.array([False, True, False, True]), np.array([0.1, 0.9, 0.2, 0.8])) == 1.0
    )
    assert (
        best_threshold_accuracy(np.array([True, False, True, False]), np.array([0.1, 0.9, 0.2, 0.8])) == 0.5
    )


# --------------------------------------------------------------------------- image_level
def _image_data(seed: int = 0, n: int = 60):
    rng = np.random.default_rng(seed)
    ids = np.arange(n) // 3  # 20 originals of 3 reconstructions
    y = rng.random(n) < 0.5
    score = np.round(rng.normal(size=n) + y, 1)
    return y, score, ids


def test_image_level_point_estimates_and_count():
    y, score, ids = _image_data()
    res = _quietly(image_level, y, score, ids, n_boot=0)
    assert res == {
        "n": 60,
        "roc_auc": pytest.approx(_auc(y, score)),
        "accuracy": pytest.approx(_brute_force_accuracy(y, score)),
    }


def test_image_level_interval_is_the_percentile_interval_of_cluster_resampled_aucs():
    y, score, ids = _image_data(1)
    res = _quietly(image_level, y, score, ids, n_boot=60, seed=4)
    want = _percentiles([_auc(y[i], score[i]) for i in _resamples(ids, 60, 4)])
    assert res["roc_auc_ci"] == pytest.approx(want)
    assert res["roc_auc_ci"] != pytest.approx(
        _quietly(image_level, y, score, ids, n_boot=60, seed=5)["roc_auc_ci"]
    )


def test_resamples_with_one_class_only_are_left_out_of_the_interval():
    # 4 originals, one of them holding every recognised row: a quarter of the draws miss it ((3/4)^4 = 32%)
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    score = np.array([0.9, 0.4, 0.5, 0.1, 0.3, 0.2, 0.6, 0.0])
    ids = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    aucs = [_auc(y[i], score[i]) for i in _resamples(ids, 50, 2)]
    assert 0 < sum(math.isnan(a) for a in aucs) < 50  # the case occurs
    res = _quietly(image_level, y, score, ids, n_boot=50, seed=2)
    assert res["roc_auc_ci"] == pytest.approx(_percentiles(aucs))


@pytest.mark.parametrize("label", [True, False])
def test_image_level_with_one_class_has_no_auc_but_an_accuracy(label):
    y = np.full(6, label)
    res = _quietly(image_level, y, np.arange(6.0), np.arange(6), n_boot=20)
    assert math.isnan(res["roc_auc"]) and res["accuracy"] == 1.0 and res["n"] == 6
    assert all(math.isnan(v) for v in res["roc_auc_ci"])


def test_image_level_has_an_interval_only_with_ids_and_resamples():
    y, score, ids = _image_data()
    assert "roc_auc_ci" not in image_level(y, score, None, n_boot=50)
    assert "roc_auc_ci" not in image_level(y, score, ids, n_boot=0)
    assert "roc_auc_ci" in image_level(y, score, ids, n_boot=2)


def test_image_level_takes_lists_and_any_truthy_label():
    y, score, ids = _image_data()
    want = image_level(y, score, ids, n_boot=10)
    got = image_level([int(v) * 3 for v in y], score.tolist(), ids.tolist(), n_boot=10)  # 3 = recognised
    assert got == want


# --------------------------------------------------------------------------- the bootstrap's arguments
class _RecordingBootstrap:
    """Stands in for ``cluster_bootstrap``: records ``(n_boot, seed)`` and draws only 3 resamples."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []
        self.real = statistics.cluster_bootstrap

    def __call__(self, ids, n_boot, seed):
        self.calls.append((n_boot, seed))
        return self.real(ids, 3, seed)


def test_by_default_1000_resamples_with_seed_0_and_the_arguments_are_passed_on(monkeypatch):
    y, score, ids = _image_data()
    groups = np.arange(60) % 4
    record = _RecordingBootstrap()
    monkeypatch.setattr(statistics, "cluster_bootstrap", record)
    image_level(y, score, ids)
    model_level(groups, y, score, ids)
    image_level(y, score, ids, n_boot=17, seed=9)
    model_level(groups, y, score, ids, n_boot=23, seed=8)
    assert record.calls == [(1000, 0), (1000, 0), (17, 9), (23, 8)]


# --------------------------------------------------------------------------- model_level
def _model_data(seed: int = 0):
    """5 victim settings (groups) x 12 originals, one reconstruction of each original per setting."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(5), 12)
    ids = np.tile(np.arange(12), 5)
    y = rng.random(60) < np.repeat([0.2, 0.4, 0.5, 0.7, 0.9], 12)
    score = rng.normal(size=60) + 0.5 * groups
    return groups, y, score, ids


def _means_and_shares(groups, y, score):
    keys = sorted(set(groups.tolist()))
    means = np.array([score[groups == g].mean() for g in keys])
    shares = np.array([y[groups == g].mean() for g in keys])
    return means, shares


def test_model_level_correlates_per_group_means_with_per_group_shares():
    groups, y, score, _ = _model_data()
    means, shares = _means_and_shares(groups, y, score)
    res = _quietly(model_level, groups, y, score)
    want = {"groups": 5}
    for name, fn in (
        ("spearman", stats.spearmanr),
        ("kendall", stats.kendalltau),
        ("pearson", stats.pearsonr),
    ):
        r, p = fn(means, shares)
        want[name], want[f"{name}_p"] = pytest.approx(float(r)), pytest.approx(float(p))
    assert res == want  # no interval without ids


def test_model_level_groups_by_label_not_by_position():
    # unsorted, non-contiguous group labels
    groups, y, score, _ = _model_data(3)
    labels = np.array([40, 10, 30, 20, 50])[groups]
    order = np.random.default_rng(0).permutation(60)
    res = model_level(labels[order], y[order], score[order], n_boot=0)
    assert res["pearson"] == pytest.approx(model_level(groups, y, score, n_boot=0)["pearson"])
    means, shares = _means_and_shares(labels, y, score)
    assert res["spearman"] == pytest.approx(float(stats.spearmanr(means, shares)[0]))


def test_model_level_takes_any_truthy_label_as_recognised():
    groups, y, score, ids = _model_data(4)
    labels = np.where(y, np.random.default_rng(1).integers(1, 6, 60), 0)  # 1..5 all mean "recognised"
    assert model_level(groups, labels, score, ids, n_boot=20) == model_level(groups, y, score, ids, n_boot=20)


def test_model_level_needs_three_groups():
    groups, y, score, ids = _model_data()
    three = groups < 3
    assert set(model_level(groups[three], y[three], score[three], ids[three], n_boot=5)) == {
        "groups", "spearman", "spearman_p", "kendall", "kendall_p", "pearson", "pearson_p",
        "spearman_ci", "kendall_ci", "pearson_ci",
    }  # fmt: skip
    two = groups < 2
    assert model_level(groups[two], y[two], score[two], ids[two], n_boot=5) == {"groups": 2}


def _bootstrap_correlations(groups, y, score, ids, n_boot, seed):
    """Each resample's correlations over the groups it holds with finite means, when there are at least 3 and
    neither the means nor the shares are constant; also how many resamples fell in each special case."""
    out = {"spearman": [], "kendall": [], "pearson": []}
    cases = {"fewer than 3": 0, "exactly 3": 0, "constant means": 0, "constant shares": 0}
    for idx in _resamples(ids, n_boot, seed):
        means, shares = _means_and_shares(groups[idx], y[idx], score[idx])
        ok = np.isfinite(means) & np.isfinite(shares)
        means, shares = means[ok], shares[ok]
        if len(means) < 3:
            cases["fewer than 3"] += 1
            continue
        cases["exactly 3"] += len(means) == 3
        if means.max() == means.min() or shares.max() == shares.min():
            cases["constant means"] += means.max() == means.min()
            cases["constant shares"] += shares.max() == shares.min()
            continue
        out["spearman"].append(float(stats.spearmanr(means, shares)[0]))
        out["kendall"].append(float(stats.kendalltau(means, shares)[0]))
        out["pearson"].append(float(stats.pearsonr(means, shares)[0]))
    return out, cases


def test_model_level_intervals_resample_originals_and_skip_degenerate_resamples():
    # 5 settings, each with its own original (3 rows): resamples miss settings (fewer than 3 left, exactly 3 left)
    # and can hold settings of equal mean score (0, 2, 3) or of equal recognised share (0, 1, 3)
    groups = np.repeat(np.arange(5), 3)
    y = np.repeat([1, 1, 0, 1, 0], 3).astype(bool)
    score = np.repeat([1, 0, 1, 1, 2], 3) + np.tile([-1, 0, 1], 5)
    boot, cases = _bootstrap_correlations(groups, y, score, groups, 120, 0)
    assert all(cases.values()) and len(boot["pearson"]) > 30, cases  # every case occurs
    res = _quietly(
        model_level, groups, y, score, groups, n_boot=120, seed=0
    )  # degenerate resamples warn nothing
    for name, values in boot.items():
        assert res[f"{name}_ci"] == pytest.approx(_percentiles(values)), name


def test_resamples_left_with_two_settings_give_no_correlation():
    # 3 settings of one original each: mean scores 0, 1, 2, recognised shares 1, 0, 1 (every correlation 0). A
    # resample holding all three gives 0 again; one holding two of them would give -1 or +1, and is skipped.
    groups = np.repeat(np.arange(3), 3)
    y = np.repeat([1, 0, 1], 3).astype(bool)
    score = np.repeat([0.0, 1.0, 2.0], 3) + np.tile([-1.0, 0.0, 1.0], 3)
    res = _quietly(model_level, groups, y, score, groups, n_boot=40, seed=0)
    assert (res["spearman"], res["kendall"], res["pearson"]) == (0.0, 0.0, pytest.approx(0.0, abs=1e-12))
    drawn = [len(set(groups[i].tolist())) for i in _resamples(groups, 40, 0)]
    assert 3 in drawn and 2 in drawn
    for name in ("spearman", "kendall", "pearson"):
        assert res[f"{name}_ci"] == pytest.approx([0.0, 0.0], abs=1e-12), name


def test_a_group_without_a_finite_mean_is_left_out_of_the_bootstrap():
    groups, y, score, ids = _model_data(2)
    groups = np.r_[groups, 5, 5]  # a sixth setting whose scores could not be computed
    y, score, ids = np.r_[y, True, False], np.r_[score, np.nan, np.nan], np.r_[ids, 0, 1]
    res = model_level(groups, y, score, ids, n_boot=40, seed=1)
    boot, _ = _bootstrap_correlations(groups, y, score, ids, 40, 1)
    for name, values in boot.items():
        assert res[f"{name}_ci"] == pytest.approx(_percentiles(values)), name
        assert not any(math.isnan(v) for v in res[f"{name}_ci"])


# --------------------------------------------------------------------------- contradiction_rate


def test_contradiction_rate_counts_opposite_orders_among_pairs_untied_under_both():
    rng = np.random.default_rng(0)
    a, b = np.round(rng.normal(size=30), 0), np.round(rng.normal(size=30), 0)  # many ties in each
    got = contradiction_rate(a, b, n_pairs=3000, seed=5)
    assert got == pytest.approx(contradiction_rate_by_hand(a, b, 3000, 5), abs=1e-12)
    assert got != contradiction_rate(a, b, n_pairs=3000, seed=6)
    assert got != contradiction_rate(a, b, n_pairs=2999, seed=5)


def test_contradiction_rate_worked_by_hand():
    # of the 6 ordered pairs of distinct rows, (1, 2) and (2, 1) are ordered oppositely: 1/3
    a, b = np.array([0.0, 1.0, 2.0]), np.array([0.0, 2.0, 1.0])
    assert contradiction_rate(a, b) == pytest.approx(1 / 3, abs=0.01)
    # a pair tied under b is never counted: only (0, 2) and (2, 0) count here, and they agree
    assert contradiction_rate(np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.0, 5.0]), n_pairs=500) == 0.0


def test_contradiction_rate_defaults_to_200000_pairs_with_seed_0():
    a = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    b = np.array([0.0, 3.0, 1.0, 4.0, 2.0])
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, 5, 200_000), rng.integers(0, 5, 200_000)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    valid = (da != 0) & (db != 0)
    assert contradiction_rate(a, b) == float((da[valid] != db[valid]).mean())


def test_contradiction_rate_is_nan_when_no_pair_can_be_ordered():
    assert math.isnan(contradiction_rate(np.ones(10), np.arange(10.0), n_pairs=100))
    assert math.isnan(contradiction_rate(np.array([1.0]), np.array([2.0]), n_pairs=100))


# --------------------------------------------------------------------------- expected_calibration_error
def _ece(p, y, n_bins):
    """ECE over the bins [k/n, (k+1)/n), the last one closed, written out bin by bin."""
    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=float)
    total = 0.0
    for k in range(n_bins):
        upper = (p <= 1.0) if k == n_bins - 1 else (p * n_bins < k + 1)
        inside = (p * n_bins >= k) & upper
        if inside.any():
            total += inside.sum() / len(p) * abs(p[inside].mean() - y[inside].mean())
    return total


def test_ece_worked_by_hand_over_empty_and_full_bins():
    # 10 bins: [0.0, 0.1) holds 0.05 (label 1): gap 0.95; [0.3, 0.4) holds 0.3, 0.35 (labels 0, 0): gap 0.325;
    # [0.9, 1] holds 0.9, 1.0 (labels 1, 0): gap 0.45. Weights 1/5, 2/5, 2/5: 0.19 + 0.13 + 0.18 = 0.5
    p, y = [0.05, 0.3, 0.35, 0.9, 1.0], [1, 0, 0, 1, 0]
    assert expected_calibration_error(p, y) == pytest.approx(0.5)
    assert expected_calibration_error(p, y, n_bins=10) == pytest.approx(0.5)


def test_ece_bins_are_closed_below_and_the_last_is_closed_above():
    # 0 is in the first bin, 0.5 starts the second of two, 1 is in the last
    assert expected_calibration_error([0.0, 0.5], [0, 0], n_bins=2) == pytest.approx(
        0.25
    )  # 0.5 * 0 + 0.5 * 0.5
    assert expected_calibration_error([0.5, 0.4], [1, 0], n_bins=2) == pytest.approx(0.5 * 0.5 + 0.5 * 0.4)
    # 1.0 and 0.95 share the last of 10 bins: mean 0.975 against a share of 0.5
    assert expected_calibration_error([1.0, 0.95], [0, 1]) == pytest.approx(0.475)
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == 0.0
    assert expected_calibration_error([0.0, 0.0], [0, 0]) == 0.0


@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 15])
def test_ece_equals_the_bin_by_bin_computation(n_bins):
    rng = np.random.default_rng(n_bins)
    p = np.r_[rng.random(40), 0.0, 1.0, 1 / 3, 0.5]
    y = rng.random(44) < p
    assert expected_calibration_error(p, y, n_bins=n_bins) == pytest.approx(_ece(p, y, n_bins))


def test_ece_gaps_of_both_signs_add_up_and_inputs_are_flattened():
    # over-confident bin (0.9 vs 0) and under-confident bin (0.1 vs 1): the gaps add, they do not cancel
    assert expected_calibration_error([[0.1, 0.9]], [[1], [0]], n_bins=2) == pytest.approx(0.9)


def test_ece_of_no_rows_is_nan_and_bad_inputs_are_refused():
    assert math.isnan(expected_calibration_error([], []))
    assert math.isnan(expected_calibration_error([], [], n_bins=1))
    with pytest.raises(InvalidInputError, match="same length"):
        expected_calibration_error([0.5, 0.5], [1])
    for n_bins in (0, -1):
        with pytest.raises(InvalidInputError, match="n_bins"):
            expected_calibration_error([0.5], [1], n_bins=n_bins)
    for bad in (-0.01, 1.01, math.nan, math.inf):
        with pytest.raises(InvalidInputError, match=r"in \[0, 1\]"):
            expected_calibration_error([0.5, bad], [1, 0])


# --------------------------------------------------------------------------- SemSimLoss
def _model_with_domain() -> SemSimModel:
    return model_with_bar_domain(16)[0]


def test_the_loss_checks_the_targets_domain_by_default_and_not_when_told():
    x = torch.rand(2, 3, 40, 40)  # colour, 40x40: far from the greyscale 28x28 training images
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        SemSimLoss(_model_with_domain())(x, x)
    assert any(w.category is OutOfDomainWarning and "colour" in str(w.message) for w in record)
    loss_fn = SemSimLoss(_model_with_domain(), check_domain=False)
    assert loss_fn.check_domain is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        loss_fn(x, x)


def test_the_loss_passes_model_revision_and_compile_to_its_frozen_copy(monkeypatch, random_model):
    import semsim_metric.loss as loss_module

    calls = []

    def fake_frozen_copy(model, revision=None, *, compile=False):
        calls.append((model, revision, compile))
        return random_model

    monkeypatch.setattr(loss_module, "frozen_copy", fake_frozen_copy)
    SemSimLoss("some/model", revision="v2", compile={"backend": "eager"})
    SemSimLoss("other/model")
    assert calls == [("some/model", "v2", {"backend": "eager"}), ("other/model", None, False)]


def test_the_loss_stores_its_settings_validated(random_model):
    loss_fn = SemSimLoss(random_model, data_range=255, reduction="sum")
    assert (loss_fn.data_range, loss_fn.reduction, loss_fn.check_domain) == (255.0, "sum", True)
    assert type(loss_fn.data_range) is float
    assert SemSimLoss(random_model).reduction == "mean"
    assert SemSimLoss(random_model, check_domain=0).check_domain is False
    assert (loss_fn.lower_better, loss_fn.score_range) == (True, "0, 2")
    with pytest.raises(ValueError, match="reduction"):
        SemSimLoss(random_model, reduction="avg")
    for bad in (0, -1.0, math.inf):
        with pytest.raises(ValueError, match="data_range"):
            SemSimLoss(random_model, data_range=bad)


def test_the_loss_reduces_the_per_pair_distances_of_its_data_range(random_model):
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    per_pair = SemSimLoss(random_model, reduction="none", check_domain=False)(x, y).detach()
    assert per_pair.shape == (3,) and len(set(per_pair.tolist())) == 3
    on_255 = SemSimLoss(random_model, data_range=255, reduction="none", check_domain=False)(x * 255, y * 255)
    torch.testing.assert_close(on_255.detach(), per_pair)
    torch.testing.assert_close(SemSimLoss(random_model, reduction="sum")(x, y).detach(), per_pair.sum())
    torch.testing.assert_close(SemSimLoss(random_model)(x, y).detach(), per_pair.mean())


def test_train_switches_the_loss_but_puts_the_network_back_in_eval_mode(random_model):
    loss_fn = SemSimLoss(random_model, check_domain=False)
    loss_fn.model.train()  # e.g. someone reached in
    assert loss_fn.train() is loss_fn
    assert loss_fn.training and not loss_fn.model.training
    assert loss_fn.train(False) is loss_fn and not loss_fn.training
    assert loss_fn.eval() is loss_fn and not loss_fn.training and not loss_fn.model.training


def test_casts_reach_the_network_only_when_recursing(random_model):
    loss_fn = SemSimLoss(random_model, check_domain=False)
    assert loss_fn._apply(lambda t: t.double(), recurse=False) is loss_fn
    assert loss_fn.model.backbone.conv1.weight.dtype == torch.float32
    assert loss_fn.double() is loss_fn
    assert loss_fn.model.backbone.conv1.weight.dtype == torch.float64
    assert random_model.backbone.conv1.weight.dtype == torch.float32


def test_casts_still_reach_submodules_a_subclass_registers(random_model):
    class WeightedLoss(SemSimLoss):
        def __init__(self, model) -> None:
            super().__init__(model, check_domain=False)
            self.head = torch.nn.Linear(2, 2)

    loss_fn = WeightedLoss(random_model).double()
    assert loss_fn.head.weight.dtype == torch.float64
    assert loss_fn.model.backbone.conv1.weight.dtype == torch.float64


def test_only_the_old_network_keys_are_dropped_when_loading(random_model):
    loss_fn = SemSimLoss(random_model, check_domain=False)
    old = {f"model.{k}": v for k, v in random_model.state_dict().items()}
    result = loss_fn.load_state_dict(old, strict=True)
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    # inside another module (prefix "loss_fn."): its old "loss_fn.model.*" keys are dropped, nothing else
    holder = torch.nn.ModuleDict({"loss_fn": SemSimLoss(random_model, check_domain=False)})
    result = holder.load_state_dict({f"loss_fn.{k}": v for k, v in old.items()}, strict=True)
    assert (result.missing_keys, result.unexpected_keys) == ([], [])
    with pytest.raises(RuntimeError, match=r"Unexpected key.*model\.x"):
        holder.load_state_dict({"model.x": torch.zeros(1)}, strict=True)
    with pytest.raises(RuntimeError, match=r"Unexpected key.*models\.x"):
        loss_fn.load_state_dict({"models.x": torch.zeros(1)}, strict=True)
    with pytest.raises(RuntimeError, match=r"Unexpected key.*other\.model\.x"):
        loss_fn.load_state_dict({"other.model.x": torch.zeros(1)}, strict=True)


def test_contradiction_rate_refuses_scores_of_different_lengths():
    with pytest.raises(ValueError, match="2 and 3 values"):
        contradiction_rate(np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3]))
