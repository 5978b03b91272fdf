"""Loading SemSim annotation datasets with ``datasets.load_dataset``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from .._deps import require

datasets = require("datasets", "SemSim datasets")

__all__ = ["check_schema", "load_annotations", "load_folder_or_hub", "undecoded", "unique_originals"]


def load_folder_or_hub(path_or_id: str | Path, split: str | None = None, *, revision: str | None = None,
                       **kwargs: Any) -> datasets.Dataset | datasets.DatasetDict:
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
        kwargs.setdefault("verification_mode", "no_checks")  # the stale cached split sizes are not expectations
    import contextlib

    from .._progress import quiet_datasets_bars, show_bars

    # datasets' "Generating split" bars only where bars are drawn (a terminal), not in piped logs
    with contextlib.nullcontext() if show_bars() else quiet_datasets_bars():
        return datasets.load_dataset(str(path_or_id), split=split, revision=revision, **kwargs)


@functools.lru_cache(maxsize=1)
def _process_cache() -> Path:
    """This process's cache folder for local datasets, removed when the process exits."""
    import atexit
    import os
    import shutil

    path = Path(datasets.config.HF_DATASETS_CACHE) / "semsim-local" / f"pid-{os.getpid()}"
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def undecoded(ds: Any, columns: tuple[str, ...] = ("original", "reconstruction")) -> Any:
    """The same dataset (or DatasetDict) with its image ``columns`` left as ``{"bytes", "path"}`` cells.

    Reading rows is then cheap and exact: images are decoded only where needed, by
    ``semsim_metric.image_io.decode_image``.
    """
    for col in columns:
        if col in (ds.column_names if isinstance(ds, datasets.Dataset) else next(iter(ds.values())).column_names):
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
        raise ValueError(
            f"dataset is not in the SemSim schema: missing column(s) {missing} (it has {ds.column_names}). "
            "Convert it first with `semsim convert`."
        )
    if needs_votes and "votes" not in ds.column_names:
        raise ValueError("dataset has no 'votes' column.")


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
    for part in (ds.values() if isinstance(ds, datasets.DatasetDict) else [ds]):
        check_schema(part)
    return ds


