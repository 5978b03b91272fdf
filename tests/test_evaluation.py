"""Evaluation: statistics against scipy/sklearn, metric orientation, skipped baselines, the real-human table."""

import csv
import json

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.evaluation import (
    BASELINES,
    best_threshold_accuracy,
    contradiction_rate,
    evaluate_table,
    image_level,
    leakage_score,
    model_level,
    pair_metric_values,
)
from tests.conftest import shared_file

rng = np.random.default_rng(0)


def test_image_level_auc_matches_sklearn():
    y = rng.integers(0, 2, 200).astype(bool)
    s = rng.normal(size=200) + y
    res = image_level(y, s, np.arange(200) // 4, n_boot=200)
    assert res["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    lo, hi = res["roc_auc_ci"]
    assert lo < res["roc_auc"] < hi


def test_best_threshold_accuracy_brute_force():
    y = rng.integers(0, 2, 60).astype(bool)
    s = np.round(rng.normal(size=60) + y, 1)
    brute = max(((s >= t) == y).mean() for t in np.r_[s, np.inf])
    assert best_threshold_accuracy(y, s) == pytest.approx(brute)


def test_model_level_matches_scipy():
    groups = np.repeat(np.arange(8), 30)
    y = rng.random(240) < np.repeat(np.linspace(0.1, 0.9, 8), 30)
    s = rng.normal(size=240) + groups * 0.3
    res = model_level(groups, y, s, np.tile(np.arange(30), 8), n_boot=100)
    means = np.array([s[groups == g].mean() for g in range(8)])
    shares = np.array([y[groups == g].mean() for g in range(8)])
    assert res["spearman"] == pytest.approx(stats.spearmanr(means, shares)[0])
    assert res["kendall"] == pytest.approx(stats.kendalltau(means, shares)[0])
    assert res["pearson"] == pytest.approx(stats.pearsonr(means, shares)[0])
    assert res["kendall_p"] == pytest.approx(stats.kendalltau(means, shares)[1])
    assert len(res["spearman_ci"]) == 2


def test_contradiction_rate_of_a_metric_and_its_mirror():
    a = rng.normal(size=500)
    assert contradiction_rate(a, a) == 0.0
    assert contradiction_rate(a, -a) == 1.0


@pytest.mark.parametrize(
    ("name", "higher_is_leakage"),
    [("PSNR", True), ("SSIM", True), ("MSE", False), ("SemSim", False), ("GMSD", False), ("LPIPS", False)],
)
def test_orientation(name, higher_is_leakage):
    v = np.array([1.0, 2.0])
    assert (leakage_score(name, v)[1] > leakage_score(name, v)[0]) == higher_is_leakage


def test_distances_are_flipped_so_agreement_is_positive():
    y = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    mse = np.array([0.01, 0.02, 0.03, 0.2, 0.3, 0.4])
    rep = evaluate_table({"MSE": mse}, y, np.array(list("abcabc")), n_boot=0)
    assert rep.image["MSE"]["roc_auc"] == 1.0


def test_baselines_that_cannot_run_are_listed_with_a_reason(tiny_model):
    import io

    import datasets
    from PIL import Image

    def img(seed):
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)).save(
            buf, "PNG"
        )
        return {"bytes": buf.getvalue(), "path": None}

    ds = datasets.Dataset.from_dict(
        {"original": [img(i) for i in range(4)], "reconstruction": [img(9 + i) for i in range(4)]},
        features=datasets.Features({"original": datasets.Image(), "reconstruction": datasets.Image()}),
    )
    skipped = {}
    values = pair_metric_values(
        {"SemSim": tiny_model}, ds, baselines=["PSNR", "MS-SSIM", "LPIPS"], skipped=skipped
    )
    assert set(values) == {"SemSim", "PSNR"}
    assert "161" in skipped["MS-SSIM"] and "not available offline" in skipped["LPIPS"]
    assert values["SemSim"].shape == (4,)


