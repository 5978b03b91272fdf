"""Every ```python block in the README, the quickstart and the Lightning page runs as printed (offline); the
README's and the quickstart's blocks run with warnings as errors (``python -W error``), so the first code a reader
copies prints no warning (no out-of-domain inputs, no ``float()`` of a tensor that needs a gradient)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
#: pages whose examples must run without a single warning
WARNING_FREE = ("README.md", "docs/quickstart.md")


def _blocks():
    for doc in ("README.md", "docs/quickstart.md", "docs/lightning.md"):
        for i, code in enumerate(BLOCK.findall((ROOT / doc).read_text())):
            yield pytest.param(code, doc in WARNING_FREE, id=f"{doc}#{i}")


def _run(code: str, *, warnings_as_errors: bool) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    flags = ["-W", "error"] if warnings_as_errors else []
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize(("code", "warning_free"), list(_blocks()))
def test_example_runs_as_printed(code, warning_free):
    from semsim_metric.hub import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("no bundled default model in this checkout")
    out = _run(code, warnings_as_errors=warning_free)
    assert out.returncode == 0, out.stderr[-3000:]
    if warning_free:
        assert "Warning" not in out.stderr, out.stderr[-3000:]


def test_the_readme_has_examples_that_must_be_warning_free():
    assert len([p for p in _blocks() if p.values[1] and "README" in p.id]) >= 3


@pytest.mark.slow
def test_warnings_as_errors_would_catch_the_old_quickstart():
    """The check bites: the README's former quickstart (random images, ``float(loss)`` of a loss that needs a
    gradient) fails under ``-W error``."""
    from semsim_metric.hub import bundled_model_path

    if bundled_model_path() is None:
        pytest.skip("no bundled default model in this checkout")
    old = (
        "import torch\nfrom semsim_metric import SemSimLoss\n"
        "loss = SemSimLoss()(torch.rand(2, 3, 32, 32, requires_grad=True), torch.rand(2, 3, 32, 32))\n"
        "loss.backward()\nprint(float(loss))\n"
    )
    out = _run(old, warnings_as_errors=True)
    assert out.returncode != 0 and "Warning" in out.stderr


def test_docstrings_render_on_the_api_page():
    """mkdocstrings renders an ``Examples:`` section as code but ``Example:`` as nested blockquotes, and shows
    Sphinx roles (``:class:`...```) raw: neither may appear in the package's docstrings."""
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "semsim_metric"
    offenders = []
    for path in src.rglob("*.py"):
        text = path.read_text()
        if re.search(r"(?m)^\s*Example:\s*$", text) or re.search(
            r":(class|func|meth|mod|data|attr|exc):`", text
        ):
            offenders.append(path.name)
    assert not offenders
