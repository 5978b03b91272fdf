"""Stage-1 pre-training of the backbone: it learns classes, never sees annotated originals, is cached."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.training import TrainOptions, get_recipe, train
from semsim_metric.training.stages.classes import PretrainSettings, pretrain_backbone, pretrain_cached
from semsim_metric.training.trainer import TrainerOptions

ROOT = Path(__file__).resolve().parents[1]
QUIET = TrainerOptions(progress=False)


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """Two easy classes of 28x28 greyscale images: a vertical bar and a horizontal bar, jittered."""
    return _bars(tmp_path_factory.mktemp("classes"), size=28, colour=False)


def _bars(root, *, size, colour, n=96):
    """``root/{train,test}/{horizontal,vertical}/*.png``: bars on noise (greyscale or colour)."""
    rng = np.random.default_rng(size)
    for split, count in (("train", n), ("test", 4)):
        for name, axis in (("horizontal", 0), ("vertical", 1)):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                img = rng.integers(0, 40, (size, size), dtype=np.uint8)
                pos = int(rng.integers(8, size - 8))
                if axis == 0:
                    img[pos : pos + 4, 4 : size - 4] = 255
                else:
                    img[4 : size - 4, pos : pos + 4] = 255
                pil = Image.fromarray(img, mode="L")
                (pil.convert("RGB") if colour else pil).save(root / split / name / f"{i:03d}.png")
    return root


def _settings(folder, **kw):
    base = dict(
        source=str(folder), epochs=6, batch_size=16, learning_rate=0.05, holdout=32, noise=0.2, seed=1
    )
    return PretrainSettings(**{**base, **kw})


def test_the_backbone_learns_the_classes(class_folder):
    model = SemSimModel(SemSimConfig(base_width=4))
    info, head = pretrain_backbone(model, _settings(class_folder), options=QUIET)
    assert info["trained_images"] == 192 - 32 and info["holdout_images"] == 32
    assert info["holdout_accuracy"] >= 0.9  # chance is 0.5
    assert info["excluded_as_annotated"] == 0 and head.out_features == 2


def test_annotated_originals_are_never_pre_trained_on(class_folder):
    from semsim_metric.image_io import load_image

    annotated = [load_image(p) for p in sorted((class_folder / "train" / "vertical").glob("*.png"))[:5]]
    info, _ = pretrain_backbone(
        SemSimModel(SemSimConfig(base_width=2)),
        _settings(class_folder, epochs=0.1),
        exclude_images=annotated,
        options=QUIET,
    )
    assert info["excluded_as_annotated"] == 5
    assert info["trained_images"] + info["holdout_images"] == 192 - 5


def test_settings_are_validated(class_folder):
    with pytest.raises(ValueError, match="epochs must be >= 0"):
        PretrainSettings(epochs=-1)
    assert (
        PretrainSettings(epochs=0).epochs == 0
    )  # what a recipe without stage 1 holds; there is nothing to train
    with pytest.raises(ValueError, match="pre-training epochs must be > 0"):
        pretrain_backbone(
            SemSimModel(SemSimConfig(base_width=2)), _settings(class_folder, epochs=0), options=QUIET
        )


def test_cache_reuses_identical_settings_only(class_folder, tmp_path):
    first = SemSimModel(SemSimConfig(base_width=2))
    info, _ = pretrain_cached(first, _settings(class_folder, epochs=0.5), tmp_path, options=QUIET)
    assert "reused_from" not in info
    second = SemSimModel(SemSimConfig(base_width=2))
    again, _ = pretrain_cached(second, _settings(class_folder, epochs=0.5), tmp_path, options=QUIET)
    assert again["reused_from"]
    for a, b in zip(first.backbone.state_dict().values(), second.backbone.state_dict().values()):
        assert torch.equal(a, b)
    pretrain_cached(
        SemSimModel(SemSimConfig(base_width=2)),
        _settings(class_folder, epochs=0.5, noise=0.0),
        tmp_path,
        options=QUIET,
    )
    assert len(list(tmp_path.iterdir())) == 2  # other settings -> another entry


def test_two_domains_pre_train_together_each_with_its_own_classes_at_its_own_size(class_folder, tmp_path):
    colour = _bars(tmp_path / "colour", size=32, colour=True, n=24)
    model = SemSimModel(SemSimConfig(base_width=4))
    info, head = pretrain_backbone(
        model,
        _settings(f"{class_folder}+{colour}", epochs=1, holdout=16, min_source_share=0.5),
        options=QUIET,
    )
    assert info["class_offsets"] == {
        class_folder.name: 0,
        "colour": 2,
    }  # the second domain's classes come after
    assert head.out_features == 4
    assert info["source_sizes"] == {class_folder.name: 192, "colour": 48}
    # the small colour source is repeated up to half of the largest one: more steps than images
    assert info["trained_images"] > 240 - 16


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny_ds")
    full = load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"))
    for split, n in (("train", 8), ("validation", 4)):
        ids = sorted(set(full[split]["original_id"]))[:n]
        full[split].filter(lambda r, ids=ids: r["original_id"] in ids).to_parquet(
            str(out / "data" / f"{split}-00000-of-00001.parquet")
        )
    return out


@pytest.mark.slow
def test_two_stage_training_records_stage_one(class_folder, tiny_dataset, tmp_path):
    result = train(
        tiny_dataset,
        tmp_path / "m",
        recipe="semantic",
        base_width=2,
        vote_epochs=1,
        pretrain_epochs=0.5,
        pretrain_source=str(class_folder),
    )
    info = json.loads((tmp_path / "m" / "training_info.json").read_text())
    assert info["pretraining"]["settings"]["source"] == str(class_folder)
    assert info["vote_tuning"]["rows"] == 96 and info["vote_tuning"]["classes"] == 10
    assert info["stages"] == ["classes", "votes"]  # no triplet stage in this recipe
    assert not (tmp_path / "m" / "checkpoints" / "triplets").exists()
    assert (tmp_path / "m" / "stages" / "votes" / "objective.safetensors").is_file()
    assert {"roc_auc", "triplet_accuracy"} <= set(result.validation)
    trained = SemSimModel.from_pretrained(tmp_path / "m")
    assert (
        trained.config.embedding == "spatial" and trained.config.calibration["n"] == 48
    )  # 4 validation originals
    assert list((tmp_path / "m" / "pretrained").glob("*/backbone.safetensors"))
    assert "Stage 1 (class-supervised backbone pre-training)" in (tmp_path / "m" / "README.md").read_text()


@pytest.mark.slow
def test_fine_tuning_starts_from_the_given_model(tiny_dataset, tmp_path):
    start = SemSimModel(SemSimConfig(base_width=2))
    start.save_pretrained(tmp_path / "start")
    recipe = get_recipe(
        "quick", epochs=1, learning_rate=0.0, momentum=0.0, nesterov=False, weight_decay=0.0, augment=False
    )
    train(
        tiny_dataset,
        tmp_path / "tuned",
        recipe=recipe,
        options=TrainOptions(init_from=tmp_path / "start", write_card=False),
    )
    tuned = load_file(tmp_path / "tuned" / "model.safetensors")
    for key, value in load_file(tmp_path / "start" / "model.safetensors").items():
        if "running" not in key and "num_batches" not in key:  # BatchNorm statistics still update at lr 0
            assert torch.equal(tuned[key], value), key
    with pytest.raises(ValueError, match="either backbone= or init_from="):
        TrainOptions(init_from=tmp_path / "start", backbone="some/model")
