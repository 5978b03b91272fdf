"""The functional core of SemSim, in torchmetrics style.

``_semsim_update`` turns a batch of (reconstruction, original) pairs into per-pair scores,
``_semsim_compute`` reduces them, and ``semsim`` is the public one-call function. The metric, the
loss and the CLI are thin wrappers around these functions.

SemSim is a **distance**: 0 = the reconstruction is semantically identical to its original (most
leakage); larger = less leakage; range ``[0, 2]``. Lower is "worse" for privacy.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from .domain import check_domain as _check_domain
from .hub import DEFAULT_MODEL_ID, DEFAULT_REVISION, DefaultModelMissingError, bundled_model_path
from .models import SemSimModel
from .models.modeling_semsim import embed_pair
from .preprocessing import check_data_range, check_image_pair, to_model_input

__all__ = ["semsim", "ModelLike", "Reduction", "Output"]

Reduction = Literal["mean", "sum", "none"]
Output = Literal["distance", "probability"]
ModelLike = SemSimModel | str | None

_REDUCTIONS = ("mean", "sum", "none")
_OUTPUTS = ("distance", "probability")


def check_reduction(reduction: str) -> str:
    """Validate a reduction name."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}.")
    return reduction


def check_output(output: str, model: SemSimModel) -> str:
    """Validate an output kind against what the model provides."""
    if output not in _OUTPUTS:
        raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}.")
    if output == "probability" and not model.config.calibration:
        raise ValueError(
            "output='probability' needs a calibrated model (config.calibration), and this one has none. "
            "Use output='distance' or a model trained with `semsim train` (which fits a calibration)."
        )
    return output


def get_model(model: ModelLike, revision: str | None = None, device: torch.device | str | None = None) -> SemSimModel:
    """Return a frozen, eval-mode ``SemSimModel`` for ``model`` (loaded and cached once).

    ``None`` means the default model (bundled with the package); a string is a Hub id or a folder. Cached
    models are shared by every caller in the process and never moved: ``device`` selects (and caches) a
    copy on that device instead. A ``SemSimModel`` passed in is returned as it is.
    """
    if isinstance(model, SemSimModel) or _compiled_semsim(model):
        return model  # type: ignore[return-value]
    if model is None:
        model = DEFAULT_MODEL_ID
    if not isinstance(model, str):
        raise TypeError(
            f"model must be a SemSimModel (plain or torch.compile'd), a Hub id or a local folder, got "
            f"{type(model).__name__}."
        )
    net = load_model_cached(model, revision)
    if device is None or torch.device(device) == next(net.parameters()).device:
        return net
    return _on_device(net, str(torch.device(device)))


@functools.lru_cache(maxsize=16)
def _on_device(net: SemSimModel, device: str) -> SemSimModel:
    import copy

    if torch.device(device).type == "meta":
        raise ValueError("the images are on the meta device, which holds no values to score; pass real tensors.")
    return freeze(copy.deepcopy(net).to(device))


@functools.lru_cache(maxsize=8)
def _load_cached(name_or_path: str, revision: str | None) -> SemSimModel:
    return freeze(SemSimModel.from_pretrained(name_or_path, revision=revision))


def load_model_cached(name_or_path: str, revision: str | None = None) -> SemSimModel:
    """Load (once per process) a frozen eval-mode SemSim model from a Hub id or folder.

    The default id gives a clear error when this install has neither bundled nor downloadable weights.
    """
    if name_or_path == DEFAULT_MODEL_ID and bundled_model_path() is None and revision in (None, DEFAULT_REVISION):
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


def frozen_copy(model: ModelLike, revision: str | None = None, *, compile: bool | dict = False) -> SemSimModel:
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


def _model_dtype(model: SemSimModel) -> torch.dtype:
    return next(model.parameters()).dtype


