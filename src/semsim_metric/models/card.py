"""Model-card metadata, written with ``huggingface_hub.ModelCardData`` - one writer for every SemSim card.

``semsim train`` (``semsim_metric.training.model_card.write_model_card``), ``scripts/default_model.py`` and
``SemSimModel.push_to_hub`` all write the card's YAML header here: licence, library, pipeline tag, tags, the
training dataset's Hub id, the base model and the evaluation results as ``model-index`` entries (which the Hub
shows as the model's evaluation results). ``push_to_hub`` also takes its card body from here (``model_card``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import InvalidInputError

__all__ = [
    "HUB_ORG",
    "LICENSE",
    "TAGS",
    "EvalEntry",
    "card_metadata",
    "hub_dataset_id",
    "is_hub_id",
    "model_card",
    "read_training_record",
]

#: the Hub organisation of the project's datasets and models (``hub/<name>`` folders are published as ``<org>/<name>``)
HUB_ORG = "semsim-metric"
#: the licence of SemSim models (the package's)
LICENSE = "apache-2.0"
TAGS = ["privacy", "image-similarity", "gradient-inversion", "semsim"]
#: the project's ``hub/`` folder in a source checkout (``src/semsim_metric/models/card.py`` -> ``hub/``)
_PROJECT_HUB = Path(__file__).resolve().parents[3] / "hub"


class EvalEntry(NamedTuple):
    """One evaluation result of a card's ``model-index``.

    Attributes:
        metric_type: the metric's id (``"roc_auc"``, ``"kendall_tau"``).
        metric_name: what was measured, as the Hub shows it (e.g. ``"ROC-AUC (recognised vs not, test)"``).
        value: the value (rounded to 4 digits in the card).
        split: the dataset split it was measured on, when it is one of the dataset's own splits.
    """

    metric_type: str
    metric_name: str
    value: float
    split: str | None = None


def is_hub_id(text: str) -> bool:
    """``org/name`` that is not a local path (nothing of that name exists here).

    Examples:
        >>> is_hub_id("semsim-metric/x"), is_hub_id("/tmp"), is_hub_id("a/b/c")
        (True, False, False)
    """
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and not Path(text).exists()


def hub_dataset_id(dataset: str) -> str | None:
    """The Hub id of a training dataset: the project's folders ``hub/<name>`` (also written ``./hub/<name>`` or as
    the absolute path of that folder) -> ``semsim-metric/<name>``, an ``org/name`` id as it is, any other local path
    -> ``None`` (not on the Hub).

    Examples:
        >>> hub_dataset_id("hub/fmnist-judged-v2"), hub_dataset_id("./hub/x"), hub_dataset_id("me/data")
        ('semsim-metric/fmnist-judged-v2', 'semsim-metric/x', 'me/data')
        >>> hub_dataset_id("/tmp/x") is None
        True
    """
    dataset = str(dataset)
    normal = os.path.normpath(dataset) if dataset else dataset
    if normal.startswith("hub" + os.sep) and normal.count(os.sep) == 1:
        return f"{HUB_ORG}/{normal.split(os.sep, 1)[1]}"
    path = Path(dataset).expanduser()
    try:
        if path.is_absolute() and path.resolve().parent == _PROJECT_HUB and path.is_dir():
            return f"{HUB_ORG}/{path.resolve().name}"
    except OSError:
        return None
    return dataset if is_hub_id(dataset) else None


def card_metadata(
    *,
    model_name: str,
    dataset: str | None = None,
    results: Iterable[EvalEntry] = (),
    base_model: str | None = None,
    license: str = LICENSE,
) -> str:
    """The card's YAML header (between ``---`` lines): licence, library, pipeline tag, tags, the training dataset's
    Hub id (``hub_dataset_id``; a local path is left out), the base model and ``results`` as ``model-index``
    evaluation results on that dataset (left out without a Hub dataset id, which the Hub requires for them).

    Raises:
        ValueError: a result that is not a finite number.

    Examples:
        >>> text = card_metadata(model_name="m", dataset="hub/d", results=[EvalEntry("roc_auc", "ROC-AUC", 0.9)])
        >>> "semsim-metric/d" in text and "model-index" in text
        True
    """
    from huggingface_hub import EvalResult, ModelCardData

    dataset_id = hub_dataset_id(dataset) if dataset else None
    evals = []
    for entry in results:
        if (
            isinstance(entry.value, bool)
            or not isinstance(entry.value, (int, float))
            or not math.isfinite(entry.value)
        ):
            raise InvalidInputError(
                f"evaluation result {entry.metric_name!r} must be a finite number, got {entry.value!r}."
            )
        if dataset_id:
            evals.append(
                EvalResult(
                    task_type="image-feature-extraction",
                    dataset_type=dataset_id,
                    dataset_name=dataset_id.split("/")[-1],
                    dataset_split=entry.split,
                    metric_type=entry.metric_type,
                    metric_name=entry.metric_name,
                    metric_value=round(float(entry.value), 4),
                )
            )
    data = ModelCardData(
        license=license,
        library_name="semsim-metric",
        pipeline_tag="image-feature-extraction",
        tags=list(TAGS),
        datasets=[dataset_id] if dataset_id else None,
        model_name=model_name,
        base_model=base_model,
        eval_results=evals or None,
    )
    return "---\n" + data.to_yaml() + "\n---"


def read_training_record(folder: str | Path) -> dict[str, Any]:
    """What a card needs from the ``training_info.json`` that ``semsim train`` writes beside the weights: the
    training ``dataset`` and SemSim's validation/test ROC-AUC as ``results`` (``EvalEntry`` list); ``{}`` when the
    folder has no readable record."""
    try:
        info = json.loads((Path(folder) / "training_info.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(info, dict):
        return {}
    results = []
    for split in ("validation", "test"):
        auc = (info.get(split) or {}).get("roc_auc") if isinstance(info.get(split), dict) else None
        if isinstance(auc, (int, float)) and not isinstance(auc, bool) and math.isfinite(auc):
            results.append(EvalEntry("roc_auc", f"ROC-AUC (recognised vs not, {split})", float(auc), split))
    record: dict[str, Any] = {"results": results}
    if isinstance(info.get("dataset"), str):
        record["dataset"] = info["dataset"]
    return record


def model_card(
    config: Any,
    repo_id: str,
    *,
    dataset: str | None = None,
    results: Iterable[EvalEntry] | None = None,
    license: str = LICENSE,
) -> str:
    """The card ``SemSimModel.push_to_hub`` writes for a model: the metadata (``card_metadata``), what SemSim
    measures, how to load the model (with and without semsim-metric), its calibration and training data.

    Raises:
        ValueError: a result that is not a finite number.
    """
    cal = config.calibration or {}
    calibration = (
        f'`output="probability"` is calibrated on: {cal.get("fitted_on", "see the training record")}.'
        if cal
        else 'This model has no calibration (`output="distance"` only).'
    )
    dataset_id = hub_dataset_id(dataset) if dataset else None
    trained_on = (
        f"Trained on [`{dataset_id}`](https://huggingface.co/datasets/{dataset_id})."
        if dataset_id
        else f"Trained on `{dataset}` (not a Hub dataset)."
        if dataset
        else ""
    )
    name = repo_id.split("/")[-1]
    lines = [
        card_metadata(model_name=name, dataset=dataset, results=results or (), license=license),
        "",
        f"# {name}",
        "",
        (
            "A SemSim model (Sun et al., NeurIPS 2023): a learned distance between an original image and its "
            "reconstruction by a privacy attack (0 = semantically identical = most leakage, up to 2)."
        ),
        "",
        "```python",
        "from semsim_metric import SemSim, SemSimModel",
        "",
        f'model = SemSimModel.from_pretrained("{repo_id}")',
        "metric = SemSim(model)",
        "```",
        "",
        "Without semsim-metric installed (the repository carries its code):",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'scorer = pipeline("semsim", model="{repo_id}", trust_remote_code=True)',
        "scorer(original, reconstruction)  # {'distance': ..., 'probability': ...}",
        "```",
        "",
        calibration,
        "",
    ]
    if trained_on:
        lines += [trained_on, ""]
    return "\n".join(lines)
