"""Training with transformers Trainer: recipes, loss goes down, reload, determinism, resume, bad data."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from semsim_metric import SemSimModel
from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.training import RECIPES, TrainerOptions, TrainOptions, get_recipe, train
from tests.helpers import DEFAULT_DATASET

ROOT = Path(__file__).resolve().parents[1]
NO_CARD = TrainOptions(write_card=False)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """12 train originals and 4 validation originals of the default dataset (all 12 settings each)."""
    out = tmp_path_factory.mktemp("tiny_ds")
    full = load_folder_or_hub(str(DEFAULT_DATASET))
    for split, n in (("train", 12), ("validation", 4)):
        ids = sorted(set(full[split]["original_id"]))[:n]
        full[split].filter(lambda r, ids=ids: r["original_id"] in ids).to_parquet(
            str(out / "data" / f"{split}-00000-of-00001.parquet")
        )
    return out


def test_paper_recipe_is_the_papers():
    r = RECIPES["paper"]
    t = r.triplets
    assert (t.learning_rate, t.momentum, t.nesterov, t.weight_decay, t.batch_size, t.epochs) == (
        0.05,
        0.9,
        True,
        5e-4,
        64,
        100,
    )
    assert t.milestone_epochs() == [37, 62, 87] and (t.margin, r.seed, r.base_width, t.augment) == (
        1.0,
        23333,
        64,
        True,
    )
    assert get_recipe("paper", epochs=10).triplets.epochs == 10
    with pytest.raises(TypeError, match="unknown recipe field"):
        get_recipe("paper", lr=1)


@pytest.mark.slow
def test_quick_recipe_lowers_the_loss_and_reloads(tiny_dataset, tmp_path):
    result = train(
        tiny_dataset,
        tmp_path / "m",
        recipe="quick",
        base_width=4,
        epochs=3,
        options=TrainOptions(write_card=False, trainer=TrainerOptions(logging_steps=1)),
    )
    ckpts = tmp_path / "m" / "checkpoints" / "triplets"
    history = json.loads(
        (ckpts / sorted(p.name for p in ckpts.iterdir())[-1] / "trainer_state.json").read_text()
    )["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3
    assert "roc_auc" in result.validation and "triplet_accuracy" in result.validation
    model = SemSimModel.from_pretrained(tmp_path / "m")
    assert model.config.calibration["slope"] < 0  # larger distance -> less likely recognised
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(model.embed(x), SemSimModel.from_pretrained(tmp_path / "m").embed(x))


@pytest.mark.slow
def test_same_seed_gives_bit_identical_weights(tiny_dataset, tmp_path):
    for name in ("a", "b"):
        train(tiny_dataset, tmp_path / name, recipe="quick", base_width=4, epochs=1, options=NO_CARD)
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_continues_from_the_last_checkpoint(tiny_dataset, tmp_path):
    train(tiny_dataset, tmp_path / "full", recipe="quick", base_width=4, epochs=2, options=NO_CARD)
    train(tiny_dataset, tmp_path / "part", recipe="quick", base_width=4, epochs=1, options=NO_CARD)
    # the interrupted run left checkpoint-<epoch 1>; resuming with the 2-epoch schedule finishes the job
    resumed = train(
        tiny_dataset,
        tmp_path / "part",
        recipe="quick",
        base_width=4,
        epochs=2,
        options=TrainOptions(resume=True, write_card=False),
    )
    steps = sorted(
        int(p.name.split("-")[1]) for p in (tmp_path / "part" / "checkpoints" / "triplets").iterdir()
    )
    assert (
        steps[-1]
        == sorted(
            int(p.name.split("-")[1]) for p in (tmp_path / "full" / "checkpoints" / "triplets").iterdir()
        )[-1]
    )
    full = load_file(tmp_path / "full" / "model.safetensors")
    part = load_file(tmp_path / "part" / "model.safetensors")
    assert all(torch.allclose(full[k].float(), part[k].float(), atol=1e-5) for k in full), (
        "resuming must continue the same run (optimizer, scheduler, RNG and data order restored)"
    )
    assert resumed.train_loss > 0


def _write(ds_dict, folder):
    for split, ds in ds_dict.items():
        ds.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


def test_bad_datasets_give_clear_errors(tiny_dataset, tmp_path):
    full = load_folder_or_hub(str(tiny_dataset))
    only_pos = _write({"train": full["train"].filter(lambda r: r["recognized"])}, tmp_path / "pos")
    with pytest.raises(ValueError, match="no unrecognised reconstructions"):
        train(only_pos, tmp_path / "o1", recipe="quick")
    only_neg = _write({"train": full["train"].filter(lambda r: not r["recognized"])}, tmp_path / "neg")
    with pytest.raises(ValueError, match="no recognised reconstructions"):
        train(only_neg, tmp_path / "o2", recipe="quick")
    wrong = _write({"train": full["train"].remove_columns(["recognized"])}, tmp_path / "wrong")
    with pytest.raises(ValueError, match="missing column"):
        train(wrong, tmp_path / "o3", recipe="quick")
    with pytest.raises(ValueError, match="cannot load dataset"):
        train(tmp_path / "does-not-exist", tmp_path / "o4", recipe="quick")


@pytest.mark.slow
def test_training_on_a_transformers_backbone(tiny_dataset, tmp_path):
    from transformers import ResNetConfig, ResNetModel

    backbone_dir = tmp_path / "tiny-resnet"
    ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1])).save_pretrained(
        backbone_dir
    )
    train(
        tiny_dataset,
        tmp_path / "m",
        recipe="quick",
        epochs=1,
        options=TrainOptions(backbone=str(backbone_dir), write_card=False),
    )
    model = SemSimModel.from_pretrained(tmp_path / "m")
    assert model.config.backbone == "transformers" and model.config.backbone_config["model_type"] == "resnet"
    assert model.embed(torch.rand(2, 3, 32, 32)).shape == (2, 16)


def test_recipe_variants_are_named_on_the_command_line():
    r = get_recipe("semantic:vote_epochs=2,embedding=pooled,augment=false,milestones=0.5/0.75")
    assert (r.vote_tuning.epochs, r.embedding, r.triplets.augment, r.triplets.milestones) == (
        2,
        "pooled",
        False,
        (0.5, 0.75),
    )
    assert r.name == "semantic:vote_epochs=2,embedding=pooled,augment=false,milestones=0.5/0.75"
    assert get_recipe("semantic").name == "semantic"
    with pytest.raises(TypeError, match="unknown recipe field"):
        get_recipe("semantic:colour=red")
    with pytest.raises(ValueError, match="vote_epochs needs a value of type int"):
        get_recipe("semantic:vote_epochs=many")
    with pytest.raises(ValueError, match="write <field>=<value>"):
        get_recipe("semantic:vote_epochs")
    with pytest.raises(ValueError, match="unknown recipe 'nope'"):
        get_recipe("nope:epochs=1")


def test_semantic_recipe_stages():
    r = RECIPES["semantic"]
    assert r.pretrain.split == "train"  # the default dataset's originals are Fashion-MNIST *test* images
    assert r.vote_tuning.epochs > 0 and r.triplets.epochs == 0 and r.embedding == "spatial"
    assert r.stages == ("classes", "votes") and RECIPES["paper"].stages == ("triplets",)
    assert r.pretrain.seed == r.vote_tuning.seed == r.seed  # the recipe's seed is every stage's


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
    from tests.helpers import DEFAULT_DATASET

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
