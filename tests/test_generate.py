"""Data generation: sources, victims, batched attacks (== one at a time), resumable shards, votes import."""

import csv
import gzip
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from semsim_metric import load_annotations
from semsim_metric.data import ConversionError
from semsim_metric.data.sources import load_fashion_mnist
from semsim_metric.data.votes import import_votes
from semsim_metric.generate.attacks import (
    AttackConfig,
    attack_names,
    attack_preset,
    run_attack,
    run_attack_one_at_a_time,
)
from semsim_metric.generate.pipeline import GenerationPlan, generate, parse_victim_spec
from semsim_metric.generate.victims import VictimSpec, build_victim, train_victim
from tests.helpers import ROOT


def _idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="module")
def fmnist_root(tmp_path_factory):
    """A miniature Fashion-MNIST in the Debian package's IDX layout (random pixels, 10 classes)."""
    root = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 40)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28)) + labels[:, None, None] * 19  # class-dependent brightness
        _idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        _idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


def test_idx_source(fmnist_root):
    test = load_fashion_mnist("test", fmnist_root)
    assert test.images.shape == (40, 1, 28, 28) and test.images.dtype == torch.uint8
    assert test.ids[3] == "fmnist-test-00003" and test.class_names[9] == "Ankle boot"
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_fashion_mnist("test", fmnist_root / "nothing")


@pytest.mark.parametrize("arch", ["lenet_sigmoid", "conv_relu", "resnet20"])
def test_victims_classify_any_size(arch):
    for c, size in ((1, 28), (3, 32)):
        model = build_victim(VictimSpec(arch), c, 10, size)
        assert model(torch.rand(2, c, size, size)).shape == (2, 10)


def test_victim_training_is_reproducible_and_defences_run(fmnist_root):
    train = load_fashion_mnist("train", fmnist_root)
    test = load_fashion_mnist("test", fmnist_root)
    spec = VictimSpec("conv_relu", 2, augmentation="crop_flip", defense="prune:70", width=4, train_images=300)
    a, meta = train_victim(spec, train, test)
    b, _ = train_victim(spec, train, test)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert 0 <= meta["test_accuracy"] <= 1 and meta["steps"] == 6
    train_victim(
        VictimSpec(
            "lenet_sigmoid", 1, augmentation="policy:rotate+contrast", defense="noise:1e-3", train_images=128
        ),
        train,
        test,
    )


def test_victim_spec_parsing():
    spec = parse_victim_spec("resnet20-4:3:crop_flip:prune=70")
    assert (spec.arch, spec.width, spec.epochs, spec.augmentation, spec.defense) == (
        "resnet20",
        4,
        3,
        "crop_flip",
        "prune:70",
    )
    assert spec.name == "resnet20-4_e3_crop_flip_prune-70"
    with pytest.raises(ValueError):
        parse_victim_spec("lenet")


@pytest.mark.parametrize("name", attack_names())
def test_batched_attack_equals_one_at_a_time(name):
    torch.manual_seed(0)
    victim = build_victim(VictimSpec("conv_relu", width=4), 1, 10, 28).eval()
    x = torch.rand(3, 1, 28, 28)
    y = torch.tensor([1, 5, 7])
    cfg = attack_preset(name, "quick", iterations=12)
    batched = run_attack(victim, x, y, cfg)
    single = run_attack_one_at_a_time(victim, x, y, cfg)
    torch.testing.assert_close(batched["reconstructions"], single["reconstructions"], atol=5e-4, rtol=0)
    assert batched["reconstructions"].min() >= 0 and batched["reconstructions"].max() <= 1


def test_idlg_recovers_the_label_and_ig_gets_closer():
    torch.manual_seed(0)
    victim = build_victim(VictimSpec("lenet_sigmoid"), 1, 10, 28).eval()
    x = torch.rand(4, 1, 28, 28)
    y = torch.tensor([0, 3, 6, 9])
    assert (
        run_attack(victim, x, y, attack_preset("idlg", "quick", iterations=1))["labels"].tolist()
        == y.tolist()
    )
    short = run_attack(victim, x, y, AttackConfig("inverting_gradients", 5))
    long = run_attack(victim, x, y, AttackConfig("inverting_gradients", 60))
    assert long["final_loss"].mean() < short["final_loss"].mean()


def test_attack_presets():
    assert attack_preset("inverting_gradients").iterations == 8000
    assert attack_preset("inverting_gradients", "quick").iterations == 200
    with pytest.raises(ValueError):
        AttackConfig("fgsm")


