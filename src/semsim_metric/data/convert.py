"""Converters from the official SemSim release, folders and CSV manifests into the one schema.

Each converter returns ``(rows, report)``: rows in ``FEATURES`` layout
(images embedded as PNG/JPEG bytes) and a ``ConversionReport`` in which
every input item is either converted or listed with the reason it was skipped. ``strict=True`` stops at
the first problem with a ``ConversionError``.

Official layouts (see docs/datasets.md):

* labels archive ``human_annos_subset/``: ``original-img/<idx>_<class>_ori.png``,
  ``img/<victim>/<idx>_<class>_rec.png`` and a label file ``<idx>_<class>_gt.txt`` per reconstruction
  with 5 integers (the class each annotator named, -1 = not recognisable). The label file is looked
  for beside the reconstruction, then under ``label/<victim>/`` and ``labels/<victim>/``.
* training archive ``human_anno_id/train_with_ori/``: folder ``N`` holds original N (``*_ori.png``) and
  its recognisable reconstructions; ``-N`` its unrecognisable ones; ``others/`` extra negatives. File
  names ``<idx>_<class>_rec_<k>_<m>.png`` (m = victim index 1..14).

What a converter reads stays inside the folder it is given: a file that is a symbolic link is read only when
it resolves to a file under that folder, links to folders are not followed, and a CSV manifest's rows may
not leave the manifest's folder (unless ``allow_outside_paths``). Messages and reports name files, line
numbers and what was expected, never what a file contains, so a link or a stray file cannot make a
report publish its content.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from .._progress import bar_disabled
from ..image_io import IMAGE_SUFFIXES
from .report import ConversionError, ConversionReport
from .schema import ANNOTATOR_KINDS, RecognitionRule, empty_row

__all__ = [
    "convert_manifest",
    "convert_official_labels",
    "convert_official_training",
    "parse_victim_name",
    "parse_votes",
    "rows_from_human_labels_csv",
]

_VICTIM = re.compile(
    r"^(?P<arch>.+?)_(?P<epochs>\d+)_inversed_(?P<mode>[a-z]+)_auglist_(?P<policy>[0-9+\-]*)_rlabel_(?P<rlabel>True|False)"
    r"(?:_defense_(?P<defense>.+))?$"
)


def parse_victim_name(name: str) -> dict[str, Any]:
    """Parse a victim folder name of the official release into structured columns.

    Examples:
        >>> parse_victim_name("ResNet20-4_200_inversed_crop_auglist__rlabel_False_defense_prune_70")
        {'victim_arch': 'ResNet20-4', 'victim_train_epochs': 200, 'victim_train_mode': 'crop', \
'victim_aug_policy': 'none', 'defense': 'prune_70'}
    """
    m = _VICTIM.match(name)
    if not m:
        raise ValueError(
            f"victim folder name {name!r} does not follow the official pattern "
            "'<arch>_<epochs>_inversed_<mode>_auglist_<policy>_rlabel_<bool>[_defense_<name>]'."
        )
    return {
        "victim_arch": m["arch"],
        "victim_train_epochs": int(m["epochs"]),
        "victim_train_mode": m["mode"],
        "victim_aug_policy": m["policy"] or "none",
        "defense": m["defense"] or "none",
    }


def parse_votes(text: str, expected: int | None = None) -> list[int]:
    """Parse votes written as ``"3;3;-1"``, ``"3,3,-1"``, ``"[3, 3, -1]"`` or whitespace-separated.

    Raises:
        ValueError: a vote is not an integer, is below -1, or the count differs from ``expected``.
    """
    body = text.strip().strip("[]")
    parts = [p for p in re.split(r"[;,\s]+", body) if p]
    votes = []
    for i, p in enumerate(parts, start=1):  # messages give the position, never the text (it may be anything)
        try:
            v = int(p)
        except ValueError:
            raise ValueError(f"vote {i} of {len(parts)} is not an integer (votes are class ids, -1 = not "
                             "recognisable)") from None
        if v < -1:
            raise ValueError(f"vote {i} of {len(parts)} is below -1 (-1 means 'not recognisable')")
        votes.append(v)
    if expected is not None and len(votes) != expected:
        raise ValueError(f"expected {expected} votes, found {len(votes)}")
    return votes


def _read_image(path: Path, name: str | None = None) -> tuple[dict[str, Any], tuple[int, int]]:
    """Read and fully decode an image file; return the Image-feature dict (``path``: ``name``, default the
    file's name) and (width, height)."""
    from PIL import Image

    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            size = img.size
    except Exception as err:  # PIL raises many kinds for corrupt files
        raise OSError(f"unreadable or truncated image ({type(err).__name__}: {err})") from err
    return {"bytes": data, "path": name or path.name}, size


def _finish_row(row: dict[str, Any], rule: RecognitionRule) -> dict[str, Any]:
    votes = row["votes"]
    if votes:
        row["recognized"] = rule.recognized(votes, row["class_label"], row["original_votes"])
        row["recognized_share"] = rule.share(votes, row["class_label"], row["original_votes"])
    return row


# --------------------------------------------------------------------- staying inside the input folder
#: a label file holds a handful of integers; anything larger is not read (it cannot be one)
_MAX_LABEL_BYTES = 4096


@dataclass(frozen=True)
class _Tree:
    """The folder a converter was given (``root``, as passed) and that folder with its links resolved."""

    root: Path
    boundary: Path

    @classmethod
    def of(cls, root: Path) -> _Tree:
        return cls(root, root.resolve())

    def rel(self, path: Path) -> str:
        """``path`` relative to the root (how reports name files)."""
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def outside(self, path: Path) -> bool:
        """True when ``path``, with every link resolved, is not under the root (a loop counts as outside)."""
        try:
            return not path.resolve().is_relative_to(self.boundary)
        except (OSError, RuntimeError):  # a link loop
            return True

    def readable(self, path: Path) -> Path:
        """``path`` with its links resolved, when that is a file under the root.

        Raises:
            OSError: ``path`` is a symbolic link to somewhere outside the root, or a link loop (the message
                names the path, not its target).
        """
        if self.outside(path):
            raise OSError(f"symbolic link to outside the input folder, not read: {self.rel(path)}")
        return path.resolve()

    def link_reason(self, path: Path) -> str | None:
        """Why a link (or another entry that is not a regular file) under the root is not read, else ``None``."""
        if path.is_symlink():
            if not path.exists():
                return "broken symbolic link (not read)"
            if self.outside(path):
                return "symbolic link to outside the input folder (not read)"
            if path.is_dir():
                return "symbolic link to a folder (links to folders are not followed)"
        if path.is_dir():
            return "folder that cannot be listed (not read)"
        if not path.is_file():
            return "not a regular file (not read)"
        return None


def _tree_entries(root: Path) -> list[Path]:
    """Every entry under ``root`` that is not a real folder: files, links (to files, to folders, broken) and
    special files; real folders are descended into, links to folders never are."""
    out: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:  # a folder that cannot be listed is itself an entry, listed with its reason
            if folder != root:
                out.append(folder)
                continue
            raise
        for entry in entries:
            path = folder / entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append(path)
            else:
                out.append(path)
    return sorted(out)


def _through_linked_folder(root: Path, path: Path) -> bool:
    """True when a folder between ``root`` and ``path`` is a symbolic link."""
    return any(parent.is_symlink() for parent in path.parents if parent != root and parent.is_relative_to(root))


def _subfolders(folder: Path) -> list[Path]:
    """Real folders directly in ``folder`` (links to folders are not followed; the tree's accounting lists them)."""
    return sorted(d for d in folder.iterdir() if d.is_dir() and not d.is_symlink())


def _refuse_linked_folder(folder: Path, what: str) -> None:
    if folder.is_symlink():
        raise ConversionError(
            f"{folder} is a symbolic link to a folder; links to folders are not followed (a converter reads only "
            f"files under the folder it is given). Replace the link with the {what} folder itself, or pass the "
            "folder it points to.")


def _label_votes(tree: _Tree, path: Path, n_votes: int) -> list[int]:
    """The votes of a label file under ``tree``. A problem names the file, the line and what was expected,
    never the file's content.

    Raises:
        OSError: the file is a link leaving the tree, or cannot be read.
        ValueError: it is not ``n_votes`` integers >= -1 in UTF-8 text.
    """
    name = tree.rel(path)
    expected = f"expected {n_votes} integers (the class each annotator named, -1 = not recognisable)"
    real = tree.readable(path)
    size = real.stat().st_size
    if size > _MAX_LABEL_BYTES:
        raise ValueError(f"bad label file: {name} has {size} bytes, too many for a label file; {expected}")
    try:
        text = real.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"bad label file: {name} is not UTF-8 text; {expected}") from None
    votes = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        for k, token in enumerate(re.findall(r"[^;,\s\[\]]+", line), start=1):
            try:
                vote = int(token)
            except ValueError:
                raise ValueError(f"bad label file: {name}, line {line_no}, value {k} is not an integer; "
                                 f"{expected}") from None
            if vote < -1:
                raise ValueError(f"bad label file: {name}, line {line_no}, value {k} is below -1; {expected}")
            votes.append(vote)
    if len(votes) != n_votes:
        raise ValueError(f"bad label file: {name} holds {len(votes)} values, expected {n_votes} votes")
    return votes


