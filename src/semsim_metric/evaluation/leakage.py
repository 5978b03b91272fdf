"""A per-record leakage report: which reconstructions would be recognised, and how sure the rate is.

``leakage_report(originals, reconstructions)`` scores every (original, reconstruction) pair with SemSim
(distance and calibrated ``p_recognised``) beside the pixel baselines of ``evaluation.baselines`` (PSNR,
SSIM; LPIPS when its weights are already on this machine) and returns a ``LeakageReport``:

* the **leak rate**: the share of reconstructions with ``p_recognised > 0.5``, with a 95% bootstrap interval
  that resamples *originals* (the reconstructions of one original are not independent evidence; the
  resamples are those of ``statistics.cluster_bootstrap``);
* one **row per reconstruction**: id, original id, distance, ``p_recognised``, PSNR, SSIM (LPIPS);
* the **disagreements** between SemSim and the pixel baselines, by a rank rule with matched counts (see
  ``DISAGREEMENT_RULE``).

Inputs (``load_pairs``): two folders of images paired by file name (the rule of ``semsim score``,
``semsim_metric.pairing``); a dataset folder in the SemSim schema; tensors or arrays; ``.pt`` files (read
with ``torch.load(weights_only=True)``) and ``.npz``/``.npy`` files (``allow_pickle=False``) of batches as
attack scripts save them: NCHW or NHWC, uint8 or float in ``[0, 1]``. ``evaluation.leakage_html`` turns
the report into one self-contained HTML page and a PNG figure (``semsim report``).
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._progress import bar_disabled, logger
from ..errors import InvalidInputError, LeakageInputError, SemSimError, UnsafeFileError
from .baselines import BASELINES, weights_available
from .statistics import percentile_interval

__all__ = [
    "DISAGREEMENT_RULE",
    "InputLike",
    "LeakageInputError",
    "LeakageReport",
    "LeakageRow",
    "ReconstructionPairs",
    "leak_rate_interval",
    "leakage_report",
    "load_pairs",
]

#: Keys under which a file or mapping may hold the originals / the reconstructions (first match wins).
ORIGINAL_KEYS = ("originals", "original", "ground_truth", "gt", "inputs", "x")
RECONSTRUCTION_KEYS = (
    "reconstructions",
    "reconstruction",
    "x_hat",
    "xhat",
    "recs",
    "rec",
    "recon",
    "reconstructed",
)
#: Key of an optional integer array: the row of the originals that each reconstruction reconstructs.
INDEX_KEY = "original_index"
_ARRAY_SUFFIXES = (".pt", ".pth", ".npz", ".npy")

DISAGREEMENT_RULE = (
    "SemSim says a reconstruction is recognised when p_recognised > {threshold:g} (its calibrated threshold). "
    "The pixel baselines have no calibrated threshold, so each one is given as many 'leaks' verdicts as SemSim "
    "gave: its k most similar reconstructions (k = the number SemSim calls recognised; ties with the k-th go "
    "with it). A row is a disagreement when every one of {names} goes against SemSim: 'SemSim only' = SemSim "
    "says recognised but none of them ranks it among its k most similar; 'pixels only' = SemSim says not "
    "recognised but all of them rank it among their k most similar."
)

InputLike = str | Path | Tensor | np.ndarray | Mapping[str, Any]
"""What ``leakage_report`` and ``load_pairs`` accept for the originals and the reconstructions."""


# -- inputs -------------------------------------------------------------------------------------------------


@dataclass
class ReconstructionPairs:
    """Paired inputs of a leakage report, read lazily.

    Attributes:
        ids: one unique id per reconstruction (a file name, ``file[i]`` or a dataset's ``reconstruction_id``).
        original_ids: the id of each reconstruction's original; equal ids are one original (the bootstrap
            resamples them together).
        source: the inputs in words (for the report).
        notes: what was left out while pairing (with ``skip_unpaired``).
    """

    ids: list[str]
    original_ids: list[str]
    source: str
    fetch: Callable[[Sequence[int]], list[tuple[Tensor, Tensor]]] = field(repr=False)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    def images(self, indices: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        """``(original, reconstruction)`` float ``(C, H, W)`` tensors in ``[0, 1]`` for the given rows."""
        return self.fetch(indices)


def _unit(t: Tensor) -> Tensor:
    return t.float() / 255 if t.dtype == torch.uint8 else t.float()


def _describe(value: Any) -> str:
    shape = tuple(getattr(value, "shape", ()))
    return f"shape {shape}, dtype {getattr(value, 'dtype', type(value).__name__)}"


def _as_batch(value: Any, name: str) -> Tensor:
    """A validated batch ``(N, C, H, W)``, C in {1, 3}: uint8, or float32 in ``[0, 1]``."""
    t = _batch_tensor(value, name)
    shape = tuple(t.shape)
    t = _channels_first(t, name)
    if t.is_floating_point():
        _check_pixel_range(t, name, shape)
    return t


def _batch_tensor(value: Any, name: str) -> Tensor:
    """``value`` as a CPU tensor of uint8 or float32, refusing objects and dtypes without a pixel range."""
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise LeakageInputError(
                f"{name}: an array of Python objects ({_describe(value)}); save the images as one "
                "numeric array (N, C, H, W) of uint8 or float in [0, 1]."
            )
        if value.dtype == np.bool_ or not (
            np.issubdtype(value.dtype, np.floating) or value.dtype == np.uint8
        ):
            raise LeakageInputError(
                f"{name}: images of dtype {value.dtype} ({_describe(value)}) have no defined pixel range; "
                "give uint8 (0-255) or float in [0, 1], e.g. x.astype(np.uint8) or x.astype(np.float32) / 255."
            )
        return torch.from_numpy(
            np.array(value, dtype=np.float32 if value.dtype != np.uint8 else np.uint8, copy=True)
        )
    if isinstance(value, Tensor):
        t = value.detach().cpu()
        if t.dtype != torch.uint8 and not t.is_floating_point():
            raise LeakageInputError(
                f"{name}: images of dtype {t.dtype} ({_describe(t)}) have no defined pixel range; give uint8 (0-255) "
                "or float in [0, 1], e.g. x.to(torch.uint8) or x.float() / 255."
            )
        return t if t.dtype == torch.uint8 else t.float()
    raise LeakageInputError(f"{name}: expected a tensor or array of images, got {type(value).__name__}.")


def _channels_first(t: Tensor, name: str) -> Tensor:
    """A non-empty 4-D batch in NCHW (NHWC permuted), refusing other ranks and channel counts."""
    shape = tuple(t.shape)
    fix = (
        "Save a batch as (N, C, H, W) (PyTorch) or (N, H, W, C) with C = 1 (greyscale) or 3 (RGB): one image "
        "(C, H, W) as x[None], a greyscale batch (N, H, W) as x[:, None]."
    )
    if t.ndim != 4:
        raise LeakageInputError(f"{name}: images of shape {shape} (a {t.ndim}-D array). {fix}")
    if shape[0] == 0:
        raise LeakageInputError(f"{name}: an empty batch (shape {shape}).")
    if shape[1] in (1, 3):
        return t  # NCHW (also when the last axis could be channels too: PyTorch's layout wins)
    if shape[3] in (1, 3):
        return t.permute(0, 3, 1, 2).contiguous()
    if 4 in (shape[1], shape[3]):
        raise LeakageInputError(
            f"{name}: shape {shape} has 4 channels (RGBA?). Drop the alpha channel after compositing "
            "onto the background the images are shown on, e.g. x[:, :3] or x[..., :3]."
        )
    raise LeakageInputError(
        f"{name}: shape {shape} has no channel axis of size 1 or 3 (axis 1 for NCHW or the "
        f"last axis for NHWC). {fix}"
    )


def _check_pixel_range(t: Tensor, name: str, shape: tuple[int, ...]) -> None:
    """Refuse float pixels that are NaN, infinite or outside ``[0, 1]`` (``shape``: as given, for the message)."""
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        raise LeakageInputError(
            f"{name}: {int((~finite).sum())} value(s) are NaN or infinite (shape {shape}); "
            "a reconstruction must be an image: replace them (e.g. torch.nan_to_num(x))."
        )
    lo, hi = float(t.min()), float(t.max())
    if lo < 0 or hi > 1:
        raise LeakageInputError(
            f"{name}: float pixels span [{lo:.4g}, {hi:.4g}] (shape {shape}) but must lie in [0, 1]. Floats in "
            "0-255: divide by 255; normalised with a mean and std: undo it (x * std + mean); in [-1, 1]: "
            "(x + 1) / 2; an attack's output slightly outside [0, 1]: clamp it, x.clamp(0, 1)."
        )


def _content_groups(batch: Tensor) -> list[int]:
    """For each row, the first row with exactly the same pixels (one original saved several times)."""
    from ..domain import image_fingerprint

    first: dict[str, int] = {}
    out = []
    for j in range(batch.shape[0]):
        out.append(first.setdefault(image_fingerprint(batch[j], form="pretrain-cache"), j))
    return out


def _from_arrays(
    orig: Any,
    rec: Any,
    *,
    original_index: Any,
    orig_name: str,
    rec_name: str,
    orig_label: str,
    rec_label: str,
    source: str,
) -> ReconstructionPairs:
    o = _as_batch(orig, orig_name)
    r = _as_batch(rec, rec_name)
    n, m = r.shape[0], o.shape[0]
    if original_index is None:
        if m != n:
            raise LeakageInputError(
                f"{m} originals ({orig_name}, shape {tuple(o.shape)}) but {n} reconstructions ({rec_name}, shape "
                f"{tuple(r.shape)}): give one original per reconstruction (repeat an original for each of its "
                f"reconstructions), or an {INDEX_KEY!r} of {n} integers naming each reconstruction's original row."
            )
        index = list(range(n))
    else:
        idx = np.asarray(original_index.cpu() if isinstance(original_index, Tensor) else original_index)
        if idx.ndim != 1 or len(idx) != n or not np.issubdtype(idx.dtype, np.integer):
            raise LeakageInputError(
                f"{INDEX_KEY} must be {n} integers (one per reconstruction), got {_describe(idx)}."
            )
        if len(idx) and (idx.min() < 0 or idx.max() >= m):
            raise LeakageInputError(
                f"{INDEX_KEY} holds rows {int(idx.min())}..{int(idx.max())}, but there are {m} "
                f"originals (rows 0..{m - 1})."
            )
        index = [int(v) for v in idx]
    if tuple(o.shape[2:]) != tuple(r.shape[2:]):
        raise LeakageInputError(
            f"originals are {o.shape[2]}x{o.shape[3]} ({orig_name}, shape {tuple(o.shape)}) but reconstructions "
            f"are {r.shape[2]}x{r.shape[3]} ({rec_name}, shape {tuple(r.shape)}); a reconstruction must have its "
            "original's height and width (resize one of them first)."
        )
    group = _content_groups(o)
    ids = [f"{rec_label}[{i}]" for i in range(n)]
    original_ids = [f"{orig_label}[{group[j]}]" for j in index]

    def fetch(rows: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        return [(_unit(o[index[i]]), _unit(r[i])) for i in rows]

    return ReconstructionPairs(ids, original_ids, source, fetch)


def _read_array_file(path: Path) -> Any:
    """The object a ``.pt``/``.pth`` (weights-only) or ``.npz``/``.npy`` (no pickles) file holds."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise LeakageInputError(f"{path} does not exist (or is not a file).")
    if suffix in (".pt", ".pth"):
        import pickle

        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError, TypeError) as err:
            raise UnsafeFileError(
                f"{path} cannot be read with torch.load(weights_only=True) ({str(err).splitlines()[0][:200]}). Only "
                "tensors in plain containers are read (a pickle of other objects could run code): save the images "
                "with torch.save(x_hat, 'rec.pt') or torch.save({'originals': x, 'reconstructions': x_hat}, "
                "'attack.pt'), tensors on any device, detached."
            ) from err
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {k: loaded[k] for k in loaded.files}
        return loaded
    except ValueError as err:  # object arrays need pickles
        raise UnsafeFileError(
            f"{path} holds arrays that could only be read by unpickling ({err}); save plain numeric arrays: "
            "np.savez('attack.npz', originals=x, reconstructions=x_hat)."
        ) from err
    except (OSError, EOFError) as err:
        raise LeakageInputError(f"{path} is not a readable {suffix} file ({err}).") from err


