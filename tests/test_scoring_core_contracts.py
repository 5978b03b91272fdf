"""Contracts of the scoring core: the functional entry points (``get_model``, ``semsim`` on files and PIL images,
``_semsim_update``, ``score_file_pairs``), the input gate (``preprocessing``) and the protocol's statistics
(``evaluation/statistics.py``), each pinned by an exact value, an independent computation or the message a user
reads: devices named by index, gigapixel originals checked by their stored size without their pixels, the progress
lines of a long scoring run, the hints of the gate, the antialiasing of a resize that shrinks one side only, float64
normalisation, the seeded pair draws of the contradiction rate, and the inputs the calibration error takes.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import semsim_metric._progress as progress_module
import semsim_metric.domain as domain_module
from semsim_metric import SemSimModel, semsim
from semsim_metric import functional as functional_module
from semsim_metric.domain import OutOfDomainWarning
from semsim_metric.errors import InvalidInputError, InvalidInputTypeError, MissingExtraError
from semsim_metric.evaluation.statistics import (
    best_threshold_accuracy,
    contradiction_rate,
    expected_calibration_error,
    image_level,
    model_level,
)
from semsim_metric.functional import _semsim_update, get_model, score_file_pairs
from semsim_metric.image_io import ModelSizedImage, load_image
from semsim_metric.preprocessing import (
    check_image_pair,
    check_images,
    resize_images,
    to_model_input,
    to_unit_rgb,
)
from tests.helpers import contradiction_rate_by_hand, model_with_bar_domain

#: a stored size no image in memory could have: 10^9 x 10^9 pixels (a full-size float buffer would be 4 EB)
GIGA = 10**9


# --------------------------------------------------------------------------- helpers
def _save(path: Path, seed: int, size: int = 28) -> Path:
    """A greyscale noise PNG of ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8), "L").save(path)
    return path


def _model_with_domain() -> SemSimModel:
    return model_with_bar_domain(16)[0]


@pytest.fixture
def fresh_domain_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The once-per-model memory of the domain warning starts empty (no model of another test silences it)."""
    monkeypatch.setattr(domain_module, "_WARNED", set())


def _domain_problems(caught: list[warnings.WarningMessage]) -> list[str]:
    """What the ``OutOfDomainWarning``s among ``caught`` say differs."""
    return [str(w.message.problem) for w in caught if isinstance(w.message, OutOfDomainWarning)]


@pytest.fixture
def gigapixel_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files read for a model report a stored size of GIGA x GIGA pixels, as a huge file reduced while it is read
    would (the pixels read are the file's own)."""
    real = functional_module.load_image_for_model

    def read(path: str | Path, image_size: int) -> ModelSizedImage:
        got = real(path, image_size)
        return ModelSizedImage(got.pixels, (got.shape[0], GIGA, GIGA))

    monkeypatch.setattr(functional_module, "load_image_for_model", read)


# --------------------------------------------------------------------------- get_model
def test_get_model_places_a_copy_on_a_device_named_by_index(tiny_model_dir: Path) -> None:
    shared = get_model(str(tiny_model_dir))
    placed = get_model(str(tiny_model_dir), device="cpu:0")  # "cpu:0" is another torch.device than "cpu"
    assert placed is not shared
    assert not placed.training
    assert all(p.device.type == "cpu" and not p.requires_grad for p in placed.parameters())
    x, y = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0)).unbind(0)
    torch.testing.assert_close(
        semsim(x[None], y[None], model=placed), semsim(x[None], y[None], model=shared), rtol=0, atol=0
    )


# --------------------------------------------------------------------------- PIL images beside tensors
def test_a_pil_image_beside_a_tensor_scores_as_its_pixels(tiny_model: SemSimModel) -> None:
    rng = np.random.default_rng(3)
    pil = Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L")
    target = torch.from_numpy(rng.integers(0, 256, (1, 1, 28, 28), dtype=np.uint8))
    pixels = torch.from_numpy(np.array(pil)).reshape(1, 1, 28, 28)
    expected = semsim(pixels, target, model=tiny_model, data_range=255, reduction="none")
    got = semsim(pil, target, model=tiny_model, data_range=255, reduction="none")
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    both_pil = semsim([pil], [pil], model=tiny_model, reduction="none")
    assert both_pil.tolist() == [0.0]


# --------------------------------------------------------------------------- the domain check of _semsim_update
def test_semsim_update_checks_the_originals_domain_unless_told_not_to(fresh_domain_warnings: None) -> None:
    model = _model_with_domain()
    x = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))  # colour 40x40: out of domain
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        by_default = _semsim_update(x, x.flip(0), model)
    assert any(p.startswith("the originals are colour") for p in _domain_problems(caught))
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        told = _semsim_update(x, x.flip(0), model, check_domain=False)
    torch.testing.assert_close(by_default, told, rtol=0, atol=0)


