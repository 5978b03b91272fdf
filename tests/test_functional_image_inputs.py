"""``semsim()`` and ``score_file_pairs`` given image files and PIL images, in-process: each way in scores the pixels
the files hold (the scores of the same pixels given as tensors), keeps the pairs' order, shows the training-domain
check the originals as stored, and refuses what it cannot score with the project's errors, naming the argument,
the position and the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from semsim_metric import SemSimModel, semsim
from semsim_metric import functional as functional_module
from semsim_metric.errors import ImageFileError, ImageInputError, InvalidInputError, SemSimError
from semsim_metric.functional import score_file_pairs
from semsim_metric.image_io import load_image, load_image_for_model
from semsim_metric.preprocessing import stack_at_model_size, to_model_input_for

#: height and width of a file that is reduced while read for a model of input side 32 (sides of 1024 or more)
BIG = (1030, 1100)

#: (originals, reconstructions) as files
Files = tuple[list[Path], list[Path]]


class DomainCall(NamedTuple):
    """One call of the training-domain check: the originals it was shown (their shape and dtype), and the
    embeddings it was given (``None``: no content check)."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    embeddings: Tensor | None


def _save(path: Path, seed: int, height: int = 28, width: int = 28, mode: str = "L") -> Path:
    """A noise image file of ``height`` x ``width`` pixels, greyscale (``"L"``) or colour (``"RGB"``)."""
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def _pixels(paths: Sequence[Path]) -> Tensor:
    """Same-sized image files as one uint8 batch ``(N, C, H, W)``."""
    return torch.stack([load_image(p) for p in paths])


def _pair_scores(model: SemSimModel, recs: Sequence[Path], origs: Sequence[Path]) -> Tensor:
    """The distance of each (reconstruction, original) pair, from their pixels as uint8 tensors, one pair at a time."""
    return torch.cat(
        [
            semsim(_pixels([r]), _pixels([o]), model=model, data_range=255, reduction="none")
            for r, o in zip(recs, origs)
        ]
    )


def _embeddings(model: SemSimModel, paths: Sequence[Path]) -> Tensor:
    """Embeddings of image files brought to the model's input size one by one (as ``semsim score`` reads them)."""
    size = model.config.image_size
    batch = stack_at_model_size([load_image(p) for p in paths], data_range=255, image_size=size)
    with torch.no_grad():
        return model.embed(to_model_input_for(model.config, batch, data_range=1.0))


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """Three originals ``o*.png`` and three reconstructions ``r*.png``, greyscale 28x28."""
    origs = [_save(tmp_path / f"o{i}.png", i) for i in range(3)]
    recs = [_save(tmp_path / f"r{i}.png", 10 + i) for i in range(3)]
    return origs, recs


@pytest.fixture
def domain_calls(monkeypatch: pytest.MonkeyPatch) -> list[DomainCall]:
    """Each call of the training-domain check, in order (the check itself does not run)."""
    calls: list[DomainCall] = []

    def record(config: Any, originals: Tensor, embeddings: Tensor | None = None) -> None:
        emb = None if embeddings is None else embeddings.detach().clone()
        calls.append(DomainCall(tuple(originals.shape), originals.dtype, emb))

    monkeypatch.setattr(functional_module, "_check_domain", record)
    return calls