def _entries(obj: Any) -> dict[str, Any] | None:
    if isinstance(obj, Mapping):
        return {str(k): v for k, v in obj.items()}
    return None


def _pick(obj: Any, keys: Sequence[str], role: str, name: str, *, only_role: bool) -> Any:
    """The batch of ``role`` in ``obj`` (a tensor/array, or a mapping holding it under one of ``keys``)."""
    entries = _entries(obj)
    if entries is None:
        if isinstance(obj, (list, tuple)):
            raise LeakageInputError(
                f"{name} holds a {type(obj).__name__} of {len(obj)} items; save one batch tensor (N, C, H, W), or a "
                "dict {'originals': x, 'reconstructions': x_hat}, so that which is which is not guessed."
            )
        return obj
    for key in keys:
        if key in entries:
            return entries[key]
    batches = [
        k for k, v in entries.items() if isinstance(v, (Tensor, np.ndarray)) and getattr(v, "ndim", 0) >= 3
    ]
    if only_role and len(batches) == 1:
        return entries[batches[0]]
    raise LeakageInputError(
        f"{name} holds the keys {sorted(entries)}, none of which names the {role}; accepted keys: "
        f"{', '.join(repr(k) for k in keys)} (e.g. torch.save({{'originals': x, 'reconstructions': x_hat}}, "
        "'attack.pt'))."
    )


