"""The published held-out numbers and the default model's calibration are reproducible from committed files.

`docs/heldout/scores/` holds the per-row values of every metric on every held-out split (written by
`semsim evaluate --heldout`, copied by `scripts/publish_heldout.py`). These tests recompute the summary
from them and compare it with what the docs and the bundled model card publish.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCORES = ROOT / "docs" / "heldout" / "scores"
PUBLISHED = ROOT / "docs" / "heldout" / "heldout_summary.json"
BUNDLED = (
    ROOT / "hub" / "semsim-resnet18-fmnist-judged"
)  # the shipped folder (the package bundles its weights, config, card)


@pytest.fixture(scope="module")
def recomputed():
    from semsim_metric.evaluation.heldout import summary_from_scores

    return summary_from_scores(SCORES, n_boot=0)  # the point estimates do not depend on the bootstrap


def test_the_published_summary_is_recomputed_from_the_committed_scores(recomputed):
    published = json.loads(PUBLISHED.read_text())
    key = lambda s: (s["protocol"], s["recipe"])  # noqa: E731
    assert sorted(map(key, recomputed)) == sorted(map(key, published))
    by_key = {key(s): s for s in recomputed}
    for s in published:
        mine = by_key[key(s)]
        for field in ("rows", "groups", "best_baseline"):
            assert mine[field] == s[field], (key(s), field)
        for field in (
            "semsim_auc",
            "ssim_auc",
            "psnr_auc",
            "best_baseline_auc",
            "semsim_kendall",
            "ssim_kendall",
        ):
            a, b = mine[field], s[field]
            if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
                assert (a is None or math.isnan(a)) and (b is None or math.isnan(b)), (key(s), field)
            else:
                assert a == pytest.approx(b, abs=1e-9), (key(s), field)


def test_the_model_card_quotes_the_recomputed_numbers(recomputed):
    config = json.loads((BUNDLED / "config.json").read_text())
    card = (BUNDLED / "README.md").read_text()
    info = json.loads((BUNDLED / "training_info.json").read_text())
    recipe = info["recipe"]["name"]
    mine = [s for s in recomputed if s["recipe"] == recipe]
    assert mine, f"the held-out scores do not hold the default's recipe {recipe}"
    for s in mine:
        assert f"| {s['protocol']} | {recipe} | {s['rows']} | {s['semsim_auc']:.3f}" in card, s["protocol"]
    assert config["calibration"]["n"] == next(s["rows"] for s in mine if s["protocol"] == "unseen-originals")


def test_the_default_calibration_is_refitted_from_the_committed_scores():
    """The calibration was fitted on the held-out model's distances on unseen originals: the same values."""
    import csv
    import gzip

    from semsim_metric.training.calibration import fit_calibration

    config = json.loads((BUNDLED / "config.json").read_text())
    recipe = json.loads((BUNDLED / "training_info.json").read_text())["recipe"]["name"]
    entry = next(
        e for e in json.loads((SCORES / "index.json").read_text()) if e["protocol"] == "unseen-originals"
    )
    with gzip.open(SCORES / entry["file"], "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    d = np.array([float(r[f"SemSim[{recipe}]"]) for r in rows])
    y = np.array([r["recognized"] == "1" for r in rows])
    refit = fit_calibration(d, y, fitted_on="test")
    assert refit["intercept"] == pytest.approx(config["calibration"]["intercept"], abs=2e-3)
    assert refit["slope"] == pytest.approx(config["calibration"]["slope"], abs=2e-3)


def test_the_package_bundles_the_shipped_folder():
    bundled = ROOT / "src" / "semsim_metric" / "_bundled" / "semsim-resnet18-fmnist-judged"
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (bundled / name).read_bytes() == (BUNDLED / name).read_bytes(), name
