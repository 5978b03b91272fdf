"""Every ```python block in the README, the quickstart and the Lightning page runs as printed (offline)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _blocks():
    for doc in ("README.md", "docs/quickstart.md", "docs/lightning.md"):
        for i, code in enumerate(BLOCK.findall((ROOT / doc).read_text())):
            yield pytest.param(code, id=f"{doc}#{i}")


@pytest.mark.slow
@pytest.mark.parametrize("code", list(_blocks()))
def test_example_runs_as_printed(code):
    from semsim_metric.hub import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("no bundled default model in this checkout")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
