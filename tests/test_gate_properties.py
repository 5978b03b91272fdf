"""Property-based test of the input gate: any input gives a finite score in range or a ValueError/TypeError.

A bounded number of examples runs with the suite; ``pytest -m long tests/test_gate_properties.py`` (or
``make test-long``) runs 10,000.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from semsim_metric import SemSimConfig, SemSimModel, semsim

_MODEL = SemSimModel(
    SemSimConfig(base_width=2, image_size=8, calibration={"intercept": 2.0, "slope": -4.0})
).eval()

DTYPES = [
    torch.uint8,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int32,
    torch.int64,
    torch.bool,
    torch.float8_e4m3fn,
    torch.complex64,
]
SPECIAL = [
    0.0,
    1.0,
    -1.0,
    255.0,
    256.0,
    1e-45,
    5e-324,
    1e-300,
    1e38,
    3.5e38,
    1e300,
    float("nan"),
    float("inf"),
    -float("inf"),
    0.5,
    1.0001,
    -0.0,
]


@st.composite
def data_ranges(draw):
    kind = draw(st.sampled_from(["float", "float", "float", "special", "int", "numpy", "odd"]))
    if kind == "float":
        return draw(st.floats(min_value=1e-300, max_value=1e300))
    if kind == "special":
        return draw(st.sampled_from(SPECIAL))
    if kind == "int":
        return draw(st.sampled_from([1, 255, 0, -1, 65535]))
    if kind == "numpy":
        return draw(st.sampled_from([np.float32(1.0), np.float64(255.0), np.int64(255), np.float16(1.0)]))
    return draw(st.sampled_from(["1.0", None, True, [1.0], torch.tensor([1.0, 2.0])]))


@st.composite
def image_batches(draw, n: int, h: int, w: int, data_range):
    c = draw(st.sampled_from([1, 1, 3, 3, 3, 2, 4]))
    dtype = draw(st.sampled_from(DTYPES + [torch.float32] * 6 + [torch.float64] * 2))
    scale = (
        float(data_range)
        if isinstance(data_range, (int, float, np.number)) and not isinstance(data_range, bool)
        else 1.0
    )
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h, w, generator=g, dtype=torch.float64)
    mode = draw(st.sampled_from(["in_range"] * 6 + ["scaled", "special"]))
    if mode == "in_range" and np.isfinite(scale):
        x = x * scale
    elif mode == "scaled":
        x = x * draw(st.sampled_from([255.0, 2.0, -1.0, 1e300, 1e-300]))
    else:
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = draw(st.sampled_from(SPECIAL))
    if dtype == torch.uint8:
        return x.clamp(0, 255).round().to(torch.uint8)
    if dtype in (torch.int32, torch.int64, torch.bool):
        return torch.nan_to_num(x).clamp(-1e9, 1e9).to(dtype)
    if dtype == torch.complex64:
        return x.to(torch.complex64)
    return x.to(dtype)


@st.composite
def cases(draw):
    data_range = draw(data_ranges())
    n = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    preds = draw(image_batches(n, h, w, data_range))
    same = draw(st.booleans())
    target = (
        preds.clone()
        if same
        else draw(
            image_batches(
                n if draw(st.integers(0, 9)) else n + 1,
                h if draw(st.integers(0, 9)) else h + 1,
                w,
                data_range,
            )
        )
    )
    output = draw(st.sampled_from(["distance", "probability"]))
    reduction = draw(st.sampled_from(["mean", "none", "sum"]))
    validate = draw(st.sampled_from([True, True, True, False]))
    return preds, target, data_range, output, reduction, validate


def _check(case) -> None:
    preds, target, data_range, output, reduction, validate = case
    try:
        with torch.no_grad():
            out = semsim(
                preds,
                target,
                model=_MODEL,
                data_range=data_range,
                output=output,
                reduction="none",
                validate_args=validate,
                check_domain=False,
            )
    except (ValueError, TypeError) as err:
        event(f"refused: {type(err).__name__}")
        return  # the gate refused it (the message is checked by the example-based tests)
    if not validate:
        # without the value scan, garbage values are the caller's responsibility; the shape rules still hold
        assert out.shape == (preds.shape[0],)
        return
    event("scored")
    assert out.shape == (preds.shape[0],)
    assert bool(torch.isfinite(out).all()), (preds.dtype, data_range, out)
    high = 1.0 if output == "probability" else 2.0 + 1e-5
    assert float(out.min()) >= 0.0 and float(out.max()) <= high
    del reduction


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(cases())
def test_every_input_is_refused_or_scored_finite_and_in_range(case):
    _check(case)


@pytest.mark.long
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_input_is_refused_or_scored_finite_and_in_range_long(case):
    _check(case)
