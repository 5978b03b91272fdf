"""Contracts of the official training archive's converter (``data/convert/official_training.py``, issue 21 item 10).

The layout (docs/datasets.md): ``train_with_ori/N`` holds original N (``<idx>_<class>_ori.png``) and its
recognisable reconstructions (``<idx>_<class>_rec_<k>_<m>.png``, m = victim index from 1), ``-N`` its unrecognisable
ones, ``others/`` extra negatives. The tests pin every column of the rows, the report (counts, problems, notes, the
reason of each ignored file) and the arguments' effect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from semsim_metric.data import ConversionError, convert_official_training
from semsim_metric.data.schema import empty_row
from tests.helpers import VICTIMS, png


def _layout(tmp_path: Path) -> Path:
    """``human_anno_id/train_with_ori/`` with two originals, 5 good reconstructions and one without its original."""
    root = tmp_path / "human_anno_id" / "train_with_ori"
    png(root / "3" / "3_72_ori.png", 1)
    png(root / "3" / "3_72_rec_0_1.png", 2)
    png(root / "3" / "3_72_rec_1_2.png", 3)
    png(root / "-3" / "3_72_rec_2_3.png", 4)
    png(root / "4" / "4_51_ori.png", 5)
    png(root / "-4" / "4_51_rec_0_2.png", 6)
    png(root / "others" / "4_51_rec_9_1.png", 7)
    png(root / "others" / "8_11_rec_0_1.png", 8)  # original 8 has no folder
    return root


def _by_id(rows):
    return {r["reconstruction_id"]: r for r in rows}


def _expected_row(root: Path, folder: str, name: str, original: str, **columns) -> dict:
    row = empty_row()
    row.update(
        reconstruction_id=f"{folder}/{Path(name).stem}",
        original={"bytes": (root / original).read_bytes(), "path": Path(original).name},
        reconstruction={"bytes": (root / folder / name).read_bytes(), "path": name},
        attack="inverting_gradients",
        **columns,
    )
    return row


def test_every_column_of_every_row_with_the_default_arguments(tmp_path):
    root = _layout(tmp_path)
    rows, report = convert_official_training(root.parent)
    common = {"source_dataset": "cifar100", "annotator_kind": "human"}
    three = {"original_id": "cifar100-test-3", "class_label": 72, **common}
    four = {"original_id": "cifar100-test-4", "class_label": 51, **common}
    yes, no = {"recognized": True, "recognized_share": 1.0}, {"recognized": False, "recognized_share": 0.0}
    assert rows == [  # folders in name order: -3, -4, 3, 4, others
        _expected_row(root, "-3", "3_72_rec_2_3.png", "3/3_72_ori.png", victim="victim_3", **no, **three),
        _expected_row(root, "-4", "4_51_rec_0_2.png", "4/4_51_ori.png", victim="victim_2", **no, **four),
        _expected_row(root, "3", "3_72_rec_0_1.png", "3/3_72_ori.png", victim="victim_1", **yes, **three),
        _expected_row(root, "3", "3_72_rec_1_2.png", "3/3_72_ori.png", victim="victim_2", **yes, **three),
        _expected_row(root, "others", "4_51_rec_9_1.png", "4/4_51_ori.png", victim="victim_1", **no, **four),
    ]
    assert (report.source, report.converter, report.strict) == (str(root), "official-training", False)
    assert (report.inputs, report.converted, report.skipped, report.supporting, report.files) == (
        6,
        5,
        1,
        2,
        8,
    )
    assert report.problems == [
        {"item": "others/8_11_rec_0_1.png", "reason": "missing original: no folder 8/ with 8_11_ori.png"}
    ]
    assert (report.notes, report.ignored) == ([], [])


def test_source_dataset_annotator_kind_and_victim_names_reach_the_rows(tmp_path):
    root = _layout(tmp_path)
    names = [VICTIMS[0], "my_victim", VICTIMS[1]]  # m = 1, 2, 3; the second is not the official pattern
    rows, _ = convert_official_training(
        root.parent, source_dataset="fmnist", annotator_kind="vlm", victim_names=names
    )
    by_id = _by_id(rows)
    assert {r["source_dataset"] for r in rows} == {"fmnist"} and {r["annotator_kind"] for r in rows} == {
        "vlm"
    }
    assert by_id["3/3_72_rec_0_1"]["original_id"] == "fmnist-test-3"
    first, second, third = by_id["3/3_72_rec_0_1"], by_id["3/3_72_rec_1_2"], by_id["-3/3_72_rec_2_3"]
    assert (first["victim"], first["victim_arch"], first["victim_train_mode"]) == (
        VICTIMS[0],
        "ConvNet",
        "crop",
    )
    assert (first["victim_train_epochs"], first["defense"]) == (200, "none")
    assert (third["victim"], third["victim_arch"], third["defense"]) == (VICTIMS[1], "ResNet20-4", "prune_70")
    assert third["victim_aug_policy"] == "3-1-7+43-18-18"
    # a name that is not the official pattern is kept, its columns stay unknown
    unknown = {k: v for k, v in empty_row().items() if k.startswith("victim_")}
    assert second["victim"] == "my_victim" and {k: second[k] for k in unknown} == unknown


def test_victim_indices_outside_the_names_fall_back_to_victim_m(tmp_path):
    root = tmp_path / "train_with_ori"
    png(root / "3" / "3_72_ori.png", 1)
    for m in (0, 1, 2, 3):
        png(root / "3" / f"3_72_rec_0_{m}.png", 10 + m)
    rows, _ = convert_official_training(root, victim_names=["first", "second"])
    assert [r["victim"] for r in rows] == ["victim_0", "first", "second", "victim_3"]
    rows, _ = convert_official_training(root, victim_names=[])
    assert [r["victim"] for r in rows] == ["victim_0", "victim_1", "victim_2", "victim_3"]


def test_the_folder_train_with_ori_itself_may_be_given(tmp_path):
    root = _layout(tmp_path)
    (root.parent / "stray.png").write_bytes(b"outside the layout")  # beside train_with_ori: not part of it
    outer_rows, outer = convert_official_training(root.parent)
    inner_rows, inner = convert_official_training(root)
    assert inner_rows == outer_rows and inner.source == outer.source == str(root)
    assert inner.files == outer.files == 8 and outer.ignored == []


def test_a_folder_without_numbered_folders_is_not_the_layout(tmp_path):
    png(tmp_path / "train_with_ori" / "others" / "3_72_rec_0_1.png", 1)
    png(tmp_path / "train_with_ori" / "3a" / "3_72_ori.png", 2)
    with pytest.raises(ConversionError, match="no folders named N / -N"):
        convert_official_training(tmp_path)


def test_strict_mode_stops_at_the_first_problem(tmp_path):
    root = _layout(tmp_path)
    with pytest.raises(
        ConversionError, match=r"official-training: others/8_11_rec_0_1\.png: missing original"
    ):
        convert_official_training(root, strict=True)
    (root / "others" / "8_11_rec_0_1.png").unlink()
    rows, report = convert_official_training(root, strict=True)
    assert len(rows) == report.converted == 5 and report.strict


def test_items_that_cannot_be_converted_are_reported_with_their_reason(tmp_path):
    root = _layout(tmp_path)
    png(root / "3" / "3_72_rec_x.png", 20)  # not <idx>_<class>_rec_<k>_<m>
    png(root / "3" / "3_72_rec_0_1_b.png", 25)  # nothing may follow <m>
    png(root / "3" / "4_51_rec_0_1.png", 21)  # another original's reconstruction
    png(root / "-4" / "3_72_rec_0_1.png", 22)
    png(root / "4" / "4_51_rec_1_1.png", 23, size=(16, 16))  # size mismatch with its original
    (root / "4" / "4_51_rec_2_1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    png(root / "others" / "03_72_rec_5_1.png", 24)  # others/ takes any original; zero-padded index 3
    rows, report = convert_official_training(root)
    reasons = {p["item"]: p["reason"] for p in report.problems}
    assert set(reasons) == {
        "3/3_72_rec_x.png", "3/3_72_rec_0_1_b.png", "3/4_51_rec_0_1.png", "-4/3_72_rec_0_1.png", "4/4_51_rec_1_1.png",
        "4/4_51_rec_2_1.png", "others/8_11_rec_0_1.png",
    }  # fmt: skip
    assert reasons["3/3_72_rec_x.png"] == "unexpected file name (expected <idx>_<class>_rec_<k>_<m>.png)"
    assert reasons["3/3_72_rec_0_1_b.png"] == reasons["3/3_72_rec_x.png"]
    assert reasons["3/4_51_rec_0_1.png"] == "file of original 4 in folder 3"
    assert reasons["-4/3_72_rec_0_1.png"] == "file of original 3 in folder -4"
    assert reasons["4/4_51_rec_1_1.png"].startswith("size mismatch")
    assert "unreadable" in reasons["4/4_51_rec_2_1.png"]
    padded = _by_id(rows)["others/03_72_rec_5_1"]
    assert (padded["original_id"], padded["class_label"], padded["recognized"]) == (
        "cifar100-test-3",
        72,
        False,
    )
    assert (report.inputs, report.converted, report.skipped) == (13, 6, 7)


def test_an_original_shared_by_reconstructions_is_read_once(tmp_path):
    rows, _ = convert_official_training(_layout(tmp_path))
    by_id = _by_id(rows)
    assert by_id["3/3_72_rec_0_1"]["original"] is by_id["3/3_72_rec_1_2"]["original"]
    assert by_id["3/3_72_rec_0_1"]["reconstruction"] is not by_id["3/3_72_rec_1_2"]["reconstruction"]


def test_originals_come_only_from_folders_N_and_a_folder_N_needs_exactly_one(tmp_path):
    root = _layout(tmp_path)
    png(root / "5" / "5_10_ori.png", 30)  # two originals of 5: the last in name order is used
    png(root / "5" / "5_11_ori.png", 31)
    png(root / "5" / "5_11_rec_0_1.png", 32)
    png(root / "6" / "6_12_rec_0_1.png", 33)  # no original at all
    png(root / "7" / "seven_ori.png", 34)  # one *_ori file, but not named <idx>_<class>_ori
    png(root / "7" / "7_13_rec_0_1.png", 35)
    png(root / "-9" / "9_14_ori.png", 36)  # an original in -N is not used
    png(root / "-9" / "9_14_rec_0_1.png", 37)
    png(root / "00010" / "10_15_ori.png", 38)  # a folder with only its original
    png(root / "3a" / "3_72_rec_0_1.png", 39)  # not a numbered folder
    png(root / "-" / "3_72_rec_0_1.png", 40)  # nor is "-"
    png(root / "12" / "012_5_ori.png", 41)  # a zero-padded index is the same original
    png(root / "12" / "12_5_rec_0_1.png", 42)
    rows, report = convert_official_training(root)
    assert report.notes == [
        "folder 5 holds 2 *_ori image files (expected 1)",
        "folder 6 holds 0 *_ori image files (expected 1)",
        "ignored folder -",
        "ignored folder 3a",
    ]
    assert {i["item"]: i["reason"] for i in report.ignored}["-/3_72_rec_0_1.png"].startswith("in folder -/")
    assert _by_id(rows)["5/5_11_rec_0_1"]["class_label"] == 11
    assert _by_id(rows)["5/5_11_rec_0_1"]["original"]["path"] == "5_11_ori.png"
    reasons = {p["item"]: p["reason"] for p in report.problems}
    assert reasons["6/6_12_rec_0_1.png"] == "missing original: no folder 6/ with 6_12_ori.png"
    assert reasons["7/7_13_rec_0_1.png"] == "missing original: no folder 7/ with 7_13_ori.png"
    assert reasons["-9/9_14_rec_0_1.png"] == "missing original: no folder 9/ with 9_14_ori.png"
    padded = _by_id(rows)["12/12_5_rec_0_1"]
    assert (padded["original"]["path"], padded["class_label"], padded["original_id"]) == (
        "012_5_ori.png",
        5,
        "cifar100-test-12",
    )
    assert report.supporting == 4  # 3_72, 4_51, 5_11 and 012_5


def test_every_ignored_file_has_its_reason(tmp_path):
    root = _layout(tmp_path)
    png(root / "5" / "5_10_ori.png", 30)
    png(root / "5" / "5_11_ori.png", 31)
    png(root / "5" / "5_11_rec_0_1.png", 32)
    png(root / "9" / "9_14_ori.png", 33)  # no reconstruction refers to it
    png(root / "-3" / "3_72_ori.png", 34)
    png(root / "others" / "3_72_ori.png", 35)  # an original in others/ is ignored, not a problem
    png(root / "3" / "deeper" / "3_72_rec_6_9.png", 36)
    png(root / "others" / "deeper" / "4_51_rec_6_9.png", 37)
    png(root / "extra" / "deeper" / "3_72_rec_6_9.png", 38)
    (root / "3" / "notes.txt").write_text("x")
    (root / "README.txt").write_text("x")
    png(root / "stray.png", 39)
    _, report = convert_official_training(root)
    unused = "original that no reconstruction refers to (another *_ori file of this folder is used)"
    misplaced = "original in a -N or others folder (originals live in N/)"
    top = "directly under the root (files belong in N/, -N/ or others/)"
    assert {i["item"]: i["reason"] for i in report.ignored} == {
        "5/5_10_ori.png": unused,
        "9/9_14_ori.png": unused,
        "-3/3_72_ori.png": misplaced,
        "others/3_72_ori.png": misplaced,
        "3/deeper/3_72_rec_6_9.png": "in a sub-folder of 3/ (not part of the layout)",
        "others/deeper/4_51_rec_6_9.png": "in a sub-folder of others/ (not part of the layout)",
        "extra/deeper/3_72_rec_6_9.png": "in folder extra/, which is not N/, -N/ or others/",
        "3/notes.txt": "not an image file",
        "README.txt": top,
        "stray.png": top,
    }
    assert report.files == report.inputs + report.supporting + len(report.ignored) == 20
    assert report.notes == ["folder 5 holds 2 *_ori image files (expected 1)", "ignored folder extra"]


def test_a_reconstruction_linked_to_a_file_outside_the_folder_is_not_read(tmp_path):
    root = _layout(tmp_path)
    png(tmp_path / "outside" / "private.png", 50)
    (root / "3" / "3_72_rec_5_1.png").symlink_to(tmp_path / "outside" / "private.png")
    (root / "3" / "3_72_rec_6_1.png").symlink_to(root / "3" / "3_72_rec_0_1.png")  # inside: read
    rows, report = convert_official_training(root)
    private = (tmp_path / "outside" / "private.png").read_bytes()
    assert all(private not in (r["original"]["bytes"], r["reconstruction"]["bytes"]) for r in rows)
    reasons = {p["item"]: p["reason"] for p in report.problems}
    assert "outside the input folder, not read: 3/3_72_rec_5_1.png" in reasons["3/3_72_rec_5_1.png"]
    linked = _by_id(rows)["3/3_72_rec_6_1"]["reconstruction"]
    assert linked == {"bytes": (root / "3" / "3_72_rec_0_1.png").read_bytes(), "path": "3_72_rec_6_1.png"}
