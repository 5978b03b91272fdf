"""The functional core of SemSim, in torchmetrics style.

``_semsim_update`` turns a batch of (reconstruction, original) pairs into per-pair scores,
``_semsim_compute`` reduces them, and ``semsim`` is the public one-call function. The metric, the
loss and the CLI are thin wrappers around these functions.

SemSim is a **distance**: 0 = the reconstruction is semantically identical to its original (most
leakage); larger = less leakage; range ``[0, 2]``. Lower is "worse" for privacy.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

import torch
from torch import Tensor

from .domain import check_domain as _check_domain
from .errors import ImageFileError, ImageInputError, InvalidInputError, InvalidInputTypeError
from .hub import DEFAULT_MODEL_ID, DEFAULT_REVISION, DefaultModelMissingError, bundled_model_path
from .image_io import (
    ModelSizedImage,
    decode_image,
    load_image,
    load_image_for_model,
    pil_image_for_model,
    stack_images,
)
from .models import SemSimModel
from .models.blocks import fold_batchnorm
from .models.modeling_semsim import embed_pair, embedding_distance  # the model's own: one implementation
from .preprocessing import (
    check_data_range,
    check_image_pair,
    check_images,
    stack_at_model_size,
    to_model_input_for,
)

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = [
    "FilePairScores",
    "ImageBatch",
    "ImageFileError",
    "ImageInputError",
    "ModelLike",
    "Output",
    "PairScore",
    "Reduction",
    "score_file_pairs",
    "semsim",
]

Reduction = Literal["mean", "sum", "none"]
Output = Literal["distance", "probability"]
ModelLike = SemSimModel | str | None
#: what ``semsim``, ``SemSim.update`` and ``SemSimLoss`` take as images: a tensor ``(N, C, H, W)``; one image file
#: (``str`` / ``os.PathLike``) or PIL image; or a list (or tuple) of files / PIL images, which is a batch
ImageBatch: TypeAlias = (
    "Tensor | str | os.PathLike[str] | PILImage | Sequence[str | os.PathLike[str] | PILImage]"
)


_REDUCTIONS = ("mean", "sum", "none")
_OUTPUTS = ("distance", "probability")


def check_reduction(reduction: str) -> str:
    """Validate a reduction name."""
    if reduction not in _REDUCTIONS:
        raise InvalidInputError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    return reduction


def check_output(output: str, model: SemSimModel) -> str:
    """Validate an output kind against what the model provides."""
    if output not in _OUTPUTS:
        raise InvalidInputError(f"output must be one of {_OUTPUTS}, got {output!r}.")
    if output == "probability" and not model.config.calibration:
        raise InvalidInputError(
            "output='probability' needs a calibrated model (config.calibration), and this one has none. "
            "Use output='distance' or a model trained with `semsim train` (which fits a calibration)."
        )
    return output


def get_model(
    model: ModelLike, revision: str | None = None, device: torch.device | str | None = None
) -> SemSimModel:
    """Return a frozen, eval-mode ``SemSimModel`` for ``model`` (loaded and cached once).

    ``None`` means the default model (bundled with the package); a string is a Hub id or a folder. Cached
    models are shared by every caller in the process and never moved: ``device`` selects (and caches) a
    copy on that device instead. A ``SemSimModel`` passed in is returned as it is.

    Raises:
        InvalidInputTypeError: ``model`` of another type.
        InvalidInputError: a ``device`` that is not a torch device, or not available here.
        ModelNotFoundError, InvalidModelError, DefaultModelMissingError: a model that cannot be found or loaded.
    """
    if isinstance(model, SemSimModel) or _compiled_semsim(model):
        return model  # type: ignore[return-value]
    if model is None:
        model = DEFAULT_MODEL_ID
    if not isinstance(model, str):
        raise InvalidInputTypeError(
            f"model must be a SemSimModel (plain or torch.compile'd), a Hub id or a local folder, got "
            f"{type(model).__name__}."
        )
    if device is not None:
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise InvalidInputError(
                f"device {device!r} is not a torch device such as 'cpu' or 'cuda:0' ({err})."
            ) from err
    net = load_model_cached(model, revision)
    if device is None or device == next(net.parameters()).device:
        return net
    try:
        return _on_device(net, str(device))
    except (RuntimeError, AssertionError) as err:  # e.g. cuda asked for on a machine without it
        raise InvalidInputError(f"cannot place the SemSim model on {device}: {err}") from err


@functools.lru_cache(maxsize=16)
def _on_device(net: SemSimModel, device: str) -> SemSimModel:
    import copy

    if torch.device(device).type == "meta":
        raise InvalidInputError(
            "the images are on the meta device, which holds no values to score; pass real tensors."
        )
    return freeze(copy.deepcopy(net).to(device))


@functools.lru_cache(maxsize=8)
def _load_cached(name_or_path: str, revision: str | None) -> SemSimModel:
    return freeze(SemSimModel.from_pretrained(name_or_path, revision=revision))


def load_model_cached(name_or_path: str, revision: str | None = None) -> SemSimModel:
    """Load (once per process) a frozen eval-mode SemSim model from a Hub id or folder.

    The default id gives a clear error when this install has neither bundled nor downloadable weights.
    """
    if (
        name_or_path == DEFAULT_MODEL_ID
        and bundled_model_path() is None
        and revision in (None, DEFAULT_REVISION)
    ):
        try:
            return _load_cached(name_or_path, revision)
        except OSError as err:
            raise DefaultModelMissingError(
                "This installation of semsim-metric has no bundled default SemSim weights and they could not "
                f"be downloaded ({err}). Pass model='<folder or Hub id>' with trained weights, or train "
                "one with `semsim train`. SemSim never scores with random weights."
            ) from err
    path = Path(name_or_path).expanduser()
    return _load_cached(str(path.resolve()) if path.is_dir() else name_or_path, revision)


def freeze(model: SemSimModel) -> SemSimModel:
    """Put ``model`` in eval mode and stop gradients to its weights (inputs still get gradients)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _compiled_semsim(model: object) -> bool:
    """True for ``torch.compile(semsim_model)`` (an ``OptimizedModule`` around a ``SemSimModel``)."""
    return isinstance(getattr(model, "_orig_mod", None), SemSimModel) and isinstance(model, torch.nn.Module)


