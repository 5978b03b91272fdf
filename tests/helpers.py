"""Constants and helpers shared by several test modules (a test module never imports another one:
tests/test_architecture.py checks it). Fixtures live in tests/conftest.py."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
#: the bundled judged dataset: a dataset folder every test may read
DEFAULT_DATASET = ROOT / "hub" / "fmnist-judged-v1"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: two victim folder names of the official labels archive
VICTIMS = [
    "ConvNet_200_inversed_crop_auglist__rlabel_False",
    "ResNet20-4_200_inversed_aug_auglist_3-1-7+43-18-18_rlabel_False_defense_prune_70",
]


def png(path: Path, seed: int, size=(32, 32)) -> None:
    """A random colour PNG at ``path`` (its folders made), ``size`` as (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def chromium_path() -> str:
    """The system Chromium; installed here with apt-get when missing and we may (root)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
            check=False,
            capture_output=True,
            timeout=900,
        )
        found = shutil.which("chromium")
    if found is None:
        message = "headless Chromium is not installed: apt-get install -y chromium chromium-driver"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    return found


def model_with_bar_domain(n: int = 16):
    """A small, untrained ``SemSimModel`` whose training domain (on record) is ``n`` dark greyscale 28x28 images with
    a bright bar (at 16 heights, repeated), with their embeddings summarised; returns ``(model, originals)``."""
    import torch

    from semsim_metric import SemSimConfig, SemSimModel
    from semsim_metric.domain import summarise_domain
    from semsim_metric.preprocessing import to_model_input

    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=4)).eval()
    originals = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i in range(n):
        originals[i, 0, 4 + i % 16 : 8 + i % 16, 4:24] = 255
    cfg = model.config
    with torch.no_grad():
        emb = model.embed(
            to_model_input(originals, data_range=255, image_size=32, mean=cfg.image_mean, std=cfg.image_std)
        )
    cfg.training_domain = summarise_domain(list(originals), emb, description="bar images")
    return model, originals


def contradiction_rate_by_hand(a: np.ndarray, b: np.ndarray, n_pairs: int, seed: int) -> float:
    """The contradiction rate written out: ``n_pairs`` ordered pairs drawn from ``default_rng(seed)`` (all ``i``,
    then all ``j``); the share ordered oppositely among the pairs untied under both scores."""
    rng = np.random.default_rng(seed)
    i, j = rng.integers(0, len(a), n_pairs), rng.integers(0, len(a), n_pairs)
    opposite = counted = 0
    for p, q in zip(i, j, strict=True):
        da, db = np.sign(a[p] - a[q]), np.sign(b[p] - b[q])
        if da != 0 and db != 0:
            counted += 1
            opposite += da != db
    return opposite / counted if counted else math.nan
