"""Pairing the files of an originals folder with those of a reconstructions folder (``semsim score``).

Pairing rule (used by ``semsim score``): a reconstruction pairs with the original whose *key* is the
same, where the key of a file is its name without extension and without a trailing role suffix
``_rec``, ``_ori``, ``_reconstruction``, ``_original``, ``-rec`` or ``-ori``. So ``cat.png`` pairs with
``cat.jpg``, and ``0042_3_rec.png`` with ``0042_3_ori.png``. Several reconstructions of one original are
named ``<key>__<anything>`` (double underscore), e.g. ``cat__ig.png`` and ``cat__dlg.png`` both pair
with ``cat.png``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .image_io import IMAGE_SUFFIXES

__all__ = ["PairingResult", "file_key", "pair_folders"]

_ROLE = re.compile(r"([_-](rec|ori|reconstruction|original))$", re.IGNORECASE)


def file_key(path: Path) -> str:
    """Key that pairs a file with its partner (see the module docstring)."""
    stem = path.stem.split("__", 1)[0]
    return _ROLE.sub("", stem)


@dataclass
class PairingResult:
    """Outcome of pairing two folders: the pairs and everything that could not be paired."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)  # (original, reconstruction)
    unmatched_reconstructions: list[Path] = field(default_factory=list)
    unmatched_originals: list[Path] = field(default_factory=list)
    ambiguous_originals: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        out = [f"reconstruction without original: {p}" for p in self.unmatched_reconstructions]
        out += [f"original without reconstruction: {p}" for p in self.unmatched_originals]
        out += [
            f"several originals share the key {k!r}: {', '.join(map(str, v))}"
            for k, v in self.ambiguous_originals.items()
        ]
        return out


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of images.")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def pair_folders(originals: str | Path, reconstructions: str | Path) -> PairingResult:
    """Pair every reconstruction in ``reconstructions`` with its original in ``originals``."""
    orig_files = _image_files(Path(originals))
    rec_files = _image_files(Path(reconstructions))
    by_key: dict[str, list[Path]] = {}
    for p in orig_files:
        by_key.setdefault(file_key(p), []).append(p)
    result = PairingResult()
    used: set[str] = set()
    for key, files in by_key.items():
        if len(files) > 1:
            result.ambiguous_originals[key] = files
    for rec in rec_files:
        key = file_key(rec)
        files = by_key.get(key)
        if not files:
            result.unmatched_reconstructions.append(rec)
        elif len(files) == 1:
            result.pairs.append((files[0], rec))
            used.add(key)
    result.unmatched_originals = [
        p for p in orig_files if file_key(p) not in used and file_key(p) not in result.ambiguous_originals
    ]
    return result
