"""One ``transformers.Trainer`` for every training stage.

A stage is an *objective* (an ``nn.Module`` whose ``forward(**batch)`` returns ``{"loss": ...}`` and which
holds the SemSim model plus any throw-away head), a dataset of items that carry their own augmentation
seed, a collator and the optimiser settings. ``run_stage`` trains it with ``Trainer``, so every stage
gets the same resume (``resume=True`` continues from the stage's last checkpoint), bf16, DDP under
``torchrun`` (the global batch stays the recipe's batch size), logging integrations and progress bars.

A finished stage leaves ``<output_dir>/stages/<name>/objective.safetensors`` and ``info.json``; a resumed
run loads a finished stage instead of training it again.

A run killed at any point resumes: the stage's files are written aside and renamed into place (``info.json``
last, it marks the stage finished), and ``resume=True`` continues from the newest *complete* checkpoint - one
the ``Trainer`` was killed while saving (no readable ``trainer_state.json``, the file it writes last) is named
in a warning, removed and skipped.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._progress import bar_disabled, logger
from .._threads import distributed_rank_and_world
from ..errors import IncompleteOutputError, InvalidInputError
from ..outputs import atomic_write_text
from .optim import OptimiserSettings, build_optimiser

__all__ = [
    "Stage",
    "TrainerOptions",
    "complete_checkpoints",
    "content_digest",
    "format_duration",
    "read_json_record",
    "run_stage",
    "world_size",
]

#: the file ``transformers.Trainer`` writes last into a checkpoint: a checkpoint without it is incomplete
TRAINER_STATE = "trainer_state.json"
#: files every checkpoint of ``run_stage`` holds besides the trainer state (weights: one of the first group)
_CHECKPOINT_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")
_CHECKPOINT_FILES = ("optimizer.pt", "scheduler.pt")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
_MISSING = (
    f"no readable {TRAINER_STATE}, or its weights, optimiser or scheduler file missing: a run was killed "
    "while saving or removing it"
)

#: optimiser steps not timed at the start of a stage (data loading, allocator and kernel warm-up)
ESTIMATE_WARMUP_STEPS = 2
#: steps timed after the warm-up before the stage's duration is estimated
ESTIMATE_TIMED_STEPS = 5


@dataclass
class Stage:
    """What one training stage needs.

    Attributes:
        name: folder name of the stage (``classes``, ``votes``, ``triplets``).
        objective: module with ``forward(**batch) -> {"loss": Tensor, ...}``.
        dataset: map-style dataset with ``set_epoch(epoch)``; items carry a ``"seed"`` for augmentation.
        collator: turns a list of items into the objective's keyword arguments.
        optimiser: SGD and schedule settings.
        batch_size: global batch size (split across processes under ``torchrun``).
        max_steps: optimiser steps of the whole stage.
        seed: seed of the data order and of the objective's random initialisation.
        drop_last: drop an incomplete last batch of every epoch.
        max_grad_norm: gradient clipping (0 = off).
        evaluate: optional per-epoch validation returning named numbers (logged as ``eval_<name>``).
        save_steps: checkpoint every this many steps (default: every epoch).
        settings: everything else that decides the result (the stage's settings, data identity); a finished
            stage is reused by ``resume=True`` only when these match too.
    """

    name: str
    objective: nn.Module
    dataset: Any
    collator: Callable[[list[dict[str, Any]]], dict[str, Any]]
    optimiser: OptimiserSettings
    batch_size: int
    max_steps: int
    seed: int = 0
    drop_last: bool = True
    max_grad_norm: float = 0.0
    evaluate: Callable[[], dict[str, float]] | None = None
    save_steps: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainerOptions:
    """How ``run_stage`` runs a stage, not what it learns (that is the stage's settings): never part of a
    stage's resume plan.

    Attributes:
        bf16: mixed precision; ``None`` = on when a CUDA GPU with bf16 is present.
        report_to: ``transformers.Trainer`` reporting integrations (``"none"``, ``"tensorboard"``, ``"wandb"``, ...).
        logging_steps: log the loss every this many optimiser steps.
        dataloader_workers: data-loader worker processes (results do not depend on it).
        progress: show progress bars.
        callbacks: extra ``transformers.TrainerCallback`` objects (logging, early stop, ...).

    Examples:
        >>> TrainerOptions(bf16=False).use_bf16()
        False
    """

    bf16: bool | None = None
    report_to: str = "none"
    logging_steps: int = 10
    dataloader_workers: int = 0
    progress: bool = True
    callbacks: tuple[Any, ...] = ()

    def use_bf16(self) -> bool:
        """``bf16``, with ``None`` resolved for this machine."""
        if self.bf16 is not None:
            return bool(self.bf16)
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def world_size() -> int:
    """Number of training processes (``WORLD_SIZE`` under ``torchrun``, else 1)."""
    return distributed_rank_and_world()[1]


def is_main_process() -> bool:
    """True on rank 0 (or without ``torchrun``)."""
    return distributed_rank_and_world()[0] == 0


def content_digest(value: Any) -> str:
    """A short digest of JSON-serialisable ``value``: what a stage learns from, for its ``settings``."""
    import hashlib

    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"12 min"``, ``"5 h 24 min"``: a duration as a person reads it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"


def _time_estimate_callback(stage_name: str, max_steps: int, record: dict[str, Any]) -> Any:
    """A callback that times a few optimiser steps after a warm-up and logs how long the stage will take.

    The estimate is the measured seconds per step times the steps left, on this machine and in this run (the
    per-epoch validation is not included). It lands in ``record`` as ``seconds_per_step`` and ``estimated_seconds``.
    """
    from transformers import TrainerCallback

    class TimeEstimate(TrainerCallback):
        seen = 0  # steps taken in this run (a resumed run starts later than step 0)
        start_time = 0.0

        def on_step_end(self, args, state, control, **kwargs):
            self.seen += 1
            if "seconds_per_step" in record:
                return control
            if self.seen == ESTIMATE_WARMUP_STEPS:
                self.start_time = time.perf_counter()
                return control
            timed = self.seen - ESTIMATE_WARMUP_STEPS
            if timed > 0 and (timed >= ESTIMATE_TIMED_STEPS or state.global_step >= max_steps):
                rate = (time.perf_counter() - self.start_time) / timed
                left = max_steps - state.global_step
                record.update(seconds_per_step=rate, estimated_seconds=rate * left, timed_steps=timed)
                if left > 0:
                    logger.info(
                        "stage %s: %d of %d steps left at %.3g s/step (measured over %d steps here), "
                        "so about %s more, validation not included",
                        stage_name,
                        left,
                        max_steps,
                        rate,
                        timed,
                        format_duration(rate * left),
                    )
            return control

    return TimeEstimate()


def _finished(folder: Path) -> bool:
    return (folder / "objective.safetensors").is_file() and (folder / "info.json").is_file()


def read_json_record(path: Path, *, fix: str) -> dict[str, Any]:
    """Read a JSON object this package wrote (a stage's ``info.json``, a cache entry's record).

    Args:
        path: the file.
        fix: what the user should do when it is damaged (named in the error).

    Raises:
        IncompleteOutputError: the file is not a JSON object (truncated by a crash of an older version, edited,
            or damaged on disk); the message names the file and says how to fix it (``fix``).
        OSError: the file cannot be read.
    """
    try:
        value = json.loads(path.read_text())
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise IncompleteOutputError(f"{path} is damaged: it is not valid JSON ({err}). {fix}") from err
    if not isinstance(value, dict):
        raise IncompleteOutputError(
            f"{path} is damaged: it holds a JSON {type(value).__name__}, not an object. {fix}"
        )
    return value


def _checkpoint_complete(folder: Path) -> bool:
    """Whether the ``Trainer`` finished writing the checkpoint ``folder`` (its last file reads as a state) and
    nothing removed part of it since (a kill while the ``Trainer`` deleted an old checkpoint)."""
    try:
        state = json.loads((folder / TRAINER_STATE).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(state, dict)
        and "global_step" in state
        and any((folder / name).is_file() for name in _CHECKPOINT_WEIGHTS)
        and all((folder / name).is_file() for name in _CHECKPOINT_FILES)
    )


def complete_checkpoints(ckpt_dir: str | Path) -> tuple[list[Path], list[Path]]:
    """The ``checkpoint-N`` folders of ``ckpt_dir``, oldest first: ``(complete, incomplete)``.

    A checkpoint is complete when its ``trainer_state.json`` - the file ``transformers.Trainer`` writes after the
    weights, optimiser, scheduler and random states - reads as a trainer state and its weights, optimiser and
    scheduler files are there; a run killed while saving leaves one without it (or with a truncated one), a run
    killed while the ``Trainer`` removed an old checkpoint one with files missing. A missing ``ckpt_dir`` has no
    checkpoints.
    """
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return [], []
    numbered = ((_CHECKPOINT.match(p.name), p) for p in ckpt_dir.iterdir() if p.is_dir())
    found = sorted(((int(m.group(1)), p) for m, p in numbered if m is not None), key=lambda t: t[0])
    complete = [p for _, p in found if _checkpoint_complete(p)]
    return complete, [p for _, p in found if p not in complete]


def _resume_checkpoint(stage_name: str, ckpt_dir: Path, resume: bool | str) -> str | None:
    """The checkpoint ``Trainer.train`` resumes from: ``resume`` itself when it is a path, else the newest complete
    checkpoint in ``ckpt_dir`` (``None``: start the stage from its beginning). Incomplete checkpoints are named in a
    warning and removed (by the main process), so that the ``Trainer`` neither picks nor keeps them."""
    if isinstance(resume, str):
        if Path(resume).is_dir() and not _checkpoint_complete(Path(resume)):
            raise IncompleteOutputError(
                f"stage {stage_name}: cannot resume from {resume}: it is not a complete checkpoint ({_MISSING}). "
                "Resume from an older checkpoint, or pass resume=True (--resume) to continue from the newest "
                "complete one."
            )
        return resume
    complete, incomplete = complete_checkpoints(ckpt_dir)
    latest = complete[-1] if complete else None
    for bad in incomplete if is_main_process() else []:  # every process resumes from `latest`; one removes
        logger.warning(
            "stage %s: skipping the incomplete checkpoint %s (%s) and removing it; %s",
            stage_name,
            bad,
            _MISSING,
            f"resuming from {latest.name}"
            if latest is not None
            else "no complete checkpoint is left, so the stage starts from its beginning",
        )
        shutil.rmtree(bad, ignore_errors=True)
    return str(latest) if latest is not None else None


def run_stage(
    stage: Stage,
    output_dir: str | Path,
    *,
    resume: bool | str = False,
    options: TrainerOptions | None = None,
) -> dict[str, Any]:
    """Train ``stage`` with ``transformers.Trainer``; returns a JSON-serialisable summary.

    Checkpoints go to ``output_dir/checkpoints/<stage.name>``; ``resume=True`` continues from the last one
    (or skips a stage that already finished), a path resumes from that checkpoint. ``options`` say how the
    ``Trainer`` runs (precision, logging, progress, extra callbacks); a stage that a callback stopped before
    ``max_steps`` is not marked finished, so ``resume=True`` continues it. A checkpoint left incomplete by a
    killed run is skipped (named in a warning, and removed): the stage resumes from the newest complete one.

    Raises:
        IncompleteOutputError: the finished stage's ``info.json`` is damaged (the message names it and says to
            delete the stage folder to train the stage again), or ``resume`` names an incomplete checkpoint.
        ValueError: the batch size is not divisible by the number of processes.
        InvalidInputError: a malformed ``SEMSIM_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``LOCAL_WORLD_SIZE``.
    """
    from .._threads import configure_threads

    configure_threads()  # the process's CPUs divided by its local workers (LOCAL_WORLD_SIZE), unless the user chose
    options = options or TrainerOptions()
    output_dir = Path(output_dir)
    done_dir = output_dir / "stages" / stage.name
    plan = _stage_plan(stage)
    if resume:
        finished = _load_finished_stage(stage, done_dir, plan)
        if finished is not None:
            return finished
    world = world_size()
    if stage.batch_size % world:
        raise InvalidInputError(
            f"stage {stage.name}: batch size {stage.batch_size} is not divisible by the {world} "
            "processes; choose a batch size that is."
        )
    ckpt_dir = output_dir / "checkpoints" / stage.name
    if is_main_process():
        _match_checkpoints_to_plan(stage.name, ckpt_dir, plan, resume)
    estimate: dict[str, Any] = {}
    trainer = _stage_trainer(stage, ckpt_dir, world, options, estimate)
    resume_arg = _resume_checkpoint(stage.name, ckpt_dir, resume) if resume else None
    start = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume_arg)
    info = _stage_record(stage, trainer, output.training_loss, start, world, plan, estimate)
    if trainer.is_world_process_zero() and info["finished"]:
        _save_finished_stage(stage, done_dir, info)
    return info


def _stage_record(
    stage: Stage,
    trainer: Any,
    training_loss: float,
    start: float,
    world: int,
    plan: dict[str, Any],
    estimate: dict[str, Any],
) -> dict[str, Any]:
    """The summary ``run_stage`` returns (and a finished stage's ``info.json``): steps, losses, seconds since
    ``start`` (``time.perf_counter``), the plan, the time estimate, ``stage.info`` and whether it finished."""
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    info = {
        "stage": stage.name,
        "steps": int(trainer.state.global_step),
        "processes": world,
        "optimiser": asdict(stage.optimiser),
        "batch_size": stage.batch_size,
        "train_loss": float(training_loss),
        # a stage shorter than logging_steps logs no loss: its mean training loss is the last one known
        "final_loss": float(losses[-1]) if losses else float(training_loss),
        "seconds": time.perf_counter() - start,
        "plan": plan,
        "estimate": estimate,
        **stage.info,
    }
    info["finished"] = trainer.state.global_step >= stage.max_steps
    return info


def _stage_plan(stage: Stage) -> dict[str, Any]:
    """What decides a stage's result (its resume plan): a finished stage is reused only when this matches."""
    return {
        "max_steps": stage.max_steps,
        "batch_size": stage.batch_size,
        "optimiser": asdict(stage.optimiser),
        "items": len(stage.dataset),
        "settings": stage.settings,
    }


def _load_finished_stage(stage: Stage, done_dir: Path, plan: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the stage finished before in ``done_dir`` with the same ``plan``, its weights loaded into
    ``stage.objective`` (``resumed_finished_stage`` set); ``None`` when there is none (train the stage).

    Raises:
        IncompleteOutputError: the finished stage's ``info.json`` is damaged.
    """
    if not _finished(done_dir):
        return None
    from safetensors.torch import load_file

    info = read_json_record(
        done_dir / "info.json",
        fix=(
            f"Delete the folder {done_dir} to train the stage {stage.name} again, then rerun with resume "
            "(--resume)."
        ),
    )
    if info.get("plan") != json.loads(json.dumps(plan)):
        return None
    stage.objective.load_state_dict(load_file(str(done_dir / "objective.safetensors")))
    info["resumed_finished_stage"] = True
    return info


def _match_checkpoints_to_plan(
    stage_name: str, ckpt_dir: Path, plan: dict[str, Any], resume: bool | str
) -> None:
    """Remove the checkpoints in ``ckpt_dir`` unless they were made with this run's data and settings (its
    ``<stage>.plan.json`` beside them; a longer schedule may continue them), warning when ``resume`` is asked,
    then record this run's plan there. Run by the main process only."""
    same_run = {k: plan[k] for k in ("batch_size", "items", "settings")}
    plan_file = ckpt_dir.with_name(f"{stage_name}.plan.json")
    try:
        stored = json.loads(plan_file.read_text()) if plan_file.is_file() else None
    except ValueError:  # damaged: the checkpoints cannot be matched to this run's data and settings
        logger.warning(
            "stage %s: %s is damaged; the checkpoints beside it cannot be checked", stage_name, plan_file
        )
        stored = None
    if ckpt_dir.is_dir() and stored != json.loads(json.dumps(same_run)):
        if resume and any(ckpt_dir.iterdir()):
            logger.warning(
                "stage %s: the checkpoints in %s were made with other data or settings; starting "
                "the stage afresh",
                stage_name,
                ckpt_dir,
            )
        shutil.rmtree(ckpt_dir)
    ckpt_dir.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan_file, json.dumps(same_run, indent=2))


def _training_arguments(stage: Stage, ckpt_dir: Path, world: int, options: TrainerOptions) -> Any:
    """The ``transformers.TrainingArguments`` of a stage: per-process batch, schedule, checkpoints, precision,
    logging and the CPU / DDP settings of this machine."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(ckpt_dir),
        per_device_train_batch_size=stage.batch_size // world,
        max_steps=stage.max_steps,
        seed=stage.seed,
        data_seed=stage.seed,
        eval_strategy="epoch" if stage.evaluate is not None else "no",
        save_strategy="steps" if stage.save_steps else "epoch",
        save_steps=stage.save_steps or 500,
        save_total_limit=2,
        logging_steps=options.logging_steps,
        report_to=options.report_to,
        remove_unused_columns=False,
        dataloader_num_workers=options.dataloader_workers,
        dataloader_drop_last=stage.drop_last,
        max_grad_norm=stage.max_grad_norm,
        bf16=options.use_bf16(),
        use_cpu=not torch.cuda.is_available(),
        full_determinism=not torch.cuda.is_available(),
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        disable_tqdm=bar_disabled(options.progress),
        label_names=[],
    )


def _stage_trainer(
    stage: Stage, ckpt_dir: Path, world: int, options: TrainerOptions, estimate: dict[str, Any]
) -> Any:
    """The ``Trainer`` of a stage: its objective, data, collator and optimiser, its ``_training_arguments``;
    the stage's ``evaluate`` as the per-epoch evaluation; callbacks that set the dataset's epoch, time the first
    steps (into ``estimate``) and then ``options.callbacks``."""
    from transformers import Trainer, TrainerCallback

    dataset = stage.dataset

    class _Epochs(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            dataset.set_epoch(math.floor((state.epoch or 0) + 1e-6))

    evaluate = stage.evaluate

    class StageTrainer(Trainer):
        def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
            if evaluate is None:
                return {}
            metrics = {f"{metric_key_prefix}_{k}": v for k, v in evaluate().items()}
            self.log(metrics)
            return metrics

    optimizer, scheduler = build_optimiser(
        (p for p in stage.objective.parameters() if p.requires_grad), stage.optimiser, stage.max_steps
    )
    args = _training_arguments(stage, ckpt_dir, world, options)
    logger.info(
        "stage %s: %d optimiser steps of batch %d; timing the first few to estimate how long it takes",
        stage.name,
        stage.max_steps,
        stage.batch_size,
    )
    return StageTrainer(
        model=stage.objective,
        args=args,
        train_dataset=dataset,
        eval_dataset=[0] if evaluate is not None else None,
        data_collator=stage.collator,
        optimizers=(optimizer, scheduler),
        callbacks=[
            _Epochs(),
            _time_estimate_callback(stage.name, stage.max_steps, estimate),
            *options.callbacks,
        ],
    )


def _save_finished_stage(stage: Stage, done_dir: Path, info: dict[str, Any]) -> None:
    """Write a finished stage's weights and record into ``done_dir``, each aside then renamed into place
    (``info.json`` last: it marks the stage finished)."""
    from safetensors.torch import save_file

    done_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in stage.objective.state_dict().items()}
    tmp = done_dir / "objective.safetensors.tmp"
    save_file(state, str(tmp))
    tmp.replace(done_dir / "objective.safetensors")
    atomic_write_text(done_dir / "info.json", json.dumps(info, indent=2))  # last: it marks the stage finished