def _is_dataset_folder(path: Path) -> bool:
    return path.is_dir() and (any(path.glob("*.parquet")) or any(path.glob("data/*.parquet")))


def _from_dataset(folder: Path, split: str | None) -> ReconstructionPairs:
    from .._deps import require

    require("datasets", "dataset folders as inputs")
    from ..data.loading import load_folder_or_hub, undecoded
    from ..image_io import decode_image

    try:
        dsd = load_folder_or_hub(folder)
    except (OSError, ValueError) as err:
        raise LeakageInputError(f"cannot load the dataset folder {folder}: {err}") from err
    if split is not None and split not in dsd:
        raise LeakageInputError(f"split {split!r} is not in {folder} (it has {sorted(dsd)}).")
    names = [split] if split is not None else list(dsd)
    parts = []
    for name in names:
        ds = dsd[name]
        missing = [c for c in ("original", "reconstruction") if c not in ds.column_names]
        if missing:
            raise LeakageInputError(
                f"{folder} (split {name}) has no column(s) {missing}; a dataset folder must be in the "
                "SemSim schema (`semsim convert` writes one)."
            )
        parts.append((name, undecoded(ds)))
    ids, original_ids, cells = [], [], []
    for name, ds in parts:
        cols = ds.column_names
        rec_ids = (
            ds["reconstruction_id"]
            if "reconstruction_id" in cols
            else [f"{name}[{i}]" for i in range(len(ds))]
        )
        orig_ids = ds["original_id"] if "original_id" in cols else rec_ids
        for i, (rid, oid) in enumerate(zip(rec_ids, orig_ids)):
            ids.append(str(rid) or f"{name}[{i}]")
            original_ids.append(str(oid) or ids[-1])
            cells.append((ds, i))

    def fetch(rows: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        out = []
        for k in rows:
            ds, i = cells[k]
            row = ds[i]
            try:
                out.append((_unit(decode_image(row["original"])), _unit(decode_image(row["reconstruction"]))))
            except (OSError, ValueError) as err:
                raise LeakageInputError(f"{folder}: row {ids[k]!r} cannot be decoded: {err}") from err
        return out

    where = f"{folder} (split {split})" if split else f"{folder} (splits {', '.join(names)})"
    return ReconstructionPairs(_unique(ids), original_ids, f"the dataset folder {where}", fetch)


def _from_folders(originals: Path, reconstructions: Path, skip_unpaired: bool) -> ReconstructionPairs:
    from ..image_io import load_image
    from ..pairing import pair_folders

    pairing = pair_folders(originals, reconstructions)
    notes = []
    if pairing.problems and not skip_unpaired:
        raise LeakageInputError(
            f"{len(pairing.problems)} file(s) could not be paired (the rule of `semsim score --help`: 'x.png' pairs "
            "with 'x.jpg', a trailing _rec/_ori is ignored, several reconstructions of 'x.png' are named "
            "'x__tag.png'):\n  "
            + "\n  ".join(pairing.problems)
            + "\n(skip_unpaired=True / --skip-unpaired reports "
            "the pairs that match)"
        )
    if pairing.problems:
        notes.append(
            f"{len(pairing.problems)} file(s) without a partner were left out: "
            + "; ".join(pairing.problems[:10])
            + (" ..." if len(pairing.problems) > 10 else "")
        )
    if not pairing.pairs:
        raise LeakageInputError(
            f"no image pairs in {originals} and {reconstructions} (see the pairing rule of "
            "`semsim score --help`)."
        )
    pairs = pairing.pairs

    def fetch(rows: Sequence[int]) -> list[tuple[Tensor, Tensor]]:
        out = []
        for k in rows:
            o_path, r_path = pairs[k]
            try:
                out.append((_unit(load_image(o_path)), _unit(load_image(r_path))))
            except (OSError, ValueError) as err:
                raise LeakageInputError(str(err)) from err
        return out

    ids = [r.name for _, r in pairs]
    return ReconstructionPairs(
        _unique(ids),
        [o.name for o, _ in pairs],
        f"the folders {originals} (originals) and {reconstructions} (reconstructions)",
        fetch,
        notes,
    )


def _unique(ids: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        n = seen.get(i, 0)
        seen[i] = n + 1
        out.append(i if n == 0 else f"{i}#{n}")
    return out


def load_pairs(
    originals: InputLike,
    reconstructions: InputLike | None = None,
    *,
    original_index: Sequence[int] | Tensor | np.ndarray | None = None,
    split: str | None = None,
    skip_unpaired: bool = False,
) -> ReconstructionPairs:
    """Pair originals with their reconstructions from folders, files, tensors or arrays.

    Accepted inputs:

    * two folders of images, paired by file name as by ``semsim score`` (``semsim_metric.pairing``);
    * one dataset folder in the SemSim schema (``original``/``reconstruction`` columns; ``split`` picks one
      split, default all), ``reconstructions`` left out;
    * one ``.pt``/``.npz`` file holding both, under the keys ``originals`` and ``reconstructions`` (also
      ``ORIGINAL_KEYS`` / ``RECONSTRUCTION_KEYS``, e.g. ``gt`` and ``x_hat``) and optionally
      ``original_index``;
    * two files (``.pt``, ``.pth``, ``.npz``, ``.npy``), each a batch or a mapping holding it;
    * tensors, arrays, or mappings of them.

    Batches are ``(N, C, H, W)`` or ``(N, H, W, C)`` with C = 1 or 3, uint8 (0-255) or float in ``[0, 1]``.
    ``.pt`` files are read with ``torch.load(weights_only=True)``, ``.npz``/``.npy`` with
    ``allow_pickle=False``. Reconstructions pair with originals row by row; with fewer originals,
    ``original_index`` names each reconstruction's original row. Originals with exactly the same pixels are
    one original (the bootstrap resamples them together).

    Args:
        originals: originals (folder, file, tensor, array or mapping), or one file/dataset folder with both.
        reconstructions: the reconstructions, or ``None`` when ``originals`` holds both.
        original_index: for batches: the row of ``originals`` each reconstruction reconstructs.
        split: for a dataset folder: the split to read (default: all of them).
        skip_unpaired: for folders: leave out files without a partner (listed in ``notes``) instead of failing.

    Returns:
        The pairs, read lazily (``ReconstructionPairs.images``).

    Raises:
        LeakageInputError: inputs that cannot be paired or read; the message names the file, the shape and the fix.
        UnsafeFileError: a ``.pt``/``.npz`` that could only be read by unpickling.

    Examples:
        >>> import torch
        >>> x = torch.rand(3, 32, 32, 1)                       # NHWC floats in [0, 1]
        >>> pairs = load_pairs({"originals": x, "reconstructions": x.flip(0)})
        >>> len(pairs), pairs.images([0])[0][0].shape
        (3, torch.Size([1, 32, 32]))
    """
    if reconstructions is None:
        return _pairs_from_one(originals, original_index, split)
    return _pairs_from_two(originals, reconstructions, original_index, skip_unpaired)


def _pairs_from_one(originals: InputLike, original_index: Any, split: str | None) -> ReconstructionPairs:
    """The pairs of one input holding both: a dataset folder, a ``.pt``/``.npz`` file, or a mapping."""
    if isinstance(originals, (str, Path)):
        path = Path(originals).expanduser()
        if _is_dataset_folder(path):
            return _from_dataset(path, split)
        obj, label = _read_combined_file(path), path.name
    else:
        obj, label = originals, "inputs"
    if _entries(obj) is None:
        raise LeakageInputError(
            f"{label} holds one batch ({_describe(obj)}), not originals and reconstructions; give the "
            "reconstructions as well, or save both: torch.save({'originals': x, 'reconstructions': x_hat}, "
            "'attack.pt')."
        )
    entries = _entries(obj) or {}
    orig = _pick(obj, ORIGINAL_KEYS, "originals", label, only_role=False)
    rec = _pick(obj, RECONSTRUCTION_KEYS, "reconstructions", label, only_role=False)
    index = original_index if original_index is not None else entries.get(INDEX_KEY)
    src = f"{label} (originals and reconstructions)" if label != "inputs" else "tensors"
    return _from_arrays(
        orig,
        rec,
        original_index=index,
        orig_name=f"{label}: originals",
        rec_name=f"{label}: reconstructions",
        orig_label="original",
        rec_label="rec",
        source=src,
    )


def _read_combined_file(path: Path) -> Any:
    """The object of a ``.pt``/``.pth``/``.npz`` file given alone (so holding both), refusing folders of images."""
    if path.is_dir():
        raise LeakageInputError(
            f"{path} is a folder of images; give the reconstructions folder too "
            "(or a dataset folder in the SemSim schema)."
        )
    if path.suffix.lower() not in _ARRAY_SUFFIXES:
        raise LeakageInputError(
            f"{path}: give a .pt, .pth or .npz file holding both the originals and the "
            "reconstructions, a dataset folder, or two folders/files."
        )
    return _read_array_file(path)


def _pairs_from_two(
    originals: InputLike, reconstructions: InputLike, original_index: Any, skip_unpaired: bool
) -> ReconstructionPairs:
    """The pairs of two inputs: two folders of images, or two files/tensors/arrays/mappings."""
    paths = [
        Path(v).expanduser() if isinstance(v, (str, Path)) else None for v in (originals, reconstructions)
    ]
    if paths[0] is not None and paths[1] is not None and paths[0].is_dir() and paths[1].is_dir():
        return _from_folders(paths[0], paths[1], skip_unpaired)
    objs, labels = _read_each(originals, reconstructions, paths)
    orig = _pick(objs[0], ORIGINAL_KEYS, "originals", labels[0], only_role=True)
    rec = _pick(objs[1], RECONSTRUCTION_KEYS, "reconstructions", labels[1], only_role=True)
    index = original_index
    for obj in objs[::-1]:
        entries = _entries(obj)
        if index is None and entries and INDEX_KEY in entries:
            index = entries[INDEX_KEY]
    both = labels[0] if labels[0] == labels[1] else None
    orig_label = "original" if both or labels[0] == "originals" else labels[0]
    rec_label = "rec" if both or labels[1] == "reconstructions" else labels[1]
    src = "tensors" if paths == [None, None] else f"{labels[0]} (originals) and {labels[1]} (reconstructions)"
    return _from_arrays(
        orig,
        rec,
        original_index=index,
        orig_name=labels[0],
        rec_name=labels[1],
        orig_label=orig_label,
        rec_label=rec_label,
        source=src,
    )


def _read_each(
    originals: InputLike, reconstructions: InputLike, paths: list[Path | None]
) -> tuple[list[Any], list[str]]:
    """The objects of the two inputs (files read, others as given) and their labels (file name or role)."""
    objs, labels = [], []
    for value, path, role in zip((originals, reconstructions), paths, ("originals", "reconstructions")):
        if path is None:
            objs.append(value)
            labels.append(role)
            continue
        if path.is_dir():
            other = "reconstructions" if role == "originals" else "originals"
            raise LeakageInputError(
                f"{path} is a folder but the {other} are not: give two folders of images (paired by file name), or "
                f"two .pt/.npz files, or tensors (a folder of originals cannot be matched to the rows of a batch)."
            )
        if path.suffix.lower() not in _ARRAY_SUFFIXES:
            raise LeakageInputError(
                f"{path}: the {role} must be a folder of images or a .pt, .pth, .npz or .npy file of a batch."
            )
        objs.append(_read_array_file(path))
        labels.append(path.name)
    return objs, labels


# -- the report ---------------------------------------------------------------------------------------------


@dataclass
class LeakageRow:
    """One reconstruction of a leakage report.

    Attributes:
        id: the reconstruction's id; original_id: its original's.
        distance: the SemSim distance (0 = semantically identical = most leakage, up to 2).
        p_recognised: the calibrated probability that it is recognised.
        recognised: ``p_recognised > threshold``.
        baselines: PSNR (dB), SSIM and, where computed, LPIPS (NaN where a baseline could not score it).
        disagreement: ``""``, ``"semsim_only"`` or ``"pixels_only"`` (see ``DISAGREEMENT_RULE``).
    """

    id: str
    original_id: str
    distance: float
    p_recognised: float
    recognised: bool
    baselines: dict[str, float] = field(default_factory=dict)
    disagreement: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "original_id": self.original_id,
            "distance": self.distance,
            "p_recognised": self.p_recognised,
            "recognised": self.recognised,
            **self.baselines,
            "disagreement": self.disagreement,
        }


@dataclass
class LeakageReport:
    """The result of ``leakage_report``: per-reconstruction rows, the leak rate and its interval, disagreements.

    Attributes:
        rows: one per reconstruction, in input order (``sorted_rows()`` for most recognisable first).
        threshold: ``p_recognised`` above which a reconstruction counts as recognised (0.5).
        n_leaked, leak_rate: how many / which share of the reconstructions are recognised.
        interval: the 95% percentile bootstrap interval of the leak rate, resampling originals.
        n_originals: distinct originals (the bootstrap's clusters); n_boot, seed: the bootstrap's settings.
        distance_threshold: the distance at which ``p_recognised == threshold``.
        baselines: the baselines computed; rule_baselines: those the disagreement rule uses.
        disagreements: ``{"semsim_only": count, "pixels_only": count}``.
        baseline_summary: per baseline, ``spearman`` (rank correlation with SemSim, both oriented so that
            higher = more leakage) and ``agreement`` (share of rows where its matched-count verdict equals SemSim's).
        model_name, model_revision, calibration: the SemSim model and its calibration record.
        source: the inputs in words; notes: what was skipped or looks out of domain.
        seen_originals: how many originals the model was trained on (numbers on them are in-sample).
        original_thumbnails, reconstruction_thumbnails: PNG bytes of each image, at most ``thumbnail_size`` px.
    """

    rows: list[LeakageRow]
    threshold: float
    n_leaked: int
    leak_rate: float
    interval: tuple[float, float]
    n_originals: int
    n_boot: int
    seed: int
    distance_threshold: float
    baselines: list[str]
    rule_baselines: list[str]
    disagreements: dict[str, int]
    baseline_summary: dict[str, dict[str, float]]
    model_name: str
    model_revision: str | None
    calibration: dict[str, Any]
    source: str
    notes: list[str] = field(default_factory=list)
    seen_originals: int = 0
    original_thumbnails: dict[str, bytes] = field(default_factory=dict, repr=False)
    reconstruction_thumbnails: dict[str, bytes] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        """The number of reconstructions."""
        return len(self.rows)

    @property
    def disagreement_rule(self) -> str:
        """The rule that flags disagreements, in words."""
        names = " and ".join(self.rule_baselines) or "(no baseline)"
        return DISAGREEMENT_RULE.format(threshold=self.threshold, names=names)

    def sentence(self) -> str:
        """The leak rate in words: "N of M reconstructions (x%, 95% CI a-b%) would be recognised"."""
        lo, hi = self.interval
        ci = "" if math.isnan(lo) else f", 95% CI {_pct(lo)}-{_pct(hi)}"
        noun = "reconstruction" if self.n == 1 else "reconstructions"
        return f"{self.n_leaked} of {self.n} {noun} ({_pct(self.leak_rate)}{ci}) would be recognised"

    def sorted_rows(self) -> list[LeakageRow]:
        """The rows, most likely recognised first (ties: smaller distance first, then by id)."""
        return sorted(self.rows, key=lambda r: (-r.p_recognised, r.distance, r.id))

    def to_dict(self) -> dict[str, Any]:
        """Everything but the thumbnails, as plain JSON values (NaN as ``None``)."""
        return _json_safe(
            {
                "sentence": self.sentence(),
                "n": self.n,
                "n_leaked": self.n_leaked,
                "leak_rate": self.leak_rate,
                "interval": list(self.interval),
                "confidence": 0.95,
                "threshold": self.threshold,
                "n_originals": self.n_originals,
                "n_boot": self.n_boot,
                "seed": self.seed,
                "distance_threshold": self.distance_threshold,
                "baselines": self.baselines,
                "disagreement_rule": self.disagreement_rule,
                "disagreements": self.disagreements,
                "baseline_summary": self.baseline_summary,
                "model": self.model_name,
                "model_revision": self.model_revision,
                "calibration": self.calibration,
                "source": self.source,
                "notes": self.notes,
                "seen_originals": self.seen_originals,
                "rows": [r.to_dict() for r in self.rows],
            }
        )


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _pct(v: float) -> str:
    text = f"{100 * v:.1f}"
    return text.removesuffix(".0") + "%"


def leak_rate_interval(
    recognised: Sequence[bool] | np.ndarray,
    original_ids: Sequence[Any] | np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """95% percentile bootstrap interval of the share of ``recognised`` rows, resampling originals.

    The resamples are exactly those of ``statistics.cluster_bootstrap(original_ids, n_boot, seed)`` (originals
    drawn with replacement, each bringing all of its reconstructions), computed from per-original counts so
    that memory does not grow with ``n_boot``.

    Args:
        recognised: one flag per reconstruction.
        original_ids: the original of each reconstruction (equal ids = one original).
        n_boot: resamples (at least 1).
        seed: the generator's seed.

    Returns:
        ``(low, high)``, the 2.5th and 97.5th percentiles of the resampled leak rates.

    Raises:
        ValueError: lengths differ, there are no rows, or ``n_boot < 1``.

    Examples:
        Two originals, one with both reconstructions recognised and one with neither: a resample holds the
        first original 0, 1 or 2 times, so the interval spans everything from 0 to 1.

        >>> leak_rate_interval([True, True, False, False], ["a", "a", "b", "b"], n_boot=200)
        (0.0, 1.0)
    """
    y = np.asarray(recognised, dtype=float).reshape(-1)
    ids = np.asarray(original_ids).reshape(-1)
    if len(y) != len(ids):
        raise InvalidInputError(f"{len(y)} flags but {len(ids)} original ids.")
    if len(y) == 0:
        raise InvalidInputError("no rows to bootstrap.")
    if n_boot < 1:
        raise InvalidInputError(f"n_boot must be at least 1, got {n_boot}.")
    uniq, inverse = np.unique(ids, return_inverse=True)
    hits = np.bincount(inverse, y, len(uniq))
    sizes = np.bincount(inverse, minlength=len(uniq)).astype(float)
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(n_boot):  # the draws of statistics.cluster_bootstrap, in its order
        pick = rng.integers(0, len(uniq), len(uniq))
        rates.append(float(hits[pick].sum() / sizes[pick].sum()))
    lo, hi = percentile_interval(rates)
    return lo, hi


def _average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, ranks) / counts)[inverse]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    ra, rb = _average_ranks(a[ok]), _average_ranks(b[ok])
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def _top_k(score: np.ndarray, k: int) -> np.ndarray:
    """Rows among the ``k`` highest finite scores (ties with the k-th included); NaN rows never."""
    finite = np.isfinite(score)
    out = np.zeros(len(score), dtype=bool)
    if k <= 0 or not finite.any():
        return out
    kth = np.sort(score[finite])[::-1][min(k, int(finite.sum())) - 1]
    out[finite] = score[finite] >= kth
    return out


