"""End-to-end generation: source -> victims -> batched attacks -> Parquet shards -> dataset folder.

Work is split into shards of ``(victim, attack, image range)``. Each shard is written atomically to
``OUT/shards/`` and skipped when present, so a killed run restarts where it stopped and finishes with
the same result. Under ``torchrun`` each rank takes every ``world_size``-th shard; the merge
(``merge_shards`` / ``semsim generate --merge-only``) runs once all shards exist. The dataset has empty
votes (``annotator_kind="none"``) until votes are imported (``import_votes``).
"""

from __future__ import annotations

import io
import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._progress import format_duration, logger, quiet_datasets_bars, track
from .._threads import distributed_rank_and_world
from ..data.augmentation import item_seed
from ..data.hub_folder import DatasetCard, write_dataset_folder
from ..data.loading import undecoded
from ..data.schema import FEATURES, RecognitionRule, empty_row
from ..data.sources import ImageSource, load_source
from ..data.splits import split_by_original
from ..errors import InvalidInputError, InvalidInputTypeError
from ..outputs import OutputFolder, atomic_write_text, read_record
from .attacks import AttackConfig, run_attack
from .victims import VictimSpec, load_or_train_victim

__all__ = ["GenerationPlan", "generate", "merge_shards", "parse_victim_spec"]


def parse_victim_spec(text: str, *, seed: int = 0, train_images: int = 20000) -> VictimSpec:
    """``VictimSpec.parse`` under its old name (kept for callers of earlier versions).

    Examples:
        >>> parse_victim_spec("conv_relu:4:crop_flip:prune=70").name
        'conv_relu_e4_crop_flip_prune-70'

    Raises:
        InvalidInputError: (a ``ValueError``) see ``VictimSpec.parse``.
    """
    return VictimSpec.parse(text, seed=seed, train_images=train_images)


@dataclass
class GenerationPlan:
    """Everything that determines the generated data (stored as ``OUT/plan.json``).

    ``victims`` are ``VictimSpec`` objects; a string among them (``"lenet_sigmoid:4"``) is read by ``VictimSpec.parse``
    with the plan's seed.

    Raises:
        InvalidInputError: (a ``ValueError``) a victim string ``VictimSpec.parse`` refuses.
        InvalidInputTypeError: (a ``TypeError``) a victim that is neither.
    """

    source: str = "fashion-mnist"
    num_originals: int = 16
    original_pool: int = 9000  # originals are drawn from the first N test images
    victims: list[VictimSpec] = field(default_factory=lambda: [VictimSpec("lenet_sigmoid", 0)])
    attacks: list[AttackConfig] = field(default_factory=lambda: [AttackConfig("inverting_gradients", 50)])
    shard_size: int = 64
    seed: int = 0
    fractions: dict[str, float] = field(
        default_factory=lambda: {"train": 0.8, "validation": 0.1, "test": 0.1}
    )

    def __post_init__(self) -> None:
        victims = []
        for v in self.victims:
            if isinstance(v, str):
                v = VictimSpec.parse(v, seed=self.seed)
            elif not isinstance(v, VictimSpec):
                raise InvalidInputTypeError(
                    f"victim {v!r}: give a VictimSpec (or its string, e.g. 'lenet_sigmoid:4')."
                )
            victims.append(v)
        self.victims = victims

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "num_originals": self.num_originals,
            "original_pool": self.original_pool,
            "victims": [asdict(v) for v in self.victims],
            "attacks": [a.to_dict() for a in self.attacks],
            "shard_size": self.shard_size,
            "seed": self.seed,
            "fractions": self.fractions,
        }

    def shards(self) -> list[tuple[VictimSpec, AttackConfig, int, int]]:
        out = []
        for v in self.victims:
            for a in self.attacks:
                for start in range(0, self.num_originals, self.shard_size):
                    out.append((v, a, start, min(start + self.shard_size, self.num_originals)))
        return out


def _shard_name(v: VictimSpec, a: AttackConfig, start: int, end: int) -> str:
    return f"{v.name}__{a.name}-{a.iterations}__{start:06d}-{end:06d}.parquet"


def _png(x: torch.Tensor) -> dict[str, Any]:
    from PIL import Image

    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _select_originals(test: ImageSource, plan: GenerationPlan) -> ImageSource:
    pool = min(plan.original_pool, len(test))
    if plan.num_originals > pool:
        raise InvalidInputError(
            f"{plan.num_originals} originals requested but the pool has {pool} test images."
        )
    chosen = sorted(random.Random(plan.seed).sample(range(pool), plan.num_originals))
    return test.subset(chosen)


