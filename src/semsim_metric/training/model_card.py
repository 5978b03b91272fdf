"""Model card (README.md) for a trained SemSim model folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write_model_card"]

CITATION = """@inproceedings{sun2023privacy,
  title     = {Privacy Assessment on Reconstructed Images: Are Existing Evaluation Metrics Faithful to Human Perception?},
  author    = {Sun, Xiaoxiao and Gazagnadou, Nidham and Sharma, Vivek and Lyu, Lingjuan and Li, Hongdong and Zheng, Liang},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  year      = {2023}
}"""


def _annotator_text(kinds: set[str]) -> str:
    if kinds == {"human"}:
        return "people (human annotators)"
    parts = []
    if "model-judge" in kinds:
        parts.append("**vision-language-model judges** shown only the reconstruction, following the study's "
                     "protocol. **These are NOT human labels**; the model approximates the judges, not people")
    if "human" in kinds:
        parts.append("people (human annotators)")
    return "; ".join(parts) or "unknown"


#: the Hub organisation of the project's datasets (``hub/<name>`` folders are published as ``<org>/<name>``)
HUB_ORG = "semsim-metric"


def hub_dataset_id(dataset: str) -> str | None:
    """The Hub id of a training dataset: ``hub/<name>`` (the project's folders) -> ``semsim-metric/<name>``, an
    ``org/name`` id as it is, a local path -> ``None`` (not on the Hub).

    Examples:
        >>> hub_dataset_id("hub/fmnist-judged-v2"), hub_dataset_id("me/data"), hub_dataset_id("/tmp/x")
        ('semsim-metric/fmnist-judged-v2', 'me/data', None)
    """
    if dataset.startswith("hub/") and dataset.count("/") == 1:
        return f"{HUB_ORG}/{dataset.split('/', 1)[1]}"
    return dataset if _is_hub_id(dataset) else None


def _is_hub_id(text: str) -> bool:
    """``org/name`` that is not a local path."""
    return text.count("/") == 1 and not text.startswith((".", "/", "~")) and not Path(text).exists()


def _front_matter(model: Any, dataset: str, comparison: dict[str, dict[str, float]] | None, name: str,
                  base_model: str | None = None) -> str:
    """YAML metadata through huggingface_hub's ModelCardData, with the ROC-AUCs as model-index eval results."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset_id = hub_dataset_id(dataset)
    results = []
    for split, table in (comparison or {}).items():
        if "SemSim" in table and dataset_id:
            results.append(EvalResult(task_type="image-feature-extraction", dataset_type=dataset_id,
                                      dataset_name=dataset_id.split("/")[-1], dataset_split=split.split(" ")[0],
                                      metric_type="roc_auc", metric_name=f"ROC-AUC (recognised vs not, {split})",
                                      metric_value=round(float(table["SemSim"]), 4)))
    data = ModelCardData(license="apache-2.0", library_name="semsim-metric", pipeline_tag="image-feature-extraction",
                         tags=["privacy", "image-similarity", "gradient-inversion", "semsim"],
                         datasets=[dataset_id] if dataset_id else None, model_name=name,
                         base_model=base_model, eval_results=results or None)
    return "---\n" + data.to_yaml() + "\n---"


def _hub_model_id(init_from: Any) -> str | None:
    """The Hub id a model was fine-tuned from (``base_model``), or ``None`` for a local folder or none."""
    return str(init_from) if init_from and _is_hub_id(str(init_from)) else None


def _title(model: Any, dataset: str) -> str:
    cfg = model.config
    net = (f"CIFAR ResNet-18, width {cfg.base_width}" if cfg.backbone == "cifar_resnet18" else "transformers backbone")
    return f"# SemSim ({net}), trained on {hub_dataset_id(dataset) or Path(dataset).name}"


def write_model_card(folder: str | Path, *, dataset: str, training_info: dict[str, Any], splits: Any,
                     comparison: dict[str, dict[str, float]] | None = None, repo_id: str | None = None,
                     default_model: bool = False, reproduce: str | None = None) -> Path:
    """Write ``README.md`` into ``folder`` with data, annotators, recipe, results, intended use, limits.

    The YAML metadata is written with ``huggingface_hub.ModelCardData`` (license, library, pipeline tag,
    the training dataset's Hub id, and SemSim's ROC-AUC per split as ``model-index`` eval results).

    Args:
        folder: the model folder (``config.json`` + ``model.safetensors``).
        dataset: name of the training dataset (``hub/<name>`` folders of the project map to their Hub ids).
        training_info: what ``train()`` recorded (``training_info.json``).
        splits: the dataset's splits (``DatasetDict``).
        comparison: ROC-AUC per split and metric (SemSim and baselines), e.g. from
            ``semsim_metric.evaluation.protocol.compare_on_split``; without it the card lists SemSim's own
            validation/test ROC-AUC from ``training_info``.
        repo_id: the Hub id the folder will be published as (the usage line loads it from there; default:
            the folder's path).
        default_model: the folder is the package's default model (the usage line is then ``SemSim()``).
        reproduce: a sentence saying how to reproduce the card's numbers (omitted when ``None``).
    """
    from ..models import SemSimModel

    folder = Path(folder)
    model = SemSimModel.from_pretrained(folder)
    kinds = {k for split in splits.values() for k in set(split["annotator_kind"])}
    rec = training_info["recipe"]
    cal = model.config.calibration
    if default_model:
        usage = ["from semsim_metric import SemSim", "", "metric = SemSim()  # this model: the package's default"]
    else:
        usage = ["from semsim_metric import SemSim, SemSimModel", "",
                 f'model = SemSimModel.from_pretrained("{repo_id or folder.as_posix()}")',
                 "metric = SemSim(model)"]
    if comparison is None:
        own = {s: {"SemSim": training_info[s]["roc_auc"]} for s in ("validation", "test")
               if (training_info.get(s) or {}).get("roc_auc") is not None}
    lines = [
        _front_matter(model, dataset, comparison if comparison is not None else own,
                      repo_id.split("/")[-1] if repo_id else folder.name,
                      base_model=_hub_model_id(training_info.get("init_from"))), "",
        _title(model, dataset), "",
        "SemSim is a learned distance between an original image and its reconstruction by a privacy attack. "
        "**It is a distance: 0 = semantically identical (the attack leaked what an annotator recognises), larger = "
        "less leakage, range [0, 2]; lower = more leakage.** It follows Sun et al., NeurIPS 2023.", "",
        "```python", "import torch", *usage,
        "reconstructions, originals = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)  # (N, C, H, W) in [0, 1]",
        "metric.update(reconstructions, originals)", "print(metric.compute())", "```", "",
        "## Training data", "",
        f"- Dataset: `{dataset}` (splits by original image: {', '.join(f'{k} {len(v)} rows' for k, v in splits.items())}).",
        f"- Annotated by: {_annotator_text(kinds)}.",
        *([f"- Triplets: anchor = original, positive = recognised reconstruction, negative = unrecognised reconstruction "
           f"of the same original (fallback to another original's: {training_info['triplet_stats']})."]
          if rec.get("epochs", 1) > 0 else []), "",
        "## Recipe", "",
        f"- Recipe `{rec['name']}`: {rec['description']}",
        f"- Fields: `{json.dumps({k: v for k, v in rec.items() if k not in ('name', 'description')})}`",
        f"- Trained on: {training_info['device']} (bf16: {training_info['bf16']}), {training_info['train_seconds']:.0f} s, "
        f"torch {training_info['torch']}; final training loss {training_info['train_loss']:.4f}.",
        "",
    ]
    pre = training_info.get("pretraining")
    if pre:
        st = pre["settings"]
        lines[-1:-1] = [
            f"- Stage 1 (class-supervised backbone pre-training): `{st['source']}` split `{st['split']}`, "
            f"{pre['trained_images']} images, {st['epochs']} epochs, noise up to {st['noise']}; accuracy on "
            f"{pre['holdout_images']} held-back images {pre['holdout_accuracy']:.3f}; "
            f"{pre['excluded_as_annotated']} images equal to annotated originals were excluded; {pre['seconds']:.0f} s."]
    vote = training_info.get("vote_tuning")
    if vote:
        st = vote["settings"]
        lines[-1:-1] = [
            f"- Stage 2 (vote tuning on the annotators' answers): {vote['rows']} reconstructions of {vote['originals']} "
            f"originals, {vote['classes']} classes + 'cannot recognise', {st['epochs']} epochs, lr {st['learning_rate']}, "
            f"noise up to {st['noise']}; {vote['seconds']:.0f} s."
            + (f" With label-free anchors (weight {st['anchor_weight']}: a mild copy of an image near it, noise, a "
               f"constant image or another class far; pool {vote.get('anchor_pool')})." if st.get("anchor_weight") else "")]
    if training_info.get("init_from"):
        lines[-1:-1] = [f"- Fine-tuned from `{training_info['init_from']}`."]
    if training_info["device"] == "cpu" and rec["name"] != "paper" and rec.get("epochs", 0) > 0:
        lines += [f"This model was trained on a CPU (no GPU was available), so it uses the CPU-feasible recipe "
                  f"`{rec['name']}` (width {rec['base_width']}, {rec['epochs']} epochs) rather than the full paper recipe "
                  "(width 64, 100 epochs). Retrain with `semsim train --recipe paper` on a GPU for the paper's setting.", ""]
    for note in training_info.get("notes", []):
        lines += [note, ""]
    if any(name in splits for name in ("validation", "test")):
        lines += ["## Results", ""]
    for split_name in ("validation", "test"):
        if split_name in splits:
            if comparison is not None:
                table = comparison.get(split_name, {})
            else:
                own = training_info.get(split_name, {}).get("roc_auc")
                table = {"SemSim": own} if own is not None else {}
            lines += [f"### {split_name} split ({len(splits[split_name])} reconstructions)", "",
                      "ROC-AUC = how well each metric ranks recognised above unrecognised reconstructions "
                      "(each metric oriented so that higher = more leakage).", "",
                      "| metric | ROC-AUC |", "|---|---|"]
            lines += [f"| {name} | {auc:.3f} |" for name, auc in table.items()]
            lines.append("")
    if training_info.get("validation", {}).get("triplet_accuracy") is not None:
        lines += [f"Validation triplet accuracy: {training_info['validation']['triplet_accuracy']:.3f}.", ""]
    if cal:
        lines += ["## Calibration", "",
                  f"`output=\"probability\"` gives P(recognised) = sigmoid({cal['intercept']:.3f} + "
                  f"{cal['slope']:.3f} x distance), fitted on {cal['fitted_on']} ({cal['n']} rows).", ""]
    if reproduce:
        lines += [reproduce, ""]
    lines += [
        "## Intended use", "",
        "Judging how much *recognisable* content a reconstruction attack (gradient inversion and the like) recovered, "
        "next to PSNR/SSIM, when comparing attacks and defences.", "",
        "## Limits", "",
        "- Trained on one image domain (see training data); scores on very different images are less reliable.",
        "- Labels came from the annotators named above; where they are model judges, agreement with people is "
        "not measured here.",
        "- Every image is resized to 32x32 (the paper's choice): fine detail above that scale is ignored.",
        "- Not a guarantee of privacy: a low leakage score does not prove that nothing leaked.", "",
        "## Citation", "", "```bibtex", CITATION, "```", "",
    ]
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path
