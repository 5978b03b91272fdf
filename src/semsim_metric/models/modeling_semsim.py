"""SemSim as a ``transformers`` model: ``SemSimModel`` (the configuration is in
``semsim_metric.models.configuration_semsim``).

SemSim embeds an image with a backbone (by default the paper's CIFAR ResNet-18) and L2-normalises the
embedding. The SemSim score of a reconstruction is the L2 distance between its embedding and the
original's: **a distance, 0 = semantically identical (most leakage), 2 = as far apart as possible (least
leakage); lower means more leakage.**

The model works on *model-ready* tensors (resized and normalised). Raw images go through the input gate
``semsim_metric.preprocessing``, which ``semsim_metric.semsim``, ``semsim_metric.SemSim``
and ``semsim_metric.SemSimLoss`` all use.

This module holds the model, as transformers' ``modeling_*`` files do. Reading and writing a model folder's files
(``config.json`` validated, the safetensors header checked before anything is allocated, strict loading) is in
``semsim_metric.models.weights`` (its names are re-exported here); uploading to the Hub is in
``semsim_metric.models.hub_upload`` (package only: ``push_to_hub`` imports it when called).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoConfig, AutoModel, PreTrainedModel
from transformers.utils import ModelOutput

from ..errors import InvalidInputError, ModelArgumentError
from ..hub import CONFIG_NAME, WEIGHTS_NAME, resolve_model_folder
from .backbones import build_backbone
from .configuration_semsim import SemSimConfig, check_dtype_name
from .weights import (
    MAX_CONFIG_BYTES,
    MAX_WEIGHTS_HEADER_BYTES,
    check_weights_match_config,
    load_config,
    load_weights_strict,
    read_weights_header,
    save_weights,
    stored_dtype,
)

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_WEIGHTS_HEADER_BYTES",
    "ModelArgumentError",
    "SemSimModel",
    "SemSimOutput",
    "check_weights_match_config",
    "embed_pair",
    "embedding_distance",
    "layout_embedding",
    "load_config",
    "load_weights_strict",
    "read_weights_header",
]


@dataclass
class SemSimOutput(ModelOutput):
    """Output of ``SemSimModel.forward``.

    Attributes:
        embeddings: L2-normalised embeddings ``(N, D)`` of the model-ready images.
    """

    embeddings: Tensor | None = None


class SemSimModel(PreTrainedModel):
    """SemSim embedding network.

    ``embed`` (and ``forward``) map model-ready images to L2-normalised embeddings, ``distance`` gives the
    SemSim distance (in ``[0, 2]``, lower = more leakage) and ``probability`` the calibrated probability
    of recognition. Training objectives wrap this model (see ``semsim_metric.training.stages``).

    Weights load strictly from ``model.safetensors``: a missing or unexpected key is an error, and
    nothing is ever unpickled.

    Examples:
        >>> model = SemSimModel(SemSimConfig(base_width=8)).eval()
        >>> x = torch.randn(4, 3, 32, 32)
        >>> torch.allclose(model.embed(x).norm(dim=1), torch.ones(4))
        True
        >>> float(model.distance(x, x).max())
        0.0
    """

    config_class = SemSimConfig
    base_model_prefix = "semsim"
    main_input_name = "pixel_values"
    _no_split_modules: ClassVar[list[str]] = []

    def __init__(self, config: SemSimConfig) -> None:
        super().__init__(config)
        self.backbone = build_backbone(config)
        self._embed_chunk_size: int | None = None
        self.post_init()

    @property
    def embed_chunk_size(self) -> int | None:
        """In eval mode, ``embed`` runs a batch larger than this through the network in equal chunks of at most this
        many images (the same embeddings; on a CPU, activations that stay in cache are faster); ``None`` (the
        default) = whole batches. ``functional.scoring_copy`` sets ``SCORING_CHUNK_SIZE``; it is not saved.

        Raises:
            InvalidInputError: (on setting) anything but ``None`` or a positive integer.
        """
        return self._embed_chunk_size

    @embed_chunk_size.setter
    def embed_chunk_size(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInputError(
                f"embed_chunk_size must be None (whole batches) or a positive number of images, got {value!r}."
            )
        self._embed_chunk_size = value

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
        """Embed model-ready images ``(N, 3, S, S)`` into L2-normalised vectors ``(N, D)``: the backbone's features, and
        with ``config.layout_weight > 0`` the images' ``layout_embedding`` beside them (weighted, then normalised).

        Half-precision features are normalised in float32 (then cast back); float32 and float64 ones in their own
        precision, so a float64 model is float64 end to end (``torch.autograd.gradcheck`` holds). In eval mode a batch
        larger than ``embed_chunk_size`` (when set) is embedded in equal chunks of at most that many images.
        """
        chunk, n = self.embed_chunk_size, pixel_values.shape[0]
        if chunk is not None and not self.training and n > chunk:
            parts = pixel_values.tensor_split(-(-n // chunk))  # as equal as can be, none larger than `chunk`
            return torch.cat([self._embed_whole(part) for part in parts])
        return self._embed_whole(pixel_values)

    def _embed_whole(self, pixel_values: Tensor) -> Tensor:
        features = self.backbone(pixel_values)
        precise = features if features.dtype == torch.float64 else features.float()
        embedding = F.normalize(precise, p=2.0, dim=1, eps=1e-12)
        weight = float(getattr(self.config, "layout_weight", 0.0))
        if weight > 0:
            layout = layout_embedding(
                pixel_values.to(precise.dtype),
                self.config.image_mean,
                self.config.image_std,
                size=self.config.layout_size,
                channels=getattr(self.config, "layout_channels", "rgb"),
            )
            embedding = F.normalize(
                torch.cat([(1.0 - weight) ** 0.5 * embedding, weight**0.5 * layout], dim=1),
                p=2.0,
                dim=1,
                eps=1e-12,
            )
        return embedding.to(features.dtype)

    def embed_pair(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Embeddings of two batches of model-ready images of the same shape, in one forward pass (a call of the
        module itself, so ``model.compile()`` applies): the module's ``embed_pair``, which the functional core uses."""
        return embed_pair(self, x, y)

    def distance(self, x: Tensor, y: Tensor) -> Tensor:
        """SemSim distance per pair of model-ready images, in ``[0, 2]`` (lower = more leakage): the module's
        ``embedding_distance`` of ``embed_pair``, as the functional core computes it."""
        return embedding_distance(*embed_pair(self, x, y))

    def probability(self, distance: Tensor) -> Tensor:
        """Calibrated probability that the reconstruction is recognised, from its distance.

        Raises:
            ValueError: when the model carries no calibration.
        """
        cal = self.config.calibration_curve
        if cal is None:
            raise InvalidInputError(
                "This SemSim model has no calibration, so output='probability' is unavailable. "
                "Use output='distance', or fit one with semsim_metric.training.calibration.fit_calibration()."
            )
        return cal.probability(distance)

    def forward(
        self,
        pixel_values: Tensor,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> SemSimOutput | tuple[Tensor]:
        """Embed model-ready images (the same as ``embed``), as transformers models return their outputs.

        Args:
            pixel_values: model-ready images ``(N, 3, S, S)``.
            output_attentions: accepted for transformers' callers; the backbone has no attention to return, so
                ``True`` is an error.
            output_hidden_states: accepted for transformers' callers; hidden states are not returned, so ``True``
                is an error.
            return_dict: ``True`` returns a ``SemSimOutput``, ``False`` the tuple ``(embeddings,)``; ``None`` (the
                default) follows ``config.return_dict`` (``True`` unless set otherwise).

        Training objectives (triplet loss, class and vote stages) live in ``semsim_metric.training``;
        the model itself only embeds.

        Raises:
            ModelArgumentError: (a ``TypeError`` and ``ValueError``) ``output_attentions`` or
                ``output_hidden_states`` is ``True``. Any other argument is a ``TypeError``, as for any function.

        Examples:
            >>> model = SemSimModel(SemSimConfig(base_width=2)).eval()
            >>> x = torch.randn(2, 3, 32, 32)
            >>> type(model(x)).__name__, model(x, return_dict=False)[0].shape
            ('SemSimOutput', torch.Size([2, 16]))
        """
        for name, value in (
            ("output_attentions", output_attentions),
            ("output_hidden_states", output_hidden_states),
        ):
            if value:
                raise ModelArgumentError(
                    f"SemSimModel.forward({name}=True) cannot be honoured: a SemSim model returns its embeddings "
                    "only (no attentions or hidden states)."
                )
        output = SemSimOutput(embeddings=self.embed(pixel_values))
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        return output if return_dict else output.to_tuple()

    # -- strict safetensors I/O -----------------------------------------------------------------
    @overload
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *model_args: Any,
        output_loading_info: Literal[False] = False,
        **kwargs: Any,
    ) -> SemSimModel: ...

    @overload
    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike[str],
        *model_args: Any,
        output_loading_info: Literal[True],
        **kwargs: Any,
    ) -> tuple[SemSimModel, dict[str, Any]]: ...

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
        device_map: str | int | torch.device | dict[str, str | int | torch.device] | None = None,
        output_loading_info: bool = False,
        **kwargs: Any,
    ) -> SemSimModel | tuple[SemSimModel, dict[str, Any]]:
        """Load a SemSim model from a local folder or a Hub repository (strictly, safetensors only).

        Args:
            pretrained_model_name_or_path: a folder holding ``config.json`` and ``model.safetensors``,
                or a Hub model id such as ``"org/name"``.
            revision: branch, tag or commit of the Hub repository.
            cache_dir: huggingface_hub cache folder.
            local_files_only: never touch the network (also implied by ``HF_HUB_OFFLINE=1``).
            token: Hub token for private repositories.
            config: use this config instead of the folder's ``config.json``.
            dtype: the dtype of the loaded model (``torch_dtype`` is read as ``dtype``). ``None`` (the default)
                loads float32 whatever the weights are stored in, so that scores do not depend on how a model was
                saved; ``"auto"`` loads the dtype recorded in ``config.json`` (``dtype``, written by
                ``save_pretrained``), or else the dtype of the stored weights, as transformers does; a
                ``torch.dtype`` or its name loads that dtype. ``model.config.dtype`` is the loaded dtype.
            device_map: the one device to load onto: ``"cpu"``, ``"cuda:0"``, ``0``, a ``torch.device``, or a
                map whose every entry names the same device (``{"": "cuda:0"}``). A map over several devices,
                ``"disk"`` and the strategies (``"auto"``, ``"balanced"``, ...) are refused: a SemSim model is small
                and lives on one device.
            output_loading_info: also return the loading report transformers returns (``missing_keys``,
                ``unexpected_keys``, ``mismatched_keys``, ``error_msgs``): always empty, since loading is strict and
                any mismatch is an error instead.
            kwargs: ``subfolder`` (files in a sub-folder of the folder or repository), ``force_download``,
                ``use_safetensors`` (must not be False), ``trust_remote_code`` and ``low_cpu_mem_usage`` (nothing to
                do here); anything else is refused.

        The folder is untrusted: ``config.json`` is validated field by field (``load_config``), and the network
        it describes is compared with the header of ``model.safetensors`` - tensor names, shapes and sizes,
        built on the meta device - before any memory is allocated for it (``check_weights_match_config``).

        Returns:
            The model in evaluation mode; with ``output_loading_info=True``, ``(model, loading_info)``.

        Raises:
            ModelNotFoundError: (an ``OSError``) when the files cannot be found (no such folder, offline and not
                cached); the message says what was looked for.
            InvalidModelError: (a ``ValueError``) a malformed ``config.json`` (naming the file and the field),
                or weights that are not finite floating-point numbers.
            ModelMismatchError: (also a ``RuntimeError``) weights that do not match the architecture in
                ``config.json`` (the keys are named), found before the network is built.
            ModelArgumentError: (a ``TypeError`` and ``ValueError``) an argument that cannot be honoured: an unknown
                one, ``use_safetensors=False``, a dtype that is not floating point, a ``device_map`` over several
                devices or a placement strategy.

        Examples:
            >>> import tempfile
            >>> folder = tempfile.mkdtemp()
            >>> SemSimModel(SemSimConfig(base_width=4)).save_pretrained(folder, dtype=torch.float16)
            >>> SemSimModel.from_pretrained(folder).config.base_width
            4
            >>> SemSimModel.from_pretrained(folder, dtype="auto").dtype
            torch.float16
            >>> model, info = SemSimModel.from_pretrained(folder, device_map={"": "cpu"}, output_loading_info=True)
            >>> info["missing_keys"], model.device
            (set(), device(type='cpu'))
        """
        subfolder, force_download, dtype = _transformers_arguments(model_args, kwargs, dtype)
        device = _single_device(device_map)
        if isinstance(dtype, dict):
            raise ModelArgumentError(
                f"dtype={dtype!r}: a SemSim model has one dtype; pass a torch.dtype, its name or 'auto'."
            )
        if dtype is not None and dtype != "auto":
            dtype = _float_dtype(dtype)
        folder = resolve_model_folder(
            str(pretrained_model_name_or_path),
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            subfolder=subfolder,
            force_download=force_download,
        )
        config_source = (
            str(folder / CONFIG_NAME) if config is None else "the config passed to from_pretrained"
        )
        if config is None:
            config = load_config(folder / CONFIG_NAME)
        # compared with the weights' header on the meta device first: nothing is allocated for a config that
        # describes another (or an enormous) network
        check_weights_match_config(cls, config, folder / WEIGHTS_NAME, config_source=config_source)
        if dtype == "auto":
            dtype = (
                _float_dtype(config.dtype)
                if getattr(config, "dtype", None) is not None
                else stored_dtype(folder / WEIGHTS_NAME)
            )
        model = cls(config)
        load_weights_strict(model, folder / WEIGHTS_NAME)
        if dtype is not None:
            model = model.to(dtype)
        if device is not None:
            model = model.to(device)
        model.config.dtype = next(model.parameters()).dtype
        model.config._name_or_path = str(pretrained_model_name_or_path)
        model = model.eval()
        if output_loading_info:
            return model, {
                "missing_keys": set(),
                "unexpected_keys": set(),
                "mismatched_keys": set(),
                "error_msgs": [],
            }
        return model

    def save_pretrained(  # type: ignore[override]
        self,
        save_directory: str | os.PathLike[str],
        *,
        dtype: torch.dtype | str | None = None,
        state_dict: dict[str, Tensor] | None = None,
        is_main_process: bool = True,
        safe_serialization: bool = True,
        max_shard_size: int | str | None = None,
        push_to_hub: bool = False,
        **push_kwargs: Any,
    ) -> None:
        """Write ``config.json``, ``model.safetensors`` (optionally stored in ``dtype``, e.g. fp16) and
        ``preprocessor_config.json`` (the ``SemSimImageProcessor`` of this config, for ``AutoImageProcessor`` and
        pipelines).

        ``config.json`` records the dtype the weights are stored in as ``dtype``, as transformers 5 does:
        ``from_pretrained(folder, dtype="auto")`` loads that dtype (the default, ``dtype=None``, loads float32).

        Args:
            save_directory: the folder.
            dtype: store floating-point weights in this dtype (a ``torch.dtype`` or its name; default: the model's).
            state_dict: weights to store instead of the model's own.
            is_main_process: only the main process writes (distributed training).
            safe_serialization: must be true (safetensors only).
            max_shard_size: the weights are never sharded (a SemSim model is small); a limit they exceed is
                an error, not a silent shard.
            push_to_hub: afterwards upload the folder to the Hub repository ``repo_id`` (default: the folder's name),
                with its ``README.md`` (a card is written there first when it has none, see ``push_to_hub``) and the
                model code; the other keyword arguments are those of ``push_to_hub`` (``token``, ``private``,
                ``revision``, ``commit_message``, ``commit_description``, ``create_pr``, ``dataset``, ``license``).

        Raises:
            ModelArgumentError: (a ``TypeError`` and ``ValueError``) ``safe_serialization=False``, a dtype that is not
                floating point, weights larger than ``max_shard_size``, or arguments it cannot honour.
        """
        from .image_processing_semsim import SemSimImageProcessor

        allowed = {
            "repo_id",
            "token",
            "private",
            "revision",
            "commit_message",
            "commit_description",
            "create_pr",
            "dataset",
            "license",
        }
        unknown = sorted(set(push_kwargs) - allowed)
        if unknown or (push_kwargs and not push_to_hub):
            raise ModelArgumentError(
                f"save_pretrained() got arguments it cannot honour: {unknown or sorted(push_kwargs)}."
            )
        if not safe_serialization:
            raise ModelArgumentError(
                "SemSim saves safetensors only (safe_serialization=False is not supported)."
            )
        if dtype is not None:
            dtype = _float_dtype(dtype)
        if not is_main_process:
            return
        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.architectures = [type(self).__name__]
        state = {}
        for key, value in (state_dict if state_dict is not None else self.state_dict()).items():
            value = value.detach().cpu()
            if dtype is not None and value.is_floating_point():
                value = value.to(dtype)
            state[key] = value.contiguous()
        if max_shard_size is not None:
            from transformers.utils.hub import convert_file_size_to_int

            limit = convert_file_size_to_int(max_shard_size)
            size = sum(v.numel() * v.element_size() for v in state.values())
            if size > limit:
                raise ModelArgumentError(
                    f"the weights take {size / 2**20:.1f} MiB, more than max_shard_size="
                    f"{max_shard_size}; SemSim writes one unsharded model.safetensors: pass a "
                    "larger max_shard_size."
                )
        stored = next((v.dtype for v in state.values() if v.is_floating_point()), None)
        self.config.dtype = next(
            (p.dtype for p in self.parameters() if p.is_floating_point()), None
        )  # as it runs
        config = copy.deepcopy(
            self.config
        )  # the file records how the weights are stored, not how this model runs
        config.dtype = stored
        config.save_pretrained(str(folder))
        save_weights(state, folder / WEIGHTS_NAME)
        SemSimImageProcessor.from_model_config(self.config).save_pretrained(str(folder))
        if push_to_hub:
            _hub_upload().push_saved_folder(folder, self.config, **push_kwargs)

    def push_to_hub(  # type: ignore[override]
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        commit_description: str | None = None,
        private: bool | None = None,
        token: bool | str | None = None,
        revision: str | None = None,
        create_pr: bool = False,
        max_shard_size: int | str | None = None,
        dtype: torch.dtype | str | None = None,
        card: str | None = None,
        dataset: str | None = None,
        license: str = "apache-2.0",
    ) -> str:
        """Upload the model (``config.json``, ``model.safetensors``, ``preprocessor_config.json``, a model card and
        the model code for ``trust_remote_code``) to the Hub repository ``repo_id``, creating it if needed; returns
        the commit URL. The endpoint is ``HF_ENDPOINT``.

        ``card`` is the ``README.md`` to upload. By default a card is generated with the same writer as ``semsim
        train``'s (``semsim_metric.models.card``): Hub metadata (licence, library, pipeline tag, the training
        dataset's Hub id, ROC-AUCs as ``model-index`` results), how to load the model and its calibration. The
        dataset and results come from the ``training_info.json`` of the folder the model was loaded from (written by
        ``semsim train``), when there is one; ``dataset`` names the training dataset otherwise (a Hub id or a
        project ``hub/<name>`` folder). The work is ``semsim_metric.models.hub_upload.push_model_to_hub``'s.

        Raises:
            ModelArgumentError: from ``save_pretrained``.
            huggingface_hub.errors.HfHubHTTPError: the Hub refused the upload (no token, no rights, ...).
            ImportError: the package is not installed (this module's copy exported for ``trust_remote_code``).
        """
        return _hub_upload().push_model_to_hub(
            self,
            repo_id,
            commit_message=commit_message,
            commit_description=commit_description,
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
            max_shard_size=max_shard_size,
            dtype=dtype,
            card=card,
            dataset=dataset,
            license=license,
        )


