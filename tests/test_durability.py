"""`semsim generate` killed with SIGKILL at any point and rerun gives exactly the uninterrupted result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_generate import fmnist_root  # noqa: F401  (the miniature Fashion-MNIST fixture)

ROOT = Path(__file__).resolve().parents[1]


def _args(out: Path, source_root: Path) -> list[str]:
    return [
        "--out",
        str(out),
        "--source-root",
        str(source_root),
        "--num-originals",
        "6",
        "--shard-size",
        "3",
        "--victim",
        "conv_relu:1",
        "--train-images",
        "64",
        "--attack",
        "inverting_gradients",
        "--iterations",
        "6",
        "--seed",
        "3",
    ]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }


def _run(out: Path, source_root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "semsim_metric.cli", "generate", *_args(out, source_root)],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )


def _kill_at(point: str, out: Path, source_root: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.kill_points", point, "--", *_args(out, source_root)],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "KILL-POINT" in line:
                break
        else:
            pytest.fail(f"generation finished without reaching the kill point {point!r}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _content(folder: Path) -> dict[str, list]:
    from semsim_metric import load_annotations
    from semsim_metric.data.loading import undecoded

    out = {}
    for split, ds in undecoded(load_annotations(folder)).items():
        out[split] = sorted(
            (r["reconstruction_id"], r["original"]["bytes"], r["reconstruction"]["bytes"], r["seed"])
            for r in ds
        )
    return out


@pytest.mark.slow
def test_generate_survives_sigkill_at_every_stage(fmnist_root, tmp_path):  # noqa: F811
    from semsim_metric.errors import IncompleteOutputError

    reference = tmp_path / "reference"
    _run(reference, fmnist_root)
    expected = _content(reference)
    assert sum(len(v) for v in expected.values()) == 6
    for point in ("victim", "shard", "merge"):
        out = tmp_path / point
        _kill_at(point, out, fmnist_root)
        if point == "merge":
            from semsim_metric import load_annotations

            with pytest.raises(IncompleteOutputError):
                load_annotations(out)
        _run(out, fmnist_root)
        got = _content(out)
        assert got == expected, point
        ids = [r[0] for rows in got.values() for r in rows]
        assert len(ids) == len(set(ids)) == 6, point
        assert (out / "README.md").read_text() == (reference / "README.md").read_text(), point
