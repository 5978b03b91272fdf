"""Held-out over image domains, per-domain entries, calibration (ECE) per domain / victim architecture,
pooled vs per-architecture ROC-AUC, and the scores files that carry all of it."""

from __future__ import annotations

import csv
import gzip
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from semsim_metric.evaluation.heldout import (
    ECE_TARGET,
    build_protocol_splits,
    calibration_table,
    domain_subset_name,
    expand_protocols,
    summary_from_scores,
    summary_table,
    write_scores,
)
from semsim_metric.evaluation.statistics import expected_calibration_error

DOMAINS = ("emoji_scenes", "fashion_mnist")


def _rows(n_originals: int = 20) -> list[dict]:
    """Schema-like rows: originals 0..9 are emoji scenes, the rest Fashion-MNIST; three settings each."""
    settings = [("lenet_e0", "lenet", "ig"), ("conv_e0", "conv", "ig"), ("conv_e1", "conv", "l2")]
    return [
        {
            "original_id": f"o{o}",
            "source_dataset": DOMAINS[0] if o < n_originals // 2 else DOMAINS[1],
            "victim": v,
            "victim_arch": arch,
            "victim_train_epochs": 0,
            "attack": a,
            "defense": "none",
            "recognized": (o + k) % 2 == 0,
        }
        for o in range(n_originals)
        for k, (v, arch, a) in enumerate(settings)
    ]


# --------------------------------------------------------------------------- the domain protocol
def test_leaving_a_domain_out_evaluates_every_row_of_it_and_never_trains_on_its_originals():
    rows = _rows()
    held = [r for r in rows if r["source_dataset"] == "emoji_scenes"]
    splits, name = build_protocol_splits(rows, "domain=emoji_scenes", seed=3)
    assert name == "test_domain"
    assert sorted(r["original_id"] + r["victim"] for r in splits[name]) == sorted(
        r["original_id"] + r["victim"] for r in held
    )
    held_ids = {r["original_id"] for r in held}
    for split in ("train", "validation"):
        assert splits[split], split
        assert all(r["source_dataset"] == "fashion_mnist" for r in splits[split]), split
        assert not held_ids & {r["original_id"] for r in splits[split]}, split


def test_an_original_shared_with_the_held_out_domain_is_not_trained_on():
    rows = _rows()
    shared = dict(
        rows[0], source_dataset="fashion_mnist", victim="conv_e4"
    )  # o0 is an emoji-scenes original too
    splits, name = build_protocol_splits([*rows, shared], "domain=emoji_scenes")
    trained = {r["original_id"] for split in ("train", "validation", "test") for r in splits[split]}
    assert "o0" not in trained
    assert {r["original_id"] for r in splits[name]} == {f"o{i}" for i in range(10)}


def test_a_domain_the_data_lacks_is_refused():
    with pytest.raises(ValueError, match="selects no rows"):
        build_protocol_splits(_rows(), "domain=cifar100")
    with pytest.raises(
        ValueError, match="no name, or an empty one, after domain="
    ):  # malformed: the parser says
        build_protocol_splits(_rows(), "domain=")


def test_a_single_domain_cannot_be_left_out():
    rows = [dict(r, source_dataset="fashion_mnist") for r in _rows()]
    with pytest.raises(ValueError, match="no rows of another domain"):
        build_protocol_splits(rows, "domain=fashion_mnist")


def test_all_adds_one_protocol_per_domain_only_when_the_data_has_two_or_more():
    rows = _rows()
    protocols = [str(p) for p in expand_protocols(rows, ["all"])]
    assert [p for p in protocols if p.startswith("domain=")] == [
        "domain=emoji_scenes",
        "domain=fashion_mnist",
    ]
    assert protocols[0] == "unseen-originals" and "victim_arch=conv" in protocols and "attack=l2" in protocols
    one = [dict(r, source_dataset="fashion_mnist") for r in rows]
    assert not [p for p in expand_protocols(one, ["all"]) if p.axis == "domain"]
    unknown = [
        dict(r, source_dataset="" if r["source_dataset"] == "emoji_scenes" else "fashion_mnist") for r in rows
    ]
    assert not [p for p in expand_protocols(unknown, ["all"]) if p.axis == "domain"]  # "" is no domain


