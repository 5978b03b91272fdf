"""The baseline metrics SemSim is compared with, in a registry that declares each one's orientation.

Add a baseline by adding one entry to ``BASELINES`` (name, function on float images in [0, 1],
whether a higher value means more leakage, smallest image size, weights it needs). Learned baselines whose
weights would have to be unpickled are refused (see ``weights_available``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
from torch import Tensor

from ..errors import InvalidInputError, MissingFileError, UnsafeFileError

__all__ = [
    "BASELINES",
    "SEMSIM_SPEC",
    "MetricSpec",
    "Orientation",
    "leakage_score",
    "load_cached_weights",
    "metric_spec",
    "weights_available",
]


#: which values of a metric mean more leakage: higher ones (similarities) or lower ones (distances)
Orientation = Literal["higher", "lower"]


@dataclass(frozen=True)
class MetricSpec:
    """A full-reference metric and its direction.

    Args:
        name: display name.
        fn: ``fn(preds, target)`` on float images in [0, 1] -> per-pair values ``(N,)``; ``None`` for
            metrics that are only read from tables.
        higher_means_more_leakage: True for similarities (PSNR, SSIM), False for distances (MSE, SemSim).
        min_size: smallest image side the metric accepts.
        needs_weights: file names in the torch hub cache that a learned metric needs (never downloaded here).
    """

    name: str
    fn: Callable[[Tensor, Tensor], Tensor] | None
    higher_means_more_leakage: bool
    min_size: int = 1
    needs_weights: tuple[str, ...] = ()

    @classmethod
    def for_column(cls, column: str, orientation: Orientation) -> MetricSpec:
        """A metric read from a table column, whose ``orientation`` says which values mean more leakage.

        Examples:
            >>> MetricSpec.for_column("mse", "lower").higher_means_more_leakage
            False

        Raises:
            InvalidInputError: (a ``ValueError``) an empty column name, or an orientation other than ``"higher"``
                or ``"lower"``.
        """
        if not column or orientation not in get_args(Orientation):
            raise InvalidInputError(
                f"metric column {column!r} oriented {orientation!r}: give a column name and 'higher' or "
                "'lower' (which values mean more leakage)."
            )
        return cls(column, None, orientation == "higher")

    @classmethod
    def parse(cls, text: str) -> MetricSpec:
        """The table metric written ``COLUMN:higher`` or ``COLUMN:lower`` (``semsim evaluate --metric``); the one
        parser of that form.

        Examples:
            >>> MetricSpec.parse("psnr:higher")
            MetricSpec(name='psnr', fn=None, higher_means_more_leakage=True, min_size=1, needs_weights=())
            >>> MetricSpec.parse("psnr")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            semsim_metric.errors.InvalidInputError: metric 'psnr': write COLUMN:higher or COLUMN:lower ...

        Raises:
            InvalidInputError: (a ``ValueError``) no ``:``, an empty column or another orientation.
        """
        column, _, orientation = text.rpartition(":")
        if not column or orientation not in get_args(Orientation):
            raise InvalidInputError(
                f"metric {text!r}: write COLUMN:higher or COLUMN:lower (higher/lower values mean more leakage)."
            )
        return cls.for_column(column, orientation)  # type: ignore[arg-type]

    def orient(self, values: np.ndarray) -> np.ndarray:
        """Leakage-oriented values (higher = more leakage)."""
        return values if self.higher_means_more_leakage else -values


def _tm(name: str, **kw: Any) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        import torchmetrics.functional.image as tmf

        return getattr(tmf, name)(x, y, **kw)

    return fn


def _piq(name: str, **kw: Any) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        import piq

        return getattr(piq, name)(x, y, data_range=1.0, reduction="none", **kw)

    return fn


def _mse(x: Tensor, y: Tensor) -> Tensor:
    return (x - y).pow(2).flatten(1).mean(1)


def _psnr(x: Tensor, y: Tensor) -> Tensor:
    return 10 * torch.log10(1.0 / _mse(x, y).clamp_min(1e-10))


def load_cached_weights(
    url: str,
    model_dir: str | None = None,
    map_location: Any = None,
    progress: bool = True,
    check_hash: bool = False,
    file_name: str | None = None,
    weights_only: Any = None,
) -> Any:
    """A drop-in for ``torch.hub.load_state_dict_from_url`` that never downloads and never unpickles.

    The file must already be in the torch hub cache; it is read with ``torch.load(weights_only=True)``
    whatever the caller or ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` asks for (only tensors and plain containers),
    and anything else is refused with ``UnsafeFileError`` naming the file. ``weights_only`` and the
    download arguments are accepted for compatibility and ignored.
    """
    import os
    import pickle
    from urllib.parse import urlparse

    folder = Path(model_dir) if model_dir else Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / (file_name or os.path.basename(urlparse(url).path))
    if not path.is_file():
        raise MissingFileError(
            f"{path} is missing: weights are never downloaded by semsim-metric; place the file "
            f"from {url} there yourself."
        )
    try:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as exc:
        raise UnsafeFileError(
            f"refusing {path}: it cannot be read as plain tensors (torch.load(weights_only=True) failed: "
            f"{str(exc).splitlines()[0][:200]}). A pickle may run code; delete the file and place the official "
            f"weights from {url} there."
        ) from exc


@functools.lru_cache(maxsize=4)
def _build_learned(cls_name: str) -> torch.nn.Module:
    """The piq metric ``cls_name``, built once per process (its VGG weights are read once, not per batch)."""
    import piq
    import torchvision.models._api as tv_api

    # piq and torchvision read their weights through load_state_dict_from_url; route both through the
    # loader that refuses pickles and downloads while the metric is built
    holders = (torch.hub, tv_api)
    saved = [h.load_state_dict_from_url for h in holders]
    try:
        for h in holders:
            h.load_state_dict_from_url = load_cached_weights  # type: ignore[assignment]
        return getattr(piq, cls_name)(reduction="none").eval()
    finally:
        for h, original in zip(holders, saved):
            h.load_state_dict_from_url = original  # type: ignore[assignment]


def _learned(cls_name: str) -> Callable[[Tensor, Tensor], Tensor]:
    def fn(x: Tensor, y: Tensor) -> Tensor:
        return _build_learned(cls_name)(x, y)

    return fn


BASELINES: dict[str, MetricSpec] = {
    "PSNR": MetricSpec("PSNR", _psnr, True),
    "SSIM": MetricSpec(
        "SSIM", _tm("structural_similarity_index_measure", data_range=1.0, reduction="none"), True
    ),
    "MS-SSIM": MetricSpec("MS-SSIM", _piq("multi_scale_ssim"), True, min_size=161),
    "MSE": MetricSpec("MSE", _mse, False),
    "UQI": MetricSpec(
        "UQI",
        lambda x, y: _tm("universal_image_quality_index", reduction="none")(x, y).flatten(1).mean(1),
        True,
    ),
    "GMSD": MetricSpec("GMSD", _piq("gmsd"), False),
    "MS-GMSD": MetricSpec("MS-GMSD", _piq("multi_scale_gmsd", chromatic=False), False, min_size=64),
    "VIF-p": MetricSpec("VIF-p", _piq("vif_p"), True, min_size=41),
    "FSIM": MetricSpec("FSIM", _piq("fsim", chromatic=False), True),
    "HaarPSI": MetricSpec("HaarPSI", _piq("haarpsi"), True),
    "MDSI": MetricSpec("MDSI", _piq("mdsi"), False),
    "DSS": MetricSpec("DSS", _piq("dss"), True),
    "SR-SIM": MetricSpec("SR-SIM", _piq("srsim", chromatic=False), True, min_size=40),
    "LPIPS": MetricSpec(
        "LPIPS", _learned("LPIPS"), False, needs_weights=("lpips_weights.pt", "vgg16-397923af.pth")
    ),
    "DISTS": MetricSpec(
        "DISTS", _learned("DISTS"), False, needs_weights=("dists_weights.pt", "vgg16-397923af.pth")
    ),
}
"""Baselines with their direction. LPIPS and DISTS need weights that must already be in the torch hub cache."""

SEMSIM_SPEC = MetricSpec("SemSim", None, False)


def metric_spec(name: str, extra: dict[str, MetricSpec] | None = None) -> MetricSpec:
    """The declared spec of ``name`` (``SemSim`` and ``SemSim[...]`` are distances)."""
    if extra and name in extra:
        return extra[name]
    if name == "SemSim" or name.startswith("SemSim"):
        return SEMSIM_SPEC
    if name in BASELINES:
        return BASELINES[name]
    raise KeyError(f"unknown metric {name!r}: declare its direction with a MetricSpec.")


def leakage_score(name: str, values: np.ndarray) -> np.ndarray:
    """Orient a metric's values so that higher = more leakage."""
    return metric_spec(name).orient(np.asarray(values, dtype=float))


def weights_available(files: Sequence[str]) -> tuple[bool, str]:
    """Whether a learned baseline's weight files are already in the torch hub cache (never downloaded here).

    Raises:
        UnsafeFileError: a file is there but is not plain tensors (it would have to be unpickled).
    """
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        return False, f"needs downloaded weights {missing} in {folder} (not available offline)"
    for f in files:  # a present file must be plain tensors: raises UnsafeFileError otherwise
        load_cached_weights(str(folder / f))
    return True, ""
