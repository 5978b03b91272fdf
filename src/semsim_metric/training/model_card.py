"""Model card (README.md) for a trained SemSim model folder."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from ..models.card import HUB_ORG, EvalEntry, card_metadata, hub_dataset_id, is_hub_id

__all__ = ["HUB_ORG", "hub_dataset_id", "rewrite_card_metadata", "write_model_card"]

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
        parts.append(
            "**vision-language-model judges** shown only the reconstruction, following the study's "
            "protocol. **These are NOT human labels**; the model approximates the judges, not people"
        )
    if "human" in kinds:
        parts.append("people (human annotators)")
    return "; ".join(parts) or "unknown"


def _eval_entries(
    comparison: dict[str, dict[str, float]] | None, heldout: Sequence[Mapping[str, Any]] | None
) -> list[EvalEntry]:
    """SemSim's results as ``model-index`` entries: its ROC-AUC per split of ``comparison``, and per held-out protocol
    its ROC-AUC and (over at least 3 settings) its model-level Kendall tau."""
    entries = [
        EvalEntry(
            "roc_auc", f"ROC-AUC (recognised vs not, {split})", float(table["SemSim"]), split.split(" ")[0]
        )
        for split, table in (comparison or {}).items()
        if "SemSim" in table
    ]
    for row in heldout or ():
        where = f"held out: {row['protocol']}, {row['rows']} reconstructions"
        entries.append(
            EvalEntry("roc_auc", f"ROC-AUC (recognised vs not, {where})", float(row["semsim_auc"]))
        )
        if row.get("semsim_kendall") is not None:
            entries.append(
                EvalEntry(
                    "kendall_tau",
                    f"Kendall tau with the recognition rate over {row['groups']} attack settings ({where})",
                    float(row["semsim_kendall"]),
                )
            )
    return entries


def _front_matter(
    model: Any,
    dataset: str,
    comparison: dict[str, dict[str, float]] | None,
    name: str,
    base_model: str | None = None,
    heldout: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """YAML metadata through the one writer (``semsim_metric.models.card.card_metadata``), with the ROC-AUCs (and the
    held-out results) as model-index eval results."""
    return card_metadata(
        model_name=name, dataset=dataset, results=_eval_entries(comparison, heldout), base_model=base_model
    )


def _hub_model_id(init_from: Any) -> str | None:
    """The Hub id a model was fine-tuned from (``base_model``), or ``None`` for a local folder or none."""
    return str(init_from) if init_from and is_hub_id(str(init_from)) else None


def _title(model: Any, dataset: str) -> str:
    cfg = model.config
    net = (
        f"CIFAR ResNet-18, width {cfg.base_width}"
        if cfg.backbone == "cifar_resnet18"
        else "transformers backbone"
    )
    return f"# SemSim ({net}), trained on {hub_dataset_id(dataset) or Path(dataset).name}"


def write_model_card(
    folder: str | Path,
    *,
    dataset: str,
    training_info: dict[str, Any],
    splits: Any,
    comparison: dict[str, dict[str, float]] | None = None,
    repo_id: str | None = None,
    default_model: bool = False,
    reproduce: str | None = None,
    heldout: Sequence[Mapping[str, Any]] | None = None,
) -> Path:
    """Write ``README.md`` into ``folder`` with data, annotators, recipe, results, intended use, limits.

    The YAML metadata is written with ``huggingface_hub.ModelCardData`` through
    ``semsim_metric.models.card.card_metadata`` (license, library, pipeline tag, the training dataset's Hub id, and
    SemSim's ROC-AUC per split - and per held-out protocol - as ``model-index`` eval results).

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
        heldout: entries of a held-out run's ``heldout_summary.json`` (``semsim evaluate --heldout``; the published
            copy is ``docs/heldout/heldout_summary.json``) for this model's recipe: their ROC-AUC and Kendall tau go
            into ``model-index`` (the card's text quotes them through ``training_info["notes"]``).

    Returns:
        The path of the card.

    Raises:
        ModelNotFoundError, InvalidModelError: ``folder`` holds no loadable model.
        KeyError: ``training_info`` lacks a field the card quotes (``recipe``, ``device``, ...).
    """
    from ..models import SemSimModel

    folder = Path(folder)
    model = SemSimModel.from_pretrained(folder)
    kinds = {k for split in splits.values() for k in set(split["annotator_kind"])}
    rec = training_info["recipe"]
    cal = model.config.calibration
    usage = _usage_lines(folder, repo_id, default_model)
    lines = [
        _front_matter(
            model,
            dataset,
            comparison if comparison is not None else _own_results(training_info),
            repo_id.split("/")[-1] if repo_id else folder.name,
            base_model=_hub_model_id(training_info.get("init_from")),
            heldout=heldout,
        ),
        "",
        _title(model, dataset),
        "",
        *_intro_lines(usage),
        *_training_data_lines(dataset, splits, kinds, rec, training_info),
        *_recipe_lines(rec, training_info),
    ]
    lines += _cpu_recipe_note(rec, training_info)
    for note in training_info.get("notes", []):
        lines += [note, ""]
    lines += _results_lines(splits, comparison, training_info)
    lines += _calibration_lines(cal)
    if reproduce:
        lines += [reproduce, ""]
    lines += _closing_lines()
    path = folder / "README.md"
    path.write_text("\n".join(lines))
    return path


def _usage_lines(folder: Path, repo_id: str | None, default_model: bool) -> list[str]:
    """The usage example's lines that build the metric: ``SemSim()`` for the default model, else loading the folder."""
    if default_model:
        return [
            "from semsim_metric import SemSim",
            "",
            "metric = SemSim()  # this model: the package's default",
        ]
    return [
        "from semsim_metric import SemSim, SemSimModel",
        "",
        f'model = SemSimModel.from_pretrained("{repo_id or folder.as_posix()}")',
        "metric = SemSim(model)",
    ]


def _own_results(training_info: dict[str, Any]) -> dict[str, dict[str, float]]:
    """SemSim's own validation/test ROC-AUC from ``training_info``, shaped like a ``comparison``."""
    return {
        s: {"SemSim": training_info[s]["roc_auc"]}
        for s in ("validation", "test")
        if (training_info.get(s) or {}).get("roc_auc") is not None
    }


def _intro_lines(usage: list[str]) -> list[str]:
    """The card's opening paragraph and its runnable usage example."""
    return [
        "SemSim is a learned distance between an original image and its reconstruction by a privacy attack. "
        "**It is a distance: 0 = semantically identical (the attack leaked what an annotator recognises), larger = "
        "less leakage, range [0, 2]; lower = more leakage.** It follows Sun et al., NeurIPS 2023.",
        "",
        "```python",
        "import torch",
        *usage,
        "reconstructions, originals = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)  # (N, C, H, W) in [0, 1]",
        "metric.update(reconstructions, originals)",
        "print(metric.compute())",
        "```",
        "",
    ]


def _training_data_lines(
    dataset: str, splits: Any, kinds: set[str], rec: Mapping[str, Any], training_info: dict[str, Any]
) -> list[str]:
    """The "Training data" section: the dataset, its splits, its annotators and (when trained) the triplets."""
    return [
        "## Training data",
        "",
        f"- Dataset: `{dataset}` (splits by original image: {', '.join(f'{k} {len(v)} rows' for k, v in splits.items())}).",
        f"- Annotated by: {_annotator_text(kinds)}.",
        *(
            [
                f"- Triplets: anchor = original, positive = recognised reconstruction, negative = unrecognised reconstruction "
                f"of the same original (fallback to another original's: {training_info['triplet_stats']})."
            ]
            if rec.get("epochs", 1) > 0
            else []
        ),
        "",
    ]


def _recipe_lines(rec: Mapping[str, Any], training_info: dict[str, Any]) -> list[str]:
    """The "Recipe" section: the recipe, its fields, the run, then stage 1, stage 2 and the model it started from."""
    return [
        "## Recipe",
        "",
        f"- Recipe `{rec['name']}`: {rec['description']}",
        f"- Fields: `{json.dumps({k: v for k, v in rec.items() if k not in ('name', 'description')})}`",
        f"- Trained on: {training_info['device']} (bf16: {training_info['bf16']}), {training_info['train_seconds']:.0f} s, "
        f"torch {training_info['torch']}; final training loss {training_info['train_loss']:.4f}.",
        *_pretraining_lines(training_info.get("pretraining")),
        *_vote_tuning_lines(training_info.get("vote_tuning")),
        *_layout_lines(rec),
        *([f"- Fine-tuned from `{training_info['init_from']}`."] if training_info.get("init_from") else []),
        "",
    ]


def _layout_lines(rec: Mapping[str, Any]) -> list[str]:
    """The recipe's line on the layout part of the embedding, if it has one."""
    weight = rec.get("layout_weight", 0.0)
    if not weight:
        return []
    size, channels = rec.get("layout_size", 16), rec.get("layout_channels", "rgb")
    held = "luminance (light and dark only)" if channels == "luminance" else "colour"
    return [
        f"- Embedding: the network's features ({1 - weight:g} of the squared distance) beside the image's *layout* "
        f"({weight:g}, `layout_weight`): its {size}x{size} thumbnail in {held} with the mean subtracted and the length "
        "set to 1, which has no weights, is blind to brightness and contrast, and cannot be imitated by noise. The "
        "stages trained the network alone and the layout was added before calibration; the out-of-domain check reads "
        "the network's part only."
    ]


def _pretraining_lines(pre: Mapping[str, Any] | None) -> list[str]:
    """The recipe's line on stage 1 (class-supervised backbone pre-training), if there was one."""
    if not pre:
        return []
    st = pre["settings"]
    return [
        f"- Stage 1 (class-supervised backbone pre-training): `{st['source']}` split `{st['split']}`, "
        f"{pre['trained_images']} images, {st['epochs']} epochs, noise up to {st['noise']}; accuracy on "
        f"{pre['holdout_images']} held-back images {pre['holdout_accuracy']:.3f}; "
        f"{pre['excluded_as_annotated']} images equal to annotated originals were excluded; {pre['seconds']:.0f} s."
    ]


def _vote_tuning_lines(vote: Mapping[str, Any] | None) -> list[str]:
    """The recipe's line on stage 2 (vote tuning on the annotators' answers), if there was one."""
    if not vote:
        return []
    st = vote["settings"]
    return [
        f"- Stage 2 (vote tuning on the annotators' answers): {vote['rows']} reconstructions of {vote['originals']} "
        f"originals, {vote['classes']} classes + 'cannot recognise', {st['epochs']} epochs, lr {st['learning_rate']}, "
        f"noise up to {st['noise']}; {vote['seconds']:.0f} s."
        + (
            f" With label-free anchors (weight {st['anchor_weight']}: a mild copy of an image near it, noise, a "
            f"constant image or another class far; pool {vote.get('anchor_pool')})."
            if st.get("anchor_weight")
            else ""
        )
    ]


def _cpu_recipe_note(rec: Mapping[str, Any], training_info: dict[str, Any]) -> list[str]:
    """A paragraph saying that a CPU-trained model uses a smaller recipe than the paper's (empty otherwise)."""
    if training_info["device"] == "cpu" and rec["name"] != "paper" and rec.get("epochs", 0) > 0:
        return [
            f"This model was trained on a CPU (no GPU was available), so it uses the CPU-feasible recipe "
            f"`{rec['name']}` (width {rec['base_width']}, {rec['epochs']} epochs) rather than the full paper recipe "
            "(width 64, 100 epochs). Retrain with `semsim train --recipe paper` on a GPU for the paper's setting.",
            "",
        ]
    return []


def _results_lines(
    splits: Any, comparison: dict[str, dict[str, float]] | None, training_info: dict[str, Any]
) -> list[str]:
    """The "Results" section: a ROC-AUC table per validation/test split, then the validation triplet accuracy."""
    lines: list[str] = []
    if any(name in splits for name in ("validation", "test")):
        lines += ["## Results", ""]
    for split_name in ("validation", "test"):
        if split_name in splits:
            if comparison is not None:
                table = comparison.get(split_name, {})
            else:
                own = training_info.get(split_name, {}).get("roc_auc")
                table = {"SemSim": own} if own is not None else {}
            lines += [
                f"### {split_name} split ({len(splits[split_name])} reconstructions)",
                "",
                "ROC-AUC = how well each metric ranks recognised above unrecognised reconstructions "
                "(each metric oriented so that higher = more leakage).",
                "",
                "| metric | ROC-AUC |",
                "|---|---|",
            ]
            lines += [f"| {name} | {auc:.3f} |" for name, auc in table.items()]
            lines.append("")
    if training_info.get("validation", {}).get("triplet_accuracy") is not None:
        lines += [f"Validation triplet accuracy: {training_info['validation']['triplet_accuracy']:.3f}.", ""]
    return lines


def _calibration_lines(cal: Mapping[str, Any] | None) -> list[str]:
    """The "Calibration" section: the fitted P(recognised) formula (empty for an uncalibrated model)."""
    if not cal:
        return []
    return [
        "## Calibration",
        "",
        f'`output="probability"` gives P(recognised) = sigmoid({cal["intercept"]:.3f} + '
        f"{cal['slope']:.3f} x distance), fitted on {cal['fitted_on']} ({cal['n']} rows).",
        "",
    ]


def _closing_lines() -> list[str]:
    """The card's fixed closing sections: intended use, limits and the citation."""
    return [
        "## Intended use",
        "",
        "Judging how much *recognisable* content a reconstruction attack (gradient inversion and the like) recovered, "
        "next to PSNR/SSIM, when comparing attacks and defences.",
        "",
        "## Limits",
        "",
        "- Trained on one image domain (see training data); scores on very different images are less reliable.",
        "- Labels came from the annotators named above; where they are model judges, agreement with people is "
        "not measured here.",
        "- Every image is resized to 32x32 (the paper's choice): fine detail above that scale is ignored.",
        "- Not a guarantee of privacy: a low leakage score does not prove that nothing leaked.",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]


def rewrite_card_metadata(
    card: str | Path,
    *,
    dataset: str,
    model_name: str,
    comparison: dict[str, dict[str, float]] | None = None,
    heldout: Sequence[Mapping[str, Any]] | None = None,
    base_model: str | None = None,
) -> Path:
    """Replace the YAML header of an existing card (``README.md``) with the one ``write_model_card`` writes for the
    same facts, keeping its text: for cards whose text other scripts keep up to date (the default model's robustness
    table, its "Full evaluation" section) and for cards written by an older writer.

    Args:
        card: the ``README.md``.
        dataset: the training dataset (``hub/<name>`` folders of the project map to their Hub ids).
        model_name: the model's name (its repository's name).
        comparison: ROC-AUC per split and metric, as for ``write_model_card``.
        heldout: held-out summary entries for the model's recipe, as for ``write_model_card``.
        base_model: the Hub id the model was fine-tuned from.

    Returns:
        The path of the card.

    Raises:
        OSError: the card cannot be read or written.
        ValueError: the card has no YAML header (``---`` ... ``---`` at its top), or a result is not a finite number.
    """
    card = Path(card)
    text = card.read_text()
    if not text.startswith("---\n") or "\n---\n" not in text[3:]:
        raise InvalidInputError(
            f"{card} has no YAML header (--- ... --- at its top); write the card with write_model_card."
        )
    body = text[text.index("\n---\n", 3) + len("\n---\n") :]
    header = card_metadata(
        model_name=model_name,
        dataset=dataset,
        results=_eval_entries(comparison, heldout),
        base_model=base_model,
    )
    card.write_text(header + "\n" + body)
    return card
