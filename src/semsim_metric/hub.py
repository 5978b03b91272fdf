"""Where SemSim weights come from: the default model, the bundled copy and the Hugging Face Hub.

This module only finds files; it knows nothing of the network (``semsim_metric.models`` reads the
files, ``semsim_metric.functional`` caches loaded models). Resolution of a ``model`` name:

1. an existing local folder is read directly;
2. the default id (``DEFAULT_MODEL_ID``) at the pinned revision (or with no revision) is served
   from the copy bundled inside the package - no network, works on a fresh offline install;
3. anything else is a Hub id, downloaded through ``huggingface_hub`` (its cache, ``HF_HUB_OFFLINE``,
   ``local_files_only``, ``revision``, ``HF_ENDPOINT``); an offline miss raises an error saying how to
   fix it.
"""

from __future__ import annotations

import os
from pathlib import Path


__all__ = [
    "CONFIG_NAME",
    "DEFAULT_MODEL_ID",
    "DEFAULT_REVISION",
    "WEIGHTS_NAME",
    "DefaultModelMissingError",
    "bundled_model_path",
    "resolve_model_folder",
]

#: Files of a SemSim model folder (the same names as transformers uses).
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"

#: Hub id of the default SemSim model (its files are also bundled with the package).
DEFAULT_MODEL_ID = "semsim-metric/semsim-resnet18-fmnist-judged"
#: Pinned revision (tag) of the default model; the bundled copy is this revision.
DEFAULT_REVISION = "v6"
#: Subfolder of the package that holds the bundled default model.
_BUNDLED = Path(__file__).parent / "_bundled" / "semsim-resnet18-fmnist-judged"


class DefaultModelMissingError(OSError):
    """Raised when the default model is requested but neither bundled nor downloadable."""


def bundled_model_path() -> Path | None:
    """Folder of the default model shipped inside the package, or ``None`` if this install has none."""
    if (_BUNDLED / CONFIG_NAME).is_file() and (_BUNDLED / WEIGHTS_NAME).is_file():
        return _BUNDLED
    return None


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


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

    Raises:
        OSError: the folder lacks files, the id is malformed, or the files are not cached while offline.
    """
    path = Path(name_or_path).expanduser()
    if subfolder and path.is_dir():
        path = path / subfolder
        if not path.is_dir():
            raise OSError(f"{name_or_path} has no sub-folder {subfolder!r}.")
    if path.is_dir():
        missing = [f for f in (CONFIG_NAME, WEIGHTS_NAME) if not (path / f).is_file()]
        if missing:
            raise OSError(
                f"{path} is not a SemSim model folder: missing {', '.join(missing)}. Create one with "
                "SemSimModel.save_pretrained(folder) or `semsim train`."
            )
        return path
    if name_or_path == DEFAULT_MODEL_ID and revision in (None, DEFAULT_REVISION) and not subfolder \
            and not force_download:
        bundled = bundled_model_path()
        if bundled is not None:
            return bundled
    if name_or_path.count("/") != 1 or name_or_path.startswith((".", "/", "~")):
        raise OSError(
            f"{name_or_path!r} is neither an existing folder nor a Hub model id of the form 'org/name'."
        )
    return _download(name_or_path, revision=revision, cache_dir=cache_dir,
                     local_files_only=local_files_only, token=token, subfolder=subfolder,
                     force_download=force_download)


def _download(
    repo_id: str,
    *,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    local_files_only: bool | None,
    token: str | bool | None,
    subfolder: str = "",
    force_download: bool = False,
) -> Path:
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
            paths.append(Path(hf_hub_download(
                repo_id, filename, revision=revision, cache_dir=cache_dir, subfolder=subfolder or None,
                local_files_only=offline, token=token, force_download=force_download and not offline,
            )))
    except LocalEntryNotFoundError as err:
        default_hint = ""
        if repo_id == DEFAULT_MODEL_ID:
            default_hint = (" The default model is normally bundled with semsim-metric; reinstall the package "
                            "(pip install --force-reinstall semsim-metric) to get it back.")
        raise OSError(
            f"SemSim model {repo_id!r} (revision {revision or 'main'}) is not in the local Hugging Face cache "
            f"and downloading is {'disabled (offline mode)' if offline else 'not possible'}. Fix: run once "
            f"online (unset HF_HUB_OFFLINE, local_files_only=False), or download the folder elsewhere with "
            f"`hf download {repo_id} --local-dir DIR` and pass model=DIR.{default_hint}"
        ) from err
    except RepositoryNotFoundError as err:
        raise OSError(f"No Hub model repository {repo_id!r} (or it is private: pass token=...).") from err
    except RevisionNotFoundError as err:
        raise OSError(f"Hub model {repo_id!r} has no revision {revision!r}.") from err
    except EntryNotFoundError as err:
        raise OSError(
            f"Hub repository {repo_id!r} has no {err.args[0] if err.args else 'required file'}: a SemSim model "
            f"repository holds {CONFIG_NAME} and {WEIGHTS_NAME}."
        ) from err
    return paths[0].parent
