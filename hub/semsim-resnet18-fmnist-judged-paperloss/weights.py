# Exported from semsim-metric 0.1.0 (semsim_metric/models/weights.py) by semsim_metric.models.remote_code.export_remote_code; edit the package, not this copy.
"""A SemSim model folder's files, read as untrusted and written readable: ``config.json`` and ``model.safetensors``.

``SemSimModel.from_pretrained`` reads a folder through these functions: ``load_config`` validates ``config.json``
(bounded in size), ``check_weights_match_config`` compares the network it describes (built on the meta device) with
the safetensors header (``read_weights_header``, bounded) before anything is allocated, and ``load_weights_strict``
loads the weights (a missing or unexpected key is an error; nothing is ever unpickled). ``save_weights`` writes
``model.safetensors`` with the mode any other file gets. The model itself is in ``modeling_semsim``.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .errors import UnreadableWeightsError
from .configuration_semsim import SemSimConfig

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_WEIGHTS_HEADER_BYTES",
    "check_weights_match_config",
    "load_config",
    "load_weights_strict",
    "read_weights_header",
    "save_weights",
    "stored_dtype",
]

#: largest ``config.json`` read, in bytes (the default model's is about 54 KB, mostly its training-domain record)
MAX_CONFIG_BYTES = 32 * 2**20
#: largest safetensors header read, in bytes (a SemSim model's lists a few hundred tensors in a few KB)
MAX_WEIGHTS_HEADER_BYTES = 8 * 2**20
#: values the network may hold beyond those saved in ``model.safetensors`` (buffers that are not saved)
_UNSAVED_VALUES = 2**24

#: safetensors' dtype names of the floating-point dtypes a SemSim model can be stored in
_SAFETENSORS_DTYPES = {"F16": "float16", "BF16": "bfloat16", "F32": "float32", "F64": "float64"}


def stored_dtype(weights_file: Path) -> torch.dtype | None:
    """The dtype of the first floating-point tensor in ``weights_file`` (read from its header), for ``dtype="auto"``
    when ``config.json`` records none."""
    for stored, _ in read_weights_header(weights_file).values():
        if stored in _SAFETENSORS_DTYPES:
            return getattr(torch, _SAFETENSORS_DTYPES[stored])
    return None


def save_weights(state: dict[str, Tensor], weights_file: Path) -> None:
    """Write ``state`` to ``weights_file`` (safetensors, ``format: pt``), readable like any other file the user
    writes (see ``_readable_like_other_files``)."""
    from safetensors.torch import save_file

    save_file(state, str(weights_file), metadata={"format": "pt"})
    _readable_like_other_files(Path(weights_file))


def _readable_like_other_files(path: Path) -> None:
    """safetensors writes through a private temporary file (mode 0600); give the weights the mode any other
    file gets under the user's umask, so a shared or published folder is readable like its config.json."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def load_config(config_file: Path) -> SemSimConfig:
    """Read and validate ``config.json`` (at most ``MAX_CONFIG_BYTES``).

    Raises:
        InvalidModelError: the file is too large, not JSON, not an object, not a SemSim config, or a field is
            malformed (the message names the file and the field, e.g. ``backbone_config.backbone``).
    """
    import json

    from .errors import InvalidModelError

    try:
        with Path(config_file).open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise InvalidModelError(f"{config_file} is not a readable JSON file ({err}).") from err
    if len(data) > MAX_CONFIG_BYTES:
        raise InvalidModelError(
            f"{config_file} is larger than {MAX_CONFIG_BYTES // 2**20} MiB, far more than a SemSim "
            "config needs (the default model's is 54 KB); it is not read. Check that the folder "
            "holds the config.json written by SemSimModel.save_pretrained."
        )
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise InvalidModelError(f"{config_file} is not a readable JSON file ({err}).") from err
    if not isinstance(raw, dict):
        raise InvalidModelError(f"{config_file} must hold a JSON object, got {type(raw).__name__}.")
    if raw.get("model_type", "semsim") != "semsim":
        raise InvalidModelError(
            f"{config_file} describes a {raw.get('model_type')!r} model, not a SemSim model."
        )
    try:
        return SemSimConfig.from_dict(raw)
    except (TypeError, ValueError, KeyError, RecursionError) as err:
        raise InvalidModelError(f"{config_file}: {err}") from err


