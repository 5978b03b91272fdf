"""Loading SemSim annotation datasets with ``datasets.load_dataset``."""

from __future__ import annotations

import functools
import os
import re
import shutil
from pathlib import Path
from typing import Any

from .._deps import require
from ..errors import InvalidInputError

datasets = require("datasets", "SemSim datasets")

__all__ = [
    "LOCAL_CACHE",
    "check_schema",
    "load_annotations",
    "load_folder_or_hub",
    "remove_stale_caches",
    "undecoded",
    "unique_originals",
]

#: the folder, inside ``datasets``' cache, of the per-process copies of local dataset folders
#: (``semsim-local/pid-<pid>@<host>``; copies made before the host was recorded are ``pid-<pid>``)
LOCAL_CACHE = "semsim-local"
_PROCESS_FOLDER = re.compile(r"^pid-(\d+)(?:@(.+))?$")


def load_folder_or_hub(
    path_or_id: str | Path, split: str | None = None, *, revision: str | None = None, **kwargs: Any
) -> datasets.Dataset | datasets.DatasetDict:
    """``datasets.load_dataset`` that never serves a stale cache for a local folder.

    ``datasets`` keys the Arrow cache of a local folder by its base name and split layout, not by its
    content: two folders called ``data`` with the same splits, or a folder converted again in place, would
    silently load the first one's rows. Local folders are therefore always re-read
    (``download_mode="force_redownload"``); Hub ids use the normal cache.

    A local folder that a command left unfinished (killed during a merge, or shards never merged) is
    refused with ``IncompleteOutputError`` instead of loading part of its rows.
    """
    if Path(str(path_or_id)).expanduser().is_dir():
        import hashlib

        from ..outputs import check_complete

        folder = Path(str(path_or_id)).expanduser().resolve()
        check_complete(folder)
        # a cache of its own per folder and process: two folders with the same base name (two checkouts), or
        # two processes loading one folder at once (torchrun ranks), never share or overwrite Arrow files
        key = hashlib.sha1(str(folder).encode()).hexdigest()[:16]
        kwargs.setdefault("cache_dir", str(_process_cache() / key))
        kwargs.setdefault("download_mode", "force_redownload")
        kwargs.setdefault(
            "verification_mode", "no_checks"
        )  # the stale cached split sizes are not expectations
    import contextlib

    from .._progress import quiet_datasets_bars, show_bars

    # datasets' "Generating split" bars only where bars are drawn (a terminal), not in piped logs
    with contextlib.nullcontext() if show_bars() else quiet_datasets_bars():
        return datasets.load_dataset(str(path_or_id), split=split, revision=revision, **kwargs)


def _host() -> str:
    """This machine's name as it appears in a cache folder's name (safe characters only)."""
    import socket

    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def _process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)  # signal 0: checks only (POSIX)
    except ProcessLookupError:
        return False
    except (OverflowError, ValueError):  # no process can have this number
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def remove_stale_caches(root: str | Path | None = None) -> list[Path]:
    """Remove the per-process dataset copies under ``root`` whose process no longer runs.

    A process that loads a local dataset folder keeps its Arrow copy in ``root/pid-<pid>@<host>`` and removes
    it when it exits; a process killed with SIGKILL (or SIGTERM under a handler of its own) leaves it behind.
    Such a copy is removed when its process is gone. Copies of other machines (a cache shared over a network)
    and of live processes are left alone; so is everything on Windows, where no process can be probed safely.

    Args:
        root: the ``semsim-local`` folder (default: the one in ``datasets``' cache).

    Returns:
        The folders removed. Nothing raises: a folder that cannot be listed or removed is left as it is.
    """
    root = Path(root) if root is not None else Path(datasets.config.HF_DATASETS_CACHE) / LOCAL_CACHE
    if os.name != "posix" or not root.is_dir():  # on Windows os.kill(pid, 0) would terminate the process
        return []
    removed: list[Path] = []
    here = _host()
    try:
        folders = list(root.iterdir())
    except OSError:  # unreadable: loading goes on, the copies stay
        return []
    for folder in folders:
        match = _PROCESS_FOLDER.match(folder.name)
        if match is None or not folder.is_dir():
            continue
        pid, host = int(match.group(1)), match.group(2)
        if (host is not None and host != here) or pid <= 0 or pid == os.getpid() or _process_alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    if removed:
        from .._progress import logger

        logger.info(
            "removed %d dataset copies in %s left by processes that no longer run: %s",
            len(removed),
            root,
            ", ".join(p.name for p in removed),
        )
    return removed


