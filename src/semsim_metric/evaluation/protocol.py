"""Agreement of SemSim and baseline metrics with annotators' judgements (the paper's protocol).

* **Per image**: ROC-AUC of each metric as a score for "recognised" and accuracy at the best threshold,
  with bootstrap 95% intervals over originals.
* **Per victim (model level)**: Spearman, Kendall and Pearson correlation between a victim's mean metric
  and its recognised share, with p-values and bootstrap 95% intervals over originals.
* **Contradictions**: how often two metrics order the same pair of reconstructions in opposite ways.

Every metric's direction is declared (``MetricSpec``); all statistics use the leakage-oriented
value (higher = more leakage), so a positive correlation or an AUC above 0.5 means agreement with the
annotators. The same protocol runs on metric values computed here (``evaluate_dataset``) or already
present in a table (``evaluate_table``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._deps import require
from .._progress import Progress, logger, show_bars, track
from ..data.scoring import score_pairs, semsim_scorer
from ..errors import InvalidInputError
from .baselines import BASELINES, MetricSpec, leakage_score, metric_spec, weights_available
from .report import EvaluationReport
from .statistics import contradiction_rate, image_level, model_level

__all__ = ["compare_on_split", "evaluate_dataset", "evaluate_table", "group_keys", "pair_metric_values"]


def pair_metric_values(
    models: dict[str, Any] | Any,
    ds: Any,
    *,
    batch_size: int = 256,
    baselines: Sequence[str] | None = None,
    skipped: dict[str, str] | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Per-row values of each SemSim model and each applicable baseline on a schema split.

    Args:
        models: ``{"SemSim": model}`` (or a single model, named "SemSim"; ``None`` for baselines only).
        ds: a split in the SemSim schema.
        baselines: names from ``BASELINES`` (default: all).
        skipped: filled with ``name -> reason`` for each baseline that could not run.

    Raises:
        InvalidInputError: a malformed ``SEMSIM_NUM_THREADS`` / ``OMP_NUM_THREADS`` / ``LOCAL_WORLD_SIZE``.
    """
    from .._threads import configure_threads

    configure_threads()  # intra-op threads from the CPUs this process may use (never the user's own choice)
    if models is None:
        models = {}
    elif not isinstance(models, dict):
        models = {"SemSim": models}
    names = list(BASELINES) if baselines is None else list(baselines)
    skipped = {} if skipped is None else skipped
    size = _smallest_side(ds)
    scorers = {name: semsim_scorer(model) for name, model in models.items()}
    for name in names:
        spec = BASELINES[name]
        if size < spec.min_size:
            skipped[name] = (
                f"needs images of at least {spec.min_size}x{spec.min_size} px, these are {size}x{size}"
            )
            continue
        if spec.needs_weights:
            ok, reason = weights_available(spec.needs_weights)
            if not ok:
                skipped[name] = reason
                continue
        scorers[name] = spec.fn
    failed: dict[str, str] = {}
    if progress:
        logger.info("scoring %d pairs with %s", len(ds), ", ".join(scorers) or "nothing")
    # score_pairs draws its bar in a terminal; in a piped log a last pseudo-scorer counts the pairs scored
    with Progress(
        len(ds), "scoring pairs", unit="pair", progress=progress and not show_bars(progress)
    ) as bar:

        def count(preds: Any, target: Any) -> Any:
            bar.update(len(preds))
            return preds.new_zeros(len(preds))

        values = score_pairs(
            ds, {**scorers, _COUNTER: count}, batch_size=batch_size, failed=failed, progress=progress
        )
    values.pop(_COUNTER, None)
    for name, reason in failed.items():
        if name in models:  # SemSim itself must never be silently dropped
            raise RuntimeError(f"{name} could not score the split: {reason}")
        skipped[name] = reason
    return values


#: the name of the pseudo-scorer that counts scored pairs for the progress lines (never in the results)
_COUNTER = "\x00progress"


def _smallest_side(ds: Any) -> int:
    from ..data.scoring import iter_pair_batches

    preds, _ = next(iter_pair_batches(ds.select(range(min(1, len(ds)))), 1))
    return int(min(preds.shape[-2:]))