def _hub_upload() -> Any:
    """``semsim_metric.models.hub_upload``, imported when uploading (absolute and inside ``try``: the copy of this
    module exported for ``trust_remote_code`` loads without the package, and cannot upload).

    Raises:
        ImportError: the package is not installed.
    """
    try:
        from semsim_metric.models import hub_upload
    except ImportError as err:
        raise ImportError("uploading needs the semsim-metric package (pip install semsim-metric)") from err
    return hub_upload


#: device_map strategies of transformers (they spread a model over devices; a SemSim model lives on one)
_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def _float_dtype(dtype: Any) -> torch.dtype:
    """``torch.float16`` from ``torch.float16`` or ``"float16"``.

    Raises:
        ModelArgumentError: not a floating-point dtype SemSim runs in.
    """
    try:
        return getattr(torch, check_dtype_name(dtype))  # type: ignore[arg-type]
    except ValueError as err:
        raise ModelArgumentError(str(err)) from None


def _as_device(value: Any) -> torch.device:
    if isinstance(value, bool):
        raise ModelArgumentError(f"device_map entry {value!r} is not a device.")
    if isinstance(value, int):
        return torch.device("cuda", value)
    if value == "disk":
        raise ModelArgumentError(
            "device_map puts weights on 'disk': a SemSim model is small and is loaded whole on "
            "one device; pass a device such as 'cpu' or 'cuda:0'."
        )
    try:
        return torch.device(value)
    except (RuntimeError, TypeError) as err:
        raise ModelArgumentError(f"device_map entry {value!r} is not a device ({err}).") from None


