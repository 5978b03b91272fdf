"""Converters read only inside the folder they are given, and never echo what a file contains (issue 21).

A tree may hold symbolic links (an archive from elsewhere, a tree someone else laid out): a link leaving the
tree is refused and named in the report, a link to a folder is not followed, and every entry under the tree
is still accounted for (items + supporting files + ignored = entries).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from semsim_metric.data import (
    ConversionError,
    convert_manifest,
    convert_official_labels,
    convert_official_training,
)
from semsim_metric.data.convert import parse_votes
from tests.helpers import VICTIMS, png

SECRET = "API_KEY=sk-live-0123456789abcdef"


def _entries(root: Path) -> int:
    """Entries under ``root`` that are not real folders (files, links of any kind), counted independently."""
    return sum(
        1
        for dirpath, dirnames, filenames in os.walk(root)
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
    )


def _adds_up(report, root: Path) -> None:
    assert report.files == _entries(root) == report.inputs + report.supporting + len(report.ignored)
    report.check_totals()


def _written(report, folder: Path) -> str:
    report.write(folder)
    return (folder / "conversion_report.md").read_text() + (folder / "conversion_report.json").read_text()


@pytest.fixture
def labels_tree(tmp_path):
    """The labels layout with two originals, two victims; and a folder outside it holding private files."""
    root = tmp_path / "human_annos_subset"
    outside = tmp_path / "outside"
    png(outside / "private_photo.png", 99)
    (outside / "secret.txt").write_text(SECRET + " 72 72 72 72\n")
    (outside / "victim_elsewhere").mkdir()
    png(outside / "victim_elsewhere" / "3_72_rec.png", 98)
    (outside / "victim_elsewhere" / "3_72_gt.txt").write_text("72 72 72 72 72\n")
    for i, (idx, cls) in enumerate([(3, 72), (1, 4)]):
        png(root / "original-img" / f"{idx}_{cls}_ori.png", i)
        for v, victim in enumerate(VICTIMS):
            png(root / "img" / victim / f"{idx}_{cls}_rec.png", 10 + 2 * i + v)
            (root / "img" / victim / f"{idx}_{cls}_gt.txt").write_text(f"{cls} {cls} {cls} -1 -1\n")
    return root, outside


def test_an_original_linked_from_outside_is_not_embedded_and_the_report_names_it(labels_tree, tmp_path):
    root, outside = labels_tree
    link = root / "original-img" / "1_4_ori.png"
    link.unlink()
    link.symlink_to(Path("..") / ".." / "outside" / "private_photo.png")  # the reproducer of issue 21
    assert link.is_file()  # the link works: only the rule keeps it out
    private = (outside / "private_photo.png").read_bytes()
    rows, report = convert_official_labels(root)
    assert all(row["original"]["bytes"] != private for row in rows)
    assert {row["reconstruction_id"].split("/")[1] for row in rows} == {"3_72"}
    reasons = {p["item"]: p["reason"] for p in report.problems}
    for victim in VICTIMS:
        reason = reasons[f"img/{victim}/1_4_rec.png"]
        assert "outside the input folder" in reason and "original-img/1_4_ori.png" in reason
        assert "private_photo" not in reason  # the report names the link, not where it points
    ignored = {i["item"]: i["reason"] for i in report.ignored}
    assert "outside the input folder" in ignored["original-img/1_4_ori.png"]
    _adds_up(report, root)
    with pytest.raises(ConversionError, match="original-img/1_4_ori.png"):
        convert_official_labels(root, strict=True)


def test_a_label_file_linked_from_outside_never_reaches_the_report(labels_tree, tmp_path):
    root, outside = labels_tree
    label = root / "img" / VICTIMS[1] / "3_72_gt.txt"
    label.unlink()
    label.symlink_to(outside / "secret.txt")  # an absolute link this time
    rows, report = convert_official_labels(root)
    assert len(rows) == 3
    item = f"img/{VICTIMS[1]}/3_72_rec.png"
    assert [p["item"] for p in report.problems] == [item]
    assert f"img/{VICTIMS[1]}/3_72_gt.txt" in report.problems[0]["reason"]
    text = _written(report, tmp_path / "out") + report.summary()
    assert "API_KEY" not in text and "sk-live" not in text
    assert "outside the input folder" in text
    _adds_up(report, root)


def test_a_bad_label_file_is_reported_by_line_and_value_never_by_its_content(labels_tree, tmp_path):
    root, _ = labels_tree
    (root / "img" / VICTIMS[0] / "3_72_gt.txt").write_text(f"72 72\n72 {SECRET} 72\n")
    (root / "img" / VICTIMS[1] / "1_4_gt.txt").write_bytes(b"\xff\xfe" + SECRET.encode("utf-16-le"))
    _, report = convert_official_labels(root)
    reasons = {p["item"]: p["reason"] for p in report.problems}
    bad = reasons[f"img/{VICTIMS[0]}/3_72_rec.png"]
    assert f"img/{VICTIMS[0]}/3_72_gt.txt, line 2, value 2 is not an integer" in bad and "expected 5" in bad
    assert "not UTF-8" in reasons[f"img/{VICTIMS[1]}/1_4_rec.png"]
    text = _written(report, tmp_path / "out") + report.summary()
    assert "API_KEY" not in text and "sk-live" not in text
    with pytest.raises(ConversionError) as err:
        convert_official_labels(root, strict=True)
    assert "API_KEY" not in str(err.value) and "line 2" in str(err.value)
    _adds_up(report, root)


def test_a_reconstruction_linked_from_outside_is_a_skipped_item(labels_tree):
    root, outside = labels_tree
    rec = root / "img" / VICTIMS[0] / "3_72_rec.png"
    rec.unlink()
    rec.symlink_to(outside / "private_photo.png")
    rows, report = convert_official_labels(root)
    private = (outside / "private_photo.png").read_bytes()
    assert all(row["reconstruction"]["bytes"] != private for row in rows) and len(rows) == 3
    assert "outside the input folder" in report.problems[0]["reason"]
    _adds_up(report, root)


def test_links_to_folders_are_not_followed_and_are_listed(labels_tree):
    root, outside = labels_tree
    victim = "ConvNet_100_inversed_crop_auglist__rlabel_False"
    (root / "img" / victim).symlink_to(outside / "victim_elsewhere", target_is_directory=True)
    (root / "img" / "inside_alias").symlink_to(root / "img" / VICTIMS[0], target_is_directory=True)
    rows, report = convert_official_labels(root)
    assert len(rows) == 4 and not any(victim in row["reconstruction_id"] for row in rows)
    ignored = {i["item"]: i["reason"] for i in report.ignored}
    assert "outside the input folder" in ignored[f"img/{victim}"]
    assert "links to folders are not followed" in ignored["img/inside_alias"]
    _adds_up(report, root)
    (root / "img" / "ln").symlink_to(outside, target_is_directory=True)
    (root / "original-img").rename(root / "real-originals")
    (root / "original-img").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConversionError, match="original-img is a symbolic link to a folder"):
        convert_official_labels(root)


def test_links_inside_the_tree_still_work_and_broken_links_are_listed(labels_tree):
    root, _ = labels_tree
    alias = root / "original-img" / "1_4_ori.png"
    alias.unlink()
    alias.symlink_to("3_72_ori.png")  # an original shared through a link inside the tree
    (root / "img" / VICTIMS[0] / "9_9_rec.png").symlink_to(root / "nowhere.png")  # broken
    rows, report = convert_official_labels(root)
    assert len(rows) == 4 and report.skipped == 0
    row = next(r for r in rows if r["reconstruction_id"] == f"{VICTIMS[0]}/1_4")
    assert row["original"]["path"] == "1_4_ori.png"  # named as in the tree, not as the link's target
    ignored = {i["item"]: i["reason"] for i in report.ignored}
    assert ignored[f"img/{VICTIMS[0]}/9_9_rec.png"] == "broken symbolic link (not read)"
    _adds_up(report, root)


def test_the_training_layout_keeps_to_its_folder_too(tmp_path):
    root = tmp_path / "human_anno_id" / "train_with_ori"
    outside = tmp_path / "outside"
    png(outside / "private_photo.png", 99)
    png(root / "3" / "3_72_ori.png", 1)
    png(root / "3" / "3_72_rec_0_1.png", 2)
    (root / "4").mkdir(parents=True)
    (root / "4" / "4_51_ori.png").symlink_to(outside / "private_photo.png")
    png(root / "4" / "4_51_rec_0_3.png", 6)
    (root / "-4").symlink_to(outside, target_is_directory=True)
    rows, report = convert_official_training(root.parent)
    private = (outside / "private_photo.png").read_bytes()
    assert [r["reconstruction_id"] for r in rows] == ["3/3_72_rec_0_1"]
    assert all(private not in (r["original"]["bytes"], r["reconstruction"]["bytes"]) for r in rows)
    assert "outside the input folder, not read: 4/4_51_ori.png" in report.problems[0]["reason"]
    ignored = {i["item"]: i["reason"] for i in report.ignored}
    assert set(ignored) == {"4/4_51_ori.png", "-4"}
    _adds_up(report, root)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "train_with_ori").symlink_to(root, target_is_directory=True)
    with pytest.raises(ConversionError, match="train_with_ori is a symbolic link"):
        convert_official_training(tmp_path / "linked")


def test_semsim_convert_writes_no_content_of_a_linked_file(labels_tree, tmp_path, capsys):
    from semsim_metric.cli import main

    root, outside = labels_tree
    label = root / "img" / VICTIMS[0] / "1_4_gt.txt"
    label.unlink()
    label.symlink_to(outside / "secret.txt")
    out = tmp_path / "converted"
    assert (
        main(
            [
                "convert",
                "official-labels",
                str(root),
                "--out",
                str(out),
                "--lenient",
                "--fractions",
                "0.67,0,0.33",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    written = "".join(
        p.read_text(errors="replace") for p in out.rglob("*") if p.is_file() and p.suffix in (".md", ".json")
    )
    for text in (written, captured.out, captured.err):
        assert "API_KEY" not in text and "sk-live" not in text
    assert f"img/{VICTIMS[0]}/1_4_gt.txt" in (out / "conversion_report.md").read_text()
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["files"] == report["inputs"] + report["supporting"] + len(report["ignored"])


def test_manifest_messages_name_lines_and_columns_not_values(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"{SECRET},x\n1,2\n")
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "m.csv").symlink_to(outside / "secret.csv")
    with pytest.raises(ConversionError, match="outside its folder") as err:
        convert_manifest(folder / "m.csv", annotator_kind="human")
    assert "API_KEY" not in str(err.value)
    with pytest.raises(ConversionError, match="lacks the column") as err:  # trusted, but still not echoed
        convert_manifest(folder / "m.csv", annotator_kind="human", allow_outside_paths=True)
    assert "API_KEY" not in str(err.value)
    png(folder / "o.png", 1)
    png(folder / "r.png", 2)
    (folder / "rows.csv").write_text(
        f"original,reconstruction,class_label,votes,recognized,{SECRET}\n"
        f"o.png,r.png,{SECRET},1;1;1,,\n"
        f"o.png,r.png,1,1;{SECRET};1,,\n"
        f"o.png,r.png,1,,{SECRET}\n"
        "o.png,r.png,1,1;1;1,,\n"
        "o.png,r.png,1,1;1;1,,\n"
    )
    rows, report = convert_manifest(folder / "rows.csv", annotator_kind="human")
    assert len(rows) == 1 and report.skipped == 4
    text = _written(report, tmp_path / "out") + report.summary()
    assert "API_KEY" not in text and "sk-live" not in text
    reasons = [p["reason"] for p in report.problems]
    assert "'class_label' is not an integer" in reasons[0] and "vote 2 of 3 is not an integer" in reasons[1]
    assert "recognized must be" in reasons[2] and "the same as line 5" in reasons[3]
    assert "1 column(s) not in the schema" in " ".join(report.notes)


def test_parse_votes_never_repeats_the_text():
    with pytest.raises(ValueError) as err:
        parse_votes(f"3;{SECRET};-1")
    assert "vote 2 of 3 is not an integer" in str(err.value) and "API_KEY" not in str(err.value)
    with pytest.raises(ValueError, match="vote 1 of 1 is below -1"):
        parse_votes("-7")


def test_a_label_folder_reached_through_a_link_is_not_read(tmp_path):
    root = tmp_path / "human_annos_subset"
    elsewhere = tmp_path / "labels_elsewhere" / VICTIMS[0]
    elsewhere.mkdir(parents=True)
    (elsewhere / "3_72_gt.txt").write_text(f"{SECRET}\n")
    png(root / "original-img" / "3_72_ori.png", 0)
    png(root / "img" / VICTIMS[0] / "3_72_rec.png", 1)
    (root / "label").symlink_to(tmp_path / "labels_elsewhere", target_is_directory=True)
    rows, report = convert_official_labels(root)
    assert not rows and "missing label file 3_72_gt.txt" in report.problems[0]["reason"]
    assert "outside the input folder" in {i["item"]: i["reason"] for i in report.ignored}["label"]
    _adds_up(report, root)


def test_manifest_rows_pointing_outside_its_folder_are_refused(tmp_path):
    from PIL import Image

    from semsim_metric.data import convert_manifest

    outside = tmp_path / "secret"
    outside.mkdir()
    Image.new("L", (8, 8)).save(outside / "o.png")
    inside = tmp_path / "ds"
    inside.mkdir()
    for name in ("o", "r1", "r2", "r3"):
        Image.new("L", (8, 8)).save(inside / f"{name}.png")
    manifest = inside / "m.csv"
    manifest.write_text(
        "original,reconstruction,recognized\n"
        f"{outside / 'o.png'},r1.png,true\n"
        "../secret/o.png,r2.png,true\n"
        "o.png,r3.png,true\n"
    )
    rows, report = convert_manifest(manifest, annotator_kind="human")
    assert len(rows) == 1 and report.skipped == 2
    assert all("outside the manifest's folder" in p["reason"] for p in report.problems)
    rows, _ = convert_manifest(manifest, annotator_kind="human", allow_outside_paths=True)
    assert len(rows) == 3