# ------------------------------------------------------------------------------------------ manifest
_MANIFEST_STR = ("reconstruction_id", "original_id", "class_name", "source_dataset", "victim", "victim_arch",
                 "victim_train_mode", "victim_aug_policy", "attack", "defense", "annotator_kind")
_MANIFEST_INT = ("class_label", "victim_train_epochs", "attack_iterations", "seed")
_MANIFEST_KNOWN = set(_MANIFEST_STR + _MANIFEST_INT) | {"original", "reconstruction", "votes", "original_votes",
                                                          "recognized"}
#: column names shown in notes (others are counted, not repeated)
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_ .-]{0,40}")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


def convert_manifest(
    manifest: str | Path,
    *,
    rule: RecognitionRule | None = None,
    strict: bool = False,
    annotator_kind: str | None = None,
    source_dataset: str | None = None,
    expected_votes: int | None = None,
    base_dir: str | Path | None = None,
    allow_outside_paths: bool = False,
) -> tuple[list[dict[str, Any]], ConversionReport]:
    """Convert a CSV manifest of (original, reconstruction) pairs with votes or a recognised flag.

    Required columns: ``original`` and ``reconstruction`` (paths relative to ``base_dir``, default the
    manifest's folder) and ``votes`` (``"a;b;c"``) or ``recognized`` (true/false). Optional columns:
    any schema column (``original_id``, ``class_label``, ``victim``, ``attack``, ``annotator_kind``, ...).
    Columns the schema does not know are listed in the report's notes.

    Args:
        manifest: path of the CSV file.
        rule: how votes become ``recognized`` (default: at least 3 votes equal the true class).
        strict: stop at the first bad row instead of skipping and reporting it.
        annotator_kind: who produced the votes (``human`` / ``model-judge``); required unless the manifest
            has an ``annotator_kind`` column. Never guessed.
        source_dataset: value for ``source_dataset`` when the manifest has no such column.
        expected_votes: require exactly this many votes per row.
        base_dir: folder the image paths are relative to.
        allow_outside_paths: accept image paths that leave ``base_dir`` (absolute paths, ``..``); by default
            such a row is a problem, so a manifest from elsewhere cannot read arbitrary files.
    """
    rule = rule or RecognitionRule()
    manifest = Path(manifest)
    base = Path(base_dir) if base_dir is not None else manifest.parent
    report = ConversionReport(source=str(manifest), converter="manifest", strict=strict)
    if annotator_kind is not None and annotator_kind not in ANNOTATOR_KINDS:
        raise ConversionError(f"annotator_kind must be one of {ANNOTATOR_KINDS}, got {annotator_kind!r}.")
    if not allow_outside_paths and manifest.is_symlink() and _Tree.of(manifest.parent).outside(manifest):
        raise ConversionError(f"manifest {manifest} is a symbolic link to a file outside its folder; pass the file it "
                              "points to, or allow_outside_paths=True (--allow-outside-paths) if you trust it.")
    try:
        fh = manifest.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise ConversionError(f"cannot open manifest {manifest}: {err}") from err
    with fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = [c for c in ("original", "reconstruction") if c not in columns]
        if missing:  # the header is not repeated: a file that is no manifest may hold anything on its first line
            raise ConversionError(f"manifest {manifest} lacks the column(s) {missing} in its first line (a header of "
                                  f"{len(columns)} column(s)); a manifest starts with a header such as "
                                  "'original,reconstruction,votes'.")
        if "votes" not in columns and "recognized" not in columns:
            raise ConversionError(f"manifest {manifest} needs a 'votes' or a 'recognized' column in its header.")
        if annotator_kind is None and "annotator_kind" not in columns:
            raise ConversionError(
                f"manifest {manifest} does not say who annotated it. Add an 'annotator_kind' column or pass "
                "annotator_kind='human' or 'model-judge' (--annotator-kind). Model labels are never called human."
            )
        extra = [c for c in columns if c not in _MANIFEST_KNOWN]
        if extra:
            shown = [repr(c) for c in extra if _COLUMN_NAME.fullmatch(c or "")]
            more = f" and {len(extra) - len(shown)} unnamed or unusual one(s)" if len(shown) < len(extra) else ""
            report.notes.append(f"{len(extra)} column(s) not in the schema, not converted: {', '.join(shown)}{more}")
        rows = list(reader)
    seen_ids: dict[str, int] = {}
    image_cache: dict[Path, tuple[dict[str, Any], tuple[int, int]]] = {}
    out = []
    for line_no, rec in enumerate(tqdm(rows, desc="manifest rows", unit="row", disable=bar_disabled()), start=2):
        item = f"{manifest.name}:{line_no}"
        try:
            row = _manifest_row(rec, base, rule, annotator_kind, source_dataset, expected_votes, image_cache,
                                allow_outside_paths)
        except (ValueError, OSError) as err:
            report.problem(item, str(err))
            continue
        if row["reconstruction_id"] in seen_ids:
            report.problem(item, f"duplicate reconstruction_id (the same as line {seen_ids[row['reconstruction_id']]})")
            continue
        seen_ids[row["reconstruction_id"]] = line_no
        out.append(row)
        report.ok()
    report.check_totals()
    return out, report


