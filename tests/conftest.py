"""Test configuration: no network, offline Hub, shared tiny models and images."""

from __future__ import annotations

import tests._guard  # noqa: F401  (offline Hub, no network) - first, before anything reads HF_HUB_OFFLINE

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    return FIXTURES / "tiny_model"


@pytest.fixture()
def tiny_model():
    from semsim_metric import SemSimModel

    return SemSimModel.from_pretrained(FIXTURES / "tiny_model")


@pytest.fixture()
def random_model():
    from semsim_metric import SemSimConfig, SemSimModel

    torch.manual_seed(0)
    return SemSimModel(SemSimConfig(base_width=4)).eval()


@pytest.fixture()
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 28, 28, generator=g), torch.rand(6, 3, 28, 28, generator=g)
