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
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    out = subprocess.run([sys.executable, "-c", WITHOUT_PACKAGE, str(folder), str(tmp_path / "x.pt")], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
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
