"""Where SemSim weights come from: the default model, the bundled copy and the Hugging Face Hub.

This module only finds files; it knows nothing of the network (``semsim_metric.models`` reads the
files, ``semsim_metric.functional`` caches loaded models). Resolution of a ``model`` name:

1. an existing local folder is read directly;
2. the default id (``DEFAULT_MODEL_ID``) at the pinned revision (or with no revision) is served
   from the copy bundled inside the package - no network, works on a fresh offline install;
3. a name that can only be a path is never looked up on the Hub: one that is not a Hub id ``owner/name``
   (``./x``, ``../x``, ``/x``, ``~/x``, ``a/b/c``, backslashes), or an ``owner/name`` whose ``owner`` exists
   here (``runs/x`` beside a ``runs/`` folder). A missing one raises ``ModelNotFoundError`` naming the path;
4. anything else is a Hub id, downloaded through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``,
   ``local_files_only``, ``revision``, ``HF_ENDPOINT``); a miss says that neither a local folder nor the Hub
   (or its cache, offline) has it, and how to fix it. ``hf://owner/name`` names the Hub repository
   explicitly, whatever folders exist here.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import DefaultModelMissingError, ModelNotFoundError

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_MODEL_ID",
    "DEFAULT_REVISION",
    "HUB_PREFIX",
    "PREPROCESSOR_NAME",
    "WEIGHTS_NAME",
    "DefaultModelMissingError",
    "bundled_model_path",
    "resolve_model_folder",
]

#: Files of a SemSim model folder (the same names as transformers uses). ``PREPROCESSOR_NAME`` (the image
#: processor's settings, for ``AutoImageProcessor`` and pipelines) is written beside them but never required.
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PREPROCESSOR_NAME = "preprocessor_config.json"

#: Hub id of the default SemSim model (its files are also bundled with the package).
DEFAULT_MODEL_ID = "semsim-metric/semsim-resnet18-fmnist-judged"
#: Pinned revision (tag) of the default model; the bundled copy is this revision.
DEFAULT_REVISION = "v8"
#: Prefix that makes a name a Hub repository id whatever exists locally: ``hf://owner/name``.
HUB_PREFIX = "hf://"
#: Subfolder of the package that holds the bundled default model.
_BUNDLED = Path(__file__).parent / "_bundled" / "semsim-resnet18-fmnist-judged"


def bundled_model_path() -> Path | None:
    """Folder of the default model shipped inside the package, or ``None`` if this install has none."""
    if (_BUNDLED / CONFIG_NAME).is_file() and (_BUNDLED / WEIGHTS_NAME).is_file():
        return _BUNDLED
    return None


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def _is_hub_id(name: str) -> bool:
    """True for a well-formed Hub repository id ``owner/name`` (the characters and length the Hub allows)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if name.count("/") != 1 or "\\" in name:
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _local_path(name: str) -> Path:
    try:
        return Path(name).expanduser()
    except RuntimeError:  # "~user/..." for an unknown user
        return Path(name)


def _absolute(path: Path) -> str:
    try:
        return str(path.absolute())
    except OSError:  # the working directory is gone
        return str(path)


def _nearest_existing(path: Path) -> Path | None:
    for parent in path.absolute().parents:
        if parent.is_dir():
            return parent
    return None


def _no_local_folder(name: str, path: Path) -> ModelNotFoundError:
    """The error for a name that can only be a local path and names no folder (the Hub was not tried)."""
    if path.exists():
        detail = f"{_absolute(path)} exists but is not a folder"
        why = "it exists here"
    else:
        nearest = _nearest_existing(path)
        detail = f"{_absolute(path)} does not exist" + (
            f" (the nearest existing folder is {nearest})" if nearest else ""
        )
        why = "it is neither an existing folder nor a Hub model id of the form 'owner/name'"
    return ModelNotFoundError(
        f"No model folder at {name!r}: {detail}. As {why}, it is read as a local path and the Hugging Face Hub "
        "was not tried. Fix: check the path; a SemSim model folder holds config.json and model.safetensors "
        "(write one with SemSimModel.save_pretrained(folder) or `semsim train`)."
    )


