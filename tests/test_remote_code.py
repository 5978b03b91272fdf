"""A published model folder loads with AutoModel(trust_remote_code=True) where semsim-metric is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

WITHOUT_PACKAGE = """
import sys
sys.modules["semsim_metric"] = None  # any import of the package fails here
sys.path = [p for p in sys.path if not p.rstrip("/").endswith("src")]
import json, torch
from transformers import AutoConfig, AutoModel
folder = sys.argv[1]
try:
    import semsim_metric  # noqa: F401
    raise SystemExit("the package is importable: the test proves nothing")
except ImportError:
    pass
model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
x = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    emb = model(x).embeddings
print(json.dumps({"cls": type(model).__module__, "emb": emb.tolist()}))
"""


@pytest.mark.slow
def test_an_exported_folder_loads_without_the_package(tmp_path, tiny_model):
    from semsim_metric.models.remote_code import AUTO_MAP, export_remote_code

    folder = tmp_path / "model"
    tiny_model.save_pretrained(folder)
    files = {p.name for p in export_remote_code(folder)}
    assert {"configuration_semsim.py", "modeling_semsim.py", "backbones.py", "blocks.py"} <= files
    assert json.loads((folder / "config.json").read_text())["auto_map"] == AUTO_MAP
    assert "from ..hub" not in (folder / "modeling_semsim.py").read_text()
    x = torch.rand(2, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "PYTHONPATH": "",
    }
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_PACKAGE, str(folder), str(tmp_path / "x.pt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["cls"].startswith("semsim_metric")  # the class came from the folder, not the package
    with torch.no_grad():
        expected = tiny_model.embed(x)
    torch.testing.assert_close(torch.tensor(result["emb"]), expected, atol=1e-5, rtol=0)


def test_the_exported_folder_still_loads_with_the_package(tmp_path, tiny_model):
    from semsim_metric import SemSimModel
    from semsim_metric.models.remote_code import export_remote_code

    tiny_model.save_pretrained(tmp_path)
    export_remote_code(tmp_path)
    assert SemSimModel.from_pretrained(tmp_path).config.auto_map["AutoModel"] == "modeling_semsim.SemSimModel"


@pytest.mark.slow
def test_a_pushed_model_loads_from_the_hub_endpoint_without_the_package(tmp_path, tiny_model, monkeypatch):
    """push_to_hub to the local Hub stand-in, then AutoModel(id, trust_remote_code=True) downloads code and weights
    in a process that cannot import semsim_metric."""
    import importlib

    import huggingface_hub.constants as hf_constants

    from tests.hub_server import make_server

    server, log = make_server({}, upload_root=tmp_path / "server")
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    hub_env = {"HF_ENDPOINT": endpoint, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}
    try:
        for key, value in {**hub_env, "HF_HOME": str(tmp_path / "hf-publisher")}.items():
            monkeypatch.setenv(key, value)
        importlib.reload(hf_constants)  # the endpoint and offline flag are read at import time
        tiny_model.push_to_hub("me/semsim-remote", token="test-token")
        x = torch.rand(2, 3, 32, 32)
        torch.save(x, tmp_path / "x.pt")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        env.update(hub_env, HF_HOME=str(tmp_path / "hf-user"), PYTHONPATH="")
        requests_before = len(log)
        out = subprocess.run(
            [sys.executable, "-c", WITHOUT_PACKAGE, "me/semsim-remote", str(tmp_path / "x.pt")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            check=False,
        )
    finally:
        server.shutdown()
        monkeypatch.undo()
        importlib.reload(hf_constants)
    assert out.returncode == 0, out.stderr[-3000:]
    downloaded = " ".join(log[requests_before:])
    for name in (
        "config.json",
        "modeling_semsim.py",
        "configuration_semsim.py",
        "backbones.py",
        "model.safetensors",
    ):
        assert f"/me/semsim-remote/resolve/main/{name}" in downloaded, name
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cls"].startswith("transformers_modules")  # the class came from the downloaded code
    with torch.no_grad():
        expected = tiny_model.embed(x)
    torch.testing.assert_close(torch.tensor(result["emb"]), expected, atol=1e-5, rtol=0)
