"""Contracts of ``semsim_metric.models.configuration_semsim`` and of ``layout_embedding`` that the broader tests leave
loose: the boundaries of the checks, the values shown in their messages, the defaults of a calibration record and the
device the layout is computed on."""

from __future__ import annotations

import math

import pytest
import torch

from semsim_metric.errors import InvalidInputError
from semsim_metric.models.backbones import MAX_NUM_LABELS
from semsim_metric.models.configuration_semsim import (
    Calibration,
    SemSimConfig,
    check_dtype_name,
    check_training_domain,
)
from semsim_metric.models.modeling_semsim import LAYOUT_FLAT_TOLERANCE, layout_embedding

# -- check_dtype_name ---------------------------------------------------------------------------------------------


def test_check_dtype_name_refuses_a_long_unknown_name_with_a_value_error_showing_it_shortened():
    name = "float" + "9" * 60
    with pytest.raises(InvalidInputError) as info:
        check_dtype_name(name, "torch_dtype")
    assert isinstance(info.value, ValueError)
    shown = repr(name)[:37] + "..."
    assert str(info.value).endswith(f"got {shown}.")
    assert str(info.value).startswith("torch_dtype must be one of float16, bfloat16, float32, float64")


def test_check_dtype_name_shows_a_short_unknown_name_whole():
    with pytest.raises(InvalidInputError, match=r"got 'int8'\.$"):
        check_dtype_name("int8")


# -- Calibration --------------------------------------------------------------------------------------------------


def test_calibration_from_a_record_without_fitted_on_records_nothing_about_its_annotators():
    cal = Calibration.from_record({"intercept": 3.0, "slope": -6.0})
    assert cal == Calibration(intercept=3.0, slope=-6.0, fitted_on="")
    assert cal.fitted_on == ""
    assert cal.annotator_kind is None


def test_calibration_from_a_record_keeps_its_fitted_on_text():
    cal = Calibration.from_record({"intercept": 1, "slope": -2, "fitted_on": "val (annotator_kind: human)"})
    assert (cal.intercept, cal.slope, cal.fitted_on) == (1, -2, "val (annotator_kind: human)")
    assert cal.annotator_kind == "human"


@pytest.mark.parametrize("probability", [0.0, 1.0, -0.5, 1.5])
def test_calibration_distance_at_refuses_a_probability_that_is_not_strictly_between_0_and_1(probability):
    cal = Calibration(intercept=3.0, slope=-6.0)
    with pytest.raises(InvalidInputError, match="strictly between 0 and 1"):
        cal.distance_at(probability)


def test_calibration_distance_at_refuses_probability_1_even_without_a_slope():
    with pytest.raises(InvalidInputError, match="strictly between 0 and 1"):
        Calibration(intercept=3.0, slope=0.0).distance_at(1.0)


def test_calibration_distance_at_just_below_1_is_the_inverse_of_probability():
    cal = Calibration(intercept=3.0, slope=-6.0)
    p = 0.999
    d = cal.distance_at(p)
    assert d == pytest.approx((math.log(p / (1 - p)) - 3.0) / -6.0)
    assert float(cal.probability(torch.tensor(d, dtype=torch.float64))) == pytest.approx(p)


# -- check_training_domain messages -------------------------------------------------------------------------------


def test_training_domain_channels_error_names_what_channels_must_be_and_shows_a_short_value_whole():
    with pytest.raises(ValueError) as info:
        check_training_domain({"channels": "grey"})
    assert str(info.value).startswith(
        "training_domain.channels must be a list of channel counts (1 to 4), got 'grey'. The record is written by"
    )


def test_training_domain_image_sizes_error_names_what_image_sizes_must_be():
    with pytest.raises(ValueError) as info:
        check_training_domain({"image_sizes": [[28]]})
    assert str(info.value).startswith(
        "training_domain.image_sizes must be a list of [height, width] pairs of positive integers, got [[28]]. "
    )


def test_training_domain_error_shows_a_value_of_exactly_80_characters_whole():
    value = "x" * 78  # repr adds the two quotes: 80 characters
    assert len(repr(value)) == 80
    with pytest.raises(ValueError) as info:
        check_training_domain({"channels": value})
    assert f"got {value!r}. The record" in str(info.value)


def test_training_domain_error_shortens_a_value_longer_than_80_characters_to_77_and_an_ellipsis():
    value = "x" * 79  # 81 characters with its quotes
    with pytest.raises(ValueError) as info:
        check_training_domain({"channels": value})
    assert f"got {repr(value)[:77]}.... The record" in str(info.value)


# -- SemSimConfig labels ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", ["id2label", "label2id"])
def test_config_refuses_labels_that_are_not_a_dictionary(labels):
    with pytest.raises(InvalidInputError, match=f"{labels} must be a dictionary"):
        SemSimConfig(base_width=2, **{labels: ["a", "b"]})


def test_config_refuses_an_id2label_dictionary_of_more_than_max_num_labels():
    too_many = {i: f"c{i}" for i in range(MAX_NUM_LABELS + 1)}
    with pytest.raises(InvalidInputError, match="id2label must be a dictionary of at most 100,000 labels"):
        SemSimConfig(base_width=2, id2label=too_many)


def test_config_accepts_a_small_id2label_dictionary():
    cfg = SemSimConfig(base_width=2, id2label={0: "a", 1: "b"})
    assert cfg.id2label == {0: "a", 1: "b"}


# -- layout_embedding ---------------------------------------------------------------------------------------------


def test_layout_embedding_computes_on_the_device_of_its_input():
    # the meta device stands in for an accelerator: mean and std must be put where the images are
    x = torch.empty(2, 3, 8, 8, device="meta")
    out = layout_embedding(x, [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], size=4)
    assert out.device == torch.device("meta")
    assert out.shape == (2, 48)


def _three_values(values: list[float]) -> torch.Tensor:
    """One 1x1 image whose three channels hold ``values`` (with mean 0 and std 1 these are its pixel values)."""
    return torch.tensor(values, dtype=torch.float64).view(1, 3, 1, 1)


def test_layout_embedding_a_thumbnail_deviating_by_exactly_the_tolerance_is_not_flat():
    t = LAYOUT_FLAT_TOLERANCE
    out = layout_embedding(_three_values([t, -t, 0.0]), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], size=1)
    expected = torch.tensor([[2**-0.5, -(2**-0.5), 0.0]], dtype=torch.float64)
    torch.testing.assert_close(out, expected)


def test_layout_embedding_a_thumbnail_deviating_by_less_than_the_tolerance_is_flat():
    t = LAYOUT_FLAT_TOLERANCE / 2
    out = layout_embedding(_three_values([t, -t, 0.0]), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], size=1)
    assert torch.equal(out, torch.zeros(1, 3, dtype=torch.float64))