EXCLUDED_KEY = "excluded_as_originals"  # victim metadata: train images removed as identical to an original


def _without_originals(train: ImageSource, originals: ImageSource) -> tuple[ImageSource, int]:
    """``train`` without every image byte-identical (same shape and pixels) to one of ``originals``.

    Returns:
        The remaining training images (``train`` itself when none matches) and how many were removed.
    """
    if len(originals) == 0 or tuple(train.images.shape[1:]) != tuple(originals.images.shape[1:]):
        return train, 0  # images of another shape cannot be identical
    attacked = {row.tobytes() for row in originals.images.reshape(len(originals), -1).numpy()}
    keep = [
        i
        for i, row in enumerate(train.images.reshape(len(train), -1).numpy())
        if row.tobytes() not in attacked
    ]
    removed = len(train) - len(keep)
    return (train.subset(keep) if removed else train), removed


def _record_removed(folder: Path, v: VictimSpec, meta: dict, removed: int, *, trained_now: bool) -> dict:
    """Add ``excluded_as_originals`` to the metadata of a victim trained by this run (``folder/<name>.json``).

    A checkpoint from an earlier run keeps its metadata: it already holds the count, or (written before
    originals were excluded) it must not claim an exclusion it did not have.
    """
    if not trained_now or meta.get(EXCLUDED_KEY) == removed:
        return meta
    meta = {**meta, EXCLUDED_KEY: removed}
    atomic_write_text(folder / f"{v.name}.json", json.dumps(meta, indent=2))
    return meta


def generate(
    plan: GenerationPlan,
    out: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
    source_root: str | None = None,
    merge: bool = True,
    overwrite: bool = False,
    max_memory: int | None = None,
) -> Path | None:
    """Run (or resume) the plan into ``out``; merge into a dataset folder when all shards exist.

    Each shard's attacks run in batches chosen from the memory there is (``max_memory`` bytes, else
    ``$SEMSIM_ATTACK_MEMORY``, else 1 GiB on the CPU; never more than half the available memory - see
    ``semsim_metric.generate.attacks.run_attack``); the batch does not change the result. With ``progress``,
    every shard and the whole run log their reconstructions per minute.

    ``out`` must be new, empty, or a folder that ``semsim generate`` wrote with the same plan (resumed);
    anything else is refused with ``OutputFolderError`` unless ``overwrite``.

    Victims train on the source's *train* split minus every image byte-identical to an attacked original (the
    count is stored as ``excluded_as_originals`` in ``OUT/victims/<name>.json`` and in the dataset card), so
    no victim ever sees an image it is attacked on.

    Raises:
        InvalidInputError: (a ``ValueError``) ``out`` holds a different plan, or the plan asks for more originals
            than the pool has.
        ImageSourceError: (a ``ValueError``) a folder source without ``train/`` and ``test/`` with the same
            class sub-folders (see ``semsim_metric.data.sources.load_image_folder``).
        OutputFolderError: ``out`` holds files that ``semsim generate`` did not write (unless ``overwrite``).
    """
    from .._threads import configure_threads

    configure_threads()  # the cores this process may use (a user's OMP_NUM_THREADS / SEMSIM_NUM_THREADS is kept)
    out = Path(out)
    plan_json = json.dumps(plan.to_dict(), indent=2, sort_keys=True)
    _check_output(out, plan_json, overwrite=overwrite)
    # the source is checked before anything is written: a refused source leaves no output folder behind
    test, train, originals, removed = _load_images(plan, source_root)
    folder = _claim_output(out, plan_json, overwrite=overwrite)
    rank, world = distributed_rank_and_world()
    shard_dir = out / "shards"
    shard_dir.mkdir(exist_ok=True)
    mine = [s for i, s in enumerate(plan.shards()) if i % world == rank]
    todo = [s for s in mine if not (shard_dir / _shard_name(*s)).exists()]
    victims: dict[str, tuple[torch.nn.Module, dict]] = {}
    made, attacking = 0, 0.0  # reconstructions written by this run and the seconds their shards took
    if progress:
        _log_start(plan, todo, mine, rank, world)
    for number, (v, a, start, end) in enumerate(
        track(todo, f"shards (rank {rank})", unit="shard", progress=progress), start=1
    ):
        if progress:
            logger.info(
                "shard %d of %d: %s (%d iterations) on %s, originals %d-%d",
                number,
                len(todo),
                a.name,
                a.iterations,
                v.name,
                start,
                end - 1,
            )
        if v.name not in victims:
            victims[v.name] = _load_victim(v, out / "victims", train, test, removed, progress=progress)
        model, _meta = victims[v.name]
        count, spent = _attack_shard(
            plan,
            model,
            v,
            a,
            originals.subset(range(start, end)),
            shard_dir / _shard_name(v, a, start, end),
            device=device,
            progress=progress,
            max_memory=max_memory,
        )
        made, attacking = made + count, attacking + spent
        if progress:
            logger.info(
                "shard %d of %d: %d reconstructions in %s (%s)",
                number,
                len(todo),
                count,
                format_duration(spent),
                _per_minute(count, spent),
            )
    return _finish(plan, folder, shard_dir, made, attacking, merge=merge, rank=rank, progress=progress)


