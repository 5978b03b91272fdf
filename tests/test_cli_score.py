"""`semsim score`: pairing by name, per-image output, CSV, and clear errors for what cannot be scored."""

import csv
import math

import numpy as np
import pytest
from PIL import Image

from semsim_metric.cli import main
from semsim_metric.pairing import file_key, pair_folders


def _png(path, seed, size=(28, 28), mode="L"):
    rng = np.random.default_rng(seed)
    shape = size[::-1] + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)


@pytest.fixture
def folders(tmp_path):
    o, r = tmp_path / "orig", tmp_path / "rec"
    o.mkdir(), r.mkdir()
    for i in range(3):
        _png(o / f"img{i}_ori.png", i)
        _png(r / f"img{i}_rec.png", 10 + i)
    _png(r / "img0__second.png", 20)
    return o, r


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("cat.png", "cat"),
        ("0042_3_rec.png", "0042_3"),
        ("0042_3_ori.jpg", "0042_3"),
        ("cat__ig.png", "cat"),
        ("cat-rec.png", "cat"),
    ],
)
def test_pairing_rule(name, key, tmp_path):
    assert file_key(tmp_path / name) == key


def test_scores_every_pair_and_writes_csv(folders, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    assert (
        main(
            [
                "score",
                str(folders[0]),
                str(folders[1]),
                "--model",
                str(tiny_model_dir),
                "--output",
                str(out),
                "--batch-size",
                "2",
                "--probability",
            ]
        )
        == 0
    )
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4
    from semsim_metric import SemSimModel

    cal = SemSimModel.from_pretrained(tiny_model_dir).config.calibration
    for r in rows:  # p_recognised is the calibration applied to the distance, written with 6 decimals
        expected = 1 / (1 + math.exp(-(cal["intercept"] + cal["slope"] * float(r["semsim"]))))
        assert float(r["p_recognised"]) == pytest.approx(expected, abs=2e-6)
    printed = capsys.readouterr().out
    assert "mean SemSim over 4 pairs" in printed


def test_unmatched_files_are_listed(folders, tiny_model_dir, capsys):
    _png(folders[1] / "stray.png", 5)
    assert main(["score", str(folders[0]), str(folders[1]), "--model", str(tiny_model_dir)]) == 2
    assert "reconstruction without original" in capsys.readouterr().err


def test_unreadable_files_are_listed_not_skipped(folders, tiny_model_dir, capsys):
    (folders[1] / "img2_rec.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["score", str(folders[0]), str(folders[1]), "--model", str(tiny_model_dir)]) == 2
    captured = capsys.readouterr()
    assert "could not be scored" in captured.err and "img2_rec.png" in captured.err
    assert "mean SemSim over 3 pairs" in captured.out


def test_size_mismatch_is_reported(folders, tiny_model_dir, capsys):
    _png(folders[1] / "img1_rec.png", 3, size=(32, 32))
    assert main(["score", str(folders[0]), str(folders[1]), "--model", str(tiny_model_dir)]) == 2
    assert "size mismatch" in capsys.readouterr().err


def test_pair_folders_reports_originals_without_reconstruction(folders):
    _png(folders[0] / "lonely.png", 9)
    result = pair_folders(*folders)
    assert [p.name for p in result.unmatched_originals] == ["lonely.png"]


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


def test_a_decompression_bomb_is_reported_per_file_and_the_rest_scored(
    score_folders, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    from PIL import Image

    from semsim_metric.cli import main

    o, r = score_folders
    Image.new("L", (64, 64)).save(o / "c.png")
    Image.new("L", (64, 64)).save(r / "c.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 > 2 x 1000 pixels: a "bomb" here
    out = tmp_path / "scores.csv"
    assert (
        main(["score", str(o), str(r), "--model", str(tiny_model_dir), "--output", str(out), "--quiet"]) == 2
    )
    err = capsys.readouterr().err
    assert "c.png" in err and "1 pair(s) could not be scored" in err
    assert len(out.read_text().splitlines()) == 3  # header + the two readable pairs


def test_an_unwritable_output_fails_before_any_scoring(
    score_folders, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    import semsim_metric.functional as functional
    from semsim_metric.cli import main

    o, r = score_folders
    calls = []
    monkeypatch.setattr(functional, "_semsim_update", lambda *a, **k: calls.append(1))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert (
        main(["score", str(o), str(r), "--model", str(tiny_model_dir), "--output", str(blocker / "s.csv")])
        == 2
    )
    assert "cannot be written" in capsys.readouterr().err and not calls


def test_score_never_replaces_a_file_it_did_not_write(score_folders, tiny_model_dir, tmp_path, capsys):
    from semsim_metric.cli import main

    o, r = score_folders
    precious = tmp_path / "notes.csv"
    precious.write_text("my,own,data\n")
    assert main(["score", str(o), str(r), "--model", str(tiny_model_dir), "--output", str(precious)]) == 2
    assert precious.read_text() == "my,own,data\n"
    assert (
        main(
            [
                "score",
                str(o),
                str(r),
                "--model",
                str(tiny_model_dir),
                "--output",
                str(precious),
                "--overwrite",
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(["score", str(o), str(r), "--model", str(tiny_model_dir), "--output", str(precious), "--quiet"])
        == 0
    )


def test_a_batch_without_one_readable_pair_does_not_stop_the_pairs_after_it(folders, tiny_model, tmp_path):
    """``score_file_pairs``: a batch whose every pair is unreadable is listed in ``problems`` and scoring goes on."""
    from semsim_metric.functional import score_file_pairs

    broken = tmp_path / "broken_ori.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    o, r = folders
    pairs = [
        (broken, r / "img0_rec.png"),
        (o / "img1_ori.png", r / "img1_rec.png"),
        (o / "img2_ori.png", r / "img2_rec.png"),
    ]
    scored = score_file_pairs(pairs, tiny_model, batch_size=1, progress=False, check_domain=False)
    assert [row.reconstruction for row in scored.rows] == [str(r / "img1_rec.png"), str(r / "img2_rec.png")]
    assert len(scored.problems) == 1 and "broken_ori.png" in scored.problems[0]


def test_the_first_batchs_content_is_compared_with_the_training_domain(tmp_path):
    """``score_file_pairs`` warns once when the originals' content lies outside what the model was trained on (noise
    beside a model trained on bright bars), and stays silent for originals like the training ones."""
    import warnings

    from semsim_metric.domain import OutOfDomainWarning
    from semsim_metric.functional import score_file_pairs
    from tests.helpers import model_with_bar_domain

    model, bars = model_with_bar_domain(32)

    def pairs(kind: str) -> list:
        out = []
        for i in range(4):
            o, r = tmp_path / f"{kind}{i}_ori.png", tmp_path / f"{kind}{i}_rec.png"
            image = (
                bars[i, 0].numpy()
                if kind == "bar"
                else np.random.default_rng(i).integers(0, 256, (28, 28), np.uint8)
            )
            Image.fromarray(image, "L").save(o)
            Image.fromarray(image, "L").save(r)
            out.append((o, r))
        return out

    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        assert len(score_file_pairs(pairs("bar"), model, progress=False).rows) == 4
    with pytest.warns(OutOfDomainWarning, match="look unlike bar images"):
        score_file_pairs(pairs("noise"), model, progress=False)
