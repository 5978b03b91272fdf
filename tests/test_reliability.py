"""Reliability defects found by fuzzing and a bad-file catalogue, one regression test per reproducer."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from semsim_metric import SemSim, SemSimModel, semsim
from semsim_metric.errors import InvalidModelError


# --------------------------------------------------------------------------- accepted input is finite
def test_the_reported_nan_reproducer_is_finite(random_model):
    zeros = torch.zeros(1, 1, 1, 1)
    assert float(semsim(zeros, zeros, model=random_model, data_range=5e-324).detach()) == 0.0


@pytest.mark.parametrize(
    "dtype, value, data_range",
    [
        (torch.float64, 5e-324, 5e-324),  # a data_range float32 cannot hold
        (torch.float64, 1e300, 1e300),  # pixels float32 cannot hold
        (torch.float64, 4e-310, 5e-310),  # subnormal float64 pixels
        (torch.float32, 3e38, 3.4e38),
    ],
)
def test_extreme_but_accepted_input_gives_a_finite_score(random_model, dtype, value, data_range):
    x = torch.full((2, 1, 3, 3), value, dtype=dtype)
    y = x.clone()
    y[1] = 0
    scores = semsim(x, y, model=random_model, data_range=data_range, reduction="none")
    scores = scores.detach()
    assert bool(torch.isfinite(scores).all())
    assert float(scores[0]) == 0.0 and float(scores[1]) > 0.0  # a full-scale image differs from a black one


def test_numpy_scalars_are_accepted_as_data_range(random_model):
    x = torch.rand(1, 3, 8, 8)
    for dr in (np.float32(1.0), np.float64(1.0), np.int64(1), torch.tensor(1.0)):
        assert float(semsim(x, x, model=random_model, data_range=dr).detach()) == 0.0
    with pytest.raises(TypeError, match="data_range must be a number"):
        semsim(x, x, model=random_model, data_range="1")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_pixels_equal_to_data_range_are_accepted(random_model, dtype):
    x = torch.full((1, 3, 8, 8), 0.3).to(dtype)  # rounds to just above 0.3
    assert float(x.max()) > 0.3
    assert float(semsim(x, x, model=random_model, data_range=0.3).detach()) == 0.0


def test_values_above_data_range_name_the_value_without_contradiction(random_model):
    x = torch.full((1, 3, 8, 8), 0.3)
    with pytest.raises(ValueError) as err:
        semsim(x, x, model=random_model, data_range=0.29)
    message = str(err.value)
    suggested = float(message.split("maximum value (")[1].split(")")[0])
    assert suggested >= float(x.max())


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_float8_is_a_type_error_from_the_gate(random_model, dtype):
    x = torch.rand(1, 3, 8, 8).to(dtype)
    with pytest.raises(TypeError, match="float8 .*x.float()"):
        semsim(x, x, model=random_model)


def test_greyscale_reconstructions_of_colour_originals_are_scored_as_documented(random_model):
    grey = torch.rand(2, 1, 8, 8)
    colour = grey.expand(-1, 3, -1, -1).clone()
    scores = semsim(grey, colour, model=random_model, reduction="none")
    assert torch.equal(scores, torch.zeros(2))


def test_compute_before_update_warns_and_gives_nan_for_the_mean(random_model):
    with pytest.warns(UserWarning, match="no pairs to average"):
        assert torch.isnan(SemSim(random_model).compute())  # as torchmetrics' means: no exception (issue 22)
    assert float(SemSim(random_model, reduction="sum").compute()) == 0.0
    assert SemSim(random_model, reduction="none").compute().numel() == 0


# --------------------------------------------------------------------------- shared state is never mutated
def test_a_call_on_the_meta_device_leaves_the_cached_default_model_alone():
    x = torch.rand(1, 3, 8, 8)
    before = float(semsim(x, torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))))
    meta = torch.empty(1, 3, 8, 8, device="meta")
    with pytest.raises(ValueError, match="meta"):
        semsim(meta, meta, validate_args=False)
    from semsim_metric.functional import get_model

    assert next(get_model(None).parameters()).device.type == "cpu"
    assert float(semsim(x, torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)))) == before
    SemSim()  # still builds


def test_a_device_copy_is_used_instead_of_moving_the_shared_model():
    from semsim_metric.functional import get_model

    shared = get_model(None)
    on_meta_guard = get_model(None, device="cpu")
    assert on_meta_guard is shared
    with pytest.raises(ValueError, match="meta"):
        get_model(None, device="meta")
    assert next(shared.parameters()).device.type == "cpu"


# --------------------------------------------------------------------------- loading validates config and weights
@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _edit_config(folder, **changes):
    cfg = json.loads((folder / "config.json").read_text())
    for k, v in changes.items():
        if v is KeyError:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (folder / "config.json").write_text(json.dumps(cfg))


def _edit_weights(folder, fn):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.ndim == 4)
    state[key] = fn(state[key])
    save_file(state, str(folder / "model.safetensors"))
    return key


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"image_size": 0}, "image_size"),
        ({"image_size": "32"}, "image_size"),
        ({"base_width": 3000}, "base_width"),
        ({"base_width": True}, "base_width"),
        ({"calibration": {"slope": -4.0}}, "intercept"),
        ({"calibration": {"intercept": float("nan"), "slope": -1.0}}, "intercept"),
        ({"image_std": [0.2, 0.2]}, "image_std"),
        ({"image_mean": [0.1, 0.2, float("inf")]}, "image_mean"),
        ({"training_domain": "fmnist"}, "training_domain"),
    ],
)
def test_malformed_config_fields_are_refused_at_load_naming_file_and_field(model_copy, changes, field):
    _edit_config(model_copy, **changes)
    with pytest.raises(InvalidModelError) as err:
        SemSimModel.from_pretrained(model_copy)
    assert "config.json" in str(err.value) and field in str(err.value)


def test_an_oversized_config_is_refused_before_anything_is_allocated(model_copy, monkeypatch):
    import semsim_metric.models.modeling_semsim as modeling

    def never(*args, **kwargs):
        raise AssertionError("the network was built from an oversized config")

    monkeypatch.setattr(modeling, "build_backbone", never)  # refused from the config alone
    _edit_config(model_copy, base_width=3000)
    with pytest.raises(InvalidModelError, match="between 1 and 256"):
        SemSimModel.from_pretrained(model_copy)


def test_a_corrupt_config_json_names_the_file(model_copy):
    (model_copy / "config.json").write_text("{not json")
    with pytest.raises(InvalidModelError, match="config.json is not a readable JSON"):
        SemSimModel.from_pretrained(model_copy)


def test_nan_weights_are_refused(model_copy):
    key = _edit_weights(model_copy, lambda t: t.clone().fill_(float("nan")))
    with pytest.raises(InvalidModelError, match=f"{key}.*NaN"):
        SemSimModel.from_pretrained(model_copy)


def test_integer_weights_are_refused(model_copy):
    key = _edit_weights(model_copy, lambda t: t.round().to(torch.int64))
    with pytest.raises(InvalidModelError, match=f"{key} has dtype torch.int64"):
        SemSimModel.from_pretrained(model_copy)


def test_half_precision_weights_still_load(model_copy):
    _edit_weights(model_copy, lambda t: t.half())
    model = SemSimModel.from_pretrained(model_copy)
    assert all(math.isfinite(float(p.abs().sum())) for p in model.parameters())


# --------------------------------------------------------------------------- paths and names stay inside their roots
def test_manifest_rows_pointing_outside_its_folder_are_refused(tmp_path):
    from PIL import Image

    from semsim_metric.data import convert_manifest

    outside = tmp_path / "secret"
    outside.mkdir()
    Image.new("L", (8, 8)).save(outside / "o.png")
    inside = tmp_path / "ds"
    inside.mkdir()
    for name in ("o", "r1", "r2", "r3"):
        Image.new("L", (8, 8)).save(inside / f"{name}.png")
    manifest = inside / "m.csv"
    manifest.write_text(
        "original,reconstruction,recognized\n"
        f"{outside / 'o.png'},r1.png,true\n"
        "../secret/o.png,r2.png,true\n"
        "o.png,r3.png,true\n"
    )
    rows, report = convert_manifest(manifest, annotator_kind="human")
    assert len(rows) == 1 and report.skipped == 2
    assert all("outside the manifest's folder" in p["reason"] for p in report.problems)
    rows, _ = convert_manifest(manifest, annotator_kind="human", allow_outside_paths=True)
    assert len(rows) == 3


def test_recipe_strings_never_reach_the_file_system_unslugged():
    from semsim_metric.evaluation.heldout import run_folder_name

    for recipe in ("../../etc", "/abs/path", "semantic:vote_anchor_weight=1", "a\\b"):
        name = run_folder_name("unseen-originals", recipe)
        assert "/" not in name and "\\" not in name and ".." not in name


@pytest.mark.parametrize(
    "spec",
    [
        "conv_relu:4:none:noise=nan",
        "conv_relu:4:none:noise=inf",
        "conv_relu:4:bogus",
        "conv_relu:4:none:prune=101",
        "conv_relu:4:none:blur=1",
    ],
)
def test_bogus_victim_specs_are_refused(spec):
    from semsim_metric.generate.pipeline import parse_victim_spec

    with pytest.raises(ValueError):
        parse_victim_spec(spec)


# --------------------------------------------------------------------------- semsim score: fail fast, score the rest
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


# --------------------------------------------------------------------------- gaps found by mutation testing
def test_the_loss_honours_data_range_and_reduction(random_model):
    from semsim_metric import SemSimLoss

    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(3, 3, 16, 16, generator=g), torch.rand(3, 3, 16, 16, generator=g)
    per_pair = semsim(x, y, model=random_model, reduction="none").detach()
    torch.testing.assert_close(
        SemSimLoss(random_model, data_range=255)(x * 255, y * 255).detach(), per_pair.mean()
    )
    torch.testing.assert_close(SemSimLoss(random_model, reduction="none")(x, y).detach(), per_pair)
    torch.testing.assert_close(SemSimLoss(random_model, reduction="sum")(x, y).detach(), per_pair.sum())
    loss = SemSimLoss(random_model).train()
    assert not loss.model.training  # the network stays in eval mode


def test_validate_args_false_reaches_the_gate_for_both_inputs(random_model):
    bad = torch.full((1, 3, 8, 8), 2.0)  # above data_range: only the value scan notices
    good = torch.rand(1, 3, 8, 8)
    for preds, target in ((bad, good), (good, bad)):
        with pytest.raises(ValueError, match="above data_range"):
            semsim(preds, target, model=random_model)
        semsim(preds, target, model=random_model, validate_args=False)  # the scan is skipped, as documented
