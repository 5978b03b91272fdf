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
    assert main(["evaluate", "--table", str(table), "--metric", "psnr:higher", "--label", "n_correct>=3"]) == 2
    assert "no column 'n_correct'" in capsys.readouterr().err
