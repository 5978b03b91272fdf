"""Test configuration: no network, offline Hub, shared tiny models and images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import tests._guard  # noqa: F401  (offline Hub, no network) - first, before anything reads HF_HUB_OFFLINE

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two pytest-xdist workers on a 2-core machine: one thread each, for torch here and for the
    # programs the tests start (two threads per worker would wait on each other at every operation)
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

FIXTURES = Path(__file__).parent / "fixtures"
#: ``../shared/data`` beside the checkout, or ``SEMSIM_SHARED_DATA`` (set by ``make mutation``, whose tests run from a
#: copy of the checkout in ``mutants/``)
SHARED_DATA = Path(
    os.environ.get("SEMSIM_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)


def shared_file(name: str) -> Path:
    """A file of the study's real human annotations under ``../shared/data``.

    Outside CI a missing file skips the test; in CI (``CI=true``, where the data is always present) it fails,
    so the tests on real human labels can never be skipped silently.
    """
    import os

    path = SHARED_DATA / name
    if not path.is_file():
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{path} is missing, but CI must run the tests on the real human labels.")
        pytest.skip(f"{path} absent (the study's human labels; CI fails instead of skipping)")
    return path


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    return FIXTURES / "tiny_model"


@pytest.fixture
def tiny_model():
    from semsim_metric import SemSimModel

    return SemSimModel.from_pretrained(FIXTURES / "tiny_model")


@pytest.fixture
def random_model():
    from semsim_metric import SemSimConfig, SemSimModel

    torch.manual_seed(0)
    return SemSimModel(SemSimConfig(base_width=4)).eval()


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 28, 28, generator=g), torch.rand(6, 3, 28, 28, generator=g)


@pytest.fixture
def score_folders(tmp_path):
    """Two originals ``a.png``, ``b.png`` (greyscale 28x28) and one random reconstruction of each, same names."""
    import numpy as np
    from PIL import Image

    o, r = tmp_path / "o", tmp_path / "r"
    o.mkdir()
    r.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(o / f"{name}.png")
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(r / f"{name}.png")
    return o, r


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    """A tiny two-class image source (`train/` and `test/`, 16x16 greyscale) for stage-1 tests."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("classes")
    rng = np.random.default_rng(0)
    for split, count in (("train", 40), ("test", 2)):  # an image source lays out train/ and test/
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                img = rng.integers(0, 255, (16, 16), dtype=np.uint8)
                Image.fromarray(img, mode="L").save(root / split / name / f"{i:03d}.png")
    return root