def _thumbnail(image: Tensor, size: int) -> bytes:
    from PIL import Image

    arr = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    arr_np = arr[0].numpy() if arr.shape[0] == 1 else arr.permute(1, 2, 0).contiguous().numpy()
    img = Image.fromarray(arr_np)
    if max(img.size) > size:
        img.thumbnail((size, size), Image.Resampling.BOX)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _model_identity(model: Any, revision: str | None, net: Any) -> tuple[str, str | None]:
    from ..hub import DEFAULT_MODEL_ID, DEFAULT_REVISION, bundled_model_path

    if model is None:
        bundled = bundled_model_path() is not None and revision in (None, DEFAULT_REVISION)
        return DEFAULT_MODEL_ID + (" (bundled copy)" if bundled else ""), revision or DEFAULT_REVISION
    if isinstance(model, (str, Path)):
        return str(model), revision
    return str(getattr(net.config, "_name_or_path", "") or "a SemSimModel passed in"), None


def leakage_report(
    originals: InputLike,
    reconstructions: InputLike | None = None,
    *,
    original_index: Sequence[int] | Tensor | np.ndarray | None = None,
    split: str | None = None,
    model: Any = None,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    baselines: Sequence[str] = ("PSNR", "SSIM", "LPIPS"),
    threshold: float = 0.5,
    n_boot: int = 2000,
    seed: int = 0,
    skip_unpaired: bool = False,
    thumbnail_size: int = 96,
    progress: bool = True,
) -> LeakageReport:
    """Score reconstructions against their originals and say which would be recognised, and how sure that is.

    Every pair goes through SemSim's functional core (``semsim_metric.semsim``: the input gate, the model,
    its calibration) and through the baselines of ``evaluation.baselines`` on the same float images. The
    leak rate is the share of reconstructions with ``p_recognised > threshold``; its 95% interval is a
    percentile bootstrap over originals (``leak_rate_interval``, the originals numbered in order of first
    appearance, so the same pairs in the same order give the same interval from any kind of input). Disagreements with the pixel baselines
    follow ``DISAGREEMENT_RULE``. LPIPS is computed only when its weights are already in the torch hub
    cache (never downloaded); otherwise the report says so in ``notes``.

    Args:
        originals: see ``load_pairs``: a folder, a dataset folder, a ``.pt``/``.npz`` file, a tensor, an array
            or a mapping; or one file/dataset folder holding both.
        reconstructions: the reconstructions (``None`` when ``originals`` holds both).
        original_index: for batches with fewer originals: each reconstruction's original row.
        split: for a dataset folder: the split (default: all).
        model: a ``SemSimModel``, Hub id or folder; ``None`` = the bundled default model. It must be calibrated.
        revision: Hub revision of ``model``.
        device: where to score (e.g. ``"cuda:0"``).
        batch_size: pairs per forward pass.
        baselines: names from ``evaluation.baselines.BASELINES`` to compute beside SemSim. The disagreement rule
            uses PSNR and SSIM among them.
        threshold: ``p_recognised`` above which a reconstruction counts as recognised.
        n_boot: bootstrap resamples of the originals.
        seed: the bootstrap's seed.
        skip_unpaired: for folders: leave out files without a partner (noted) instead of failing.
        thumbnail_size: largest side of the thumbnails kept for the HTML page and the figure.
        progress: show a progress bar while scoring (in a terminal) and log each step.

    Returns:
        A ``LeakageReport``.

    Raises:
        LeakageInputError: unusable inputs or arguments (the message says how to fix them), or an uncalibrated
            model.
        UnsafeFileError: a ``.pt``/``.npz`` that could only be read by unpickling.

    Examples:
        >>> import torch
        >>> from semsim_metric.evaluation.leakage import leakage_report
        >>> x = torch.rand(4, 1, 28, 28)
        >>> rep = leakage_report(x, x.clone(), n_boot=100, progress=False)   # exact copies leak
        >>> rep.sentence()
        '4 of 4 reconstructions (100%, 95% CI 100%-100%) would be recognised'
        >>> sorted(rep.rows[0].baselines)
        ['PSNR', 'SSIM']
    """
    _check_report_arguments(batch_size, threshold, n_boot, baselines)
    pairs = load_pairs(
        originals, reconstructions, original_index=original_index, split=split, skip_unpaired=skip_unpaired
    )
    notes = list(pairs.notes)
    logger.info(
        "leakage report: %d reconstructions of %d originals from %s",
        len(pairs),
        len(set(pairs.original_ids)),
        pairs.source,
    )
    net, cal = _calibrated_model(model, revision, device)
    active = _active_baselines(baselines, notes)
    n = len(pairs)
    scorer = _PairScorer(pairs, net, active, notes, thumbnail_size)
    scorer.run(batch_size, progress)
    dist, values = scorer.dist, scorer.values
    computed = [name for name in values if np.isfinite(values[name]).any()]
    prob = net.probability(torch.from_numpy(dist).float()).numpy().astype(float)
    recognised = prob > threshold
    k_leaked = int(recognised.sum())
    interval = _interval_over_originals(pairs.original_ids, recognised, n_boot, seed)
    verdicts, summary = _baseline_verdicts(values, computed, dist, recognised, k_leaked)
    rule = [b for b in ("PSNR", "SSIM") if b in computed]
    flags = _disagreement_flags(values, verdicts, rule, recognised, notes)
    rows = _report_rows(pairs, dist, prob, recognised, {name: values[name] for name in computed}, flags)
    name, rev = _model_identity(model, revision, net)
    seen = _seen_originals_note(net, scorer.seen_fps, notes)
    return LeakageReport(
        rows=rows,
        threshold=threshold,
        n_leaked=k_leaked,
        leak_rate=k_leaked / n,
        interval=interval,
        n_originals=len(set(pairs.original_ids)),
        n_boot=n_boot,
        seed=seed,
        distance_threshold=net.config.calibration_curve.distance_at(threshold),
        baselines=computed,
        rule_baselines=rule,
        disagreements={"semsim_only": flags.count("semsim_only"), "pixels_only": flags.count("pixels_only")},
        baseline_summary=summary,
        model_name=name,
        model_revision=rev,
        calibration=cal,
        source=pairs.source,
        notes=list(dict.fromkeys(notes)),
        seen_originals=seen,
        original_thumbnails=scorer.orig_thumbs,
        reconstruction_thumbnails=scorer.rec_thumbs,
    )