def evaluate_table(
    values: dict[str, np.ndarray],
    recognized: np.ndarray,
    groups: np.ndarray,
    original_ids: np.ndarray | None = None,
    *,
    specs: dict[str, MetricSpec] | None = None,
    title: str = "evaluation",
    group_by: str = "victim",
    n_boot: int = 1000,
    seed: int = 0,
    skipped: dict[str, str] | None = None,
    progress: bool = False,
) -> EvaluationReport:
    """Run the protocol on metric values already in a table (one array per metric, one row per image).

    ``progress`` shows the bootstrap's progress, one step per metric (a bar in a terminal, log lines otherwise).

    Examples:
        >>> import numpy as np
        >>> y = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
        >>> v = {"PSNR": np.array([30., 28, 10, 12, 25, 11])}
        >>> r = evaluate_table(v, y, np.array(list("aabbcc")), n_boot=0)
        >>> psnr = r.image["PSNR"]
        >>> psnr["roc_auc"]
        1.0
    """
    y = np.asarray(recognized, dtype=bool)
    groups = np.asarray(groups)
    report = EvaluationReport(
        title=title,
        n=len(y),
        recognised_share=float(y.mean()),
        group_by=group_by,
        skipped=dict(skipped or {}),
    )
    oriented = {}
    if progress and n_boot:
        logger.info("bootstrap: %d resamples of the originals for %d metric(s)", n_boot, len(values))
    for name, vals in track(values.items(), "bootstrap", total=len(values), unit="metric", progress=progress):
        spec = (specs or {}).get(name) or metric_spec(name)
        oriented[name] = spec.orient(np.asarray(vals, dtype=float))
        if not np.isfinite(oriented[name]).all():
            report.skipped[name] = "non-finite values"
            del oriented[name]
            continue
        report.image[name] = image_level(y, oriented[name], original_ids, n_boot=n_boot, seed=seed)
        report.model[name] = model_level(groups, y, oriented[name], original_ids, n_boot=n_boot, seed=seed)
    names = list(oriented)
    for a_i, a in enumerate(names):
        for b in names[a_i + 1 :]:
            report.contradictions[f"{a} vs {b}"] = contradiction_rate(oriented[a], oriented[b], seed=seed)
    uniq = np.unique(groups)
    report.per_group = {
        str(g): {
            "n": int((groups == g).sum()),
            "recognised_share": float(y[groups == g].mean()),
            "mean": {k: float(np.asarray(values[k], dtype=float)[groups == g].mean()) for k in oriented},
        }
        for g in uniq
    }
    return report


def evaluate_dataset(
    ds: Any,
    models: dict[str, Any] | Any = None,
    *,
    baselines: Sequence[str] | None = None,
    group_by: str = "victim",
    title: str = "evaluation",
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[EvaluationReport, dict[str, np.ndarray]]:
    """Compute every metric on a schema split and run the protocol. Returns the report and the values.

    ``progress`` shows each step: scoring (a bar in a terminal, log lines with an estimate of the time left in a
    piped log) and the bootstrap.
    """
    skipped: dict[str, str] = {}
    if progress:
        logger.info("%s: %d rows", title, len(ds))
    values = pair_metric_values(models, ds, baselines=baselines, skipped=skipped, progress=progress)
    groups = group_keys(ds, group_by)
    report = evaluate_table(
        values,
        np.asarray(ds["recognized"], dtype=bool),
        groups,
        np.asarray(ds["original_id"]),
        title=title,
        group_by=group_by,
        n_boot=n_boot,
        seed=seed,
        skipped=skipped,
        progress=progress,
    )
    return report, values


def group_keys(ds: Any, group_by: str) -> np.ndarray:
    """Group key per row: one column (``"victim"``) or several joined (``"victim,attack,attack_iterations"``)."""
    cols = [c.strip() for c in group_by.split(",") if c.strip()]
    missing = [c for c in cols if c not in ds.column_names]
    if missing:
        raise InvalidInputError(
            f"group_by column(s) {missing} not in the dataset (it has {ds.column_names})."
        )
    values = [ds[c] for c in cols]
    return np.asarray(["/".join(str(v[i]) for v in values) for i in range(len(ds))])


def compare_on_split(
    model: Any, ds: Any, baselines: Sequence[str] = ("PSNR", "SSIM", "MSE")
) -> dict[str, float]:
    """ROC-AUC for recognised vs not, for SemSim and a few baselines, on one split (used by model cards)."""
    roc_auc_score = require("sklearn.metrics", "ROC-AUC").roc_auc_score

    values = pair_metric_values(model, ds, baselines=baselines)
    y = np.asarray(ds["recognized"], dtype=bool)
    if y.all() or not y.any():
        return {}
    return {name: float(roc_auc_score(y, leakage_score(name, v))) for name, v in values.items()}
