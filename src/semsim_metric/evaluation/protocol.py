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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._deps import require
from .._progress import Progress, logger, show_bars, track
from ..data.scoring import score_pairs, semsim_scorer
from ..errors import InvalidInputError, InvalidInputTypeError
from .baselines import BASELINES, MetricSpec, leakage_score, metric_spec, weights_available
from .report import EvaluationReport
from .statistics import contradiction_rate, image_level, model_level

__all__ = [
    "DEFAULT_GROUP_BY",
    "LabelRule",
    "compare_on_split",
    "evaluate_dataset",
    "evaluate_table",
    "group_columns",
    "group_keys",
    "pair_metric_values",
    "parse_group_by",
    "parse_named_models",
]

#: the columns that define a victim setting for the model-level protocol unless told otherwise
DEFAULT_GROUP_BY: tuple[str, ...] = ("victim",)


def parse_group_by(text: str) -> tuple[str, ...]:
    """The columns of a comma-separated ``--group-by`` value, in order (the one parser of that form).

    Library functions take the columns as a sequence (``("victim", "attack")``); an old-style string given to
    them goes through this parser (see ``group_columns``).

    Examples:
        >>> parse_group_by("victim, attack,attack_iterations")
        ('victim', 'attack', 'attack_iterations')
        >>> parse_group_by("victim,,attack")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputError: group_by 'victim,,attack': an empty column name; write ...

    Raises:
        InvalidInputError: (a ``ValueError``) no column, or an empty name between commas.
    """
    cols = tuple(c.strip() for c in text.split(","))
    if not all(cols):
        raise InvalidInputError(
            f"group_by {text!r}: an empty column name; write column names separated by commas, "
            "e.g. 'victim,attack'."
        )
    return cols