def _check_report_arguments(batch_size: int, threshold: float, n_boot: int, baselines: Sequence[str]) -> None:
    """Refuse a batch size, threshold, resample count or baseline name that ``leakage_report`` cannot use."""
    if batch_size < 1:
        raise LeakageInputError(f"batch_size must be at least 1, got {batch_size}.")
    if not 0 < threshold < 1:
        raise LeakageInputError(f"threshold must lie strictly between 0 and 1, got {threshold}.")
    if n_boot < 1:
        raise LeakageInputError(f"n_boot must be at least 1, got {n_boot}.")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise LeakageInputError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)}.")


def _calibrated_model(
    model: Any, revision: str | None, device: str | torch.device
) -> tuple[Any, dict[str, Any]]:
    """The SemSim model to score with and its calibration record; a model without one is refused."""
    from ..functional import get_model

    logger.info("loading the SemSim model")
    try:
        net = get_model(model, revision, device=torch.device(device))
    except (OSError, RuntimeError, ValueError) as err:
        if isinstance(err, SemSimError):
            raise
        raise LeakageInputError(f"cannot load the SemSim model {model!r}: {err}") from err
    cal = dict(net.config.calibration or {})
    if not cal.get("slope"):
        raise LeakageInputError(
            "a leakage report needs a calibrated SemSim model (config.calibration) to give "
            "p_recognised; this one has none. Use the default model or one from `semsim train`."
        )
    return net, cal


