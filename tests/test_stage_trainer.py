"""Every training stage runs through the one Trainer: resume equals an uninterrupted run (also after a kill
while a checkpoint or a stage record was written, issue 21), and a stage runs under torchrun with 2 gloo
processes on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.errors import IncompleteOutputError, SemSimError
from semsim_metric.training.stages.classes import PretrainSettings, pretrain_backbone, pretrain_cached
from semsim_metric.training.stages.votes import VoteTuningSettings, tune_on_votes
from semsim_metric.training.trainer import TrainerOptions

ROOT = Path(__file__).resolve().parents[1]
QUIET = TrainerOptions(progress=False)


class StopAt(TrainerCallback):
    """Stops training after ``step`` optimiser steps, as an interruption would (after a checkpoint)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True
        return control


@pytest.fixture(scope="module")
def small_split():
    train = load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1"))["train"]
    ids = sorted(set(train["original_id"]))[:4]
    return train.filter(lambda r: r["original_id"] in ids)


def _same(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)


@pytest.mark.slow
def test_class_stage_resumes_to_the_uninterrupted_result(class_folder, tmp_path):
    settings = PretrainSettings(
        source=str(class_folder), epochs=3, batch_size=8, learning_rate=0.05, holdout=8, noise=0.3, seed=3
    )
    full = SemSimModel(SemSimConfig(base_width=2))
    start = {k: v.clone() for k, v in full.state_dict().items()}
    pretrain_backbone(full, settings, options=QUIET, output_dir=tmp_path / "full")
    part = SemSimModel(SemSimConfig(base_width=2))
    part.load_state_dict(start)
    pretrain_backbone(
        part,
        settings,
        output_dir=tmp_path / "part",
        options=TrainerOptions(progress=False, callbacks=(StopAt(13),)),
    )
    assert not (tmp_path / "part" / "stages" / "classes").exists()  # stopped early: not marked finished
    assert not _same(part.state_dict(), full.state_dict())
    resumed = SemSimModel(SemSimConfig(base_width=2))
    resumed.load_state_dict(start)
    pretrain_backbone(resumed, settings, options=QUIET, output_dir=tmp_path / "part", resume=True)
    assert _same(resumed.state_dict(), full.state_dict())
    info = json.loads((tmp_path / "part" / "stages" / "classes" / "info.json").read_text())
    assert info["finished"] and info["steps"] == info["plan"]["max_steps"]


def test_a_stage_says_how_long_it_will_take_from_timed_steps(class_folder, tmp_path, caplog):
    """Before the bulk of a stage runs, it logs the steps left times the seconds per step it measured."""
    import logging

    from semsim_metric.training.trainer import ESTIMATE_TIMED_STEPS, ESTIMATE_WARMUP_STEPS, format_duration

    settings = PretrainSettings(
        source=str(class_folder), epochs=2, batch_size=8, learning_rate=0.05, holdout=8, noise=0.3, seed=3
    )
    with caplog.at_level(logging.INFO, logger="semsim_metric"):
        info, _ = pretrain_backbone(
            SemSimModel(SemSimConfig(base_width=2)), settings, options=QUIET, output_dir=tmp_path
        )
    estimate, steps = info["estimate"], info["steps"]
    assert steps > ESTIMATE_WARMUP_STEPS + ESTIMATE_TIMED_STEPS
    assert estimate["timed_steps"] == ESTIMATE_TIMED_STEPS and estimate["seconds_per_step"] > 0
    left = steps - ESTIMATE_WARMUP_STEPS - ESTIMATE_TIMED_STEPS
    assert estimate["estimated_seconds"] == pytest.approx(estimate["seconds_per_step"] * left)
    # the timed steps are part of the stage: they cannot have taken longer than the whole of it
    assert estimate["seconds_per_step"] * ESTIMATE_TIMED_STEPS <= info["seconds"]
    said = [r.getMessage() for r in caplog.records if "steps left at" in r.getMessage()]
    expected = (
        f"stage classes: {left} of {steps} steps left at {estimate['seconds_per_step']:.3g} s/step "
        f"(measured over {ESTIMATE_TIMED_STEPS} steps here), so about "
        f"{format_duration(estimate['estimated_seconds'])} more, validation not included"
    )
    assert said == [expected]


@pytest.mark.parametrize(
    ("seconds", "text"), [(12.4, "12 s"), (600, "10 min"), (5 * 3600 + 24 * 60, "5 h 24 min")]
)
def test_durations_read_as_a_person_reads_them(seconds, text):
    from semsim_metric.training.trainer import format_duration

    assert format_duration(seconds) == text