def _check_output(out: Path, plan_json: str, *, overwrite: bool) -> None:
    """Refuse ``out`` before anything is read or written: it holds another plan, or (unless ``overwrite``) files
    that ``semsim generate`` did not write."""
    plan_path = out / "plan.json"
    if plan_path.exists() and plan_path.read_text() != plan_json:
        raise InvalidInputError(
            f"{out} holds a different generation plan (plan.json); use a new folder or delete it."
        )
    if not overwrite:
        _refuse_foreign_folder(
            out
        )  # before the sources are read (claim() below writes, so it comes after them)


def _load_images(
    plan: GenerationPlan, source_root: str | None
) -> tuple[ImageSource, ImageSource, ImageSource, int]:
    """The source's test and train splits, the originals to attack, and how many train images were removed."""
    logger.info("loading the %s source (test and train splits)", plan.source)
    test = load_source(plan.source, "test", root=source_root)
    train = load_source(plan.source, "train", root=source_root)
    originals = _select_originals(test, plan)
    train, removed = _without_originals(
        train, originals
    )  # before any victim trains: none sees an attacked original
    return test, train, originals, removed


def _claim_output(out: Path, plan_json: str, *, overwrite: bool) -> OutputFolder:
    """Claim ``out`` for ``semsim generate`` and write its ``plan.json`` (unless it already holds the same)."""
    plan_path = out / "plan.json"
    folder = OutputFolder(out, command="generate", overwrite=overwrite).claim()
    if not plan_path.exists() or plan_path.read_text() != plan_json:
        folder.write_text("plan.json", plan_json)
    return folder


def _log_start(plan: GenerationPlan, todo: list, mine: list, rank: int, world: int) -> None:
    """Log how many of this rank's shards are left to do, and the plan's size."""
    logger.info(
        "%d of %d shard(s) to do%s: %d originals, %d victim(s), %d attack(s)",
        len(todo),
        len(mine),
        f" on rank {rank}" if world > 1 else "",
        plan.num_originals,
        len(plan.victims),
        len(plan.attacks),
    )


def _load_victim(
    v: VictimSpec, folder: Path, train: ImageSource, test: ImageSource, removed: int, *, progress: bool
) -> tuple[torch.nn.Module, dict]:
    """Victim ``v`` and its metadata: loaded from ``folder``, or trained there (recording ``removed``)."""
    trained_now = not all((folder / f"{v.name}{ext}").is_file() for ext in (".safetensors", ".json"))
    if progress:
        logger.info("%s victim %s", "training" if trained_now else "loading", v.name)
    model, meta = load_or_train_victim(v, train, test, folder, progress=progress)
    return model, _record_removed(folder, v, meta, removed, trained_now=trained_now)


def _attack_shard(
    plan: GenerationPlan,
    model: torch.nn.Module,
    v: VictimSpec,
    a: AttackConfig,
    part: ImageSource,
    path: Path,
    *,
    device: str,
    progress: bool,
    max_memory: int | None,
) -> tuple[int, float]:
    """Attack ``part``'s originals on ``model`` and write the shard to ``path``; returns its rows and seconds."""
    x = part.images.float() / 255
    seeds = [item_seed(plan.seed, hash_index(oid)) for oid in part.ids]
    began = time.perf_counter()
    result = run_attack(
        model, x, part.labels, a, seeds=seeds, device=device, progress=progress, max_memory=max_memory
    )
    rows = _shard_rows(v, a, part, x, result["reconstructions"], seeds)
    _write_shard(rows, path)
    return len(rows), time.perf_counter() - began