@pytest.mark.slow
def test_generate_resume_and_import_votes(fmnist_root, tmp_path):
    plan = GenerationPlan(
        num_originals=6,
        original_pool=40,
        shard_size=3,
        victims=[VictimSpec("lenet_sigmoid", 0), VictimSpec("conv_relu", 1, width=4, train_images=64)],
        attacks=[AttackConfig("inverting_gradients", 8)],
    )
    out = tmp_path / "gen"
    # a first run that is "killed" after some shards: emulate by generating without merging, then deleting one shard
    generate(plan, out, source_root=str(fmnist_root), progress=False, merge=False)
    shards = sorted((out / "shards").glob("*.parquet"))
    assert len(shards) == 4
    reference = {s.name: s.read_bytes() for s in shards}
    shards[-1].unlink()
    generate(plan, out, source_root=str(fmnist_root), progress=False)
    assert {s.name: s.read_bytes() for s in sorted((out / "shards").glob("*.parquet"))} == reference
    dsd = load_annotations(out)
    rows = [r for split in dsd.values() for r in split]
    assert (
        len(rows) == 12
        and {r["annotator_kind"] for r in rows} == {"none"}
        and all(r["votes"] == [] for r in rows)
    )
    assert len({r["original_id"] for r in rows}) == 6
    with pytest.raises(ValueError, match="different generation plan"):
        generate(
            GenerationPlan(num_originals=5, original_pool=40),
            out,
            source_root=str(fmnist_root),
            progress=False,
        )
    votes = tmp_path / "votes.csv"
    ids = [r["reconstruction_id"] for r in rows]
    with votes.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["reconstruction_id", "votes", "annotator_kind"])
        for r in rows[:8]:
            w.writerow(
                [r["reconstruction_id"], ";".join([str(r["class_label"])] * 3 + ["-1", "-1"]), "human"]
            )
        w.writerow(["nope", "1;1;1;1;1", "human"])
        w.writerow([ids[9], "1;x", "human"])
    with pytest.raises(ConversionError):
        import_votes(out, votes, tmp_path / "voted", strict=True)
    report = import_votes(out, votes, tmp_path / "voted2")
    assert (report.inputs, report.converted, report.skipped) == (10, 8, 2)
    voted = [r for split in load_annotations(tmp_path / "voted2").values() for r in split]
    assert (
        sum(r["annotator_kind"] == "human" for r in voted) == 8 and sum(r["recognized"] for r in voted) == 8
    )


def test_datasets_and_folder_sources(tmp_path):
    import datasets
    from PIL import Image

    from semsim_metric.data.sources import load_hf_dataset, load_image_folder

    rng = np.random.default_rng(1)
    imgs = [Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)) for _ in range(6)]
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    )
    ds = datasets.Dataset.from_dict({"image": imgs, "label": [0, 1, 2, 0, 1, 2]}, features=features)
    ds.to_parquet(str(tmp_path / "hf" / "data" / "test-00000-of-00001.parquet"))
    src = load_hf_dataset(str(tmp_path / "hf"), "test")
    assert (
        src.images.shape == (6, 1, 28, 28)
        and src.class_names == ["a", "b", "c"]
        and src.labels.tolist()[:3] == [0, 1, 2]
    )
    with pytest.raises(ValueError, match="no column 'fine_label'"):
        load_hf_dataset(str(tmp_path / "hf"), "test", label_column="fine_label")
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            (tmp_path / "folder" / split / cls).mkdir(parents=True)
            for i in range(2):
                imgs[i].save(tmp_path / "folder" / split / cls / f"{i}.png")
    folder = load_image_folder(tmp_path / "folder")
    assert folder.class_names == ["cat", "dog"] and folder.labels.tolist() == [0, 0, 1, 1]


@pytest.mark.slow
def test_ranks_split_the_shards_and_merge_gives_one_dataset(fmnist_root, tmp_path, monkeypatch):
    """What torchrun does: each rank (RANK/WORLD_SIZE) generates its shards; a final merge writes the dataset."""
    from semsim_metric.generate.pipeline import merge_shards

    plan = GenerationPlan(
        num_originals=4,
        original_pool=40,
        shard_size=2,
        victims=[VictimSpec("lenet_sigmoid", 0)],
        attacks=[AttackConfig("inverting_gradients", 4), AttackConfig("idlg", 4)],
    )
    out = tmp_path / "ddp"
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        assert (
            generate(plan, out, source_root=str(fmnist_root), progress=False) is None
        )  # only a merge writes the dataset
    assert len(list((out / "shards").glob("*.parquet"))) == 4
    merge_shards(out)
    rows = [r for split in load_annotations(out).values() for r in split]
    assert len(rows) == 8 and {r["attack"] for r in rows} == {"inverting_gradients", "idlg"}


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"augmentation": "policy:spin"}, "unknown augmentation op 'spin'"),
        ({"defense": "prune:300"}, "prune:<percent 0-100>"),
        ({"defense": "blur:2"}, "use none, prune"),
        ({"arch": "vgg"}, "unknown victim architecture"),
    ],
)
def test_victim_specs_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VictimSpec(**kwargs)


