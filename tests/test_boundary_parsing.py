"""Mini-languages of the command line are parsed once, at the boundary (docs/architecture.md, "Parsing happens at
the boundary"): library functions take typed values, and the old string forms go through one public parser each,
whose errors name the fix."""

from __future__ import annotations

import re

import numpy as np
import pytest

from semsim_metric.errors import InvalidInputError, InvalidInputTypeError, SemSimError


# ------------------------------------------------------------------------------------------- group_by columns
def test_group_by_is_a_sequence_of_columns_in_the_library():
    from semsim_metric.evaluation.protocol import evaluate_table, group_keys

    table = {"victim": ["a", "a", "b", "b"], "attack": ["dlg", "ig", "dlg", "ig"]}
    groups = group_keys(table, ("victim", "attack"))
    assert groups.tolist() == ["a/dlg", "a/ig", "b/dlg", "b/ig"]
    y = np.array([1, 0, 1, 0], dtype=bool)
    rep = evaluate_table(
        {"PSNR": np.array([3.0, 1, 4, 2])}, y, groups, group_by=["victim", "attack"], n_boot=0
    )
    assert rep.group_by == ("victim", "attack")
    assert rep.to_dict()["group_by"] == "victim,attack"  # report.json keeps its form


def test_group_by_string_goes_through_the_one_parser():
    from semsim_metric.evaluation.protocol import group_keys, parse_group_by

    assert parse_group_by(" victim , attack ") == ("victim", "attack")
    table = {"victim": ["a"], "attack": ["dlg"]}
    assert group_keys(table, "victim,attack").tolist() == group_keys(table, ("victim", "attack")).tolist()


@pytest.mark.parametrize("bad", ["victim,,attack", "", ","])
def test_a_malformed_group_by_string_names_the_fix(bad):
    from semsim_metric.evaluation.protocol import parse_group_by

    with pytest.raises(InvalidInputError, match="separated by commas, e.g. 'victim,attack'") as info:
        parse_group_by(bad)
    assert isinstance(info.value, SemSimError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [("victim,attack",), (), ("",)])
def test_a_sequence_with_a_comma_or_empty_name_is_refused(bad):
    from semsim_metric.evaluation.protocol import group_columns

    with pytest.raises(InvalidInputError, match="one per item"):
        group_columns(bad)


def test_a_group_by_of_another_type_is_a_type_error():
    from semsim_metric.evaluation.protocol import group_columns

    with pytest.raises(InvalidInputTypeError, match="sequence of column names"):
        group_columns(3)  # type: ignore[arg-type]


