"""The official training archive (``human_anno_id/train_with_ori/``): recognisable or not by folder, no votes.

Layout (see docs/datasets.md): folder ``N`` holds original N (``*_ori.png``) and its recognisable
reconstructions; ``-N`` its unrecognisable ones; ``others/`` extra negatives. File names
``<idx>_<class>_rec_<k>_<m>.png`` (m = victim index 1..14).
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..._progress import bar_disabled
from ..report import ConversionError, ConversionReport
from ..schema import empty_row
from .parsing import ORIGINAL_NAME, parse_victim_name
from .rows import ImageCache, ImageCell, ItemProblem, load_pair, require_inside
from .tree import Tree, account_for_tree, check_exists, images_in, is_image, refuse_linked_folder, subfolders

__all__ = ["convert_official_training"]

_TRAIN_REC = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_rec_(?P<k>\d+)_(?P<m>\d+)$")
_NUMBERED = re.compile(r"-?\d+")

#: an input item: the reconstruction, whether its folder says it is recognisable, the folder's name
_Item = tuple[Path, bool, str]


def convert_official_training(
    root: str | Path,
    *,
    strict: bool = False,
    source_dataset: str = "cifar100",
    annotator_kind: str = "human",
    victim_names: list[str] | None = None,
) -> tuple[list[dict[str, Any]], ConversionReport]:
    """Convert the official training archive (``human_anno_id/train_with_ori/``); no votes, the folder
    gives ``recognized`` (``N`` = recognisable, ``-N`` = not, ``others/`` = extra negatives).

    Reconstructions in ``others/`` are converted when their original (index in the file name) is present
    in some folder ``N``; otherwise they are reported as skipped.

    Args:
        victim_names: optional list mapping victim index m (1-based) to a victim name.

    Raises:
        ConversionError: ``root`` is missing, a file, has no folders ``N`` / ``-N`` or a linked
            ``train_with_ori/``; in strict mode, the first item that cannot be converted.
        OSError: a folder of the layout cannot be listed.
    """
    root = _layout_root(Path(root))
    tree = Tree.of(root)
    report = ConversionReport(source=str(root), converter="official-training", strict=strict)
    folders = subfolders(root) if root.is_dir() else []
    numbered = [d for d in folders if _NUMBERED.fullmatch(d.name)]
    if not numbered:
        raise ConversionError(f"{root} is not the official training layout: no folders named N / -N found.")
    conversion = _Conversion(
        tree, report, source_dataset, annotator_kind, victim_names, originals=_originals(numbered, report)
    )
    items = _items(folders, report)
    for rec_path, recognised, folder in tqdm(
        items, desc="official-training", unit="file", disable=bar_disabled()
    ):
        conversion.item(rec_path, recognised, folder)
    account_for_tree(
        tree, report, {p for p, _, _ in items}, conversion.supporting, partial(_why_ignored, root)
    )
    report.check_totals()
    return conversion.rows, report


def _layout_root(root: Path) -> Path:
    """``root/train_with_ori`` when there is one (a real folder), else ``root``."""
    check_exists(root)
    refuse_linked_folder(root / "train_with_ori", "train_with_ori")
    if (root / "train_with_ori").is_dir():
        root = root / "train_with_ori"
    return root


def _originals(numbered: list[Path], report: ConversionReport) -> dict[str, tuple[Path, int]]:
    """The originals of the folders ``N`` by index (as a plain integer), with their class; a folder without
    exactly one ``*_ori`` image is noted."""
    originals: dict[str, tuple[Path, int]] = {}
    for d in sorted(numbered, key=lambda d: d.name):
        if d.name.startswith("-"):
            continue
        oris = [p for p in images_in(d) if p.stem.endswith("_ori")]
        if len(oris) != 1:
            report.notes.append(f"folder {d.name} holds {len(oris)} *_ori image files (expected 1)")
        for o in oris:
            m = ORIGINAL_NAME.match(o.stem)
            if m:
                originals[str(int(m["idx"]))] = (o, int(m["cls"]))
    return originals


def _items(folders: list[Path], report: ConversionReport) -> list[_Item]:
    """The reconstructions of the folders ``N``, ``-N`` and ``others/``; other folders are noted as ignored."""
    items: list[_Item] = []
    for d in sorted(folders, key=lambda d: d.name):
        if d.name == "others" or _NUMBERED.fullmatch(d.name):
            # an original (*_ori) is never an item: one in N/ is found through its reconstructions, one in -N/ or
            # others/ is listed among the ignored files with the reason
            recognised = d.name != "others" and not d.name.startswith("-")
            items += [(p, recognised, d.name) for p in images_in(d) if not p.stem.endswith("_ori")]
        else:
            report.notes.append(f"ignored folder {d.name}")
    return items


@dataclass
class _Conversion:
    """One conversion of the training layout: its settings, the rows so far and the originals it has used."""

    tree: Tree
    report: ConversionReport
    source_dataset: str
    annotator_kind: str
    victim_names: list[str] | None
    originals: dict[str, tuple[Path, int]]
    cache: ImageCache = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    supporting: set[Path] = field(default_factory=set)

    def item(self, rec_path: Path, recognised: bool, folder: str) -> None:
        """Convert one reconstruction, or report why not."""
        item = f"{folder}/{rec_path.name}"
        m = _TRAIN_REC.match(rec_path.stem)
        if not m:
            self.report.problem(item, "unexpected file name (expected <idx>_<class>_rec_<k>_<m>.png)")
            return
        idx = str(int(m["idx"]))
        if folder not in ("others",) and folder.lstrip("-") != idx:
            self.report.problem(item, f"file of original {idx} in folder {folder}")
            return
        try:
            cls, orig, recon = self._read(idx, f"{m['idx']}_{m['cls']}_ori.png", rec_path)
        except (ValueError, OSError) as err:  # an ItemProblem (a ValueError), or a real I/O error
            self.report.problem(item, str(err))
            return
        victim = _victim_name(int(m["m"]), self.victim_names)
        row = empty_row()
        if self.victim_names:
            with suppress(ValueError):  # a name that is not the official pattern leaves the columns empty
                row.update(parse_victim_name(victim))
        row.update(
            reconstruction_id=f"{folder}/{rec_path.stem}",
            original=orig,
            reconstruction=recon,
            original_id=f"{self.source_dataset}-test-{idx}",
            class_label=cls,
            recognized=recognised,
            recognized_share=1.0 if recognised else 0.0,
            source_dataset=self.source_dataset,
            victim=victim,
            attack="inverting_gradients",
            annotator_kind=self.annotator_kind,
        )
        self.rows.append(row)
        self.report.ok()

    def _read(self, idx: str, original_name: str, rec_path: Path) -> tuple[int, ImageCell, ImageCell]:
        """The class, original and reconstruction of one item.

        Raises:
            ItemProblem: the original is missing or a link leaving the tree, or an image is bad.
            OSError: a file cannot be read.
        """
        if idx not in self.originals:
            raise ItemProblem(f"missing original: no folder {idx}/ with {original_name}")
        orig_path, cls = self.originals[idx]
        require_inside(self.tree, orig_path)  # a link leaving the tree is not read, and not used
        self.supporting.add(orig_path)
        orig, recon = load_pair(orig_path, rec_path, self.cache, self.tree)
        return cls, orig, recon


def _victim_name(index: int, names: list[str] | None) -> str:
    """The name of victim ``index`` (1-based) from ``names``, else ``victim_<index>``."""
    return names[index - 1] if names and 0 < index <= len(names) else f"victim_{index}"


def _why_ignored(root: Path, rel: Path) -> str:
    """Why a file at ``rel`` (relative to ``root``) is neither an item nor used by one."""
    if len(rel.parts) == 1:
        return "directly under the root (files belong in N/, -N/ or others/)"
    top = rel.parts[0]
    if not _NUMBERED.fullmatch(top) and top != "others":
        return f"in folder {top}/, which is not N/, -N/ or others/"
    if len(rel.parts) > 2:
        return f"in a sub-folder of {top}/ (not part of the layout)"
    if not is_image(root / rel):
        return "not an image file"
    if rel.stem.endswith("_ori"):
        return (
            "original in a -N or others folder (originals live in N/)"
            if top.startswith("-") or top == "others"
            else "original that no reconstruction refers to (another *_ori file of this folder is used)"
        )
    return "not part of the layout"