def _transformers_arguments(
    model_args: tuple[Any, ...], kwargs: dict[str, Any], dtype: Any
) -> tuple[str, bool, Any]:
    """The arguments of transformers' ``from_pretrained`` beyond SemSim's own: honoured (``subfolder``,
    ``force_download``, ``torch_dtype`` read as ``dtype``), accepted because they cannot change anything here, or
    refused - never silently ignored. Returns ``(subfolder, force_download, dtype)``.

    Raises:
        ModelArgumentError: ``use_safetensors=False``, positional arguments or an argument SemSim cannot honour.
    """
    subfolder = str(kwargs.pop("subfolder", "") or "")
    force_download = bool(kwargs.pop("force_download", False))
    if kwargs.pop("use_safetensors", None) is False:
        raise ModelArgumentError(
            "SemSim models load from model.safetensors only (use_safetensors=False is "
            "refused: other formats would have to be unpickled)."
        )
    kwargs.pop("trust_remote_code", None)  # the code is this package: nothing remote to trust or refuse
    kwargs.pop("low_cpu_mem_usage", None)  # loading is always one pass over a small safetensors file
    torch_dtype = kwargs.pop("torch_dtype", None)
    if dtype is None:
        dtype = torch_dtype
    # AutoModel passes some arguments with empty values (adapter_kwargs={}, code_revision=None, ...)
    unknown = [k for k, v in kwargs.items() if not k.startswith("_") and v not in (None, {}, False, "")]
    if model_args or unknown:
        raise ModelArgumentError(
            f"SemSimModel.from_pretrained() got arguments it cannot honour: {unknown or list(model_args)}. "
            "Supported: revision, cache_dir, local_files_only, token, config, dtype/torch_dtype, device_map (one "
            "device), output_loading_info, subfolder, force_download, use_safetensors, trust_remote_code."
        )
    return subfolder, force_download, dtype


