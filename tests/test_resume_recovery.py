"""Training resumes after a crash at any point (issue 21): a checkpoint the ``Trainer`` was killed while saving
is skipped, a damaged ``info.json`` is named with the fix, stage records are written atomically, and the
per-process dataset copies of ``semsim-local`` do not pile up in the cache."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.errors import IncompleteOutputError, SemSimError
from semsim_metric.training.stages.classes import PretrainSettings, pretrain_backbone, pretrain_cached
from semsim_metric.training.trainer import TrainerOptions
from tests.test_stage_trainer import StopAt

ROOT = Path(__file__).resolve().parents[1]
QUIET = TrainerOptions(progress=False)


def _settings(source: Path, epochs: int = 3) -> PretrainSettings:
    return PretrainSettings(
        source=str(source), epochs=epochs, batch_size=8, learning_rate=0.05, holdout=8, noise=0.3, seed=3
    )


def _weights(model: SemSimModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


def _fake_checkpoint(
    folder: Path,
    step: int,
    *,
    state: str | None,
    files: tuple[str, ...] = ("model.safetensors", "optimizer.pt", "scheduler.pt"),
) -> Path:
    """A ``checkpoint-<step>`` holding ``files`` and the trainer state ``state`` (``None``: no
    ``trainer_state.json``, as a kill while saving leaves it)."""
    ckpt = folder / f"checkpoint-{step}"
    ckpt.mkdir(parents=True)
    for name in files:
        (ckpt / name).write_bytes(b"\0" * 64)
    if state is not None:
        (ckpt / "trainer_state.json").write_text(state)
    return ckpt


# --- checkpoints -----------------------------------------------------------------------------------------------


def test_complete_checkpoints_are_told_from_ones_a_kill_left_half_written(tmp_path):
    from semsim_metric.training.trainer import complete_checkpoints

    good = [_fake_checkpoint(tmp_path, s, state=json.dumps({"global_step": s})) for s in (9, 18)]
    missing = _fake_checkpoint(tmp_path, 27, state=None)
    truncated = _fake_checkpoint(tmp_path, 36, state='{"global_step": 36, "log_hist')
    _fake_checkpoint(tmp_path, 5, state="[]")  # valid JSON, but no trainer state
    # killed while the Trainer deleted this old checkpoint: its state is still there, its optimiser is not
    half_deleted = _fake_checkpoint(
        tmp_path, 3, state=json.dumps({"global_step": 3}), files=("model.safetensors",)
    )
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint name
    complete, incomplete = complete_checkpoints(tmp_path)
    assert complete == good  # oldest first, by step (not by name: 9 < 18)
    assert incomplete == [half_deleted, tmp_path / "checkpoint-5", missing, truncated]
    assert complete_checkpoints(tmp_path / "absent") == ([], [])


def test_resume_skips_a_checkpoint_killed_mid_save_and_ends_where_an_uninterrupted_run_ends(
    class_folder,
    tmp_path,
    caplog,
):
    """The issue's reproducer: a SIGKILL while the Trainer saves ``checkpoint-N`` leaves it without
    ``trainer_state.json``; ``resume`` used to die on it. Now it resumes from the newest complete checkpoint (and
    says which one it skipped), to exactly the uninterrupted result."""
    settings = _settings(class_folder)
    torch.manual_seed(0)
    start = _weights(SemSimModel(SemSimConfig(base_width=2)))
    full = SemSimModel(SemSimConfig(base_width=2))
    full.load_state_dict(start)
    full_info, _ = pretrain_backbone(full, settings, options=QUIET, output_dir=tmp_path / "full")

    part = SemSimModel(SemSimConfig(base_width=2))
    part.load_state_dict(start)
    pretrain_backbone(
        part,
        settings,
        output_dir=tmp_path / "part",
        options=TrainerOptions(progress=False, callbacks=(StopAt(13),)),
    )
    ckpts = tmp_path / "part" / "checkpoints" / "classes"
    complete = [ckpts / "checkpoint-9", ckpts / "checkpoint-13"]
    assert sorted(p.name for p in ckpts.iterdir()) == sorted(p.name for p in complete)
    # the next save, killed half-way: the weights and a torn optimiser state, no trainer_state.json
    killed = ckpts / "checkpoint-18"
    shutil.copytree(complete[-1], killed)
    (killed / "trainer_state.json").unlink()
    optimiser = killed / "optimizer.pt"
    optimiser.write_bytes(optimiser.read_bytes()[: optimiser.stat().st_size // 2])

    resumed = SemSimModel(SemSimConfig(base_width=2))
    resumed.load_state_dict(start)
    with caplog.at_level(logging.WARNING, logger="semsim_metric"):
        info, _ = pretrain_backbone(
            resumed, settings, options=QUIET, output_dir=tmp_path / "part", resume=True
        )
    said = [r.getMessage() for r in caplog.records if "incomplete checkpoint" in r.getMessage()]
    assert len(said) == 1 and str(killed) in said[0] and "resuming from checkpoint-13" in said[0]
    assert info["steps"] == full_info["steps"]
    assert _same(_weights(resumed), _weights(full))


def test_resume_from_a_named_incomplete_checkpoint_is_refused_naming_it(tmp_path):
    from semsim_metric.training.trainer import _resume_checkpoint

    killed = _fake_checkpoint(tmp_path, 18, state=None)
    with pytest.raises(IncompleteOutputError, match="checkpoint-18.*not a complete checkpoint.*--resume"):
        _resume_checkpoint("triplets", tmp_path, str(killed))
    assert killed.is_dir()  # a checkpoint the user named is never removed


def test_only_incomplete_checkpoints_start_the_stage_from_its_beginning(tmp_path, caplog):
    from semsim_metric.training.trainer import _resume_checkpoint

    killed = _fake_checkpoint(tmp_path, 9, state=None)
    with caplog.at_level(logging.WARNING, logger="semsim_metric"):
        assert _resume_checkpoint("classes", tmp_path, True) is None
    assert not killed.exists()
    assert "starts from its beginning" in caplog.text and str(killed) in caplog.text


# --- the stage's info.json ---------------------------------------------------------------------------------------


class _Killed(BaseException):
    """Stands for a SIGKILL in the middle of a write."""


def test_info_json_is_written_atomically_and_a_damaged_one_is_named_with_the_fix(
    class_folder,
    tmp_path,
    monkeypatch,
):
    settings = _settings(class_folder, epochs=1)
    model = SemSimModel(SemSimConfig(base_width=2))
    real_write = Path.write_text

    def killed_half_way(self: Path, data: str, *args: object, **kwargs: object) -> int:
        if "info.json" in self.name:  # the stage's record, or the temporary file it is written through
            real_write(self, data[: len(data) // 2], *args, **kwargs)
            raise _Killed
        return real_write(self, data, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", killed_half_way)
        with pytest.raises(_Killed):
            pretrain_backbone(model, settings, options=QUIET, output_dir=tmp_path, resume=True)
    info_file = tmp_path / "stages" / "classes" / "info.json"
    assert (
        not info_file.exists()
    )  # never a half-written record under the real name: the stage is not finished

    pretrain_backbone(model, settings, options=QUIET, output_dir=tmp_path, resume=True)
    assert json.loads(info_file.read_text())["finished"]

    # a record damaged some other way (an older version killed mid-write, an edit) is named with the fix
    info_file.write_text(info_file.read_text()[:40])
    with pytest.raises(IncompleteOutputError) as err:
        pretrain_backbone(model, settings, options=QUIET, output_dir=tmp_path, resume=True)
    assert isinstance(err.value, SemSimError)
    message = str(err.value)
    assert str(info_file) in message and "not valid JSON" in message
    assert f"Delete the folder {info_file.parent}" in message


def test_a_damaged_pretraining_cache_record_is_named_with_the_fix(class_folder, tmp_path):
    settings = _settings(class_folder, epochs=1)
    pretrain_cached(SemSimModel(SemSimConfig(base_width=2)), settings, tmp_path, options=QUIET)
    (record,) = tmp_path.glob("*/pretraining.json")
    record.write_text(record.read_text()[:30])
    with pytest.raises(IncompleteOutputError, match="pretraining.json is damaged.*Delete the folder"):
        pretrain_cached(SemSimModel(SemSimConfig(base_width=2)), settings, tmp_path, options=QUIET)


# --- semsim-local dataset copies ----------------------------------------------------------------------------------


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_dataset_copies_of_dead_processes_are_removed(tmp_path):
    from semsim_metric.data.loading import _host, remove_stale_caches

    dead = _dead_pid()
    stale = [tmp_path / f"pid-{dead}", tmp_path / f"pid-{dead}@{_host()}"]
    kept = [
        tmp_path / f"pid-{os.getpid()}@{_host()}",  # alive (this process)
        tmp_path / f"pid-{os.getppid()}",  # alive
        tmp_path / f"pid-{dead}@another-machine",  # a shared cache: not this machine's to judge
        tmp_path / "notes",
    ]  # not a process copy
    for folder in stale + kept:
        (folder / "abc123").mkdir(parents=True)
        (folder / "abc123" / "data.arrow").write_bytes(b"x" * 100)
    assert sorted(remove_stale_caches(tmp_path)) == sorted(stale)
    assert not any(p.exists() for p in stale)
    assert all(p.is_dir() for p in kept)
    assert remove_stale_caches(tmp_path / "absent") == []


LOADER = """
import sys, time
from semsim_metric.data.loading import _process_cache, load_folder_or_hub
ds = load_folder_or_hub(sys.argv[1], split="train")
assert len(ds) == 3 and any(_process_cache().iterdir())
print(_process_cache(), flush=True)
if sys.argv[2] == "wait":
    time.sleep(600)
"""


def _loader(tmp_path: Path, mode: str) -> subprocess.Popen:
    data = tmp_path / "table"
    data.mkdir(exist_ok=True)
    (data / "train.csv").write_text("a,b\n1,2\n3,4\n5,6\n")
    env = {
        **os.environ,
        "HF_DATASETS_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT / "src"),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", LOADER, str(data), mode],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_process_removes_its_dataset_copy_on_exit_and_the_stale_ones_it_finds(tmp_path):
    stale = tmp_path / "cache" / "semsim-local" / f"pid-{_dead_pid()}"
    (stale / "abc123").mkdir(parents=True)
    proc = _loader(tmp_path, "exit")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    own = Path(out.strip().splitlines()[-1])
    assert own.parent == tmp_path / "cache" / "semsim-local"
    assert not own.exists() and not stale.exists()


def test_sigterm_removes_the_dataset_copy_and_still_terminates(tmp_path):
    proc = _loader(tmp_path, "wait")
    try:
        own = Path(proc.stdout.readline().strip())  # type: ignore[union-attr]
        assert own.is_dir(), proc.stderr.read()[-3000:]  # type: ignore[union-attr]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM  # it died of the signal, as without the handler
    assert not own.exists()
