"""SemSim annotation datasets: one schema, converters, splits, votes, Hub folders, sources, augmentation,
triplets and pair scoring. Needs the ``[data]`` extra (``datasets``); names are imported lazily."""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "convert_manifest": ".convert",
    "convert_official_labels": ".convert",
    "convert_official_training": ".convert",
    "parse_victim_name": ".convert",
    "parse_votes": ".convert",
    "rows_from_human_labels_csv": ".convert",
    "DatasetCard": ".hub_folder",
    "push_dataset_folder": ".hub_folder",
    "write_dataset_folder": ".hub_folder",
    "check_schema": ".loading",
    "load_annotations": ".loading",
    "load_folder_or_hub": ".loading",
    "ConversionError": ".report",
    "ConversionReport": ".report",
    "FEATURES": ".schema",
    "RecognitionRule": ".schema",
    "split_by_original": ".splits",
    "TripletDataset": ".triplets",
    "Augmentation": ".augmentation",
    "score_pairs": ".scoring",
    "load_source": ".sources",
    "import_votes": ".votes",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
