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
"""

from __future__ import annotations

import csv
import io
import re
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
    for p in parts:
        try:
            v = int(p)
        except ValueError:
            raise ValueError(f"vote {p!r} is not an integer") from None
        if v < -1:
            raise ValueError(f"vote {v} is below -1 (-1 means 'not recognisable')")
        votes.append(v)
    if expected is not None and len(votes) != expected:
        raise ValueError(f"expected {expected} votes, found {len(votes)}")
    return votes


def _read_image(path: Path) -> tuple[dict[str, Any], tuple[int, int]]:
    """Read and fully decode an image file; return the Image-feature dict and (width, height)."""
    from PIL import Image

    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            size = img.size
    except Exception as err:  # PIL raises many kinds for corrupt files
        raise OSError(f"unreadable or truncated image ({type(err).__name__}: {err})") from err
    return {"bytes": data, "path": path.name}, size


def _finish_row(row: dict[str, Any], rule: RecognitionRule) -> dict[str, Any]:
    votes = row["votes"]
    if votes:
        row["recognized"] = rule.recognized(votes, row["class_label"], row["original_votes"])
        row["recognized_share"] = rule.share(votes, row["class_label"], row["original_votes"])
    return row


# ------------------------------------------------------------------------------------------ manifest
_MANIFEST_STR = ("reconstruction_id", "original_id", "class_name", "source_dataset", "victim", "victim_arch",
                 "victim_train_mode", "victim_aug_policy", "attack", "defense", "annotator_kind")
_MANIFEST_INT = ("class_label", "victim_train_epochs", "attack_iterations", "seed")
_MANIFEST_KNOWN = set(_MANIFEST_STR + _MANIFEST_INT) | {"original", "reconstruction", "votes", "original_votes",
                                                          "recognized"}
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
    try:
        fh = manifest.open(newline="", encoding="utf-8-sig")
    except OSError as err:
        raise ConversionError(f"cannot open manifest {manifest}: {err}") from err
    with fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = [c for c in ("original", "reconstruction") if c not in columns]
        if missing:
            raise ConversionError(f"manifest {manifest} lacks the column(s) {missing}; it has {columns}.")
        if "votes" not in columns and "recognized" not in columns:
            raise ConversionError(f"manifest {manifest} needs a 'votes' or a 'recognized' column; it has {columns}.")
        if annotator_kind is None and "annotator_kind" not in columns:
            raise ConversionError(
                f"manifest {manifest} does not say who annotated it. Add an 'annotator_kind' column or pass "
                "annotator_kind='human' or 'model-judge' (--annotator-kind). Model labels are never called human."
            )
        extra = [c for c in columns if c not in _MANIFEST_KNOWN]
        if extra:
            report.notes.append(f"columns not in the schema, not converted: {', '.join(extra)}")
        rows = list(reader)
    seen_ids: set[str] = set()
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
            report.problem(item, f"duplicate reconstruction_id {row['reconstruction_id']!r}")
            continue
        seen_ids.add(row["reconstruction_id"])
        out.append(row)
        report.ok()
    report.check_totals()
    return out, report


def _load_cached(path: Path, cache: dict) -> tuple[dict[str, Any], tuple[int, int]]:
    if path not in cache:
        if not path.is_file():
            raise OSError(f"missing file: {path}")
        try:
            cache[path] = _read_image(path)
        except OSError as err:
            raise OSError(f"{path}: {err}") from err
    return cache[path]


def _load_pair(orig_path: Path, rec_path: Path, cache: dict) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an (original, reconstruction) pair; a size mismatch is an error."""
    orig, osize = _load_cached(orig_path, cache)
    recon, rsize = _load_cached(rec_path, {})
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
            except ValueError:
                raise ValueError(f"column {col!r} is not an integer: {rec[col]!r}") from None
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
            raise ValueError(f"annotator_kind must be one of {ANNOTATOR_KINDS}, got {kind!r}")
        row["annotator_kind"] = kind
    flag = (rec.get("recognized") or "").strip().lower()
    if row["votes"]:
        _finish_row(row, rule)
    elif flag:
        if flag not in _TRUE | _FALSE:
            raise ValueError(f"recognized must be true/false (or 1/0), got {rec['recognized']!r}")
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


def _account_for_tree(root: Path, report: ConversionReport, items: set[Path], supporting: set[Path],
                      why_ignored: Any) -> None:
    """Count every file under ``root``; list each one that is neither an item nor used by one, with a reason."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    report.files = len(files)
    items = {p.resolve() for p in items}
    used = {p.resolve() for p in supporting} - items
    report.supporting = sum(1 for p in files if p.resolve() in used)
    for p in files:
        if p.resolve() not in items and p.resolve() not in used:
            report.ignore(p.relative_to(root).as_posix(), why_ignored(p.relative_to(root)))


# ------------------------------------------------------------------------------- official: labels
_REC_NAME = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_rec$")
_ORI_NAME = re.compile(r"^(?P<idx>\d+)_(?P<cls>\d+)_ori$")


def _find_label_file(root: Path, rec_path: Path, victim: str, stem: str) -> Path | None:
    name = f"{stem}_gt.txt"
    for candidate in (rec_path.parent / name, root / "label" / victim / name, root / "labels" / victim / name):
        if candidate.is_file():
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
    victim_dirs = sorted(d for d in (root / "img").iterdir() if d.is_dir())
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
            try:
                orig_path = originals.get(key)
                if orig_path is None:
                    raise OSError(f"missing original: original-img/{key}_ori.png")
                supporting.add(orig_path)
                label_file = _find_label_file(root, rec_path, victim, key)
                if label_file is None:
                    raise OSError(f"missing label file {key}_gt.txt")
                supporting.add(label_file)
                try:
                    votes = parse_votes(label_file.read_text(encoding="utf-8-sig"), n_votes)
                except ValueError as err:
                    raise ValueError(f"bad label file {label_file.name}: {err}") from None
                orig, recon = _load_pair(orig_path, rec_path, cache)
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

    _account_for_tree(root, report, items, supporting, why_ignored)
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
    if (root / "train_with_ori").is_dir():
        root = root / "train_with_ori"
    report = ConversionReport(source=str(root), converter="official-training", strict=strict)
    folders = [d for d in root.iterdir() if d.is_dir()] if root.is_dir() else []
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
            supporting.add(orig_path)
            orig, recon = _load_pair(orig_path, rec_path, cache)
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

    _account_for_tree(root, report, {p for p, _, _ in items}, supporting, why_ignored)
    report.check_totals()
    return out, report


# ------------------------------------------------------------------------- labels without images
def rows_from_human_labels_csv(path: str | Path, *, rule: RecognitionRule | None = None) -> list[dict[str, Any]]:
    """Rows (without images) from the processed human-label table of the study
    (``semsim_cifar100_human_labels.csv``: victim, image_index, class_id, annotator_1..5, metrics)."""
    rule = rule or RecognitionRule()
    out = []
    with Path(path).open(newline="") as fh:
        for rec in csv.DictReader(fh):
            row = empty_row()
            row.update(parse_victim_name(rec["victim"]))
            votes = [int(rec[f"annotator_{i}"]) for i in range(1, 6)]
            row.update(reconstruction_id=f"{rec['victim']}/{rec['image_index']}",
                       original_id=f"cifar100-test-{rec['image_index']}", class_label=int(rec["class_id"]),
                       votes=votes, source_dataset="cifar100", victim=rec["victim"], attack="inverting_gradients",
                       attack_iterations=8000, annotator_kind="human")
            out.append(_finish_row(row, rule))
    return out