@pytest.mark.slow
def test_vote_stage_resumes_to_the_uninterrupted_result(small_split, tmp_path):
    settings = VoteTuningSettings(epochs=3, batch_size=8, learning_rate=0.05, noise=0.2, seed=2)
    torch.manual_seed(0)
    start = SemSimModel(SemSimConfig(base_width=2)).state_dict()
    models = {}
    stop = TrainerOptions(progress=False, callbacks=(StopAt(5),))
    for name, options, resume in (("full", QUIET, False), ("part", stop, False), ("part2", QUIET, True)):
        m = SemSimModel(SemSimConfig(base_width=2))
        m.load_state_dict(start)
        folder = tmp_path / ("part" if name.startswith("part") else name)
        tune_on_votes(m, small_split, settings, output_dir=folder, resume=resume, options=options)
        models[name] = {k: v.clone() for k, v in m.state_dict().items()}
    assert not _same(models["part"], models["full"])
    assert _same(models["part2"], models["full"])


WORKER = """
import json, sys, torch
from semsim_metric import SemSimConfig, SemSimModel
from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.training.stages.votes import VoteTuningSettings, tune_on_votes
from semsim_metric.training.trainer import TrainerOptions
import torch.distributed as dist
train = load_folder_or_hub(sys.argv[1])["train"]
ids = sorted(set(train["original_id"]))[:4]
split = train.filter(lambda r: r["original_id"] in ids)
torch.manual_seed(0)
model = SemSimModel(SemSimConfig(base_width=2))
info, _ = tune_on_votes(model, split, VoteTuningSettings(epochs=2, batch_size=8, seed=1),
                        options=TrainerOptions(progress=False), output_dir=sys.argv[2])
rank = dist.get_rank()
weights = torch.cat([p.detach().flatten() for p in model.parameters()])
json.dump({"rank": rank, "world": dist.get_world_size(), "steps": info["steps"], "loss": info["final_loss"],
           "checksum": float(weights.double().sum())}, open(f"{sys.argv[2]}/rank{rank}.json", "w"))
"""


@pytest.mark.slow
@pytest.mark.ddp
def test_a_stage_runs_under_torchrun_with_two_gloo_processes(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(port),
            str(script),
            str(ROOT / "hub" / "fmnist-judged-v1"),
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    # 48 rows, global batch 8 (4 per process) -> 6 steps per epoch, 2 epochs
    assert ranks[0]["steps"] == ranks[1]["steps"] == 12
    assert ranks[0]["checksum"] == pytest.approx(
        ranks[1]["checksum"], rel=1e-6
    )  # DDP keeps the replicas equal
    assert np.isfinite(ranks[0]["loss"])
    assert (out / "stages" / "votes" / "objective.safetensors").is_file()  # written by rank 0 only, once
    load_file(out / "stages" / "votes" / "objective.safetensors")


@pytest.mark.slow
def test_resume_reuses_a_finished_stage_only_with_the_same_settings(class_folder, tmp_path):
    """A finished stage is loaded by resume=True; one whose settings changed is trained again."""

    def run(noise, resume):
        model = SemSimModel(SemSimConfig(base_width=2))
        model.load_state_dict(start)
        settings = PretrainSettings(
            source=str(class_folder),
            epochs=1,
            batch_size=8,
            learning_rate=0.05,
            holdout=8,
            noise=noise,
            seed=3,
        )
        pretrain_backbone(model, settings, options=QUIET, output_dir=tmp_path, resume=resume)
        return {k: v.clone() for k, v in model.state_dict().items()}

    start = SemSimModel(SemSimConfig(base_width=2)).state_dict()
    first = run(0.3, resume=False)
    info = json.loads((tmp_path / "stages" / "classes" / "info.json").read_text())
    assert info["plan"]["settings"]["noise"] == 0.3 and info["plan"]["items"] > 0
    assert _same(run(0.3, resume=True), first)  # the finished stage is loaded
    changed = run(0.0, resume=True)  # other settings: trained again, not loaded
    assert not _same(changed, first)
    assert (
        json.loads((tmp_path / "stages" / "classes" / "info.json").read_text())["plan"]["settings"]["noise"]
        == 0.0
    )


def _settings(source: Path, epochs: int = 3) -> PretrainSettings:
    return PretrainSettings(
        source=str(source), epochs=epochs, batch_size=8, learning_rate=0.05, holdout=8, noise=0.3, seed=3
    )


def _weights(model: SemSimModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


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
