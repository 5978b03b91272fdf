"""The input gate: what it accepts and the errors it gives for everything else."""

import pytest
import torch

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
