"""Datasets: the schema, converters for the official layouts and manifests, bad input, splits, triplets,
and the per-process copies of loaded dataset folders (removed on exit, issue 21)."""

import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from semsim_metric import load_annotations
from semsim_metric.data import (
    FEATURES,
    ConversionError,
    DatasetCard,
    RecognitionRule,
    TripletDataset,
    convert_manifest,
    convert_official_labels,
    convert_official_training,
    parse_victim_name,
    rows_from_human_labels_csv,
    split_by_original,
    write_dataset_folder,
)
from semsim_metric.data.loading import load_folder_or_hub
from semsim_metric.models import SemSimConfig
from semsim_metric.training.stages.triplets import TripletCollator
from tests.conftest import shared_file
from tests.helpers import ROOT, VICTIMS, png


@pytest.fixture
def official_labels(tmp_path):
    """The labels archive layout: original-img/, img/<victim>/ with *_rec.png and *_gt.txt."""
    root = tmp_path / "human_annos_subset"
    for i, (idx, cls) in enumerate([(3, 72), (4, 51), (6, 92)]):
        png(root / "original-img" / f"{idx}_{cls}_ori.png", i)
        for v, victim in enumerate(VICTIMS):
            png(root / "img" / victim / f"{idx}_{cls}_rec.png", 100 + 10 * i + v)
            votes = [cls] * (3 if (i + v) % 2 == 0 else 1) + [-1] * (2 if (i + v) % 2 == 0 else 4)
            (root / "img" / victim / f"{idx}_{cls}_gt.txt").write_text(" ".join(map(str, votes)) + "\n")
    return root


@pytest.fixture
def official_training(tmp_path):
    """The training archive layout: train_with_ori/N, -N, others/."""
    root = tmp_path / "human_anno_id" / "train_with_ori"
    png(root / "3" / "3_72_ori.png", 1)
    png(root / "3" / "3_72_rec_0_1.png", 2)
    png(root / "3" / "3_72_rec_1_2.png", 3)
    png(root / "-3" / "3_72_rec_2_5.png", 4)
    png(root / "4" / "4_51_ori.png", 5)
    png(root / "4" / "4_51_rec_0_3.png", 6)
    png(root / "others" / "4_51_rec_9_7.png", 7)
    return root.parent


def test_victim_names_parse_like_the_published_table():
    path = shared_file("semsim_cifar100_human_labels.csv")
    with path.open() as fh:
        seen = {r["victim"]: r for r in csv.DictReader(fh)}
    assert len(seen) == 14
    for name, r in seen.items():
        parsed = parse_victim_name(name)
        assert (
            parsed["victim_arch"],
            parsed["victim_train_mode"],
            parsed["victim_aug_policy"],
            parsed["defense"],
        ) == (r["arch"], r["train_mode"], r["aug_policy"], r["defense"])


def test_human_label_table_gives_the_published_figures():
    path = shared_file("semsim_cifar100_human_labels.csv")
    rows = rows_from_human_labels_csv(path)
    assert len(rows) == 8400
    assert len({r["victim"] for r in rows}) == 14
    assert sum(r["recognized"] for r in rows) / len(rows) == pytest.approx(0.554, abs=5e-4)
    assert {r["annotator_kind"] for r in rows} == {"human"}


def test_recognition_rule_variants():
    assert RecognitionRule(3).recognized([2, 2, 2, 4, 4], 2)
    assert not RecognitionRule(4).recognized([2, 2, 2, 4, 4], 2)
    # a pullover (2) people read as coat (4) in the original: recognised under the consensus rule only
    assert not RecognitionRule(3, "true_class").recognized([4, 4, 4, 4, -1], 2, [4, 4, 4, 2, 4])
    assert RecognitionRule(3, "original_consensus").recognized([4, 4, 4, 4, -1], 2, [4, 4, 4, 2, 4])
    with pytest.raises(ValueError):
        RecognitionRule(0)


def test_official_labels_convert_and_round_trip(official_labels, tmp_path):
    rows, report = convert_official_labels(official_labels, strict=True)
    assert (report.inputs, report.converted, report.skipped) == (6, 6, 0)
    row = next(r for r in rows if r["victim"] == VICTIMS[1] and r["class_label"] == 72)
    assert row["votes"] == [72, 72, 72, -1, -1] or row["votes"] == [72, -1, -1, -1, -1]
    assert row["victim_arch"] == "ResNet20-4" and row["defense"] == "prune_70"
    assert row["victim_aug_policy"] == "3-1-7+43-18-18" and row["annotator_kind"] == "human"
    splits, _ = split_by_original(rows, fractions={"train": 0.67, "test": 0.33}, seed=0)
    out = write_dataset_folder(splits, tmp_path / "ds", DatasetCard(title="t", summary="s"))
    card = (out / "README.md").read_text()
    assert "configs:" in card and "recognized = at least 3 votes equal the true class" in card
    ds = load_annotations(out)
    assert set(ds) == {"train", "test"} and ds["train"].features == FEATURES
    assert sum(len(s) for s in ds.values()) == 6
    loaded = next(r for r in ds["train"])
    assert isinstance(loaded["original"], Image.Image) and loaded["original"].size == (32, 32)
    assert load_folder_or_hub(str(out), split="test").num_rows == len(splits["test"])