def frozen_copy(
    model: ModelLike, revision: str | None = None, *, compile: bool | dict = False
) -> SemSimModel:
    """A frozen eval-mode copy of ``model`` for a metric or loss (the caller's model is never modified).

    ``compile=True`` (or a dict of ``torch.compile`` options) compiles the copy's forward pass, which every
    score goes through; a ``torch.compile``'d model passed in is copied and compiled the same way.
    """
    import copy

    net = get_model(model, revision)
    if _compiled_semsim(net):
        compile = compile or True
        net = net._orig_mod  # type: ignore[union-attr]
    net = freeze(copy.deepcopy(net))
    if compile:
        net.compile(**(compile if isinstance(compile, dict) else {}))
    return net


#: most images per forward pass in ``scoring_copy``: on this project's CPU under bf16, batches of 274 and 512 images
#: ran 20-40% faster in chunks of 160 than whole with one thread, and -6% to +37% with two (the best or near it among
#: none, 96, 160 and 256: ``benchmarks/bench_speed.py --chunk-sizes``)
SCORING_CHUNK_SIZE = 160


def scoring_copy(model: SemSimModel) -> SemSimModel:
    """``model`` laid out for fast scoring on a CPU: a frozen copy with its BatchNorms folded into the convolutions
    before them (``models.blocks.fold_batchnorm``: one pass over each activation less), channels-last (NHWC) weights,
    which oneDNN's convolutions run faster than NCHW ones, and batches embedded ``SCORING_CHUNK_SIZE`` images at a
    time at most (``SemSimModel.embed_chunk_size``: activations that stay in cache); together about 1.5x in float32
    (``benchmarks/bench_speed.py``; distances equal up to float rounding, about 1e-7). The caller's model (often the
    shared cached one) is not changed; a model on another device, or a ``torch.compile``'d one, is returned as it
    is."""
    import copy

    if _compiled_semsim(model) or next(model.parameters()).device.type != "cpu":
        return model
    fast = copy.deepcopy(model)
    fold_batchnorm(fast)
    fast.embed_chunk_size = SCORING_CHUNK_SIZE
    return freeze(fast).to(memory_format=torch.channels_last)


