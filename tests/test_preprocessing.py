"""The input gate: what it accepts and the errors it gives for everything else."""

import numpy as np
import pytest
import torch

from semsim_metric import semsim
from semsim_metric.preprocessing import check_image_pair, to_model_input


def ok(n=2, c=3, h=28, w=28):
    return torch.rand(n, c, h, w)


@pytest.mark.parametrize(
    ("preds", "kwargs", "error", "message"),
    [
        ([[0.5]], {}, TypeError, "must be a torch.Tensor"),
        (torch.rand(3, 28, 28), {}, ValueError, "x.unsqueeze\\(0\\)"),
        (torch.rand(2, 28, 28, 3), {}, ValueError, "channels seem to be last"),
        (torch.rand(2, 4, 28, 28), {}, ValueError, "alpha channel"),
        (torch.randint(0, 255, (2, 3, 28, 28)), {}, TypeError, "dtype torch.int64"),
        ((torch.rand(2, 3, 28, 28) * 255).to(torch.uint8), {}, TypeError, "uint8 images need data_range=255"),
        (torch.rand(2, 3, 28, 28) * 2 - 1, {}, ValueError, r"\(x \+ 1\) / 2"),
        (torch.rand(2, 3, 28, 28) * 255, {}, ValueError, "data_range=255"),
        (torch.full((2, 3, 28, 28), float("nan")), {}, ValueError, "NaN or infinite"),
        (torch.randn(2, 3, 28, 28) * 3, {}, ValueError, "Normalised images"),
    ],
)
def test_bad_reconstructions_are_rejected_with_a_fix(preds, kwargs, error, message):
    target = ok()
    with pytest.raises(error, match=message):
        check_image_pair(preds, target, **kwargs)


def test_batch_and_size_mismatches_are_named():
    with pytest.raises(ValueError, match="3 reconstructions and 2 originals"):
        check_image_pair(ok(3), ok(2))
    with pytest.raises(ValueError, match="same height and width"):
        check_image_pair(ok(h=32, w=32), ok())


def test_value_scan_can_be_switched_off():
    bad = torch.rand(2, 3, 28, 28) * 2 - 1
    check_image_pair(bad, ok(), validate_args=False)  # no error: the scan is skipped


@pytest.mark.parametrize("data_range", [0, -1, float("nan"), "1"])
def test_bad_data_range(data_range):
    with pytest.raises((ValueError, TypeError), match="data_range"):
        check_image_pair(ok(), ok(), data_range=data_range)


def test_uint8_with_data_range_255_equals_float():
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    kw = dict(image_size=32, mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.25))
    a = to_model_input(x, data_range=255, **kw)
    b = to_model_input(x.float() / 255, data_range=1.0, **kw)
    torch.testing.assert_close(a, b)


def test_greyscale_is_repeated_to_rgb_and_resized():
    x = torch.rand(2, 1, 28, 28)
    y = to_model_input(x, data_range=1.0, image_size=32, mean=(0, 0, 0), std=(1, 1, 1))
    assert y.shape == (2, 3, 32, 32)
    torch.testing.assert_close(y[:, 0], y[:, 2])


def test_the_reported_nan_reproducer_is_finite(random_model):
    zeros = torch.zeros(1, 1, 1, 1)
    assert float(semsim(zeros, zeros, model=random_model, data_range=5e-324).detach()) == 0.0


@pytest.mark.parametrize(
    "dtype, value, data_range",
    [
        (torch.float64, 5e-324, 5e-324),  # a data_range float32 cannot hold
        (torch.float64, 1e300, 1e300),  # pixels float32 cannot hold
        (torch.float64, 4e-310, 5e-310),  # subnormal float64 pixels
        (torch.float32, 3e38, 3.4e38),
    ],
)
def test_extreme_but_accepted_input_gives_a_finite_score(random_model, dtype, value, data_range):
    x = torch.full((2, 1, 3, 3), value, dtype=dtype)
    y = x.clone()
    y[1] = 0
    scores = semsim(x, y, model=random_model, data_range=data_range, reduction="none")
    scores = scores.detach()
    assert bool(torch.isfinite(scores).all())
    assert float(scores[0]) == 0.0 and float(scores[1]) > 0.0  # a full-scale image differs from a black one


def test_numpy_scalars_are_accepted_as_data_range(random_model):
    x = torch.rand(1, 3, 8, 8)
    for dr in (np.float32(1.0), np.float64(1.0), np.int64(1), torch.tensor(1.0)):
        assert float(semsim(x, x, model=random_model, data_range=dr).detach()) == 0.0
    with pytest.raises(TypeError, match="data_range must be a number"):
        semsim(x, x, model=random_model, data_range="1")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_pixels_equal_to_data_range_are_accepted(random_model, dtype):
    x = torch.full((1, 3, 8, 8), 0.3).to(dtype)  # rounds to just above 0.3
    assert float(x.max()) > 0.3
    assert float(semsim(x, x, model=random_model, data_range=0.3).detach()) == 0.0


def test_values_above_data_range_name_the_value_without_contradiction(random_model):
    x = torch.full((1, 3, 8, 8), 0.3)
    with pytest.raises(ValueError) as err:
        semsim(x, x, model=random_model, data_range=0.29)
    message = str(err.value)
    suggested = float(message.split("maximum value (")[1].split(")")[0])
    assert suggested >= float(x.max())


@pytest.mark.parametrize("dtype", [torch.float8_e4m3fn, torch.float8_e5m2])
def test_float8_is_a_type_error_from_the_gate(random_model, dtype):
    x = torch.rand(1, 3, 8, 8).to(dtype)
    with pytest.raises(TypeError, match="float8 .*x.float()"):
        semsim(x, x, model=random_model)


def test_greyscale_reconstructions_of_colour_originals_are_scored_as_documented(random_model):
    grey = torch.rand(2, 1, 8, 8)
    colour = grey.expand(-1, 3, -1, -1).clone()
    scores = semsim(grey, colour, model=random_model, reduction="none")
    assert torch.equal(scores, torch.zeros(2))


def test_validate_args_false_reaches_the_gate_for_both_inputs(random_model):
    bad = torch.full((1, 3, 8, 8), 2.0)  # above data_range: only the value scan notices
    good = torch.rand(1, 3, 8, 8)
    for preds, target in ((bad, good), (good, bad)):
        with pytest.raises(ValueError, match="above data_range"):
            semsim(preds, target, model=random_model)
        semsim(preds, target, model=random_model, validate_args=False)  # the scan is skipped, as documented
