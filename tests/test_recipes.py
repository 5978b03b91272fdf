"""Recipes: nested stage settings behind the flat names of recipe strings, whose recorded form (training_info.json,
model cards) and cache keys stay exactly what they were; misspelled recipe fields and batch keys are errors."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch

from semsim_metric.training.recipes import DEFAULT_MODEL_RECIPE, FLAT_FIELDS, RECIPES, Recipe, get_recipe

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hub" / "semsim-resnet18-fmnist-judged" / "training_info.json"
#: recipe strings as users and the docs write them (also found in README.md, docs/, scripts/, hub/ below)
STRINGS = [
    *RECIPES,
    DEFAULT_MODEL_RECIPE,
    "colour:embedding=spatial,vote_anchor_copy_centre=-1",
    "colour:embedding=spatial,vote_anchor_copy_centre=-1,vote_balance_domains=0",
    "semantic:embedding=pooled,vote_epochs=2",
    "semantic:vote_epochs=2,embedding=pooled",
    "semantic:vote_epochs=2,embedding=pooled,augment=false,milestones=0.5/0.75",
    "semantic:vote_anchor_weight=1",
    "semantic:vote_distance_weight=1",
    "semantic:vote_anchor_weight=3,vote_anchor_centre=0.95",
    "semantic:epochs=12",
    "paper:pretrain_epochs=2",
    "colour:vote_anchor_copy_centre=0.2",
    "quick:milestones=",
]


def _strings_in_the_repository() -> set[str]:
    pattern = re.compile(r"\b((?:" + "|".join(RECIPES) + r"):[a-z_]+=[^\s`\"'|)\]]*)")
    files = [
        ROOT / "README.md",
        *(ROOT / "docs").glob("*.md"),
        *(ROOT / "scripts").glob("*.py"),
        *(ROOT / "hub").glob("*/README.md"),
        *(ROOT / "hub").glob("*/training_info.json"),
    ]
    found = {m.rstrip(".,:") for f in files for m in pattern.findall(f.read_text())}
    return {s for s in found if "..." not in s and not s.endswith("=value")}


@pytest.mark.parametrize("name", sorted(set(STRINGS) | _strings_in_the_repository()))
def test_every_recipe_string_round_trips_through_its_flat_form(name):
    recipe = get_recipe(name)
    flat = recipe.flat()
    assert list(flat)[:2] == ["name", "learning_rate"] and flat["name"] == name
    assert Recipe.from_flat(flat) == recipe
    assert Recipe.from_flat(json.loads(json.dumps(flat))) == recipe  # as read back from training_info.json
    assert get_recipe(name).flat() == flat  # parsing is deterministic
    assert recipe.pretrain.seed == recipe.vote_tuning.seed == recipe.triplets.seed == recipe.seed


def test_the_flat_form_is_written_as_before():
    """Literal flat forms, written down from the recipes before they were nested."""
    assert json.dumps(get_recipe("quick").flat()) == (
        '{"name": "quick", "learning_rate": 0.05, "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005, '
        '"batch_size": 16, "epochs": 2, "milestones": [], "gamma": 0.1, "margin": 1.0, "augment": true, "seed": 23333, '
        '"base_width": 8, "global_loss_weight": 0.0, "pretrain_epochs": 0.0, "pretrain_source": "fashion-mnist", '
        '"pretrain_split": "train", "pretrain_noise": 0.3, "pretrain_contrast": 0.0, "pretrain_brightness": 0.0, '
        '"pretrain_blur": 0.0, "vote_epochs": 0, "vote_learning_rate": 0.01, "vote_distance_weight": 0.0, '
        '"vote_noise": 0.3, "vote_anchor_weight": 0.0, "vote_anchor_centre": 0.65, "vote_anchor_temperature": 0.1, '
        '"vote_anchor_kind": "mild", "vote_anchor_domains": "fashion-mnist+photos+synthetic", '
        '"vote_adversarial_share": 0.0, "vote_adversarial_steps": 5, "vote_adversarial_pool": 0, '
        '"vote_anchor_copy_centre": -1.0, "vote_balance_domains": 0.0, "embedding": "pooled", '
        '"description": "A smoke-test recipe for CPUs: width 8, 2 epochs, batch 16."}'
    )
    variant = get_recipe("semantic:embedding=pooled,vote_epochs=2").flat()
    assert {
        k: variant[k]
        for k in (
            "name",
            "epochs",
            "base_width",
            "pretrain_epochs",
            "vote_epochs",
            "vote_noise",
            "vote_anchor_copy_centre",
            "embedding",
        )
    } == {
        "name": "semantic:embedding=pooled,vote_epochs=2",
        "epochs": 0,
        "base_width": 16,
        "pretrain_epochs": 6.0,
        "vote_epochs": 2,
        "vote_noise": 0.3,
        "vote_anchor_copy_centre": -1.0,
        "embedding": "pooled",
    }
    assert variant["description"].endswith("('spatial'). Variant: embedding=pooled,vote_epochs=2.")
    assert (
        len(variant) == 37
    )  # the names that can only be set since the recipe was nested are left out at default


def test_the_shipped_model_records_its_recipe_and_stage_settings_exactly_as_they_are_made_now():
    info = json.loads(SHIPPED.read_text())
    recipe = get_recipe(DEFAULT_MODEL_RECIPE)
    assert json.dumps(recipe.flat(), indent=2) == json.dumps(info["recipe"], indent=2)
    assert dataclasses.asdict(recipe.pretrain) == info["pretraining"]["settings"]
    assert dataclasses.asdict(recipe.vote_tuning) == info["vote_tuning"]["settings"]
    assert recipe.vote_tuning.anchor_copy_centre is None  # -1 in the flat form: "the anchor centre"


def test_stage_cache_keys_and_plans_are_unchanged():
    from semsim_metric import SemSimConfig, SemSimModel
    from semsim_metric.training.stages.classes import pretrain_cache_key
    from semsim_metric.training.stages.triplets import triplet_stage

    def key(name):
        r = get_recipe(name)
        return pretrain_cache_key(r.pretrain, SemSimConfig(base_width=r.base_width, embedding=r.embedding))

    # cd325f1808c4cf65: the stage-1 cache entries under runs/*/pretrained of the shipped default's runs
    assert key(DEFAULT_MODEL_RECIPE) == key("colour") == "cd325f1808c4cf65"
    assert key("semantic") == key("semantic:vote_epochs=2,embedding=pooled") == "c2e790a2fe0121b3"
    assert key("semantic:seed=7") == "b7ea3717e9f22d1e"

    class Triplets:
        triplets, share, rec_image = [[0, 1, 2]], [0.5], [0]

        def __len__(self):
            return 130

    stage = triplet_stage(
        SemSimModel(SemSimConfig(base_width=2)), Triplets(), None, get_recipe("paper").triplets
    )
    assert stage.settings == {
        "margin": 1.0,
        "global_loss_weight": 0.0,
        "augment": True,
        "seed": 23333,
        "triplets": "fd862838ad9376b1f9b8b22c9d34192932bff023",
    }
    assert dataclasses.asdict(stage.optimiser) == {
        "learning_rate": 0.05,
        "momentum": 0.9,
        "nesterov": True,
        "weight_decay": 0.0005,
        "schedule": "multistep",
        "milestones": (0.37, 0.62, 0.87),
        "gamma": 0.1,
        "warmup": 0.15,
    }
    assert (stage.max_steps, stage.batch_size, stage.seed) == (300, 64, 23333)


def test_every_flat_name_reaches_one_nested_field():
    assert len(set(FLAT_FIELDS.values())) == len(FLAT_FIELDS)  # no field is reachable by two names
    for name, (section, attr) in FLAT_FIELDS.items():
        owner = getattr(RECIPES["paper"], section) if section else RECIPES["paper"]
        assert hasattr(owner, attr), name
    # every stage setting but the seed (the recipe's, one for all stages) has a flat name
    for section in ("pretrain", "vote_tuning", "triplets"):
        attrs = {f.name for f in dataclasses.fields(getattr(RECIPES["paper"], section))} - {"seed"}
        assert attrs == {a for s, a in FLAT_FIELDS.values() if s == section}, section
    changed = RECIPES["semantic"].with_changes(pretrain_batch_size=64, vote_original_weight=0.5)
    assert (changed.pretrain.batch_size, changed.vote_tuning.original_weight) == (64, 0.5)
    assert Recipe.from_flat(changed.flat()) == changed  # written once they differ from the default


def test_a_misspelled_recipe_field_is_a_clear_error():
    with pytest.raises(
        TypeError, match=r"unknown recipe field\(s\) 'vote_epoch' \(did you mean 'vote_epochs'"
    ):
        get_recipe("semantic:vote_epoch=2")
    with pytest.raises(TypeError, match="'pretrain_sorce' \\(did you mean 'pretrain_source'"):
        get_recipe("semantic", pretrain_sorce="emoji-scenes")
    with pytest.raises(TypeError, match="unknown recipe field"):
        RECIPES["paper"].with_changes(lr=1)
    with pytest.raises(TypeError, match="unknown recipe field"):
        Recipe.from_flat({"name": "x", "vote_epochz": 1})
    with pytest.raises(ValueError, match="vote_epochs needs a value of type int"):
        get_recipe("semantic:vote_epochs=2.5")


def test_a_run_option_passed_as_a_recipe_field_says_where_it_belongs(tmp_path):
    from semsim_metric.training import train

    with pytest.raises(TypeError, match=r"write_card is a run option.*TrainOptions\(write_card=\.\.\.\)"):
        train(tmp_path / "nothing", tmp_path / "out", recipe="quick", write_card=False)
    with pytest.raises(TypeError, match=r"logging_steps is a Trainer option.*TrainerOptions\(logging_steps"):
        train(tmp_path / "nothing", tmp_path / "out", recipe="quick", logging_steps=1)


def test_an_objective_refuses_a_misspelled_batch_key():
    from semsim_metric import SemSimConfig, SemSimModel
    from semsim_metric.training.stages.classes import ClassObjective
    from semsim_metric.training.stages.triplets import TripletObjective
    from semsim_metric.training.stages.votes import VoteObjective, VoteTuningSettings

    model = SemSimModel(SemSimConfig(base_width=2))
    x = torch.rand(2, 3, 32, 32)
    assert ClassObjective(model, 3)(pixel_values=x, labels=torch.tensor([0, 1]))["loss"].ndim == 0
    with pytest.raises(TypeError, match="label"):
        ClassObjective(model, 3)(pixel_values=x, labels=torch.tensor([0, 1]), label=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="positive_shares"):
        TripletObjective(model)(anchor=x, positive=x, negative=x, positive_shares=torch.ones(2))
    votes = VoteObjective(model, 3, VoteTuningSettings(), rows_per_original=1.0)
    with pytest.raises(TypeError, match="anchor_target"):
        votes(
            pixel_values=torch.rand(4, 3, 32, 32),
            targets=torch.full((4, 4), 0.25),
            share=torch.ones(2),
            anchor_target=torch.ones(1),
        )