def _table(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text(
        "psnr,n_correct,victim,attack,ok\n"
        + "".join(
            f"{p},{n},{v},{a},{int(n >= 3)}\n"
            for p, n, v, a in [
                (30, 5, "a", "dlg"),
                (10, 0, "a", "ig"),
                (28, 4, "b", "dlg"),
                (12, 1, "b", "ig"),
                (25, 3, "c", "dlg"),
                (11, 2, "c", "ig"),
            ]
        )
    )
    return table


def test_cli_table_groups_by_several_columns(tmp_path, capsys):
    import json

    from semsim_metric.cli import main

    out = tmp_path / "out"
    argv = [
        "evaluate",
        "--table",
        str(_table(tmp_path)),
        "--metric",
        "psnr:higher",
        "--group-by",
        "victim,attack",
    ]
    assert main([*argv, "--bootstrap", "0", "--out", str(out)]) == 0
    (part,) = json.loads((out / "report.json").read_text())
    assert "by `victim,attack`" in (out / "report.md").read_text()
    assert part["group_by"] == "victim,attack" and len(part["per_group"]) == 6


def test_cli_refuses_an_empty_group_by_column(tmp_path, capsys):
    from semsim_metric.cli import main

    argv = ["evaluate", "--table", str(_table(tmp_path)), "--metric", "psnr:higher", "--group-by", "victim,"]
    assert main(argv) == 2
    assert "--group-by" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ victim specs
def test_victim_spec_parse_is_the_one_parser_and_the_old_name_delegates():
    from semsim_metric.generate.pipeline import parse_victim_spec
    from semsim_metric.generate.victims import VictimSpec

    spec = VictimSpec.parse("resnet20-4:3:policy=rotate+contrast:noise=1e-3", seed=2, train_images=50)
    assert spec == VictimSpec(
        "resnet20", 3, "policy:rotate+contrast", "noise:1e-3", width=4, train_images=50, seed=2
    )
    assert parse_victim_spec("conv_relu:4") == VictimSpec.parse("conv_relu:4") == VictimSpec("conv_relu", 4)


@pytest.mark.parametrize(
    "bad, fix",
    [
        ("lenet_sigmoid", "write arch[-width]:epochs"),
        ("conv_relu:four", "whole numbers"),
        ("resnet20-x:2", "whole numbers"),
        ("conv_relu:4:none:blur=1", "use none, prune:<percent 0-100> or noise:<sigma >= 0>"),
    ],
)
def test_a_malformed_victim_string_names_the_fix(bad, fix):
    from semsim_metric.generate.victims import VictimSpec

    with pytest.raises(InvalidInputError, match=re.escape(fix)) as info:
        VictimSpec.parse(bad)
    assert isinstance(info.value, SemSimError) and isinstance(info.value, ValueError)


def test_a_defense_is_typed_and_parsed_once():
    from semsim_metric.generate.victims import Defense, VictimSpec

    assert Defense.parse("prune:70") == Defense("prune", 70.0)
    assert Defense.parse("none") == Defense()
    spec = VictimSpec("conv_relu", 1, defense=Defense("noise", 0.001))  # type: ignore[arg-type]
    assert spec.defense == "noise:0.001" and spec.defense_setting == Defense("noise", 0.001)
    for kind, amount in [("prune", 101), ("noise", float("nan")), ("blur", 1), ("noise", -1)]:
        with pytest.raises(InvalidInputError, match="use none, prune"):
            Defense(kind, amount)  # type: ignore[arg-type]


def test_a_generation_plan_takes_victim_specs_or_their_strings():
    from semsim_metric.generate.pipeline import GenerationPlan
    from semsim_metric.generate.victims import VictimSpec

    plan = GenerationPlan(victims=["conv_relu:2", VictimSpec("lenet_sigmoid", 1)], seed=3)  # type: ignore[list-item]
    assert plan.victims == [VictimSpec("conv_relu", 2, seed=3), VictimSpec("lenet_sigmoid", 1)]
    with pytest.raises(InvalidInputError, match="write arch"):
        GenerationPlan(victims=["conv_relu"])  # type: ignore[list-item]
    with pytest.raises(InvalidInputTypeError, match="give a VictimSpec"):
        GenerationPlan(victims=[("conv_relu", 2)])  # type: ignore[list-item]


# ------------------------------------------------------------------------ metric columns, label rule, named models
def test_metric_columns_are_typed_and_parsed_once():
    from semsim_metric.evaluation import MetricSpec

    assert MetricSpec.parse("psnr:higher") == MetricSpec.for_column("psnr", "higher")
    assert MetricSpec.parse("a:b:lower") == MetricSpec("a:b", None, False)
    for bad in ["psnr", "psnr:up", ":higher"]:
        with pytest.raises(InvalidInputError, match="write COLUMN:higher or COLUMN:lower"):
            MetricSpec.parse(bad)
    with pytest.raises(InvalidInputError, match="'higher' or 'lower'"):
        MetricSpec.for_column("psnr", "up")  # type: ignore[arg-type]


def test_the_label_rule_is_typed_and_parsed_once():
    from semsim_metric.evaluation import LabelRule

    rows = [{"n": "3", "ok": "yes"}, {"n": "2", "ok": "0"}]
    assert LabelRule.parse("n>=3") == LabelRule("n", 3.0)
    assert LabelRule.parse("n>=3").labels(rows).tolist() == [True, False]
    assert LabelRule.parse("ok").labels(rows).tolist() == [True, False]
    for bad in ["n>3", "n<=3", ">=3", "n>=", "n>=three", "n>=inf", "n==3"]:
        with pytest.raises(InvalidInputError, match="write COLUMN>=K"):
            LabelRule.parse(bad)
    with pytest.raises(InvalidInputError, match="no column 'x'"):
        LabelRule("x", 1).labels(rows)
    with pytest.raises(InvalidInputError, match="not a number"):
        LabelRule("ok", 1).labels(rows)
    with pytest.raises(InvalidInputError, match="finite threshold"):
        LabelRule("n", float("nan"))


def test_named_models_are_parsed_once():
    from semsim_metric.evaluation import parse_named_models

    assert parse_named_models(["runs/a"]) == {"SemSim": "runs/a"}
    assert parse_named_models(["x=runs/a", "runs/b"]) == {"x": "runs/a", "SemSim[b]": "runs/b"}
    with pytest.raises(InvalidInputError, match="write PATH or NAME=PATH"):
        parse_named_models(["x="])
    with pytest.raises(InvalidInputError, match="two models are named 'SemSim\\[a\\]'"):
        parse_named_models(["one/a", "two/a"])


def test_cli_table_reports_a_malformed_metric_or_label(tmp_path, capsys):
    from semsim_metric.cli import main

    table = str(_table(tmp_path))
    assert main(["evaluate", "--table", table, "--metric", "psnr"]) == 2
    assert "write COLUMN:higher or COLUMN:lower" in capsys.readouterr().err
    assert main(["evaluate", "--table", table, "--metric", "psnr:higher", "--label", "n_correct>3"]) == 2
    assert "write COLUMN>=K" in capsys.readouterr().err
    argv = ["evaluate", "--table", table, "--metric", "psnr:higher", "--label", "ok", "--bootstrap", "0"]
    assert main(argv) == 0


def test_cli_refuses_a_model_without_a_path(tmp_path, capsys):
    from semsim_metric.cli import main

    assert main(["evaluate", str(tmp_path), "--model", "base="]) == 2
    assert "write PATH or NAME=PATH" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ held-out protocols
@pytest.mark.parametrize(
    "text",
    [
        "unseen-originals",
        "all",
        "victim=lenet_e0+conv_e1",
        "attack=l2+ig",
        "victim_arch=resnet20",
        "victim_train_epochs=3",
        "defense=noise:1e-3",
        "defense=noise:1e+3",  # a defence is one value, '+' and all
        "domain=emoji_scenes",
    ],
)
def test_a_heldout_protocol_parses_to_its_axis_and_names_and_prints_back_as_given(text):
    from semsim_metric.evaluation.heldout import HeldoutProtocol

    protocol = HeldoutProtocol.parse(text)
    assert (
        str(protocol) == text
    )  # the canonical text names outputs: report titles, score files, model folders
    assert HeldoutProtocol.parse(str(protocol)) == protocol
    assert protocol == HeldoutProtocol(protocol.axis, protocol.names)


def test_a_heldout_protocol_is_typed():
    from semsim_metric.evaluation.heldout import HeldoutProtocol

    assert HeldoutProtocol.parse("victim=lenet_e0+conv_e1").names == ("lenet_e0", "conv_e1")
    assert HeldoutProtocol.parse("attack=l2").axis == "attack"
    assert HeldoutProtocol.parse("unseen-originals").names == ()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("colour=red", "unknown protocol 'colour=red'"),
        ("", "unknown protocol ''"),
        ("domain=", "no name, or an empty one, after domain="),
        ("victim", "no name, or an empty one, after victim="),
        ("victim=a++b", "no name, or an empty one, after victim="),
        ("victim_arch=conv+lenet", "victim_arch= takes one value"),
        ("unseen-originals=x", "unseen-originals takes no name"),
        ("victim_train_epochs=ten", "not a whole number of epochs"),
    ],
)
def test_a_malformed_heldout_protocol_is_refused_with_the_forms_to_write(text, problem):
    from semsim_metric.evaluation.heldout import PROTOCOL_FORMS, HeldoutProtocol

    with pytest.raises(InvalidInputError) as caught:
        HeldoutProtocol.parse(text)
    assert problem in str(caught.value) and PROTOCOL_FORMS in str(caught.value)