def test_every_weight_free_baseline_runs_on_small_greyscale_images(tiny_model):
    import torch

    x = torch.rand(3, 1, 32, 32).expand(-1, 3, -1, -1)
    y = torch.rand(3, 1, 32, 32).expand(-1, 3, -1, -1)
    for name, spec in BASELINES.items():
        if spec.needs_weights or spec.min_size > 32:
            continue
        out = spec.fn(x, y)
        assert out.reshape(-1).shape == (3,), name


def test_reproduces_the_real_human_cifar100_table():
    path = shared_file("semsim_cifar100_human_labels.csv")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    y = np.array([int(r["n_correct"]) >= 3 for r in rows])
    groups = np.array([r["victim"] for r in rows])
    from semsim_metric.evaluation import MetricSpec

    specs = {
        "psnr": MetricSpec("psnr", None, True),
        "ssim": MetricSpec("ssim", None, True),
        "mse": MetricSpec("mse", None, False),
        "lpips_squeeze": MetricSpec("lpips", None, False),
        "dreamsim": MetricSpec("dreamsim", None, False),
    }
    values = {k: np.array([float(r[k]) for r in rows]) for k in specs}
    rep = evaluate_table(values, y, groups, specs=specs, n_boot=0)
    published = {  # ../shared/data/README.md
        "psnr": (0.745, 0.538, 0.659, 0.606),
        "ssim": (0.495, 0.363, 0.315, 0.585),
        "mse": (0.710, 0.495, 0.653, 0.606),
        "lpips_squeeze": (0.820, 0.626, 0.741, 0.698),
        "dreamsim": (0.358, 0.253, 0.611, 0.706),
    }
    for k, (sp, ke, pe, auc) in published.items():
        got = (
            rep.model[k]["spearman"],
            rep.model[k]["kendall"],
            rep.model[k]["pearson"],
            rep.image[k]["roc_auc"],
        )
        assert got == pytest.approx((sp, ke, pe, auc), abs=6e-4), k
    assert rep.recognised_share == pytest.approx(0.554, abs=5e-4)


@pytest.mark.slow
def test_cli_end_to_end_on_a_tiny_dataset(tmp_path, tiny_model_dir):

    from semsim_metric.cli import main
    from tests.helpers import DEFAULT_DATASET

    test = load_folder_or_hub(str(DEFAULT_DATASET), split="test")
    ids = sorted(set(test["original_id"]))[:10]
    test.filter(lambda r: r["original_id"] in ids).to_parquet(
        str(tmp_path / "ds" / "data" / "test-00000-of-00001.parquet")
    )
    out = tmp_path / "report"
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "ds"),
                "--model",
                str(tiny_model_dir),
                "--bootstrap",
                "50",
                "--baselines",
                "PSNR,SSIM,MS-SSIM,LPIPS",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())[0]
    assert set(report["image_level"]) == {"SemSim", "PSNR", "SSIM"}
    assert set(report["skipped"]) == {"MS-SSIM", "LPIPS"}
    assert (out / "report.md").read_text().count("![") == 2
    assert any(p.suffix == ".png" for p in out.iterdir())


def test_heldout_protocol_splits_keep_originals_apart():
    from semsim_metric.evaluation.heldout import build_protocol_splits

    rows = [
        {
            "original_id": f"o{o}",
            "victim": v,
            "victim_arch": v.split("_")[0],
            "victim_train_epochs": 0,
            "attack": a,
            "recognized": (o + k) % 2 == 0,
        }
        for o in range(20)
        for k, (v, a) in enumerate([("lenet_e0", "ig"), ("conv_e0", "ig"), ("conv_e1", "l2")])
    ]
    for protocol, split_name, check in [
        ("victim_arch=conv", "test_victim", lambda r: r["victim_arch"] == "conv"),
        ("attack=l2", "test_attack", lambda r: r["attack"] == "l2"),
        ("unseen-originals", "test", lambda r: True),
    ]:
        splits, name = build_protocol_splits(rows, protocol)
        assert name == split_name and splits[name] and all(check(r) for r in splits[name])
        train_ids = {r["original_id"] for r in splits["train"]}
        assert not train_ids & {r["original_id"] for r in splits[name]}
        if protocol != "unseen-originals":
            assert not any(check(r) for r in splits["train"])
    with pytest.raises(ValueError, match="unknown protocol"):
        build_protocol_splits(rows, "colour=red")


