"""CSV manifests: (original, reconstruction) pairs with votes or a recognised flag, and any schema column.

Image paths are relative to the manifest's folder (or ``base_dir``) and may not leave it unless
``allow_outside_paths``; a manifest that is a link to a file outside its folder is refused likewise. Messages
name lines and columns, never values.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ..._progress import bar_disabled
from ..report import ConversionError, ConversionReport
from ..schema import ANNOTATOR_KINDS, RecognitionRule, empty_row
from .parsing import parse_votes
from .rows import ImageCache, ItemProblem, finish_row, load_pair
from .tree import Tree

__all__ = ["ManifestOptions", "convert_manifest", "manifest_row"]

_MANIFEST_STR = (
    "reconstruction_id",
    "original_id",
    "class_name",
    "source_dataset",
    "victim",
    "victim_arch",
    "victim_train_mode",
    "victim_aug_policy",
    "attack",
    "defense",
    "annotator_kind",
)
_MANIFEST_INT = ("class_label", "victim_train_epochs", "attack_iterations", "seed")
_MANIFEST_KNOWN = set(_MANIFEST_STR + _MANIFEST_INT) | {
    "original",
    "reconstruction",
    "votes",
    "original_votes",
    "recognized",
}
#: column names shown in notes (others are counted, not repeated)
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_ .-]{0,40}")
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class ManifestOptions:
    """How the lines of one manifest become rows (the arguments of ``convert_manifest`` a row needs)."""

    #: folder the image paths are relative to
    base: Path
    #: how votes become ``recognized``
    rule: RecognitionRule
    #: who produced the votes, where the manifest has no ``annotator_kind`` column
    annotator_kind: str | None = None
    #: ``source_dataset`` where the manifest has no such column
    source_dataset: str | None = None
    #: require exactly this many votes per line
    expected_votes: int | None = None
    #: accept image paths that leave ``base``
    allow_outside: bool = False


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

    Raises:
        ConversionError: a bad ``annotator_kind``, a manifest linked from outside its folder, one that cannot
            be opened or whose header lacks what is needed; in strict mode, the first bad line.
    """
    manifest = Path(manifest)
    options = ManifestOptions(
        base=Path(base_dir) if base_dir is not None else manifest.parent,
        rule=rule or RecognitionRule(),
        annotator_kind=annotator_kind,
        source_dataset=source_dataset,
        expected_votes=expected_votes,
        allow_outside=allow_outside_paths,
    )
    report = ConversionReport(source=str(manifest), converter="manifest", strict=strict)
    _check_arguments(manifest, annotator_kind, allow_outside_paths)
    records = _read_records(manifest, annotator_kind, report)
    rows = _convert_records(manifest, records, options, report)
    report.check_totals()
    return rows, report


def _check_arguments(manifest: Path, annotator_kind: str | None, allow_outside_paths: bool) -> None:
    """Refuse an unknown ``annotator_kind`` and (unless allowed) a manifest linked from outside its folder."""
    if annotator_kind is not None and annotator_kind not in ANNOTATOR_KINDS:
        raise ConversionError(f"annotator_kind must be one of {ANNOTATOR_KINDS}, got {annotator_kind!r}.")
    if not allow_outside_paths and manifest.is_symlink() and Tree.of(manifest.parent).outside(manifest):
        raise ConversionError(
            f"manifest {manifest} is a symbolic link to a file outside its folder; pass the file it "
            "points to, or allow_outside_paths=True (--allow-outside-paths) if you trust it."
        )


def _read_records(
    manifest: Path, annotator_kind: str | None, report: ConversionReport
) -> list[dict[str, str]]:
    """The manifest's lines after its header (checked; columns the schema does not know are noted)."""
    try:
        fh = manifest.open(newline="", encoding="utf-8-sig")
    except OSError as err:  # a real I/O error, reported as the system says it
        raise ConversionError(f"cannot open manifest {manifest}: {err}") from err
    with fh:
        reader = csv.DictReader(fh)
        _check_header(manifest, list(reader.fieldnames or []), annotator_kind, report)
        return list(reader)


def _check_header(
    manifest: Path, columns: list[str], annotator_kind: str | None, report: ConversionReport
) -> None:
    """Refuse a header without the needed columns; note the columns the schema does not know (by name only when
    the name looks like one)."""
    missing = [c for c in ("original", "reconstruction") if c not in columns]
    if missing:  # the header is not repeated: a file that is no manifest may hold anything on its first line
        raise ConversionError(
            f"manifest {manifest} lacks the column(s) {missing} in its first line (a header of "
            f"{len(columns)} column(s)); a manifest starts with a header such as "
            "'original,reconstruction,votes'."
        )
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
        report.notes.append(
            f"{len(extra)} column(s) not in the schema, not converted: {', '.join(shown)}{more}"
        )


