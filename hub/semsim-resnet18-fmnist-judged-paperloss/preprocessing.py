# Exported from semsim-metric 0.1.0 (semsim_metric/preprocessing.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""The single input gate shared by every SemSim entry point.

Every image that reaches a SemSim network passes through ``check_image_pair`` (validation) and
``to_model_input`` (conversion): the functional core, the metric, the loss, the CLI and the
training collate all call these two functions and nothing else.

Accepted input: tensors of shape ``(N, C, H, W)`` with ``C`` in ``{1, 3}`` (greyscale is repeated to
three channels), floating point in ``[0, data_range]`` (default ``data_range=1.0``) or ``uint8`` when
``data_range=255``. ``preds`` and ``target`` hold the same number of images of the same height and
width; their channel counts may differ (greyscale is repeated to RGB before comparison). Any ``H, W``:
images are resized to the model's input size (bilinear, antialiased) and normalised with the model's
mean and standard deviation.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import InvalidInputError, InvalidInputTypeError

__all__ = [
    "check_data_range",
    "check_image_pair",
    "check_images",
    "resize_images",
    "stack_at_model_size",
    "to_model_input",
    "to_model_input_for",
    "to_unit_rgb",
]


def check_data_range(data_range: float) -> float:
    """Validate ``data_range`` (the maximum pixel value) and return it as a float."""
    if isinstance(data_range, Tensor) and data_range.numel() == 1 and not data_range.dtype.is_complex:
        data_range = data_range.item()
    if isinstance(data_range, bool) or not isinstance(data_range, numbers.Real):  # numpy scalars are Real too
        raise InvalidInputTypeError(
            f"data_range must be a number such as 1.0 or 255, got {type(data_range).__name__}."
        )
    value = float(data_range)
    if not value > 0 or value != value or value == float("inf"):
        raise InvalidInputError(
            f"data_range must be a positive finite number such as 1.0 or 255, got {data_range}."
        )
    return value


def check_images(
    x: Tensor, *, name: str = "images", data_range: float = 1.0, validate_args: bool = True
) -> None:
    """Check one batch of images; raise ``TypeError``/``ValueError`` naming the problem and the fix.

    The cheap checks (type, ndim, channels, dtype) always run. The value checks (range, NaN/Inf)
    read every pixel and synchronise a GPU; ``validate_args=False`` skips them.
    """
    _check_shape(x, name)
    _check_dtype(x, name, data_range)
    if validate_args and x.dtype != torch.uint8:
        _check_values(x.detach(), name, data_range)


def _check_shape(x: Any, name: str) -> None:
    """A tensor ``(N, C, H, W)`` with 1 or 3 channels, not empty, not on the meta device."""
    if not isinstance(x, Tensor):
        hint = ""
        if type(x).__module__.startswith("PIL"):
            hint = (
                " Convert PIL images with torchvision.transforms.functional.pil_to_tensor(img).unsqueeze(0)."
            )
        elif type(x).__module__.startswith("numpy"):
            hint = " Convert numpy arrays with torch.from_numpy(a).permute(0, 3, 1, 2) for (N, H, W, C) data."
        raise InvalidInputTypeError(
            f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}.{hint}"
        )
    if x.ndim != 4:
        hint = (
            " Add the batch dimension with x.unsqueeze(0)."
            if x.ndim == 3
            else " Add batch and channel dimensions with x[None, None]."
            if x.ndim == 2
            else ""
        )
        raise InvalidInputError(
            f"{name} must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}.{hint}"
        )
    n, c, h, w = x.shape
    if c not in (1, 3):
        hint = ""
        if w in (1, 3):
            hint = " The channels seem to be last: use x.permute(0, 3, 1, 2)."
        elif c == 4:
            hint = " Drop the alpha channel with x[:, :3]."
        raise InvalidInputError(f"{name} must have 1 or 3 channels, got {c} (shape {tuple(x.shape)}).{hint}")
    if n == 0 or h == 0 or w == 0:
        raise InvalidInputError(f"{name} is empty (shape {tuple(x.shape)}); pass at least one image.")
    if x.device.type == "meta":
        raise InvalidInputError(
            f"{name} is on the meta device, which holds no pixel values; pass real tensors."
        )