def _load_cached(path: Path, cache: dict, tree: _Tree | None = None) -> tuple[dict[str, Any], tuple[int, int]]:
    """Read ``path`` once (``cache``); under a ``tree``, only when it resolves to a file inside it."""
    if path not in cache:
        if not path.is_file():
            raise OSError(f"missing file: {path}")
        real = tree.readable(path) if tree is not None else path
        try:
            cache[path] = _read_image(real, path.name)
        except OSError as err:
            raise OSError(f"{path}: {err}") from err
    return cache[path]


def _load_pair(orig_path: Path, rec_path: Path, cache: dict,
               tree: _Tree | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an (original, reconstruction) pair; a size mismatch is an error, and so is (under a ``tree``) a
    file that is a link leaving it."""
    orig, osize = _load_cached(orig_path, cache, tree)
    recon, rsize = _load_cached(rec_path, {}, tree)
    if osize != rsize:
        raise ValueError(f"size mismatch: original {osize} vs reconstruction {rsize}")
    return orig, recon


def _inside(base: Path, relative: str, column: str, allow_outside: bool) -> Path:
    """``base / relative``, refused when it leaves ``base`` (absolute paths, ``..``, links) unless allowed."""
    path = base / relative
    if not allow_outside:
        root = base.resolve()
        if not path.resolve().is_relative_to(root):
            raise ValueError(f"{column} path {relative!r} points outside the manifest's folder {root}; keep the "
                             "images under it, or pass allow_outside_paths=True (--allow-outside-paths) if you trust "
                             "this manifest")
    return path


def _manifest_row(rec: dict[str, str], base: Path, rule: RecognitionRule, annotator_kind: str | None,
                  source_dataset: str | None, expected_votes: int | None, cache: dict,
                  allow_outside: bool = False) -> dict[str, Any]:
    row = empty_row()
    if not (rec["original"] or "").strip() or not (rec["reconstruction"] or "").strip():
        raise ValueError("empty original or reconstruction path")
    orig_path = _inside(base, rec["original"].strip(), "original", allow_outside)
    rec_path = _inside(base, rec["reconstruction"].strip(), "reconstruction", allow_outside)
    row["original"], row["reconstruction"] = _load_pair(orig_path, rec_path, cache)
    for col in _MANIFEST_STR:
        if rec.get(col) not in (None, ""):
            row[col] = rec[col].strip()
    for col in _MANIFEST_INT:
        if rec.get(col) not in (None, ""):
            try:
                row[col] = int(float(rec[col]))
            except (ValueError, OverflowError):
                raise ValueError(f"column {col!r} is not an integer") from None
    row["reconstruction_id"] = row["reconstruction_id"] or rec_path.stem
    row["original_id"] = row["original_id"] or orig_path.stem
    if source_dataset and not row["source_dataset"]:
        row["source_dataset"] = source_dataset
    if rec.get("original_votes"):
        row["original_votes"] = parse_votes(rec["original_votes"])
    votes_text = (rec.get("votes") or "").strip()
    if votes_text:
        row["votes"] = parse_votes(votes_text, expected_votes)
        if row["class_label"] < 0 and rule.reference == "true_class":
            raise ValueError("votes given but no class_label to compare them with")
    kind = rec.get("annotator_kind") or annotator_kind
    if not row["votes"] and not (rec.get("recognized") or "").strip():
        row["annotator_kind"] = "none"
    else:
        if kind not in ANNOTATOR_KINDS:
            raise ValueError(f"annotator_kind must be one of {ANNOTATOR_KINDS}")
        row["annotator_kind"] = kind
    flag = (rec.get("recognized") or "").strip().lower()
    if row["votes"]:
        _finish_row(row, rule)
    elif flag:
        if flag not in _TRUE | _FALSE:
            raise ValueError("recognized must be true/false (or 1/0, yes/no)")
        row["recognized"] = flag in _TRUE
        row["recognized_share"] = 1.0 if row["recognized"] else 0.0
    return row


# ---------------------------------------------------------------------------- file-tree accounting
def _check_exists(root: Path) -> None:
    if not root.exists():
        raise ConversionError(f"{root} does not exist. The official release is described in docs/datasets.md "
                              "(where to get it and which folder to pass).")
    if not root.is_dir():
        raise ConversionError(f"{root} is a file; pass the folder of the official release.")



def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def _images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (any case of any image suffix: ``.png``, ``.PNG``, ``.jpg``, ...)."""
    return sorted(p for p in folder.iterdir() if _is_image(p)) if folder.is_dir() else []


def _account_for_tree(tree: _Tree, report: ConversionReport, items: set[Path], supporting: set[Path],
                      why_ignored: Any) -> None:
    """Count every entry under the tree that is not a real folder (files, links, special files); list each one
    that is neither an item nor used by one, with a reason (links the converter did not follow first).

    Paths are compared as the converter found them (not resolved), so two links to one file are two entries,
    each accounted for."""
    entries = _tree_entries(tree.root)
    report.files = len(entries)
    items = set(items)
    used = set(supporting) - items
    report.supporting = sum(1 for p in entries if p in used)
    for p in entries:
        if p not in items and p not in used:
            rel = p.relative_to(tree.root)
            report.ignore(rel.as_posix(), tree.link_reason(p) or why_ignored(rel))


# ------------------------------------------------------------------------------- official: labels
_REC_NAME = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_rec$")
_ORI_NAME = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_ori$")


def _find_label_file(root: Path, rec_path: Path, victim: str, stem: str) -> Path | None:
    """The label file of a reconstruction: beside it, then under ``label(s)/<victim>/`` (never through a link to
    a folder, which the tree's accounting does not follow either)."""
    name = f"{stem}_gt.txt"
    for candidate in (rec_path.parent / name, root / "label" / victim / name, root / "labels" / victim / name):
        if candidate.is_file() and not _through_linked_folder(root, candidate):
            return candidate
    return None


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
    """
    rule = rule or RecognitionRule()
    root = Path(root)
    report = ConversionReport(source=str(root), converter="official-labels", strict=strict)
    _check_exists(root)
    tree = _Tree.of(root)
    _refuse_linked_folder(root / "original-img", "original-img")
    _refuse_linked_folder(root / "img", "img")
    if not (root / "original-img").is_dir() or not (root / "img").is_dir():
        raise ConversionError(
            f"{root} is not the official labels layout: it needs 'original-img/' and 'img/<victim>/' folders."
        )
    originals: dict[str, Path] = {}
    for p in _images_in(root / "original-img"):
        m = _ORI_NAME.match(p.stem)
        if m:
            originals[f"{m['idx']}_{m['cls']}"] = p
    cache: dict = {}
    out = []
    seen: set[str] = set()
    items: set[Path] = set()
    supporting: set[Path] = set()
    victim_dirs = _subfolders(root / "img")
    for victim_dir in tqdm(victim_dirs, desc="official-labels victims", unit="victim", disable=bar_disabled()):
        victim = victim_dir.name
        try:
            parsed = parse_victim_name(victim)
        except ValueError as err:
            parsed = {}
            report.notes.append(str(err) + " Structured victim columns left empty.")
        for rec_path in _images_in(victim_dir):
            item = f"img/{victim}/{rec_path.name}"
            items.add(rec_path)
            m = _REC_NAME.match(rec_path.stem)
            if not m:
                report.problem(item, "unexpected file name (expected <idx>_<class>_rec.png)")
                continue
            key = f"{m['idx']}_{m['cls']}"
            label_file = _find_label_file(root, rec_path, victim, key)
            if label_file is not None and not tree.outside(label_file):
                supporting.add(label_file)  # this item's label file, even when another of its files is bad
            try:
                orig_path = originals.get(key)
                if orig_path is None:
                    raise OSError(f"missing original: original-img/{key}_ori.png")
                tree.readable(orig_path)  # a link leaving the tree is not read, and not used
                supporting.add(orig_path)
                if label_file is None:
                    raise OSError(f"missing label file {key}_gt.txt")
                votes = _label_votes(tree, label_file, n_votes)
                orig, recon = _load_pair(orig_path, rec_path, cache, tree)
            except (OSError, ValueError) as err:
                report.problem(item, str(err))
                continue
            rid = f"{victim}/{key}"
            if rid in seen:
                report.problem(item, f"duplicate reconstruction id {rid}")
                continue
            seen.add(rid)
            row = empty_row()
            row.update(parsed)
            row.update(
                reconstruction_id=rid, original=orig, reconstruction=recon, original_id=f"{source_dataset}-test-{m['idx']}",
                class_label=int(m["cls"]), votes=votes, source_dataset=source_dataset, victim=victim,
                attack="inverting_gradients", attack_iterations=8000, annotator_kind=annotator_kind,
            )
            out.append(_finish_row(row, rule))
            report.ok()

    def why_ignored(rel: Path) -> str:
        top = rel.parts[0]
        if top == "original-img":
            if len(rel.parts) > 2:
                return "in a sub-folder of original-img/ (originals belong directly in original-img/)"
            if not _is_image(root / rel):
                return "not an image file"
            if not _ORI_NAME.match(rel.stem):
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

    _account_for_tree(tree, report, items, supporting, why_ignored)
    report.check_totals()
    return out, report


# ----------------------------------------------------------------------------- official: training
_TRAIN_REC = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_rec_(?P<k>\d+)_(?P<m>\d+)$")


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
    """
    root = Path(root)
    _check_exists(root)
    _refuse_linked_folder(root / "train_with_ori", "train_with_ori")
    if (root / "train_with_ori").is_dir():
        root = root / "train_with_ori"
    tree = _Tree.of(root)
    report = ConversionReport(source=str(root), converter="official-training", strict=strict)
    folders = _subfolders(root) if root.is_dir() else []
    numbered = [d for d in folders if re.fullmatch(r"-?\d+", d.name)]
    if not numbered:
        raise ConversionError(f"{root} is not the official training layout: no folders named N / -N found.")
    originals: dict[str, tuple[Path, int]] = {}
    for d in sorted(numbered, key=lambda d: d.name):
        if d.name.startswith("-"):
            continue
        oris = [p for p in _images_in(d) if p.stem.endswith("_ori")]
        if len(oris) != 1:
            report.notes.append(f"folder {d.name} holds {len(oris)} *_ori image files (expected 1)")
        for o in oris:
            m = _ORI_NAME.match(o.stem)
            if m:
                originals[str(int(m["idx"]))] = (o, int(m["cls"]))
    cache: dict = {}
    out: list[dict[str, Any]] = []
    items: list[tuple[Path, bool, str]] = []
    for d in sorted(folders, key=lambda d: d.name):
        if d.name == "others":
            items += [(p, False, "others") for p in _images_in(d)]
        elif re.fullmatch(r"-?\d+", d.name):
            recognised = not d.name.startswith("-")
            items += [(p, recognised, d.name) for p in _images_in(d) if not p.stem.endswith("_ori")]
        else:
            report.notes.append(f"ignored folder {d.name}")
    supporting: set[Path] = set()
    for rec_path, recognised, folder in tqdm(items, desc="official-training", unit="file", disable=bar_disabled()):
        item = f"{folder}/{rec_path.name}"
        m = _TRAIN_REC.match(rec_path.stem)
        if not m:
            report.problem(item, "unexpected file name (expected <idx>_<class>_rec_<k>_<m>.png)")
            continue
        idx = str(int(m["idx"]))
        if folder not in ("others",) and folder.lstrip("-") != idx:
            report.problem(item, f"file of original {idx} in folder {folder}")
            continue
        try:
            if idx not in originals:
                raise OSError(f"missing original: no folder {idx}/ with {m['idx']}_{m['cls']}_ori.png")
            orig_path, cls = originals[idx]
            tree.readable(orig_path)  # a link leaving the tree is not read, and not used
            supporting.add(orig_path)
            orig, recon = _load_pair(orig_path, rec_path, cache, tree)
        except (OSError, ValueError) as err:
            report.problem(item, str(err))
            continue
        victim_idx = int(m["m"])
        victim = (victim_names[victim_idx - 1] if victim_names and 0 < victim_idx <= len(victim_names)
                  else f"victim_{victim_idx}")
        row = empty_row()
        if victim_names:
            try:
                row.update(parse_victim_name(victim))
            except ValueError:
                pass
        row.update(
            reconstruction_id=f"{folder}/{rec_path.stem}", original=orig, reconstruction=recon,
            original_id=f"{source_dataset}-test-{idx}", class_label=cls, recognized=recognised,
            recognized_share=1.0 if recognised else 0.0, source_dataset=source_dataset, victim=victim,
            attack="inverting_gradients", annotator_kind=annotator_kind,
        )
        out.append(row)
        report.ok()

    def why_ignored(rel: Path) -> str:
        if len(rel.parts) == 1:
            return "directly under the root (files belong in N/, -N/ or others/)"
        top = rel.parts[0]
        if not re.fullmatch(r"-?\d+", top) and top != "others":
            return f"in folder {top}/, which is not N/, -N/ or others/"
        if len(rel.parts) > 2:
            return f"in a sub-folder of {top}/ (not part of the layout)"
        if not _is_image(root / rel):
            return "not an image file"
        if rel.stem.endswith("_ori"):
            return ("original in a -N or others folder (originals live in N/)" if top.startswith("-") or top == "others"
                    else "original that no reconstruction refers to (another *_ori file of this folder is used)")
        return "not part of the layout"

    _account_for_tree(tree, report, {p for p, _, _ in items}, supporting, why_ignored)
    report.check_totals()
    return out, report


# ------------------------------------------------------------------------- labels without images
def rows_from_human_labels_csv(path: str | Path, *, rule: RecognitionRule | None = None) -> list[dict[str, Any]]:
    """Rows (without images) from the processed human-label table of the study
    (``semsim_cifar100_human_labels.csv``: victim, image_index, class_id, annotator_1..5, metrics).

    Raises:
        ConversionError: a line lacks a column or holds a value that is not what the table holds (the
            message names the file, the line and the column, not the value).
    """
    rule = rule or RecognitionRule()
    path = Path(path)
    out = []
    with path.open(newline="") as fh:
        for line_no, rec in enumerate(csv.DictReader(fh), start=2):
            column = "victim"
            try:
                row = empty_row()
                row.update(parse_victim_name(rec[column]))
                votes = []
                for i in range(1, 6):
                    column = f"annotator_{i}"
                    votes.append(int(rec[column]))
                column = "image_index"
                index = int(rec[column])
                column = "class_id"
                class_id = int(rec[column])
            except (KeyError, TypeError, ValueError):
                raise ConversionError(f"{path}:{line_no}: column {column!r} is missing or not what the study's "
                                      "human-label table holds (victim folder names and integers).") from None
            row.update(reconstruction_id=f"{rec['victim']}/{index}",
                       original_id=f"cifar100-test-{index}", class_label=class_id,
                       votes=votes, source_dataset="cifar100", victim=rec["victim"], attack="inverting_gradients",
                       attack_iterations=8000, annotator_kind="human")
            out.append(_finish_row(row, rule))
    return out
