"""A small dataset folder to annotate (rows of hub/fmnist-judged-v1 with their votes removed)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the tables of a campaign file of schema 1 (before per-annotator secrets), for the upgrade tests
SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (item_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, image BLOB NOT NULL,
                    UNIQUE (kind, key));
CREATE TABLE annotators (name TEXT PRIMARY KEY, joined REAL NOT NULL);
CREATE TABLE orders (annotator TEXT NOT NULL, rank INTEGER NOT NULL, item_id INTEGER NOT NULL,
                     PRIMARY KEY (annotator, rank)) WITHOUT ROWID;
CREATE TABLE leases (annotator TEXT PRIMARY KEY, item_id INTEGER NOT NULL, ticket TEXT NOT NULL UNIQUE,
                     expires REAL NOT NULL);
CREATE INDEX leases_item ON leases(item_id);
CREATE TABLE answers (answer_id INTEGER PRIMARY KEY AUTOINCREMENT, annotator TEXT NOT NULL, item_id INTEGER NOT NULL,
                      answer INTEGER NOT NULL, ticket TEXT NOT NULL UNIQUE, answered REAL NOT NULL,
                      UNIQUE (annotator, item_id));
CREATE INDEX answers_item ON answers(item_id);
CREATE TABLE retracted (answer_id INTEGER PRIMARY KEY, annotator TEXT NOT NULL, item_id INTEGER NOT NULL,
                        answer INTEGER NOT NULL, ticket TEXT NOT NULL, answered REAL NOT NULL, retracted REAL NOT NULL);
"""


def make_unannotated_dataset(
    out: Path,
    originals_per_split: int = 2,
    *,
    splits: tuple[str, ...] | None = None,
    reconstructions_per_original: int | None = None,
) -> Path:
    """Write ``out``: a few originals per split of the bundled judged dataset (``splits``: only these; with
    ``reconstructions_per_original``: at most that many reconstructions of each), every row without votes."""
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder
    from semsim_metric.data.loading import load_folder_or_hub, undecoded

    dsd = undecoded(load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1")))
    chosen = {}
    for name, split in dsd.items():
        if splits is not None and name not in splits:
            continue
        keep = sorted(set(split["original_id"]))[:originals_per_split]
        rows = [r for r in split if r["original_id"] in keep]
        if reconstructions_per_original is not None:
            rows = [
                r
                for o in keep
                for r in [r for r in rows if r["original_id"] == o][:reconstructions_per_original]
            ]
        for r in rows:
            r.update(
                votes=[],
                original_votes=[],
                recognized=False,
                recognized_share=float("nan"),
                annotator_kind="none",
            )
        chosen[name] = rows
    write_dataset_folder(chosen, out, DatasetCard(title="to annotate", summary="test rows without votes"))
    return out
