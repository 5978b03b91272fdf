"""SemSim annotation datasets: one schema, converters, splits, votes, Hub folders, sources, augmentation,
triplets and pair scoring. Needs the ``[data]`` extra (``datasets``); names are imported lazily."""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "convert_manifest": ".convert", "convert_official_labels": ".convert", "convert_official_training": ".convert",
    "parse_victim_name": ".convert", "parse_votes": ".convert", "rows_from_human_labels_csv": ".convert",
    "DatasetCard": ".hub_folder", "push_dataset_folder": ".hub_folder", "write_dataset_folder": ".hub_folder",
    "check_schema": ".loading", "load_annotations": ".loading", "load_folder_or_hub": ".loading",
    "ConversionError": ".report", "ConversionReport": ".report",
    "FEATURES": ".schema", "RecognitionRule": ".schema",
    "split_by_original": ".splits",
    "TripletDataset": ".triplets",
    "Augmentation": ".augmentation",
    "score_pairs": ".scoring",
    "load_source": ".sources",
    "import_votes": ".votes",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(import_module(_PUBLIC[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'semsim_metric.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