# ----------------------------------------------------------------------------------- both arguments files / PIL
def test_lists_of_paths_score_each_pair_in_order_as_its_pixels_given_as_tensors(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    expected = _pair_scores(tiny_model, recs, origs)
    assert len(set(expected.tolist())) == 3  # three different scores: the order is seen
    for preds, target in (
        ([str(p) for p in recs], [str(p) for p in origs]),  # str
        (recs, origs),  # os.PathLike
        (tuple(recs), tuple(origs)),  # a tuple is a batch too
    ):
        got = semsim(preds, target, model=tiny_model, reduction="none")
        assert got.shape == (3,)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    reversed_ = semsim(recs[::-1], origs[::-1], model=tiny_model, reduction="none")
    torch.testing.assert_close(reversed_, expected.flip(0), atol=1e-6, rtol=0)


def test_lists_of_files_reduce_as_the_tensors_scores_do(files: Files, tiny_model: SemSimModel) -> None:
    origs, recs = files
    expected = _pair_scores(tiny_model, recs, origs)
    mean = semsim(recs, origs, model=tiny_model)
    total = semsim(recs, origs, model=tiny_model, reduction="sum")
    assert mean.shape == () and total.shape == ()
    assert mean.item() == pytest.approx(expected.mean().item(), abs=1e-6)
    assert total.item() == pytest.approx(expected.sum().item(), abs=1e-6)


def test_one_file_and_one_pil_image_are_one_pair(files: Files, tiny_model: SemSimModel) -> None:
    origs, recs = files
    expected = _pair_scores(tiny_model, recs[1:2], origs[1:2])
    one = semsim(str(recs[1]), Image.open(origs[1]), model=tiny_model)
    assert one.shape == ()
    assert one.item() == pytest.approx(expected.item(), abs=1e-6)
    as_list = semsim(recs[1], Image.open(origs[1]), model=tiny_model, reduction="none")
    assert as_list.shape == (1,)
    torch.testing.assert_close(as_list, expected, atol=1e-6, rtol=0)


def test_pil_images_score_as_the_files_they_were_read_from(files: Files, tiny_model: SemSimModel) -> None:
    origs, recs = files
    expected = _pair_scores(tiny_model, recs, origs)
    pils = [Image.open(p) for p in recs], [Image.open(p) for p in origs]
    by_pil = semsim(*pils, model=tiny_model, reduction="none")
    torch.testing.assert_close(by_pil, expected, atol=1e-6, rtol=0)
    mixed = [pils[0][0], recs[1], Image.open(recs[2])]  # PIL images and paths in one list
    by_both = semsim(mixed, origs, model=tiny_model, reduction="none")
    torch.testing.assert_close(by_both, expected, atol=1e-6, rtol=0)


def test_pairs_of_different_sizes_in_one_list_are_each_brought_to_the_model_size(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    recs = [_save(tmp_path / "r0.png", 1), _save(tmp_path / "r1.png", 2, height=30, width=40)]
    origs = [_save(tmp_path / "o0.png", 3), _save(tmp_path / "o1.png", 4, height=30, width=40)]
    got = semsim(recs, origs, model=tiny_model, reduction="none")
    torch.testing.assert_close(got, _pair_scores(tiny_model, recs, origs), atol=1e-6, rtol=0)


def test_a_greyscale_reconstruction_of_a_colour_original_is_scored_as_its_pixels(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    grey = [_save(tmp_path / f"r{i}.png", i, height=30, width=26) for i in range(2)]
    colour = [_save(tmp_path / f"o{i}.png", 5 + i, height=30, width=26, mode="RGB") for i in range(2)]
    assert load_image(grey[0]).shape[0] == 1 and load_image(colour[0]).shape[0] == 3
    expected = semsim(_pixels(grey), _pixels(colour), model=tiny_model, data_range=255, reduction="none")
    got = semsim(grey, colour, model=tiny_model, reduction="none")
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    swapped = semsim(colour, grey, model=tiny_model, reduction="none")  # the distance is symmetric
    torch.testing.assert_close(swapped, expected, atol=1e-6, rtol=0)


def test_a_colour_and_a_greyscale_file_of_one_size_are_a_pair(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    rec = _save(tmp_path / "r.png", 1, height=30, width=26, mode="RGB")
    orig = _save(tmp_path / "o.png", 2, height=30, width=26)
    assert 0 < semsim(rec, orig, model=tiny_model).item() <= 2


def test_files_are_brought_to_the_models_own_input_size(files: Files, tiny_model: SemSimModel) -> None:
    origs, recs = files
    tiny_model.config.image_size = 40  # the gate resizes tensors to 40x40: files must reach it the same way
    expected = _pair_scores(tiny_model, recs, origs)
    got = semsim(recs, origs, model=tiny_model, reduction="none")
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


def test_large_files_are_reduced_while_read_as_semsim_score_reads_them(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    rec, orig = _save(tmp_path / "r.png", 1, *BIG), _save(tmp_path / "o.png", 2, *BIG)
    reduced = [
        stack_at_model_size([load_image_for_model(p, 32).pixels], data_range=255, image_size=32)
        for p in (rec, orig)
    ]
    expected = semsim(reduced[0], reduced[1], model=tiny_model).item()
    whole = semsim(_pixels([rec]), _pixels([orig]), model=tiny_model, data_range=255).item()
    assert abs(expected - whole) > 1e-3  # reading the files whole gives another score: the test sees which
    assert semsim(rec, orig, model=tiny_model).item() == pytest.approx(expected, abs=1e-6)
    assert semsim(str(rec), [orig], model=tiny_model).item() == pytest.approx(expected, abs=1e-6)
    with Image.open(rec) as r, Image.open(orig) as o:  # PIL images are reduced as their files are
        assert semsim(r, o, model=tiny_model).item() == pytest.approx(expected, abs=1e-6)
        assert semsim([r], [orig], model=tiny_model).item() == pytest.approx(expected, abs=1e-6)


# ----------------------------------------------------------------------------------- files beside a tensor
def test_files_beside_a_float_tensor_are_put_on_its_data_range(files: Files, tiny_model: SemSimModel) -> None:
    origs, recs = files
    rec_pixels, orig_pixels = _pixels(recs).float() / 255 * 2, _pixels(origs).float() / 255 * 2
    expected = semsim(rec_pixels, orig_pixels, model=tiny_model, data_range=2.0, reduction="none")
    torch.testing.assert_close(expected, _pair_scores(tiny_model, recs, origs), atol=1e-5, rtol=0)
    files_first = semsim(recs, orig_pixels, model=tiny_model, data_range=2.0, reduction="none")
    tensor_first = semsim(rec_pixels, origs, model=tiny_model, data_range=2.0, reduction="none")
    torch.testing.assert_close(files_first, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(tensor_first, expected, atol=1e-6, rtol=0)


def test_files_beside_a_uint8_tensor_are_scored_as_8_bit_pixels(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    rec_pixels, orig_pixels = _pixels(recs), _pixels(origs)
    expected = semsim(rec_pixels, orig_pixels, model=tiny_model, data_range=255, reduction="none")
    files_first = semsim(recs, orig_pixels, model=tiny_model, data_range=255, reduction="none")
    tensor_first = semsim(rec_pixels, origs, model=tiny_model, data_range=255, reduction="none")
    assert torch.equal(files_first, expected) and torch.equal(tensor_first, expected)


def test_files_beside_a_tensor_are_handed_on_in_its_dtype(
    files: Files, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    origs, recs = files
    semsim(_pixels(recs), origs, model=tiny_model, data_range=255)  # uint8 stays uint8
    semsim(_pixels(recs).double() / 255, origs, model=tiny_model)  # a floating tensor's own dtype
    assert [(call.shape, call.dtype) for call in domain_calls] == [
        ((3, 1, 28, 28), torch.uint8),
        ((3, 1, 28, 28), torch.float64),
    ]


def test_files_beside_a_float64_tensor_are_scored_in_float64(files: Files, tiny_model: SemSimModel) -> None:
    origs, recs = files
    model = tiny_model.double()
    rec_pixels, orig_pixels = _pixels(recs).double() / 255 * 3, _pixels(origs).double() / 255 * 3
    expected = semsim(rec_pixels, orig_pixels, model=model, data_range=3.0, reduction="none")
    got = semsim(recs, orig_pixels, model=model, data_range=3.0, reduction="none")
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=0)


def test_a_greyscale_file_beside_a_colour_tensor_keeps_one_channel(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    rec = _save(tmp_path / "r.png", 1)
    colour = torch.rand(1, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    expected = semsim(_pixels([rec]).float() / 255, colour, model=tiny_model).item()
    assert semsim(rec, colour, model=tiny_model).item() == pytest.approx(expected, abs=1e-6)


def test_a_large_file_beside_a_tensor_is_read_whole_at_the_tensors_size(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    rec = _save(tmp_path / "r.png", 1, *BIG)
    orig = torch.rand(1, 1, *BIG, generator=torch.Generator().manual_seed(0))
    expected = semsim(_pixels([rec]).float() / 255, orig, model=tiny_model).item()
    assert semsim(rec, orig, model=tiny_model).item() == pytest.approx(expected, abs=1e-6)


def test_probability_output_from_files_is_the_calibration_of_their_distances(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    expected = tiny_model.probability(_pair_scores(tiny_model, recs, origs))
    for target in (origs, _pixels(origs).float() / 255):
        got = semsim(recs, target, model=tiny_model, output="probability", reduction="none")
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------------- refusals
def test_batches_of_different_lengths_are_refused_naming_both_counts(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    rec_pixels, orig_pixels = _pixels(recs).float() / 255, _pixels(origs).float() / 255
    with pytest.raises(ImageInputError, match="2 reconstructions and 3 originals"):
        semsim(recs[:2], origs, model=tiny_model)
    with pytest.raises(ImageInputError, match="3 reconstructions and 2 originals"):
        semsim(recs, origs[:2], model=tiny_model)
    with pytest.raises(ImageInputError, match="2 reconstructions and 3 originals"):
        semsim(recs[:2], orig_pixels, model=tiny_model)
    with pytest.raises(ImageInputError, match="3 reconstructions and 2 originals"):
        semsim(rec_pixels, origs[:2], model=tiny_model)


@pytest.mark.parametrize(("height", "width"), [(30, 26), (30, 28), (28, 26)])
def test_a_pair_of_files_of_different_heights_or_widths_is_refused_naming_the_pair_and_both_sizes(
    tmp_path: Path, tiny_model: SemSimModel, height: int, width: int
) -> None:
    origs = [_save(tmp_path / f"o{i}.png", i) for i in range(2)]
    recs = [_save(tmp_path / "r0.png", 5), _save(tmp_path / "r1.png", 6, height=height, width=width)]
    with pytest.raises(ImageInputError) as err:
        semsim(recs, origs, model=tiny_model)
    message = str(err.value)
    assert message.startswith(f"pair 1 ({recs[1]}, {origs[1]}): ")
    assert f"reconstruction is {height}x{width} but its original is 28x28" in message


def test_a_pil_image_of_another_size_is_named_by_its_argument_and_position(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, _ = files
    small = Image.fromarray(np.zeros((20, 24), dtype=np.uint8))
    with pytest.raises(ImageInputError) as err:
        semsim([small], [origs[0]], model=tiny_model)
    message = str(err.value)
    assert message.startswith(f"pair 0 (preds (reconstructions)[0] (a PIL image), {origs[0]}): ")
    assert "reconstruction is 20x24 but its original is 28x28" in message


def test_a_file_of_another_size_than_the_tensor_beside_it_is_refused_naming_it(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    tall = [_save(tmp_path / "a.png", 1), _save(tmp_path / "b.png", 2, height=30, width=26)]
    tensor = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ImageInputError) as err:
        semsim(tall, tensor, model=tiny_model)
    assert str(err.value).startswith(f"pair 1 ({tall[1]}): ")
    assert "reconstruction is 30x26 but its original is 28x28" in str(err.value)
    with pytest.raises(ImageInputError) as err:
        semsim(tensor, tall, model=tiny_model)
    assert str(err.value).startswith(f"pair 1 ({tall[1]}): ")
    assert "reconstruction is 28x28 but its original is 30x26" in str(err.value)


def test_an_unreadable_file_is_an_image_file_error_naming_its_argument_position_and_path(
    files: Files, tmp_path: Path, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    missing = tmp_path / "missing.png"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    tensor = torch.rand(1, 1, 28, 28)
    cases = [
        (lambda: semsim(recs[:2], [origs[0], missing], model=tiny_model), "target (originals)[1]: ", missing),
        (lambda: semsim(broken, origs[0], model=tiny_model), "preds (reconstructions): ", broken),
        (
            lambda: semsim(tensor, missing, model=tiny_model),
            "target (originals): ",
            missing,
        ),  # beside a tensor
        (lambda: semsim([broken], tensor, model=tiny_model), "preds (reconstructions)[0]: ", broken),
    ]
    for call, start, path in cases:
        with pytest.raises(ImageFileError) as err:
            call()
        assert isinstance(err.value, OSError) and isinstance(err.value, SemSimError)
        assert str(err.value).startswith(start) and path.name in str(err.value)


def test_pixels_without_a_defined_meaning_are_an_image_input_error_naming_the_image(
    files: Files, tmp_path: Path, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    see_through = Image.new("RGBA", (28, 28), (0, 0, 0, 0))
    with pytest.raises(ImageInputError) as err:
        semsim([see_through], origs[:1], model=tiny_model)
    assert str(err.value).startswith("preds (reconstructions)[0]: ") and "transparent" in str(err.value)
    alpha_file = tmp_path / "alpha.png"
    see_through.save(alpha_file)
    with pytest.raises(ImageInputError) as err:
        semsim(recs[0], alpha_file, model=tiny_model)
    assert str(err.value).startswith("target (originals): ") and "transparent" in str(err.value)
    floats = Image.fromarray(np.zeros((28, 28), dtype=np.float32), "F")
    with pytest.raises(ImageInputError) as err:
        semsim(torch.rand(1, 1, 28, 28), floats, model=tiny_model)
    assert str(err.value).startswith("target (originals): ") and "float" in str(err.value)


def test_a_list_item_that_is_neither_a_file_nor_a_pil_image_is_refused_by_position(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    with pytest.raises(ImageInputError) as err:
        semsim([recs[0], 3], origs[:2], model=tiny_model)
    message = str(err.value)
    assert message.startswith("preds (reconstructions)[1] is a int; ") and "torch.stack" not in message
    with pytest.raises(ImageInputError) as err:
        semsim(recs[:2], [origs[0], torch.zeros(1, 28, 28)], model=tiny_model)
    message = str(err.value)
    assert message.startswith("target (originals)[1] is a Tensor; ") and "torch.stack" in message
    with pytest.raises(ImageInputError) as err:  # beside a tensor, too
        semsim(torch.rand(2, 1, 28, 28), [origs[0], None], model=tiny_model)
    assert str(err.value).startswith("target (originals)[1] is a NoneType; ")


def test_a_tensor_or_other_value_beside_files_is_checked_first_under_its_own_name(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    with pytest.raises(TypeError, match=r"^target \(originals\) must be a torch.Tensor"):
        semsim(recs[0], 3, model=tiny_model)
    with pytest.raises(InvalidInputError, match=r"^target \(originals\) must have 4 dimensions"):
        semsim(recs[0], torch.rand(1, 28, 28), model=tiny_model)
    with pytest.raises(InvalidInputError, match=r"^preds \(reconstructions\) must have 4 dimensions"):
        semsim(torch.rand(1, 28, 28), origs[0], model=tiny_model)


# ----------------------------------------------------------------------------------- the training-domain check
def test_the_domain_check_sees_the_original_files_as_stored_once_per_shape(
    tmp_path: Path, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    origs = [
        _save(tmp_path / "o0.png", 0, height=30, width=40, mode="RGB"),
        _save(tmp_path / "o1.png", 1),
        _save(tmp_path / "o2.png", 2),
    ]
    recs = [
        _save(tmp_path / "r0.png", 3, height=30, width=40),  # the reconstructions' own shapes are not checked
        _save(tmp_path / "r1.png", 4, mode="RGB"),
        _save(tmp_path / "r2.png", 5, mode="RGB"),
    ]
    semsim(recs, origs, model=tiny_model)
    assert [call.shape for call in domain_calls] == [(1, 1, 28, 28), (1, 3, 30, 40)]
    first, second = (call.embeddings for call in domain_calls)
    assert first is not None and second is None  # the content (embeddings) once, with the first shape
    torch.testing.assert_close(first, _embeddings(tiny_model, origs), atol=1e-5, rtol=0)


def test_the_domain_check_of_large_files_sees_their_stored_size(
    tmp_path: Path, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    semsim(_save(tmp_path / "r.png", 1, *BIG), _save(tmp_path / "o.png", 2, *BIG), model=tiny_model)
    assert [call.shape for call in domain_calls] == [(1, 1, *BIG)]


def test_the_domain_check_of_files_reads_no_content_without_validation_and_is_off_when_asked(
    files: Files, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    origs, recs = files
    semsim(recs, origs, model=tiny_model, validate_args=False)
    assert [(call.shape, call.embeddings) for call in domain_calls] == [((1, 1, 28, 28), None)]
    domain_calls.clear()
    semsim(recs, origs, model=tiny_model, check_domain=False)
    assert domain_calls == []


def test_the_domain_check_beside_a_tensor_sees_the_originals_whichever_side_they_are(
    files: Files, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    origs, recs = files
    colour = torch.rand(3, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    semsim(colour, origs, model=tiny_model)  # greyscale original files
    assert [call.shape for call in domain_calls] == [(3, 1, 28, 28)]
    emb = domain_calls[0].embeddings
    assert emb is not None
    torch.testing.assert_close(emb, _embeddings(tiny_model, origs), atol=1e-5, rtol=0)
    domain_calls.clear()
    semsim(recs, colour, model=tiny_model)  # a colour original tensor
    assert [call.shape for call in domain_calls] == [(3, 3, 28, 28)]
    domain_calls.clear()
    semsim(recs, colour, model=tiny_model, validate_args=False)
    assert [(call.shape, call.embeddings) for call in domain_calls] == [((3, 3, 28, 28), None)]
    domain_calls.clear()
    semsim(recs, colour, model=tiny_model, check_domain=False)
    assert domain_calls == []


# ----------------------------------------------------------------------------------- score_file_pairs
def test_score_file_pairs_scores_each_pair_as_semsim_scores_its_files_in_order(
    tmp_path: Path, tiny_model: SemSimModel
) -> None:
    origs = [
        _save(tmp_path / "o0.png", 0),
        _save(tmp_path / "o1.png", 1, height=30, width=40, mode="RGB"),
        _save(tmp_path / "o2.png", 2),
    ]
    recs = [
        _save(tmp_path / "r0.png", 3),
        _save(tmp_path / "r1.png", 4, height=30, width=40),
        _save(tmp_path / "r2.png", 5),
    ]
    expected = semsim(recs, origs, model=tiny_model, reduction="none").tolist()
    for batch_size in (1, 2, 256):
        scored = score_file_pairs(
            list(zip(origs, recs)), tiny_model, batch_size=batch_size, progress=False, bf16=False
        )
        assert scored.problems == []
        assert [(row.original, row.reconstruction) for row in scored.rows] == [
            (str(o), str(r)) for o, r in zip(origs, recs)
        ]
        assert [row.distance for row in scored.rows] == pytest.approx(expected, abs=1e-5)
        assert [row.p_recognised for row in scored.rows] == [None] * 3


def test_score_file_pairs_gives_the_calibrated_probability_when_asked(
    files: Files, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    scored = score_file_pairs(
        list(zip(origs, recs)), tiny_model, probability=True, progress=False, bf16=False
    )
    distances = torch.tensor([row.distance for row in scored.rows])
    expected = tiny_model.probability(distances).tolist()
    assert [row.p_recognised for row in scored.rows] == pytest.approx(expected, abs=1e-6)


def test_score_file_pairs_refuses_a_batch_size_below_one_and_probability_without_calibration(
    files: Files, tiny_model: SemSimModel, random_model: SemSimModel
) -> None:
    pairs = list(zip(*files))
    with pytest.raises(InvalidInputError, match="batch_size"):
        score_file_pairs(pairs, tiny_model, batch_size=0, progress=False)
    with pytest.raises(InvalidInputError, match="calibrat"):
        score_file_pairs(pairs, random_model, probability=True, progress=False)
    assert len(score_file_pairs(pairs, random_model, progress=False).rows) == 3


def test_score_file_pairs_lists_unreadable_and_mismatched_pairs_and_scores_the_rest_of_their_batch(
    files: Files, tmp_path: Path, tiny_model: SemSimModel
) -> None:
    origs, recs = files
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    wide = _save(tmp_path / "wide.png", 9, height=28, width=30)
    pairs = [(broken, recs[0]), (origs[1], recs[1]), (origs[2], wide), (origs[0], recs[2])]
    scored = score_file_pairs(pairs, tiny_model, batch_size=4, progress=False, bf16=False)
    assert [row.reconstruction for row in scored.rows] == [str(recs[1]), str(recs[2])]
    expected = _pair_scores(tiny_model, [recs[1], recs[2]], [origs[1], origs[0]]).tolist()
    assert [row.distance for row in scored.rows] == pytest.approx(expected, abs=1e-5)
    assert len(scored.problems) == 2
    assert "broken.png" in scored.problems[0]
    assert scored.problems[1].startswith("size mismatch")
    assert str(origs[2]) in scored.problems[1] and str(wide) in scored.problems[1]


def _domain_pairs(tmp_path: Path) -> list[tuple[Path, Path]]:
    """Three pairs: a colour 30x40 original, then two greyscale 28x28 ones (reconstructions greyscale, same sizes)."""
    colour = _save(tmp_path / "o0.png", 0, height=30, width=40, mode="RGB")
    return [
        (colour, _save(tmp_path / "r0.png", 3, height=30, width=40)),
        (_save(tmp_path / "o1.png", 1), _save(tmp_path / "r1.png", 4)),
        (_save(tmp_path / "o2.png", 2), _save(tmp_path / "r2.png", 5)),
    ]


def test_score_file_pairs_checks_each_batchs_shapes_and_the_first_batchs_content(
    tmp_path: Path, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    tiny_model.config.training_domain = {"description": "a recorded domain"}
    pairs = _domain_pairs(tmp_path)
    score_file_pairs(pairs, tiny_model, batch_size=2, progress=False, bf16=False)
    assert [(call.shape, call.embeddings is None) for call in domain_calls] == [
        ((1, 1, 28, 28), True),  # batch 1: each stored shape, in order
        ((1, 3, 30, 40), True),
        ((1, 1, 28, 28), False),  # batch 1: the content, once (shown with the smallest shape)
        ((1, 1, 28, 28), True),  # batch 2: shapes only
    ]
    emb = domain_calls[2].embeddings
    assert emb is not None
    torch.testing.assert_close(emb, _embeddings(tiny_model, [o for o, _ in pairs[:2]]), atol=1e-5, rtol=0)


def test_score_file_pairs_checks_the_content_of_the_first_batch_it_could_read(
    tmp_path: Path, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    tiny_model.config.training_domain = {"description": "a recorded domain"}
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    pairs = [(broken, broken), *_domain_pairs(tmp_path)[1:]]
    scored = score_file_pairs(pairs, tiny_model, batch_size=1, progress=False, bf16=False)
    assert len(scored.rows) == 2
    assert [(call.shape, call.embeddings is None) for call in domain_calls] == [
        ((1, 1, 28, 28), True),
        ((1, 1, 28, 28), False),
        ((1, 1, 28, 28), True),
    ]


def test_score_file_pairs_checks_no_content_for_a_model_without_a_domain_and_nothing_when_asked(
    tmp_path: Path, tiny_model: SemSimModel, domain_calls: list[DomainCall]
) -> None:
    pairs = _domain_pairs(tmp_path)
    assert not getattr(tiny_model.config, "training_domain", None)
    score_file_pairs(pairs, tiny_model, batch_size=2, progress=False, bf16=False)
    assert [(call.shape, call.embeddings is None) for call in domain_calls] == [
        ((1, 1, 28, 28), True),
        ((1, 3, 30, 40), True),
        ((1, 1, 28, 28), True),
    ]
    domain_calls.clear()
    tiny_model.config.training_domain = {"description": "a recorded domain"}
    score_file_pairs(pairs, tiny_model, batch_size=2, progress=False, check_domain=False, bf16=False)
    assert domain_calls == []
