"""``semsim evaluate``: the paper's protocol on a dataset or a table, and held-out experiments."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CLIError

if TYPE_CHECKING:
    from ..evaluation.heldout import HeldoutProtocol

__all__ = ["register", "run"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``semsim evaluate`` to the command line."""
    p = sub.add_parser(
        "evaluate",
        help="agreement of SemSim and baselines with annotators' judgements",
        description="Run the paper's protocol (image-level ROC-AUC, model-level correlations, contradictions) on a "
        "dataset folder/Hub id in the SemSim schema, or on metric columns of a CSV table (--table).",
    )
    p.add_argument("dataset", nargs="?", help="dataset folder or Hub id (omit with --table)")
    p.add_argument("--split", action="append", default=None, help="split(s) to evaluate (default: test)")
    p.add_argument(
        "--model",
        action="append",
        default=None,
        help="SemSim model(s): folder or Hub id, optionally NAME=PATH (default: the bundled model)",
    )
    p.add_argument("--baselines", default=None, help="comma-separated baselines (default: all that apply)")
    p.add_argument(
        "--group-by",
        default=None,
        help="column(s) defining a victim setting for the model-level protocol, comma-separated "
        "(default victim; with --heldout victim,attack,attack_iterations)",
    )
    p.add_argument("--table", type=Path, default=None, help="CSV with precomputed metric columns")
    p.add_argument(
        "--metric",
        action="append",
        default=[],
        help="with --table: COLUMN:higher|lower (higher/lower value = more leakage)",
    )
    p.add_argument(
        "--label", default="n_correct>=3", help="with --table: recognised rule, 'COLUMN>=K' or a bool column"
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--out", type=Path, default=None, help="folder for report.md, report.json and plots")
    p.add_argument(
        "--allow-seen",
        action="store_true",
        help="evaluate a model on originals it was trained on (in-sample numbers; refused otherwise, "
        "before anything is scored)",
    )
    p.add_argument(
        "--no-domain-check",
        action="store_true",
        help="do not warn when the originals fall outside what a model was trained on",
    )
    h = p.add_argument_group("generalisation (train without some settings, evaluate on them)")
    h.add_argument(
        "--heldout",
        action="append",
        default=None,
        help="protocol: unseen-originals | victim_arch=ARCH | victim=NAME[+NAME] | victim_train_epochs=N | "
        "attack=NAME[+NAME] | defense=NAME | domain=SOURCE_DATASET (leave one image domain out) | all "
        "(every axis of the data, domains when it has two or more); repeatable; trains one model "
        "per protocol and recipe. The report adds per-domain entries, calibration (ECE per domain "
        "and victim architecture) and pooled vs per-architecture ROC-AUC",
    )
    h.add_argument(
        "--recipe", action="append", default=None, help="training recipe(s) for --heldout (default cpu)"
    )
    h.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs for --heldout")
    h.add_argument("--base-width", type=int, default=None, help="override the recipe's width for --heldout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Evaluate a dataset folder (or --table CSV), or run --heldout experiments.

    Every refusal (arguments, unknown splits or baselines, originals a model was trained on without
    ``--allow-seen``) comes before a model's weights are loaded and before anything is scored; each step that takes
    more than a few seconds logs its progress (logger ``semsim_metric``).

    Raises:
        CLIError: bad arguments, a dataset or model that cannot be loaded, or originals a model was trained on.
    """
    if args.no_domain_check:
        import warnings

        from ..domain import OutOfDomainWarning

        warnings.filterwarnings(
            "ignore", category=OutOfDomainWarning
        )  # main() restores the filters afterwards
    from ..evaluation.writer import write_report

    if args.heldout:
        from ..evaluation.heldout import run_heldout

        if not args.dataset or not args.out:
            raise CLIError("--heldout needs a dataset and --out.")
        protocols = _heldout_protocols(args.heldout)
        overrides: dict[str, Any] = {
            k: v for k, v in (("epochs", args.epochs), ("base_width", args.base_width)) if v is not None
        }
        if args.group_by is not None:  # else run_heldout's default
            overrides["group_by"] = _group_by(args)
        baselines = _baseline_names(args)  # refused here, before any training
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "command.txt").write_text("semsim " + " ".join(sys.argv[1:]) + "\n")
        try:
            run_heldout(
                args.dataset,
                protocols,
                args.recipe or ["cpu"],
                args.out,
                n_boot=args.bootstrap,
                baselines=baselines,
                **overrides,
            )
        except ValueError as err:
            raise CLIError(str(err)) from err
        print((args.out / "report.md").read_text())
        return 0
    if args.table is not None:
        report = _evaluate_csv(args)
        reports, values = [report], None
    else:
        if not args.dataset:
            raise CLIError("give a dataset folder/Hub id, or --table CSV.")
        reports, values = _evaluate_folder(args)
    for rep in reports:
        print(f"\n## {rep.title}: {rep.n} rows, {rep.recognised_share:.1%} recognised\n")
        print(rep.table())
        for name, reason in rep.skipped.items():
            print(f"skipped {name}: {reason}")
    if args.out:
        path = write_report(reports, args.out, values=values)
        print(f"\nreport written to {path}")
    return 0


def _group_by(args: argparse.Namespace) -> tuple[str, ...]:
    """The columns of ``--group-by`` (default ``victim``; parsed here, once: the library takes them as a tuple).

    Raises:
        CLIError: an empty column name.
    """
    from ..evaluation.protocol import parse_group_by

    try:
        return parse_group_by(args.group_by or "victim")
    except ValueError as err:
        raise CLIError(f"--group-by: {err}") from err


def _heldout_protocols(texts: list[str]) -> list[HeldoutProtocol]:
    """The ``HeldoutProtocol`` of each ``--heldout`` (parsed here, once, before the dataset is read).

    Raises:
        CLIError: a malformed protocol (the message lists the accepted forms).
    """
    from ..evaluation.heldout import HeldoutProtocol

    try:
        return [HeldoutProtocol.parse(text) for text in texts]
    except ValueError as err:
        raise CLIError(f"--heldout: {err}") from err


def _model_specs(specs: list[str] | None) -> dict[str, str | None]:
    """display name -> folder or Hub id (``None``: the bundled default) of each ``--model`` (``NAME=PATH``).

    Raises:
        CLIError: an empty path or a name given twice.
    """
    from ..evaluation.protocol import parse_named_models

    try:
        return parse_named_models(specs)
    except ValueError as err:
        raise CLIError(f"--model: {err}") from err


def _model_configs(paths: dict[str, str | None]) -> dict[str, Any]:
    """name -> the model's validated ``config.json``, read without its weights (what the refusals need).

    Raises:
        CLIError: a model that cannot be found.
    """
    from ..hub import CONFIG_NAME, DEFAULT_MODEL_ID, resolve_model_folder
    from ..models.modeling_semsim import load_config

    configs = {}
    for name, path in paths.items():
        try:
            configs[name] = load_config(resolve_model_folder(path or DEFAULT_MODEL_ID) / CONFIG_NAME)
        except OSError as err:
            raise CLIError(str(err)) from err
    return configs


def _evaluate_folder(args: argparse.Namespace) -> tuple[list[Any], dict]:
    import numpy as np

    group_by = _group_by(args)
    paths = _model_specs(args.model)
    baselines = _baseline_names(args)
    dsd, splits = _load_splits(args)
    # the refusal of originals a model was trained on needs only the configs: every split is checked before any
    # model's weights are loaded and before anything is scored
    configs = _model_configs(paths)
    seen_by_split = {split: _seen_by_models(configs, dsd[split]) for split in splits}
    refused = {split: seen for split, seen in seen_by_split.items() if seen}
    if refused and not args.allow_seen:
        _refuse_seen(args.dataset, refused)
    from ..evaluation.protocol import evaluate_dataset

    models = _load_models(paths)
    reports, values = [], {}
    for split in splits:
        ds = dsd[split]
        rep, vals = evaluate_dataset(
            ds,
            models,
            baselines=baselines,
            group_by=group_by,
            title=f"{args.dataset} / {split}",
            n_boot=args.bootstrap,
        )
        for name, (n, total) in seen_by_split[split].items():
            rep.notes[f"in-sample: {name}"] = (
                f"{n} of {total} originals of this split were training data of "
                f"{name} (--allow-seen): its numbers are in-sample"
            )
        reports.append(rep)
        values[rep.title] = (vals, np.asarray(ds["recognized"], dtype=bool))
    return reports, values


def _baseline_names(args: argparse.Namespace) -> list[str] | None:
    """The baselines named by ``--baselines`` (``None`` when not given); refuses an unknown one."""
    from ..evaluation.baselines import BASELINES

    baselines = args.baselines.split(",") if args.baselines else None
    if baselines:
        unknown = [b for b in baselines if b not in BASELINES]
        if unknown:
            raise CLIError(f"unknown baseline(s) {unknown}; choose from {sorted(BASELINES)}.")
    return baselines


def _load_splits(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The dataset of ``--dataset`` and the splits to evaluate (``--split``, default test); refuses a missing one."""
    from .._progress import logger
    from ..data.loading import load_folder_or_hub

    logger.info("loading the dataset %s", args.dataset)
    try:
        dsd = load_folder_or_hub(args.dataset)
    except Exception as err:
        raise CLIError(f"cannot load dataset {args.dataset!r}: {err}") from err
    splits = args.split or ["test"]
    missing = [s for s in splits if s not in dsd]
    if missing:
        raise CLIError(f"split(s) {missing} not in the dataset (it has {list(dsd)}).")
    return dsd, splits


def _refuse_seen(dataset: str, refused: dict[str, dict[str, tuple[int, int]]]) -> None:
    """Refuse to evaluate models on splits whose originals they were trained on (naming each split and model)."""
    raise CLIError(
        "; ".join(
            f"{dataset} / {split}: "
            + "; ".join(
                f"{n} of {total} originals were training data of {name}" for name, (n, total) in seen.items()
            )
            for split, seen in refused.items()
        )
        + ". Its numbers there would be in-sample, not a measure of agreement on new data. Evaluate on "
        "originals it never saw (the held-out protocol: --heldout, or a model's held-out tables), or pass "
        "--allow-seen to evaluate anyway (the report then says so)."
    )


def _load_models(paths: dict[str, Any]) -> dict[str, Any]:
    """The SemSim models to evaluate, frozen, by name (``paths``: name -> folder or Hub id, ``None`` = default)."""
    from .._progress import logger
    from ..functional import freeze, get_model

    models = {}
    for name, path in paths.items():
        logger.info("loading the SemSim model %s", path or "(the bundled default)")
        try:
            models[name] = freeze(get_model(path))
        except OSError as err:
            raise CLIError(str(err)) from err
    return models


def _seen_by_models(configs: dict[str, Any], ds: Any) -> dict[str, tuple[int, int]]:
    """name -> (originals of ``ds`` the model was trained on, distinct originals) for models that saw some
    (``configs``: name -> the model's config)."""
    from .._progress import logger
    from ..data.loading import unique_originals
    from ..domain import seen_originals

    originals = None
    out = {}
    for name, config in configs.items():
        if not (getattr(config, "training_domain", None) or {}).get("original_fingerprints"):
            continue
        if originals is None:
            logger.info("checking which originals %s was trained on", name)
            originals = unique_originals({"split": ds})
        n = seen_originals(config, originals)
        if n:
            out[name] = (n, len(originals))
    return out


def _evaluate_csv(args: argparse.Namespace) -> Any:
    import csv

    import numpy as np

    from ..evaluation.baselines import MetricSpec
    from ..evaluation.protocol import LabelRule, evaluate_table, group_keys

    if not args.metric:
        raise CLIError("--table needs at least one --metric COLUMN:higher|lower.")
    try:
        metrics = [MetricSpec.parse(m) for m in args.metric]
        rule = LabelRule.parse(args.label)
    except ValueError as err:
        raise CLIError(f"--metric/--label: {err}") from err
    group_by = _group_by(args)
    try:
        with args.table.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as err:
        raise CLIError(f"--table {args.table}: cannot be read ({err.strerror or err}).") from err
    except (UnicodeDecodeError, csv.Error) as err:
        raise CLIError(f"--table {args.table} is not a UTF-8 CSV file ({err}).") from err
    if not rows:
        raise CLIError(f"{args.table} has no rows.")
    specs, values = {}, {}
    for spec in metrics:
        if spec.name not in rows[0]:
            raise CLIError(
                f"--metric {spec.name!r}: no such column in {args.table.name} (it has {', '.join(rows[0])})."
            )
        specs[spec.name] = spec
        try:
            values[spec.name] = np.array([float(r[spec.name]) for r in rows])
        except (TypeError, ValueError) as err:
            raise CLIError(f"--metric {spec.name}: every value must be a number ({err}).") from err
    if rule.column not in rows[0]:
        raise CLIError(
            f"--label {args.label!r}: no column {rule.column!r} in {args.table.name} "
            f"(it has {', '.join(rows[0])})."
        )
    try:
        y = rule.labels(rows)
    except ValueError as err:
        raise CLIError(f"--label {args.label!r}: {err}") from err
    missing = [c for c in group_by if c not in rows[0]]
    if missing:
        raise CLIError(f"--group-by column(s) {missing} not in {args.table.name}.")
    groups = group_keys({c: [r[c] for r in rows] for c in group_by}, group_by)
    id_col = next((c for c in ("original_id", "image_index") if c in rows[0]), None)
    ids = np.array([r[id_col] for r in rows]) if id_col else None
    return evaluate_table(
        values,
        y,
        groups,
        ids,
        specs=specs,
        title=f"{args.table.name}",
        group_by=group_by,
        n_boot=args.bootstrap,
    )
