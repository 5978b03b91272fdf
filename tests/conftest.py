"""Test configuration: no network, offline Hub, shared tiny models and images."""

from __future__ import annotations

import os
import socket

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

_real_connect = socket.socket.connect


def _guarded_connect(self, address):  # noqa: ANN001, ANN202
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and (host in ("127.0.0.1", "::1", "localhost") or host.startswith("/")):
        return _real_connect(self, address)
    raise RuntimeError(f"tests must not touch the network (tried to connect to {address!r})")


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


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
