"""Training recipes: every setting of a training run, by name, with variants ``name:field=value,...``.

A ``Recipe`` holds one settings object per stage (``semsim_metric.training.settings``): ``pretrain``
(stage 1, ``classes``), ``vote_tuning`` (stage 2, ``votes``) and ``triplets`` (the paper's stage), plus what
every stage shares (the seed, the network's width and embedding). Recipe strings and ``get_recipe`` keyword
overrides name fields by their *flat* names (``vote_epochs``, ``pretrain_source``, ``margin``, ...); ``FLAT_FIELDS``
maps each onto its (section, field), and the same table writes the flat form recorded in ``training_info.json``
(``Recipe.flat``) and reads it back (``Recipe.from_flat``).

This module imports nothing heavy (no torch), so ``semsim train --help`` can list the recipes quickly.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidInputError, InvalidInputTypeError
from .settings import PretrainSettings, TripletSettings, VoteTuningSettings

__all__ = ["FLAT_FIELDS", "RECIPES", "Recipe", "get_recipe"]

#: the stage sections of a recipe (attribute names of ``Recipe``), in the order the stages run
SECTIONS = ("pretrain", "vote_tuning", "triplets")

#: flat name -> (section, field): ``""`` is the recipe itself. The order is the order of ``Recipe.flat()``; the
#: names after ``description`` are written only when they differ from the default (recipes recorded before
#: they could be set keep their exact flat form)
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    "name": ("", "name"),
    **{
        name: ("triplets", name)
        for name in (
            "learning_rate",
            "momentum",
            "nesterov",
            "weight_decay",
            "batch_size",
            "epochs",
            "milestones",
            "gamma",
            "margin",
            "augment",
        )
    },
    "seed": ("", "seed"),
    "base_width": ("", "base_width"),
    "global_loss_weight": ("triplets", "global_loss_weight"),
    **{
        f"pretrain_{name}": ("pretrain", name)
        for name in ("epochs", "source", "split", "noise", "contrast", "brightness", "blur")
    },
    **{
        f"vote_{name}": ("vote_tuning", name)
        for name in (
            "epochs",
            "learning_rate",
            "distance_weight",
            "noise",
            "anchor_weight",
            "anchor_centre",
            "anchor_temperature",
            "anchor_kind",
            "anchor_domains",
            "adversarial_share",
            "adversarial_steps",
            "adversarial_pool",
            "anchor_copy_centre",
            "balance_domains",
        )
    },
    "embedding": ("", "embedding"),
    "description": ("", "description"),
    "layout_weight": ("", "layout_weight"),
    **{
        f"pretrain_{name}": ("pretrain", name)
        for name in ("batch_size", "learning_rate", "holdout", "min_source_share")
    },
    **{f"vote_{name}": ("vote_tuning", name) for name in ("batch_size", "original_weight")},
    "layout_size": ("", "layout_size"),
    "layout_channels": ("", "layout_channels"),
}
#: flat names written only when they differ from the default (see ``FLAT_FIELDS``)
_WRITTEN_WHEN_SET = frozenset(list(FLAT_FIELDS)[list(FLAT_FIELDS).index("description") + 1 :])
#: flat values that the nested settings hold differently: (flat -> nested, nested -> flat)
_CONVERSIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    # a negative copy centre in the flat form: the same as the anchor centre (None in VoteTuningSettings)
    "vote_anchor_copy_centre": (
        lambda v: None if v is not None and v < 0 else v,
        lambda v: -1.0 if v is None else v,
    ),
}


@dataclass(frozen=True)
class Recipe:
    """A training recipe: the settings of each stage, and what all stages share.

    A stage whose ``epochs`` is 0 does not run. The recipe's ``seed`` is every stage's seed: the sections'
    own ``seed`` fields are set from it. Change fields by their flat names with ``get_recipe("paper",
    epochs=30)`` or ``recipe.with_changes(vote_epochs=2)``; ``FLAT_FIELDS`` lists them.

    Examples:
        >>> r = RECIPES["semantic"]
        >>> r.pretrain.epochs, r.vote_tuning.epochs, r.triplets.epochs, r.stages
        (6.0, 4, 0, ('classes', 'votes'))
        >>> r.vote_tuning.seed == r.pretrain.seed == r.seed
        True
    """

    name: str
    #: stage 1 (``semsim_metric.training.stages.classes``): class-supervised backbone pre-training; epochs 0 = off
    pretrain: PretrainSettings = field(default_factory=lambda: PretrainSettings(epochs=0.0))
    #: stage 2 (``semsim_metric.training.stages.votes``): learning the annotators' answers; epochs 0 = off
    vote_tuning: VoteTuningSettings = field(default_factory=lambda: VoteTuningSettings(epochs=0, noise=0.3))
    #: the paper's triplet stage (``semsim_metric.training.stages.triplets``); epochs 0 = off
    triplets: TripletSettings = field(default_factory=TripletSettings)
    seed: int = 23333
    #: channels of the CIFAR ResNet-18's first stage
    base_width: int = 64
    #: "pooled" (the paper), "spatial" (flattened last feature map) or "spatial_smooth"; see SemSimConfig
    embedding: str = "pooled"
    description: str = ""
    #: the layout's share of the finished model's embedding (``SemSimConfig.layout_weight``): the stages train the
    #: network alone, and the model gets this weight before it is calibrated and saved; 0 = the network alone
    layout_weight: float = 0.0
    #: side of the layout thumbnail (``SemSimConfig.layout_size``), set with ``layout_weight`` after training
    layout_size: int = 16
    #: what the layout holds, ``"rgb"`` or ``"luminance"`` (``SemSimConfig.layout_channels``), set after training
    layout_channels: str = "rgb"

    def __post_init__(self) -> None:
        for section in SECTIONS:
            settings = getattr(self, section)
            if settings.seed != self.seed:
                object.__setattr__(self, section, dataclasses.replace(settings, seed=self.seed))

    @property
    def stages(self) -> tuple[str, ...]:
        """The stages this recipe runs, in order (``classes``, ``votes``, ``triplets``)."""
        on = (
            ("classes", self.pretrain.epochs),
            ("votes", self.vote_tuning.epochs),
            ("triplets", self.triplets.epochs),
        )
        return tuple(name for name, epochs in on if epochs > 0)

    def flat(self) -> dict[str, Any]:
        """The recipe under its flat names, as ``training_info.json`` records it.

        Examples:
            >>> list(RECIPES["paper"].flat())[:4]
            ['name', 'learning_rate', 'momentum', 'nesterov']
            >>> Recipe.from_flat(RECIPES["colour"].flat()) == RECIPES["colour"]
            True
        """
        return {
            name: _flat_value(self, name)
            for name in FLAT_FIELDS
            if name not in _WRITTEN_WHEN_SET or _flat_value(self, name) != _flat_value(_DEFAULT, name)
        }

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> Recipe:
        """A recipe from its flat form (``Recipe.flat()``, a ``training_info.json``'s ``"recipe"``); names left out
        take the defaults, lists become tuples.

        Raises:
            TypeError: an unknown flat name, or no ``name``.
        """
        _check_names(values)
        if "name" not in values:
            raise InvalidInputTypeError("a recipe's flat form needs its 'name'.")
        nested: dict[str, dict[str, Any]] = {section: {} for section in ("", *SECTIONS)}
        for name, value in values.items():
            section, attr = FLAT_FIELDS[name]
            if name in _CONVERSIONS:
                value = _CONVERSIONS[name][0](value)
            nested[section][attr] = tuple(value) if isinstance(value, list) else value
        sections = {s: dataclasses.replace(getattr(_DEFAULT, s), **nested[s]) for s in SECTIONS}
        return cls(**nested[""], **sections)

    def with_changes(self, **changes: Any) -> Recipe:
        """This recipe with fields changed by their flat names (``epochs=10``, ``vote_anchor_weight=1.0``).

        Raises:
            TypeError: an unknown flat name (the message suggests the nearest ones).
        """
        _check_names(changes)
        return Recipe.from_flat({**self.flat(), **changes})


#: the defaults of every field: what a flat form leaves out
_DEFAULT = Recipe(name="")


def _flat_value(recipe: Recipe, name: str) -> Any:
    """The value of the flat field ``name`` of ``recipe``."""
    section, attr = FLAT_FIELDS[name]
    value = getattr(getattr(recipe, section) if section else recipe, attr)
    return _CONVERSIONS[name][1](value) if name in _CONVERSIONS else value


def _check_names(values: Mapping[str, Any]) -> None:
    bad = sorted(set(values) - set(FLAT_FIELDS))
    if bad:
        hints = [
            f"{b!r} (did you mean {', '.join(map(repr, close))}?)"
            if (close := difflib.get_close_matches(b, FLAT_FIELDS, n=2))
            else repr(b)
            for b in bad
        ]
        raise InvalidInputTypeError(
            f"unknown recipe field(s) {', '.join(hints)}; valid fields: "
            f"{sorted(set(FLAT_FIELDS) - {'name'})}."
        )


RECIPES: dict[str, Recipe] = {
    "paper": Recipe(
        name="paper",
        description="The paper's recipe: CIFAR ResNet-18 width 64, SGD lr 0.05 momentum 0.9 Nesterov, wd 5e-4, "
        "64 triplets per batch, 100 epochs, lr x0.1 at epochs 37/62/87, margin 1.0, crop+flip, seed 23333.",
    ),
    "cpu": Recipe(
        name="cpu",
        base_width=32,
        triplets=TripletSettings(epochs=24),
        description="The paper's loss and optimiser on a CPU budget: width 32, 24 epochs, lr x0.1 at 37/62/87% "
        "of training.",
    ),
    "judged": Recipe(
        name="judged",
        base_width=32,
        triplets=TripletSettings(epochs=24, global_loss_weight=1.0),
        description="The cpu recipe plus a global soft-label loss: binary cross-entropy between "
        "sigmoid((1 - d) / 0.25) and the share of annotators who recognised each positive and negative, which "
        "puts distances of different originals on one scale (weight 1.0).",
    ),
    "semantic": Recipe(
        name="semantic",
        base_width=16,
        embedding="spatial",
        triplets=TripletSettings(epochs=0),
        pretrain=PretrainSettings(epochs=6.0),
        vote_tuning=VoteTuningSettings(epochs=4, noise=0.3),
        description="Two stages, no triplets. 1: the backbone learns the image domain's classes (Fashion-MNIST train "
        "split, 6 epochs, crop/flip + Gaussian noise; images equal to annotated originals excluded). 2: vote tuning: "
        "it learns the distribution of the annotators' answers (a class or 'cannot recognise') for every "
        "reconstruction and the answers for its original (4 epochs, SGD lr 0.01, cosine, crop/flip + noise). "
        "Width 16; the embedding is the flattened last feature map ('spatial').",
    ),
    "colour": Recipe(
        name="colour",
        base_width=16,
        embedding="spatial_smooth",
        triplets=TripletSettings(epochs=0),
        pretrain=PretrainSettings(
            epochs=3.0, source="fashion-mnist+emoji-scenes", contrast=0.4, brightness=0.15, blur=1.0
        ),
        vote_tuning=VoteTuningSettings(
            epochs=4,
            noise=0.3,
            anchor_weight=3.0,
            anchor_centre=0.95,
            anchor_copy_centre=0.3,
            anchor_kind="invariances",
            anchor_domains="fashion-mnist+photos+synthetic+emoji-scenes",
            adversarial_share=0.25,
            adversarial_steps=5,
            balance_domains=0.5,
        ),
        description="The semantic recipe in two image domains, with anchors of what people ignore and adversarial negatives. 1: the "
        "backbone learns the classes of Fashion-MNIST train (greyscale) and emoji-scenes train (colour, repeated to "
        "40% of Fashion-MNIST's size) together, 3 epochs, crop/flip + noise + contrast/brightness/blur. 2: vote tuning "
        "(4 epochs) on the answers of every domain (each domain keeps its own classes; emoji rows repeated to half of "
        "the Fashion-MNIST rows), with label-free anchors (weight 3; unrelated images pushed beyond 0.95, copies "
        "pulled below 0.3) whose recognised copies are the changes people ignore (1-2 px shifts, contrast x0.5-1.2, "
        "brightness +-0.2, blur up to 1.3 px, JPEG 20-90) in four image domains, and a quarter of the anchors also "
        "brings an adversarial negative (noise moved toward the anchor by 5 signed-gradient steps against the current "
        "model). Width 16; embedding: the last feature map smoothed over 3x3 cells, flattened.",
    ),
    "quick": Recipe(
        name="quick",
        base_width=8,
        triplets=TripletSettings(epochs=2, batch_size=16, milestones=()),
        description="A smoke-test recipe for CPUs: width 8, 2 epochs, batch 16.",
    ),
}


#: the recipe of the shipped default model (revision v8): what `semsim train` runs on a machine without a GPU.
#: It is `colour` without the adversarial negatives and the stricter copy centre, with the plain spatial
#: embedding (chosen over `colour` on the held-out protocol, leaving the colour domain out: revision v6), and 0.3
#: of the embedding given to the image's luminance layout (chosen on nine held-out splits with the sanity checks
#: of the shipped model, docs/heldout.md; v7 gave half to a colour layout).
DEFAULT_MODEL_RECIPE = (
    "colour:embedding=spatial,vote_anchor_copy_centre=-1,vote_adversarial_share=0,"
    "layout_weight=0.3,layout_channels=luminance"
)


def default_recipe(cuda_available: bool) -> str:
    """What ``semsim train`` runs without ``--recipe``: the paper's recipe on a GPU, the shipped default's
    (well under an hour on a CPU) otherwise.

    Examples:
        >>> default_recipe(True), default_recipe(False) == DEFAULT_MODEL_RECIPE
        ('paper', True)
    """
    return "paper" if cuda_available else DEFAULT_MODEL_RECIPE


def get_recipe(name: str, **overrides: Any) -> Recipe:
    """Return the named recipe with ``overrides`` (flat field names, ``None`` = not given) applied.

    ``name`` may carry overrides itself, ``"<recipe>:<field>=<value>,<field>=<value>"``, which is how the
    command line names variants (``--recipe semantic:embedding=pooled``); the variant keeps the whole
    string as its name. Values in the string are read as the type of the field's current value (booleans as
    ``true``/``false``/``1``/``0``, milestones as ``0.5/0.75``).

    Raises:
        ValueError: an unknown recipe, a malformed variant, or a value of the wrong type.
        TypeError: an unknown field name (the message suggests the nearest ones).

    Examples:
        >>> r = get_recipe("semantic:embedding=pooled,vote_epochs=2")
        >>> r.name, r.embedding, r.vote_tuning.epochs
        ('semantic:embedding=pooled,vote_epochs=2', 'pooled', 2)
        >>> get_recipe("semantic:vote_epoch=2")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputTypeError: unknown recipe field(s) 'vote_epoch' (did you mean 'vote_epochs'...
    """
    base, _, spec = name.partition(":")
    if base not in RECIPES:
        raise InvalidInputError(f"unknown recipe {base!r}; choose one of {sorted(RECIPES)}.")
    recipe = RECIPES[base]
    changes = _parse_variant(recipe, spec) if spec else {}
    _check_names({**changes, **overrides})
    changes.update({k: v for k, v in overrides.items() if v is not None})
    if spec:
        changes.update(name=name, description=f"{recipe.description} Variant: {spec}.")
    return recipe.with_changes(**changes)


def _parse_variant(recipe: Recipe, spec: str) -> dict[str, Any]:
    """``"field=value,..."`` -> flat changes, each value of the type of the field's value in ``recipe`` (unknown
    fields are kept as text, for the caller to report with the others)."""
    out: dict[str, Any] = {}
    for item in spec.split(","):
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidInputError(
                f"recipe variant {spec!r}: write <field>=<value>[,<field>=<value>], got {item!r}."
            )
        if key not in FLAT_FIELDS:
            out[key] = text
            continue
        current = _flat_value(recipe, key)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise InvalidInputError(text)
                out[key] = text.lower() in ("true", "1")
            elif isinstance(current, tuple):
                out[key] = tuple(float(v) for v in text.split("/") if v)
            else:
                out[key] = type(current)(text)
        except ValueError:
            raise InvalidInputError(
                f"recipe variant {spec!r}: {key} needs a value of type {type(current).__name__}, "
                f"got {text!r}."
            ) from None
    return out
