# Exported from semsim-metric 0.1.0 (semsim_metric/models/image_processing_semsim.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""``SemSimImageProcessor``: SemSim's input gate as a transformers image processor (``preprocessor_config.json``).

SemSim scores only mean something when the images went through the input gate (``semsim_metric.preprocessing``):
checked, turned into RGB in ``[0, 1]``, resized to the model's input size (bilinear, antialiased when shrinking) and
normalised with the model's mean and standard deviation. This processor is that gate for transformers: it calls
``check_images`` / ``check_image_pair`` and ``to_model_input`` themselves, so its ``pixel_values`` are exactly what
``semsim_metric.semsim`` feeds the network. Every SemSim model folder holds its settings in
``preprocessor_config.json`` (written by ``SemSimModel.save_pretrained``), so ``AutoImageProcessor.from_pretrained``
and the pipelines (``image-feature-extraction``, ``semsim``) find it; with ``trust_remote_code=True`` it also loads
where semsim-metric is not installed (``semsim_metric.models.remote_code``).

Inputs, one image or a list of them:

- ``torch.Tensor``: channels first, as everywhere in SemSim: ``(C, H, W)``, a batch ``(N, C, H, W)`` or greyscale
  ``(H, W)``;
- ``numpy.ndarray``: channels last, as PIL and image files store them: ``(H, W)``, ``(H, W, C)`` or ``(N, H, W, C)``;
- PIL images, image files (``str`` / ``Path``), encoded bytes and ``datasets.Image`` cells, decoded by
  ``semsim_metric.image_io.decode_image`` (the decoder of ``semsim score``).

``uint8`` pixels are read with ``data_range=255``; floating-point pixels with the processor's ``data_range``
(default 1.0), as ``semsim(..., data_range=...)`` reads them.

Examples:
    >>> import torch
    >>> processor = SemSimImageProcessor(image_size=32)
    >>> processor(torch.rand(2, 1, 28, 28))["pixel_values"].shape
    torch.Size([2, 3, 32, 32])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor
from transformers.image_processing_utils import BaseImageProcessor, BatchFeature
from transformers.processing_utils import ImagesKwargs

from .errors import ImageInputError, InvalidInputError
from .image_io import decode_image
from .preprocessing import check_data_range, check_image_pair, check_images, to_model_input
from .configuration_semsim import CIFAR100_MEAN, CIFAR100_STD, check_image_settings

__all__ = ["ImageInputError", "SemSimImageProcessor", "SemSimImagesKwargs"]


class SemSimImagesKwargs(ImagesKwargs, total=False):
    """The settings of ``SemSimImageProcessor`` beyond transformers' ``ImagesKwargs`` (which hold ``image_mean``
    and ``image_std``)."""

    image_size: int
    data_range: float


def _from_array(array: Any, name: str) -> list[Tensor]:
    """Channels-last numpy images -> ``(1, C, H, W)`` tensors."""
    import numpy as np

    x = torch.from_numpy(np.ascontiguousarray(array))
    if x.ndim == 2:
        return [x[None, None]]
    if x.ndim == 3:
        return [x.permute(2, 0, 1)[None]]
    if x.ndim == 4:
        return list(x.permute(0, 3, 1, 2).split(1))
    raise ImageInputError(
        f"{name}: a numpy array of shape {tuple(x.shape)} is not an image; arrays are channels last "
        "like PIL images: (H, W), (H, W, C) or (N, H, W, C)."
    )


def _as_images(value: Any, name: str) -> list[Tensor]:
    """One image or a list of images (see the module's docstring) -> a list of ``(1, C, H, W)`` tensors."""
    if isinstance(value, Tensor):
        if value.ndim == 2:
            return [value[None, None]]
        if value.ndim == 3:
            return [value[None]]
        if value.ndim == 4:
            return list(value.split(1))
        raise ImageInputError(
            f"{name}: a tensor of shape {tuple(value.shape)} is not an image; tensors are channels "
            "first: (C, H, W), (N, C, H, W) or greyscale (H, W)."
        )
    if type(value).__module__ == "numpy":
        return _from_array(value, name)
    if isinstance(value, (list, tuple)):
        return [img for i, item in enumerate(value) for img in _as_images(item, f"{name}[{i}]")]
    if isinstance(value, (str, Path, bytes, bytearray, dict)) or hasattr(value, "getexif"):
        return [decode_image(value)[None]]
    raise ImageInputError(
        f"{name}: {type(value).__name__} is not an image. Pass torch tensors (C, H, W), numpy "
        "arrays (H, W, C), PIL images or image files, or a list of them."
    )