def _single_device(device_map: Any) -> torch.device | None:
    """The one device a ``device_map`` names: a device, or a map whose entries all name the same device.

    Raises:
        ModelArgumentError: a strategy (``"auto"``, ...), a map over several devices, an empty map, ``"disk"``.
    """
    if device_map is None:
        return None
    if isinstance(device_map, str) and device_map in _STRATEGIES:
        raise ModelArgumentError(
            f"device_map={device_map!r}: a SemSim model is small and lives on one device; pass "
            "a device such as 'cpu' or 'cuda:0' (or {'': 'cuda:0'})."
        )
    if isinstance(device_map, dict):
        devices = {str(_as_device(v)) for v in device_map.values()}
        if len(devices) != 1:
            raise ModelArgumentError(
                f"device_map maps the model onto {len(devices)} devices ({', '.join(sorted(devices)) or 'none'}): a "
                "SemSim model is small and lives on one device; pass one device, e.g. device_map={'': 'cuda:0'}."
            )
        return torch.device(devices.pop())
    return _as_device(device_map)


def embed_pair(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Embeddings of two same-shaped batches of model-ready images in one call of ``model`` itself (a
    ``SemSimModel``, or ``torch.compile`` of one: the compiled forward is what runs).

    The embeddings are L2-normalised ``(N, D)``: their Euclidean distance is SemSim, in ``[0, 2]``, lower =
    more leakage."""
    if x.shape != y.shape:
        raise InvalidInputError(
            f"SemSim needs two batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    ex, ey = model(torch.cat([x, y], dim=0)).embeddings.split(x.shape[0], dim=0)
    return ex, ey


#: a layout thumbnail (pixel values, 1 = white) whose every value is within this of its mean is flat: no layout
LAYOUT_FLAT_TOLERANCE = 1e-5
#: the weights of R, G and B in a luminance layout (ITU-R BT.601, as PIL's ``convert("L")``)
LUMINANCE_WEIGHTS = (0.299, 0.587, 0.114)


def layout_embedding(
    pixel_values: Tensor, image_mean: list[float], image_std: list[float], *, size: int, channels: str = "rgb"
) -> Tensor:
    """The layout part of a SemSim embedding: where an image is light and dark, and in which colours.

    The model-ready images (normalised with ``image_mean`` / ``image_std``) are taken back to their pixel values,
    averaged down to ``size x size`` (in colour with ``channels="rgb"``, ``3 * size ** 2`` values; as luminance with
    ``channels="luminance"``, ``size ** 2`` values weighted 0.299 R + 0.587 G + 0.114 B as in ITU-R BT.601, so that
    the right shapes in other colours keep their layout), and each thumbnail has its mean subtracted and its length
    set to 1: adding a constant (brightness) or scaling around the mean (contrast) leaves it unchanged, blur, JPEG
    and mild noise hardly move it, while noise or another image's layout point elsewhere. A flat image has no layout
    (zeros), also where the way back from float32 or float64 model-ready values leaves round-off
    (``LAYOUT_FLAT_TOLERANCE``; bfloat16 and float16 inputs are rounded far more coarsely than that before they get
    here). Returns ``(N, C * size ** 2)`` unit-length rows (zeros for a flat image), C = 3 or 1.

    Raises:
        ValueError: ``channels`` is neither ``"rgb"`` nor ``"luminance"``.

    Examples:
        >>> x = torch.rand(2, 3, 32, 32)
        >>> mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]
        >>> a = layout_embedding((x - 0.5) / 0.25, mean, std, size=8)
        >>> b = layout_embedding((0.6 * x + 0.1 - 0.5) / 0.25, mean, std, size=8)  # dimmer, less contrast
        >>> a.shape, torch.allclose(a, b, atol=1e-5), torch.allclose(a.norm(dim=1), torch.ones(2))
        (torch.Size([2, 192]), True, True)
        >>> layout_embedding((x - 0.5) / 0.25, mean, std, size=8, channels="luminance").shape
        torch.Size([2, 64])
    """
    mean = torch.tensor(image_mean, dtype=pixel_values.dtype, device=pixel_values.device).view(1, -1, 1, 1)
    std = torch.tensor(image_std, dtype=pixel_values.dtype, device=pixel_values.device).view(1, -1, 1, 1)
    pixels = pixel_values * std + mean
    if channels == "luminance":
        weights = torch.tensor(LUMINANCE_WEIGHTS, dtype=pixels.dtype, device=pixels.device).view(1, -1, 1, 1)
        pixels = (pixels * weights).sum(dim=1, keepdim=True)
    elif channels != "rgb":
        raise InvalidInputError(f"channels must be 'rgb' or 'luminance', got {channels!r}.")
    thumbnail = F.adaptive_avg_pool2d(pixels, size).flatten(1)
    centred = thumbnail - thumbnail.mean(dim=1, keepdim=True)
    # the way back from model-ready values leaves float round-off (about 1e-7) on a flat image; scaled to unit
    # length it would be a random layout, so a thumbnail that deviates from its mean by less than LAYOUT_FLAT_TOLERANCE
    # everywhere is flat (one grey level of 8-bit pixels in one of the 4 pixels of a cell at the default sizes 32 and
    # 16 is about 1e-3)
    flat = centred.abs().amax(dim=1, keepdim=True) < LAYOUT_FLAT_TOLERANCE
    return F.normalize(centred.masked_fill(flat, 0.0), p=2.0, dim=1, eps=1e-6)


def embedding_distance(a: Tensor, b: Tensor) -> Tensor:
    """SemSim's distance: the Euclidean (L2) distance between rows of embeddings ``(N, D)``, one per row; for the
    L2-normalised embeddings of ``embed_pair`` it lies in ``[0, 2]`` (lower = more leakage). ``SemSimModel.distance``
    computes the score here; the functional core and the training objectives measure embeddings with it too.

    Examples:
        >>> embedding_distance(torch.tensor([[3.0, 4.0]]), torch.zeros(1, 2))
        tensor([5.])
    """
    return torch.linalg.vector_norm(a - b, ord=2, dim=1)


def _register() -> None:
    """Register this module's classes with ``AutoConfig`` / ``AutoModel`` (replacing the stand-in that
    ``semsim_metric.models.registration`` registers before the model code is imported)."""
    AutoConfig.register("semsim", SemSimConfig, exist_ok=True)
    AutoModel.register(SemSimConfig, SemSimModel, exist_ok=True)


_register()
