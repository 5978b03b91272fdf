"""Rough edges a person meets in the first hour: each one mended, each with a test that could fail."""

from __future__ import annotations

import os
import stat

import pytest


def test_saved_weights_are_readable_like_the_config(tmp_path):
    from semsim_metric import SemSimConfig, SemSimModel

    SemSimModel(SemSimConfig(base_width=2)).save_pretrained(tmp_path)
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in tmp_path.iterdir()}
    assert modes["model.safetensors"] == modes["config.json"]


@pytest.mark.parametrize("layout", ["official-labels", "official-training"])
def test_convert_says_a_missing_path_does_not_exist(tmp_path, capsys, layout):
    from semsim_metric.cli import main

    assert main(["convert", layout, str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "layout" not in err.split("does not exist")[0]


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
    from tests.test_training import DEFAULT_DATASET

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


def test_score_can_skip_unpaired_files_and_says_where_the_csv_went(
    score_folders, tmp_path, tiny_model_dir, capsys
):
    import shutil

    from semsim_metric.cli import main

    o, r = score_folders
    shutil.move(r / "b.png", r / "lonely.png")  # b.png has no reconstruction now, lonely.png no original
    args = ["score", str(o), str(r), "--model", str(tiny_model_dir), "--quiet"]
    assert main(args) == 2
    assert "--skip-unpaired" in capsys.readouterr().err
    out = tmp_path / "s.csv"
    assert main(args + ["--skip-unpaired", "--output", str(out)]) == 0
    captured = capsys.readouterr()
    assert "lonely.png" in captured.err and f"scores written to {out}" in captured.err
    assert len(out.read_text().splitlines()) == 2
    assert "p_recognised > 0.5" in captured.out  # the distance that means "leaked" under the calibration


def test_train_without_a_recipe_says_what_runs_and_fits_the_device(monkeypatch, capsys):
    import torch

    from semsim_metric.cli import main
    from semsim_metric.errors import InvalidInputError
    from semsim_metric.training import recipes

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    seen = {}

    def fake_train(dataset, output, *, recipe, **kwargs):
        seen["recipe"] = recipe
        raise InvalidInputError("stop here")  # a user error: reported, exit 2

    monkeypatch.setattr("semsim_metric.training.run.train", fake_train)
    assert main(["train", "--dataset", "x", "--output", "y"]) == 2
    err = capsys.readouterr().err
    assert seen["recipe"] == recipes.DEFAULT_MODEL_RECIPE
    assert f"recipe {recipes.DEFAULT_MODEL_RECIPE} (default for this device) on cpu" in err
    assert main(["train", "--dataset", "x", "--output", "y", "--recipe", "paper"]) == 2
    assert "take hours on a CPU" in capsys.readouterr().err


def test_a_tiny_validation_split_gets_no_calibration_and_a_warning(tmp_path):
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder
    from semsim_metric.data.loading import load_folder_or_hub, undecoded
    from semsim_metric.models import SemSimModel
    from semsim_metric.training.run import TinyDatasetWarning, TrainOptions, train
    from tests.test_training import DEFAULT_DATASET

    dsd = undecoded(load_folder_or_hub(str(DEFAULT_DATASET)))
    splits = {
        "train": list(dsd["train"].select(range(48))),
        "validation": list(dsd["validation"].select(range(6))),
        "test": list(dsd["test"].select(range(6))),
    }
    folder = write_dataset_folder(splits, tmp_path / "ds", DatasetCard(title="tiny", summary="tiny"))
    with pytest.warns(TinyDatasetWarning, match="no calibration fitted"):
        train(folder, tmp_path / "m", recipe="quick", epochs=1, options=TrainOptions(write_card=False))
    assert SemSimModel.from_pretrained(tmp_path / "m").config.calibration is None


def test_piped_output_has_no_progress_bar_noise_and_steps_are_logged(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    manifest = tmp_path / "m.csv"
    from PIL import Image

    for name in ("o", "r"):
        Image.new("L", (8, 8), 40 if name == "o" else 60).save(tmp_path / f"{name}.png")
    manifest.write_text("original,reconstruction,recognized\no.png,r.png,true\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "semsim_metric.cli"]
    out = subprocess.run(
        cmd
        + [
            "convert",
            "manifest",
            str(manifest),
            "--out",
            str(tmp_path / "ds"),
            "--annotator-kind",
            "human",
            "--fractions",
            "1,0,0",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "\r" not in out.stderr  # stderr is a pipe: no bars
    assert "semsim: writing" in out.stderr  # the step is logged instead
    quiet = subprocess.run(
        cmd
        + [
            "-q",
            "convert",
            "manifest",
            str(manifest),
            "--out",
            str(tmp_path / "ds"),
            "--annotator-kind",
            "human",
            "--fractions",
            "1,0,0",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    assert quiet.returncode == 0 and "semsim: writing" not in quiet.stderr


def test_docstrings_render_on_the_api_page():
    """mkdocstrings renders an ``Examples:`` section as code but ``Example:`` as nested blockquotes, and shows
    Sphinx roles (``:class:`...```) raw: neither may appear in the package's docstrings."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "semsim_metric"
    offenders = []
    for path in src.rglob("*.py"):
        text = path.read_text()
        if re.search(r"(?m)^\s*Example:\s*$", text) or re.search(
            r":(class|func|meth|mod|data|attr|exc):`", text
        ):
            offenders.append(path.name)
    assert not offenders


def test_convert_warns_when_a_split_ends_up_empty(tmp_path, capsys):
    from PIL import Image

    from semsim_metric.cli import main

    lines = ["original,reconstruction,recognized"]
    for i in range(3):
        Image.new("L", (8, 8), 10 * i).save(tmp_path / f"o{i}.png")
        Image.new("L", (8, 8), 10 * i + 5).save(tmp_path / f"r{i}.png")
        lines.append(f"o{i}.png,r{i}.png,{'true' if i % 2 else 'false'}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    assert (
        main(
            [
                "convert",
                "manifest",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "ds"),
                "--annotator-kind",
                "human",
            ]
        )
        == 0
    )
    assert "split(s) empty" in capsys.readouterr().err
