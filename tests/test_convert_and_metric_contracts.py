"""Contracts of the converters (official labels layout, manifests, the shared row finishing) and of the
``SemSim`` metric / ``SemSimLoss`` module that callers observe: what the reports say, which columns rows get,
how the domain check is switched, how ``reduction="none"`` gathers scores across processes, and which modules a
non-recursive cast reaches."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from semsim_metric import SemSim, SemSimConfig, SemSimLoss, SemSimModel
from semsim_metric.data import ConversionError, RecognitionRule, convert_manifest, convert_official_labels
from semsim_metric.data.convert.rows import finish_row
from semsim_metric.domain import OutOfDomainWarning, summarise_domain
from semsim_metric.preprocessing import to_model_input
from tests.helpers import VICTIMS, png

# --------------------------------------------------------------------------------------------- official labels


def _labels_layout(root: Path, victims: list[str] = VICTIMS[:1]) -> Path:
    """The labels layout: original 3_72 and, per victim, its reconstruction with 5 votes."""
    png(root / "original-img" / "3_72_ori.png", 0)
    for v, victim in enumerate(victims):
        png(root / "img" / victim / "3_72_rec.png", 10 + v)
        (root / "img" / victim / "3_72_gt.txt").write_text("72 72 72 -1 -1\n")
    return root


def test_a_linked_original_img_folder_is_refused_with_the_folder_named_in_the_advice(tmp_path):
    root = _labels_layout(tmp_path / "labels")
    (root / "original-img").rename(tmp_path / "real-originals")
    (root / "original-img").symlink_to(tmp_path / "real-originals", target_is_directory=True)
    with pytest.raises(ConversionError, match="Replace the link with the original-img folder itself"):
        convert_official_labels(root)


def test_a_victim_folder_with_an_unusual_name_is_converted_and_noted(tmp_path):
    root = _labels_layout(tmp_path / "labels", victims=["my_victim"])
    rows, report = convert_official_labels(root)
    assert [r["reconstruction_id"] for r in rows] == ["my_victim/3_72"]
    assert rows[0]["victim"] == "my_victim" and rows[0]["victim_arch"] == ""
    assert len(report.notes) == 1
    note = report.notes[0]
    assert isinstance(note, str)
    assert note.startswith("victim folder name 'my_victim' does not follow the official pattern")
    assert note.endswith(" Structured victim columns left empty.")


def test_a_second_file_with_the_same_reconstruction_id_is_a_problem_named_by_its_path(tmp_path):
    victim = VICTIMS[0]
    root = _labels_layout(tmp_path / "labels")
    png(root / "img" / victim / "3_72_rec.PNG", 20)  # the same <idx>_<class>, another suffix
    rows, report = convert_official_labels(root)
    # files are taken in sorted order: the upper-case suffix first
    assert [r["reconstruction"]["path"] for r in rows] == ["3_72_rec.PNG"]
    assert report.problems == [
        {"item": f"img/{victim}/3_72_rec.png", "reason": f"duplicate reconstruction id {victim}/3_72"}
    ]
    with pytest.raises(ConversionError, match=re.escape(f"img/{victim}/3_72_rec.png: duplicate")):
        convert_official_labels(root, strict=True)


def test_unused_files_in_original_img_are_listed_with_the_right_reason(tmp_path):
    root = _labels_layout(tmp_path / "labels")
    png(root / "original-img" / "9_5_ori.png", 1)  # well named, but no reconstruction refers to it
    png(root / "original-img" / "holiday.png", 2)  # not an original's name
    rows, report = convert_official_labels(root)
    assert len(rows) == 1
    assert {i["item"]: i["reason"] for i in report.ignored} == {
        "original-img/9_5_ori.png": "original that no reconstruction refers to",
        "original-img/holiday.png": "unexpected name in original-img/ (expected <idx>_<class>_ori.<ext>)",
    }


# ------------------------------------------------------------------------------------------------ finish_row


def test_recognized_share_uses_the_original_consensus_like_recognized():
    row = {"votes": [4, 4, 4, 3, -1], "class_label": 3, "original_votes": [4, 4, 4, 2, -1]}
    finish_row(row, RecognitionRule(3, reference="original_consensus"))
    # the annotators read the original as class 4: three of five votes name it
    assert row["recognized"] is True
    assert row["recognized_share"] == pytest.approx(0.6)


# -------------------------------------------------------------------------------------------------- manifests


def _images(folder: Path) -> None:
    for i in range(2):
        png(folder / "o" / f"{i}.png", i)
        png(folder / "r" / f"{i}.png", 10 + i)


def test_source_dataset_fills_only_lines_that_do_not_name_one(tmp_path):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text(
        "original,reconstruction,class_label,votes,source_dataset\n"
        "o/0.png,r/0.png,1,1;1;1;-1;2,\n"
        "o/1.png,r/1.png,2,2;2;2;2;2,fmnist\n"
    )
    rows, _ = convert_manifest(path, annotator_kind="human", source_dataset="cifar100")
    assert [r["source_dataset"] for r in rows] == ["cifar100", "fmnist"]


def test_source_dataset_argument_fills_a_manifest_without_the_column(tmp_path):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text("original,reconstruction,recognized\no/0.png,r/0.png,yes\n")
    rows, _ = convert_manifest(path, annotator_kind="human", source_dataset="cifar100")
    assert rows[0]["source_dataset"] == "cifar100"
    rows, _ = convert_manifest(path, annotator_kind="human")
    assert rows[0]["source_dataset"] == ""


def test_the_manifest_report_names_its_converter(tmp_path):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text("original,reconstruction,recognized\no/0.png,r/0.png,yes\no/9.png,r/1.png,no\n")
    _, report = convert_manifest(path, annotator_kind="human")
    assert report.converter == "manifest" and report.to_dict()["converter"] == "manifest"
    with pytest.raises(ConversionError, match=r"^manifest: m\.csv:3: "):
        convert_manifest(path, annotator_kind="human", strict=True)


def test_a_manifest_saved_with_a_byte_order_mark_is_read(tmp_path):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text("original,reconstruction,recognized\no/0.png,r/0.png,yes\n", encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    rows, report = convert_manifest(path, annotator_kind="human")
    assert [r["recognized"] for r in rows] == [True] and report.converted == 1


def test_unknown_columns_are_noted_with_a_count_of_the_unusual_ones(tmp_path):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text("original,reconstruction,recognized,comment,9lives\no/0.png,r/0.png,yes,x,y\n")
    _, report = convert_manifest(path, annotator_kind="human")
    assert report.notes == [
        "2 column(s) not in the schema, not converted: 'comment' and 1 unnamed or unusual one(s)"
    ]


def test_unknown_columns_that_all_look_like_names_are_listed_without_a_count(tmp_path):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text("original,reconstruction,recognized,comment\no/0.png,r/0.png,yes,x\n")
    _, report = convert_manifest(path, annotator_kind="human")
    assert report.notes == ["1 column(s) not in the schema, not converted: 'comment'"]


def test_converting_a_manifest_draws_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    _images(tmp_path)
    path = tmp_path / "m.csv"
    path.write_text("original,reconstruction,recognized\no/0.png,r/0.png,yes\no/1.png,r/1.png,no\n")
    capsys.readouterr()
    rows, _ = convert_manifest(path, annotator_kind="human")
    assert len(rows) == 2
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------------------------------ SemSim / the loss


def _model_with_bar_domain() -> SemSimModel:
    """A tiny model whose training domain is dark greyscale 28x28 images with a bright bar."""
    torch.manual_seed(0)
    model = SemSimModel(SemSimConfig(base_width=4)).eval()
    cfg = model.config
    originals = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)
    for i in range(16):
        originals[i, 0, 4 + i : 8 + i, 4:24] = 255
    with torch.no_grad():
        emb = model.embed(
            to_model_input(originals, data_range=255, image_size=32, mean=cfg.image_mean, std=cfg.image_std)
        )
    cfg.training_domain = summarise_domain(list(originals), emb, description="bar images")
    return model


@pytest.fixture
def fresh_domain_warnings(monkeypatch):
    """Forget which models have warned (the record is by the config's id, which Python may reuse)."""
    import semsim_metric.domain as domain

    monkeypatch.setattr(domain, "_WARNED", set())


def test_the_metric_warns_about_originals_outside_the_training_domain_by_default(fresh_domain_warnings):
    metric = SemSim(_model_with_bar_domain())
    x = torch.rand(2, 3, 40, 40)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        metric.update(x, x)
    problems = [str(w.message) for w in record if issubclass(w.category, OutOfDomainWarning)]
    assert any("colour" in m for m in problems)


def test_the_metric_with_check_domain_false_never_warns_about_the_domain(fresh_domain_warnings):
    metric = SemSim(_model_with_bar_domain(), check_domain=False)
    x = torch.rand(2, 3, 40, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        metric.update(x, x)
        metric(x, x)
    assert metric.check_domain is False


def test_reduction_none_gathers_every_process_scores_in_rank_order(random_model):
    """Across processes, ``reduction="none"`` gives the first process's scores (all its batches, in order),
    then the next process's."""

    def two_processes(t, group=None):  # this process's states, and a second process holding zeros
        return [t, torch.zeros_like(t)]

    metric = SemSim(
        random_model,
        reduction="none",
        check_domain=False,
        dist_sync_fn=two_processes,
        distributed_available_fn=lambda: True,
    )
    g = torch.Generator().manual_seed(3)
    batches = [
        (torch.rand(2, 1, 28, 28, generator=g), torch.rand(2, 1, 28, 28, generator=g)) for _ in range(2)
    ]
    local = []
    for preds, target in batches:
        metric.update(preds, target)
        local.append(SemSim(random_model, reduction="none", check_domain=False)(preds, target))
    local_scores = torch.cat(local)
    assert bool((local_scores > 0).all())
    gathered = metric.compute()
    torch.testing.assert_close(gathered, torch.cat([local_scores, torch.zeros(4)]))


def test_a_non_recursive_cast_of_the_loss_leaves_its_child_modules_alone(random_model):
    """``to_empty(recurse=False)`` reaches the module's own tensors only, as on any ``nn.Module``: neither the
    network nor a child module the caller attached gets new storage."""
    loss_fn = SemSimLoss(random_model, check_domain=False)
    loss_fn.head = nn.Linear(2, 2)
    before = loss_fn.head.weight.detach().clone()
    head_ptr = loss_fn.head.weight.data_ptr()
    net_ptr = next(loss_fn.model.parameters()).data_ptr()
    loss_fn.to_empty(device="cpu", recurse=False)
    assert loss_fn.head.weight.data_ptr() == head_ptr
    torch.testing.assert_close(loss_fn.head.weight.detach(), before)
    assert next(loss_fn.model.parameters()).data_ptr() == net_ptr
    loss_fn.to_empty(device="cpu")  # recursive: both get new storage
    assert loss_fn.head.weight.data_ptr() != head_ptr
    assert next(loss_fn.model.parameters()).data_ptr() != net_ptr