@pytest.mark.slow
def test_heldout_cli_trains_and_reports(tmp_path):

    from semsim_metric.cli import main
    from tests.helpers import DEFAULT_DATASET

    full = load_folder_or_hub(str(DEFAULT_DATASET))
    ids = sorted(set(full["train"]["original_id"]))[:20]
    full["train"].filter(lambda r: r["original_id"] in ids).to_parquet(
        str(tmp_path / "ds" / "data" / "train-00000-of-00001.parquet")
    )
    out = tmp_path / "heldout"
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "ds"),
                "--heldout",
                "attack=l2_gradient_matching",
                "--recipe",
                "quick",
                "--epochs",
                "1",
                "--base-width",
                "4",
                "--baselines",
                "PSNR,SSIM",
                "--bootstrap",
                "20",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = json.loads((out / "heldout_summary.json").read_text())
    assert summary[0]["protocol"] == "attack=l2_gradient_matching"
    from semsim_metric.evaluation.heldout import summary_from_scores

    again = summary_from_scores(out / "scores", n_boot=0)[0]  # the per-row scores reproduce the summary
    assert again["semsim_auc"] == pytest.approx(summary[0]["semsim_auc"], abs=1e-12)
    assert again["ssim_auc"] == pytest.approx(summary[0]["ssim_auc"], abs=1e-12)
    assert "AUC target met" in (out / "report.md").read_text()


def test_evaluate_table_reports_a_missing_file_without_a_traceback(tmp_path, capsys):
    from semsim_metric.cli import main

    assert main(["evaluate", "--table", str(tmp_path / "missing.csv"), "--metric", "psnr:higher"]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_evaluate_table_names_a_missing_label_column(tmp_path, capsys):
    from semsim_metric.cli import main

    table = tmp_path / "t.csv"
    table.write_text("psnr,victim\n1,a\n2,b\n")
    assert (
        main(["evaluate", "--table", str(table), "--metric", "psnr:higher", "--label", "n_correct>=3"]) == 2
    )
    assert "no column 'n_correct'" in capsys.readouterr().err


def test_evaluate_refuses_originals_the_model_was_trained_on(tmp_path, tiny_model_dir, capsys):
    import json
    import shutil

    from semsim_metric.cli import main
    from semsim_metric.data.loading import load_folder_or_hub, undecoded
    from semsim_metric.domain import image_fingerprint
    from semsim_metric.image_io import decode_image
    from tests.helpers import DEFAULT_DATASET

    test = load_folder_or_hub(str(DEFAULT_DATASET), split="test").select(range(12))
    ds = tmp_path / "ds"
    test.to_parquet(str(ds / "data" / "test-00000-of-00001.parquet"))
    raw = undecoded(test)
    seen_ids = sorted(set(raw["original_id"]))[:2]
    fingerprints = sorted(
        {image_fingerprint(decode_image(r["original"])) for r in raw if r["original_id"] in seen_ids}
    )
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    cfg = json.loads((model / "config.json").read_text())
    cfg["training_domain"] = {
        "description": "test",
        "n": 2,
        "channels": [1],
        "image_sizes": [[28, 28]],
        "original_fingerprints": fingerprints,
    }
    (model / "config.json").write_text(json.dumps(cfg))
    args = ["evaluate", str(ds), "--model", str(model), "--baselines", "SSIM", "--bootstrap", "5"]
    assert main(args) == 2
    err = capsys.readouterr().err
    n_total = len(set(raw["original_id"]))
    assert f"2 of {n_total} originals were training data" in err and "--allow-seen" in err
    assert main(args + ["--allow-seen", "--out", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "report.json").read_text())[0]
    assert any("in-sample" in k for k in report["notes"])