# ------------------------------------------------------------------ folder sources: train/ and test/ splits
def _write_folder(root, splits):
    """Write ``{split: {class: [uint8 HxW array, ...]}}`` as ``root/<split>/<class>/<i>.png``."""
    from PIL import Image

    for split, classes in splits.items():
        for cls, arrays in classes.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i, arr in enumerate(arrays):
                Image.fromarray(arr).save(root / split / cls / f"{i}.png")
    return root


def _pixels(rng, n, size=12):
    return [rng.integers(0, 256, (size, size), dtype=np.uint8) for _ in range(n)]


def test_folder_source_without_train_and_test_splits_is_refused_with_the_expected_layout(tmp_path, capsys):
    from semsim_metric.cli import main
    from semsim_metric.data.sources import load_image_folder
    from semsim_metric.errors import SemSimError

    rng = np.random.default_rng(0)
    flat = tmp_path / "flat"  # the old layout: class sub-folders directly under the folder
    for cls in ("cat", "dog"):
        _write_folder(flat, {".": {cls: _pixels(rng, 2)}})
    for split in ("train", "test"):
        with pytest.raises(SemSimError) as info:
            load_image_folder(flat, split)
        assert isinstance(info.value, ValueError)
        message = str(info.value)
        assert f"{flat}/train/<class>/*.png" in message and f"{flat}/test/<class>/*.png" in message
        assert "found cat, dog" in message
    only_train = _write_folder(tmp_path / "only_train", {"train": {"cat": _pixels(rng, 2)}})
    with pytest.raises(SemSimError, match=r"missing test/"):
        load_image_folder(only_train, "train")

    out = tmp_path / "gen"
    assert main(["generate", "--source", str(flat), "--out", str(out), "--num-originals", "1"]) == 2
    err = capsys.readouterr().err
    errors = [
        ln for ln in err.splitlines() if not ln.startswith("semsim: ")
    ]  # "semsim: ..." lines are progress
    assert len(errors) == 1 and errors[0].startswith("semsim generate: error: ")
    assert f"{flat}/train/<class>/*.png" in err and f"{flat}/test/<class>/*.png" in err
    assert not out.exists()  # refused before anything is written


def test_folder_source_with_different_classes_in_train_and_test_is_refused_naming_the_difference(tmp_path):
    from semsim_metric.data.sources import load_image_folder
    from semsim_metric.errors import SemSimError

    rng = np.random.default_rng(0)
    root = _write_folder(
        tmp_path / "src",
        {
            "train": {"cat": _pixels(rng, 2), "dog": _pixels(rng, 2)},
            "test": {"cat": _pixels(rng, 2), "bird": _pixels(rng, 2)},
        },
    )
    for split in ("train", "test"):
        with pytest.raises(SemSimError, match=r"only in train/: dog; only in test/: bird"):
            load_image_folder(root, split)


def test_folder_source_train_and_test_splits_are_different_images_with_distinct_ids(tmp_path):
    from semsim_metric.data.sources import load_image_folder

    rng = np.random.default_rng(0)
    written = {
        "train": {"cat": _pixels(rng, 3), "dog": _pixels(rng, 3)},
        "test": {"cat": _pixels(rng, 2), "dog": _pixels(rng, 2)},
    }  # same file names (0.png, 1.png) in both
    root = _write_folder(tmp_path / "pets", written)
    train, test = load_image_folder(root, "train"), load_image_folder(root, "test")
    assert (train.split, test.split) == ("train", "test") and train.class_names == test.class_names == [
        "cat",
        "dog",
    ]
    assert len(train) == 6 and len(test) == 4
    assert train.ids[0] == "pets-train-cat-0" and test.ids[0] == "pets-test-cat-0"
    assert not set(train.ids) & set(test.ids)
    for source, split in ((train, "train"), (test, "test")):
        expected = [a for cls in ("cat", "dog") for a in written[split][cls]]
        assert all(np.array_equal(source.images[i, 0].numpy(), a) for i, a in enumerate(expected))
    assert not any(torch.equal(a, b) for a in train.images for b in test.images)