def _shard_rows(
    v: VictimSpec, a: AttackConfig, part: ImageSource, x: torch.Tensor, reconstructions: Any, seeds: list[int]
) -> list[dict[str, Any]]:
    """One dataset row (empty votes) per original of ``part`` and its reconstruction."""
    rows = []
    for i, oid in enumerate(part.ids):
        row = empty_row()
        row.update(
            reconstruction_id=f"{v.name}__{a.name}-{a.iterations}__{oid}",
            original=_png(x[i]),
            reconstruction=_png(reconstructions[i]),
            original_id=oid,
            class_label=int(part.labels[i]),
            class_name=part.class_names[int(part.labels[i])],
            source_dataset=part.name,
            victim=v.name,
            victim_arch=v.arch,
            victim_train_mode=v.augmentation,
            victim_aug_policy=v.augmentation,
            victim_train_epochs=v.epochs,
            attack=a.name,
            attack_iterations=a.iterations,
            defense=v.defense,
            annotator_kind="none",
            seed=seeds[i],
        )
        rows.append(row)
    return rows


def _write_shard(rows: list[dict[str, Any]], path: Path) -> None:
    """Write ``rows`` to the Parquet shard ``path`` atomically (through ``path.tmp``)."""
    import datasets

    tmp = path.parent / (path.name + ".tmp")
    with quiet_datasets_bars():
        datasets.Dataset.from_list(rows, features=FEATURES).to_parquet(str(tmp))
    tmp.replace(path)


def _finish(
    plan: GenerationPlan,
    folder: OutputFolder,
    shard_dir: Path,
    made: int,
    attacking: float,
    *,
    merge: bool,
    rank: int,
    progress: bool,
) -> Path | None:
    """Log the run's rate, then merge when every shard exists (on rank 0, if ``merge``)."""
    if progress and made:
        logger.info(
            "generated %d reconstructions in %s of attacks (%s)",
            made,
            format_duration(attacking),
            _per_minute(made, attacking),
        )
    missing = [s for s in plan.shards() if not (shard_dir / _shard_name(*s)).exists()]
    if missing or not merge or rank != 0:
        return None
    if progress:
        logger.info("merging %d shard(s) into the dataset folder %s", len(plan.shards()), folder.path)
    return merge_shards(folder)


def _per_minute(count: int, seconds: float) -> str:
    """``"1,234 reconstructions per minute"``: the generation rate of ``count`` made in ``seconds``."""
    return f"{count / max(seconds, 1e-9) * 60:,.0f} reconstructions per minute"


def _refuse_foreign_folder(out: Path) -> None:
    """``OutputFolder.claim``'s refusal, checked without writing anything: a file, or a non-empty folder that
    ``semsim generate`` did not write.

    Raises:
        OutputFolderError: as ``OutputFolder.claim`` would (the message is its own).
    """
    if not out.exists():
        return
    record = read_record(out) if out.is_dir() else None
    foreign = (
        not out.is_dir()
        or (record is None and any(out.iterdir()))
        or (record is not None and record.get("command") != "generate")
    )
    if foreign:
        OutputFolder(out, command="generate").claim()  # raises OutputFolderError with the usual message


def hash_index(original_id: str) -> int:
    """A stable integer per original id (seeds the attack's random start)."""
    import zlib

    return zlib.crc32(original_id.encode()) % 1_000_003


def merge_shards(out: str | Path | OutputFolder, *, overwrite: bool = False) -> Path:
    """Merge ``OUT/shards/*.parquet`` into the dataset folder ``OUT`` (``data/`` + card).

    The merge is atomic (``data/`` is built aside and swapped in; the folder is marked complete last), so a
    merge killed half-way is refused by the loaders and redone by rerunning the command.

    Raises:
        InvalidInputError: (a ``ValueError``) ``out`` has no ``plan.json``, or some of the plan's shards are
            missing (the message says how many and names one).
    """
    folder = (
        out if isinstance(out, OutputFolder) else OutputFolder(out, command="generate", overwrite=overwrite)
    )
    out = folder.path
    plan = _read_plan(out)
    rows = _read_shards(_shard_paths(out, plan))
    splits, notes = split_by_original(rows, fractions=plan["fractions"], seed=plan["seed"])
    card = DatasetCard(
        title=f"Generated reconstructions ({plan['source']})",
        summary=(
            "Reconstructions made by `semsim generate`: gradient-inversion attacks on the clean gradient of one "
            "test image each. **Not annotated yet** (`annotator_kind='none'`, empty votes): import votes with "
            "`semsim votes import`."
        ),
        source=f"{plan['source']} test split ({plan['num_originals']} originals drawn with seed {plan['seed']} from the "
        f"first {plan['original_pool']}); victims trained on the train split without the attacked originals",
        attacks=_attacks_text(plan),
        annotators="none yet",
        rule=RecognitionRule(),
        notes=notes + [*_victim_notes(out, plan), f"Plan: `{json.dumps(plan)}`"],
    )
    return write_dataset_folder(splits, folder, card)