def resolve_model_folder(
    name_or_path: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
    subfolder: str = "",
    force_download: bool = False,
) -> Path:
    """Return a local folder with ``config.json`` and ``model.safetensors`` for ``name_or_path``
    (in ``subfolder`` of the folder or repository, when given).

    ``name_or_path`` is a folder, a Hub id ``owner/name`` or ``hf://owner/name`` (the Hub, whatever exists
    locally). A name that can only be a path - not of the form ``owner/name``, or whose ``owner`` exists as a
    local folder or file (``runs/x`` beside ``runs/``) - is never looked up on the Hub.

    Raises:
        ModelNotFoundError: (an ``OSError``) the folder lacks files; a path-like name names no folder (the
            message gives the path and the nearest existing folder); or a Hub id is neither a local folder nor
            available (not cached while offline, no such repository or revision). Each message says what was
            tried and how to fix it.
    """
    explicit_hub = name_or_path.startswith(HUB_PREFIX)
    name = name_or_path[len(HUB_PREFIX) :] if explicit_hub else name_or_path
    path = _local_path(name)
    if explicit_hub:
        if not _is_hub_id(name):
            raise ModelNotFoundError(
                f"{name_or_path!r} is not a Hub model id: {HUB_PREFIX} is followed by "
                "'owner/name' (letters, digits, '-', '_', '.')."
            )
    else:
        if subfolder and path.is_dir():
            path = path / subfolder
            if not path.is_dir():
                raise ModelNotFoundError(f"{name_or_path} has no sub-folder {subfolder!r}.")
        if path.is_dir():
            missing = [f for f in (CONFIG_NAME, WEIGHTS_NAME) if not (path / f).is_file()]
            if missing:
                raise ModelNotFoundError(
                    f"{path} is not a SemSim model folder: missing {', '.join(missing)}. Create one with "
                    "SemSimModel.save_pretrained(folder) or `semsim train`."
                )
            return path
    if (
        name == DEFAULT_MODEL_ID
        and revision in (None, DEFAULT_REVISION)
        and not subfolder
        and not force_download
    ):
        bundled = bundled_model_path()
        if bundled is not None:
            return bundled
    local = None
    if not explicit_hub:
        if name.startswith((".", "/", "~")) or not _is_hub_id(name) or path.exists():
            raise _no_local_folder(name, path)
        owner, rest = name.split("/")
        # runs/x beside a runs/ folder: a mistyped path, not someone's Hub repo
        if _local_path(owner).exists():
            raise ModelNotFoundError(
                f"No model folder at {name!r} ({_absolute(path)}): {owner}/ exists here but holds no {rest!r}. "
                f"Because {owner}/ exists, {name!r} is read as a local path and not looked up on the Hugging Face "
                f"Hub. Fix: correct the path, or pass '{HUB_PREFIX}{name}' to load the Hub repository {name!r}."
            )
        local = _absolute(path)
    return _download(
        name,
        revision=revision,
        cache_dir=cache_dir,
        local_files_only=local_files_only,
        token=token,
        subfolder=subfolder,
        force_download=force_download,
        local=local,
    )


def _download(
    repo_id: str,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool | None,
    token: str | bool | None,
    subfolder: str = "",
    force_download: bool = False,
    local: str | None = None,
) -> Path:
    """Download (or find in the cache) the two files of the Hub repository ``repo_id``; ``local`` is the local
    folder that was looked for first (named in the errors)."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if repo_id == DEFAULT_MODEL_ID and revision is None:
        revision = DEFAULT_REVISION
    offline = bool(local_files_only) or _offline_env()
    paths = []
    try:
        for filename in (CONFIG_NAME, WEIGHTS_NAME):
            paths.append(
                Path(
                    hf_hub_download(
                        repo_id,
                        filename,
                        revision=revision,
                        cache_dir=cache_dir,
                        subfolder=subfolder or None,
                        local_files_only=offline,
                        token=token,
                        force_download=force_download and not offline,
                    )
                )
            )
    except LocalEntryNotFoundError as err:
        raise ModelNotFoundError(
            _not_cached_message(repo_id, revision, offline=offline, local=local)
        ) from err
    except RepositoryNotFoundError as err:
        no_folder = f"No local folder {repo_id} ({local}) and no" if local else "No"
        raise ModelNotFoundError(
            f"{no_folder} Hub model repository {repo_id!r} (or it is private: pass token=...)."
        ) from err
    except RevisionNotFoundError as err:
        raise ModelNotFoundError(f"Hub model {repo_id!r} has no revision {revision!r}.") from err
    except EntryNotFoundError as err:
        raise ModelNotFoundError(
            f"Hub repository {repo_id!r} has no {err.args[0] if err.args else 'required file'}: a SemSim model "
            f"repository holds {CONFIG_NAME} and {WEIGHTS_NAME}."
        ) from err
    return paths[0].parent


def _not_cached_message(repo_id: str, revision: str | None, *, offline: bool, local: str | None) -> str:
    """What to say when a Hub model is neither cached nor downloadable (``local``: the folder looked for first)."""
    default_hint = ""
    if repo_id == DEFAULT_MODEL_ID and revision not in (None, DEFAULT_REVISION):
        default_hint = (
            f" Only revision {DEFAULT_REVISION} of the default model is bundled with semsim-metric; other "
            "revisions come from the Hub (or its cache)."
        )
    elif repo_id == DEFAULT_MODEL_ID:
        default_hint = (
            " The default model is normally bundled with semsim-metric; reinstall the package "
            "(pip install --force-reinstall semsim-metric) to get it back."
        )
    neither = (
        f"SemSim model {repo_id!r} was not found: there is no local folder {repo_id} ({local}), and the "
        "Hub repository"
        if local
        else "SemSim model"
    )
    return (
        f"{neither} {repo_id!r} (revision {revision or 'main'}) is not in the local Hugging Face cache "
        f"and downloading is {'disabled (offline mode)' if offline else 'not possible'}. Fix: "
        + ("if you meant a local folder, check the path; for the Hub repository, " if local else "")
        + "run once online (unset HF_HUB_OFFLINE, local_files_only=False), or download the folder elsewhere "
        f"with `hf download {repo_id} --local-dir DIR` and pass that folder (model=DIR, or --model DIR on "
        f"the command line).{default_hint}"
    )
