"""Output folders: a command never deletes or overwrites files it did not write, and partial outputs are refused."""

from __future__ import annotations

import json

import pytest

from semsim_metric.errors import IncompleteOutputError, OutputFolderError
from semsim_metric.outputs import RECORD_NAME, OutputFolder, check_complete


def test_a_foreign_non_empty_folder_is_refused_untouched(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("x")
    (tmp_path / "README.md").write_text("mine")
    with pytest.raises(OutputFolderError, match="not empty .*--overwrite"):
        OutputFolder(tmp_path, command="generate").claim()
    assert (tmp_path / "data" / "precious.txt").read_text() == "x"
    assert (tmp_path / "README.md").read_text() == "mine"
    assert not (tmp_path / RECORD_NAME).exists()


def test_another_commands_folder_is_refused(tmp_path):
    OutputFolder(tmp_path, command="convert").claim()
    with pytest.raises(OutputFolderError, match="output of `semsim convert`"):
        OutputFolder(tmp_path, command="generate").claim()
    OutputFolder(tmp_path, command="generate", overwrite=True).claim()


def test_own_files_are_replaced_but_files_added_by_someone_else_are_not(tmp_path):
    out = OutputFolder(tmp_path / "o", command="c").claim()
    out.write_text("a.txt", "1")
    out.replace_dir("data", lambda d: (d.mkdir(), (d / "x.parquet").write_text("v1")))
    again = OutputFolder(tmp_path / "o", command="c").claim()
    again.write_text("a.txt", "2")
    again.replace_dir("data", lambda d: (d.mkdir(), (d / "x.parquet").write_text("v2")))
    assert (tmp_path / "o" / "data" / "x.parquet").read_text() == "v2"
    (tmp_path / "o" / "data" / "precious.txt").write_text("keep")
    (tmp_path / "o" / "b.txt").write_text("keep")
    with pytest.raises(OutputFolderError, match="precious.txt"):
        again.replace_dir("data", lambda d: (d.mkdir(), (d / "x.parquet").write_text("v3")))
    with pytest.raises(OutputFolderError, match="b.txt"):
        again.write_text("b.txt", "mine now")
    assert (tmp_path / "o" / "data" / "precious.txt").read_text() == "keep"
    assert (tmp_path / "o" / "data" / "x.parquet").read_text() == "v2"
    assert (tmp_path / "o" / "b.txt").read_text() == "keep"
    assert not [p for p in (tmp_path / "o").iterdir() if p.name.endswith((".tmp", ".old"))]


def test_a_write_that_fails_half_way_keeps_the_old_version_and_is_refused_by_loaders(tmp_path):
    out = OutputFolder(tmp_path / "o", command="c").claim()
    out.replace_dir("data", lambda d: (d.mkdir(), (d / "x.parquet").write_text("v1")))
    out.complete()
    check_complete(tmp_path / "o")

    def crash(d):
        d.mkdir()
        (d / "x.parquet").write_text("half")
        raise KeyboardInterrupt

    out.reopen()
    with pytest.raises(KeyboardInterrupt):
        out.replace_dir("data", crash)
    assert (tmp_path / "o" / "data" / "x.parquet").read_text() == "v1"
    with pytest.raises(IncompleteOutputError, match="Rerun the same command"):
        check_complete(tmp_path / "o")


def _rows(n):
    from semsim_metric.data.schema import empty_row

    rows = []
    for i in range(n):
        row = empty_row()
        img = {"bytes": _png_bytes(i), "path": None}
        row.update(
            reconstruction_id=f"r{i}",
            original_id=f"o{i}",
            original=img,
            reconstruction=img,
            recognized=bool(i % 2),
        )
        rows.append(row)
    return rows


def _png_bytes(seed):
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (8, 8), dtype=np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


def test_convert_refuses_a_foreign_folder_without_touching_its_report(tmp_path):
    from semsim_metric.cli import main

    manifest = tmp_path / "m.csv"
    manifest.write_text("original,reconstruction,votes\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "conversion_report.md").write_text("someone else's report")
    assert main(["convert", "manifest", str(manifest), "--out", str(out), "--annotator-kind", "human"]) == 2
    assert (out / "conversion_report.md").read_text() == "someone else's report"
    assert sorted(p.name for p in out.iterdir()) == ["conversion_report.md"]


def test_a_killed_dataset_write_is_refused_by_load_annotations(tmp_path, monkeypatch):
    import datasets

    from semsim_metric import load_annotations
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder

    splits = {"train": _rows(4), "test": _rows(2)}
    write_dataset_folder(splits, tmp_path / "ds", DatasetCard(title="t", summary="s"))
    assert len(load_annotations(tmp_path / "ds", split="train")) == 4
    calls = []
    real = datasets.Dataset.to_parquet

    def dies_after_one(self, *a, **k):
        if calls:
            raise SystemExit("killed")
        calls.append(1)
        return real(self, *a, **k)

    monkeypatch.setattr(datasets.Dataset, "to_parquet", dies_after_one)
    with pytest.raises(SystemExit):
        write_dataset_folder(
            {"train": _rows(5), "test": _rows(3)}, tmp_path / "ds", DatasetCard(title="t", summary="s")
        )
    monkeypatch.setattr(datasets.Dataset, "to_parquet", real)
    with pytest.raises(IncompleteOutputError, match="rerun|Rerun"):
        load_annotations(tmp_path / "ds")
    write_dataset_folder(
        {"train": _rows(5), "test": _rows(3)}, tmp_path / "ds", DatasetCard(title="t", summary="s")
    )
    assert len(load_annotations(tmp_path / "ds", split="train")) == 5
    assert json.loads((tmp_path / "ds" / RECORD_NAME).read_text())["complete"] is True


def test_a_folder_with_only_generation_shards_is_refused(tmp_path):
    from semsim_metric import load_annotations
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder

    write_dataset_folder({"train": _rows(3)}, tmp_path / "tmp", DatasetCard(title="t", summary="s"))
    (tmp_path / "gen" / "shards").mkdir(parents=True)
    (tmp_path / "gen" / "plan.json").write_text("{}")
    for p in (tmp_path / "tmp" / "data").iterdir():
        (tmp_path / "gen" / "shards" / p.name).write_bytes(p.read_bytes())
    with pytest.raises(IncompleteOutputError, match="semsim generate"):
        load_annotations(tmp_path / "gen")


def test_folders_from_before_ownership_records_still_load(tmp_path):
    """The bundled datasets were written before the record existed; they have no plan or shards."""
    from semsim_metric import load_annotations
    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder

    write_dataset_folder({"train": _rows(3)}, tmp_path / "ds", DatasetCard(title="t", summary="s"))
    (tmp_path / "ds" / RECORD_NAME).unlink()
    assert len(load_annotations(tmp_path / "ds", split="train")) == 3


def test_dataset_cards_carry_the_hubs_metadata(tmp_path):
    from huggingface_hub import DatasetCard as HubDatasetCard

    from semsim_metric.data.hub_folder import DatasetCard, write_dataset_folder

    rows = _rows(3)
    for r in rows:
        r["annotator_kind"] = "model-judge"
    write_dataset_folder(
        {"train": rows},
        tmp_path / "ds",
        DatasetCard(title="Judged", summary="s", source_datasets=["zalando-datasets/fashion_mnist"]),
    )
    card = HubDatasetCard.load(tmp_path / "ds" / "README.md")
    assert card.data.annotations_creators == ["machine-generated"]
    assert card.data.size_categories == ["n<1K"] and card.data.pretty_name == "Judged"
    assert card.data.source_datasets == ["zalando-datasets/fashion_mnist"]
    assert card.data.configs[0]["data_files"] == [{"split": "train", "path": "data/train-*"}]
