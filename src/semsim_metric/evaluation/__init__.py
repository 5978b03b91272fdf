"""Agreement of SemSim and baseline metrics with annotators' judgements (the paper's protocol):
baselines with their orientation, scoring, statistics, reports, plots and held-out experiments.
Needs the ``[eval]`` extra. Names are imported lazily."""

from __future__ import annotations

from .._lazy import lazy_exports

_PUBLIC = {
    "BASELINES": ".baselines",
    "MetricSpec": ".baselines",
    "leakage_score": ".baselines",
    "compare_on_split": ".protocol",
    "evaluate_dataset": ".protocol",
    "evaluate_table": ".protocol",
    "pair_metric_values": ".protocol",
    "group_keys": ".protocol",
    "parse_group_by": ".protocol",
    "LabelRule": ".protocol",
    "parse_named_models": ".protocol",
    "image_level": ".statistics",
    "model_level": ".statistics",
    "contradiction_rate": ".statistics",
    "best_threshold_accuracy": ".statistics",
    "cluster_bootstrap": ".statistics",
    "EvaluationReport": ".report",
    "write_report": ".writer",
    "plot_model_level": ".plots",
    "plot_roc": ".plots",
    "run_heldout": ".heldout",
    "build_protocol_splits": ".heldout",
    "summary_table": ".heldout",
    "leakage_report": ".leakage",
    "LeakageReport": ".leakage",
    "load_pairs": ".leakage",
    "write_leakage_report": ".leakage_html",
}

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