def _remove_on_sigterm(path: Path) -> None:
    """Remove ``path`` when this process is terminated by SIGTERM, then terminate as SIGTERM does.

    Only where SIGTERM has its default action (a program's own handler is left in place: it decides whether
    the process ends) and only from the main thread (where Python allows handlers). A child forked later
    inherits the handler but terminates without touching the copy, which belongs to its parent.
    """
    import signal
    import threading

    if os.name != "posix" or threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    owner = os.getpid()

    def terminate(signum: int, frame: Any) -> None:
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die of the signal, as without this handler

    signal.signal(signal.SIGTERM, terminate)


@functools.lru_cache(maxsize=1)
def _process_cache() -> Path:
    """This process's cache folder for local datasets, removed when the process exits (normally or by SIGTERM).

    The copies of processes that no longer run (killed with SIGKILL) are removed first.
    """
    import atexit

    root = Path(datasets.config.HF_DATASETS_CACHE) / LOCAL_CACHE
    remove_stale_caches(root)
    path = root / f"pid-{os.getpid()}@{_host()}"
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    _remove_on_sigterm(path)
    return path


def undecoded(ds: Any, columns: tuple[str, ...] = ("original", "reconstruction")) -> Any:
    """The same dataset (or DatasetDict) with its image ``columns`` left as ``{"bytes", "path"}`` cells.

    Reading rows is then cheap and exact: images are decoded only where needed, by
    ``semsim_metric.image_io.decode_image``.
    """
    for col in columns:
        if col in (
            ds.column_names if isinstance(ds, datasets.Dataset) else next(iter(ds.values())).column_names
        ):
            ds = ds.cast_column(col, datasets.Image(decode=False))
    return ds


def unique_originals(dsd: Any) -> list[Any]:
    """Every distinct original image (by ``original_id``, first occurrence) of every split in ``dsd`` (a
    ``DatasetDict`` or ``{name: Dataset}``), decoded to uint8 ``(C, H, W)`` tensors."""
    from ..image_io import decode_image

    seen: dict[str, Any] = {}
    for split in dsd.values():
        raw = undecoded(split.select_columns(["original_id", "original"]), ("original",))
        for oid, image in zip(raw["original_id"], raw["original"]):
            if oid not in seen:
                seen[oid] = decode_image(image)
    return list(seen.values())


def check_schema(ds: datasets.Dataset, *, needs_votes: bool = False) -> None:
    """Raise ``ValueError`` naming the missing columns when ``ds`` is not in the SemSim schema."""
    required = ["original", "reconstruction", "original_id", "recognized"]
    missing = [c for c in required if c not in ds.column_names]
    if missing:
        raise InvalidInputError(
            f"dataset is not in the SemSim schema: missing column(s) {missing} (it has {ds.column_names}). "
            "Convert it first with `semsim convert`."
        )
    if needs_votes and "votes" not in ds.column_names:
        raise InvalidInputError("dataset has no 'votes' column.")


def load_annotations(
    path_or_id: str | Path,
    split: str | None = None,
    *,
    revision: str | None = None,
    **kwargs: Any,
) -> datasets.Dataset | datasets.DatasetDict:
    """Load a SemSim dataset folder or Hub dataset id (a thin wrapper over ``datasets.load_dataset``).

    Args:
        path_or_id: a dataset folder written by ``semsim convert`` / ``semsim generate``, or a Hub id.
        split: one split (``"train"``, ``"test"``, ...) or ``None`` for all.
        revision: Hub revision.
        kwargs: passed to ``datasets.load_dataset``.

    Examples:
        >>> from semsim_metric import load_annotations  # doctest: +SKIP
        >>> ds = load_annotations("hub/fmnist-judged-v1", split="test")  # doctest: +SKIP
    """
    ds = load_folder_or_hub(path_or_id, split, revision=revision, **kwargs)
    for part in ds.values() if isinstance(ds, datasets.DatasetDict) else [ds]:
        check_schema(part)
    return ds
