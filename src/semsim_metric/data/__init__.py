"""SemSim annotation datasets: one schema, converters, splits, Hub folders, triplets."""

from .convert import (
    convert_manifest,
    convert_official_labels,
    convert_official_training,
    parse_victim_name,
    parse_votes,
    rows_from_human_labels_csv,
)
from .hub_folder import DatasetCard, push_dataset_folder, write_dataset_folder
from .loading import check_schema, load_annotations
from .report import ConversionError, ConversionReport
from .schema import FEATURES, RecognitionRule
from .splits import split_by_original
from .triplets import TripletCollator, TripletDataset

__all__ = [
    "FEATURES", "ConversionError", "ConversionReport", "DatasetCard", "RecognitionRule", "TripletCollator",
    "TripletDataset", "check_schema", "convert_manifest", "convert_official_labels", "convert_official_training",
    "load_annotations", "parse_victim_name", "parse_votes", "push_dataset_folder", "rows_from_human_labels_csv",
    "split_by_original", "write_dataset_folder",
]
