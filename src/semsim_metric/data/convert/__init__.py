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

Modules: ``official_labels``, ``official_training`` and ``manifest`` (one converter each) and
``study_table`` (the study's label table, no images), built on ``tree`` (the folder walker that keeps every
read inside the root and accounts for every file), ``rows`` (an item's images, its problems, votes ->
``recognized``) and ``parsing`` (victim names, vote lists).
"""

from __future__ import annotations

from .manifest import convert_manifest
from .official_labels import convert_official_labels
from .official_training import convert_official_training
from .parsing import parse_victim_name, parse_votes
from .study_table import rows_from_human_labels_csv

__all__ = [
    "convert_manifest",
    "convert_official_labels",
    "convert_official_training",
    "parse_victim_name",
    "parse_votes",
    "rows_from_human_labels_csv",
]