def test_gigapixel_originals_are_checked_by_their_stored_size_without_their_pixels(
    tmp_path: Path, gigapixel_reader: None, fresh_domain_warnings: None
) -> None:
    model = _model_with_domain()
    origs = [_save(tmp_path / f"o{i}.png", i) for i in range(2)]
    recs = [_save(tmp_path / f"r{i}.png", 10 + i) for i in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = semsim(recs, origs, model=model, reduction="none")
    assert any(p.startswith(f"the originals are {GIGA}x{GIGA}") for p in _domain_problems(caught))
    pixels = [torch.stack([load_image(p) for p in side]) for side in (recs, origs)]
    expected = semsim(*pixels, model=model, data_range=255, reduction="none", check_domain=False)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_score_file_pairs_checks_gigapixel_originals_content_without_their_pixels(
    tmp_path: Path, gigapixel_reader: None, fresh_domain_warnings: None
) -> None:
    model = _model_with_domain()
    pairs = [(_save(tmp_path / f"o{i}.png", i), _save(tmp_path / f"r{i}.png", 10 + i)) for i in range(2)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scored = score_file_pairs(pairs, model, progress=False, bf16=False)
    problems = _domain_problems(caught)
    assert any(p.startswith(f"the originals are {GIGA}x{GIGA}") for p in problems)
    assert any(p.startswith("the originals look unlike bar images") for p in problems)  # the content, checked
    assert scored.problems == []
    assert [(row.original, row.reconstruction) for row in scored.rows] == [(str(o), str(r)) for o, r in pairs]


# --------------------------------------------------------------------------- score_file_pairs progress lines
def test_score_file_pairs_logs_its_progress_out_of_the_number_of_pairs(
    tmp_path: Path, tiny_model: SemSimModel, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a piped log: progress lines, no bar
    monkeypatch.setattr(progress_module, "LOG_EVERY_S", 0.0)  # a line at every batch
    pairs = [(_save(tmp_path / f"o{i}.png", i), _save(tmp_path / f"r{i}.png", 10 + i)) for i in range(3)]
    caplog.set_level(logging.INFO, logger="semsim_metric")
    score_file_pairs(pairs, tiny_model, batch_size=1, check_domain=False, description="scoring", bf16=False)
    lines = [r.getMessage() for r in caplog.records if r.name == "semsim_metric"]
    counts = [
        m.group(1) if (m := re.match(r"scoring: (\d+ of \d+ pair) \(\d+%\)", line)) else line
        for line in lines
    ]
    assert counts == ["1 of 3 pair", "2 of 3 pair", "3 of 3 pair"]


# --------------------------------------------------------------------------- the input gate's messages
def test_a_pil_image_given_to_the_gate_is_refused_with_how_to_convert_it() -> None:
    pil = Image.new("L", (28, 28))
    with pytest.raises(InvalidInputTypeError, match=r"got Image\. Convert PIL images with .*pil_to_tensor"):
        check_image_pair(pil, torch.rand(1, 1, 28, 28))  # type: ignore[arg-type]


def test_the_gate_counts_the_nan_and_infinite_pixels_it_refuses() -> None:
    x = torch.rand(1, 1, 4, 4)
    x[0, 0, 0, :3] = torch.tensor([math.nan, math.inf, -math.inf])
    with pytest.raises(InvalidInputError, match=r"images contains 3 NaN or infinite values"):
        check_images(x)


def test_pixels_down_to_exactly_minus_one_minus_the_tolerance_are_taken_for_a_minus_one_to_one_range() -> (
    None
):
    tol = 1e-4  # the gate's tolerance for float64 pixels and data_range=1
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    x[0, 0, 0, 0] = -1.0 - tol
    x[0, 0, 1, 1] = 1.0
    with pytest.raises(InvalidInputError, match=r"Images in \[-1, 1\]\? Map them with \(x \+ 1\) / 2\."):
        check_images(x)


# --------------------------------------------------------------------------- resize and normalisation
def test_a_resize_that_shrinks_one_side_and_enlarges_the_other_is_antialiased() -> None:
    x = torch.rand(1, 3, 20, 60, generator=torch.Generator().manual_seed(2))  # 60 wide -> 32: shrinks
    expected = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(resize_images(x, 32), expected, rtol=0, atol=0)
    tall = x.transpose(2, 3)  # 60 high, 20 wide
    expected_tall = F.interpolate(tall, size=(32, 32), mode="bilinear", align_corners=False, antialias=True)
    torch.testing.assert_close(resize_images(tall, 32), expected_tall, rtol=0, atol=0)


def test_float64_model_input_is_normalised_by_the_float64_mean_and_std() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # none exact in float32
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    got = to_model_input(x, data_range=1.0, image_size=8, mean=mean, std=std, dtype=torch.float64)
    unit = to_unit_rgb(x, data_range=1.0, image_size=8, dtype=torch.float64)
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    assert got.dtype == torch.float64
    assert torch.equal(got, (unit - m) / s)


# --------------------------------------------------------------------------- statistics: missing extras
def test_image_level_without_scikit_learn_names_what_it_is_needed_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn.metrics", None)  # as if scikit-learn were not installed
    with pytest.raises(MissingExtraError, match=r"'scikit-learn' for ROC-AUC, which is not installed"):
        image_level(np.array([1, 0]), np.array([0.5, 0.2]), n_boot=0)


def test_model_level_without_scipy_names_what_it_is_needed_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # as if scipy were not installed
    with pytest.raises(MissingExtraError, match=r"'scipy' for correlations, which is not installed"):
        model_level(np.array(["a", "b", "c"]), np.array([1, 0, 1]), np.array([0.5, 0.2, 0.4]), n_boot=0)


# --------------------------------------------------------------------------- statistics: contradiction rate
def test_contradiction_rate_over_drawn_pairs_follows_the_seed() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)  # 100 x 100 pairs > 2000: the pairs are drawn
    got = contradiction_rate(a, b, n_pairs=2000, seed=5)
    assert got == pytest.approx(contradiction_rate_by_hand(a, b, 2000, 5), abs=1e-12)
    assert contradiction_rate(a, b, n_pairs=2000, seed=6) == pytest.approx(
        contradiction_rate_by_hand(a, b, 2000, 6), abs=1e-12
    )
    assert got != contradiction_rate(a, b, n_pairs=2000, seed=6)


def test_contradiction_rate_over_drawn_pairs_leaves_out_pairs_tied_under_either_score() -> None:
    n = 60  # 3600 pairs > 500: drawn
    assert math.isnan(contradiction_rate(np.ones(n), np.arange(float(n)), n_pairs=500))
    assert math.isnan(contradiction_rate(np.arange(float(n)), np.zeros(n), n_pairs=500))
    rng = np.random.default_rng(1)
    a, b = np.round(rng.normal(size=n), 0), np.round(rng.normal(size=n), 0)  # many ties in each
    assert contradiction_rate(a, b, n_pairs=500, seed=3) == pytest.approx(
        contradiction_rate_by_hand(a, b, 500, 3), abs=1e-12
    )


# --------------------------------------------------------------------------- statistics: calibration error
def test_ece_bins_float32_probabilities_by_their_exact_value() -> None:
    # float32(0.7) = 0.69999998...: below 0.7, so in [0.6, 0.7) of 10 bins, apart from 0.75 in [0.7, 0.8)
    p = np.array([0.7, 0.75], dtype=np.float32)
    gap_low, gap_high = abs(float(p[0]) - 1.0), abs(float(p[1]) - 0.0)
    assert expected_calibration_error(p, [1, 0]) == pytest.approx(0.5 * gap_low + 0.5 * gap_high, abs=1e-12)
    assert expected_calibration_error(torch.from_numpy(p), [1, 0]) == pytest.approx(0.525, abs=1e-7)


def test_ece_takes_probabilities_and_labels_as_read_from_a_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("p_recognised,recognised\n0.1,0\n0.2,1\n0.8,1\n0.9,1\n")
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    p, y = [r["p_recognised"] for r in rows], [r["recognised"] for r in rows]  # text, as read
    assert expected_calibration_error(p, y, n_bins=2) == pytest.approx(0.25, abs=1e-12)


# --------------------------------------------------------------------------- statistics: best threshold
def test_best_threshold_accuracy_never_splits_tied_infinite_or_missing_scores() -> None:
    # two rows at +inf (one recognised, one not) and two at 0: no threshold beats predicting one class, 0.5
    y = np.array([1, 0, 1, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no RuntimeWarning from inf - inf
        assert best_threshold_accuracy(y, np.array([math.inf, math.inf, 0.0, 0.0])) == 0.5
        assert best_threshold_accuracy(y, np.array([-math.inf, -math.inf, 0.0, 0.0])) == 0.5
        assert best_threshold_accuracy(y, np.array([math.nan, math.nan, 0.0, 0.0])) == 0.5
    # distinct infinities are still told apart: +inf recognised, -inf not
    assert best_threshold_accuracy(np.array([1, 0]), np.array([math.inf, -math.inf])) == 1.0