# --------------------------------------------------------------------------- expected calibration error
def test_expected_calibration_error_by_hand():
    p = [0.05, 0.15, 0.15, 0.62, 0.68, 0.95]
    y = [0, 0, 1, 1, 0, 1]
    # bins of width 0.1: [0, .1) p .05 y 0 -> .05; [.1, .2) p .15 y .5 -> .35 (2 rows);
    # [.6, .7) p .65 y .5 -> .15 (2 rows); [.9, 1] p .95 y 1 -> .05; weighted by rows: (.05 + .7 + .3 + .05) / 6
    assert expected_calibration_error(p, y) == pytest.approx(1.1 / 6)
    assert expected_calibration_error(p, y, n_bins=1) == pytest.approx(abs(np.mean(p) - np.mean(y)))
    assert expected_calibration_error([1.0, 0.0], [1, 0]) == 0.0  # p = 1 falls in the last (closed) bin
    assert expected_calibration_error([0.9, 0.9], [0, 0]) == pytest.approx(0.9)
    assert math.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError):
        expected_calibration_error([1.2], [1])
    with pytest.raises(ValueError):
        expected_calibration_error([0.5, 0.5], [1])


# --------------------------------------------------------------------------- scores files and the summary
class _Split:
    """The part of a ``datasets.Dataset`` that ``write_scores`` reads."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.column_names = list(rows[0])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list:
        return [r[column] for r in self.rows]


def _scored_split(seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for o in range(40):
        for k, (victim, arch) in enumerate([("lenet_e0", "lenet"), ("conv_e0", "conv"), ("conv_e1", "conv")]):
            rows.append(
                {
                    "reconstruction_id": f"r{o}-{k}",
                    "original_id": f"o{o}",
                    "victim": victim,
                    "victim_arch": arch,
                    "source_dataset": DOMAINS[o % 2],
                    "recognized": bool(rng.random() < 0.3 + 0.4 * (k == 0)),
                }
            )
    y = np.array([r["recognized"] for r in rows])
    distance = np.clip(0.8 - 0.5 * y + rng.normal(0, 0.25, len(y)), 0, 2).astype(np.float32)
    ssim = np.clip(0.5 + 0.3 * y + rng.normal(0, 0.3, len(y)), -1, 1).astype(np.float32)
    values = {"SemSim[quick]": distance, "SSIM": ssim}
    p = 1 / (1 + np.exp(-(2.0 - 4.0 * distance.astype(np.float64))))
    return _Split(rows), values, {"SemSim[quick]": p}


def test_scores_round_trip_with_domain_victim_arch_and_probability_columns(tmp_path):
    split, values, probabilities = _scored_split()
    path = write_scores(
        tmp_path,
        "unseen-originals",
        "unseen-originals (test, 120 rows)",
        split,
        values,
        "victim",
        {},
        ["quick"],
        probabilities=probabilities,
        eval_split="test",
    )
    with gzip.open(path, "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["domain"] for r in rows] == split["source_dataset"]
    assert [r["victim_arch"] for r in rows] == split["victim_arch"]
    assert np.array_equal([float(r["p[SemSim[quick]]"]) for r in rows], probabilities["SemSim[quick]"])
    assert np.array_equal([float(r["SemSim[quick]"]) for r in rows], values["SemSim[quick]"].astype(float))

    summary = summary_from_scores(tmp_path, n_boot=50)
    by_protocol = {s["protocol"]: s for s in summary}
    # the probability column is no metric of its own
    assert all(s["best_baseline"] == "SSIM" for s in summary)
    whole = by_protocol["unseen-originals"]
    y = np.array(split["recognized"])
    p = probabilities["SemSim[quick]"]
    assert whole["semsim_auc"] == pytest.approx(roc_auc_score(y, -values["SemSim[quick]"]))
    assert whole["semsim_ece"] == pytest.approx(expected_calibration_error(p, y))
    domains, archs = np.array(split["source_dataset"]), np.array(split["victim_arch"])
    for d in DOMAINS:
        assert whole["semsim_ece_per_domain"][d] == pytest.approx(
            expected_calibration_error(p[domains == d], y[domains == d])
        )
    for a in ("conv", "lenet"):
        m = archs == a
        assert whole["semsim_ece_per_arch"][a] == pytest.approx(expected_calibration_error(p[m], y[m]))
        assert whole["semsim_auc_per_arch"][a] == pytest.approx(
            roc_auc_score(y[m], -values["SemSim[quick]"][m])
        )
        assert whole["ssim_auc_per_arch"][a] == pytest.approx(roc_auc_score(y[m], values["SSIM"][m]))
    mean = np.mean(list(whole["semsim_auc_per_arch"].values()))
    assert whole["semsim_auc_per_arch_mean"] == pytest.approx(mean)
    assert whole["pooled_auc_met"] == (whole["semsim_auc"] >= mean)
    eces = [
        whole["semsim_ece"],
        *whole["semsim_ece_per_domain"].values(),
        *whole["semsim_ece_per_arch"].values(),
    ]
    assert whole["ece_target_met"] == all(e <= ECE_TARGET for e in eces)

    # one entry per domain of the split, with its own bootstrap interval, every metric evaluated
    for d in DOMAINS:
        sub = by_protocol[domain_subset_name("unseen-originals", d)]
        m = domains == d
        assert (sub["parent"], sub["domain"], sub["rows"]) == ("unseen-originals", d, int(m.sum()))
        assert sub["semsim_auc"] == pytest.approx(roc_auc_score(y[m], -values["SemSim[quick]"][m]))
        assert sub["ssim_auc"] == pytest.approx(roc_auc_score(y[m], values["SSIM"][m]))
        lo, hi = sub["semsim_auc_ci"]
        assert lo <= sub["semsim_auc"] <= hi
        assert sub["semsim_ece"] == pytest.approx(expected_calibration_error(p[m], y[m]))
        assert list(sub["semsim_ece_per_domain"]) == [d]
    assert whole["parent"] is None and whole["domain"] is None
    json.dumps(summary)  # the summary stays writable as heldout_summary.json

    text = calibration_table(summary)
    assert (
        "ECE per domain" in text
        and f"emoji_scenes {whole['semsim_ece_per_domain']['emoji_scenes']:.3f}" in text
    )
    assert "| unseen-originals [domain=fashion_mnist] | quick |" in summary_table(summary)


def test_a_split_of_one_domain_gets_no_per_domain_entries(tmp_path):
    split, values, probabilities = _scored_split()
    one = _Split([dict(r, source_dataset="fashion_mnist") for r in split.rows])
    write_scores(
        tmp_path, "attack=x", "attack=x", one, values, "victim", {}, ["quick"], probabilities=probabilities
    )
    assert [s["protocol"] for s in summary_from_scores(tmp_path, n_boot=0)] == ["attack=x"]


def test_scores_files_without_the_new_columns_are_still_read(tmp_path):
    split, values, _ = _scored_split()
    with gzip.open(
        tmp_path / "old.csv.gz", "wt", newline=""
    ) as fh:  # the format before domains and probabilities
        w = csv.writer(fh)
        w.writerow(["reconstruction_id", "original_id", "group", "recognized", *values])
        for i, r in enumerate(split.rows):
            w.writerow(
                [
                    r["reconstruction_id"],
                    r["original_id"],
                    r["victim"],
                    int(r["recognized"]),
                    *(repr(float(v[i])) for v in values.values()),
                ]
            )
    (tmp_path / "index.json").write_text(
        json.dumps(
            [
                {
                    "protocol": "unseen-originals",
                    "title": "t",
                    "file": "old.csv.gz",
                    "group_by": "victim",
                    "recipes": ["quick"],
                    "skipped": {},
                }
            ]
        )
    )
    [entry] = summary_from_scores(tmp_path, n_boot=0)
    y = np.array(split["recognized"])
    assert entry["semsim_auc"] == pytest.approx(roc_auc_score(y, -values["SemSim[quick]"]))
    assert entry["semsim_ece"] is None and entry["ece_target_met"] is None and entry["pooled_auc_met"] is None
    assert "n/a (no probabilities)" in calibration_table([entry])


# --------------------------------------------------------------------------- run_heldout end to end (training stubbed)
def test_run_heldout_reports_domains_calibration_and_reproduces_from_scores(
    tmp_path, monkeypatch, tiny_model_dir
):
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder
    from semsim_metric.data.loading import load_folder_or_hub, undecoded
    from semsim_metric.evaluation import heldout
    from semsim_metric.models import SemSimModel
    from tests.helpers import DEFAULT_DATASET

    test = undecoded(load_folder_or_hub(str(DEFAULT_DATASET), split="test"))
    ids = sorted(set(test["original_id"]))[:24]
    rows = [
        dict(r, source_dataset=DOMAINS[ids.index(r["original_id"]) % 2])
        for r in test
        if r["original_id"] in ids
    ]
    folder = write_dataset_folder(
        {"test": rows}, tmp_path / "ds", DatasetCard(title="t", summary="two domains")
    )

    trained: dict[str, list[dict]] = {}

    def fake_train(dataset, run_dir, **kwargs):  # records what each model would have been trained on
        splits = load_folder_or_hub(str(dataset))
        trained[run_dir.name] = [
            {"original_id": o, "source_dataset": s, "split": name}
            for name in ("train", "validation")
            for o, s in zip(splits[name]["original_id"], splits[name]["source_dataset"])
        ]
        return SimpleNamespace(train_seconds=0.0)

    monkeypatch.setattr(heldout, "train", fake_train)
    monkeypatch.setattr(
        heldout,
        "SemSimModel",
        SimpleNamespace(from_pretrained=lambda _: SemSimModel.from_pretrained(tiny_model_dir)),
    )
    out = tmp_path / "heldout"
    results = heldout.run_heldout(
        folder,
        ["unseen-originals", "domain=emoji_scenes"],
        ["quick"],
        out,
        n_boot=20,
        baselines=["PSNR", "SSIM"],
    )

    emoji = {r["original_id"] for r in rows if r["source_dataset"] == "emoji_scenes"}
    domain_run = trained[heldout.run_folder_name("domain=emoji_scenes", "quick")]
    assert domain_run and not emoji & {r["original_id"] for r in domain_run}
    assert {r["source_dataset"] for r in domain_run} == {"fashion_mnist"}
    by_protocol = {r.protocol: r for r in results}
    assert by_protocol["domain=emoji_scenes"].report.n == sum(
        r["source_dataset"] == "emoji_scenes" for r in rows
    )

    summary = json.loads((out / "heldout_summary.json").read_text())
    skipped = json.loads((out / "heldout_skipped.json").read_text())
    names = [s["protocol"] for s in summary]
    for d in DOMAINS:  # the unseen-originals split holds both domains: each one reported (or said why not)
        sub = domain_subset_name("unseen-originals", d)
        assert (sub in names) != (sub in skipped), sub
    assert any(n.startswith("unseen-originals [domain=") for n in names)
    assert not any(n.startswith("domain=emoji_scenes [") for n in names)  # one domain: nothing to split
    for s in summary:
        assert s["semsim_ece"] is not None and set(s["semsim_ece_per_domain"]) <= set(DOMAINS)
    assert summary[names.index("domain=emoji_scenes")]["semsim_ece_per_domain"].keys() == {"emoji_scenes"}
    report = (out / "report.md").read_text()
    assert "ECE per domain" in report and "pooled >= mean" in report

    with gzip.open(out / "scores" / "domain_emoji_scenes.csv.gz", "rt", newline="") as fh:
        header = next(csv.reader(fh))
    assert {"domain", "victim_arch", "p[SemSim[quick]]"} <= set(header)
    again = summary_from_scores(out / "scores", n_boot=20)
    assert [s["protocol"] for s in again] == names
    for mine, published in zip(again, summary):
        for key in (
            "rows",
            "semsim_auc",
            "ssim_auc",
            "semsim_auc_ci",
            "semsim_ece",
            "semsim_ece_per_domain",
            "semsim_ece_per_arch",
            "semsim_auc_per_arch_mean",
            "pooled_auc_met",
            "ece_target_met",
        ):
            assert mine[key] == pytest.approx(published[key], abs=1e-12, nan_ok=True), (mine["protocol"], key)


def test_recipe_strings_never_reach_the_file_system_unslugged():
    from semsim_metric.evaluation.heldout import run_folder_name

    for recipe in ("../../etc", "/abs/path", "semantic:vote_anchor_weight=1", "a\\b"):
        name = run_folder_name("unseen-originals", recipe)
        assert "/" not in name and "\\" not in name and ".." not in name
