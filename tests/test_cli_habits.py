"""pyiqa and command-line habits (issue 22): files and PIL images as inputs, `semsim score a.png b.png` and
`--format json`, pyiqa's `lower_better` / `score_range`, warnings at the caller's line and as one CLI line naming
the CLI's switch, progress on long steps, and refusals before heavy work."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from semsim_metric import SemSim, SemSimLoss, SemSimModel, semsim
from semsim_metric.cli import main
from semsim_metric.domain import OutOfDomainWarning
from semsim_metric.errors import SemSimError
from semsim_metric.functional import ImageFileError, ImageInputError
from semsim_metric.image_io import load_image


def _save(path: Path, seed: int, size: tuple[int, int] = (28, 28), mode: str = "L") -> Path:
    rng = np.random.default_rng(seed)
    shape = size[::-1] + ((3,) if mode == "RGB" else ())
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


@pytest.fixture
def files(tmp_path):
    """Three originals and three reconstructions, greyscale 28x28 PNGs."""
    origs = [_save(tmp_path / f"o{i}.png", i) for i in range(3)]
    recs = [_save(tmp_path / f"r{i}.png", 10 + i) for i in range(3)]
    return origs, recs


def _as_batch(paths):
    return torch.stack([load_image(p) for p in paths])


# ----------------------------------------------------------------------------------- 1. files and PIL images
def test_semsim_takes_file_paths_and_pil_images_as_pyiqa_does(files, tiny_model):
    origs, recs = files
    expected = semsim(_as_batch(recs), _as_batch(origs), model=tiny_model, data_range=255, reduction="none")
    by_path = semsim([str(p) for p in recs], [str(p) for p in origs], model=tiny_model, reduction="none")
    by_pathlike = semsim(recs, origs, model=tiny_model, reduction="none")
    pils = [Image.open(p) for p in recs], [Image.open(p) for p in origs]
    by_pil = semsim(*pils, model=tiny_model, reduction="none")
    for got in (by_path, by_pathlike, by_pil):
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    one = semsim(str(recs[1]), Image.open(origs[1]), model=tiny_model)  # one file and one PIL image: one pair
    assert one.shape == () and one.item() == pytest.approx(expected[1].item(), abs=1e-6)


def test_a_tensor_beside_files_is_scored_on_its_own_scale(files, tiny_model):
    origs, recs = files
    expected = semsim(_as_batch(recs), _as_batch(origs), model=tiny_model, data_range=255, reduction="none")
    floats = _as_batch(recs).float() / 255
    torch.testing.assert_close(
        semsim(floats, origs, model=tiny_model, reduction="none"), expected, atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        semsim(_as_batch(recs), origs, model=tiny_model, data_range=255, reduction="none"),
        expected,
        atol=1e-5,
        rtol=0,
    )


def test_metric_and_loss_take_files_too(files, tiny_model):
    origs, recs = files
    expected = semsim(recs, origs, model=tiny_model, reduction="none")
    metric = SemSim(tiny_model, reduction="none")
    metric.update(recs[:2], origs[:2])
    metric(str(recs[2]), str(origs[2]))  # forward, as pyiqa's metric(a, b)
    torch.testing.assert_close(metric.compute(), expected, atol=1e-6, rtol=0)
    x = (_as_batch(recs).float() / 255).requires_grad_(True)
    loss = SemSimLoss(tiny_model)(x, origs)  # a fixed target read from files; the gradient reaches x
    loss.backward()
    assert loss.item() == pytest.approx(expected.mean().item(), abs=1e-5)
    assert x.grad is not None and bool(x.grad.abs().sum() > 0)


def test_file_inputs_give_the_scores_of_semsim_score(files, tiny_model_dir, capsys):
    origs, recs = files
    model = SemSimModel.from_pretrained(tiny_model_dir).eval()
    assert (
        main(
            [
                "score",
                str(origs[0]),
                str(recs[0]),
                "--model",
                str(tiny_model_dir),
                "--format",
                "json",
                "--precision",
                "float32",
            ]
        )
        == 0
    )
    record = json.loads(capsys.readouterr().out)["records"][0]
    assert semsim(recs[0], origs[0], model=model).item() == pytest.approx(record["distance"], abs=1e-6)
    # the default (auto: bf16 autocast on a CPU with native bf16) stays within the documented 0.01 of float32
    assert (
        main(["score", str(origs[0]), str(recs[0]), "--model", str(tiny_model_dir), "--format", "json"]) == 0
    )
    record = json.loads(capsys.readouterr().out)["records"][0]
    assert semsim(recs[0], origs[0], model=model).item() == pytest.approx(record["distance"], abs=0.01)


def test_unusable_files_and_lists_are_named_with_the_projects_errors(files, tiny_model, tmp_path):
    origs, recs = files
    with pytest.raises(ImageFileError, match="missing.png") as err:
        semsim(str(tmp_path / "missing.png"), origs[0], model=tiny_model)
    assert isinstance(err.value, SemSimError) and isinstance(err.value, OSError)
    with pytest.raises(ImageInputError, match=r"preds \(reconstructions\)\[1\] is a int") as err2:
        semsim([recs[0], 3], origs[:2], model=tiny_model)
    assert isinstance(err2.value, SemSimError) and isinstance(err2.value, ValueError)
    with pytest.raises(ImageInputError, match="2 reconstructions and 3 originals"):
        semsim(recs[:2], origs, model=tiny_model)
    big = _save(tmp_path / "big.png", 5, size=(40, 40))
    with pytest.raises(ImageInputError, match=r"big\.png.*40x40.*28x28"):
        semsim([big], [origs[0]], model=tiny_model)
    with pytest.raises(ImageInputError, match="40x40"):  # beside a tensor too
        semsim(big, _as_batch(origs[:1]).float() / 255, model=tiny_model)
    rgba = tmp_path / "alpha.png"
    Image.new("RGBA", (28, 28), (0, 0, 0, 0)).save(rgba)
    with pytest.raises(ImageInputError, match="transparent"):
        semsim(rgba, origs[0], model=tiny_model)
    with pytest.raises(
        TypeError, match="must be a torch.Tensor"
    ):  # neither tensors nor images: the gate's message
        semsim(np.zeros((1, 28, 28, 1)), np.zeros((1, 28, 28, 1)), model=tiny_model)


# ----------------------------------------------------------------------------------- 2. semsim score a.png b.png
def test_score_takes_two_files(files, tiny_model_dir, capsys):
    origs, recs = files
    assert main(["score", str(origs[0]), str(recs[0]), "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert "mean SemSim over 1 pairs" in out and recs[0].name in out


def test_score_refuses_a_file_beside_a_folder(files, tiny_model_dir, capsys, monkeypatch):
    from semsim_metric import functional

    monkeypatch.setattr(
        functional, "get_model", lambda *a, **k: pytest.fail("the model was loaded before the refusal")
    )
    origs, _ = files
    assert main(["score", str(origs[0]), str(origs[0].parent), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err
    assert "is a file but" in err and "two image files" in err


def test_score_json_is_machine_readable_on_stdout_with_messages_on_stderr(
    files, tiny_model_dir, tmp_path, capsys
):
    o, r = tmp_path / "O", tmp_path / "R"
    o.mkdir(), r.mkdir()
    for i, (a, b) in enumerate(zip(*files)):
        shutil.copy(a, o / f"img{i}.png")
        shutil.copy(b, r / f"img{i}.png")
    out_csv = tmp_path / "scores.csv"
    assert (
        main(
            [
                "score",
                str(o),
                str(r),
                "--model",
                str(tiny_model_dir),
                "--format",
                "json",
                "--probability",
                "--output",
                str(out_csv),
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is the JSON document and nothing else
    assert [sorted(rec) for rec in doc["records"]] == [
        ["distance", "original", "p_recognised", "reconstruction"]
    ] * 3
    rows = list(csv.DictReader(out_csv.open()))
    assert [round(rec["distance"], 6) for rec in doc["records"]] == [float(row["semsim"]) for row in rows]
    summary = doc["summary"]
    assert summary["pairs"] == 3 and summary["not_scored"] == []
    assert summary["mean_distance"] == pytest.approx(np.mean([rec["distance"] for rec in doc["records"]]))
    assert summary["distance_below_which_recognised"] == pytest.approx(0.5)  # tiny model: 2 - 4 d = 0
    assert "mean SemSim over 3 pairs" in captured.err and "scores written to" in captured.err
    assert main(["score", str(o), str(r), "--model", str(tiny_model_dir), "--format", "json", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "p_recognised" not in captured.out and json.loads(captured.out)["summary"]["pairs"] == 3
    assert "mean SemSim" not in captured.err


def test_score_csv_format_prints_the_csv(files, tiny_model_dir, capsys):
    origs, recs = files
    assert (
        main(["score", str(origs[1]), str(recs[1]), "--model", str(tiny_model_dir), "--format", "csv"]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 1 and rows[0]["original"] == str(origs[1])


# ----------------------------------------------------------------------------------- 3. lower_better / score_range
def test_lower_better_and_score_range_follow_the_output(tiny_model):
    distance, probability = SemSim(tiny_model), SemSim(tiny_model, output="probability")
    assert (distance.lower_better, distance.score_range) == (True, "0, 2")
    assert (probability.lower_better, probability.score_range) == (False, "0, 1")
    for m in (distance, probability):
        assert m.lower_better is (not m.higher_is_better)
        assert m.score_range == f"{m.plot_lower_bound:g}, {m.plot_upper_bound:g}"
    assert (SemSimLoss(tiny_model).lower_better, SemSimLoss(tiny_model).score_range) == (True, "0, 2")


# ----------------------------------------------------------------------------------- 4. warnings
def _domain_model(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny model recording a training domain of greyscale 28x28 originals."""
    shutil.copytree(tiny_model_dir, folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["training_domain"] = {"description": "bar images", "n": 2, "channels": [1], "image_sizes": [[28, 28]]}
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def test_warnings_point_at_the_callers_line_whichever_way_in(tiny_model_dir, tmp_path):
    colour = torch.rand(2, 3, 40, 40)
    folder = _domain_model(tiny_model_dir, tmp_path / "m")
    # one model (and metric, loss) per way in, all kept alive: each warns once per model
    models = [SemSimModel.from_pretrained(folder) for _ in range(4)]
    metrics = [SemSim(models[1]), SemSim(models[2]), SemSim(models[0])]
    loss = SemSimLoss(models[3])
    ways = {
        "semsim": lambda: semsim(colour, colour, model=models[0]),
        "update": lambda: metrics[0].update(colour, colour),
        "forward": lambda: metrics[1](colour, colour),  # through torchmetrics' forward and nn.Module.__call__
        "loss": lambda: loss(colour, colour),
        "compute": lambda: metrics[2].compute(),  # no pairs: warns and returns NaN
    }
    for way, call in ways.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        ours = [
            w
            for w in caught
            if issubclass(w.category, OutOfDomainWarning) or str(w.message).startswith("SemSim")
        ]
        assert ours, way
        for w in ours:
            assert (w.filename, way) == (__file__, way), w.lineno


def test_the_cli_prints_each_warning_as_one_line_naming_its_switch(tiny_model_dir, tmp_path, capsys):
    model = _domain_model(tiny_model_dir, tmp_path / "m")
    a = _save(tmp_path / "a.png", 0, size=(40, 40), mode="RGB")
    b = _save(tmp_path / "b.png", 1, size=(40, 40), mode="RGB")
    assert main(["score", str(a), str(b), "--model", str(model)]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "warning" in ln.lower()]
    assert len(lines) == 2 and all(
        ln.startswith("semsim score: warning: SemSim inputs outside") for ln in lines
    )
    assert all(ln.endswith("Silence with --no-domain-check.") for ln in lines)
    assert "check_domain=False" not in err and ".py:" not in err and "warnings.warn" not in err
    model2 = _domain_model(tiny_model_dir, tmp_path / "m2")
    assert main(["score", str(a), str(b), "--model", str(model2), "--no-domain-check"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_format_warning_leaves_out_a_switch_the_command_lacks():
    from semsim_metric.cli import format_warning
    from semsim_metric.domain import out_of_domain_message

    w = OutOfDomainWarning(
        out_of_domain_message("the originals are colour"), problem="the originals are colour"
    )
    assert format_warning("evaluate", w).endswith("Silence with --no-domain-check.")
    text = format_warning("train", w)
    assert text.startswith("semsim train: warning: SemSim inputs outside") and "Silence" not in text


# ----------------------------------------------------------------------------------- 5. progress and refusal order
@pytest.fixture
def log_lines(caplog, monkeypatch):
    """INFO records of the package's logger, with a progress line at every step (no waiting 10 s)."""
    from semsim_metric import _progress as progress

    monkeypatch.setattr(progress, "LOG_EVERY_S", 0.0)
    caplog.set_level(logging.INFO, logger="semsim_metric")
    return lambda: [r.getMessage() for r in caplog.records if r.name.startswith("semsim_metric")]


def test_progress_logs_counts_and_time_left_in_a_piped_log(log_lines):
    from semsim_metric._progress import track

    assert list(track(range(4), "steps", unit="step")) == [0, 1, 2, 3]
    lines = log_lines()
    assert lines[0].startswith("steps: 1 of 4 step (25%)") and "left" in lines[0]
    assert lines[-1].startswith("steps: 4 of 4 step (100%)")
    assert list(track(range(2), "quiet", progress=False)) == [0, 1]
    assert not any(ln.startswith("quiet") for ln in log_lines())


def _two_split_dataset(tmp_path: Path) -> tuple[Path, list[str]]:
    """A dataset folder with a validation split and a test split (the first 12 rows of each of the shipped
    dataset's), and the fingerprints of two test originals."""
    from semsim_metric.data.loading import load_folder_or_hub, undecoded
    from semsim_metric.domain import image_fingerprint
    from semsim_metric.image_io import decode_image
    from tests.helpers import DEFAULT_DATASET

    ds = tmp_path / "ds"
    for split in ("validation", "test"):
        part = load_folder_or_hub(str(DEFAULT_DATASET), split=split).select(range(12))
        part.to_parquet(str(ds / "data" / f"{split}-00000-of-00001.parquet"))
    raw = undecoded(load_folder_or_hub(str(DEFAULT_DATASET), split="test").select(range(12)))
    seen = sorted(set(raw["original_id"]))[:2]
    return ds, sorted(
        {image_fingerprint(decode_image(r["original"])) for r in raw if r["original_id"] in seen}
    )


def test_evaluate_refuses_seen_originals_before_loading_or_scoring(
    tmp_path, tiny_model_dir, capsys, monkeypatch
):
    from semsim_metric import functional
    from semsim_metric.evaluation import protocol

    ds, fingerprints = _two_split_dataset(tmp_path)
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
    heavy = []
    monkeypatch.setattr(functional, "get_model", lambda *a, **k: heavy.append("model weights loaded"))
    monkeypatch.setattr(protocol, "evaluate_dataset", lambda *a, **k: heavy.append("split scored"))
    # the unseen validation split comes first: it used to be scored in full before the test split was refused
    assert (
        main(
            [
                "evaluate",
                str(ds),
                "--split",
                "validation",
                "--split",
                "test",
                "--model",
                str(model),
                "--baselines",
                "SSIM",
                "--bootstrap",
                "5",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "/ test: 2 of" in err and "--allow-seen" in err
    assert heavy == []


def test_evaluate_shows_progress_of_each_step(tmp_path, tiny_model_dir, log_lines, capsys):
    ds, _ = _two_split_dataset(tmp_path)
    assert (
        main(["evaluate", str(ds), "--model", str(tiny_model_dir), "--baselines", "PSNR", "--bootstrap", "5"])
        == 0
    )
    lines = log_lines()
    for expected in (
        "loading the dataset",
        "loading the SemSim model",
        "scoring 12 pairs with SemSim, PSNR",
        "scoring pairs: 12 of 12 pair (100%)",
        "bootstrap: 5 resamples",
        "bootstrap: 2 of 2 metric",
    ):
        assert any(expected in ln for ln in lines), (expected, lines)


def _idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as Fashion-MNIST ships it (gzip)."""
    import gzip
    import struct

    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def fmnist_root(tmp_path):
    """A miniature Fashion-MNIST (random pixels) in the IDX layout."""
    root = tmp_path / "fmnist"
    root.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 64), ("t10k", 8)):
        labels = np.arange(n) % 10
        _idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 200, (n, 28, 28)))
        _idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def test_generate_shows_progress_of_each_step(fmnist_root, tmp_path, log_lines, capsys):
    out = tmp_path / "gen"
    assert (
        main(
            [
                "generate",
                "--out",
                str(out),
                "--source-root",
                str(fmnist_root),
                "--num-originals",
                "2",
                "--victim",
                "lenet_sigmoid:1",
                "--train-images",
                "32",
                "--iterations",
                "3",
                "--shard-size",
                "2",
            ]
        )
        == 0
    )
    lines = log_lines()
    for expected in (
        "loading the fashion-mnist source",
        "1 of 1 shard(s) to do",
        "shard 1 of 1: inverting_gradients",
        "training victim lenet_sigmoid",
        "train lenet_sigmoid",
        "3 of 3 it (100%)",
        "merging 1 shard(s)",
    ):
        assert any(expected in ln for ln in lines), (expected, lines)


def test_generate_refuses_a_foreign_folder_before_reading_the_source(tmp_path, monkeypatch, capsys):
    from semsim_metric.generate import pipeline

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    monkeypatch.setattr(
        pipeline, "load_source", lambda *a, **k: pytest.fail("the source was read before the refusal")
    )
    assert main(["generate", "--out", str(out), "--num-originals", "1"]) == 2
    assert "was not written by `semsim generate`" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep"


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
