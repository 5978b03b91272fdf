"""A small dataset folder to annotate (rows of hub/fmnist-judged-v1 with their votes removed)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def make_unannotated_dataset(out: Path, originals_per_split: int = 2) -> Path:
    """Write ``out``: a few originals per split of the bundled judged dataset, every row without votes."""
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder
    from semsim_metric.data.loading import load_folder_or_hub, undecoded

    dsd = undecoded(load_folder_or_hub(str(ROOT / "hub" / "fmnist-judged-v1")))
    splits = {}
    for name, split in dsd.items():
        keep = sorted(set(split["original_id"]))[:originals_per_split]
        rows = [r for r in split if r["original_id"] in keep]
        for r in rows:
            r.update(
                votes=[],
                original_votes=[],
                recognized=False,
                recognized_share=float("nan"),
                annotator_kind="none",
            )
        splits[name] = rows
    write_dataset_folder(splits, out, DatasetCard(title="to annotate", summary="test rows without votes"))
    return out