def test_official_labels_bad_inputs_are_reported_and_add_up(official_labels):
    v0 = official_labels / "img" / VICTIMS[0]
    (official_labels / "original-img" / "4_51_ori.png").unlink()  # missing original
    (v0 / "6_92_gt.txt").write_text("92 92 -1 5\n")  # wrong vote count
    (official_labels / "img" / VICTIMS[1] / "6_92_gt.txt").write_text("92 x 92 92 92")  # non-integer
    (official_labels / "img" / VICTIMS[1] / "3_72_rec.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")  # corrupt
    png(v0 / "3_72_rec.png", 0, size=(16, 16))  # size mismatch
    rows, report = convert_official_labels(official_labels, strict=False)
    assert report.inputs == 6 and report.converted + report.skipped == report.inputs
    reasons = " | ".join(p["reason"] for p in report.problems)
    for expected in ("missing original", "expected 5 votes", "not an integer", "unreadable", "size mismatch"):
        assert expected in reasons
    assert len(rows) == report.converted
    with pytest.raises(ConversionError, match="Strict mode"):
        convert_official_labels(official_labels, strict=True)


def test_report_is_written(official_labels, tmp_path):
    (official_labels / "original-img" / "4_51_ori.png").unlink()
    _, report = convert_official_labels(official_labels)
    report.write(tmp_path / "out")
    assert "missing original" in (tmp_path / "out" / "conversion_report.md").read_text()


def test_official_training_layout(official_training):
    rows, report = convert_official_training(official_training, strict=True)
    assert report.converted == 5
    by_id = {r["reconstruction_id"]: r for r in rows}
    assert by_id["3/3_72_rec_0_1"]["recognized"] and not by_id["-3/3_72_rec_2_5"]["recognized"]
    assert not by_id["others/4_51_rec_9_7"]["recognized"]
    assert by_id["3/3_72_rec_1_2"]["victim"] == "victim_2"


def test_official_training_missing_original_is_reported(official_training):
    png(official_training / "train_with_ori" / "-9" / "9_10_rec_0_1.png", 9)
    _, report = convert_official_training(official_training)
    assert report.skipped == 1 and "missing original" in report.problems[0]["reason"]
    assert report.inputs == report.converted + report.skipped == 6


def _manifest(tmp_path, lines, header="original,reconstruction,class_label,votes,victim,attack"):
    for i in range(3):
        png(tmp_path / "o" / f"{i}.png", i)
        png(tmp_path / "r" / f"{i}.png", 10 + i)
    path = tmp_path / "m.csv"
    path.write_text(header + "\n" + "\n".join(lines) + "\n")
    return path


def test_manifest_converter_and_its_errors(tmp_path):
    path = _manifest(
        tmp_path,
        [
            "o/0.png,r/0.png,1,1;1;1;-1;2,v1,ig",
            "o/1.png,r/1.png,2,2;-1;-1;-1;-1,v1,ig",
            "o/9.png,r/2.png,2,2;2;2;2;2,v2,dlg",  # missing original
            "o/2.png,r/2.png,2,2;two;2;2;2,v2,dlg",  # non-integer vote
            "o/2.png,r/0.png,2,2;2;2;2;2,v2,dlg",  # duplicate reconstruction id
        ],
    )
    with pytest.raises(ConversionError, match="does not say who annotated"):
        convert_manifest(path)
    rows, report = convert_manifest(path, annotator_kind="model-judge")
    assert [r["recognized"] for r in rows] == [True, False]
    assert report.inputs == 5 and report.skipped == 3
    assert {r["annotator_kind"] for r in rows} == {"model-judge"}


def test_manifest_with_recognized_flags_only(tmp_path):
    path = _manifest(
        tmp_path, ["o/0.png,r/0.png,yes", "o/1.png,r/1.png,0"], header="original,reconstruction,recognized"
    )
    rows, _ = convert_manifest(path, annotator_kind="human")
    assert [r["recognized"] for r in rows] == [True, False]


