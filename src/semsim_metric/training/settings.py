"""What each training stage learns and how: one settings class per stage (``classes``, ``votes``, ``triplets``).

A ``Recipe`` (``semsim_metric.training.recipes``) holds one of each; each stage's module trains from its own
(``pretrain_backbone(model, PretrainSettings(...))``, ...). An ``epochs`` of 0 means the stage does not run (a
recipe without it); the stage functions refuse it. Settings record every value that changes a stage's result,
so their ``dataclasses.asdict`` is part of the stage's resume plan and of the stage-1 cache key: renaming or
reordering a field changes those keys.

This module imports nothing heavy (no torch), so ``semsim train --help`` can list the recipes quickly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..data.augmentation import Augmentation

__all__ = ["PretrainSettings", "TripletSettings", "VoteTuningSettings"]


@dataclass(frozen=True)
class PretrainSettings:
    """What stage 1 (``classes``: class-supervised backbone pre-training) trains on and how.

    Attributes:
        source: image source spec (``"fashion-mnist"``, ``"emoji-scenes"``, ``"hf:<dataset id>"`` or a
            class-folder path; see ``semsim_metric.data.sources.load_source``), or several joined by ``+``.
        split: split of the source (Fashion-MNIST: ``"train"``; the default dataset's originals come from
            ``"test"``).
        epochs: passes over the source (fractions allowed); 0 = no stage 1.
        batch_size: images per step.
        learning_rate: peak learning rate of the one-cycle SGD schedule.
        noise: largest standard deviation of the Gaussian noise added to half of the images (0 = off).
        holdout: images of the source kept out of training to report classification accuracy.
        seed: seed of the shuffling, augmentation and classifier (in a recipe: the recipe's seed).
        contrast: largest contrast change of the augmentation (factor in ``[1 - contrast, 1 + contrast]``).
        brightness: largest brightness shift of the augmentation.
        blur: largest Gaussian blur sigma (pixels at the model's size) of the augmentation.
        min_source_share: with several sources, each is repeated until it has at least this share of the
            largest source's images.

    Examples:
        >>> PretrainSettings(epochs=-1)
        Traceback (most recent call last):
        ...
        semsim_metric.errors.InvalidInputError: pre-training epochs must be >= 0 (0 = no pre-training), got -1.
    """

    source: str = "fashion-mnist"
    split: str = "train"
    epochs: float = 2.0
    batch_size: int = 128
    learning_rate: float = 0.1
    noise: float = 0.3
    holdout: int = 2000
    seed: int = 0
    contrast: float = 0.0
    brightness: float = 0.0
    blur: float = 0.0
    min_source_share: float = 0.4

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise InvalidInputError(
                f"pre-training epochs must be >= 0 (0 = no pre-training), got {self.epochs}."
            )
        if self.batch_size < 1 or self.holdout < 0 or self.noise < 0:
            raise InvalidInputError(f"invalid pre-training settings: {self}.")

    def augmentation(self) -> Augmentation:
        """Crop (3-pixel shifts) + flip + Gaussian noise up to ``noise`` on half of the images, plus the
        photometric changes (contrast, brightness, blur) when set."""
        from ..data.augmentation import Augmentation

        return dataclasses.replace(
            Augmentation.crop_flip_noise(self.noise),
            contrast=self.contrast,
            brightness=self.brightness,
            blur=self.blur,
        )


@dataclass(frozen=True)
class VoteTuningSettings:
    """How stage 2 (``votes``: learning the annotators' answers) trains.

    Attributes:
        epochs: passes over the training reconstructions; 0 = no stage 2.
        batch_size: reconstructions per step (each with its original).
        learning_rate: initial learning rate of SGD with a cosine decay.
        original_weight: weight of the originals' classification loss (per original, not per row).
        distance_weight: weight of the global soft-label loss on the distance (0 = off).
        noise: largest Gaussian-noise standard deviation of the augmentation (0 = crop/flip only).
        seed: seed of the shuffling, augmentation and new classifier rows (in a recipe: the recipe's seed).
        anchor_weight: weight of the label-free anchor loss (0 = off): each row also brings one anchor pair
            (``semsim_metric.data.anchors``) whose distance is pushed below ``anchor_centre`` for mild
            copies and above it for noise, constants and other classes, in several image domains.
        anchor_centre: distance at which the anchor loss's sigmoid is one half.
        anchor_temperature: width of that sigmoid.
        anchor_kind: which copies are recognised anchors (``"mild"`` or ``"invariances"``; see
            ``semsim_metric.data.anchors``).
        anchor_domains: image domains of the anchor pool joined by ``+`` (``AnchorPool.from_domains``).
        adversarial_share: share of the batch's anchor pairs that also get an adversarial negative: uniform
            noise moved toward the anchor image by ``adversarial_steps`` signed-gradient steps against the
            current model, then pushed away like any unrelated image (kept only while its SSIM to the anchor
            is below 0.3, i.e. while it still does not look like it). 0 = off.
        adversarial_steps: signed-gradient steps that make each adversarial negative (per visit of a pool
            entry when ``adversarial_pool > 0``).
        adversarial_pool: 0 = every negative starts from fresh noise; ``P > 0`` = a persistent pool of ``P``
            (anchor, negative) pairs kept in the objective (and its checkpoints): each step refines
            ``adversarial_share`` of a batch's worth of entries a few steps further, so the negatives get as
            strong as an optimiser that runs hundreds of steps at the cost of a few. An entry whose SSIM to
            its anchor reaches 0.3 (a real likeness) is restarted from noise instead of being pushed away.
        anchor_copy_centre: distance at which the loss of a *recognised* anchor pair (a copy people ignore)
            is one half; ``None`` = ``anchor_centre``. Lower values pull copies closer than the calibration's
            p = 0.5 distance, not just closer than unrelated images.
        balance_domains: with rows of several image domains (``source_dataset``), repeat each smaller
            domain's rows until it has at least this share of the largest domain's rows per epoch (0 = off).

    Examples:
        >>> VoteTuningSettings(epochs=0).epochs  # a recipe without stage 2
        0
    """

    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 0.01
    original_weight: float = 1.0
    distance_weight: float = 0.0
    noise: float = 0.0
    seed: int = 0
    anchor_weight: float = 0.0
    anchor_centre: float = 0.65
    anchor_temperature: float = 0.1
    anchor_kind: str = "mild"
    anchor_domains: str = "fashion-mnist+photos+synthetic"
    adversarial_share: float = 0.0
    adversarial_steps: int = 5
    adversarial_pool: int = 0
    anchor_copy_centre: float | None = None
    balance_domains: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 2 or self.learning_rate <= 0 or self.anchor_weight < 0:
            raise InvalidInputError(f"invalid vote-tuning settings: {self}.")
        if not 0 <= self.adversarial_share <= 1 or self.adversarial_steps < 1:
            raise InvalidInputError(
                f"adversarial_share must be in [0, 1] and adversarial_steps >= 1, got {self}."
            )
        if self.anchor_copy_centre is not None and self.anchor_copy_centre < 0:
            raise InvalidInputError(
                f"anchor_copy_centre must be >= 0 (None = anchor_centre), got {self.anchor_copy_centre}."
            )

    def augmentation(self) -> Augmentation:
        """Crop (3-pixel shifts) + flip + Gaussian noise up to ``noise`` on half of the images."""
        from ..data.augmentation import Augmentation

        return Augmentation.crop_flip_noise(self.noise)


@dataclass(frozen=True)
class TripletSettings:
    """The paper's triplet stage (``triplets``): SGD with learning-rate drops, triplet margin loss.

    Attributes:
        epochs: passes over the training triplets; 0 = no triplet stage.
        batch_size: triplets per optimiser step (the global batch under ``torchrun``).
        learning_rate: initial learning rate of SGD.
        momentum: SGD momentum.
        nesterov: Nesterov momentum.
        weight_decay: SGD weight decay.
        milestones: the learning rate drops (x ``gamma``) at these fractions of training (paper: epochs 37, 62,
            87 of 100).
        gamma: factor of each drop.
        margin: triplet margin: how much farther an unrecognised reconstruction must be than a recognised one.
        global_loss_weight: weight of the global soft-label loss beside the triplet loss (0 = off).
        augment: the paper's per-image RandomCrop(pad 4) + horizontal flip.
        seed: seed of the triplets, data order and augmentation (in a recipe: the recipe's seed).

    Examples:
        >>> TripletSettings(epochs=50).milestone_epochs()
        [18, 31, 44]
    """

    learning_rate: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 64
    epochs: int = 100
    milestones: tuple[float, ...] = (0.37, 0.62, 0.87)
    gamma: float = 0.1
    margin: float = 1.0
    augment: bool = True
    global_loss_weight: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1:
            raise InvalidInputError(f"invalid triplet settings: {self}.")

    def milestone_epochs(self) -> list[int]:
        """Epochs at which the learning rate drops."""
        return [round(m * self.epochs) for m in self.milestones]