def test_the_heldout_library_and_command_line_read_protocols_through_the_parser(tmp_path, capsys):
    from semsim_metric.cli import main
    from semsim_metric.evaluation.heldout import HeldoutProtocol, build_protocol_splits, expand_protocols

    rows = [
        {"original_id": f"o{o}", "victim": v, "victim_arch": v[:-3], "attack": "ig", "defense": "none"}
        for o in range(10)
        for v in ("conv_e0", "lenet_e0")
    ]
    typed = HeldoutProtocol("victim", ("conv_e0",))
    assert build_protocol_splits(rows, typed) == build_protocol_splits(rows, "victim=conv_e0")
    assert expand_protocols(rows, ["victim=conv_e0", typed]) == [typed]  # text and typed, the same protocol
    with pytest.raises(ValueError, match="expand it first"):
        build_protocol_splits(rows, "all")
    # the command line refuses a malformed protocol before it reads the dataset (which does not exist here)
    argv = ["evaluate", str(tmp_path / "missing"), "--heldout", "victim_arch=", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "error: --heldout: held-out protocol 'victim_arch=': no name" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------------ +-joined image sources, anchor domains
def test_a_source_list_is_parsed_once_into_names():
    from semsim_metric.data.sources import parse_source_list

    assert parse_source_list("fashion-mnist+emoji-scenes") == ("fashion-mnist", "emoji-scenes")
    assert parse_source_list(" photos ") == ("photos",)
    text = "fashion-mnist+photos+synthetic+emoji-scenes"
    assert "+".join(parse_source_list(text)) == text  # the settings keep the joined string (the cache key)


@pytest.mark.parametrize("bad", ["", "+", "fashion-mnist+", "+photos", "fashion-mnist++photos", "a+ +b"])
def test_an_empty_source_name_is_refused_with_the_form(bad):
    from semsim_metric.data.sources import parse_source_list

    with pytest.raises(InvalidInputError, match="an empty name; write names joined by '\\+'") as info:
        parse_source_list(bad)
    assert isinstance(info.value, ValueError)


def test_load_sources_and_anchor_domains_read_their_strings_through_the_parser(monkeypatch):
    from semsim_metric.data import anchors, sources

    with pytest.raises(InvalidInputError, match="an empty name"):  # was: the empty name silently dropped
        sources.load_sources("fashion-mnist+", "test")
    with pytest.raises(InvalidInputError, match="an empty name"):
        anchors.AnchorPool.from_domains("photos++synthetic")
    loaded = []
    monkeypatch.setattr(sources, "load_source", lambda spec, split, **kw: loaded.append(spec) or spec)
    assert sources.load_sources("a+b", "test") == sources.load_sources(("a", "b"), "test") == ["a", "b"]
    sizes = {}
    monkeypatch.setattr(anchors.AnchorPool, "default", classmethod(lambda cls, **kw: sizes.update(kw) or kw))
    anchors.AnchorPool.from_domains("photos+synthetic")
    typed = dict(sizes)
    anchors.AnchorPool.from_domains(("photos", "synthetic"))
    assert typed == sizes and sizes["photo_crops"] and sizes["synthetic"] and not sizes["fashion_mnist"]
    with pytest.raises(InvalidInputError, match="unknown anchor domain"):
        anchors.AnchorPool.from_domains("photos+mnist")
