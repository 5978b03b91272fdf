"""Model cards: Hub metadata through ModelCardData, real Hub ids, and usage code that runs as printed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hub" / "semsim-resnet18-fmnist-judged"


def _code_block(card: str) -> str:
    return re.search(r"```python\n(.*?)```", card, re.S).group(1)


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_shipped_card_has_hub_metadata_and_real_ids():
    from huggingface_hub import ModelCard

    card = ModelCard.load(SHIPPED / "README.md")
    assert card.data.library_name == "semsim-metric"
    assert card.data.pipeline_tag == "image-feature-extraction"
    assert card.data.datasets == ["semsim-metric/semsim-judged-v3"]
    assert "Fashion-MNIST" in card.text and "emoji" in card.text


@pytest.mark.slow
def test_the_shipped_cards_code_runs_as_printed(tmp_path):
    out = _run(_code_block((SHIPPED / "README.md").read_text()), tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("tensor(")


def _training_info() -> dict:
    recipe = {"name": "quick", "description": "a smoke test", "epochs": 2, "base_width": 4}
    return {
        "recipe": recipe,
        "device": "cpu",
        "bf16": False,
        "train_seconds": 1.0,
        "torch": "x",
        "train_loss": 0.5,
        "triplet_stats": {},
        "validation": {"roc_auc": 0.7},
        "test": {"roc_auc": 0.6},
    }


@pytest.mark.slow
def test_a_card_for_a_users_model_loads_that_model_and_reports_eval_results(tmp_path, tiny_model_dir):
    from huggingface_hub import ModelCard

    from semsim_metric.data.loading import load_folder_or_hub
    from semsim_metric.training.model_card import write_model_card
    from tests.helpers import DEFAULT_DATASET

    folder = tmp_path / "my-model"
    shutil.copytree(tiny_model_dir, folder)
    splits = {
        s: load_folder_or_hub(str(DEFAULT_DATASET), split=s).select(range(4)) for s in ("validation", "test")
    }
    comparison = {"validation": {"SemSim": 0.71, "SSIM": 0.65}, "test": {"SemSim": 0.61, "SSIM": 0.6}}
    write_model_card(
        folder,
        dataset="hub/fmnist-judged-v1",
        training_info=_training_info(),
        splits=splits,
        comparison=comparison,
    )
    text = (folder / "README.md").read_text()
    assert "scripts/default_model.py" not in text and 'SemSim("' not in text
    card = ModelCard.load(folder / "README.md")
    results = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results == {("validation", "roc_auc"): 0.71, ("test", "roc_auc"): 0.61}
    out = _run(_code_block(text), tmp_path)  # loads the folder it was written for
    assert out.returncode == 0, out.stderr[-2000:]
    published = tmp_path / "pub"
    shutil.copytree(tiny_model_dir, published)
    write_model_card(
        published,
        dataset="/some/local/folder",
        training_info=_training_info(),
        splits=splits,
        repo_id="me/semsim-mine",
    )
    text = (published / "README.md").read_text()
    assert 'SemSimModel.from_pretrained("me/semsim-mine")' in text
    assert ModelCard.load(published / "README.md").data.datasets is None  # a local path is not a Hub id


def test_a_fine_tuned_models_card_names_its_base_model(tmp_path, tiny_model_dir):
    from huggingface_hub import ModelCard

    from semsim_metric.data.loading import load_folder_or_hub
    from semsim_metric.training.model_card import write_model_card
    from tests.helpers import DEFAULT_DATASET

    folder = tmp_path / "tuned"
    shutil.copytree(tiny_model_dir, folder)
    splits = {"test": load_folder_or_hub(str(DEFAULT_DATASET), split="test").select(range(2))}
    info = {**_training_info(), "init_from": "semsim-metric/semsim-resnet18-fmnist-judged"}
    write_model_card(folder, dataset="hub/fmnist-judged-v1", training_info=info, splits=splits)
    assert (
        ModelCard.load(folder / "README.md").data.base_model == "semsim-metric/semsim-resnet18-fmnist-judged"
    )
    write_model_card(
        folder,
        dataset="hub/fmnist-judged-v1",
        training_info={**info, "init_from": str(tmp_path)},
        splits=splits,
    )
    assert ModelCard.load(folder / "README.md").data.base_model is None  # a local folder is not a Hub id


def test_the_shipped_card_says_what_the_layout_part_of_the_embedding_is():
    card = (ROOT / "hub" / "semsim-resnet18-fmnist-judged" / "README.md").read_text()
    config = json.loads((ROOT / "hub" / "semsim-resnet18-fmnist-judged" / "config.json").read_text())
    line = next(li for li in card.splitlines() if li.startswith("- Embedding:"))
    assert f"({config['layout_weight']:g}, `layout_weight`)" in line
    size = config["layout_size"]
    assert f"{size}x{size} thumbnail in luminance" in line
    assert config["layout_channels"] == "luminance"