@dataclass(frozen=True)
class LabelRule:
    """Which rows of a table count as recognised: those whose ``column`` is at least ``min_votes``, or, with
    ``min_votes=None``, those whose ``column`` holds a true value (``1``, ``true``, ``yes``).

    Examples:
        >>> LabelRule("n_correct", 3).labels([{"n_correct": "4"}, {"n_correct": "2"}]).tolist()
        [True, False]

    Raises:
        InvalidInputError: (a ``ValueError``) an empty column name or a threshold that is not a finite number.
    """

    column: str
    min_votes: float | None = None

    def __post_init__(self) -> None:
        threshold = self.min_votes
        if not self.column or (
            threshold is not None
            and (
                isinstance(threshold, bool)
                or not isinstance(threshold, int | float)
                or not np.isfinite(threshold)
            )
        ):
            raise InvalidInputError(
                f"label rule ({self.column!r}, {threshold!r}): give a column name and a finite threshold "
                "(or None for a boolean column)."
            )

    @classmethod
    def parse(cls, text: str) -> LabelRule:
        """The rule written ``COLUMN>=K`` or ``COLUMN`` (a boolean column; ``semsim evaluate --label``); the one
        parser of that form.

        Examples:
            >>> LabelRule.parse("n_correct>=3")
            LabelRule(column='n_correct', min_votes=3.0)
            >>> LabelRule.parse("recognized")
            LabelRule(column='recognized', min_votes=None)
            >>> LabelRule.parse("n_correct>3")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            semsim_metric.errors.InvalidInputError: label rule 'n_correct>3': write COLUMN>=K ...

        Raises:
            InvalidInputError: (a ``ValueError``) another comparison, an empty column or a ``K`` that is not a
                finite number.
        """
        column, sep, k = text.partition(">=")
        message = f"label rule {text!r}: write COLUMN>=K (e.g. n_correct>=3) or the name of a boolean column."
        if not column.strip() or any(c in column + k for c in "<>=!") or (sep and not k.strip()):
            raise InvalidInputError(message)
        try:
            return cls(column.strip(), float(k) if sep else None)
        except ValueError:
            raise InvalidInputError(message) from None

    def labels(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Recognised or not, per row of a table (rows as read by ``csv.DictReader``).

        Raises:
            InvalidInputError: (a ``ValueError``) a row without the column, or a value that is not a number.
        """
        try:
            if self.min_votes is None:
                return np.array([str(r[self.column]).strip().lower() in ("1", "true", "yes") for r in rows])
            return np.array([float(r[self.column]) >= self.min_votes for r in rows], dtype=bool)
        except KeyError:
            raise InvalidInputError(f"label rule: no column {self.column!r} in the table.") from None
        except (TypeError, ValueError) as err:
            raise InvalidInputError(
                f"label rule: column {self.column!r} holds a value that is not a number ({err})."
            ) from None


def parse_named_models(specs: Sequence[str] | None) -> dict[str, str | None]:
    """The models named ``PATH`` or ``NAME=PATH`` (``semsim evaluate --model``), as display name -> folder or Hub
    id (``None``: the bundled default model, when ``specs`` is empty); the one parser of that form. An unnamed
    model is called ``SemSim`` when it is the only one, else ``SemSim[<folder name>]``.

    Examples:
        >>> parse_named_models(["base=runs/a", "runs/b"])
        {'base': 'runs/a', 'SemSim[b]': 'runs/b'}
        >>> parse_named_models(None)
        {'SemSim': None}
        >>> parse_named_models(["base="])  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputError: model 'base=': write PATH or NAME=PATH ...

    Raises:
        InvalidInputError: (a ``ValueError``) an empty path, or two models with the same name.
    """
    if not specs:
        return {"SemSim": None}
    out: dict[str, str | None] = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        if not path:
            raise InvalidInputError(
                f"model {spec!r}: write PATH or NAME=PATH (a model folder or Hub id, optionally with the name "
                "the report gives it)."
            )
        name = name or ("SemSim" if len(specs) == 1 else f"SemSim[{Path(path).name}]")
        if name in out:
            raise InvalidInputError(
                f"two models are named {name!r}; name them apart with NAME=PATH (e.g. --model a={path})."
            )
        out[name] = path
    return out


def group_columns(group_by: str | Sequence[str]) -> tuple[str, ...]:
    """``group_by`` as a tuple of column names: a sequence of names as it is, a string through ``parse_group_by``.

    Examples:
        >>> group_columns(["victim", "attack"])
        ('victim', 'attack')
        >>> group_columns("victim,attack")
        ('victim', 'attack')

    Raises:
        InvalidInputError: (a ``ValueError``) a malformed string, no column, or a name with a comma.
        InvalidInputTypeError: (a ``TypeError``) something else than a string or a sequence of strings.
    """
    if isinstance(group_by, str):
        return parse_group_by(group_by)
    if not isinstance(group_by, Sequence) or not all(isinstance(c, str) for c in group_by):
        raise InvalidInputTypeError(
            f"group_by must be a sequence of column names such as ('victim', 'attack'), got {group_by!r}."
        )
    cols = tuple(group_by)
    if not cols or not all(c.strip() and "," not in c for c in cols):
        raise InvalidInputError(
            f"group_by {group_by!r}: give one or more non-empty column names, one per item "
            "(e.g. ('victim', 'attack'); a comma-separated string goes through parse_group_by)."
        )
    return cols


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
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    n_boot: int = 1000,
    seed: int = 0,
    skipped: dict[str, str] | None = None,
    progress: bool = False,
) -> EvaluationReport:
    """Run the protocol on metric values already in a table (one array per metric, one row per image).

    ``progress`` shows the bootstrap's progress, one step per metric (a bar in a terminal, log lines otherwise).
    ``group_by`` names the columns ``groups`` was made of (for the report; see ``group_columns``).

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
        group_by=group_columns(group_by),
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
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    title: str = "evaluation",
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> tuple[EvaluationReport, dict[str, np.ndarray]]:
    """Compute every metric on a schema split and run the protocol. Returns the report and the values.

    ``progress`` shows each step: scoring (a bar in a terminal, log lines with an estimate of the time left in a
    piped log) and the bootstrap. ``group_by``: the columns whose values define a victim setting for the
    model-level protocol (``("victim", "attack")``; see ``group_keys``).
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


def group_keys(table: Any, group_by: Sequence[str]) -> np.ndarray:
    """Group key per row: the values of the ``group_by`` columns joined by ``/``.

    ``table``: a schema split (``column_names``, ``table[column]``) or a mapping column -> values.
    ``group_by``: column names (``("victim",)``, ``("victim", "attack", "attack_iterations")``); a
    comma-separated string is read by ``parse_group_by``.

    Examples:
        >>> group_keys({"victim": ["a", "b"], "attack": ["dlg", "dlg"]}, ("victim", "attack")).tolist()
        ['a/dlg', 'b/dlg']

    Raises:
        InvalidInputError: (a ``ValueError``) a column the table does not have, or malformed ``group_by``.
    """
    cols = group_columns(group_by)
    names = list(table.column_names) if hasattr(table, "column_names") else list(table)
    missing = [c for c in cols if c not in names]
    if missing:
        raise InvalidInputError(f"group_by column(s) {missing} not in the dataset (it has {names}).")
    values = [table[c] for c in cols]
    n = len(values[0])
    return np.asarray(["/".join(str(v[i]) for v in values) for i in range(n)])


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