def _active_baselines(baselines: Sequence[str], notes: list[str]) -> dict[str, Any]:
    """The baselines that can be computed here (each once), noting those whose weights are not on this machine."""
    active: dict[str, Any] = {}
    for name in dict.fromkeys(baselines):
        spec = BASELINES[name]
        if spec.needs_weights:
            try:
                ok, reason = weights_available(spec.needs_weights)
            except UnsafeFileError as err:
                ok, reason = False, str(err)
            if not ok:
                notes.append(
                    f"{name} not computed: it {reason}. Place its weights there to add it (they are never "
                    "downloaded by semsim-metric)."
                )
                continue
        active[name] = spec
    return active


class _PairScorer:
    """Scores a report's pairs batch by batch: distances, baseline values, thumbnails and notes."""

    def __init__(
        self,
        pairs: ReconstructionPairs,
        net: Any,
        active: dict[str, Any],
        notes: list[str],
        thumbnail_size: int,
    ) -> None:
        """Empty results for every pair; ``active`` (a baseline that fails is dropped) and ``notes`` are updated."""
        from ..functional import scoring_copy

        n = len(pairs)
        self.pairs, self.net, self.active, self.notes = pairs, net, active, notes
        self.thumbnail_size = thumbnail_size
        self.dist = np.full(n, np.nan)
        self.values = {name: np.full(n, np.nan) for name in active}
        self.orig_thumbs: dict[str, bytes] = {}
        self.rec_thumbs: dict[str, bytes] = {}
        self.seen_fps: dict[str, Tensor] = {}
        self.small: set[str] = set()
        self.domain_messages: list[str] = []
        self.content_checked = False
        self.domain = getattr(net.config, "training_domain", None) or {}
        self.dev = next(net.parameters()).device
        self.fast = scoring_copy(net)  # channels-last weights on a CPU: faster, the same distances

    def run(self, batch_size: int, progress: bool) -> None:
        """Score every pair, ``batch_size`` at a time (warnings shown after, out-of-domain ones kept as notes)."""
        from tqdm.auto import tqdm

        from ..domain import OutOfDomainWarning

        n = len(self.pairs)
        with (
            warnings.catch_warnings(record=True) as caught,
            torch.inference_mode(),
            tqdm(total=n, desc="semsim report: scoring", unit="pair", disable=bar_disabled(progress)) as bar,
        ):
            warnings.simplefilter("always", OutOfDomainWarning)
            for start in range(0, n, batch_size):
                rows = list(range(start, min(n, start + batch_size)))
                images = self.pairs.images(rows)
                groups = self._shape_groups(rows, images)
                by_row = dict(zip(rows, images))
                for ks in groups.values():
                    self._score_group(ks, by_row)
                bar.update(len(rows))
        self._keep_warnings(caught)

    def _shape_groups(self, rows: list[int], images: list[tuple[Tensor, Tensor]]) -> dict[tuple, list[int]]:
        """The rows grouped by the shapes of their two images (refusing a pair of different sizes)."""
        groups: dict[tuple, list[int]] = {}
        for k, (o, r) in zip(rows, images):
            if tuple(o.shape[1:]) != tuple(r.shape[1:]):
                raise LeakageInputError(
                    f"{self.pairs.ids[k]} is {r.shape[1]}x{r.shape[2]} but its original {self.pairs.original_ids[k]} is "
                    f"{o.shape[1]}x{o.shape[2]}; a reconstruction must have its original's height and width."
                )
            groups.setdefault((tuple(o.shape), tuple(r.shape)), []).append(k)
        return groups

    def _score_group(self, ks: list[int], by_row: dict[int, tuple[Tensor, Tensor]]) -> None:
        """Distances, domain checks, baselines and thumbnails of the rows ``ks`` (images of one shape)."""
        from ..functional import _semsim_update

        o = torch.stack([by_row[k][0] for k in ks])
        r = torch.stack([by_row[k][1] for k in ks])
        # each distinct original embedded once (they repeat across reconstructions): the same distances
        d = (
            _semsim_update(r.to(self.dev), o.to(self.dev), self.fast, data_range=1.0, dedup_target=True)
            .float()
            .cpu()
        )
        self.dist[ks] = d.numpy()
        self._check_domain(o)
        if o.shape[1] != r.shape[1]:  # a greyscale reconstruction of a colour original, or the reverse
            o, r = o.expand(-1, 3, -1, -1), r.expand(-1, 3, -1, -1)
        self._score_baselines(ks, o, r)
        self._keep_thumbnails(ks, by_row)

    def _check_domain(self, o: Tensor) -> None:
        """Note originals unlike the model's training data (their content: on the first batch only)."""
        from ..domain import domain_problems
        from ..preprocessing import to_model_input_for

        emb = None
        if (
            self.domain and not self.content_checked
        ):  # the originals' embeddings vs the training ones: first batch
            net = self.net
            emb = net.embed(
                to_model_input_for(
                    net.config, o.to(self.dev), data_range=1.0, dtype=next(net.parameters()).dtype
                )
            )
            self.content_checked = True
        for kind, message in domain_problems(self.domain, o[:1], emb) if self.domain else ():
            self.domain_messages.append(message)
            self.notes.append(f"out of the model's training domain ({kind}): {message}.")

    def _score_baselines(self, ks: list[int], o: Tensor, r: Tensor) -> None:
        """The active baselines on rows ``ks``; a baseline that fails is noted and dropped for every row."""
        for name, spec in list(self.active.items()):
            if min(o.shape[2:]) < spec.min_size:
                if name not in self.small:
                    self.small.add(name)
                    self.notes.append(
                        f"{name} not computed for images smaller than {spec.min_size}x{spec.min_size} px."
                    )
                continue
            try:
                self.values[name][ks] = spec.fn(r, o).detach().float().reshape(-1).cpu().numpy()
            except Exception as err:
                self.notes.append(f"{name} not computed: {type(err).__name__}: {str(err)[:200]}")
                del self.active[name]
                self.values[name][:] = np.nan

    def _keep_thumbnails(self, ks: list[int], by_row: dict[int, tuple[Tensor, Tensor]]) -> None:
        """Thumbnails of rows ``ks`` (each original once, with its pixels for the training-set check)."""
        for k in ks:
            oi, ri = by_row[k]
            oid = self.pairs.original_ids[k]
            if oid not in self.orig_thumbs:
                self.orig_thumbs[oid] = _thumbnail(oi, self.thumbnail_size)
                self.seen_fps[oid] = (oi * 255).round().to(torch.uint8)
            self.rec_thumbs[self.pairs.ids[k]] = _thumbnail(ri, self.thumbnail_size)

    def _keep_warnings(self, caught: list[warnings.WarningMessage]) -> None:
        """Show the warnings caught while scoring, keeping out-of-domain ones as notes (unless noted already)."""
        from ..domain import OutOfDomainWarning

        for w in caught:  # shown as usual, and kept in the report (unless a note above says the same)
            if issubclass(w.category, OutOfDomainWarning) and not any(
                m in str(w.message) for m in self.domain_messages
            ):
                self.notes.append(str(w.message).split(" Silence with")[0])
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _interval_over_originals(
    original_ids: list[str], recognised: np.ndarray, n_boot: int, seed: int
) -> tuple[float, float]:
    """The leak rate's bootstrap interval, the originals numbered in order of first appearance."""
    logger.info("bootstrap over %d originals (%d resamples)", len(set(original_ids)), n_boot)
    # originals numbered by first appearance: the same rows in the same order give the same interval, whatever
    # the ids (file names, batch rows, dataset ids)
    codes = list(dict.fromkeys(original_ids))
    code_of = {oid: i for i, oid in enumerate(codes)}
    return leak_rate_interval(recognised, [code_of[o] for o in original_ids], n_boot=n_boot, seed=seed)