def _convert_records(
    manifest: Path, records: list[dict[str, str]], options: ManifestOptions, report: ConversionReport
) -> list[dict[str, Any]]:
    """One row per line, or the line's problem in the report (lines are numbered as in the file)."""
    seen_ids: dict[str, int] = {}
    cache: ImageCache = {}
    out = []
    for line_no, rec in enumerate(
        tqdm(records, desc="manifest rows", unit="row", disable=bar_disabled()), start=2
    ):
        item = f"{manifest.name}:{line_no}"
        try:
            row = manifest_row(rec, options, cache)
        except (
            ValueError,
            OSError,
        ) as err:  # a bad line (ItemProblem and other ValueErrors), a real I/O error
            report.problem(item, str(err))
            continue
        if row["reconstruction_id"] in seen_ids:
            report.problem(
                item, f"duplicate reconstruction_id (the same as line {seen_ids[row['reconstruction_id']]})"
            )
            continue
        seen_ids[row["reconstruction_id"]] = line_no
        out.append(row)
        report.ok()
    return out


def manifest_row(rec: dict[str, str], options: ManifestOptions, cache: ImageCache) -> dict[str, Any]:
    """The row of one manifest line ``rec`` (column -> text): its images (originals read once through
    ``cache``), its schema columns, its votes or recognised flag and who judged it.

    Raises:
        ValueError: the line is bad (an ``ItemProblem``: a missing, unreadable or outside image, a column that
            is not what it should be; or a bad vote list); the message names the column, never its value.
        OSError: an image cannot be read.
    """
    row = empty_row()
    orig_path, rec_path = _image_paths(rec, options)
    row["original"], row["reconstruction"] = load_pair(orig_path, rec_path, cache)
    _copy_columns(rec, row)
    row["reconstruction_id"] = row["reconstruction_id"] or rec_path.stem
    row["original_id"] = row["original_id"] or orig_path.stem
    if options.source_dataset and not row["source_dataset"]:
        row["source_dataset"] = options.source_dataset
    _set_votes(rec, row, options)
    _set_annotator_kind(rec, row, options.annotator_kind)
    _set_recognized(rec, row, options.rule)
    return row


def _image_paths(rec: dict[str, str], options: ManifestOptions) -> tuple[Path, Path]:
    """The original's and the reconstruction's paths of a line (inside ``options.base`` unless allowed)."""
    if not (rec["original"] or "").strip() or not (rec["reconstruction"] or "").strip():
        raise ItemProblem("empty original or reconstruction path")
    return (
        _inside(options.base, rec["original"].strip(), "original", options.allow_outside),
        _inside(options.base, rec["reconstruction"].strip(), "reconstruction", options.allow_outside),
    )


def _inside(base: Path, relative: str, column: str, allow_outside: bool) -> Path:
    """``base / relative``, refused when it leaves ``base`` (absolute paths, ``..``, links) unless allowed."""
    path = base / relative
    if not allow_outside:
        root = base.resolve()
        if not path.resolve().is_relative_to(root):
            raise ItemProblem(
                f"{column} path {relative!r} points outside the manifest's folder {root}; keep the "
                "images under it, or pass allow_outside_paths=True (--allow-outside-paths) if you "
                "trust this manifest"
            )
    return path


def _copy_columns(rec: dict[str, str], row: dict[str, Any]) -> None:
    """Copy the schema's text and integer columns that the line fills."""
    for col in _MANIFEST_STR:
        if rec.get(col) not in (None, ""):
            row[col] = rec[col].strip()
    for col in _MANIFEST_INT:
        if rec.get(col) not in (None, ""):
            try:
                row[col] = int(float(rec[col]))
            except (ValueError, OverflowError):
                raise ItemProblem(f"column {col!r} is not an integer") from None


def _set_votes(rec: dict[str, str], row: dict[str, Any], options: ManifestOptions) -> None:
    """The line's votes (and the original's), which need a class to compare them with under the true-class rule."""
    if rec.get("original_votes"):
        row["original_votes"] = parse_votes(rec["original_votes"])
    votes_text = (rec.get("votes") or "").strip()
    if votes_text:
        row["votes"] = parse_votes(votes_text, options.expected_votes)
        if row["class_label"] < 0 and options.rule.reference == "true_class":
            raise ItemProblem("votes given but no class_label to compare them with")


def _set_annotator_kind(rec: dict[str, str], row: dict[str, Any], default: str | None) -> None:
    """Who judged the line: its ``annotator_kind`` column, else ``default``; ``none`` for a line without a
    judgement."""
    kind = rec.get("annotator_kind") or default
    if not row["votes"] and not (rec.get("recognized") or "").strip():
        row["annotator_kind"] = "none"
    else:
        if kind not in ANNOTATOR_KINDS:
            raise ItemProblem(f"annotator_kind must be one of {ANNOTATOR_KINDS}")
        row["annotator_kind"] = kind


def _set_recognized(rec: dict[str, str], row: dict[str, Any], rule: RecognitionRule) -> None:
    """``recognized`` from the votes by ``rule``, else from the line's true/false flag."""
    flag = (rec.get("recognized") or "").strip().lower()
    if row["votes"]:
        finish_row(row, rule)
    elif flag:
        if flag not in _TRUE | _FALSE:
            raise ItemProblem("recognized must be true/false (or 1/0, yes/no)")
        row["recognized"] = flag in _TRUE
        row["recognized_share"] = 1.0 if row["recognized"] else 0.0
