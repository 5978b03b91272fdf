"""Nothing the project calls may unpickle: a pickle planted in any cache it reads never runs."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

pytest.importorskip("piq")


class _Payload:
    """Unpickling this writes a marker file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a real torch.save of an object whose unpickling runs code (what an attacker would plant)
    torch.save({"weights": _Payload(marker)}, path)


@pytest.fixture
def poisoned_hub(tmp_path, monkeypatch):
    hub = tmp_path / "torch-home" / "hub"
    marker = tmp_path / "marker.txt"
    for name in ("lpips_weights.pt", "dists_weights.pt", "vgg16-397923af.pth"):
        _plant(hub / "checkpoints" / name, marker)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    # the strongest way a user's environment can ask torch to unpickle
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return marker


def test_the_planted_pickle_would_run_if_unpickled(poisoned_hub):
    """Check of the fixture itself: a plain unpickle does run the payload."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / "lpips_weights.pt"
    torch.load(path, weights_only=False)
    assert poisoned_hub.read_text() == "pwned"


@pytest.mark.parametrize("name", ["LPIPS", "DISTS"])
def test_learned_baselines_refuse_a_planted_pickle(poisoned_hub, name):
    from semsim_metric.errors import UnsafeFileError
    from semsim_metric.evaluation.baselines import BASELINES, weights_available

    with pytest.raises(UnsafeFileError, match="refusing .*weights_only=True"):
        weights_available(BASELINES[name].needs_weights)
    x = torch.rand(1, 3, 32, 32)
    with pytest.raises(UnsafeFileError, match="pickle may run code"):
        BASELINES[name].fn(x, x)
    assert not poisoned_hub.exists()


def test_evaluate_stops_with_a_clear_error_and_never_runs_the_pickle(
    poisoned_hub, tmp_path, tiny_model_dir, capsys
):
    from semsim_metric.cli import main
    from semsim_metric.data import load_folder_or_hub
    from tests.helpers import DEFAULT_DATASET

    test = load_folder_or_hub(str(DEFAULT_DATASET), split="test").select(range(8))
    folder = tmp_path / "ds"
    test.to_parquet(str(folder / "data" / "test-00000-of-00001.parquet"))
    rc = main(
        [
            "evaluate",
            str(folder),
            "--model",
            str(tiny_model_dir),
            "--baselines",
            "SSIM,LPIPS",
            "--bootstrap",
            "10",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 2
    assert "refusing" in capsys.readouterr().err
    assert not poisoned_hub.exists()


def test_plain_tensor_weights_in_the_cache_are_read(tmp_path, monkeypatch):
    from semsim_metric.evaluation.baselines import load_cached_weights

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    torch.save({"alpha": torch.ones(2)}, tmp_path / "w.pt")
    state = load_cached_weights("https://example.invalid/x/w.pt", model_dir=str(tmp_path))
    assert torch.equal(state["alpha"], torch.ones(2))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_cached_weights("https://example.invalid/x/missing.pt", model_dir=str(tmp_path))


def test_model_folders_with_pickled_weights_are_refused(tmp_path, tiny_model_dir, monkeypatch):
    import shutil

    from semsim_metric import SemSimModel

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "marker.txt"
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder / "config.json")
    _plant(folder / "pytorch_model.bin", marker)
    with pytest.raises((OSError, ValueError), match="safetensors"):
        SemSimModel.from_pretrained(folder)
    assert not marker.exists()


def test_resuming_training_never_unpickles_a_planted_checkpoint(tmp_path, monkeypatch):
    """The stage trainer resumes through transformers.Trainer, which must read optimizer/rng files as tensors."""
    from transformers import Trainer

    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "marker.txt"
    ckpt = tmp_path / "checkpoint-1"
    _plant(ckpt / "rng_state.pth", marker)
    trainer = Trainer.__new__(Trainer)
    trainer.args = type("A", (), {"parallel_mode": None, "world_size": 1, "local_process_index": 0})()
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        Trainer._load_rng_state(trainer, str(ckpt))
    assert not marker.exists()