def _semsim_update(
    preds: Tensor,
    target: Tensor,
    model: SemSimModel,
    *,
    data_range: float = 1.0,
    output: Output = "distance",
    validate_args: bool = True,
    check_domain: bool = True,
) -> Tensor:
    """Per-pair scores ``(N,)`` for reconstructions ``preds`` and originals ``target``.

    Inputs go through the input gate (validation, resize, normalisation) and are moved to the
    model's device only if the model lives elsewhere - never the other way round. With ``check_domain``
    the originals are compared with the model's training domain (``semsim_metric.domain``): channels and
    size always, content (their embeddings) only with ``validate_args``, which already reads every value.
    """
    device = next(model.parameters()).device
    if isinstance(preds, Tensor) and preds.device != device:
        raise ValueError(
            f"The images are on {preds.device} but the SemSim network is on {device}. Move the metric or "
            f"model with .to({str(preds.device)!r}) (or the images with .to({str(device)!r}))."
        )
    check_image_pair(preds, target, data_range=data_range, validate_args=validate_args)
    cfg = model.config
    dtype = _model_dtype(model)
    kwargs = dict(data_range=data_range, image_size=cfg.image_size, mean=cfg.image_mean, std=cfg.image_std,
                  dtype=dtype)
    emb_preds, emb_target = _embed_pair(model, to_model_input(preds, **kwargs), to_model_input(target, **kwargs))
    distance = torch.linalg.vector_norm(emb_preds - emb_target, ord=2, dim=1)
    if check_domain:  # the content check reads values (a GPU sync), so validate_args=False skips it
        _check_domain(cfg, target, emb_target if validate_args else None)
    if output == "probability":
        # the calibration runs in float32 at least (bf16/fp16 distances), in float64 for a float64 model
        return model.probability(distance if distance.dtype == torch.float64 else distance.float())
    return distance


def _embed_pair(model: SemSimModel, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """L2-normalised embeddings of two batches of model-ready images, in the images' precision.

    Float16, bfloat16 and float32 images go through ``embed_pair`` (one call of the model itself, so a compiled
    forward runs), which normalises in float32. Float64 images (a float64 model) are embedded by the model's
    backbone and normalised in float64 (eagerly, also for a compiled model): normalising them in float32 rounds
    every embedding to float32, and ``torch.autograd.gradcheck`` of a float64 model then finds gradients off by up
    to 0.04.

    Raises:
        ValueError: ``x`` and ``y`` differ in shape.
    """
    if x.dtype != torch.float64:
        return embed_pair(model, x, y)
    if x.shape != y.shape:
        raise ValueError(f"SemSim needs two batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}.")
    net = model._orig_mod if _compiled_semsim(model) else model  # type: ignore[union-attr]
    features = net.backbone(torch.cat([x, y], dim=0))
    emb = torch.nn.functional.normalize(features, p=2.0, dim=1, eps=1e-12)
    ex, ey = emb.split(x.shape[0], dim=0)
    return ex, ey


def _semsim_compute(scores: Tensor, count: Tensor | int | None = None, reduction: Reduction = "mean") -> Tensor:
    """Reduce scores: ``scores`` is a sum with ``count`` for mean/sum states, or all values for 'none'."""
    if reduction == "none":
        return scores
    if reduction == "sum":
        return scores.sum() if count is None else scores
    if count is None:
        return scores.mean()
    return scores / count


def semsim(
    preds: Tensor,
    target: Tensor,
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

    Args:
        preds: reconstructions ``(N, C, H, W)``, ``C`` in {1, 3}, values in ``[0, data_range]``.
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
        TypeError: images that are not tensors, of an unsupported dtype (or uint8 without ``data_range=255``),
            or a ``model`` that is not a ``SemSimModel``, a Hub id or a folder.
        ValueError: an unknown ``reduction`` or ``output``, ``output="probability"`` with an uncalibrated
            model, a model in training mode, or images the gate refuses (shape, channels, range, NaN/Inf,
            devices).
        OSError: the model cannot be found or read (e.g. ``DefaultModelMissingError``, ``ModelNotFoundError``).

    Examples:
        >>> import torch
        >>> from semsim_metric import SemSimConfig, SemSimModel, semsim
        >>> model = SemSimModel(SemSimConfig(base_width=4)).eval()
        >>> x = torch.rand(3, 1, 28, 28)
        >>> float(semsim(x, x, model=model))
        0.0
        >>> semsim(x, torch.rand(3, 1, 28, 28), model=model, reduction="none").shape
        torch.Size([3])
    """
    check_reduction(reduction)
    data_range = check_data_range(data_range)
    # a cached model is shared: a copy on the inputs' device is used, the shared one never moves
    net = get_model(model, revision, device=preds.device if isinstance(preds, torch.Tensor) else None)
    check_output(output, net)
    if net.training:
        raise ValueError("The SemSim model is in training mode; call model.eval() before scoring.")
    scores = _semsim_update(preds, target, net, data_range=data_range, output=output,
                            validate_args=validate_args, check_domain=check_domain)
    return _semsim_compute(scores, reduction=reduction)
