"""Write a Hub dataset repository folder: ``data/<split>-*.parquet`` + ``README.md`` with YAML ``configs``.

The folder loads with ``datasets.load_dataset(folder)`` offline and, once pushed with
``push_dataset_folder``, with ``load_dataset("<org>/<name>")``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._deps import require

datasets = require("datasets", "SemSim datasets")

from ..outputs import OutputFolder  # noqa: E402
from .schema import FEATURES, RecognitionRule, features_for  # noqa: E402

__all__ = ["DatasetCard", "push_dataset_folder", "write_dataset_folder"]


@dataclass
class DatasetCard:
    """What the dataset card states about provenance."""

    title: str
    summary: str
    source: str = ""
    licence: str = "other"
    attacks: str = ""
    annotators: str = ""
    rule: RecognitionRule = field(default_factory=RecognitionRule)
    notes: list[str] = field(default_factory=list)
    #: Hub ids of the datasets the images come from (``source_datasets`` in the card's metadata)
    source_datasets: list[str] = field(default_factory=list)
    #: further Markdown lines of the card, placed before "Loading" (e.g. annotator agreement)
    extra_sections: list[str] = field(default_factory=list)


def _shard_rows(rows: Sequence[dict[str, Any]], shard_size: int) -> list[Sequence[dict[str, Any]]]:
    return [rows[i : i + shard_size] for i in range(0, len(rows), shard_size)] or [rows]


def write_dataset_folder(
    splits: dict[str, Sequence[dict[str, Any]]],
    out: str | Path | OutputFolder,
    card: DatasetCard,
    *,
    shard_size: int = 5000,
    overwrite: bool = False,
    command: str = "write-dataset",
) -> Path:
    """Write ``splits`` (split name -> schema rows) as a Hub dataset folder with its card.

    The folder is owned by ``command`` (see ``semsim_metric.outputs``): ``data/`` is built aside and
    swapped in whole, ``README.md`` is replaced atomically, and the folder is marked complete last, so a
    killed write is refused by the loaders instead of loading part of the rows.

    Args:
        splits: split name -> rows in the SemSim schema.
        out: the folder (or an ``OutputFolder`` a command already claimed).
        card: what the dataset card says about provenance.
        shard_size: rows per Parquet file.
        overwrite: allow replacing files that ``command`` did not write (``--overwrite``).
        command: the command that owns the folder.

    Raises:
        OutputFolderError: ``out`` holds files this command did not write and ``overwrite`` is false.
    """
    folder = out if isinstance(out, OutputFolder) else OutputFolder(out, command=command, overwrite=overwrite)
    folder.claim()
    counts = {name: len(rows) for name, rows in splits.items() if rows}

    features = features_for([r for rows in splits.values() for r in rows])

    def build(data_dir: Path) -> None:
        data_dir.mkdir(parents=True)
        for name, rows in splits.items():
            if not rows:
                continue
            shards = _shard_rows(list(rows), shard_size)
            for i, shard in enumerate(shards):
                ds = datasets.Dataset.from_list(list(shard), features=features)
                ds.to_parquet(str(data_dir / f"{name}-{i:05d}-of-{len(shards):05d}.parquet"))

    from .._progress import logger, quiet_datasets_bars

    logger.info("writing %s (%s)", folder.path, ", ".join(f"{k}: {n} rows" for k, n in counts.items()))
    folder.reopen()
    with quiet_datasets_bars():
        folder.replace_dir("data", build)
    folder.write_text("README.md", render_card(splits, counts, card))
    folder.complete()
    return folder.path


#: annotator_kind -> the Hub's ``annotations_creators`` vocabulary
_CREATORS = {"human": "crowdsourced", "model-judge": "machine-generated"}


def _size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return name
    return "n>1M"


def _front_matter(card: DatasetCard, names: list[str], kinds: Counter, n_rows: int) -> str:
    """YAML metadata through huggingface_hub's DatasetCardData (the Hub's field names and vocabularies)."""
    from huggingface_hub import DatasetCardData

    creators = sorted({_CREATORS[k] for k in kinds if k in _CREATORS}) or ["no-annotation"]
    data = DatasetCardData(
        license=card.licence,
        pretty_name=card.title,
        task_categories=["image-classification"],
        tags=["privacy", "gradient-inversion", "semsim"],
        annotations_creators=creators,
        size_categories=[_size_category(n_rows)],
        source_datasets=card.source_datasets or None,
        configs=[
            {"config_name": "default", "data_files": [{"split": n, "path": f"data/{n}-*"} for n in names]}
        ],
    )
    return "---\n" + data.to_yaml() + "\n---"


def render_card(
    splits: dict[str, Sequence[dict[str, Any]]], counts: dict[str, int], card: DatasetCard
) -> str:
    """Dataset card (README.md) with YAML front matter, provenance and per-split statistics."""
    names = [n for n in splits if counts.get(n)]
    all_rows = [r for n in names for r in splits[n]]
    kinds = Counter(r["annotator_kind"] for r in all_rows)
    yaml = [_front_matter(card, names, kinds, len(all_rows)), ""]
    lines = [f"# {card.title}", "", card.summary, "", "## Provenance", ""]
    lines += [
        f"- **Source images**: {card.source}" if card.source else "",
        f"- **Attacks**: {card.attacks}" if card.attacks else "",
        f"- **Annotators**: {card.annotators}" if card.annotators else "",
        f"- **annotator_kind counts**: {dict(kinds)} (`human` = people; `model-judge` = vision-language "
        "model judges shown only the reconstruction - NOT human labels; `none` = not annotated yet)",
        f"- **Recognised rule**: {card.rule.describe()} (`{json.dumps(card.rule.to_dict())}`); the votes "
        "are stored, so the rule can be changed with `semsim_metric.data.RecognitionRule`.",
        "",
    ]
    lines += [
        "## Splits",
        "",
        "Splits are by original image: no original appears in two splits.",
        "",
        "| split | rows | originals | recognised | victims | attacks |",
        "|---|---|---|---|---|---|",
    ]
    for n in names:
        rows = splits[n]
        rec = sum(bool(r["recognized"]) for r in rows) / len(rows)
        lines.append(
            f"| {n} | {len(rows)} | {len({r['original_id'] for r in rows})} | {rec:.1%} | "
            f"{len({r['victim'] for r in rows})} | {len({r['attack'] for r in rows})} |"
        )
    lines += [
        "",
        "## Schema",
        "",
        "One row per reconstruction: " + ", ".join(f"`{k}`" for k in FEATURES) + ".",
        "See the semsim-metric docs (datasets page) for the meaning of each column.",
        "",
    ]
    if card.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in card.notes] + [""]
    lines += card.extra_sections
    lines += [
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        'ds = load_dataset("path/to/this/folder")  # or "<org>/<name>" once on the Hub',
        "```",
        "",
    ]
    return "\n".join(yaml + [line for line in lines if line is not None]) + "\n"


def push_dataset_folder(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
) -> str:
    """Upload a dataset folder to the Hub with ``huggingface_hub`` (creates the repo if needed)."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=repo_id,
        repo_type="dataset",
        revision=revision,
        allow_patterns=["README.md", "data/*.parquet"],
    )
    return str(info)