def _model_dtype(model: SemSimModel) -> torch.dtype:
    return next(model.parameters()).dtype


class _Decoded(NamedTuple):
    """One image read from a file or a PIL image: uint8 pixels ``(C, h, w)``, the stored shape, and its name."""

    pixels: Tensor
    shape: tuple[int, int, int]
    name: str


def _is_pil(value: object) -> bool:
    if not type(value).__module__.startswith("PIL"):
        return False
    from PIL import Image

    return isinstance(value, Image.Image)


def _is_file(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _is_image_value(value: object) -> bool:
    """A file or PIL image, or a non-empty list/tuple holding at least one (its other items are judged later)."""
    if _is_file(value) or _is_pil(value):
        return True
    return isinstance(value, (list, tuple)) and any(_is_file(v) or _is_pil(v) for v in value)


def _decode_images(value: Any, name: str, image_size: int | None) -> list[_Decoded]:
    """Decode one file / PIL image, or a list of them, by the package's one rule set (``image_io``).

    With ``image_size``, files are reduced while read (``load_image_for_model``) and PIL images to the same size
    (``pil_image_for_model``); without, read whole.

    Raises:
        ImageInputError: a list item that is neither a file nor a PIL image; pixels without a defined meaning
            (transparency, float pixels).
        ImageFileError: a file that cannot be read or decoded.
    """
    single = not isinstance(value, (list, tuple))
    out = []
    for i, item in enumerate([value] if single else value):
        label = name if single else f"{name}[{i}]"
        if not (_is_file(item) or _is_pil(item)):
            hint = (
                " Pass one kind per argument: a tensor batch (torch.stack the images) or a list of files / PIL "
                "images."
                if isinstance(item, Tensor)
                else ""
            )
            raise ImageInputError(
                f"{label} is a {type(item).__name__}; a list of images must hold image file paths "
                f"(str or os.PathLike) or PIL images.{hint}"
            )
        try:
            if _is_pil(item):
                if image_size is None:
                    pixels = decode_image(item)
                    read = ModelSizedImage(pixels, tuple(pixels.shape))
                else:
                    read = pil_image_for_model(item, image_size)
                out.append(_Decoded(read.pixels, read.shape, f"{label} (a PIL image)"))
            elif image_size is None:
                pixels = load_image(item)
                out.append(_Decoded(pixels, tuple(pixels.shape), str(item)))
            else:
                read = load_image_for_model(item, image_size)
                out.append(_Decoded(read.pixels, read.shape, str(item)))
        except OSError as err:
            raise ImageFileError(f"{label}: {err}") from err
        except ValueError as err:  # transparency, float pixels: no defined meaning
            raise ImageInputError(f"{label}: {err}") from err
    return out


def _same_count(n_preds: int, n_target: int) -> None:
    if n_preds != n_target:
        raise ImageInputError(
            f"preds and target must hold the same number of images, got {n_preds} reconstructions and {n_target} "
            "originals. Pair each reconstruction with its original."
        )


def _same_sizes(
    preds: Sequence[tuple[int, ...]], target: Sequence[tuple[int, ...]], names: Sequence[str]
) -> None:
    for i, (p, t) in enumerate(zip(preds, target)):
        if tuple(p[-2:]) != tuple(t[-2:]):
            raise ImageInputError(
                f"pair {i} ({names[i]}): the reconstruction is {p[-2]}x{p[-1]} but its original is {t[-2]}x{t[-1]}; "
                "preds and target must have the same height and width. Resize the reconstructions to the originals' "
                "size first."
            )


def _semsim_update_images(
    preds: Any,
    target: Any,
    model: SemSimModel,
    *,
    data_range: float,
    output: Output,
    validate_args: bool,
    check_domain: bool,
) -> Tensor:
    """``_semsim_update`` when ``preds`` or ``target`` are files or PIL images (one, or a list = a batch).

    Both decoded: each image is reduced while read and brought to the model's size as ``semsim score`` does
    (``load_image_for_model``, then the gate's ``stack_at_model_size``), so the scores are the command's; pairs
    must have the same stored height and width, and the domain check sees the images as stored. One side a tensor:
    the images are read whole, must have the tensor's height and width, and are put on its scale (uint8 for
    ``data_range=255``, else floats in ``[0, data_range]``) and device. Either way the input gate then runs as for
    any tensors.
    """
    size = model.config.image_size
    device = next(model.parameters()).device
    if _is_image_value(preds) and _is_image_value(target):
        rec = _decode_images(preds, "preds (reconstructions)", size)
        ori = _decode_images(target, "target (originals)", size)
        _same_count(len(rec), len(ori))
        _same_sizes(
            [r.shape for r in rec], [o.shape for o in ori], [f"{r.name}, {o.name}" for r, o in zip(rec, ori)]
        )
        x = stack_at_model_size([r.pixels for r in rec], data_range=255, image_size=size).to(device)
        y = stack_at_model_size([o.pixels for o in ori], data_range=255, image_size=size).to(device)
        return _semsim_update(
            x,
            y,
            model,
            data_range=1.0,
            output=output,
            validate_args=validate_args,
            check_domain=check_domain,
            domain_shapes=[o.shape for o in ori],
        )
    decoded_preds = _is_image_value(preds)
    tensor, tensor_name = (
        (target, "target (originals)") if decoded_preds else (preds, "preds (reconstructions)")
    )
    # type, shape, dtype first
    check_images(tensor, name=tensor_name, data_range=data_range, validate_args=False)
    images = _decode_images(
        preds if decoded_preds else target,
        "preds (reconstructions)" if decoded_preds else "target (originals)",
        None,
    )
    _same_count(*((len(images), tensor.shape[0]) if decoded_preds else (tensor.shape[0], len(images))))
    shapes = [tuple(tensor.shape[1:])] * len(images)
    names = [img.name for img in images]
    _same_sizes(
        *(([i.shape for i in images], shapes) if decoded_preds else (shapes, [i.shape for i in images])),
        names,
    )
    batch = stack_images([img.pixels for img in images])
    # the tensor's scale: [0, data_range] in its floating dtype (float32 for uint8 tensors)
    if data_range != 255:
        dtype = tensor.dtype if tensor.is_floating_point() else torch.float32
        batch = batch.to(dtype) / 255 * data_range
    batch = batch.to(tensor.device)
    x, y = (batch, tensor) if decoded_preds else (tensor, batch)
    return _semsim_update(
        x,
        y,
        model,
        data_range=data_range,
        output=output,
        validate_args=validate_args,
        check_domain=check_domain,
    )


def _semsim_update(
    preds: ImageBatch,
    target: ImageBatch,
    model: SemSimModel,
    *,
    data_range: float = 1.0,
    output: Output = "distance",
    validate_args: bool = True,
    check_domain: bool = True,
    domain_shapes: Sequence[tuple[int, int, int]] | None = None,
    dedup_target: bool = False,
) -> Tensor:
    """Per-pair scores ``(N,)`` for reconstructions ``preds`` and originals ``target``.

    Inputs go through the input gate (validation, resize, normalisation) and are moved to the
    model's device only if the model lives elsewhere - never the other way round. With ``check_domain``
    the originals are compared with the model's training domain (``semsim_metric.domain``): channels and
    size always, content (their embeddings) only with ``validate_args``, which already reads every value.
    ``domain_shapes`` (``(C, H, W)`` of the originals as stored) replaces ``target``'s own shape in that check,
    for originals that were reduced while read. Files and PIL images are decoded first
    (``_semsim_update_images``). With ``dedup_target`` each distinct original (equal model input) is embedded
    once and its embedding shared by its pairs (``embed_batch_dedup``): the same scores, fewer forward passes when
    originals repeat across reconstructions (scoring loops, evaluation; not for training, where the batch is
    the unit of the gradient).

    Raises:
        InvalidInputError, InvalidInputTypeError: images the input gate refuses, or on another device than the model.
    """
    files_or_pil = not (isinstance(preds, Tensor) and isinstance(target, Tensor))
    if files_or_pil and (_is_image_value(preds) or _is_image_value(target)):
        return _semsim_update_images(
            preds,
            target,
            model,
            data_range=data_range,
            output=output,
            validate_args=validate_args,
            check_domain=check_domain,
        )
    device = next(model.parameters()).device
    if isinstance(preds, Tensor) and preds.device != device:
        raise InvalidInputError(
            f"The images are on {preds.device} but the SemSim network is on {device}. Move the metric or "
            f"model with .to({str(preds.device)!r}) (or the images with .to({str(device)!r}))."
        )
    check_image_pair(preds, target, data_range=data_range, validate_args=validate_args)
    cfg = model.config
    dtype = _model_dtype(model)
    x_preds = to_model_input_for(cfg, preds, data_range=data_range, dtype=dtype)
    x_target = to_model_input_for(cfg, target, data_range=data_range, dtype=dtype)
    if dedup_target:
        emb_preds, emb_target = embed_batch_dedup(model, x_preds, x_target)
    else:
        emb_preds, emb_target = embed_pair(model, x_preds, x_target)
    distance = embedding_distance(emb_preds, emb_target)
    if check_domain:  # the content check reads values (a GPU sync), so validate_args=False skips it
        emb = emb_target if validate_args else None
        if domain_shapes is None:
            _check_domain(cfg, target, emb)
        else:  # the originals as stored (files reduced while read): their channels and sizes, once each
            for i, shape in enumerate(sorted(set(domain_shapes))):
                _check_domain(cfg, torch.empty((1, *shape), device="meta"), emb if i == 0 else None)
    if output == "probability":
        # the calibration runs in float32 at least (bf16/fp16 distances), in float64 for a float64 model
        return model.probability(distance if distance.dtype == torch.float64 else distance.float())
    return distance


def embed_batch_dedup(model: SemSimModel, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Embeddings of model-ready ``x`` and ``y`` (same shape) in one call of ``model``, each distinct image of ``y``
    embedded once: the rows of ``y`` are grouped by exact equality (``torch.unique`` over the flattened images) and
    the distinct ones go through the network after ``x``; their embeddings are shared by the rows that repeat them.

    Exact: an image's embedding does not depend on the rest of the batch (eval mode), so the scores equal
    ``embed_pair``'s up to the float rounding of a different batch size.

    Raises:
        InvalidInputError: ``x`` and ``y`` of different shapes.
    """
    if x.shape != y.shape:
        raise InvalidInputError(
            f"SemSim needs two batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    distinct, inverse = torch.unique(y.reshape(y.shape[0], -1), dim=0, return_inverse=True)
    if distinct.shape[0] == y.shape[0]:
        return embed_pair(model, x, y)
    emb = model(torch.cat([x, distinct.reshape(-1, *y.shape[1:])], dim=0)).embeddings
    return emb[: x.shape[0]], emb[x.shape[0] :][inverse]


def _semsim_compute(
    scores: Tensor, count: Tensor | int | None = None, reduction: Reduction = "mean"
) -> Tensor:
    """Reduce scores: ``scores`` is a sum with ``count`` for mean/sum states, or all values for 'none'."""
    if reduction == "none":
        return scores
    if reduction == "sum":
        return scores.sum() if count is None else scores
    if count is None:
        return scores.mean()
    return scores / count


def semsim(
    preds: ImageBatch,
    target: ImageBatch,
    *,
    model: ModelLike = None,
    revision: str | None = None,
    data_range: float = 1.0,
    reduction: Reduction = "mean",
    output: Output = "distance",
    validate_args: bool = True,
    check_domain: bool = True,
) -> Tensor:
    """SemSim between reconstructions and their originals.

    SemSim is a **distance**: 0 = semantically identical (the attack leaked everything a person can
    recognise), larger = less leakage, range ``[0, 2]``; lower = better reconstruction. With
    ``output="probability"`` it returns the calibrated probability that the annotators the model was
    calibrated on (``model.config.calibration["fitted_on"]``; model judges for the default) would
    recognise the reconstruction instead (higher = more leakage = better reconstruction), range ``[0, 1]``.

    Scores are computed in the model's dtype: a float64 model (``model.double()``) keeps float64 from the
    pixels to the score, so ``torch.autograd.gradcheck`` holds; float32 scores are those of
    ``model.distance`` bit for bit.

    Images may also be given as pyiqa takes them: an image file (``str`` or ``os.PathLike``) or a PIL image, or a
    list (or tuple) of them, which is a batch. They are decoded by the package's one rule set
    (``semsim_metric.image_io``: 8-bit, EXIF orientation applied, transparency refused, large files reduced while
    read) and then pass the same input gate as tensors. When both arguments are files / PIL images each image is
    brought to the model's input size on its own, exactly as ``semsim score`` does (the scores are the command's);
    their pixels are 8-bit, so ``data_range`` does not apply to them. When one argument is a tensor, the images of
    the other are put on its scale (``data_range``) and device and must have its height and width.

    Args:
        preds: reconstructions ``(N, C, H, W)``, ``C`` in {1, 3}, values in ``[0, data_range]``; or image files /
            PIL images (one, or a list).
        target: the originals: as many as ``preds`` and the same height and width. The channel counts may
            differ (a greyscale reconstruction of a colour original): greyscale is repeated to RGB first.
        model: a ``SemSimModel``, a Hub id or a local folder; ``None`` = the
            bundled default model. Strings are loaded once and cached.
        revision: Hub revision when ``model`` is a Hub id.
        data_range: maximum pixel value (1.0 for float images, 255 for uint8).
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (one score per pair).
        output: ``"distance"`` (default) or ``"probability"`` (needs a calibrated model).
        validate_args: scan pixel values for range and NaN/Inf (synchronises the GPU).
        check_domain: warn once (``OutOfDomainWarning``) when the originals fall
            far outside what the model was trained on.

    Raises:
        TypeError: images that are neither tensors nor files / PIL images, of an unsupported dtype (or uint8
            without ``data_range=255``), or a ``model`` that is not a ``SemSimModel``, a Hub id or a folder.
        ImageInputError: (a ``ValueError``) a list that holds something else than files or PIL images, files whose
            count or size does not match their partners', or pixels without a defined meaning (transparency).
        ImageFileError: (an ``OSError``) an image file that cannot be read or decoded (the message names it).
        ValueError: an unknown ``reduction`` or ``output``, ``output="probability"`` with an uncalibrated
            model, a model in training mode, or images the gate refuses (shape, channels, range, NaN/Inf,
            devices).
        OSError: the model cannot be found or read (e.g. ``DefaultModelMissingError``, ``ModelNotFoundError``).

    Examples:
        >>> import torch
        >>> from semsim_metric import SemSimConfig, SemSimModel, semsim
        >>> model = SemSimModel(SemSimConfig(base_width=4)).eval()
        >>> x = torch.rand(3, 1, 28, 28)
        >>> semsim(x, x, model=model).item()
        0.0
        >>> semsim(x, torch.rand(3, 1, 28, 28), model=model, reduction="none").shape
        torch.Size([3])

        Image files and PIL images, as pyiqa takes them (a list is a batch):

        >>> import tempfile
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> Image.new("L", (28, 28), 200).save(f"{folder}/original.png")
        >>> Image.new("L", (28, 28), 190).save(f"{folder}/reconstruction.png")
        >>> d = semsim(f"{folder}/reconstruction.png", f"{folder}/original.png", model=model)
        >>> 0 <= d.item() <= 2
        True
        >>> pil = Image.open(f"{folder}/original.png")
        >>> semsim([pil, pil], [f"{folder}/original.png"] * 2, model=model, reduction="none").tolist()
        [0.0, 0.0]
    """
    check_reduction(reduction)
    data_range = check_data_range(data_range)
    # a cached model is shared: a copy on the inputs' device is used, the shared one never moves
    on = preds if isinstance(preds, Tensor) else target if isinstance(target, Tensor) else None
    net = get_model(model, revision, device=on.device if on is not None else None)
    check_output(output, net)
    if net.training:
        raise InvalidInputError("The SemSim model is in training mode; call model.eval() before scoring.")
    scores = _semsim_update(
        preds,
        target,
        net,
        data_range=data_range,
        output=output,
        validate_args=validate_args,
        check_domain=check_domain,
    )
    return _semsim_compute(scores, reduction=reduction)


class PairScore(NamedTuple):
    """The score of one (original, reconstruction) pair of files."""

    original: str
    reconstruction: str
    #: SemSim distance in ``[0, 2]`` (0 = semantically identical = most leakage)
    distance: float
    #: the calibrated probability that the reconstruction is recognised (``None`` unless asked for)
    p_recognised: float | None


class FilePairScores(NamedTuple):
    """What ``score_file_pairs`` returns: the scored pairs in order, and one line for each pair it could not score."""

    rows: list[PairScore]
    problems: list[str]


def _read_file_pairs(
    chunk: Sequence[tuple[Path, Path]], size: int
) -> tuple[list[Tensor], list[Tensor], list[tuple[Path, Path]], set[tuple[int, ...]], list[str]]:
    """One batch of file pairs, each file reduced while read and brought to the model's size at once; the pairs
    that cannot be read (or differ in size) become problems."""
    origs, recs, kept, shapes, problems = [], [], [], set(), []
    for orig_path, rec_path in chunk:
        try:  # each file reduced while read, then at the model's size at once: no full-size batch
            o, r = load_image_for_model(orig_path, size), load_image_for_model(rec_path, size)
        except (OSError, ValueError) as err:  # unreadable, too large, or pixels without a meaning
            problems.append(str(err))
            continue
        if o.shape[1:] != r.shape[1:]:
            problems.append(f"size mismatch: {orig_path} is {o.shape[1:]}, {rec_path} is {r.shape[1:]}")
            continue
        origs.append(stack_at_model_size([o.pixels], data_range=255, image_size=size))
        recs.append(stack_at_model_size([r.pixels], data_range=255, image_size=size))
        shapes.add(o.shape)
        kept.append((orig_path, rec_path))
    return origs, recs, kept, shapes, problems


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag of /proc/cpuinfo): where
    bf16 autocast is about twice as fast as float32 for SemSim (``benchmarks/bench_speed.py``). False elsewhere,
    where PyTorch emulates bf16 and autocast is slower than float32."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def use_bf16(model: SemSimModel, bf16: bool | None) -> bool:
    """Whether scoring with ``model`` runs under bf16 autocast: ``bf16`` when given; ``None`` (auto) = a float32
    model on a CPU with native bf16 (``cpu_has_fast_bf16``). Distances move by at most 0.01 (measured 0.0046 on the
    1,550 test pairs of semsim-judged-v3, ROC-AUC unchanged: ``benchmarks/bench_tolerance.py``), see
    docs/benchmarks.md."""
    if bf16 is not None:
        return bool(bf16)
    return (
        next(model.parameters()).device.type == "cpu"
        and _model_dtype(model) == torch.float32
        and cpu_has_fast_bf16()
    )


def score_file_pairs(
    pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
    model: SemSimModel,
    *,
    batch_size: int = 256,
    probability: bool = False,
    check_domain: bool = True,
    progress: bool = True,
    description: str = "scoring",
    bf16: bool | None = None,
) -> FilePairScores:
    """Score (original, reconstruction) image files in batches, whatever their number or size.

    Each file is reduced while it is read and brought to the model's input size at once
    (``image_io.load_image_for_model``, then the input gate's ``stack_at_model_size``), so memory holds one
    decoded file and a batch of model-sized images. A pair that cannot be read, or whose files differ in size,
    is listed in ``problems`` and the others are scored. With ``check_domain`` the channels and sizes of the files
    as stored are compared with the model's training domain, and the first batch's content too
    (``OutOfDomainWarning``).

    Args:
        pairs: (original, reconstruction) file paths (``pairing.pair_folders`` pairs two folders).
        model: a loaded ``SemSimModel`` (``get_model``); the images go to its device.
        batch_size: pairs per forward pass.
        probability: also give each pair's ``p_recognised`` (the model must be calibrated).
        check_domain: warn when the originals fall outside what the model was trained on.
        progress: show a progress bar (or, in a piped log, progress lines) named ``description``.
        description: the progress bar's name.
        bf16: score under bf16 autocast (twice as fast on CPUs with native bf16; distances within 0.01 of
            float32); ``None`` (default) = on for a float32 model on such a CPU (``use_bf16``), ``False`` = exact
            float32. Each distinct original of a batch is embedded once either way.

    Returns:
        ``FilePairScores``: ``rows`` (one ``PairScore`` per scored pair, in order) and ``problems``.

    Raises:
        ValueError: ``batch_size`` below 1, or ``probability`` for a model without a calibration.
    """
    from ._progress import Progress

    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be at least 1, got {batch_size}.")
    if probability and model.config.calibration_curve is None:
        raise InvalidInputError("probability=True needs a calibrated model; this one has no calibration.")
    cfg, size = model.config, model.config.image_size
    device = next(model.parameters()).device
    rows: list[PairScore] = []
    problems: list[str] = []
    content_checked = not check_domain or not getattr(cfg, "training_domain", None)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16(model, bf16))
    fast = scoring_copy(model)
    with torch.inference_mode(), Progress(len(pairs), description, unit="pair", progress=progress) as bar:
        for start in range(0, len(pairs), batch_size):
            chunk = [(Path(o), Path(r)) for o, r in pairs[start : start + batch_size]]
            origs, recs, kept, shapes, unread = _read_file_pairs(chunk, size)
            problems += unread
            bar.update(len(chunk))
            if not kept:
                continue
            target, preds = torch.cat(origs).to(device), torch.cat(recs).to(device)
            if check_domain:  # channels and size of the files themselves, not of the model-sized copies
                for shape in sorted(shapes):
                    _check_domain(cfg, torch.empty((1, *shape), device="meta"))
            # how the originals' embeddings compare with the training ones: first batch
            if not content_checked:
                emb = model.embed(to_model_input_for(cfg, target, data_range=1.0, dtype=_model_dtype(model)))
                _check_domain(cfg, torch.empty((1, *min(shapes)), device="meta"), emb)
                content_checked = True
            with autocast:
                dist = (
                    _semsim_update(preds, target, fast, data_range=1.0, check_domain=False, dedup_target=True)
                    .float()
                    .cpu()
                )
            prob = model.probability(dist).tolist() if probability else [None] * len(kept)
            rows += [
                PairScore(str(o_p), str(r_p), d, p) for (o_p, r_p), d, p in zip(kept, dist.tolist(), prob)
            ]
    return FilePairScores(rows, problems)
