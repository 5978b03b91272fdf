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


def _merge_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "merge_heldout_scores", ROOT / "scripts" / "merge_heldout_scores.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _small_protocol_split_by_recipe(tmp_path):
    """The published scores of one small protocol, written as two runs that each hold half of its recipes."""
    import csv
    import gzip

    entry = next(e for e in json.loads((SCORES / "index.json").read_text()) if e["protocol"] == "attack=idlg")
    with gzip.open(SCORES / entry["file"], "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        columns, rows = list(reader.fieldnames), list(reader)
    halves = [entry["recipes"][:2], entry["recipes"][2:]]
    runs = []
    for i, recipes in enumerate(halves):
        run = tmp_path / f"run{i}"
        run.mkdir()
        others = {r for half in halves if half is not recipes for r in half}
        keep = [c for c in columns if not any(c in (f"SemSim[{r}]", f"p[SemSim[{r}]]") for r in others)]
        (run / "index.json").write_text(json.dumps([{**entry, "recipes": recipes}]))
        with gzip.open(run / entry["file"], "wt", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keep, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows[::-1] if i else rows)  # the join is by id, not by position
        runs.append(run)
    return entry, runs


def test_merged_scores_put_the_recipes_of_two_runs_side_by_side_with_unchanged_values(tmp_path):
    from semsim_metric.evaluation.heldout import summary_from_scores

    entry, runs = _small_protocol_split_by_recipe(tmp_path)
    index = _merge_script().merge(tmp_path / "merged", runs)
    assert [e["recipes"] for e in index] == [entry["recipes"]]
    merged = summary_from_scores(tmp_path / "merged", n_boot=0)
    whole = tmp_path / "whole"
    whole.mkdir()
    (whole / "index.json").write_text(json.dumps([entry]))
    (whole / entry["file"]).write_bytes((SCORES / entry["file"]).read_bytes())
    published = summary_from_scores(whole, n_boot=0)
    assert len(merged) == len(published) == 4 * 3  # four recipes, all rows and each of the two domains
    for got, want in zip(merged, published, strict=True):
        assert (got["protocol"], got["recipe"]) == (want["protocol"], want["recipe"])
        assert got["semsim_auc"] == pytest.approx(want["semsim_auc"]) and got["semsim_ece"] == pytest.approx(
            want["semsim_ece"]
        )


def test_merging_runs_whose_rows_differ_is_refused(tmp_path):
    import gzip

    bad = tmp_path / "bad"
    bad.mkdir()
    entry = json.loads((SCORES / "index.json").read_text())[3]  # a small protocol
    (bad / "index.json").write_text(json.dumps([entry]))
    with gzip.open(SCORES / entry["file"], "rt") as fh:
        lines = fh.readlines()
    with gzip.open(bad / entry["file"], "wt") as fh:
        fh.writelines(lines[:-1])  # one held-out row fewer
    with pytest.raises(SystemExit, match="other rows"):
        _merge_script().merge(tmp_path / "merged", [SCORES, bad])


def _assert_section_table_is_recomputed(
    section: str, columns: list[tuple[Path, str]], protocols_from: Path
) -> None:
    """The table of ``docs/heldout.md``'s ``## <section>``: one row per protocol of ``protocols_from`` and a mean
    row, one ROC-AUC column per (scores folder, metric column), recomputed from the per-row scores."""
    import csv
    import gzip

    from sklearn.metrics import roc_auc_score

    text = (ROOT / "docs" / "heldout.md").read_text()
    body_text = text.split(f"## {section}")[1].split("\n## ")[0]
    rows = [line for line in body_text.splitlines() if line.startswith("| ") and "---" not in line]
    header, body = rows[0], rows[1:]
    assert header.count("|") == len(columns) + 2
    protocols = [e["protocol"] for e in json.loads((protocols_from / "index.json").read_text())]
    assert len(body) == len(protocols) + 1
    aucs = np.zeros((len(protocols), len(columns)))
    for i, protocol in enumerate(protocols):
        for j, (folder, column) in enumerate(columns):
            entry = next(
                e for e in json.loads((folder / "index.json").read_text()) if e["protocol"] == protocol
            )
            with gzip.open(folder / entry["file"], "rt", newline="") as fh:
                table = list(csv.DictReader(fh))
            y = [r["recognized"] == "1" for r in table]
            v = np.array([float(r[column]) for r in table])
            aucs[i, j] = roc_auc_score(y, v if column == "SSIM" else -v)  # SemSim is a distance
    for values, line in zip([*aucs, aucs.mean(axis=0)], body, strict=True):
        published = [float(c.strip("* ")) for c in line.split("|")[2:-1]]
        assert published == pytest.approx(values, abs=6e-4), line


#: the network recipe of v7 and v8 (they differ in the layout, which is set after training)
V7_NETWORK = "colour:embedding=spatial,vote_anchor_copy_centre=-1,vote_adversarial_share=0"


def test_the_smoothed_embedding_table_is_what_the_committed_scores_give():
    """docs/heldout.md's table of the smoothed-embedding experiment, recomputed from the per-row scores."""
    smooth = "colour:vote_anchor_copy_centre=-1,vote_adversarial_share=0"
    v7_run = ROOT / "docs" / "heldout" / "v7-scores"
    columns = [
        (v7_run, f"SemSim[{V7_NETWORK}]"),
        (v7_run, f"SemSim[{V7_NETWORK},layout_weight=0.5]"),
        *(
            (ROOT / "docs" / "heldout" / "smooth-embedding-scores", f"SemSim[{smooth}{w}]")
            for w in ("", ",layout_weight=0.3", ",layout_weight=0.5")
        ),
        (v7_run, "SSIM"),
    ]
    _assert_section_table_is_recomputed("A smoothed embedding for shift invariance", columns, v7_run)


def test_the_layout_table_is_what_the_committed_scores_give():
    """docs/heldout.md's table of the layout choice (v8), recomputed from the per-row scores."""
    sizes = ROOT / "docs" / "heldout" / "layout-size-scores"
    columns = [
        (SCORES, f"SemSim[{V7_NETWORK},layout_weight=0.5]"),
        *(
            (sizes, f"SemSim[{V7_NETWORK},layout_weight={w},layout_size={n}]")
            for n, w in ((8, 0.5), (8, 0.7), (4, 0.5), (4, 0.7))
        ),
        *(
            (SCORES, f"SemSim[{V7_NETWORK},layout_weight={w},layout_channels=luminance]")
            for w in (0.3, 0.5, 0.7)
        ),
        (SCORES, "SSIM"),
    ]
    _assert_section_table_is_recomputed("How the layout was chosen (v8)", columns, SCORES)