def _check_dtype(x: Tensor, name: str, data_range: float) -> None:
    """uint8 with ``data_range=255``, or a floating dtype SemSim computes in."""
    if x.dtype == torch.uint8:
        if data_range != 255:
            raise InvalidInputTypeError(
                f"{name} is uint8 but data_range={data_range:g}. uint8 images need data_range=255, "
                "or convert them with x.float() / 255 and keep data_range=1.0."
            )
    elif x.is_floating_point() and x.dtype.itemsize < 2:
        raise InvalidInputTypeError(
            f"{name} has dtype {x.dtype}, a float8 storage format SemSim does not compute in; convert with "
            "x.float() (values in [0, data_range]) first."
        )
    elif not x.is_floating_point():
        raise InvalidInputTypeError(
            f"{name} has dtype {x.dtype}; expected a floating dtype (values in [0, data_range]) or uint8 "
            "with data_range=255. Convert with x.float() / x.max() or x.to(torch.uint8)."
        )


def _check_values(x: Tensor, name: str, data_range: float) -> None:
    """Finite pixels in ``[0, data_range]`` (reads every pixel)."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise InvalidInputError(f"{name} contains {bad} NaN or infinite values; SemSim needs finite pixels.")
    lo, hi = float(x.min()), float(x.max())
    # a pixel equal to data_range may round up in a low-precision dtype (bf16: up to 0.4% above)
    tol = max(1e-4, torch.finfo(x.dtype).eps) * data_range
    if lo < -tol:
        hint = ""
        if lo >= -1.0 - tol and hi <= 1.0 + tol:
            hint = (
                f" Images in [-1, 1]? Map them with (x + 1) / 2{'' if data_range == 1 else ' * data_range'}."
            )
        else:
            hint = " Normalised images (mean/std)? Pass unnormalised pixels; SemSim normalises itself."
        raise InvalidInputError(f"{name} values reach {lo:.4g}, below 0; expected [0, {data_range:g}].{hint}")
    if hi > data_range + tol:
        if data_range == 1.0 and hi <= 255.0 + 1e-3:
            hint = " Images in [0, 255]? Pass data_range=255 (or divide by 255)."
        else:
            hint = f" Set data_range to at least the images' maximum value ({hi!r}) or rescale them."
        raise InvalidInputError(
            f"{name} values reach {hi!r}, above data_range={data_range!r} (dtype {x.dtype}).{hint}"
        )


def check_image_pair(
    preds: Tensor, target: Tensor, *, data_range: float = 1.0, validate_args: bool = True
) -> None:
    """Validate reconstructions (``preds``) and originals (``target``) as a pair of batches.

    Examples:
        >>> check_image_pair(torch.rand(2, 3, 28, 28), torch.rand(2, 3, 28, 28))
        >>> check_image_pair(torch.rand(2, 3, 28, 28) * 2 - 1, torch.rand(2, 3, 28, 28))
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputError: preds (reconstructions) values reach ... Map them with (x + 1) / 2.
    """
    data_range = check_data_range(data_range)
    check_images(preds, name="preds (reconstructions)", data_range=data_range, validate_args=validate_args)
    check_images(target, name="target (originals)", data_range=data_range, validate_args=validate_args)
    if preds.shape[0] != target.shape[0]:
        raise InvalidInputError(
            f"preds and target must hold the same number of images, got {preds.shape[0]} reconstructions "
            f"and {target.shape[0]} originals. Pair each reconstruction with its original."
        )
    if preds.shape[2:] != target.shape[2:]:
        raise InvalidInputError(
            f"preds and target must have the same height and width, got {tuple(preds.shape[2:])} and "
            f"{tuple(target.shape[2:])}. Resize the reconstructions to the originals' size first."
        )
    if preds.device != target.device:
        raise InvalidInputError(
            f"preds is on {preds.device} but target is on {target.device}; move both to one device."
        )


def resize_images(x: Tensor, size: int) -> Tensor:
    """Resize float images ``(N, C, H, W)`` to ``size x size`` (bilinear, antialiased when shrinking)."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = x.shape[-1] > size or x.shape[-2] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


