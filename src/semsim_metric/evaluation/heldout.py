"""Generalisation experiments: train SemSim without some victims or attacks, evaluate on them.

A protocol names what is held out:

* ``unseen-originals`` - the plain split by original (test originals, every setting);
* ``victim_arch=<arch>`` / ``victim=<name>[+<name>...]`` - every setting of those victims;
* ``attack=<name>`` - every setting of that attack;
* ``defense=<name>`` - every victim trained with that defence (e.g. ``noise:1e-3``, ``prune:70``);
* ``domain=<source_dataset>`` - every row of one image domain (leave-one-domain-out);
* ``all`` - every one of these axes the data has (see ``expand_protocols``).

For each protocol the dataset's rows are re-split by original (seeded); held-out rows of training and
validation originals are dropped, held-out rows of test originals form the ``test_victim`` /
``test_attack`` split (so no original is in two splits). A held-out domain is evaluated whole (the
``test_domain`` split: every row of it) and the other domains' rows are split by original as usual, so
none of its originals is ever trained on. SemSim is trained on the rest with each recipe and evaluated
with the paper's protocol beside every baseline, in one run.

When an evaluation split holds more than one domain, each domain is also reported on its own (same
metrics, same bootstrap): summary entries ``"<protocol> [domain=<d>]"``. Every summary entry also
carries the calibration of each SemSim model on the held-out rows (expected calibration error overall,
per domain and per victim architecture; target <= ``ECE_TARGET`` each) and its pooled ROC-AUC beside
the mean of its per-architecture ROC-AUCs (a scale that holds across victims: pooled >= mean).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from ..data.hub_folder import DatasetCard, write_dataset_folder
from ..data.loading import load_folder_or_hub, undecoded
from ..data.splits import split_by_original
from ..errors import InvalidInputError
from ..functional import freeze
from ..models import SemSimModel
from ..training.run import TrainOptions, train
from .baselines import leakage_score
from .protocol import evaluate_dataset, evaluate_table, group_keys
from .report import EvaluationReport
from .statistics import expected_calibration_error, image_level
from .writer import write_report

__all__ = [
    "ECE_TARGET",
    "HeldoutProtocol",
    "HeldoutResult",
    "build_protocol_splits",
    "calibration_table",
    "domain_subset_name",
    "expand_protocols",
    "probability_column",
    "run_folder_name",
    "run_heldout",
    "slug",
    "summary_from_scores",
    "summary_table",
    "write_scores",
]

#: the calibration target: expected calibration error at most this, overall, per domain and per victim architecture
ECE_TARGET = 0.05
#: bins of the expected calibration error
ECE_BINS = 10


@dataclass
class HeldoutResult:
    protocol: str
    recipe: str
    report: EvaluationReport
    values: dict[str, np.ndarray]
    recognized: np.ndarray
    #: per row: image domain (``source_dataset``; ``""`` when unknown) and victim architecture
    domains: np.ndarray | None = None
    victim_archs: np.ndarray | None = None
    #: metric name (``SemSim[recipe]``) -> calibrated probability of "recognised" per row (calibrated models only)
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    #: for a per-domain entry: the protocol it is a subset of, and its domain
    parent: str | None = None
    domain: str | None = None


#: what a held-out protocol holds out (``HeldoutProtocol.axis``)
HeldoutAxis = Literal[
    "unseen-originals", "all", "victim", "attack", "victim_arch", "victim_train_epochs", "defense", "domain"
]
#: the axes that take several names joined by ``+``; the others take exactly one value
_LIST_AXES = ("victim", "attack")
#: the axes written alone, without ``=``
_BARE_AXES = ("unseen-originals", "all")
#: the accepted forms, as the errors and ``semsim evaluate --help`` show them
PROTOCOL_FORMS = (
    "unseen-originals | victim=NAME[+NAME...] | attack=NAME[+NAME...] | victim_arch=ARCH | "
    "victim_train_epochs=N | defense=DEFENCE (e.g. noise:1e-3) | domain=SOURCE_DATASET | all"
)


@dataclass(frozen=True)
class HeldoutProtocol:
    """What a held-out experiment leaves out of training: ``axis`` and the ``names`` held out on it (none for
    ``unseen-originals`` and ``all``; one or more, joined by ``+``, for ``victim`` and ``attack``; exactly one
    for the other axes). ``str()`` gives the canonical text, which names the protocol in every output (report
    titles, score files, ``heldout_summary.json``, model folders).

    Examples:
        >>> HeldoutProtocol("victim", ("lenet_e0", "conv_e1"))
        HeldoutProtocol(axis='victim', names=('lenet_e0', 'conv_e1'))
        >>> str(HeldoutProtocol("domain", ("emoji_scenes",)))
        'domain=emoji_scenes'

    Raises:
        InvalidInputError: (a ``ValueError``) an unknown axis, names given to ``unseen-originals`` / ``all``, no
            name or an empty one, several names on an axis that takes one, or a ``victim_train_epochs`` value
            that is not a whole number.
    """

    axis: HeldoutAxis
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = self.names
        if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
            raise InvalidInputError(f"held-out protocol names {names!r}: give a tuple of strings.")
        if self.axis not in get_args(HeldoutAxis):
            problem = f"unknown axis {self.axis!r}"
        elif self.axis in _BARE_AXES:
            problem = f"{self.axis} takes no name" if names else ""
        elif not names or not all(names):
            problem = f"no name, or an empty one, after {self.axis}="
        elif len(names) > 1 and self.axis not in _LIST_AXES:
            problem = f"{self.axis}= takes one value (give the protocol once per value)"
        elif self.axis == "victim_train_epochs" and not names[0].isdigit():
            problem = f"victim_train_epochs={names[0]} is not a whole number of epochs"
        else:
            problem = ""
        if problem:
            raise InvalidInputError(
                f"held-out protocol {str(self)!r}: {problem}; write one of {PROTOCOL_FORMS}."
            )

    @classmethod
    def parse(cls, text: str) -> HeldoutProtocol:
        """The protocol written ``unseen-originals``, ``all``, ``victim=NAME[+NAME...]``,
        ``attack=NAME[+NAME...]``, ``victim_arch=ARCH``, ``victim_train_epochs=N``, ``defense=DEFENCE`` or
        ``domain=SOURCE_DATASET`` (``semsim evaluate --heldout``); the one parser of that form. A ``defense``
        value is kept whole (``defense=noise:1e-3``), as the data's ``defense`` column writes it.

        Examples:
            >>> HeldoutProtocol.parse("victim=lenet_e0+conv_e1")
            HeldoutProtocol(axis='victim', names=('lenet_e0', 'conv_e1'))
            >>> str(HeldoutProtocol.parse("defense=noise:1e-3"))
            'defense=noise:1e-3'
            >>> HeldoutProtocol.parse("colour=red")  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            semsim_metric.errors.InvalidInputError: unknown protocol 'colour=red'; write one of unseen-originals | ...

        Raises:
            InvalidInputError: (a ``ValueError``) another form: an unknown axis, a missing or empty name, several
                names where one is taken (see ``HeldoutProtocol``).
        """
        if not isinstance(text, str):
            raise InvalidInputError(f"held-out protocol {text!r}: give a string, one of {PROTOCOL_FORMS}.")
        axis, sep, value = text.partition("=")
        if axis not in get_args(HeldoutAxis):
            raise InvalidInputError(f"unknown protocol {text!r}; write one of {PROTOCOL_FORMS}.")
        if not sep:
            names: tuple[str, ...] = ()
        elif axis == "defense":  # a defence is one value, whatever it holds (``noise:1e+3``)
            names = (value,)
        else:  # several names where one is taken are refused by the constructor
            names = tuple(value.split("+"))
        return cls(axis, names)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.axis}={'+'.join(self.names)}" if self.names else self.axis


def domain_subset_name(protocol: str, domain: str) -> str:
    """Name of the per-domain entry of a protocol's evaluation split.

    Examples:
        >>> domain_subset_name("unseen-originals", "emoji_scenes")
        'unseen-originals [domain=emoji_scenes]'
    """
    return f"{protocol} [domain={domain}]"


def _domains_of(rows: list[dict[str, Any]]) -> list[str]:
    """The distinct known image domains (``source_dataset``) of schema rows, sorted."""
    return sorted({str(r.get("source_dataset") or "") for r in rows} - {""})


def _known(rows: list[dict[str, Any]], column: str) -> list[str]:
    """The distinct known values of ``column`` in schema rows, sorted (``""``, the schema's unknown, left out)."""
    return sorted({str(r[column]) for r in rows} - {""})


def build_protocol_splits(
    rows: list[dict[str, Any]],
    protocol: HeldoutProtocol | str,
    *,
    seed: int = 0,
    fractions: dict[str, float] | None = None,
) -> tuple[dict[str, list], str]:
    """Splits for one protocol; returns ``(splits, name of the evaluation split)``. A protocol given as text
    goes through ``HeldoutProtocol.parse``; ``all`` is expanded first (``expand_protocols``).

    Raises:
        InvalidInputError: (a ``ValueError``) a malformed protocol, ``all``, or one that selects no rows.
    """
    if isinstance(protocol, str):
        protocol = HeldoutProtocol.parse(protocol)
    fractions = fractions or {"train": 0.7, "validation": 0.1, "test": 0.2}
    axis, names = protocol.axis, protocol.names
    if axis == "all":
        raise InvalidInputError("protocol 'all' names several protocols: expand it first (expand_protocols).")
    if axis == "unseen-originals":
        splits, _ = split_by_original(rows, fractions=fractions, seed=seed)
        return splits, "test"
    if axis == "attack":
        splits, _ = split_by_original(rows, fractions=fractions, seed=seed, holdout_attacks=list(names))
        return splits, "test_attack"
    if axis == "domain":
        return _domain_splits(rows, names[0], fractions=fractions, seed=seed), "test_domain"
    if axis == "victim":
        victims = list(names)
    else:  # one value of a column that names victims: victim_arch, victim_train_epochs or defense
        column, value = axis, names[0]
        victims = sorted({r["victim"] for r in rows if str(r[column]) == value})
    if not victims:
        raise InvalidInputError(f"protocol {str(protocol)!r} selects no rows.")
    splits, _ = split_by_original(rows, fractions=fractions, seed=seed, holdout_victims=victims)
    return splits, "test_victim"


def _domain_splits(
    rows: list[dict[str, Any]], domain: str, *, fractions: dict[str, float], seed: int
) -> dict[str, list]:
    """Leave one domain out: ``test_domain`` is every row of ``domain``; the other domains' rows are split by
    original (train / validation / test). A row of another domain whose original also appears in the held-out
    domain is dropped, so no held-out original is ever trained on."""
    held = [r for r in rows if str(r.get("source_dataset") or "") == domain]
    if not held:
        raise InvalidInputError(
            f"protocol 'domain={domain}' selects no rows (domains in the data: {_domains_of(rows)})."
        )
    held_ids = {r["original_id"] for r in held}
    rest = [
        r for r in rows if str(r.get("source_dataset") or "") != domain and r["original_id"] not in held_ids
    ]
    if not rest:
        raise InvalidInputError(f"protocol 'domain={domain}' leaves no rows of another domain to train on.")
    splits, _ = split_by_original(rest, fractions=fractions, seed=seed)
    splits["test_domain"] = held
    return splits


def expand_protocols(
    rows: list[dict[str, Any]], protocols: Sequence[HeldoutProtocol | str]
) -> list[HeldoutProtocol]:
    """The protocols to run, typed (text goes through ``HeldoutProtocol.parse``): ``all`` replaced by every axis
    the data has - unseen originals, each victim architecture, each attack, each training defence and, when the
    rows come from two or more image domains (``source_dataset``), each domain (an unknown value, ``""``, is
    none of them); the others kept as given, in order, each once.

    Examples:
        >>> rows = [{"victim_arch": "a", "attack": "x", "defense": "none", "source_dataset": "fashion_mnist"},
        ...         {"victim_arch": "b", "attack": "x", "defense": "noise:1e-3", "source_dataset": "fashion_mnist"}]
        >>> [str(p) for p in expand_protocols(rows, ["all"])]
        ['unseen-originals', 'victim_arch=a', 'victim_arch=b', 'attack=x', 'defense=noise:1e-3']
        >>> rows[1]["source_dataset"] = "emoji_scenes"
        >>> [str(p) for p in expand_protocols(rows, ["all"])[-2:]]
        ['domain=emoji_scenes', 'domain=fashion_mnist']

    Raises:
        InvalidInputError: (a ``ValueError``) a malformed protocol (see ``HeldoutProtocol.parse``).
    """
    out: list[HeldoutProtocol] = []
    for given in protocols:
        protocol = HeldoutProtocol.parse(given) if isinstance(given, str) else given
        if protocol.axis != "all":
            out.append(protocol)
            continue
        out.append(HeldoutProtocol("unseen-originals"))
        out += [HeldoutProtocol("victim_arch", (v,)) for v in _known(rows, "victim_arch")]
        out += [HeldoutProtocol("attack", (a,)) for a in _known(rows, "attack")]
        out += [HeldoutProtocol("defense", (d,)) for d in _known(rows, "defense") if d != "none"]
        domains = _domains_of(rows)
        if len(domains) >= 2:
            out += [HeldoutProtocol("domain", (d,)) for d in domains]
    return list(dict.fromkeys(out))


def _column(ds: Any, name: str) -> np.ndarray:
    """A string column of a split as an array (``""`` per row when the split has no such column)."""
    if name not in ds.column_names:
        return np.full(len(ds), "", dtype=object)
    return np.asarray(["" if v is None else str(v) for v in ds[name]], dtype=object)


def _probabilities(models: dict[str, Any], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Calibrated probability of "recognised" per row for each SemSim model that carries a calibration."""
    import torch

    out = {}
    for name, model in models.items():
        if getattr(model.config, "calibration", None) and name in values:
            distance = torch.as_tensor(np.asarray(values[name], dtype=np.float64))
            out[name] = model.probability(distance).detach().cpu().numpy().astype(np.float64)
    return out


def _per_domain_results(
    protocol: str,
    eval_split: str,
    recipes: Sequence[str],
    parent: EvaluationReport,
    values: dict[str, np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    ids: np.ndarray,
    domains: np.ndarray | None,
    archs: np.ndarray | None,
    probabilities: dict[str, np.ndarray],
    *,
    group_by: str | Sequence[str],
    n_boot: int,
    seed: int,
) -> tuple[list[HeldoutResult], dict[str, str]]:
    """One entry per domain of an evaluation split that holds two or more (known) domains, each evaluated
    like the whole split (every metric of it, bootstrap intervals); returns ``(results, not evaluated)``."""
    if domains is None:
        return [], {}
    names = sorted(set(domains.tolist()) - {""})
    if len(names) < 2:
        return [], {}
    results: list[HeldoutResult] = []
    skipped: dict[str, str] = {}
    for d in names:
        mask = domains == d
        sub = domain_subset_name(protocol, d)
        labels = set(y[mask].tolist())
        if len(labels) < 2:
            skipped[sub] = (
                f"all {int(mask.sum())} rows of this domain are "
                f"{'recognised' if labels == {True} else 'unrecognised'}: ROC-AUC undefined there"
            )
            continue
        sub_values = {m: np.asarray(v)[mask] for m, v in values.items() if m in parent.image}
        report = evaluate_table(
            sub_values,
            y[mask],
            groups[mask],
            ids[mask],
            title=f"{sub} ({eval_split}, {int(mask.sum())} rows)",
            group_by=group_by,
            n_boot=n_boot,
            seed=seed,
            skipped=parent.skipped,
        )
        sub_p = {m: p[mask] for m, p in probabilities.items()}
        results += [
            HeldoutResult(
                sub,
                recipe,
                report,
                sub_values,
                y[mask],
                domains[mask],
                None if archs is None else archs[mask],
                sub_p,
                parent=protocol,
                domain=d,
            )
            for recipe in recipes
        ]
    return results, skipped


def run_heldout(
    dataset: str | Path,
    protocols: Sequence[HeldoutProtocol | str],
    recipes: Sequence[str],
    out: str | Path,
    *,
    group_by: str | Sequence[str] = ("victim", "attack", "attack_iterations"),
    n_boot: int = 1000,
    seed: int = 0,
    baselines: Sequence[str] | None = None,
    **overrides: Any,
) -> list[HeldoutResult]:
    """Train one model per (protocol, recipe), evaluate on the held-out rows, write one report into ``out``.

    Besides each protocol's entry, an evaluation split with rows of two or more domains gets one entry per
    domain (``domain_subset_name``); a subset whose rows all carry one label is listed as not evaluated.
    ``<out>/scores`` receives the per-row values (with each row's domain, victim architecture and each
    calibrated model's probability), from which ``summary_from_scores`` recomputes every entry. Protocols
    given as text go through ``HeldoutProtocol.parse`` before the dataset is read; each is named in the outputs
    by its canonical text (``str(protocol)``).

    Raises:
        InvalidInputError: (a ``ValueError``) a malformed protocol, or one that selects no rows."""
    held_out = [HeldoutProtocol.parse(p) if isinstance(p, str) else p for p in protocols]
    out = Path(out)
    dsd = undecoded(load_folder_or_hub(dataset))
    rows = [r for split in dsd.values() for r in split]
    results: list[HeldoutResult] = []
    skipped: dict[str, str] = {}
    for typed in expand_protocols(rows, held_out):
        protocol = str(typed)
        splits, eval_split = build_protocol_splits(rows, typed, seed=seed)
        labels = {bool(r["recognized"]) for r in splits[eval_split]}
        if len(labels) < 2:
            skipped[protocol] = _one_label_reason(len(splits[eval_split]), labels)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            folder = write_dataset_folder(
                splits, Path(tmp) / "ds", DatasetCard(title=protocol, summary=protocol)
            )
            eval_ds = load_folder_or_hub(folder, eval_split)
            models = {}
            networks: dict[str, Path] = {}  # one trained network per recipe that differs only in its layout
            for recipe in recipes:
                run_dir = out / "models" / run_folder_name(protocol, recipe)
                reuse_network(run_dir, networks, recipe, overrides)
                options = TrainOptions(write_card=False, resume=True, pretrain_cache=out / "pretrained")
                result = train(folder, run_dir, recipe=recipe, options=options, **overrides)
                models[recipe] = (freeze(SemSimModel.from_pretrained(run_dir)), result.train_seconds)
            report, values, probabilities = _evaluate_protocol(
                protocol,
                eval_split,
                eval_ds,
                models,
                recipes,
                out,
                group_by=group_by,
                n_boot=n_boot,
                seed=seed,
                baselines=baselines,
            )
            protocol_results, not_evaluated = _protocol_results(
                protocol,
                eval_split,
                eval_ds,
                recipes,
                report,
                values,
                probabilities,
                group_by=group_by,
                n_boot=n_boot,
                seed=seed,
            )
            results += protocol_results
            skipped.update(not_evaluated)
    _write_heldout_outputs(results, skipped, out)
    return results


def _one_label_reason(n_rows: int, labels: set[bool]) -> str:
    """Why a protocol whose held-out rows all carry one label is not evaluated (no model is trained)."""
    return (
        f"all {n_rows} held-out rows are "
        f"{'recognised' if labels == {True} else 'unrecognised'}: no metric can be ranked "
        "against the annotators there (ROC-AUC undefined); no model trained"
    )


def _evaluate_protocol(
    protocol: str,
    eval_split: str,
    eval_ds: Any,
    models: dict[str, tuple[Any, float]],
    recipes: Sequence[str],
    out: Path,
    *,
    group_by: str | Sequence[str],
    n_boot: int,
    seed: int,
    baselines: Sequence[str] | None,
) -> tuple[EvaluationReport, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Evaluate a protocol's trained models (and the baselines) on its held-out rows, write their scores, note the
    training times; returns the report, the per-row values and the calibrated probabilities."""
    named = {f"SemSim[{r}]": m for r, (m, _) in models.items()}
    title = f"{protocol} ({eval_split}, {len(eval_ds)} rows)"
    report, values = evaluate_dataset(
        eval_ds,
        named,
        baselines=baselines,
        group_by=group_by,
        title=title,
        n_boot=n_boot,
        seed=seed,
        progress=False,
    )
    probabilities = _probabilities(named, values)
    write_scores(
        out / "scores",
        protocol,
        title,
        eval_ds,
        values,
        group_by,
        report.skipped,
        recipes,
        probabilities=probabilities,
        eval_split=eval_split,
    )
    report.notes.update(
        {
            f"training time of SemSim[{r}]": f"{s:.0f} s (stage 1 counted as recorded when "
            "reused from the cache)"
            for r, (_, s) in models.items()
        }
    )
    return report, values, probabilities


def _protocol_results(
    protocol: str,
    eval_split: str,
    eval_ds: Any,
    recipes: Sequence[str],
    report: EvaluationReport,
    values: dict[str, np.ndarray],
    probabilities: dict[str, np.ndarray],
    *,
    group_by: str | Sequence[str],
    n_boot: int,
    seed: int,
) -> tuple[list[HeldoutResult], dict[str, str]]:
    """A protocol's entry per recipe, then its per-domain entries; returns ``(results, not evaluated)``."""
    y = np.asarray(eval_ds["recognized"], dtype=bool)
    domains = _column(eval_ds, "source_dataset")
    archs = _column(eval_ds, "victim_arch")
    results = [
        HeldoutResult(protocol, recipe, report, values, y, domains, archs, probabilities)
        for recipe in recipes
    ]
    subsets, not_evaluated = _per_domain_results(
        protocol,
        eval_split,
        recipes,
        report,
        values,
        y,
        group_keys(eval_ds, group_by),
        np.asarray(eval_ds["original_id"]),
        domains,
        archs,
        probabilities,
        group_by=group_by,
        n_boot=n_boot,
        seed=seed,
    )
    return results + subsets, not_evaluated


def _write_heldout_outputs(results: list[HeldoutResult], skipped: dict[str, str], out: Path) -> None:
    """Write the run's report (``report.md``), ``heldout_summary.json`` and ``heldout_skipped.json`` into ``out``."""
    reports = list({id(r.report): r.report for r in results}.values())
    values = {r.report.title: (r.values, r.recognized) for r in results}
    intro = _summary(results) + "".join(f"\n\n- **{p} not evaluated**: {why}." for p, why in skipped.items())
    write_report(reports, out, values=values, intro=intro)
    (out / "heldout_summary.json").write_text(json.dumps(_summary_dict(results), indent=2))
    (out / "heldout_skipped.json").write_text(json.dumps(skipped, indent=2))


def network_key(recipe: str, overrides: dict[str, Any] | None = None) -> str:
    """What a recipe's *network* depends on: its flat fields without the name, the description and
    the layout's ``layout_weight``, ``layout_size`` and ``layout_channels`` (which are set after training). Two recipes with the same key
    train the same network.

    Examples:
        >>> base = "colour:embedding=spatial"
        >>> network_key(base) == network_key(base + ",layout_weight=0.5,layout_channels=luminance") != network_key("semantic")
        True
    """
    from ..training.run import resolve_recipe

    flat = resolve_recipe(recipe, overrides).flat()
    kept = {k: v for k, v in flat.items() if not k.startswith("layout_") and k not in ("name", "description")}
    return json.dumps(kept, sort_keys=True, default=str)


def reuse_network(
    run_dir: Path, networks: dict[str, Path], recipe: str, overrides: dict[str, Any] | None
) -> None:
    """Before ``recipe`` is trained into ``run_dir``: if a recipe of this run with the same network
    (``network_key``) was trained already and ``run_dir`` does not exist, copy that run's folder (checkpoints and
    stage records) so that training resumes its finished stages instead of repeating them; then record
    ``run_dir`` as this network's folder."""
    import shutil

    key = network_key(recipe, overrides)
    source = networks.get(key)
    if source is not None and source != run_dir and not run_dir.exists():
        shutil.copytree(source, run_dir)
    networks.setdefault(key, run_dir)


def slug(text: str) -> str:
    """``text`` with every character that is not a letter or digit replaced by ``_`` (safe as a folder name).

    Examples:
        >>> slug("victim_arch=conv_relu")
        'victim_arch_conv_relu'
    """
    return "".join(c if c.isalnum() else "_" for c in text)


def run_folder_name(protocol: str, recipe: str) -> str:
    """Folder (under ``<out>/models``) of the model trained for ``protocol`` with ``recipe`` (both slugged:
    a recipe string never reaches the file system as it is).

    Examples:
        >>> run_folder_name("victim_arch=resnet20", "../../x")
        'victim_arch_resnet20________x'
    """
    return f"{slug(protocol)}__{slug(recipe)}"


SCORES_INDEX = "index.json"
#: per-row columns of a scores file that are not metrics (``domain`` and ``victim_arch`` absent from older files)
SCORES_FIXED = ("reconstruction_id", "original_id", "group", "recognized", "domain", "victim_arch")


def probability_column(metric: str) -> str:
    """Scores-file column of a calibrated model's probability of "recognised" (not a metric column).

    Examples:
        >>> probability_column("SemSim[quick]")
        'p[SemSim[quick]]'
    """
    return f"p[{metric}]"


def _probability_metric(column: str) -> str | None:
    return column[2:-1] if column.startswith("p[") and column.endswith("]") else None


def write_scores(
    folder: Path,
    protocol: str,
    title: str,
    ds: Any,
    values: dict[str, np.ndarray],
    group_by: str | Sequence[str],
    skipped: dict[str, str],
    recipes: Sequence[str],
    *,
    probabilities: dict[str, np.ndarray] | None = None,
    eval_split: str | None = None,
) -> Path:
    """Write the per-row values of every metric on one held-out split (``<folder>/<protocol>.csv.gz``) and
    record it in ``<folder>/index.json``: enough to recompute every held-out table without images or models
    (``summary_from_scores``).

    Columns: ``reconstruction_id, original_id, group, recognized, domain`` (the row's ``source_dataset``),
    ``victim_arch``, one column per metric, then ``p[<model>]`` per calibrated model (its probability of
    "recognised"; see ``probability_column``)."""
    import csv
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    name = f"{slug(protocol)}.csv.gz"
    groups = group_keys(ds, group_by)
    domains, archs = _column(ds, "source_dataset"), _column(ds, "victim_arch")
    metrics = list(values)
    probabilities = dict(probabilities or {})
    with gzip.open(folder / name, "wt", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*SCORES_FIXED, *metrics, *map(probability_column, probabilities)])
        for i, (rid, oid, rec) in enumerate(
            zip(ds["reconstruction_id"], ds["original_id"], ds["recognized"])
        ):
            w.writerow(
                [
                    rid,
                    oid,
                    groups[i],
                    int(bool(rec)),
                    domains[i],
                    archs[i],
                    *(repr(float(values[m][i])) for m in metrics),
                    *(repr(float(p[i])) for p in probabilities.values()),
                ]
            )
    index_path = folder / SCORES_INDEX
    index = json.loads(index_path.read_text()) if index_path.is_file() else []
    index = [e for e in index if e["protocol"] != protocol]
    entry = {
        "protocol": protocol,
        "title": title,
        "file": name,
        "group_by": group_by,
        "recipes": list(recipes),
        "skipped": skipped,
    }
    if eval_split:
        entry["eval_split"] = eval_split
    index.append(entry)
    index_path.write_text(json.dumps(index, indent=2))
    return folder / name


def summary_from_scores(folder: str | Path, *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Recompute the held-out summary (``heldout_summary.json`` entries, per-domain entries and calibration
    included) from the per-row values written by ``write_scores``: the published tables are reproducible
    from these files alone. Files written before the ``domain`` / ``victim_arch`` / probability columns
    existed are read as well (their entries then have no per-domain subsets and no calibration).

    Examples:
        >>> summary = summary_from_scores("results/heldout", n_boot=0)  # doctest: +SKIP
    """
    import csv
    import gzip

    folder = Path(folder)
    results = []
    for entry in json.loads((folder / SCORES_INDEX).read_text()):
        with gzip.open(folder / entry["file"], "rt", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
        probability_of = {c: _probability_metric(c) for c in columns if _probability_metric(c)}
        metrics = [c for c in columns if c not in SCORES_FIXED and c not in probability_of]
        values = {m: np.array([float(r[m]) for r in rows]) for m in metrics}
        probabilities = {m: np.array([float(r[c]) for r in rows]) for c, m in probability_of.items()}
        y = np.array([r["recognized"] == "1" for r in rows])
        groups, ids = np.array([r["group"] for r in rows]), np.array([r["original_id"] for r in rows])
        domains = np.array([r["domain"] for r in rows], dtype=object) if "domain" in columns else None
        archs = np.array([r["victim_arch"] for r in rows], dtype=object) if "victim_arch" in columns else None
        report = evaluate_table(
            values,
            y,
            groups,
            ids,
            title=entry["title"],
            group_by=entry["group_by"],
            n_boot=n_boot,
            seed=seed,
            skipped=entry.get("skipped"),
        )
        results += [
            HeldoutResult(entry["protocol"], recipe, report, values, y, domains, archs, probabilities)
            for recipe in entry["recipes"]
        ]
        subsets, _ = _per_domain_results(
            entry["protocol"],
            entry.get("eval_split", "held-out"),
            entry["recipes"],
            report,
            values,
            y,
            groups,
            ids,
            domains,
            archs,
            probabilities,
            group_by=entry["group_by"],
            n_boot=n_boot,
            seed=seed,
        )
        results += subsets
    return _summary_dict(results)


def _defined(v: Any) -> bool:
    """``v`` is a number, not ``None`` or NaN."""
    return v is not None and not math.isnan(v)


def _finite_mean(values: dict[str, float]) -> float | None:
    finite = [v for v in values.values() if _defined(v)]
    return float(np.mean(finite)) if finite else None


def _per_arch_auc(r: HeldoutResult, metric: str) -> dict[str, float]:
    """ROC-AUC of ``metric`` within each victim architecture of ``r`` (NaN where the rows carry one label)."""
    if r.victim_archs is None or metric not in r.values:
        return {}
    score = leakage_score(metric, r.values[metric])
    out = {}
    for arch in sorted(set(r.victim_archs.tolist()) - {""}):
        mask = r.victim_archs == arch
        out[arch] = image_level(r.recognized[mask], score[mask], n_boot=0)["roc_auc"]
    return out


def _ece_by(p: np.ndarray, y: np.ndarray, keys: np.ndarray | None) -> dict[str, float]:
    if keys is None:
        return {}
    return {
        k: expected_calibration_error(p[keys == k], y[keys == k], ECE_BINS)
        for k in sorted(set(keys.tolist()) - {""})
    }


def _calibration_fields(r: HeldoutResult, name: str) -> dict[str, Any]:
    """ECE of model ``name`` overall, per domain and per victim architecture; pooled vs per-architecture ROC-AUC."""
    p = r.probabilities.get(name)
    fields: dict[str, Any] = {
        "semsim_ece": None,
        "semsim_ece_per_domain": None,
        "semsim_ece_per_arch": None,
        "ece_target_met": None,
    }
    if p is not None:
        y = np.asarray(r.recognized, dtype=bool)
        overall = expected_calibration_error(p, y, ECE_BINS)
        per_domain, per_arch = _ece_by(p, y, r.domains), _ece_by(p, y, r.victim_archs)
        fields.update(
            semsim_ece=overall,
            semsim_ece_per_domain=per_domain,
            semsim_ece_per_arch=per_arch,
            ece_target_met=bool(
                all(e <= ECE_TARGET for e in [overall, *per_domain.values(), *per_arch.values()])
            ),
        )
    semsim_arch, ssim_arch = _per_arch_auc(r, name), _per_arch_auc(r, "SSIM")
    semsim_mean, ssim_mean = _finite_mean(semsim_arch), _finite_mean(ssim_arch)
    pooled = r.report.image.get(name, {}).get("roc_auc")
    comparable = sum(map(_defined, semsim_arch.values())) >= 2 and _defined(pooled)
    fields.update(
        semsim_auc_per_arch=semsim_arch,
        semsim_auc_per_arch_mean=semsim_mean,
        ssim_auc_per_arch=ssim_arch,
        ssim_auc_per_arch_mean=ssim_mean,
        pooled_auc_met=bool(pooled >= semsim_mean - 1e-12) if comparable else None,
    )
    return fields


def _summary_dict(results: list[HeldoutResult]) -> list[dict[str, Any]]:
    out = []
    for r in results:
        name = f"SemSim[{r.recipe}]"
        ssim = r.report.image.get("SSIM", {})
        others = {k: v for k, v in r.report.image.items() if not k.startswith("SemSim")}
        finite = {k: v for k, v in others.items() if v["roc_auc"] == v["roc_auc"]}
        best = max(finite, key=lambda k: finite[k]["roc_auc"]) if finite else None
        out.append(
            {
                "protocol": r.protocol,
                "recipe": r.recipe,
                "rows": r.report.n,
                "groups": len(r.report.per_group),
                "parent": r.parent,
                "domain": r.domain,
                "semsim_auc": r.report.image[name]["roc_auc"],
                "semsim_auc_ci": r.report.image[name].get("roc_auc_ci"),
                "ssim_auc": ssim.get("roc_auc"),
                "ssim_auc_ci": ssim.get("roc_auc_ci"),
                "psnr_auc": r.report.image.get("PSNR", {}).get("roc_auc"),
                "best_baseline": best,
                "best_baseline_auc": others[best]["roc_auc"] if best else None,
                "semsim_kendall": r.report.model[name].get("kendall"),
                "ssim_kendall": r.report.model.get("SSIM", {}).get("kendall"),
                **_calibration_fields(r, name),
            }
        )
    return out


def _num(v: Any) -> str:
    return f"{v:.3f}" if _defined(v) else "n/a"


def summary_table(summary: list[dict[str, Any]]) -> str:
    """The held-out target table (Markdown) from ``heldout_summary.json`` entries."""
    num = _num
    lines = [
        (
            "| protocol | recipe | rows | SemSim ROC-AUC [95% CI] | SSIM ROC-AUC | SemSim - SSIM | AUC target met "
            "| best baseline | settings | SemSim Kendall | SSIM Kendall | Kendall target met |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        gap = s["semsim_auc"] - s["ssim_auc"] if s.get("ssim_auc") is not None else float("nan")
        ci = s.get("semsim_auc_ci")
        ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and ci[0] == ci[0] else ""
        best = f"{s['best_baseline']} {s['best_baseline_auc']:.3f}" if s.get("best_baseline") else "-"
        sk, kk = s.get("semsim_kendall"), s.get("ssim_kendall")
        k_met = "n/a (< 3 settings)" if sk is None or kk is None else ("yes" if sk >= kk else "no")
        lines.append(
            f"| {s['protocol']} | {s['recipe']} | {s.get('rows', '')} | {num(s['semsim_auc'])}{ci_text} | "
            f"{num(s['ssim_auc'])} | {gap:+.3f} | {'yes' if gap >= 0.05 else 'no'} | {best} | "
            f"{s.get('groups', '')} | {num(sk)} | {num(kk)} | {k_met} |"
        )
    return "\n".join(lines)


def calibration_table(summary: list[dict[str, Any]]) -> str:
    """The calibration and pooling table (Markdown) from ``heldout_summary.json`` entries: SemSim's expected
    calibration error overall / per domain / per victim architecture (target <= ``ECE_TARGET`` each) and its
    pooled ROC-AUC beside the mean of its per-architecture ROC-AUCs (target: pooled >= mean), SSIM's for
    comparison. Entries without the fields (older summaries) read "n/a"."""

    def per(d: dict[str, float] | None) -> str:
        if d is None:
            return "n/a"
        return ", ".join(f"{k} {_num(v)}" for k, v in d.items()) or "-"

    def met(v: bool | None, why: str) -> str:
        return f"n/a ({why})" if v is None else ("yes" if v else "no")

    lines = [
        (
            f"| protocol | recipe | rows | SemSim ECE | ECE per domain | ECE per victim arch "
            f"| ECE <= {ECE_TARGET:g} each | SemSim pooled ROC-AUC | mean of per-arch ROC-AUCs | pooled >= mean "
            "| SSIM pooled ROC-AUC | SSIM mean of per-arch |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['protocol']} | {s['recipe']} | {s.get('rows', '')} | {_num(s.get('semsim_ece'))} | "
            f"{per(s.get('semsim_ece_per_domain'))} | {per(s.get('semsim_ece_per_arch'))} | "
            f"{met(s.get('ece_target_met'), 'no probabilities')} | {_num(s.get('semsim_auc'))} | "
            f"{_num(s.get('semsim_auc_per_arch_mean'))} | "
            f"{met(s.get('pooled_auc_met'), '< 2 architectures')} | {_num(s.get('ssim_auc'))} | "
            f"{_num(s.get('ssim_auc_per_arch_mean'))} |"
        )
    return "\n".join(lines)


def _summary(results: list[HeldoutResult]) -> str:
    summary = _summary_dict(results)
    return (
        "Target: SemSim ROC-AUC >= SSIM + 0.05 and model-level Kendall >= SSIM's on every held-out split.\n\n"
        + summary_table(summary)
        + f"\n\nCalibration and pooling on the held-out rows. Target: expected calibration error ({ECE_BINS} "
        f"equal-width bins) of SemSim's calibrated probability <= {ECE_TARGET:g} overall, in every domain and "
        "for every victim architecture, and the pooled ROC-AUC no worse than the mean of the per-architecture "
        "ones.\n\n" + calibration_table(summary)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m semsim_metric.evaluation.heldout SCORES_FOLDER``: the held-out summary and calibration tables
    from the committed per-row values (see ``summary_from_scores``)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("scores", type=Path, help="folder with index.json and <protocol>.csv.gz files")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    summary = summary_from_scores(args.scores, n_boot=args.bootstrap)
    print(summary_table(summary))
    print()
    print(calibration_table(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
