"""SemSim as a ``transformers`` model: :class:`SemSimConfig` and :class:`SemSimModel`.

SemSim embeds an image with a backbone (by default the paper's CIFAR ResNet-18) and L2-normalises the
embedding. The SemSim score of a reconstruction is the L2 distance between its embedding and the
original's: **a distance, 0 = semantically identical (most leakage), 2 = as far apart as possible (least
leakage); lower means more leakage.**

The model works on *model-ready* tensors (resized and normalised). Raw images go through the input gate
:mod:`semsim_metric.preprocessing`, which :func:`semsim_metric.semsim`, :class:`semsim_metric.SemSim`
and :class:`semsim_metric.SemSimLoss` all use.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from .backbones import build_backbone

__all__ = ["CIFAR100_MEAN", "CIFAR100_STD", "SemSimConfig", "SemSimModel", "SemSimOutput"]

CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


class SemSimConfig(PretrainedConfig):
    """Configuration of a :class:`SemSimModel`.

    Args:
        backbone: ``"cifar_resnet18"`` (the paper's network) or ``"transformers"`` (any vision model
            described by ``backbone_config``).
        base_width: width of the first ResNet stage (64 in the paper -> 512-d embedding).
        backbone_config: ``transformers`` config dictionary of the backbone when
            ``backbone="transformers"``.
        embedding: ``"pooled"`` (the paper: globally pooled features) or ``"spatial"`` (the flattened
            last feature map; CIFAR ResNet-18 only).
        image_size: side of the square model input; every image is resized to it (32 in the paper).
        image_mean: per-channel mean used for normalisation (CIFAR-100's by default).
        image_std: per-channel standard deviation used for normalisation (CIFAR-100's by default).
        margin: margin of the triplet loss (1.0 in the paper).
        global_loss_weight: weight of the optional global soft-label loss on the distance (0 = the
            paper's triplet loss alone).
        calibration: optional logistic calibration ``{"intercept": a, "slope": b, ...}`` mapping a
            distance ``d`` to the probability ``sigmoid(a + b * d)`` that a person (or the annotator
            panel named in ``"fitted_on"``) would recognise the reconstruction.

    Example:
        >>> cfg = SemSimConfig(base_width=16)
        >>> cfg.model_type, cfg.embedding_dim
        ('semsim', 128)
    """

    model_type = "semsim"

    def __init__(
        self,
        backbone: str = "cifar_resnet18",
        base_width: int = 64,
        backbone_config: dict[str, Any] | None = None,
        embedding: str = "pooled",
        image_size: int = 32,
        image_mean: tuple[float, ...] | list[float] = CIFAR100_MEAN,
        image_std: tuple[float, ...] | list[float] = CIFAR100_STD,
        margin: float = 1.0,
        global_loss_weight: float = 0.0,
        calibration: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if backbone not in ("cifar_resnet18", "transformers"):
            raise ValueError(f"backbone must be 'cifar_resnet18' or 'transformers', got {backbone!r}.")
        if len(image_mean) != 3 or len(image_std) != 3:
            raise ValueError("image_mean and image_std need 3 values (R, G, B).")
        if any(s <= 0 for s in image_std):
            raise ValueError(f"image_std must be positive, got {tuple(image_std)}.")
        if embedding not in ("pooled", "spatial"):
            raise ValueError(f"embedding must be 'pooled' or 'spatial', got {embedding!r}.")
        if embedding == "spatial" and backbone != "cifar_resnet18":
            raise ValueError("embedding='spatial' is only available for backbone='cifar_resnet18'.")
        self.backbone = backbone
        self.embedding = embedding
        self.base_width = int(base_width)
        self.backbone_config = dict(backbone_config) if backbone_config is not None else None
        self.image_size = int(image_size)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        self.margin = float(margin)
        self.global_loss_weight = float(global_loss_weight)
        self.calibration = dict(calibration) if calibration is not None else None
        super().__init__(**kwargs)

    @property
    def embedding_dim(self) -> int:
        """Size of the embedding (``8 * base_width`` for the pooled CIFAR ResNet-18)."""
        if self.backbone == "cifar_resnet18" and self.embedding == "spatial":
            return 8 * self.base_width * math.ceil(self.image_size / 8) ** 2
        return self.feature_dim

    @property
    def feature_dim(self) -> int:
        """Size of the backbone's pooled features (input of the classifiers used in training)."""
        if self.backbone == "cifar_resnet18":
            return 8 * self.base_width
        from .backbones import _infer_feature_dim

        cfg = dict(self.backbone_config or {})
        return _infer_feature_dim(AutoConfig.for_model(cfg.pop("model_type"), **cfg))


@dataclass
class SemSimOutput(ModelOutput):
    """Output of :meth:`SemSimModel.forward`.

    Attributes:
        loss: triplet margin loss (plus the weighted global loss when enabled).
        positive_distance: distance anchor-positive per triplet.
        negative_distance: distance anchor-negative per triplet.
        anchor_embeds: L2-normalised anchor embeddings.
    """

    loss: Tensor | None = None
    positive_distance: Tensor | None = None
    negative_distance: Tensor | None = None
    anchor_embeds: Tensor | None = None


class SemSimModel(PreTrainedModel):
    """SemSim embedding network.

    ``embed`` maps model-ready images to L2-normalised embeddings, ``distance`` gives the SemSim
    distance (in ``[0, 2]``, lower = more leakage) and ``forward`` computes the training loss on
    triplets, so that ``transformers.Trainer`` trains it unchanged.

    Weights load strictly from ``model.safetensors``: a missing or unexpected key is an error, and
    nothing is ever unpickled.

    Example:
        >>> model = SemSimModel(SemSimConfig(base_width=8)).eval()
        >>> x = torch.randn(4, 3, 32, 32)
        >>> model.embed(x).norm(dim=1)
        tensor([1.0000, 1.0000, 1.0000, 1.0000], grad_fn=<LinalgVectorNormBackward0>)
        >>> float(model.distance(x, x).max())
        0.0
    """

    config_class = SemSimConfig
    base_model_prefix = "semsim"
    main_input_name = "anchor"
    _no_split_modules: list[str] = []

    def __init__(self, config: SemSimConfig) -> None:
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.post_init()

    # -- initialisation -------------------------------------------------------------------------
    def _init_weights(self, module: nn.Module) -> None:
        if self.config.backbone != "cifar_resnet18":
            return  # transformers backbones initialise themselves
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # -- inference ------------------------------------------------------------------------------
    def embed(self, pixel_values: Tensor) -> Tensor:
        """Embed model-ready images ``(N, 3, S, S)`` into L2-normalised vectors ``(N, D)``."""
        features = self.backbone(pixel_values)
        return F.normalize(features.float(), p=2.0, dim=1, eps=1e-12).to(features.dtype)

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        """SemSim distance per pair of model-ready images, in ``[0, 2]`` (lower = more leakage).

        Both batches go through the backbone in one forward pass.
        """
        if x.shape != y.shape:
            raise ValueError(f"distance() needs two batches of the same shape, got {tuple(x.shape)} "
                             f"and {tuple(y.shape)}.")
        emb = self.embed(torch.cat([x, y], dim=0))
        ex, ey = emb.split(x.shape[0], dim=0)
        return torch.linalg.vector_norm(ex - ey, ord=2, dim=1)

    def probability(self, distance: Tensor) -> Tensor:
        """Calibrated probability that the reconstruction is recognised, from its distance.

        Raises:
            ValueError: when the model carries no calibration.
        """
        cal = self.config.calibration
        if not cal:
            raise ValueError(
                "This SemSim model has no calibration, so output='probability' is unavailable. "
                "Use output='distance', or fit one with semsim_metric.training.fit_calibration()."
            )
        return torch.sigmoid(cal["intercept"] + cal["slope"] * distance)

    # -- training -------------------------------------------------------------------------------
    def forward(
        self,
        anchor: Tensor,
        positive: Tensor,
        negative: Tensor,
        positive_share: Tensor | None = None,
        negative_share: Tensor | None = None,
        return_dict: bool = True,
        **unused: Any,
    ) -> SemSimOutput:
        """Triplet margin loss on L2-normalised embeddings (paper: margin 1.0, p=2).

        Args:
            anchor: model-ready originals ``(N, 3, S, S)``.
            positive: recognised reconstructions of the same originals.
            negative: unrecognised reconstructions of the same originals.
            positive_share: optional share of annotators who recognised each positive, in [0, 1];
                with ``negative_share`` it feeds the global soft-label loss when
                ``config.global_loss_weight > 0``.
            negative_share: optional share of annotators who recognised each negative.
        """
        n = anchor.shape[0]
        emb = self.embed(torch.cat([anchor, positive, negative], dim=0))
        ea, ep, en = emb.split(n, dim=0)
        d_pos = torch.linalg.vector_norm(ea - ep, dim=1)
        d_neg = torch.linalg.vector_norm(ea - en, dim=1)
        loss = torch.relu(d_pos - d_neg + self.config.margin).mean()
        weight = self.config.global_loss_weight
        if weight > 0 and positive_share is not None and negative_share is not None:
            loss = loss + weight * global_soft_label_loss(
                torch.cat([d_pos, d_neg]), torch.cat([positive_share, negative_share]).to(d_pos.dtype)
            )
        return SemSimOutput(loss=loss, positive_distance=d_pos, negative_distance=d_neg, anchor_embeds=ea)

    # -- strict safetensors I/O -----------------------------------------------------------------
    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *model_args: Any,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool | None = None,
        token: str | bool | None = None,
        config: SemSimConfig | None = None,
        dtype: torch.dtype | str | None = None,
        **kwargs: Any,
    ) -> SemSimModel:
        """Load a SemSim model from a local folder or a Hub repository (strictly, safetensors only).

        Args:
            pretrained_model_name_or_path: a folder holding ``config.json`` and ``model.safetensors``,
                or a Hub model id such as ``"org/name"``.
            revision: branch, tag or commit of the Hub repository.
            cache_dir: huggingface_hub cache folder.
            local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
            token: Hub token for private repositories.
            config: use this config instead of the folder's ``config.json``.
            dtype: cast the loaded model to this dtype (default: float32).

        Raises:
            OSError: when the files cannot be found (offline and not cached, wrong folder).
            RuntimeError: when the weights do not match the architecture (keys are named).

        Example:
            >>> import tempfile
            >>> folder = tempfile.mkdtemp()
            >>> SemSimModel(SemSimConfig(base_width=4)).save_pretrained(folder)
            >>> SemSimModel.from_pretrained(folder).config.base_width
            4
        """
        from .hub import resolve_model_folder

        ignorable = {"trust_remote_code", "use_safetensors", "force_download", "proxies",
                     "subfolder", "torch_dtype", "device_map", "low_cpu_mem_usage", "adapter_kwargs",
                     "code_revision", "resume_download", "local_dir"}
        unknown = [k for k in kwargs if not k.startswith("_") and k not in ignorable]
        if model_args or unknown:
            raise TypeError(
                f"SemSimModel.from_pretrained() got unexpected arguments: {unknown or list(model_args)}."
            )
        if dtype is None and kwargs.get("torch_dtype") not in (None, "auto"):
            dtype = kwargs["torch_dtype"]
        folder = resolve_model_folder(
            str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
        )
        if config is None:
            config = SemSimConfig.from_json_file(str(folder / CONFIG_NAME))
        model = cls(config)
        load_weights_strict(model, folder / WEIGHTS_NAME)
        if dtype is not None and dtype != "auto":
            model = model.to(getattr(torch, dtype) if isinstance(dtype, str) else dtype)
        return model.eval()

    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | os.PathLike[str],
        *,
        dtype: torch.dtype | None = None,
        state_dict: dict[str, Tensor] | None = None,
        is_main_process: bool = True,
        safe_serialization: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write ``config.json`` and ``model.safetensors`` (optionally stored in ``dtype``, e.g. fp16).

        Extra keyword arguments (``push_to_hub`` and friends) are not supported here; push a saved
        folder with ``huggingface_hub.upload_folder``.
        """
        from safetensors.torch import save_file

        if kwargs:
            raise TypeError(f"save_pretrained() got unexpected arguments: {sorted(kwargs)}.")
        if not safe_serialization:
            raise ValueError("SemSim saves safetensors only (safe_serialization=False is not supported).")
        if not is_main_process:
            return
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        self.config.save_pretrained(str(folder))
        state = {}
        for key, value in (state_dict if state_dict is not None else self.state_dict()).items():
            value = value.detach().cpu()
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            state[key] = value.contiguous()
        save_file(state, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})


def global_soft_label_loss(distance: Tensor, share: Tensor, *, centre: float = 1.0,
                           temperature: float = 0.25) -> Tensor:
    """Binary cross-entropy between ``sigmoid((centre - d) / temperature)`` and the recognised share.

    Puts distances of *different* originals on one scale: a reconstruction that most annotators
    recognised should lie closer than ``centre`` to its original, one nobody recognised farther.
    """
    logits = (centre - distance) / temperature
    return F.binary_cross_entropy_with_logits(logits, share.clamp(0, 1))


def load_weights_strict(model: nn.Module, weights_file: Path) -> None:
    """Load ``weights_file`` (safetensors) into ``model``; any missing/unexpected key is an error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not weights_file.is_file():
        raise OSError(
            f"No weights file at {weights_file}. A SemSim model folder holds config.json and "
            "model.safetensors (other formats, such as pickled .bin files, are refused)."
        )
    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as err:
        raise OSError(f"{weights_file} is not a readable safetensors file ({err}).") from err
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise RuntimeError(
            f"Weights in {weights_file} do not match the architecture in config.json. "
            f"Missing keys ({len(missing)}): {_short(missing)}; unexpected keys ({len(unexpected)}): "
            f"{_short(unexpected)}. Check that config.json (backbone, base_width) belongs to these weights."
        )
    wrong_shape = [k for k in expected if tuple(expected[k].shape) != tuple(state[k].shape)]
    if wrong_shape:
        k = wrong_shape[0]
        raise RuntimeError(
            f"Weights in {weights_file} have the wrong shape for {len(wrong_shape)} keys, e.g. {k}: "
            f"file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}."
        )
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(state[key].to(target.dtype))


def _short(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _register() -> None:
    try:
        AutoConfig.register("semsim", SemSimConfig)
    except ValueError:  # already registered (module reloaded)
        pass
    try:
        AutoModel.register(SemSimConfig, SemSimModel)
    except ValueError:
        pass


_register()
