"""The official labels archive (``human_annos_subset/``): reconstructions with real human votes.

Layout (see docs/datasets.md): ``original-img/<idx>_<class>_ori.png``, ``img/<victim>/<idx>_<class>_rec.png``
and a label file ``<idx>_<class>_gt.txt`` per reconstruction with 5 integers (the class each annotator named,
-1 = not recognisable). The label file is looked for beside the reconstruction, then under
``label/<victim>/`` and ``labels/<victim>/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..._progress import bar_disabled
from ..report import ConversionError, ConversionReport
from ..schema import RecognitionRule, empty_row
from .parsing import ORIGINAL_NAME, parse_victim_name
from .rows import ImageCache, ImageCell, ItemProblem, finish_row, load_pair, require_inside
from .tree import (
    Tree,
    account_for_tree,
    check_exists,
    images_in,
    is_image,
    refuse_linked_folder,
    subfolders,
    through_linked_folder,
)

__all__ = ["convert_official_labels", "find_label_file", "label_votes"]

_REC_NAME = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_rec$")
#: a label file holds a handful of integers; anything larger is not read (it cannot be one)
_MAX_LABEL_BYTES = 4096


def convert_official_labels(
    root: str | Path,
    *,
    rule: RecognitionRule | None = None,
    strict: bool = False,
    n_votes: int = 5,
    source_dataset: str = "cifar100",
    annotator_kind: str = "human",
) -> tuple[list[dict[str, Any]], ConversionReport]:
    """Convert the official labels archive (``human_annos_subset/``) - real human votes.

    Every reconstruction ``img/<victim>/<idx>_<class>_rec.png`` is one input item; it is converted when its
    original ``original-img/<idx>_<class>_ori.png`` and its label file (``n_votes`` integers) are valid.

    Raises:
        ConversionError: ``root`` is missing, a file, not this layout or has a linked ``original-img/`` or
            ``img/``; in strict mode, the first item that cannot be converted.
        OSError: a folder of the layout cannot be listed.
    """
    root = Path(root)
    report = ConversionReport(source=str(root), converter="official-labels", strict=strict)
    tree = _open_layout(root)
    conversion = _Conversion(
        tree,
        report,
        rule or RecognitionRule(),
        n_votes,
        source_dataset,
        annotator_kind,
        originals=_originals(root / "original-img"),
    )
    victim_dirs = subfolders(root / "img")
    for victim_dir in tqdm(
        victim_dirs, desc="official-labels victims", unit="victim", disable=bar_disabled()
    ):
        conversion.victim(victim_dir)
    account_for_tree(tree, report, conversion.items, conversion.supporting, partial(_why_ignored, root))
    report.check_totals()
    return conversion.rows, report


def _open_layout(root: Path) -> Tree:
    """The tree under ``root``, after checking that it is the labels layout with real (unlinked) folders."""
    check_exists(root)
    tree = Tree.of(root)
    refuse_linked_folder(root / "original-img", "original-img")
    refuse_linked_folder(root / "img", "img")
    if not (root / "original-img").is_dir() or not (root / "img").is_dir():
        raise ConversionError(
            f"{root} is not the official labels layout: it needs 'original-img/' and 'img/<victim>/' folders."
        )
    return tree


def _originals(folder: Path) -> dict[str, Path]:
    """The originals in ``original-img/`` by ``<idx>_<class>``."""
    originals: dict[str, Path] = {}
    for p in images_in(folder):
        m = ORIGINAL_NAME.match(p.stem)
        if m:
            originals[f"{m['idx']}_{m['cls']}"] = p
    return originals


@dataclass
class _Conversion:
    """One conversion of the labels layout: its settings, the rows so far and the files it has used."""

    tree: Tree
    report: ConversionReport
    rule: RecognitionRule
    n_votes: int
    source_dataset: str
    annotator_kind: str
    originals: dict[str, Path]
    cache: ImageCache = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    items: set[Path] = field(default_factory=set)
    supporting: set[Path] = field(default_factory=set)

    def victim(self, victim_dir: Path) -> None:
        """Convert the reconstructions of one victim folder (an unusual name only leaves its columns empty)."""
        victim = victim_dir.name
        try:
            parsed = parse_victim_name(victim)
        except ValueError as err:
            parsed = {}
            self.report.notes.append(str(err) + " Structured victim columns left empty.")
        for rec_path in images_in(victim_dir):
            self.item(rec_path, victim, parsed)

    def item(self, rec_path: Path, victim: str, parsed: dict[str, Any]) -> None:
        """Convert one reconstruction, or report why not."""
        item = f"img/{victim}/{rec_path.name}"
        self.items.add(rec_path)
        m = _REC_NAME.match(rec_path.stem)
        if not m:
            self.report.problem(item, "unexpected file name (expected <idx>_<class>_rec.png)")
            return
        key = f"{m['idx']}_{m['cls']}"
        label_file = find_label_file(self.tree.root, rec_path, victim, key)
        if label_file is not None and not self.tree.outside(label_file):
            self.supporting.add(label_file)  # this item's label file, even when another of its files is bad
        try:
            votes, orig, recon = self._read(key, rec_path, label_file)
        except (ValueError, OSError) as err:  # an ItemProblem (a ValueError), or a real I/O error
            self.report.problem(item, str(err))
            return
        rid = f"{victim}/{key}"
        if rid in self.seen:
            self.report.problem(item, f"duplicate reconstruction id {rid}")
            return
        self.seen.add(rid)
        row = empty_row()
        row.update(parsed)
        row.update(
            reconstruction_id=rid,
            original=orig,
            reconstruction=recon,
            original_id=f"{self.source_dataset}-test-{m['idx']}",
            class_label=int(m["cls"]),
            votes=votes,
            source_dataset=self.source_dataset,
            victim=victim,
            attack="inverting_gradients",
            attack_iterations=8000,
            annotator_kind=self.annotator_kind,
        )
        self.rows.append(finish_row(row, self.rule))
        self.report.ok()

    def _read(
        self, key: str, rec_path: Path, label_file: Path | None
    ) -> tuple[list[int], ImageCell, ImageCell]:
        """The votes, original and reconstruction of one item.

        Raises:
            ItemProblem: the original or the label file is missing, a link leaving the tree, or bad.
            OSError: a file cannot be read.
        """
        orig_path = self.originals.get(key)
        if orig_path is None:
            raise ItemProblem(f"missing original: original-img/{key}_ori.png")
        require_inside(self.tree, orig_path)  # a link leaving the tree is not read, and not used
        self.supporting.add(orig_path)
        if label_file is None:
            raise ItemProblem(f"missing label file {key}_gt.txt")
        votes = label_votes(self.tree, label_file, self.n_votes)
        orig, recon = load_pair(orig_path, rec_path, self.cache, self.tree)
        return votes, orig, recon


def find_label_file(root: Path, rec_path: Path, victim: str, stem: str) -> Path | None:
    """The label file of a reconstruction: beside it, then under ``label(s)/<victim>/`` (never through a link to
    a folder, which the tree's accounting does not follow either)."""
    name = f"{stem}_gt.txt"
    for candidate in (
        rec_path.parent / name,
        root / "label" / victim / name,
        root / "labels" / victim / name,
    ):
        if candidate.is_file() and not through_linked_folder(root, candidate):
            return candidate
    return None


def label_votes(tree: Tree, path: Path, n_votes: int) -> list[int]:
    """The votes of a label file under ``tree``. A problem names the file, the line and what was expected,
    never the file's content.

    Raises:
        ItemProblem: the file is a link leaving the tree, or it is not ``n_votes`` integers >= -1 in UTF-8 text.
        OSError: it cannot be read.
    """
    name = tree.rel(path)
    expected = f"expected {n_votes} integers (the class each annotator named, -1 = not recognisable)"
    real = require_inside(tree, path)
    size = real.stat().st_size
    if size > _MAX_LABEL_BYTES:
        raise ItemProblem(f"bad label file: {name} has {size} bytes, too many for a label file; {expected}")
    try:
        text = real.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ItemProblem(f"bad label file: {name} is not UTF-8 text; {expected}") from None
    votes = [
        vote
        for line_no, line in enumerate(text.splitlines(), start=1)
        for vote in _line_votes(line, f"bad label file: {name}, line {line_no}", expected)
    ]
    if len(votes) != n_votes:
        raise ItemProblem(f"bad label file: {name} holds {len(votes)} values, expected {n_votes} votes")
    return votes


def _line_votes(line: str, where: str, expected: str) -> list[int]:
    """The votes on one line of a label file (``where``: the file and line, for messages)."""
    votes = []
    for k, token in enumerate(re.findall(r"[^;,\s\[\]]+", line), start=1):
        try:
            vote = int(token)
        except ValueError:
            raise ItemProblem(f"{where}, value {k} is not an integer; {expected}") from None
        if vote < -1:
            raise ItemProblem(f"{where}, value {k} is below -1; {expected}")
        votes.append(vote)
    return votes


def _why_ignored(root: Path, rel: Path) -> str:
    """Why a file at ``rel`` (relative to ``root``) is neither an item nor used by one."""
    top = rel.parts[0]
    if top == "original-img":
        if len(rel.parts) > 2:
            return "in a sub-folder of original-img/ (originals belong directly in original-img/)"
        if not is_image(root / rel):
            return "not an image file"
        if not ORIGINAL_NAME.match(rel.stem):
            return "unexpected name in original-img/ (expected <idx>_<class>_ori.<ext>)"
        return "original that no reconstruction refers to"
    if top == "img":
        if len(rel.parts) == 2:
            return "directly under img/ (reconstructions belong in img/<victim>/)"
        if len(rel.parts) > 3:
            return "in a sub-folder of img/<victim>/ (not part of the layout)"
        return "not an image file" if not rel.name.endswith("_gt.txt") else "label file of no reconstruction"
    if top in ("label", "labels"):
        return "label file of no reconstruction"
    return "outside original-img/, img/ and label(s)/ (not part of the layout)"
