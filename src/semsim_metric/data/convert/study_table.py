"""The study's processed human-label table (``semsim_cifar100_human_labels.csv``): rows without images."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from ..report import ConversionError
from ..schema import RecognitionRule, empty_row
from .parsing import parse_victim_name
from .rows import finish_row

__all__ = ["rows_from_human_labels_csv"]


def rows_from_human_labels_csv(
    path: str | Path, *, rule: RecognitionRule | None = None
) -> list[dict[str, Any]]:
    """Rows (without images) from the processed human-label table of the study
    (``semsim_cifar100_human_labels.csv``: victim, image_index, class_id, annotator_1..5, metrics).

    Raises:
        ConversionError: a line lacks a column or holds a value that is not what the table holds (the
            message names the file, the line and the column, not the value).
        OSError: the file cannot be read.
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
                raise ConversionError(
                    f"{path}:{line_no}: column {column!r} is missing or not what the study's "
                    "human-label table holds (victim folder names and integers)."
                ) from None
            row.update(
                reconstruction_id=f"{rec['victim']}/{index}",
                original_id=f"cifar100-test-{index}",
                class_label=class_id,
                votes=votes,
                source_dataset="cifar100",
                victim=rec["victim"],
                attack="inverting_gradients",
                attack_iterations=8000,
                annotator_kind="human",
            )
            out.append(finish_row(row, rule))
    return out