def _read_plan(out: Path) -> dict[str, Any]:
    """The plan stored in ``out/plan.json``, as written (a dict)."""
    if not (out / "plan.json").is_file():
        raise InvalidInputError(f"{out} has no plan.json: it is not a `semsim generate` folder.")
    return json.loads((out / "plan.json").read_text())


def _shard_paths(out: Path, plan: dict[str, Any]) -> list[Path]:
    """The paths of every shard of ``plan`` in ``out/shards``, in the plan's order; refuses a missing one."""
    expected = GenerationPlan(
        **{
            **plan,
            "victims": [VictimSpec(**v) for v in plan["victims"]],
            "attacks": [AttackConfig(**{**a, "milestones": tuple(a["milestones"])}) for a in plan["attacks"]],
        }
    ).shards()
    names = [_shard_name(*s) for s in expected]
    missing = [n for n in names if not (out / "shards" / n).is_file()]
    if missing:
        raise InvalidInputError(
            f"{len(names) - len(missing)} of {len(names)} shards present in {out / 'shards'} (missing "
            f"e.g. {missing[0]}); rerun `semsim generate` with the same arguments to finish them."
        )
    return [out / "shards" / n for n in names]


def _read_shards(shards: list[Path]) -> list[dict[str, Any]]:
    """The rows of ``shards``, in order, undecoded."""
    import datasets
    import pyarrow.parquet as pq

    # read the shards directly: Dataset.from_parquet would go through a cache keyed by file names
    with quiet_datasets_bars():  # no "Casting the dataset" bar per shard
        table_rows = [datasets.Dataset(pq.read_table(str(s))).cast(FEATURES) for s in shards]
    return [r for ds in table_rows for r in undecoded(ds)]


def _victim_notes(out: Path, plan: dict[str, Any]) -> list[str]:
    """The card's notes on the victims: how each was trained (with its test accuracy), and the excluded images."""
    accuracy, excluded = {}, {}
    for v in plan[
        "victims"
    ]:  # each victim's metadata, written when it was trained (the same on a resumed run)
        meta = out / "victims" / f"{VictimSpec(**v).name}.json"
        if meta.is_file():
            victim_meta = json.loads(meta.read_text())
            accuracy[VictimSpec(**v).name] = victim_meta.get("test_accuracy")
            excluded[VictimSpec(**v).name] = victim_meta.get(EXCLUDED_KEY)
    counts = {n for n in excluded.values() if n is not None}
    excluded_txt = (
        f"{counts.pop()} train-split image(s) byte-identical to an attacked original were removed before "
        "the victims trained: no victim saw an original it is attacked on."
        if len(counts) == 1 and len(excluded) == len(plan["victims"]) and None not in excluded.values()
        else "Train-split images removed as identical to an attacked original, per victim: "
        + ", ".join(f"{k} {'n/a' if n is None else n}" for k, n in excluded.items())
        + "."
    )
    victims_txt = "; ".join(
        f"{v['arch']} trained {v['epochs']} epochs (augmentation {v['augmentation']}, defense "
        f"{v['defense']}, seed {v['seed']}, test accuracy "
        f"{accuracy.get(VictimSpec(**v).name, 'n/a')})"
        for v in plan["victims"]
    )
    return [f"Victims: {victims_txt}.", excluded_txt]


def _attacks_text(plan: dict[str, Any]) -> str:
    """The card's line on the plan's attacks (name, iterations, learning rate, TV weight)."""
    return "; ".join(
        f"{a['name']} ({a['iterations']} iterations, lr {a['learning_rate']}, TV {a['tv_weight']})"
        for a in plan["attacks"]
    )