def _baseline_verdicts(
    values: dict[str, np.ndarray],
    computed: list[str],
    dist: np.ndarray,
    recognised: np.ndarray,
    k_leaked: int,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Each computed baseline's matched-count verdicts, and its rank correlation and agreement with SemSim."""
    semsim_leak = -dist
    verdicts, summary = {}, {}
    for name in computed:
        oriented = BASELINES[name].orient(values[name])
        verdicts[name] = _top_k(oriented, k_leaked)
        finite = np.isfinite(oriented)
        summary[name] = {
            "spearman": _spearman(semsim_leak, oriented),
            "agreement": float((verdicts[name] == recognised)[finite].mean()) if finite.any() else math.nan,
        }
    return verdicts, summary


def _disagreement_flags(
    values: dict[str, np.ndarray],
    verdicts: dict[str, np.ndarray],
    rule: list[str],
    recognised: np.ndarray,
    notes: list[str],
) -> list[str]:
    """Each row's disagreement by ``DISAGREEMENT_RULE`` over the ``rule`` baselines (a note when there are none)."""
    n = len(recognised)
    flags = [""] * n
    if rule:
        scored = np.all([np.isfinite(values[b]) for b in rule], axis=0)
        none_says = np.all([~verdicts[b] for b in rule], axis=0)
        all_say = np.all([verdicts[b] for b in rule], axis=0)
        for i in range(n):
            if scored[i] and recognised[i] and none_says[i]:
                flags[i] = "semsim_only"
            elif scored[i] and not recognised[i] and all_say[i]:
                flags[i] = "pixels_only"
    else:
        notes.append("no disagreements computed: neither PSNR nor SSIM was computed.")
    return flags


def _report_rows(
    pairs: ReconstructionPairs,
    dist: np.ndarray,
    prob: np.ndarray,
    recognised: np.ndarray,
    values: dict[str, np.ndarray],
    flags: list[str],
) -> list[LeakageRow]:
    """One ``LeakageRow`` per reconstruction, in input order (``values``: the computed baselines)."""
    return [
        LeakageRow(
            id=pairs.ids[i],
            original_id=pairs.original_ids[i],
            distance=float(dist[i]),
            p_recognised=float(prob[i]),
            recognised=bool(recognised[i]),
            baselines={name: float(v[i]) for name, v in values.items()},
            disagreement=flags[i],
        )
        for i in range(len(pairs))
    ]


def _seen_originals_note(net: Any, seen_fps: dict[str, Tensor], notes: list[str]) -> int:
    """How many originals the model was trained on, noted when there are any."""
    from ..domain import seen_originals

    seen = seen_originals(net.config, list(seen_fps.values()))
    if seen:
        notes.append(
            f"{seen} of the {len(seen_fps)} originals were among the model's training originals: its numbers "
            "on their reconstructions are in-sample (likely better than on unseen images)."
        )
    return seen