def test_victims_never_train_on_an_attacked_original_even_when_train_holds_a_copy(tmp_path, monkeypatch):
    """A test image that also sits in train/ is attacked, but removed from the victims' training images first."""
    import json

    from semsim_metric.generate import pipeline

    rng = np.random.default_rng(0)
    train_imgs = {cls: _pixels(rng, 4) for cls in ("a", "b", "c")}
    test_imgs = {cls: _pixels(rng, 2) for cls in ("a", "b", "c")}
    leaked = train_imgs["b"][1]
    test_imgs["b"].append(leaked.copy())  # an exact copy of a train image among the test images
    root = _write_folder(tmp_path / "src", {"train": train_imgs, "test": test_imgs})

    seen = []

    def capture(spec, train, test, folder, progress=False):
        seen.append(train)
        return load_or_train_victim(spec, train, test, folder, progress=progress)

    from semsim_metric.generate.victims import load_or_train_victim

    monkeypatch.setattr(pipeline, "load_or_train_victim", capture)
    plan = GenerationPlan(
        source=str(root),
        num_originals=7,
        original_pool=7,
        shard_size=4,
        victims=[VictimSpec("lenet_sigmoid", 1, train_images=64)],
        attacks=[AttackConfig("inverting_gradients", 2)],
    )
    out = tmp_path / "gen"
    generate(plan, out, progress=False)

    rows = [r for split in load_annotations(out).values() for r in split]
    attacked = [np.asarray(r["original"]) for r in rows]
    assert len(attacked) == 7 and any(np.array_equal(a, leaked) for a in attacked)  # the copy was attacked
    victim_images = [img[0].numpy() for img in seen[0].images]
    assert not any(np.array_equal(v, a) for v in victim_images for a in attacked)
    assert len(seen) == 1 and len(seen[0]) == 12 - 1  # only the copy was removed
    meta = json.loads((out / "victims" / f"{plan.victims[0].name}.json").read_text())
    assert meta["excluded_as_originals"] == 1
    assert (
        "1 train-split image(s) byte-identical to an attacked original were removed"
        in (out / "README.md").read_text()
    )

    # resumed (a shard lost): the checkpoint is reused, its recorded count kept
    max((out / "shards").glob("*.parquet")).unlink()
    generate(plan, out, progress=False)
    assert len(seen) == 2 and len(seen[1]) == 11
    assert (
        json.loads((out / "victims" / f"{plan.victims[0].name}.json").read_text())["excluded_as_originals"]
        == 1
    )


@pytest.mark.parametrize(
    "spec",
    [
        "conv_relu:4:none:noise=nan",
        "conv_relu:4:none:noise=inf",
        "conv_relu:4:bogus",
        "conv_relu:4:none:prune=101",
        "conv_relu:4:none:blur=1",
    ],
)
def test_bogus_victim_specs_are_refused(spec):
    from semsim_metric.generate.pipeline import parse_victim_spec

    with pytest.raises(ValueError):
        parse_victim_spec(spec)


def _args(out: Path, source_root: Path) -> list[str]:
    return [
        "--out",
        str(out),
        "--source-root",
        str(source_root),
        "--num-originals",
        "6",
        "--shard-size",
        "3",
        "--victim",
        "conv_relu:1",
        "--train-images",
        "64",
        "--attack",
        "inverting_gradients",
        "--iterations",
        "6",
        "--seed",
        "3",
    ]


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}",
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
    }


def _run(out: Path, source_root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "semsim_metric.cli", "generate", *_args(out, source_root)],
        check=True,
        env=_env(),
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )


def _kill_at(point: str, out: Path, source_root: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.kill_points", point, "--", *_args(out, source_root)],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "KILL-POINT" in line:
                break
        else:
            pytest.fail(f"generation finished without reaching the kill point {point!r}")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _content(folder: Path) -> dict[str, list]:
    from semsim_metric import load_annotations
    from semsim_metric.data.loading import undecoded

    out = {}
    for split, ds in undecoded(load_annotations(folder)).items():
        out[split] = sorted(
            (r["reconstruction_id"], r["original"]["bytes"], r["reconstruction"]["bytes"], r["seed"])
            for r in ds
        )
    return out


@pytest.mark.slow
def test_generate_survives_sigkill_at_every_stage(fmnist_root, tmp_path):
    from semsim_metric.errors import IncompleteOutputError

    reference = tmp_path / "reference"
    _run(reference, fmnist_root)
    expected = _content(reference)
    assert sum(len(v) for v in expected.values()) == 6
    for point in ("victim", "shard", "merge"):
        out = tmp_path / point
        _kill_at(point, out, fmnist_root)
        if point == "merge":
            from semsim_metric import load_annotations

            with pytest.raises(IncompleteOutputError):
                load_annotations(out)
        _run(out, fmnist_root)
        got = _content(out)
        assert got == expected, point
        ids = [r[0] for rows in got.values() for r in rows]
        assert len(ids) == len(set(ids)) == 6, point
        assert (out / "README.md").read_text() == (reference / "README.md").read_text(), point