class _StraightThroughUnitClamp(torch.autograd.Function):
    """``x.clamp(0, 1)`` forward, identity backward (a straight-through clamp)."""

    generate_vmap_rule = True  # element-wise: works under torch.func transforms too

    @staticmethod
    def forward(x: Tensor) -> Tensor:  # type: ignore[override]
        return x.clamp(0.0, 1.0)

    @staticmethod
    def setup_context(ctx: object, inputs: tuple[Tensor], output: Tensor) -> None:  # type: ignore[override]
        pass

    @staticmethod
    def backward(ctx: object, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad

    @staticmethod
    def jvp(ctx: object, tangent: Tensor) -> Tensor:  # type: ignore[override]
        return tangent


def _clamp_unit_straight_through(x: Tensor) -> Tensor:
    """Clamp ``x`` to ``[0, 1]`` in value (bit for bit ``x.clamp(0, 1)``) while passing its gradient through
    unchanged, so that pixels at (or within the gate's tolerance beyond) 0 and 1 keep their gradient."""
    return _StraightThroughUnitClamp.apply(x)


def to_unit_rgb(
    x: Tensor, *, data_range: float, image_size: int, dtype: torch.dtype = torch.float32
) -> Tensor:
    """Validated images ``(N, C, H, W)`` -> float RGB in ``[0, 1]`` at ``image_size x image_size``.

    Pixels the gate let through within its rounding tolerance beyond ``0`` or ``data_range`` are clamped to
    ``[0, 1]`` in value only: the gradient passes the clamp unchanged (a straight-through clamp), so a pixel at
    either bound still gets the gradient of a loss and an optimiser can move it back into the range.

    Examples:
        >>> to_unit_rgb(torch.full((1, 1, 28, 28), 255, dtype=torch.uint8), data_range=255, image_size=32).shape
        torch.Size([1, 3, 32, 32])
    """
    work_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    f32 = torch.finfo(torch.float32)
    if x.dtype == torch.float64 or not f32.tiny <= data_range <= f32.max:
        # scale in float64 first: float64 pixels near 1e300, or a data_range float32 cannot hold
        x = (x.to(torch.float64) / data_range).to(work_dtype)
    else:
        x = x.to(work_dtype) / data_range
    # pixels within the gate's rounding tolerance of 0 or data_range are clamped in value only: a plain clamp
    # would give every pixel at 0 or data_range a zero gradient, and a loss could never move it off the bound
    x = _clamp_unit_straight_through(x)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return resize_images(x, image_size)


def stack_at_model_size(images: Sequence[Tensor], *, data_range: float, image_size: int) -> Tensor:
    """Images ``(C, H, W)`` of any sizes and channel counts -> one float batch ``(N, 3, S, S)`` in ``[0, 1]``.

    Each image is converted as ``to_unit_rgb`` converts a batch, so files of different sizes can be
    scored together; the result is valid input for the gate with ``data_range=1.0``.

    Examples:
        >>> a, b = torch.zeros(1, 28, 28, dtype=torch.uint8), torch.zeros(3, 40, 30, dtype=torch.uint8)
        >>> stack_at_model_size([a, b], data_range=255, image_size=32).shape
        torch.Size([2, 3, 32, 32])
    """
    if len({tuple(img.shape) for img in images}) == 1:
        return to_unit_rgb(torch.stack(list(images)), data_range=data_range, image_size=image_size)
    return torch.cat(
        [to_unit_rgb(img.unsqueeze(0), data_range=data_range, image_size=image_size) for img in images]
    )


def to_model_input(
    x: Tensor,
    *,
    data_range: float,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """Convert validated images to model-ready tensors: scale to [0, 1], RGB, resize, normalise.

    ``augment`` (training only) is applied to the resized ``[0, 1]`` images before normalisation.

    Examples:
        >>> y = to_model_input(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), data_range=255,
        ...                    image_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> tuple(y.shape), float(y.min())
        ((2, 3, 32, 32), -1.0)
    """
    x = to_unit_rgb(x, data_range=data_range, image_size=image_size, dtype=dtype)
    if augment is not None:
        x = augment(x)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x - m) / s).to(dtype)


def to_model_input_for(
    config: object,
    x: Tensor,
    *,
    data_range: float,
    dtype: torch.dtype = torch.float32,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> Tensor:
    """``to_model_input`` with the model's own settings: ``config``'s ``image_size``, ``image_mean`` and
    ``image_std`` (a ``SemSimConfig`` or anything with those attributes).

    Examples:
        >>> from types import SimpleNamespace
        >>> cfg = SimpleNamespace(image_size=32, image_mean=(0.5, 0.5, 0.5), image_std=(0.5, 0.5, 0.5))
        >>> tuple(to_model_input_for(cfg, torch.zeros(2, 1, 28, 28, dtype=torch.uint8), data_range=255).shape)
        (2, 3, 32, 32)
    """
    return to_model_input(
        x,
        data_range=data_range,
        image_size=config.image_size,  # type: ignore[attr-defined]
        mean=config.image_mean,  # type: ignore[attr-defined]
        std=config.image_std,  # type: ignore[attr-defined]
        dtype=dtype,
        augment=augment,
    )