class SemSimImageProcessor(BaseImageProcessor):
    """Turns images into a SemSim model's ``pixel_values`` through the input gate (``semsim_metric.preprocessing``).

    Args:
        image_size: side of the square model input (``config.image_size``).
        image_mean: per-channel mean of the normalisation (``config.image_mean``).
        image_std: per-channel standard deviation of the normalisation (``config.image_std``).
        data_range: the maximum value of floating-point pixels (``uint8`` pixels always use 255).
        kwargs: other entries of ``preprocessor_config.json`` (``image_processor_type``, ``auto_map``, fields of newer
            versions), kept as attributes.

    Raises:
        ValueError: a setting out of range (``check_image_settings``, ``check_data_range``), or an entry that would
            replace one of the processor's methods or attributes.
        TypeError: a ``data_range`` that is not a number.

    Examples:
        >>> from semsim_metric import SemSimConfig
        >>> SemSimImageProcessor.from_model_config(SemSimConfig(image_size=28)).image_size
        28
    """

    model_input_names: ClassVar[list[str]] = ["pixel_values"]
    valid_kwargs = SemSimImagesKwargs

    def __init__(
        self,
        image_size: int = 32,
        image_mean: Sequence[float] = CIFAR100_MEAN,
        image_std: Sequence[float] = CIFAR100_STD,
        data_range: float = 1.0,
        **kwargs: Any,
    ) -> None:
        clashing = sorted(k for k in kwargs if k != "image_processor_type" and hasattr(type(self), k))
        if clashing:  # preprocessor_config.json is untrusted: its entries become attributes, never methods
            raise InvalidInputError(
                f"preprocessor_config.json: {clashing} are not settings of SemSimImageProcessor; remove "
                "them (the file holds image_size, image_mean, image_std and data_range)."
            )
        super().__init__(**kwargs)
        self.image_size, self.image_mean, self.image_std = check_image_settings(
            image_size, image_mean, image_std
        )
        self.data_range = check_data_range(data_range)

    @classmethod
    def from_model_config(cls, config: Any) -> SemSimImageProcessor:
        """The processor of a model: its ``config``'s input size, mean and standard deviation."""
        return cls(image_size=config.image_size, image_mean=config.image_mean, image_std=config.image_std)

    def matches(self, config: Any) -> bool:
        """Whether this processor prepares images as the model of ``config`` expects (size, mean and std)."""
        return (self.image_size, list(self.image_mean), list(self.image_std)) == (
            config.image_size,
            list(config.image_mean),
            list(config.image_std),
        )

    def _model_input(self, x: Tensor, data_range: float, dtype: torch.dtype) -> Tensor:
        return to_model_input(
            x,
            data_range=data_range,
            image_size=self.image_size,
            mean=self.image_mean,
            std=self.image_std,
            dtype=dtype,
        )

    def preprocess(
        self,
        images: Any,
        reconstructions: Any = None,
        *,
        data_range: float | None = None,
        return_tensors: str | None = None,
        dtype: torch.dtype = torch.float32,
        **kwargs: Any,
    ) -> BatchFeature:
        """``pixel_values`` ``(N, 3, S, S)`` of ``images`` (the originals, when ``reconstructions`` are given too).

        Each image is checked by the gate (``check_images``) and converted by ``to_model_input``; with
        ``reconstructions`` each pair is checked together (``check_image_pair``: same height and width) and the
        reconstructions' values are returned as ``reconstruction_pixel_values``.

        Args:
            images: one image or a list (see the module's docstring).
            reconstructions: as many reconstructions, paired with ``images`` in order.
            data_range: maximum value of floating-point pixels (default: the processor's ``data_range``).
            return_tensors: ``None`` or ``"pt"`` (torch tensors), or ``"np"``.
            dtype: dtype of the values (``semsim`` uses the model's dtype).
            kwargs: accepted only empty (transformers passes none); any other is refused.

        Raises:
            ImageInputError: inputs that are not images, or pairs that do not pair up.
            TypeError, ValueError: from the gate (channels, dtype, range, NaN, sizes), naming the problem and the fix.
        """
        unknown = sorted(k for k, v in kwargs.items() if v is not None)
        if unknown:
            raise ImageInputError(
                f"SemSimImageProcessor does not take {unknown}: its resizing and normalisation are "
                "the model's (image_size, image_mean, image_std) and are not changed per call."
            )
        dr = self.data_range if data_range is None else check_data_range(data_range)
        originals = _as_images(images, "images")
        if not originals:
            raise ImageInputError("no images were given.")
        if reconstructions is None:
            values = []
            for i, x in enumerate(originals):
                x_range = 255.0 if x.dtype == torch.uint8 else dr
                check_images(x, name=f"image {i}", data_range=x_range)
                values.append(self._model_input(x, x_range, dtype))
            return BatchFeature(data={"pixel_values": torch.cat(values)}, tensor_type=return_tensors)
        recons = _as_images(reconstructions, "reconstructions")
        if len(recons) != len(originals):
            raise ImageInputError(
                f"{len(originals)} originals but {len(recons)} reconstructions: pair each "
                "reconstruction with its original."
            )
        orig_values, recon_values = [], []
        for x, y in zip(originals, recons):
            if (x.dtype == torch.uint8) != (
                y.dtype == torch.uint8
            ):  # one 8-bit, one float: both as floats in dr
                x, y = (v.float() / 255 * dr if v.dtype == torch.uint8 else v for v in (x, y))
            pair_range = 255.0 if x.dtype == torch.uint8 else dr
            check_image_pair(y, x, data_range=pair_range)
            orig_values.append(self._model_input(x, pair_range, dtype))
            recon_values.append(self._model_input(y, pair_range, dtype))
        return BatchFeature(
            data={
                "pixel_values": torch.cat(orig_values),
                "reconstruction_pixel_values": torch.cat(recon_values),
            },
            tensor_type=return_tensors,
        )