def _rows(n_orig=20, per=4, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for o in range(n_orig):
        for k in range(per):
            rows.append(
                {
                    "original_id": f"o{o}",
                    "victim": f"v{k % 2}",
                    "attack": "ig" if k < 3 else "dlg",
                    "recognized": bool(rng.integers(0, 2)),
                }
            )
    return rows


def test_splits_never_share_an_original_and_are_deterministic():
    rows = _rows()
    a, _ = split_by_original(rows, seed=3, holdout_victims=["v1"], holdout_attacks=["dlg"])
    b, _ = split_by_original(rows, seed=3, holdout_victims=["v1"], holdout_attacks=["dlg"])
    assert a == b
    owners = {}
    for name, split in a.items():
        for r in split:
            assert owners.setdefault(r["original_id"], name if not name.startswith("test") else "test") == (
                name if not name.startswith("test") else "test"
            )
    assert all(r["victim"] == "v1" for r in a["test_victim"])
    assert not any(r["victim"] == "v1" or r["attack"] == "dlg" for r in a["train"])
    with pytest.raises(ValueError, match="not in the data"):
        split_by_original(rows, holdout_victims=["nope"])


def _tiny_split(recognized):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(buf, format="PNG")
    img = {"bytes": buf.getvalue(), "path": None}
    data = {
        "original": [img] * len(recognized),
        "reconstruction": [img] * len(recognized),
        "original_id": [f"o{i // 2}" for i in range(len(recognized))],
        "recognized": recognized,
        "recognized_share": [float(r) for r in recognized],
    }
    return datasets.Dataset.from_dict(
        data,
        features=datasets.Features(
            {
                "original": datasets.Image(),
                "reconstruction": datasets.Image(),
                "original_id": datasets.Value("string"),
                "recognized": datasets.Value("bool"),
                "recognized_share": datasets.Value("float32"),
            }
        ),
    )


def test_triplets_are_deterministic_and_collate_for_the_model():
    ds = _tiny_split([True, False, True, True, False, False])
    trip = TripletDataset(ds, seed=7)
    assert len(trip) == 3 and trip.stats["originals_without_negative"] == 1
    first = [trip.draw(i) for i in range(len(trip))]
    assert first == [TripletDataset(ds, seed=7).draw(i) for i in range(3)]
    for _oid, pos, neg in first:
        assert ds[pos]["recognized"] and not ds[neg]["recognized"]
    batch = TripletCollator(SemSimConfig(base_width=4))([trip[i] for i in range(3)])
    assert batch["anchor"].shape == (3, 3, 32, 32) and batch["positive_share"].tolist() == [1.0, 1.0, 1.0]
    assert set(batch) == {"anchor", "positive", "negative", "positive_share", "negative_share"}


def test_triplets_need_positives_and_negatives():
    with pytest.raises(ValueError, match="no unrecognised"):
        TripletDataset(_tiny_split([True, True]))
    with pytest.raises(ValueError, match="no recognised"):
        TripletDataset(_tiny_split([False, False]))
    with pytest.raises(ValueError, match="not in the SemSim schema"):
        TripletDataset(datasets.Dataset.from_dict({"x": [1]}))


def test_convert_cli_end_to_end(official_labels, tmp_path):
    from semsim_metric.cli import main

    out = tmp_path / "converted"
    assert (
        main(
            [
                "convert",
                "official-labels",
                str(official_labels),
                "--out",
                str(out),
                "--fractions",
                "0.67,0,0.33",
            ]
        )
        == 0
    )
    assert (out / "conversion_report.json").exists() and (out / "README.md").exists()
    assert sum(len(s) for s in load_annotations(out).values()) == 6
    (official_labels / "original-img" / "3_72_ori.png").unlink()
    assert main(["convert", "official-labels", str(official_labels), "--out", str(tmp_path / "c2")]) == 2
    assert (
        main(
            [
                "convert",
                "official-labels",
                str(official_labels),
                "--out",
                str(tmp_path / "c3"),
                "--lenient",
                "--fractions",
                "0.5,0,0.5",
            ]
        )
        == 0
    )


def test_triplet_collate_matches_the_input_gate():
    from semsim_metric.preprocessing import to_model_input

    cfg = SemSimConfig(base_width=4)
    img = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    batch = TripletCollator(cfg, augment=False)(
        [
            {
                "anchor": img,
                "positive": img,
                "negative": img,
                "positive_share": 1.0,
                "negative_share": 0.0,
                "seeds": (1, 2, 3),
            }
        ]
    )
    expected = to_model_input(
        img[None], data_range=255, image_size=32, mean=cfg.image_mean, std=cfg.image_std
    )
    torch.testing.assert_close(batch["anchor"], expected)


def test_two_folders_with_the_same_name_never_share_a_cache(official_labels, tmp_path):
    """datasets keys a local folder's cache by its name and split layout; the project's loader re-reads."""
    rows, _ = convert_official_labels(official_labels)
    for sub, n in (("a", 2), ("b", 6)):
        write_dataset_folder(
            {"train": rows[:n]}, tmp_path / sub / "data_folder", DatasetCard(title="t", summary="s")
        )
    assert len(load_annotations(tmp_path / "a" / "data_folder", split="train")) == 2
    assert len(load_annotations(tmp_path / "b" / "data_folder", split="train")) == 6
    write_dataset_folder(
        {"train": rows[:3]},
        tmp_path / "a" / "data_folder",
        DatasetCard(title="t", summary="s"),
        overwrite=True,
    )
    assert len(load_annotations(tmp_path / "a" / "data_folder", split="train")) == 3


def test_every_file_of_the_labels_layout_is_accounted_for(official_labels):
    """Upper-case and JPEG suffixes are read; stray and nested files are listed; a BOM label file is read."""
    root = official_labels
    victim = VICTIMS[0]
    Image.open(root / "original-img" / "3_72_ori.png").save(root / "original-img" / "7_11_ori.PNG")
    png(root / "img" / victim / "7_11_rec.PNG", 50)
    (root / "img" / victim / "7_11_gt.txt").write_text("\ufeff11 11 11 -1 -1\n", encoding="utf-8")
    Image.open(root / "original-img" / "4_51_ori.png").save(
        root / "original-img" / "8_12_ori.jpg", quality=95
    )
    Image.open(root / "original-img" / "4_51_ori.png").save(
        root / "img" / victim / "8_12_rec.jpeg", quality=95
    )
    (root / "img" / victim / "8_12_gt.txt").write_text("12 12 12 12 -1\n")
    png(root / "img" / "stray_rec.png", 51)  # directly under img/
    png(root / "img" / victim / "nested" / "3_72_rec.png", 52)  # in a sub-folder
    (root / "notes.txt").write_text("hello")
    files = sum(1 for p in root.rglob("*") if p.is_file())
    rows, report = convert_official_labels(root)
    assert report.files == files
    assert report.files == report.inputs + report.supporting + len(report.ignored)
    ids = {r["reconstruction_id"] for r in rows}
    assert {f"{victim}/7_11", f"{victim}/8_12"} <= ids
    bom_row = next(r for r in rows if r["reconstruction_id"] == f"{victim}/7_11")
    assert bom_row["votes"] == [11, 11, 11, -1, -1] and bom_row["recognized"]
    ignored = {i["item"]: i["reason"] for i in report.ignored}
    assert "directly under img/" in ignored["img/stray_rec.png"]
    assert "sub-folder" in ignored[f"img/{victim}/nested/3_72_rec.png"]
    assert "not part of the layout" in ignored["notes.txt"]
    assert len(report.ignored) == 3 and "3 ignored" in report.summary()


def test_every_file_of_the_training_layout_is_accounted_for(official_training):
    root = official_training / "train_with_ori"
    Image.open(root / "3" / "3_72_rec_0_1.png").save(root / "3" / "3_72_rec_4_6.jpg", quality=95)
    png(root / "3" / "3_72_rec_5_8.PNG", 20)
    png(root / "-3" / "3_72_ori.png", 21)  # an original where none belongs
    png(root / "3" / "deeper" / "3_72_rec_6_9.png", 22)
    (root / "README.txt").write_text("x")
    files = sum(1 for p in root.rglob("*") if p.is_file())
    rows, report = convert_official_training(official_training)
    assert report.files == files == report.inputs + report.supporting + len(report.ignored)
    assert {"3/3_72_rec_4_6", "3/3_72_rec_5_8"} <= {r["reconstruction_id"] for r in rows}
    ignored = {i["item"]: i["reason"] for i in report.ignored}
    assert set(ignored) == {"-3/3_72_ori.png", "3/deeper/3_72_rec_6_9.png", "README.txt"}


@pytest.mark.parametrize("layout", ["official-labels", "official-training"])
def test_convert_says_a_missing_path_does_not_exist(tmp_path, capsys, layout):
    from semsim_metric.cli import main

    assert main(["convert", layout, str(tmp_path / "nope"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "layout" not in err.split("does not exist")[0]


def test_convert_warns_when_a_split_ends_up_empty(tmp_path, capsys):
    from PIL import Image

    from semsim_metric.cli import main

    lines = ["original,reconstruction,recognized"]
    for i in range(3):
        Image.new("L", (8, 8), 10 * i).save(tmp_path / f"o{i}.png")
        Image.new("L", (8, 8), 10 * i + 5).save(tmp_path / f"r{i}.png")
        lines.append(f"o{i}.png,r{i}.png,{'true' if i % 2 else 'false'}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    assert (
        main(
            [
                "convert",
                "manifest",
                str(tmp_path / "m.csv"),
                "--out",
                str(tmp_path / "ds"),
                "--annotator-kind",
                "human",
            ]
        )
        == 0
    )
    assert "split(s) empty" in capsys.readouterr().err


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