def read_weights_header(weights_file: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Name -> ``(dtype, shape)`` of every tensor in a safetensors file, read from its header alone (no tensor data
    is read; safetensors checks that the header's tensors exactly cover the file).

    Raises:
        ModelNotFoundError: (an ``OSError``) there is no such file.
        InvalidModelError: the header is larger than ``MAX_WEIGHTS_HEADER_BYTES``.
        OSError: the file is not a readable safetensors file.
    """
    from safetensors import SafetensorError, safe_open

    from .errors import InvalidModelError, ModelNotFoundError

    weights_file = Path(weights_file)
    if not weights_file.is_file():
        raise ModelNotFoundError(
            f"No weights file at {weights_file}. A SemSim model folder holds config.json and "
            "model.safetensors (other formats, such as pickled .bin files, are refused)."
        )
    try:
        with weights_file.open("rb") as fh:
            prefix = fh.read(8)
    except OSError as err:
        raise UnreadableWeightsError(f"{weights_file} is not a readable safetensors file ({err}).") from err
    if len(prefix) == 8 and int.from_bytes(prefix, "little") > MAX_WEIGHTS_HEADER_BYTES:
        raise InvalidModelError(
            f"{weights_file}: its safetensors header claims {int.from_bytes(prefix, 'little'):,} bytes, more than the "
            f"{MAX_WEIGHTS_HEADER_BYTES // 2**20} MiB any SemSim model needs; it is not read. Re-export the model with "
            "SemSimModel.save_pretrained."
        )
    try:
        with safe_open(str(weights_file), framework="pt") as f:
            header = {}
            for key in f.keys():  # noqa: SIM118 (a safetensors file handle, not a dict)
                tensor = f.get_slice(key)
                header[key] = (str(tensor.get_dtype()), tuple(int(n) for n in tensor.get_shape()))
            return header
    except (SafetensorError, OSError, ValueError) as err:
        raise UnreadableWeightsError(f"{weights_file} is not a readable safetensors file ({err}).") from err


class _BuildTooLarge(Exception):
    """Raised from inside a module registration hook: the network being built outgrows its weights file."""


@contextlib.contextmanager
def _registration_budget(limit: int) -> Iterator[None]:
    """Stop (``_BuildTooLarge``) a network being built in this thread once it has registered more than ``limit``
    parameters, buffers and sub-modules: a crafted config cannot keep Python building modules for hours."""
    from torch.nn.modules import module as torch_module

    thread = threading.get_ident()
    registered = 0

    def count(*_: Any) -> None:
        nonlocal registered
        if threading.get_ident() == thread:
            registered += 1
            if registered > limit:
                raise _BuildTooLarge

    handles = [
        torch_module.register_module_parameter_registration_hook(count),
        torch_module.register_module_buffer_registration_hook(count),
        torch_module.register_module_module_registration_hook(count),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def check_weights_match_config(
    model_class: Callable[[SemSimConfig], nn.Module],
    config: SemSimConfig,
    weights_file: Path,
    *,
    config_source: str = "config.json",
) -> None:
    """Check, before allocating anything, that ``weights_file`` holds exactly the network ``config`` describes.

    The network is built on the meta device (shapes, no memory) and compared with the safetensors header
    (``read_weights_header``): the total size, then every tensor name and shape. Building stops early when the
    config describes far more modules than the file has tensors. A folder whose ``config.json`` describes a
    terabyte network beside a 180 KB weights file is refused in well under a second.

    Args:
        model_class: the class to build (``SemSimModel`` or a subclass).
        config: the validated config.
        weights_file: the ``model.safetensors`` to compare with.
        config_source: what ``config`` came from, for messages.

    Raises:
        ModelMismatchError: (a ``RuntimeError`` and ``InvalidModelError``) the sizes, names or shapes differ; the
            message names the files and the first keys.
        InvalidModelError: the network the config describes cannot be built.
        ModelNotFoundError, OSError: from ``read_weights_header``.
    """
    from .errors import InvalidModelError, ModelMismatchError

    header = read_weights_header(weights_file)
    stored = sum(math.prod(shape) for _, shape in header.values())
    limit = (
        8 * len(header) + 1024
    )  # real networks register about 2 modules, parameters or buffers per saved tensor
    try:
        with _registration_budget(limit), torch.device("meta"):
            skeleton = model_class(config)
    except _BuildTooLarge:
        raise ModelMismatchError(
            f"{config_source} describes a network with more than {limit:,} modules, parameters and buffers, while "
            f"{weights_file} holds {len(header):,} tensors: the config does not belong to these weights (it was "
            "refused before anything was allocated). Check backbone, base_width and backbone_config."
        ) from None
    except ImportError:
        raise
    except (RuntimeError, ValueError, TypeError, AttributeError, NotImplementedError) as err:
        raise InvalidModelError(
            f"{config_source}: the network it describes cannot be built ({err})."
        ) from err
    tensors = {id(t): t for t in [*skeleton.parameters(), *skeleton.buffers()]}
    needed = sum(t.numel() for t in tensors.values())
    if needed > stored + _UNSAVED_VALUES:
        raise ModelMismatchError(
            f"{config_source} describes a network of {needed:,} values ({needed * 4 / 2**30:,.1f} GiB in float32), "
            f"but {weights_file} holds {stored:,}: the config does not belong to these weights (refused before "
            "anything was allocated). Check backbone, base_width and backbone_config."
        )
    expected = {key: tuple(value.shape) for key, value in skeleton.state_dict().items()}
    _check_keys_and_shapes(expected, {key: shape for key, (_, shape) in header.items()}, weights_file)


def _check_keys_and_shapes(
    expected: dict[str, tuple[int, ...]], stored: dict[str, tuple[int, ...]], weights_file: Path
) -> None:
    from .errors import ModelMismatchError

    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise ModelMismatchError(
            f"Weights in {weights_file} do not match the architecture in config.json. "
            f"Missing keys ({len(missing)}): {_short(missing)}; unexpected keys ({len(unexpected)}): "
            f"{_short(unexpected)}. Check that config.json (backbone, base_width) belongs to these weights."
        )
    wrong_shape = [k for k in expected if expected[k] != stored[k]]
    if wrong_shape:
        k = wrong_shape[0]
        raise ModelMismatchError(
            f"Weights in {weights_file} have the wrong shape for {len(wrong_shape)} keys, e.g. {k}: "
            f"file {stored[k]} vs model {expected[k]}. Check that config.json (backbone, base_width) belongs to "
            "these weights."
        )


def load_weights_strict(model: nn.Module, weights_file: Path) -> None:
    """Load ``weights_file`` (safetensors) into ``model``; any missing/unexpected key is an error.

    Raises:
        ModelNotFoundError: (an ``OSError``) there is no such file.
        OSError: the file is not a readable safetensors file.
        ModelMismatchError: (a ``RuntimeError``) missing or unexpected keys, or wrong shapes (named).
        InvalidModelError: a tensor that is not floating point where the model's is, or holds NaN/Inf.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .errors import InvalidModelError, ModelNotFoundError

    if not weights_file.is_file():
        raise ModelNotFoundError(
            f"No weights file at {weights_file}. A SemSim model folder holds config.json and "
            "model.safetensors (other formats, such as pickled .bin files, are refused)."
        )
    try:
        state = load_file(str(weights_file))
    except (SafetensorError, OSError, ValueError) as err:
        raise UnreadableWeightsError(f"{weights_file} is not a readable safetensors file ({err}).") from err
    expected = model.state_dict()
    _check_keys_and_shapes(
        {k: tuple(v.shape) for k, v in expected.items()},
        {k: tuple(v.shape) for k, v in state.items()},
        weights_file,
    )
    for key, target in expected.items():
        value = state[key]
        if target.is_floating_point() != value.is_floating_point() or value.is_complex():
            raise InvalidModelError(
                f"{weights_file}: tensor {key} has dtype {value.dtype}, but the model stores it as {target.dtype}; "
                "SemSim weights are floating point (save them with SemSimModel.save_pretrained)."
            )
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise InvalidModelError(
                f"{weights_file}: tensor {key} holds NaN or infinite values; these weights would make every score "
                "NaN. Retrain or re-export the model."
            )
    with torch.no_grad():
        for key, target in expected.items():
            target.copy_(state[key].to(target.dtype))


def _short(keys: list[str], limit: int = 6) -> str:
    if not keys:
        return "none"
    shown = ", ".join(keys[:limit])
    return shown + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")
