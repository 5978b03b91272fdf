"""Merge the per-row held-out scores of several runs into one scores folder, recipes side by side.

    python scripts/merge_heldout_scores.py OUT RUN_OR_SCORES_DIR [RUN_OR_SCORES_DIR ...]

Each input is a `semsim evaluate --heldout ... --out DIR` folder (its `scores/`) or a scores folder itself
(such as `docs/heldout/scores`). Protocols are matched by name: a protocol that several inputs hold gets the
SemSim columns (and calibrated probabilities) of every input, joined on `reconstruction_id` - which needs the
same held-out rows, as the protocol's seeded split gives - and the baselines of the first input that has it.
`python -m semsim_metric.evaluation.heldout OUT` then prints the tables with every recipe beside the others.

Used to put a candidate recipe trained one protocol at a time (one `--out` folder per protocol, so each
split's result is on disk as soon as it is done) beside the published scores of the shipped default.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from pathlib import Path

from semsim_metric.evaluation.heldout import SCORES_FIXED, SCORES_INDEX


def _scores_dir(path: Path) -> Path:
    for candidate in (path, path / "scores"):
        if (candidate / SCORES_INDEX).is_file():
            return candidate
    raise SystemExit(
        f"{path}: no {SCORES_INDEX} here or under scores/ (is it a held-out run's --out folder?)"
    )


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _is_semsim(column: str) -> bool:
    return column.startswith("SemSim[") or column.startswith("p[SemSim[")


def _rows_by_id(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    columns, rows = _read(path)
    if "reconstruction_id" not in columns:
        raise SystemExit(f"{path}: no reconstruction_id column (is it a held-out scores file?)")
    by_id = {r["reconstruction_id"]: r for r in rows}
    if len(by_id) != len(rows):
        raise SystemExit(f"{path}: {len(rows) - len(by_id)} reconstruction ids occur more than once")
    return columns, by_id


def merge(out: Path, inputs: list[Path]) -> list[dict]:
    """Write the merged scores folder ``out``; returns its index entries.

    Raises:
        SystemExit: an input is not a scores folder, or two inputs disagree about a protocol's rows (ids, labels,
            originals, groups) or about the values of a SemSim column both hold.
    """
    merged: dict[str, tuple[dict, list[str], dict[str, dict[str, str]]]] = {}
    for source in map(_scores_dir, inputs):
        for entry in json.loads((source / SCORES_INDEX).read_text()):
            columns, by_id = _rows_by_id(source / entry["file"])
            if entry["protocol"] not in merged:
                merged[entry["protocol"]] = (dict(entry), columns, by_id)
                continue
            first, first_columns, first_rows = merged[entry["protocol"]]
            fixed = [c for c in SCORES_FIXED if c in columns and c in first_columns]
            if set(by_id) != set(first_rows) or any(
                by_id[rid][c] != row[c] for rid, row in first_rows.items() for c in fixed
            ):
                raise SystemExit(
                    f"{source}: protocol {entry['protocol']!r} holds other rows than the first input's; "
                    "merge only runs of the same dataset and seed."
                )
            shared = [c for c in columns if _is_semsim(c) and c in first_columns]
            if any(by_id[rid][c] != row[c] for rid, row in first_rows.items() for c in shared):
                raise SystemExit(f"{source}: protocol {entry['protocol']!r} has other values in {shared}")
            new = [c for c in columns if _is_semsim(c) and c not in first_columns]
            for rid, row in first_rows.items():
                row.update({c: by_id[rid][c] for c in new})
            first_columns += new
            first["recipes"] += [r for r in entry["recipes"] if r not in first["recipes"]]
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for entry, columns, rows in merged.values():
        # as `semsim evaluate` writes them: row fields, SemSim columns, baselines, probabilities (inputs in order)
        fixed = [c for c in columns if c in SCORES_FIXED]
        semsim = [c for c in columns if c.startswith("SemSim[")]
        probabilities = [c for c in columns if c.startswith("p[SemSim[")]
        baselines = [c for c in columns if c not in {*fixed, *semsim, *probabilities}]
        ordered = fixed + semsim + baselines + probabilities
        with gzip.open(out / entry["file"], "wt", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=ordered)
            writer.writeheader()
            writer.writerows(rows.values())
        index.append(entry)
    (out / SCORES_INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="the merged scores folder to write")
    parser.add_argument("inputs", nargs="+", type=Path, help="held-out run folders or scores folders")
    args = parser.parse_args()
    index = merge(args.out, args.inputs)
    print(f"{args.out}: {len(index)} protocols, recipes {sorted({r for e in index for r in e['recipes']})}")


if __name__ == "__main__":
    main()
